/**
 * Lazy views over any place that holds blobs. A store supplies a {@link BlobSource};
 * these views turn it into Images, Layers and ImageIndexes that read only on demand
 * and verify every byte against its digest.
 */
import type { Readable } from 'node:stream'
import { compressionOf, decompressor } from '../compress.ts'
import { type Digest, isDigest, verifyingStream } from '../digest.ts'
import { isImageConfigType, isIndexType, isManifestType } from '../documents/media-types.ts'
import type { Descriptor, ImageConfig, Index, Manifest } from '../documents/schemas.ts'
import { checkManifestAgainstConfig, MAX_INDEX_DEPTH, parseImageConfig, parseManifestOrIndex } from '../documents/validate.ts'
import { NotSupportedError, OcikitError } from '../errors.ts'
import { chain } from '../streams.ts'
import type { DescribedLayer, WithSource } from './partial.ts'
import type { BlobSource, Image, ImageIndex, ImageOrIndex, IoOptions, Layer } from './types.ts'

/** A layer backed by a blob in a source. `diffId` comes from the image config. */
export class BlobLayer implements DescribedLayer, WithSource {
  readonly mediaType: string
  readonly #src: BlobSource
  readonly #desc: Descriptor
  readonly #diffId: () => Promise<Digest>
  constructor(src: BlobSource, desc: Descriptor, diffId: () => Promise<Digest>) {
    this.#src = src
    this.#desc = structuredClone(desc)
    this.mediaType = desc.mediaType
    this.#diffId = diffId
  }
  /** Where this layer's bytes come from (a {@link WithSource}: lets a registry writer mount instead of upload). */
  get source(): BlobSource {
    return this.#src
  }
  /** A copy of the descriptor this layer was made from (a {@link DescribedLayer}: keeps urls and annotations). */
  descriptor(): Descriptor {
    return structuredClone(this.#desc)
  }
  async digest(): Promise<Digest> {
    return this.#desc.digest
  }
  diffId(): Promise<Digest> {
    return this.#diffId()
  }
  async size(): Promise<number> {
    return this.#desc.size
  }
  compressed(o?: IoOptions): Promise<Readable> {
    return this.#src.openBlob(this.#desc, o)
  }
  async uncompressed(o?: IoOptions): Promise<Readable> {
    const c = compressionOf(this.mediaType)
    const blob = await this.compressed(o)
    const diffId = await this.diffId()
    return chain(blob, decompressor(c), verifyingStream({ digest: diffId }, `${this.#src.name} layer ${this.#desc.digest} (uncompressed)`))
  }
}

function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined
  return () => {
    if (!p) {
      p = f()
      p.catch(() => {
        p = undefined
      })
    }
    return p
  }
}

