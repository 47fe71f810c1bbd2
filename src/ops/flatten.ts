/**
 * `flatten`: an image as one layer, the merged tree that unpacking its layers gives (every
 * whiteout applied, hardlinks, modes, owners and times kept: `exportImage`'s tar, compressed).
 */
import type { Compression } from '../documents/media-types.ts'
import { isoTime, resolveTimestamp, type Timestamp } from '../documents/time.ts'
import { assembleImage, layersFor } from '../image/mutate.ts'
import type { Image } from '../image/types.ts'
import { EntriesLayer, encodeTar } from '../layer/encode.ts'
import { exportImage } from '../layer/export.ts'

/** Options of {@link flatten}. */
export interface FlattenOptions {
  /** Of the one layer (default gzip). */
  compression?: Compression | undefined
  level?: number | undefined
  /** The time of the history entry and `created`, by the layer rules. */
  timestamp?: Timestamp | undefined
  signal?: AbortSignal | undefined
}

/** `img` with its layers merged into one; `rootfs.diff_ids` and the history say so. */
export async function flatten(img: Image, o: FlattenOptions = {}): Promise<Image> {
  const before = (await img.layers()).length
  const layer = new EntriesLayer((sink, eo) => encodeTar(exportImage(img, { signal: o.signal }), sink, eo), {
    compression: o.compression ?? 'gzip',
    level: o.level,
  })
  const config = await img.config()
  const created = isoTime(resolveTimestamp(o.timestamp))
  config.created = created
  config.history = [{ created, created_by: 'ocikit flatten', comment: `${before} layer(s) merged into one` }]
  const mediaType = await img.mediaType()
  return assembleImage(mediaType, config, layersFor(mediaType, [layer]), (await img.manifest()).annotations)
}
