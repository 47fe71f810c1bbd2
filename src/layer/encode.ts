/**
 * Making layers in one pass: entries → tar → (hash diffID) → compress → (hash digest) → sink.
 * The diffID, the digest and both sizes come from the pass that writes the blob.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream, rmSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { compressionBlockSize, compressor, decompressor } from '../compress.ts'
import { type Digest, DigestingStream, verifyingStream } from '../digest.ts'
import { type Compression, ociLayerType } from '../documents/media-types.ts'
import { resolveTimestamp, type Timestamp } from '../documents/time.ts'
import type { IoOptions, Layer, Progress } from '../image/types.ts'
import { chain, TeeStream } from '../streams.ts'
import { createTempFile, writeFileVia } from '../temp-file.ts'
import type { LayerEntry } from './entry.ts'
import { type DiffSourceOptions, diffEntries } from './source-diff.ts'
import { type DirectorySourceOptions, directoryEntries } from './source-directory.ts'
import { type FileMapOptions, type FileSpec, fileMapEntries } from './source-files.ts'
import { tarEntries } from './tar-write.ts'

/** How a layer is encoded. */
export interface EncodeOptions {
  /** Default gzip. */
  compression?: Compression | undefined
  /** Compression level (gzip 1-9, default 4; zstd 1-19, default 3). */
  level?: number | undefined
  /**
   * Timestamp of every entry: seconds since the epoch, a Date, or an ISO 8601 string.
   * Default: `$SOURCE_DATE_EPOCH` if set, else 0 (1970-01-01).
   */
  timestamp?: Timestamp | undefined
  /** Blocks compressed at once (default: cores + 1). */
  concurrency?: number | undefined
  signal?: AbortSignal | undefined
  /** Called about five times a second with the uncompressed bytes packed so far. */
  onProgress?: ((p: Progress) => void) | undefined
  /**
   * A second destination of the blob's bytes as they are made (see {@link TeeStream}): it gets
   * every byte the sink gets, ends with it, and its failure does not fail the encoding.
   */
  copyTo?: Writable | undefined
}

/** What encoding a layer produced. */
export interface LayerInfo {
  mediaType: string
  /** Digest of the blob (compressed). */
  digest: Digest
  /** Digest of the uncompressed tar. */
  diffId: Digest
  /** Bytes of the blob. */
  size: number
  /** Bytes of the uncompressed tar. */
  uncompressedSize: number
  /** Entries in the tar. */
  entries: number
  /** True when the layer holds no entries (for a diff: nothing changed). */
  empty: boolean
}

/**
 * Encodes entries into `sink` in one pass and returns what was written. Nothing is buffered
 * beyond the compressor's blocks in flight.
 */
export async function encodeLayer(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>, sink: Writable, o: EncodeOptions = {}): Promise<LayerInfo> {
  const tar = tarEntries(entries, resolveTimestamp(o.timestamp), { slabSize: compressionBlockSize(o.compression ?? 'gzip') })
  const info = await encodeTar(tar.stream, sink, o)
  const { entries: n } = await tar.stats
  return { ...info, entries: n, empty: n === 0 }
}

/**
 * Compresses an uncompressed tar stream into `sink` in one pass, hashing both sides. `entries`
 * is -1 (not counted) and `empty` false in the result.
 */
export async function encodeTar(tar: Readable, sink: Writable, o: EncodeOptions = {}): Promise<LayerInfo> {
  const compression = o.compression ?? 'gzip'
  const z = compressor(compression, { level: o.level, concurrency: o.concurrency })
  const diff = new DigestingStream()
  // Uncompressed: the blob is the tar, so one hash serves as both digest and diffID.
  const blob = compression === 'none' ? diff : new DigestingStream()
  const timer = o.onProgress ? setInterval(() => o.onProgress?.({ id: 'layer', done: diff.size }), 200) : undefined
  try {
    const steps: NodeJS.ReadWriteStream[] = compression === 'none' ? [diff] : [diff, z, blob]
    if (o.copyTo) steps.push(new TeeStream(o.copyTo))
    await pipeline([tar, ...steps, sink], { signal: o.signal })
  } finally {
    clearInterval(timer)
  }
  o.onProgress?.({ id: 'layer', done: diff.size })
  return {
    mediaType: ociLayerType(compression),
    digest: blob.digest,
    diffId: diff.digest,
    size: blob.size,
    uncompressedSize: diff.size,
    entries: -1,
    empty: false,
  }
}

/** Encodes entries into a file: written to a temp file beside it and renamed when complete. */
export function writeLayerFile(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>, file: string, o: EncodeOptions = {}): Promise<LayerInfo> {
  return writeFileVia(file, (stream) => encodeLayer(entries, stream, o))
}