/** An image view over a source, given its verified manifest bytes. */
export class SourceImage implements Image, WithSource {
  readonly kind = 'image' as const
  readonly #src: BlobSource
  readonly #raw: Uint8Array
  readonly #digest: Digest
  readonly #mediaType: string
  readonly #manifest: Manifest
  /** The config's bytes, and for a container image (not an artifact) the config checked against the manifest. */
  readonly #config: () => Promise<{ raw: Uint8Array; parsed: ImageConfig | undefined }>
  constructor(src: BlobSource, raw: Uint8Array, digest: Digest, mediaType: string, manifest: Manifest) {
    this.#src = src
    this.#raw = raw
    this.#digest = digest
    this.#mediaType = mediaType
    this.#manifest = manifest
    this.#config = once(async () => {
      const raw = await src.readBlob(manifest.config)
      // An artifact (an SBOM, a signature, a Helm chart) has a config of its own type, or the
      // empty descriptor: its bytes are carried as they are, and only images have their config read.
      if (!isImageConfigType(manifest.config.mediaType)) return { raw, parsed: undefined }
      const parsed = parseImageConfig(raw, `${src.name} config ${manifest.config.digest}`)
      checkManifestAgainstConfig(manifest, parsed, `${src.name} image ${digest}`)
      return { raw, parsed }
    })
  }
  /** Where this image's blobs come from (a {@link WithSource}: lets a registry writer mount instead of upload). */
  get source(): BlobSource {
    return this.#src
  }
  async mediaType(): Promise<string> {
    return this.#mediaType
  }
  async manifest(): Promise<Manifest> {
    return structuredClone(this.#manifest)
  }
  async rawManifest(): Promise<Uint8Array> {
    return new Uint8Array(this.#raw)
  }
  async digest(): Promise<Digest> {
    return this.#digest
  }
  async config(): Promise<ImageConfig> {
    return structuredClone(this.#imageConfig(await this.#config()))
  }
  #imageConfig(c: { parsed: ImageConfig | undefined }): ImageConfig {
    if (c.parsed) return c.parsed
    const type = this.#manifest.artifactType ?? this.#manifest.config.mediaType
    throw new NotSupportedError(`${this.#src.name} image ${this.#digest} is an artifact (${type}), not a container image: it has no image config`)
  }
  async rawConfig(): Promise<Uint8Array> {
    return new Uint8Array((await this.#config()).raw)
  }
  async layers(): Promise<Layer[]> {
    return this.#manifest.layers.map(
      (d, i) =>
        new BlobLayer(this.#src, d, async () => {
          // The config was checked against the manifest: one diff ID per layer.
          return this.#imageConfig(await this.#config()).rootfs.diff_ids[i] as Digest
        }),
    )
  }
}

/** An index view over a source, given its verified manifest bytes. */
export class SourceIndex implements ImageIndex {
  readonly kind = 'index' as const
  readonly #src: BlobSource
  readonly #raw: Uint8Array
  readonly #digest: Digest
  readonly #mediaType: string
  readonly #index: Index
  constructor(src: BlobSource, raw: Uint8Array, digest: Digest, mediaType: string, index: Index) {
    this.#src = src
    this.#raw = raw
    this.#digest = digest
    this.#mediaType = mediaType
    this.#index = index
  }
  async mediaType(): Promise<string> {
    return this.#mediaType
  }
  async manifest(): Promise<Index> {
    return structuredClone(this.#index)
  }
  async rawManifest(): Promise<Uint8Array> {
    return new Uint8Array(this.#raw)
  }
  async digest(): Promise<Digest> {
    return this.#digest
  }
  #entry(d: Digest): Descriptor {
    const e = this.#index.manifests.find((m) => m.digest === d)
    if (!e) throw new OcikitError('MANIFEST_UNKNOWN', `${this.#src.name}: index ${this.#digest} has no entry ${d}`)
    return e
  }
  async image(d: Digest): Promise<Image> {
    const v = await openView(this.#src, this.#entry(d))
    if (v.kind !== 'image') throw new OcikitError('INVALID_MANIFEST', `${this.#src.name}: ${d} is an index, not an image`)
    return v
  }
  async index(d: Digest): Promise<ImageIndex> {
    const v = await openView(this.#src, this.#entry(d))
    if (v.kind !== 'index') throw new OcikitError('INVALID_MANIFEST', `${this.#src.name}: ${d} is an image, not an index`)
    return v
  }
}

/** Reads, verifies and validates the manifest a descriptor names, and returns its view. */
export async function openView(src: BlobSource, d: Descriptor, o?: IoOptions): Promise<ImageOrIndex> {
  if (!isManifestType(d.mediaType) && !isIndexType(d.mediaType)) {
    throw new OcikitError('UNSUPPORTED_MEDIA_TYPE', `${src.name}: ${d.digest} has media type '${d.mediaType}', not an image manifest or index`)
  }
  const raw = await src.readBlob(d, o)
  const p = parseManifestOrIndex(raw, `${src.name} manifest ${d.digest}`, d.mediaType)
  return p.kind === 'image' ? new SourceImage(src, raw, d.digest, p.mediaType, p.manifest) : new SourceIndex(src, raw, d.digest, p.mediaType, p.index)
}

/** What {@link eachChild} does with the children of an index. */
export interface ChildVisitor {
  image(img: Image, d: Descriptor): Promise<void>
  index(child: ImageIndex, d: Descriptor): Promise<void>
}

/**
 * Visits every child of an index that names a manifest by digest, all at the same time (the
 * writers bound their transfers themselves), so that one image's last large layer does not hold
 * up the next image's. A child of another media type is UNSUPPORTED_MEDIA_TYPE, and indexes
 * nested more than 8 deep (`depth` counts from 0 at the top) are INVALID_MANIFEST; `where`
 * names the store for those messages.
 */
export async function eachChild(idx: ImageIndex, where: string, depth: number, visit: ChildVisitor): Promise<void> {
  if (depth > MAX_INDEX_DEPTH) throw new OcikitError('INVALID_MANIFEST', `${where}: indexes nested more than ${MAX_INDEX_DEPTH} deep`)
  const m = await idx.manifest()
  await Promise.all(
    m.manifests.map(async (d) => {
      if (!isDigest(d.digest)) return
      if (isManifestType(d.mediaType)) await visit.image(await idx.image(d.digest), d)
      else if (isIndexType(d.mediaType)) await visit.index(await idx.index(d.digest), d)
      else throw new OcikitError('UNSUPPORTED_MEDIA_TYPE', `${where}: index entry ${d.digest} has media type '${d.mediaType}'; cannot copy it`)
    }),
  )
}
