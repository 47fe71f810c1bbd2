/**
 * Registry references (`HOST[:PORT]/REPO[:TAG][@DIGEST]`), normalised as docker does:
 * `alpine` → `docker.io/library/alpine:latest`.
 */
import { type Digest, parseDigest } from '../digest.ts'
import { OcikitError } from '../errors.ts'

/** A parsed, normalised registry reference. */
export interface RegistryReference {
  /** Host and optional port, e.g. `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly registry: string
  /** Repository path, e.g. `library/alpine`. */
  readonly repository: string
  /** Tag; `latest` when neither a tag nor a digest was given. */
  readonly tag?: string | undefined
  readonly digest?: Digest | undefined
}

/** The registry that bare names refer to. */
export const DOCKER_HUB = 'docker.io'

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`)
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG = /^[\w][\w.-]{0,127}$/
const MAX_NAME = 255

function invalid(input: string, why: string): OcikitError {
  return new OcikitError('INVALID_NAME', `invalid image reference '${input}': ${why}`)
}

/** True when the first path part of a reference names a registry host rather than a repository. */
function looksLikeHost(part: string): boolean {
  return part.includes('.') || part.includes(':') || part === 'localhost' || part.startsWith('[') || part !== part.toLowerCase()
}

/** Parses a registry reference (without a `docker://` prefix); throws INVALID_NAME. */
export function parseReference(input: string): RegistryReference {
  let rest = input
  let digest: Digest | undefined
  const at = rest.lastIndexOf('@')
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1))
    } catch (cause) {
      throw invalid(input, (cause as Error).message)
    }
    rest = rest.slice(0, at)
  }
  let tag: string | undefined
  const slash = rest.lastIndexOf('/')
  const colon = rest.lastIndexOf(':')
  if (colon > slash) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw invalid(input, `bad tag '${tag}' (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')`)
  }
  if (rest === '') throw invalid(input, 'no repository')
  const parts = rest.split('/')
  let registry = DOCKER_HUB
  if (parts.length > 1 && looksLikeHost(parts[0] as string)) {
    registry = parts.shift() as string
    if (!DOMAIN.test(registry)) throw invalid(input, `bad registry host '${registry}'`)
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB
  for (const p of parts) {
    if (!PATH_COMPONENT.test(p)) {
      const hint = p !== p.toLowerCase() ? ' (repository names must be lowercase)' : ''
      throw invalid(input, `bad repository path component '${p}'${hint}`)
    }
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library')
  const repository = parts.join('/')
  if (repository.length > MAX_NAME) throw invalid(input, `repository name is over ${MAX_NAME} characters`)
  if (tag === undefined && digest === undefined) tag = 'latest'
  return { registry, repository, tag, digest }
}

/** The full text of a reference: `registry/repository[:tag][@digest]`. */
export function formatReference(r: RegistryReference): string {
  return `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`
}
