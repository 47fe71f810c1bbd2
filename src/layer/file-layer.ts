/** A prebuilt layer file (a tar, gzip or zstd) as a layer: digest and diffID learnt in one pass, every entry read. */
import { createReadStream } from 'node:fs'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { decompressor } from '../compress.ts'
import { type Digest, DigestingStream, verifyingStream } from '../digest.ts'
import { ociLayerType } from '../documents/media-types.ts'
import { OcikitError } from '../errors.ts'
import type { IoOptions, Layer } from '../image/types.ts'
import { chain } from '../streams.ts'
import { fileCompression, listTar } from './read.ts'

/**
 * The layer a tar file holds (its compression found from its first bytes). One pass hashes the
 * file (digest) and its uncompressed tar (diffID), a second reads every entry, so a file that is not a
 * tar, or whose compressed data is cut, is INVALID_LAYER naming it; when `diffId` is given, a
 * tar with another is DIGEST_MISMATCH. Later reads are verified against both digests.
 */
export async function layerFromTarFile(file: string, o: { diffId?: Digest | undefined; signal?: AbortSignal | undefined } = {}): Promise<Layer> {
  const compression = await fileCompression(file)
  const blob = new DigestingStream()
  const diff = new DigestingStream()
  try {
    await pipeline(createReadStream(file), blob, decompressor(compression), diff, new Writable({ write: (_c, _e, cb) => cb() }), { signal: o.signal })
    // A second read lists every entry: the tar is well formed (the page cache serves it).
    for await (const _ of listTar(chain(createReadStream(file), decompressor(compression)), file)) {
      /* each entry read */
    }
  } catch (e) {
    if (e instanceof OcikitError) throw e
    throw new OcikitError('INVALID_LAYER', `${file} is not a valid ${compression === 'none' ? 'tar' : `${compression} tar`} layer: ${(e as Error).message}`, {
      cause: e,
    })
  }
  if (o.diffId && o.diffId !== diff.digest) throw new OcikitError('DIGEST_MISMATCH', `${file}: its tar is ${diff.digest}, not ${o.diffId}`)
  const info = { digest: blob.digest, size: blob.size, diffId: diff.digest }
  return {
    mediaType: ociLayerType(compression),
    digest: async () => info.digest,
    diffId: async () => info.diffId,
    size: async () => info.size,
    compressed: async (io?: IoOptions) => chain(createReadStream(file, { signal: io?.signal }), verifyingStream(info, `layer file ${file}`)),
    uncompressed: async (io?: IoOptions) =>
      chain(
        createReadStream(file, { signal: io?.signal }),
        verifyingStream(info, `layer file ${file}`),
        decompressor(compression),
        verifyingStream({ digest: info.diffId }, `layer file ${file} (uncompressed)`),
      ),
  }
}
