/**
 * Layer compression and decompression: gzip compressed in parallel across cores into one standard gzip stream,
 * zstd compressed in parallel as independent frames, or none.
 *
 * Parallel gzip is written here because no maintained npm package does it with Node's own zlib:
 * the input is cut into fixed 1 MiB blocks, each block is raw-deflated on libuv's thread pool
 * with the previous block's last 32 KiB as its dictionary (as pigz does, so the ratio matches a
 * single stream), ended with a sync flush so the pieces concatenate into one deflate stream,
 * and wrapped in one gzip header and trailer (CRC-32 of everything, length mod 2^32). The block
 * boundaries do not depend on the number of cores, so the output bytes are the same on any
 * machine. `bench/layer.ts` measures it against single-threaded gzip.
 */
import os from 'node:os'
import { PassThrough, Transform, type TransformCallback } from 'node:stream'
import { promisify } from 'node:util'
import type zlibTypes from 'node:zlib'
import { releaseChunk } from './buffer-pool.ts'
import { type Compression, layerCompression } from './documents/media-types.ts'
import { NotSupportedError, OcikitError } from './errors.ts'

// node:zlib is loaded on first use: it costs every CLI start some 10 ms, and most commands never compress.
const zlib = (): typeof zlibTypes => process.getBuiltinModule('node:zlib')
let oneShot:
  | { deflateRaw: (b: Buffer, o: zlibTypes.ZlibOptions) => Promise<Buffer>; zstd: (b: Buffer, o: zlibTypes.ZstdOptions) => Promise<Buffer> }
  | undefined
function compressors(): NonNullable<typeof oneShot> {
  oneShot ??= { deflateRaw: promisify(zlib().deflateRaw), zstd: promisify(zlib().zstdCompress) } as NonNullable<typeof oneShot>
  return oneShot
}

/** Size of the blocks compressed independently. */
const GZIP_BLOCK = 1 << 20
const ZSTD_BLOCK = 2 << 20
const DICT = 32 << 10
/** Output chunk of the one-shot compressors (Node's default is 16 KiB). */
const OUTPUT_CHUNK = 1 << 20
/** gzip output per 1 MiB block is smaller; a smaller chunk holds less memory per block in flight. */
const GZIP_OUTPUT_CHUNK = 512 << 10

/** The size of the blocks a compression works in: a tar cut in chunks of this size is compressed without copying. */
export function compressionBlockSize(c: Compression): number {
  return c === 'zstd' ? ZSTD_BLOCK : GZIP_BLOCK
}

/** Options of a compressor. */
export interface CompressOptions {
  /** gzip 1-9 (default 4); zstd 1-19 (default 3). */
  level?: number | undefined
  /** Blocks compressed at once (default: cores + 1). 1 still uses the block format. */
  concurrency?: number | undefined
}

/**
 * Default level for a compression: zstd 3 (zstd's own default); gzip 4, the fastest zlib level
 * whose output stays within 1% of umoci's on the bench tree (level 6 is 12% smaller and 65%
 * slower; see docs/performance.md).
 */
export function defaultLevel(c: Compression): number {
  return c === 'zstd' ? 3 : 4
}

function checkLevel(c: Compression, level: number): void {
  const [lo, hi] = c === 'zstd' ? [1, 19] : [1, 9]
  if (!Number.isInteger(level) || level < lo || level > hi) {
    throw new OcikitError('INVALID_ARGUMENT', `${c} level must be an integer from ${lo} to ${hi}, got ${level}`)
  }
}

/** A Transform that compresses fixed-size blocks on the thread pool and emits them in order. */
abstract class BlockCompressor extends Transform {
  readonly #blockSize: number
  readonly #concurrency: number
  #parts: Buffer[] = []
  #partsLength = 0
  #queue: Promise<Buffer>[] = []
  constructor(blockSize: number, concurrency: number) {
    super({ highWaterMark: 256 << 10 })
    this.#blockSize = blockSize
    this.#concurrency = Math.max(1, concurrency)
  }
  protected abstract compressBlock(block: Buffer, last: boolean): Promise<Buffer>
  protected abstract header(): Buffer | undefined
  protected abstract trailer(): Buffer | undefined
  protected abstract observe(block: Buffer): void
  #started = false

