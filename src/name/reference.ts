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
  return new OcikitError('INVALID_NAME', `invalid image reference '${redactUserinfo(input)}': ${why}`)
}

/** What follows the '@' of a digest: `algorithm:encoded` to the end of the name (a host and path has a '/'). */
const DIGEST_AFTER_AT = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/

/**
 * Where the `user:password@` part of a name ends (the index of its last '@' that does not start
 * a digest), or -1 when it has none. In a bare host (`digests` false) every '@' is one.
 */
function userinfoEnd(input: string, digests = true): number {
  if (!digests) return input.lastIndexOf('@')
  let end = -1
  for (let i = input.indexOf('@'); i >= 0; i = input.indexOf('@', i + 1)) if (!DIGEST_AFTER_AT.test(input.slice(i + 1))) end = i
  return end
}

/**
 * `input` with any `user:password@` part (which docker-style URLs allow, and image names do not)
 * replaced by `***@`, for messages: an image name in an error must never carry a password.
 * An `@sha256:…` digest is kept.
 */
export function redactUserinfo(input: string, digests = true): string {
  const end = userinfoEnd(input, digests)
  if (end < 0) return input
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//.exec(input)?.[0] ?? ''
  return `${scheme}***@${input.slice(end + 1)}`
}

/** What is wrong with the port of `hostport` (outside 1 to 65535), or undefined when it is fine or absent. */
function badPort(hostport: string): string | undefined {
  const m = /:(\d+)$/.exec(hostport)
  if (!m) return undefined
  const port = Number(m[1])
  return port >= 1 && port <= 65535 ? undefined : `port ${m[1]} is outside 1-65535`
}

/**
 * Parses a registry host as `login`, `logout` and `catalog` take it: `HOST[:PORT]`, optionally
 * written `https://HOST[:PORT][/]` or `docker://HOST`. A path, query, fragment, user or bad
 * port is an INVALID_NAME error. Returns `HOST[:PORT]`, with docker.io's aliases normalised.
 */
export function parseRegistryHost(input: string): string {
  const bad = (why: string) => new OcikitError('INVALID_NAME', `invalid registry host '${redactUserinfo(input, false)}': ${why}`)
  let rest = input.trim()
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest)
  if (scheme) {
    if (!['https', 'http', 'docker'].includes((scheme[1] as string).toLowerCase())) throw bad(`unknown scheme '${scheme[1]}://'`)
    rest = rest.slice(scheme[0].length)
  }
  rest = rest.replace(/\/+$/, '')
  if (userinfoEnd(rest, false) >= 0) throw bad("credentials do not go in the host; give them to 'ocikit login' (-u USER --password-stdin)")
  if (/[/?#]/.test(rest)) throw bad('a registry host has no path, query or fragment; give HOST[:PORT]')
  if (rest === '' || !DOMAIN.test(rest)) throw bad('not a host name or address, with an optional port')
  const port = badPort(rest)
  if (port) throw bad(port)
  return rest === 'index.docker.io' || rest === 'registry-1.docker.io' ? DOCKER_HUB : rest
}

/** True when the first path part of a reference names a registry host rather than a repository. */
function looksLikeHost(part: string): boolean {
  return part.includes('.') || part.includes(':') || part === 'localhost' || part.startsWith('[') || part !== part.toLowerCase()
}

/** Parses a registry reference (without a `docker://` prefix); throws INVALID_NAME. */
export function parseReference(input: string): RegistryReference {
  if (userinfoEnd(input) >= 0) throw invalid(input, "credentials do not go in image names; save them with 'ocikit login HOST'")
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
    const port = badPort(registry)
    if (port) throw invalid(input, port)
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
