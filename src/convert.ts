/**
 * Converting images between manifest formats (OCI, Docker v2 schema 2) and layer compressions
 * (gzip, zstd), for copy engines whose destination wants something else. When nothing needs to
 * change, the original view is returned, so digests stay identical.
 */
import { type Compression, isNondistributableType, layerCompression, MediaType } from './documents/media-types.ts'
import { NotSupportedError } from './errors.ts'
import { mapIndex } from './image/derived-index.ts'
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

/** An index with every child converted; the same view when nothing changes. */
export async function convertIndex(idx: ImageIndex, o: ConvertOptions): Promise<ImageIndex> {
  const to = o.format ?? formatOf(await idx.mediaType())
  const mediaType = to === 'docker' ? MediaType.dockerManifestList : MediaType.ociIndex
  return mapIndex(idx, (img) => convertImage(img, o), { mediaType })
}

/** Converts an image or an index. */
export function convert(x: ImageOrIndex, o: ConvertOptions): Promise<ImageOrIndex> {
  return x.kind === 'image' ? convertImage(x, o) : convertIndex(x, o)
}
