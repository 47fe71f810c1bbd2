/** Media types of the OCI image spec (1.1) and of Docker's image manifest v2 schema 2. */
export const MediaType = {
  // OCI
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayoutHeader: 'application/vnd.oci.layout.header.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  // Docker v2 schema 2
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerManifestV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerManifestV1: 'application/vnd.docker.distribution.manifest.v1+json',
} as const

/** A media type string; known values are in {@link MediaType}. */
export type MediaTypeString = string

/** The compression of a layer blob. */
export type Compression = 'gzip' | 'zstd' | 'none'

const MANIFEST_TYPES = new Set<string>([MediaType.ociManifest, MediaType.dockerManifest])
const INDEX_TYPES = new Set<string>([MediaType.ociIndex, MediaType.dockerManifestList])

/** True for an image manifest media type (OCI or Docker v2). */
export function isManifestType(mt: string | undefined): boolean {
  return mt !== undefined && MANIFEST_TYPES.has(mt)
}

/** True for a container image config media type (OCI or Docker v2); other configs belong to artifacts. */
export function isImageConfigType(mt: string | undefined): boolean {
  return mt === MediaType.ociConfig || mt === MediaType.dockerConfig
}

/** True for an index / manifest list media type (OCI or Docker v2). */
export function isIndexType(mt: string | undefined): boolean {
  return mt !== undefined && INDEX_TYPES.has(mt)
}

/** True for a layer media type ocikit can read as a tar stream (any compression, distributable or not). */
export function isLayerType(mt: string): boolean {
  return layerCompression(mt) !== undefined
}

/** True for layer types that registries need not hold (OCI non-distributable, Docker foreign). */
export function isNondistributableType(mt: string): boolean {
  return mt.includes('.nondistributable.') || mt.includes('.foreign.')
}

/** The compression of a layer media type, or undefined if it is not a layer type ocikit knows. */
export function layerCompression(mt: string): Compression | undefined {
  switch (mt) {
    case MediaType.ociLayer:
    case MediaType.ociLayerNondistributable:
    case 'application/vnd.docker.image.rootfs.diff.tar':
      return 'none'
    case MediaType.ociLayerGzip:
    case MediaType.ociLayerNondistributableGzip:
    case MediaType.dockerLayerGzip:
    case MediaType.dockerForeignLayerGzip:
      return 'gzip'
    case MediaType.ociLayerZstd:
    case MediaType.ociLayerNondistributableZstd:
    case MediaType.dockerLayerZstd:
      return 'zstd'
    default:
      return undefined
  }
}

/** The OCI layer media type for a compression. */
export function ociLayerType(c: Compression): string {
  return c === 'gzip' ? MediaType.ociLayerGzip : c === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer
}
