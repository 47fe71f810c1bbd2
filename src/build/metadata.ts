/**
 * What a build knows of its sources: `org.opencontainers.image.*` labels and annotations from
 * `package.json` and git, and the last commit's time. git is asked only when it is installed and
 * the context is a work tree; a remote URL loses any credentials it carries.
 */
import { execFileSync } from 'node:child_process'
import type { PackageJson } from './node-project.ts'

/** The pre-defined annotation keys a build sets (image-spec annotations.md). */
export const OCI = {
  title: 'org.opencontainers.image.title',
  version: 'org.opencontainers.image.version',
  description: 'org.opencontainers.image.description',
  licenses: 'org.opencontainers.image.licenses',
  source: 'org.opencontainers.image.source',
  url: 'org.opencontainers.image.url',
  revision: 'org.opencontainers.image.revision',
  created: 'org.opencontainers.image.created',
  baseName: 'org.opencontainers.image.base.name',
  baseDigest: 'org.opencontainers.image.base.digest',
} as const

/** What git says of a work tree. */
export interface GitInfo {
  revision: string
  /** The last commit's time, seconds since the epoch. */
  commitTime: number
  /** `remote.origin.url` as https, credentials removed. */
  source?: string | undefined
  /** Whether files differ from the last commit. */
  dirty: boolean
}

function git(dir: string, args: string[]): string | undefined {
  try {
    return execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim()
  } catch {
    return undefined
  }
}

/** A repository URL as a browsable https address, with no credentials: `git@github.com:o/r.git` → `https://github.com/o/r`. */
export function sourceUrl(url: string): string | undefined {
  let u = url.trim().replace(/^git\+/, '')
  const scp = /^([\w.-]+@)?([\w.-]+):(?!\/\/)(.+)$/.exec(u)
  if (scp) u = `https://${scp[2]}/${scp[3]}`
  u = u.replace(/^git:\/\//, 'https://').replace(/^ssh:\/\//, 'https://')
  let parsed: URL
  try {
    parsed = new URL(u)
  } catch {
    return undefined
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return undefined
  parsed.username = ''
  parsed.password = ''
  parsed.port = parsed.port === '22' ? '' : parsed.port
  return parsed
    .toString()
    .replace(/\.git$/, '')
    .replace(/\/$/, '')
}

/** git's view of `dir`, or undefined when git is missing or `dir` is not in a work tree with a commit. */
export function gitInfo(dir: string): GitInfo | undefined {
  const revision = git(dir, ['rev-parse', 'HEAD'])
  if (!revision || !/^[0-9a-f]{40,64}$/.test(revision)) return undefined
  const time = Number(git(dir, ['log', '-1', '--format=%ct']))
  const remote = git(dir, ['config', '--get', 'remote.origin.url'])
  const status = git(dir, ['status', '--porcelain', '--untracked-files=no'])
  return {
    revision,
    commitTime: Number.isFinite(time) ? time : 0,
    source: remote ? sourceUrl(remote) : undefined,
    dirty: status !== undefined && status !== '',
  }
}

/** The labels a build sets from `package.json` and git (unset where they say nothing). */
export function sourceLabels(pkg: PackageJson | undefined, g: GitInfo | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  if (pkg?.name) out[OCI.title] = pkg.name
  if (pkg?.version) out[OCI.version] = pkg.version
  if (pkg?.description) out[OCI.description] = pkg.description
  if (pkg?.license) out[OCI.licenses] = pkg.license
  const repo = typeof pkg?.repository === 'string' ? pkg.repository : pkg?.repository?.url
  const src = (repo ? sourceUrl(repo.replace(/^github:/, 'https://github.com/')) : undefined) ?? g?.source
  if (src) out[OCI.source] = src
  if (pkg?.homepage && sourceUrl(pkg.homepage)) out[OCI.url] = sourceUrl(pkg.homepage) as string
  if (g) out[OCI.revision] = g.dirty ? `${g.revision}-dirty` : g.revision
  return out
}
