/**
 * Indexes derived from another: the same entries, some children replaced by changed views
 * (converted, mutated, rebased...). Lazy like every view: nothing is written until a store does.
 */
import { type Digest, digestOf } from '../digest.ts'
import { canonicalJson } from '../documents/canonical.ts'
import { isIndexType, isManifestType, MediaType } from '../documents/media-types.ts'
import type { Descriptor, Index } from '../documents/schemas.ts'
import { MAX_INDEX_DEPTH } from '../documents/validate.ts'
import { NotFoundError, OcikitError } from '../errors.ts'
import type { Image, ImageIndex, ImageOrIndex } from './types.ts'

/** An index document over views: changed children from `children`, the others from `base`. */
class DerivedIndex implements ImageIndex {
  readonly kind = 'index' as const
  readonly #raw: Uint8Array
  readonly #index: Index
  readonly #children: Map<string, ImageOrIndex>
  readonly #base: ImageIndex | undefined
  constructor(index: Index, children: Map<string, ImageOrIndex>, base: ImageIndex | undefined) {
    this.#index = index
    this.#raw = canonicalJson(index)
    this.#children = children
    this.#base = base
  }
  async mediaType() {
    return this.#index.mediaType ?? MediaType.ociIndex
  }
  async manifest() {
    return structuredClone(this.#index)
  }
  async rawManifest() {
    return new Uint8Array(this.#raw)
  }
  async digest(): Promise<Digest> {
    return digestOf(this.#raw)
  }
  #baseOf(d: Digest): ImageIndex {
    if (!this.#base) throw new NotFoundError('MANIFEST_UNKNOWN', `index ${digestOf(this.#raw)} has no view of ${d}`)
    return this.#base
  }
  #listed(d: Digest): void {
    if (!this.#index.manifests.some((m) => m.digest === d)) throw new NotFoundError('MANIFEST_UNKNOWN', `index ${digestOf(this.#raw)} has no entry ${d}`)
  }
  async image(d: Digest): Promise<Image> {
    this.#listed(d)
    const x = this.#children.get(d)
    if (!x) return this.#baseOf(d).image(d)
    if (x.kind !== 'image') throw new OcikitError('INVALID_MANIFEST', `${d} is an index, not an image`)
    return x
  }
  async index(d: Digest): Promise<ImageIndex> {
    this.#listed(d)
    const x = this.#children.get(d)
    if (!x) return this.#baseOf(d).index(d)
    if (x.kind !== 'index') throw new OcikitError('INVALID_MANIFEST', `${d} is an image, not an index`)
    return x
  }
}

/** Options of {@link mapIndex}. */
export interface MapIndexOptions {
  /** The new index's media type (default: the old one's). */
  mediaType?: string | undefined
  /** Annotations to set on the new index (its own are kept). */
  annotations?: Record<string, string> | undefined
}

/**
 * `idx` with each image changed by `change` (through nested indexes too); an image for which it
 * returns the same view, or undefined, stays as it is. The same view when nothing changed. Each
 * changed entry keeps its platform and annotations, with the new digest, size and media type.
 */
export async function mapIndex(
  idx: ImageIndex,
  change: (img: Image, d: Descriptor) => Promise<Image | undefined>,
  o: MapIndexOptions = {},
  depth = 0,
): Promise<ImageIndex> {
  if (depth > MAX_INDEX_DEPTH) throw new OcikitError('INVALID_MANIFEST', `index ${await idx.digest()}: indexes nested more than ${MAX_INDEX_DEPTH} deep`)
  const m = await idx.manifest()
  let changed = (o.mediaType !== undefined && o.mediaType !== (await idx.mediaType())) || o.annotations !== undefined
  const children = new Map<string, ImageOrIndex>()
  const manifests: Descriptor[] = []
  for (const d of m.manifests) {
    let child: ImageOrIndex | undefined
    if (isManifestType(d.mediaType)) {
      const img = await idx.image(d.digest)
      const next = await change(img, d)
      child = next === img ? undefined : next
    } else if (isIndexType(d.mediaType)) {
      const inner = await idx.index(d.digest)
      const next = await mapIndex(inner, change, { mediaType: o.mediaType }, depth + 1)
      child = next === inner ? undefined : next
    }
    if (!child) {
      manifests.push(d)
      continue
    }
    const digest = await child.digest()
    if (digest !== d.digest) changed = true
    children.set(digest, child)
    manifests.push({ ...d, mediaType: await child.mediaType(), digest, size: (await child.rawManifest()).length })
  }
  if (!changed) return idx
  const annotations = o.annotations ? { ...m.annotations, ...o.annotations } : m.annotations
  return new DerivedIndex({ ...m, mediaType: o.mediaType ?? m.mediaType, manifests, ...(annotations ? { annotations } : {}) }, children, idx)
}

/** One child of an assembled index. */
export interface IndexChild {
  image: Image
  platform?: Descriptor['platform']
  annotations?: Record<string, string> | undefined
}

/** A new index over `children` (in that order), of `mediaType` (default OCI), with `annotations`. */
export async function assembleIndex(children: readonly IndexChild[], o: MapIndexOptions = {}): Promise<ImageIndex> {
  const views = new Map<string, ImageOrIndex>()
  const manifests: Descriptor[] = []
  for (const c of children) {
    const digest = await c.image.digest()
    views.set(digest, c.image)
    manifests.push({
      mediaType: await c.image.mediaType(),
      digest,
      size: (await c.image.rawManifest()).length,
      ...(c.platform ? { platform: c.platform } : {}),
      ...(c.annotations && Object.keys(c.annotations).length > 0 ? { annotations: c.annotations } : {}),
    })
  }
  const mediaType = o.mediaType ?? MediaType.ociIndex
  const annotations = o.annotations && Object.keys(o.annotations).length > 0 ? { annotations: o.annotations } : {}
  return new DerivedIndex({ schemaVersion: 2, mediaType, manifests, ...annotations }, views, undefined)
}