const staged = new Set<string>()
process.once('exit', () => {
  for (const f of staged) rmSync(f, { force: true })
})

/**
 * A layer made from entries. It is encoded once, on first need, into a staging file (in
 * `stagingDir`, default the OS temp dir) that later reads stream from, verified; the staging
 * file is removed by {@link EntriesLayer.dispose} or when the process exits.
 */
export class EntriesLayer implements Layer {
  readonly mediaType: string
  readonly #encode: (sink: Writable, o: EncodeOptions) => Promise<LayerInfo>
  readonly #o: EncodeOptions & { stagingDir?: string | undefined }
  #staged: Promise<{ file: string; info: LayerInfo }> | undefined
  /** `encode` writes the layer blob into a sink in one pass; it runs once, on first need. */
  constructor(encode: (sink: Writable, o: EncodeOptions) => Promise<LayerInfo>, o: EncodeOptions & { stagingDir?: string | undefined } = {}) {
    this.#encode = encode
    this.#o = { ...o, timestamp: resolveTimestamp(o.timestamp) }
    this.mediaType = ociLayerType(o.compression ?? 'gzip')
  }
  #stage(): Promise<{ file: string; info: LayerInfo }> {
    if (!this.#staged) {
      this.#staged = (async () => {
        const dir = this.#o.stagingDir ?? os.tmpdir()
        const file = path.join(dir, `ocikit-layer-${randomBytes(8).toString('hex')}`)
        staged.add(file)
        const tmp = await createTempFile(file)
        try {
          const info = await this.#encode(tmp.stream, this.#o)
          return { file, info }
        } catch (e) {
          staged.delete(file)
          await tmp.discard()
          throw e
        }
      })()
      this.#staged.catch(() => {
        this.#staged = undefined
      })
    }
    return this.#staged
  }
  /** Everything encoding found: digests, sizes, entry count, emptiness. */
  async info(): Promise<LayerInfo> {
    return { ...(await this.#stage()).info }
  }
  async digest(): Promise<Digest> {
    return (await this.#stage()).info.digest
  }
  async diffId(): Promise<Digest> {
    return (await this.#stage()).info.diffId
  }
  async size(): Promise<number> {
    return (await this.#stage()).info.size
  }
  async compressed(o?: IoOptions): Promise<Readable> {
    const { file, info } = await this.#stage()
    return chain(createReadStream(file, { highWaterMark: 1 << 20, signal: o?.signal }), verifyingStream(info, `staged layer ${info.digest}`))
  }
  async uncompressed(o?: IoOptions): Promise<Readable> {
    const info = (await this.#stage()).info
    return chain(
      await this.compressed(o),
      decompressor(this.#o.compression ?? 'gzip'),
      verifyingStream({ digest: info.diffId }, `staged layer ${info.digest} (uncompressed)`),
    )
  }
  /** Removes the staging file; the layer re-encodes if used again. */
  async dispose(): Promise<void> {
    const s = this.#staged
    this.#staged = undefined
    if (!s) return
    const { file } = await s.catch(() => ({ file: undefined }))
    if (file) {
      staged.delete(file)
      await fs.rm(file, { force: true })
    }
  }
}

/** Options of the layer constructors. */
export type LayerOptions = EncodeOptions & { stagingDir?: string | undefined }

/** A layer holding a directory tree (placed at `prefix` in the image). */
export function layerFromDirectory(dir: string, o: LayerOptions & DirectorySourceOptions = {}): EntriesLayer {
  return new EntriesLayer((sink, eo) => encodeLayer(directoryEntries(dir, o), sink, eo), o)
}

/** A layer holding a map of files (path → content, mode, or symlink target). */
export function layerFromFiles(files: Readonly<Record<string, FileSpec>>, o: LayerOptions & FileMapOptions = {}): EntriesLayer {
  const entries = fileMapEntries(files, o) // validate now, so bad input fails at the call
  return new EntriesLayer((sink, eo) => encodeLayer(entries, sink, eo), o)
}

/** A layer that turns the old tree into the new one: changes, additions and whiteouts for deletions. */
export function layerFromDiff(oldDir: string, newDir: string, o: LayerOptions & DiffSourceOptions = {}): EntriesLayer {
  return new EntriesLayer((sink, eo) => encodeLayer(diffEntries(oldDir, newDir, o), sink, eo), o)
}

/**
 * The same layer (same diffID) compressed another way: decompressed from `source`, verified,
 * and recompressed once, on first need, into a staging file.
 */
export function recompressLayer(source: Layer, o: LayerOptions & { compression: Compression }): EntriesLayer {
  return new EntriesLayer(async (sink, eo) => encodeTar(await source.uncompressed({ signal: eo.signal }), sink, eo), o)
}
