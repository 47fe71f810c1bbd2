/**
 * The conventions of an OCI layout's `index.json`, shared by every store that keeps one (a
 * layout directory, an OCI archive, a BFC file): where a blob lies, tags in the `org.opencontainers.image.ref.name` annotation,
 * adding an entry, and finding the one a name refers to.
 */
import { type Digest, digestAlgorithm, digestHex } from '../digest.ts'
import type { Descriptor, Index } from '../documents/schemas.ts'
import { NotFoundError, OcikitError } from '../errors.ts'

/** The annotation that holds a tag in `index.json`. */
export const REF_NAME = 'org.opencontainers.image.ref.name'

/** Which entry: a tag, a digest, or (neither) the only one. */
export interface IndexRef {
  readonly tag?: string | undefined
  readonly digest?: Digest | undefined
}

/** The tag of an `index.json` entry, if it has one. */
export function tagOf(d: Descriptor): string | undefined {
  return d.annotations?.[REF_NAME]
}

/** The tags of an index, for messages (`none` when it has none). */
export function tagList(index: Index): string {
  const tags = index.manifests.map(tagOf).filter((t): t is string => t !== undefined)
  return tags.length > 0 ? tags.join(', ') : 'none'
}

/** `index` with `desc` added: a tagged entry replaces any entry holding that tag; an untagged one is added once. */
export function addEntry(index: Index, desc: Descriptor): Index {
  const tag = tagOf(desc)
  const others = index.manifests.filter((m) => (tag === undefined ? !(m.digest === desc.digest && tagOf(m) === undefined) : tagOf(m) !== tag))
  return { ...index, manifests: [...others, desc] }
}

/**
 * The entry `ref` names in `index` (the last one holding a tag; the one listed with a digest; the
 * only one when neither is given). A digest not listed goes to `unlisted` (a manifest reachable
 * only through an index), which returns its descriptor or undefined. MANIFEST_UNKNOWN or
 * AMBIGUOUS_REFERENCE, naming `where` and the tags, otherwise.
 */
export async function findInIndex(index: Index, ref: IndexRef, where: string, unlisted: (d: Digest) => Promise<Descriptor | undefined>): Promise<Descriptor> {
  if (ref.tag !== undefined) {
    const hit = index.manifests.filter((m) => tagOf(m) === ref.tag).at(-1)
    if (!hit) throw new NotFoundError('MANIFEST_UNKNOWN', `${where}: no tag '${ref.tag}' (tags: ${tagList(index)})`)
    return hit
  }
  if (ref.digest !== undefined) {
    const listed = index.manifests.find((m) => m.digest === ref.digest) ?? (await unlisted(ref.digest))
    if (!listed) throw new NotFoundError('MANIFEST_UNKNOWN', `${where}: no manifest ${ref.digest}`)
    return listed
  }
  if (index.manifests.length === 1) return index.manifests[0] as Descriptor
  if (index.manifests.length === 0) throw new NotFoundError('MANIFEST_UNKNOWN', `${where}: it holds no images`)
  throw new OcikitError(
    'AMBIGUOUS_REFERENCE',
    `${where}: it holds ${index.manifests.length} images; name one with ${where}:TAG or @DIGEST (tags: ${tagList(index)})`,
  )
}

/** Where a blob lies in an OCI layout. */
export function blobEntryName(digest: Digest): string {
  return `blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`
}
