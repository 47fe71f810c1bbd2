/** Compression streams for layer blobs: gzip, zstd (Node's built-in) or none. */
import { PassThrough, type Transform } from 'node:stream'
import zlib from 'node:zlib'
import { NotSupportedError } from '../errors.ts'
import { type Compression, layerCompression } from '../spec/media-types.ts'

/** A stream that decompresses a blob of the given compression. */
export function decompressor(c: Compression): Transform {
  switch (c) {
    case 'gzip':
      return zlib.createGunzip()
    case 'zstd':
      return zlib.createZstdDecompress()
    case 'none':
      return new PassThrough()
  }
}

/** The compression of a layer media type; throws UNSUPPORTED_MEDIA_TYPE-like NOT_SUPPORTED for others. */
export function compressionOf(mediaType: string): Compression {
  const c = layerCompression(mediaType)
  if (c === undefined) throw new NotSupportedError(`layer media type '${mediaType}' is not a tar layer ocikit can read`)
  return c
}
