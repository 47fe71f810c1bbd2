/**
 * Converting images between manifest formats (OCI, Docker v2 schema 2) and layer compressions
 * (gzip, zstd), for copy engines whose destination wants something else. When nothing needs to
 * change, the original view is returned, so digests stay identical.
 */
import { type Digest, digestOf } from './digest.ts'
import { canonicalJson } from './documents/canonical.ts'
import { type Compression, isIndexType, isManifestType, isNondistributableType, layerCompression, MediaType } from './documents/media-types.ts'
import type { Descriptor, Index } from './documents/schemas.ts'
import { MAX_INDEX_DEPTH } from './documents/validate.ts'
import { NotFoundError, NotSupportedError, OcikitError } from './errors.ts'
import { assembleImage, RetypedLayer } from './image/mutate.ts'
import type { Image, ImageIndex, ImageOrIndex, Layer } from './image/types.ts'
import { recompressLayer } from './layer/encode.ts'

/** What to convert to. Unset fields keep what the source has. */
export interface ConvertOptions {
  format?: 'oci' | 'docker' | undefined
  compression?: Exclude<Compression, 'none'> | undefined
  /** Compression level for recompressed layers. */
  level?: number | undefined
}

const LAYER_TYPE: Record<'oci' | 'docker', Record<Compression, string | undefined>> = {
  oci: { gzip: MediaType.ociLayerGzip, zstd: MediaType.ociLayerZstd, none: MediaType.ociLayer },
  docker: { gzip: MediaType.dockerLayerGzip, zstd: undefined, none: 'application/vnd.docker.image.rootfs.diff.tar' },
}

function formatOf(mediaType: string): 'oci' | 'docker' {
  return mediaType === MediaType.dockerManifest || mediaType === MediaType.dockerManifestList ? 'docker' : 'oci'
}

/** The image converted as asked; the same view when nothing changes. */
export async function convertImage(img: Image, o: ConvertOptions): Promise<Image> {
  const from = formatOf(await img.mediaType())
  const to = o.format ?? from
  const layers: Layer[] = []
  let changed = from !== to
  for (const l of await img.layers()) {
    const c = layerCompression(l.mediaType)
    if (c === undefined || isNondistributableType(l.mediaType)) {
      layers.push(l) // not a layer we can recompress (an artifact blob, a foreign layer): kept as is
      continue
    }
    let layer = l
    let comp = c
    if (o.compression && c !== o.compression) {
      layer = recompressLayer(l, { compression: o.compression, level: o.level })
      comp = o.compression
      changed = true
    }
    const type = LAYER_TYPE[to][comp]
    if (!type) throw new NotSupportedError(`a ${comp} layer cannot go into a Docker v2 manifest; use --format oci or --compression gzip`)
    layers.push(type === layer.mediaType ? layer : new RetypedLayer(layer, type))
  }
  if (!changed) return img
  const manifest = await img.manifest()
  return assembleImage(to === 'docker' ? MediaType.dockerManifest : MediaType.ociManifest, await img.config(), layers, manifest.annotations)
}

/** An index whose children are views held in memory. */
class ViewIndex implements ImageIndex {
  readonly kind = 'index' as const
  readonly #raw: Uint8Array
  readonly #index: Index
  readonly #children: Map<string, ImageOrIndex>
  constructor(index: Index, children: Map<string, ImageOrIndex>) {
    this.#index = index
    this.#raw = canonicalJson(index)
    this.#children = children
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
  async image(d: Digest): Promise<Image> {
    const x = this.#children.get(d)
    if (x?.kind !== 'image') throw new NotFoundError('MANIFEST_UNKNOWN', `converted index has no image ${d}`)
    return x
  }
  async index(d: Digest): Promise<ImageIndex> {
    const x = this.#children.get(d)
    if (x?.kind !== 'index') throw new NotFoundError('MANIFEST_UNKNOWN', `converted index has no index ${d}`)
    return x
  }
}

/** An index with every child converted; the same view when nothing changes. */
export async function convertIndex(idx: ImageIndex, o: ConvertOptions, depth = 0): Promise<ImageIndex> {
  const m = await idx.manifest()
  const from = formatOf(await idx.mediaType())
  const to = o.format ?? from
  let changed = from !== to
  const children = new Map<string, ImageOrIndex>()
  const manifests: Descriptor[] = []
  if (depth > MAX_INDEX_DEPTH) throw new OcikitError('INVALID_MANIFEST', `index ${await idx.digest()}: indexes nested more than ${MAX_INDEX_DEPTH} deep`)
  for (const d of m.manifests) {
    let child: ImageOrIndex | undefined
    if (isManifestType(d.mediaType)) child = await convertImage(await idx.image(d.digest), o)
    else if (isIndexType(d.mediaType)) child = await convertIndex(await idx.index(d.digest), o, depth + 1)
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
  const mediaType = to === 'docker' ? MediaType.dockerManifestList : MediaType.ociIndex
  return new ViewIndex({ ...m, mediaType, manifests }, children)
}

/** Converts an image or an index. */
export function convert(x: ImageOrIndex, o: ConvertOptions): Promise<ImageOrIndex> {
  return x.kind === 'image' ? convertImage(x, o) : convertIndex(x, o)
}
