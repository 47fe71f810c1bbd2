/**
 * The one parser of image names, used by the API and the CLI alike:
 *
 *   oci:DIR[:TAG]  oci:DIR@DIGEST  oci-archive:FILE[:TAG]  docker-archive:FILE[:REF]
 *   bfc:FILE[:TAG]  HOST[:PORT]/REPO[:TAG][@DIGEST]  docker://REFERENCE
 *
 * In the file-based names the path ends at the first ':' after the transport, so a
 * path cannot hold ':' (as with skopeo).
 */
import { type Digest, parseDigest } from '../digest.ts'
import { OcikitError } from '../errors.ts'
import { formatReference, parseReference, type RegistryReference, redactUserinfo } from './reference.ts'

/** A name in the OCI layout store. */
export interface LayoutName {
  readonly transport: 'oci'
  readonly path: string
  readonly tag?: string | undefined
  readonly digest?: Digest | undefined
}
/** A name in a file-based archive store. `ref` is the tag (oci-archive, bfc) or the image reference (docker-archive). */
export interface ArchiveName {
  readonly transport: 'oci-archive' | 'docker-archive' | 'bfc'
  readonly path: string
  readonly ref?: string | undefined
}
/** A name in a registry. */
export interface RegistryName {
  readonly transport: 'registry'
  readonly reference: RegistryReference
}
/** Any parsed image name. */
export type ImageName = LayoutName | ArchiveName | RegistryName

/** The transports ocikit knows, as written before the ':'. */
export const TRANSPORTS = ['oci', 'oci-archive', 'docker-archive', 'bfc', 'docker'] as const

// The grammar of `org.opencontainers.image.ref.name` from image-spec annotations.md.
const REF_NAME = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/

/** True when `tag` is a valid tag for a layout (the `ref.name` annotation grammar). */
export function isLayoutTag(tag: string): boolean {
  return tag.length <= 255 && REF_NAME.test(tag)
}

function invalid(input: string, why: string): OcikitError {
  return new OcikitError('INVALID_NAME', `invalid image name '${redactUserinfo(input)}': ${why}`)
}

function splitPathAndRef(input: string, body: string): { path: string; ref?: string } {
  const colon = body.indexOf(':')
  const path = colon < 0 ? body : body.slice(0, colon)
  const ref = colon < 0 ? undefined : body.slice(colon + 1)
  if (path === '') throw invalid(input, 'no path')
  if (ref === '') throw invalid(input, `empty reference after '${path}:'`)
  return ref === undefined ? { path } : { path, ref }
}

function parseLayoutName(input: string, body: string): LayoutName {
  const at = body.lastIndexOf('@')
  if (at > 0 && /^[a-z0-9+._-]+:/.test(body.slice(at + 1))) {
    let digest: Digest
    try {
      digest = parseDigest(body.slice(at + 1))
    } catch (cause) {
      throw invalid(input, (cause as Error).message)
    }
    const path = body.slice(0, at)
    if (path === '') throw invalid(input, 'no path')
    return { transport: 'oci', path, digest }
  }
  const { path, ref } = splitPathAndRef(input, body)
  if (ref !== undefined && !isLayoutTag(ref)) throw invalid(input, `bad tag '${ref}'`)
  return { transport: 'oci', path, tag: ref }
}

/** Parses any image name; throws INVALID_NAME with the reason. */
export function parseName(input: string): ImageName {
  if (input.trim() !== input || input === '') throw invalid(input, 'empty or surrounded by spaces')
  const m = /^([a-z][a-z0-9-]*):(.*)$/s.exec(input)
  if (m) {
    const [, transport = '', body = ''] = m
    switch (transport) {
      case 'oci':
        return parseLayoutName(input, body)
      case 'oci-archive':
      case 'bfc': {
        const { path, ref } = splitPathAndRef(input, body)
        if (ref !== undefined && !isLayoutTag(ref)) throw invalid(input, `bad tag '${ref}'`)
        return { transport, path, ref }
      }
      case 'docker-archive': {
        const { path, ref } = splitPathAndRef(input, body)
        if (ref !== undefined && !/^@?\d+$/.test(ref)) parseReference(ref)
        return { transport, path, ref }
      }
      case 'docker':
        if (!body.startsWith('//')) throw invalid(input, "the docker transport is written 'docker://HOST/REPO[:TAG]'")
        return { transport: 'registry', reference: parseReference(body.slice(2)) }
      default:
        // `alpine:3`, `localhost:5000/x`: a registry reference, not a transport.
        try {
          return { transport: 'registry', reference: parseReference(input) }
        } catch (e) {
          const why = (e as Error).message.replace(/^invalid image reference '.*?': /s, '')
          throw invalid(input, `unknown transport '${transport}' (known: ${TRANSPORTS.map((t) => `${t}:`).join(', ')}), and not a registry reference (${why})`)
        }
    }
  }
  return { transport: 'registry', reference: parseReference(input) }
}

/** The canonical text of a parsed name; `parseName(formatName(n))` gives `n` back. */
export function formatName(n: ImageName): string {
  switch (n.transport) {
    case 'oci':
      return `oci:${n.path}${n.digest ? `@${n.digest}` : n.tag ? `:${n.tag}` : ''}`
    case 'registry':
      return formatReference(n.reference)
    default:
      return `${n.transport}:${n.path}${n.ref ? `:${n.ref}` : ''}`
  }
}