  async #submit(block: Buffer, last: boolean, owned: Buffer[]): Promise<void> {
    if (!this.#started) {
      this.#started = true
      const h = this.header()
      if (h) this.push(h)
    }
    this.observe(block)
    const done = this.compressBlock(block, last)
    // A tar slab goes back to its pool once the thread pool has compressed it. The handler also
    // keeps a block that fails while an earlier one is awaited from counting as unhandled: the
    // failure surfaces when this block's turn comes below.
    done.then(
      () => owned.forEach(releaseChunk),
      () => {},
    )
    this.#queue.push(done)
    while (this.#queue.length >= this.#concurrency) this.push(await (this.#queue.shift() as Promise<Buffer>))
  }

  /** The collected parts as one buffer (copied, so the parts can be given back). */
  #joinParts(): Buffer {
    const all = Buffer.concat(this.#parts, this.#partsLength)
    for (const p of this.#parts) releaseChunk(p)
    this.#parts = []
    this.#partsLength = 0
    return all
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    // A chunk that is exactly one block (tar-write's slabs are) is compressed where it lies.
    if (this.#partsLength === 0 && chunk.length === this.#blockSize) {
      this.#submit(chunk, false, [chunk]).then(() => cb(), cb)
      return
    }
    this.#parts.push(chunk)
    this.#partsLength += chunk.length
    if (this.#partsLength < this.#blockSize) {
      cb()
      return
    }
    const all = this.#joinParts()
    const run = async () => {
      let off = 0
      while (all.length - off >= this.#blockSize) {
        await this.#submit(all.subarray(off, off + this.#blockSize), false, [])
        off += this.#blockSize
      }
      if (off < all.length) {
        this.#parts.push(all.subarray(off))
        this.#partsLength = all.length - off
      }
    }
    run().then(() => cb(), cb)
  }

  override _flush(cb: TransformCallback): void {
    const run = async () => {
      await this.#submit(this.#joinParts(), true, [])
      for (const p of this.#queue.splice(0)) this.push(await p)
      const t = this.trailer()
      if (t) this.push(t)
    }
    run().then(() => cb(), cb)
  }
}

/**
 * Windows of this size whose bytes look random are stored instead of deflated. Compressed
 * media, archives (a Java app's jars) and encrypted files gain nothing from deflate, which
 * spends more time on such data than on text (about 31 ms per MiB at level 4 here, against
 * 1 ms to store it); the bench tree's 15 MB of random binaries took up to a fifth of the deflate time.
 * The decision depends on the bytes alone, so the output stays the same on any machine.
 */
const STORE_WINDOW = 64 << 10
/** Bits per byte, estimated from every 8th byte; random data shows about 7.98, text 4-6, machine code 6-7. */
const STORE_ENTROPY = 7.9
const histogram = new Uint32Array(256)

/** True when the sampled byte entropy of `b` says deflate cannot shrink it. */
export function looksIncompressible(b: Uint8Array): boolean {
  if (b.length < 4096) return false
  histogram.fill(0)
  let n = 0
  for (let i = 0; i < b.length; i += 8) {
    histogram[b[i] as number] = (histogram[b[i] as number] as number) + 1
    n++
  }
  let bits = 0
  for (const c of histogram) {
    if (c === 0) continue
    const p = c / n
    bits -= p * Math.log2(p)
  }
  return bits > STORE_ENTROPY
}

/** A block cut into runs of windows that are deflated or stored; at least one segment, even for an empty block. */
function storedSegments(block: Buffer): { start: number; end: number; stored: boolean }[] {
  const out: { start: number; end: number; stored: boolean }[] = []
  for (let start = 0; start < block.length; start += STORE_WINDOW) {
    const end = Math.min(block.length, start + STORE_WINDOW)
    const stored = looksIncompressible(block.subarray(start, end))
    const prev = out[out.length - 1]
    if (prev?.stored === stored) prev.end = end
    else out.push({ start, end, stored })
  }
  return out.length ? out : [{ start: 0, end: 0, stored: false }]
}

/** The last 32 KiB of `before` followed by `head`. */
function tail(before: Buffer | undefined, head: Buffer): Buffer {
  const all = before ? Buffer.concat([before, head]) : head
  return all.subarray(Math.max(0, all.length - DICT))
}

class ParallelGzip extends BlockCompressor {
  readonly #level: number
  #crc = 0
  #length = 0
  #dict: Buffer | undefined
  constructor(level: number, concurrency: number) {
    super(GZIP_BLOCK, concurrency)
    this.#level = level
  }
  protected header(): Buffer {
    // magic, deflate, no flags, mtime 0, extra flags by level, OS 3 (Unix): fixed so digests are stable.
    const xfl = this.#level === 9 ? 2 : this.#level === 1 ? 4 : 0
    return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3])
  }
  protected observe(block: Buffer): void {
    this.#crc = zlib().crc32(block, this.#crc)
    this.#length = (this.#length + block.length) % 2 ** 32
  }
  protected compressBlock(block: Buffer, last: boolean): Promise<Buffer> {
    const before = this.#dict
    // Copy: the block may be a view of a buffer that is reused after this call.
    this.#dict = Buffer.from(block.subarray(Math.max(0, block.length - DICT)))
    return this.#deflateSegments(block, last, before)
  }
  /** The block's segments deflated one after the other, each with the 32 KiB before it as its dictionary. */
  async #deflateSegments(block: Buffer, last: boolean, before: Buffer | undefined): Promise<Buffer> {
    const z = zlib()
    const segments = storedSegments(block)
    const out: Buffer[] = []
    for (const [i, g] of segments.entries()) {
      // An output chunk as large as the block: one trip to the thread pool per segment instead of
      // one per 16 KiB of output, each of which costs the main thread a callback.
      const opts: zlibTypes.ZlibOptions = {
        level: g.stored ? 0 : this.#level,
        finishFlush: last && i === segments.length - 1 ? z.constants.Z_FINISH : z.constants.Z_SYNC_FLUSH,
        chunkSize: GZIP_OUTPUT_CHUNK,
      }
      const dictionary = g.start === 0 ? before : g.start >= DICT ? block.subarray(g.start - DICT, g.start) : tail(before, block.subarray(0, g.start))
      if (dictionary) opts.dictionary = dictionary
      out.push(await compressors().deflateRaw(block.subarray(g.start, g.end), opts))
    }
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out)
  }
  protected trailer(): Buffer {
    const t = Buffer.alloc(8)
    t.writeUInt32LE(this.#crc >>> 0, 0)
    t.writeUInt32LE(this.#length >>> 0, 4)
    return t
  }
}

class ParallelZstd extends BlockCompressor {
  readonly #level: number
  constructor(level: number, concurrency: number) {
    super(ZSTD_BLOCK, concurrency)
    this.#level = level
  }
  protected header(): undefined {
    return undefined
  }
  protected trailer(): undefined {
    return undefined
  }
  protected observe(): void {}
  protected compressBlock(block: Buffer, last: boolean): Promise<Buffer> {
    // An empty final block adds nothing when earlier frames exist; an empty stream still needs one frame.
    if (last && block.length === 0 && this.#frames > 0) return Promise.resolve(Buffer.alloc(0))
    this.#frames++
    const z = zlib()
    return compressors().zstd(block, {
      chunkSize: OUTPUT_CHUNK,
      params: { [z.constants.ZSTD_c_compressionLevel]: this.#level, [z.constants.ZSTD_c_checksumFlag]: 1 },
      pledgedSrcSize: block.length,
    } as zlibTypes.ZstdOptions)
  }
  #frames = 0
}

/** A stream that compresses with `c`; the same input always gives the same output bytes. */
export function compressor(c: Compression, o: CompressOptions = {}): Transform {
  const concurrency = o.concurrency ?? os.availableParallelism() + 1
  if (c === 'none') return new PassThrough()
  const level = o.level ?? defaultLevel(c)
  checkLevel(c, level)
  return c === 'gzip' ? new ParallelGzip(level, concurrency) : new ParallelZstd(level, concurrency)
}

/** A stream that decompresses a blob of the given compression. */
export function decompressor(c: Compression): Transform {
  switch (c) {
    case 'gzip':
      return zlib().createGunzip()
    case 'zstd':
      return zlib().createZstdDecompress()
    case 'none':
      return new PassThrough()
  }
}

/** The compression of a layer media type; NOT_SUPPORTED for media types that are not tar layers. */
export function compressionOf(mediaType: string): Compression {
  const c = layerCompression(mediaType)
  if (c === undefined) throw new NotSupportedError(`layer media type '${mediaType}' is not a tar layer ocikit can read`)
  return c
}
