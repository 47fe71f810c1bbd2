/**
 * Writing a BFC file, append-only as the format intends. A new file is written beside its name
 * and renamed into place when complete. An existing one is appended to under a lock: new objects
 * go after its footer, then a new index listing every live object (the old ones where they lie)
 * and a new footer, flushed before the footer is written; until then the old footer is the valid
 * one (a crash leaves bytes after it, which a reader skips and the next write cuts off). A path
 * written again (`index.json`) names its new object; the old one becomes dead bytes, which
 * `gc` drops by rewriting the file.
 *
 * Each object is streamed in: a header placeholder, the content (CRC32C and size counted on
 * the way, encrypted as it goes when the file is), then the header written in place. Small
 * documents may be zstd-compressed in memory, kept only when smaller (as the C writer does).
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { type Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import { NotSupportedError, OcikitError } from '../../errors.ts'
import { lockFile } from '../file-lock.ts'
import { BfcFile } from './container.ts'
import { bfcCrc } from './crc32c.ts'
import { type BfcKeySource, deriveKey, EncryptStream } from './crypto.ts'
import {
  align16,
  type BfcEntry,
  encodeFooter,
  encodeHeader,
  encodeIndex,
  encodeObjectHead,
  FEATURE_AEAD,
  FEATURE_ZSTD,
  HEADER_SIZE,
  isBfcPath,
  OBJECT_HEADER_SIZE,
  objectSize,
  S_IFDIR,
  S_IFREG,
  TYPE_DIR,
  TYPE_FILE,
} from './format.ts'

/** How to write a BFC file. */
export interface BfcWriteOptions {
  /** Where the key comes from: for a new file when `encrypt` is set, and for appending to an encrypted one. */
  key?: BfcKeySource | undefined
  /** Encrypt every file object of a new file (needs `key`). */
  encrypt?: boolean | undefined
  /** zstd-compress documents (manifests, configs, index.json) where it makes them smaller. */
  compress?: boolean | undefined
  /** zstd level for documents (default 3, as BFC's tool). */
  level?: number | undefined
}

/** A new file's name beside `target` while it is written (ocikit's temp-file pattern). */
const tempBeside = (target: string) => path.join(path.dirname(target), `.${path.basename(target)}.tmp-${randomBytes(6).toString('hex')}`)

/** Removes what killed writes left beside `target`: no live writer owns one while the caller holds the file's lock. */
async function removeDeadTemps(target: string): Promise<void> {
  const prefix = `.${path.basename(target)}.tmp-`
  for (const f of await fs.readdir(path.dirname(target)).catch(() => [] as string[])) {
    if (f.startsWith(prefix)) await fs.rm(path.join(path.dirname(target), f), { force: true })
  }
}

/** A background flush starts after every this many bytes of an object. */
const SYNC_EVERY = 8 << 20
/** Files smaller than this are never compressed (the C tool's default threshold). */
const COMPRESS_THRESHOLD = 64
/** Times of the objects ocikit writes: the layout's files carry no time of their own. */
const MTIME_NS = 0n

/** What a write is given when it begins and keeps unchanged. */
interface WriterSetup {
  readonly name: string
  /** The file's name, and the file written (the same, or a temp file beside a new one). */
  readonly target: string
  readonly file: string
  readonly fh: fs.FileHandle
  readonly isNew: boolean
  /** Where this write's first object goes: where the file's valid part ended. */
  readonly start: number
  readonly release: () => Promise<void>
  readonly o: BfcWriteOptions
  readonly entries: Map<string, BfcEntry>
  readonly key: Buffer | undefined
  readonly salt: Buffer | undefined
  readonly features: bigint
}

/** One write into a BFC file: begun, objects added, then finished or discarded. */
export class BfcWriter {
  readonly name: string
  readonly #s: WriterSetup
  #pos: number
  #features: bigint
  #done = false
  /** Background flushes started while objects stream in. */
  readonly #syncs: Promise<void>[] = []
  /** Objects are written one after another, whoever asks: each waits for the one before. */
  #queue: Promise<unknown> = Promise.resolve()

  private constructor(s: WriterSetup) {
    this.name = s.name
    this.#s = s
    this.#pos = s.start
    this.#features = s.features
  }

  /**
   * Begins a write of `file`: takes its lock; an existing file is opened (at its last valid
   * footer, cutting off what a crashed write left after it), a new one started beside it.
   */
  static async begin(file: string, name: string, o: BfcWriteOptions = {}): Promise<BfcWriter> {
    const target = path.resolve(file)
    await fs.mkdir(path.dirname(target), { recursive: true })
    const release = await lockFile(target)
    try {
      await removeDeadTemps(target)
      const exists = await fs.stat(target).then(
        () => true,
        () => false,
      )
      if (exists) {
        const old = await BfcFile.open(target, name, { key: o.key })
        if (o.encrypt && !old.encrypted)
          throw new NotSupportedError(`${name} is not encrypted, and a BFC file is encrypted or not from its start; write to a new file to encrypt`)
        const key = old.encrypted ? await old.key() : undefined
        const fh = await fs.open(target, 'r+')
        // What a write cut off before its footer left: no reader sees it, the next footer would hide it.
        if (old.recovered > 0) await fh.truncate(old.end)
        return new BfcWriter({
          name,
          target,
          file: target,
          fh,
          isNew: false,
          start: old.end,
          release,
          o,
          entries: new Map(old.entries),
          key,
          salt: undefined,
          features: old.header.features,
        })
      }
      if (o.encrypt && !o.key)
        throw new OcikitError('KEY_REQUIRED', `${name}: encrypting needs a password (OCIKIT_BFC_PASSWORD, or at the prompt) or a key file (--key-file FILE)`)
      const salt = o.encrypt && o.key && 'password' in o.key ? randomBytes(32) : Buffer.alloc(32)
      const key = o.encrypt && o.key ? await deriveKey(o.key, salt) : undefined
      const tmp = tempBeside(target)
      const fh = await fs.open(tmp, 'wx')
      await fh.write(Buffer.alloc(HEADER_SIZE), 0, HEADER_SIZE, 0)
      return new BfcWriter({
        name,
        target,
        file: tmp,
        fh,
        isNew: true,
        start: HEADER_SIZE,
        release,
        o,
        entries: new Map(),
        key,
        salt,
        features: key ? FEATURE_AEAD : 0n,
      })
    } catch (e) {
      await release().catch(() => {})
      throw e
    }
  }

  /** Whether the file holds `p` (before this write or added by it). */
  has(p: string): boolean {
    return this.#s.entries.has(p)
  }

  /** The paths the file holds. */
  paths(): string[] {
    return [...this.#s.entries.keys()]
  }

  /** Runs `f` after every object write asked for before it has ended. */
  #serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(f, f)
    this.#queue = run.catch(() => {})
    return run
  }

  /** Adds a directory entry (mode 0755) unless the file has it. */
  addDir(p: string): Promise<void> {
    return this.#serial(() => this.#addDir(p))
  }

  async #addDir(p: string): Promise<void> {
    if (this.#s.entries.has(p)) return
    this.#checkPath(p)
    const head = encodeObjectHead({ path: p, type: TYPE_DIR, mode: S_IFDIR | 0o755, mtimeNs: MTIME_NS, comp: 0, enc: 0, origSize: 0, crc: 0, encSize: 0 })
    await this.#write(head)
    this.#record({
      path: p,
      type: TYPE_DIR,
      objOffset: this.#pos - head.length,
      objSize: head.length,
      mode: S_IFDIR | 0o755,
      mtimeNs: MTIME_NS,
      comp: 0,
      enc: 0,
      origSize: 0,
      crc: 0,
    })
  }

  /** Adds (or replaces) a file from bytes in memory, zstd-compressed when asked and smaller. */
  addBytes(p: string, bytes: Uint8Array, o: { compressible?: boolean } = {}): Promise<void> {
    return this.#serial(() => this.#addBytes(p, bytes, o))
  }

  async #addBytes(p: string, bytes: Uint8Array, o: { compressible?: boolean }): Promise<void> {
    this.#checkPath(p)
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    let stored = data
    let comp = 0
    if (this.#s.o.compress && o.compressible && data.length >= COMPRESS_THRESHOLD) {
      const z = zlib.zstdCompressSync(data, { params: { [zlib.constants.ZSTD_c_compressionLevel]: this.#s.o.level ?? 3 } })
      if (z.length < data.length) {
        stored = z
        comp = 1
      }
    }
    await this.#object(p, data.length, bfcCrc(data), comp, stored)
  }

  /** Adds (or replaces) a file from a stream, never holding it whole; its CRC32C and size are counted on the way. */
  addStream(p: string, content: Readable): Promise<void> {
    return this.#serial(() => this.#addStream(p, content))
  }

  async #addStream(p: string, content: Readable): Promise<void> {
    this.#checkPath(p)
    const at = this.#pos
    await this.#write(Buffer.alloc(align16(OBJECT_HEADER_SIZE + Buffer.byteLength(p))))
    let crc = 0
    let size = 0
    let encSize = 0
    const original = new Transform({
      transform(c: Buffer, _e, cb) {
        crc = bfcCrc(c, crc)
        size += c.length
        cb(null, c)
      },
    })
    const fh = this.#s.fh
    const syncs = this.#syncs
    const stored = new Transform({
      transform(c: Buffer, _e, cb) {
        const before = Math.floor(encSize / SYNC_EVERY)
        encSize += c.length
        // As the layout's temp files do: the disk works while the data still arrives, so the
        // flush before the footer has little left to do (75 ms to 10 ms for a 53 MiB layer).
        if (Math.floor(encSize / SYNC_EVERY) > before) syncs.push(fh.datasync().catch(() => {}))
        cb(null, c)
      },
    })
    // One pipeline, so that reading the source, checksumming and writing overlap (1 MiB writes).
    // Its own descriptor (closed at the end, so that the pipeline can end); fsync of #fh covers it.
    const out = createWriteStream(this.#s.file, { flags: 'r+', start: this.#pos, highWaterMark: 1 << 20 })
    try {
      await pipeline([content, original, ...(this.#s.key ? [new EncryptStream(this.#s.key, p)] : []), stored, out])
    } finally {
      this.#pos += out.bytesWritten
    }
    await this.#writeHead(p, at, { comp: 0, origSize: size, crc, encSize })
  }

  /** Writes a file object's header at `at`, now that its content is there, and records the entry. */
  async #writeHead(p: string, at: number, v: { comp: number; origSize: number; crc: number; encSize: number }): Promise<void> {
    const enc = this.#s.key ? 1 : 0
    const mode = S_IFREG | 0o644
    const head = encodeObjectHead({
      path: p,
      type: TYPE_FILE,
      mode,
      mtimeNs: MTIME_NS,
      comp: v.comp,
      enc,
      origSize: v.origSize,
      crc: v.crc,
      encSize: v.encSize,
    })
    await this.#s.fh.write(head, 0, head.length, at)
    if (v.comp) this.#features |= FEATURE_ZSTD
    this.#record({
      path: p,
      type: TYPE_FILE,
      objOffset: at,
      objSize: objectSize(TYPE_FILE, Buffer.byteLength(p), v.encSize),
      mode,
      mtimeNs: MTIME_NS,
      comp: v.comp,
      enc,
      origSize: v.origSize,
      crc: v.crc,
    })
  }

  #checkPath(p: string): void {
    if (!isBfcPath(p)) throw new OcikitError('INVALID_ARGUMENT', `${this.name}: ${JSON.stringify(p)} is not a path BFC stores unchanged`)
    if (this.#done) throw new OcikitError('INVALID_ARGUMENT', `${this.name}: the write has ended`)
  }

  /** Writes one file object from bytes in memory (encrypted when the file is), then its header. */
  async #object(p: string, origSize: number, crc: number, comp: number, stored: Buffer): Promise<void> {
    const at = this.#pos
    await this.#write(Buffer.alloc(align16(OBJECT_HEADER_SIZE + Buffer.byteLength(p))))
    let bytes = stored
    if (this.#s.key) {
      const cipher = new EncryptStream(this.#s.key, p)
      const parts: Buffer[] = []
      cipher.on('data', (c: Buffer) => parts.push(c))
      await new Promise<void>((resolve, reject) => cipher.once('end', resolve).once('error', reject).end(stored))
      bytes = Buffer.concat(parts)
    }
    await this.#write(bytes)
    await this.#writeHead(p, at, { comp, origSize, crc, encSize: bytes.length })
  }

  async #write(b: Buffer): Promise<void> {
    let off = 0
    while (off < b.length) {
      const { bytesWritten } = await this.#s.fh.write(b, off, b.length - off, this.#pos)
      off += bytesWritten
      this.#pos += bytesWritten
    }
  }

  #record(e: BfcEntry): void {
    this.#s.entries.set(e.path, e)
  }

  /** Writes the index and the footer (flushing the objects first), and renames a new file into place. */
  async finish(): Promise<void> {
    await this.#queue
    this.#done = true
    try {
      await Promise.all(this.#syncs)
      const index = encodeIndex([...this.#s.entries.values()])
      const indexAt = this.#pos
      await this.#write(index)
      await this.#s.fh.sync()
      await this.#write(encodeFooter(indexAt, index))
      if (this.#s.isNew) await this.#s.fh.write(encodeHeader({ features: this.#features, salt: this.#s.salt }), 0, HEADER_SIZE, 0)
      await this.#s.fh.sync()
      await this.#s.fh.close()
      if (this.#s.isNew) await fs.rename(this.#s.file, this.#s.target)
    } catch (e) {
      await this.#undo()
      throw e
    } finally {
      await this.#s.release().catch(() => {})
    }
  }

  /** Takes back what this write added: a new file is removed, an existing one cut back to where it ended. */
  async discard(): Promise<void> {
    if (this.#done) return
    this.#done = true
    await this.#queue
    try {
      await this.#undo()
    } finally {
      await this.#s.release().catch(() => {})
    }
  }

  async #undo(): Promise<void> {
    if (this.#s.isNew) {
      await this.#s.fh.close().catch(() => {})
      await fs.rm(this.#s.file, { force: true })
      return
    }
    await this.#s.fh.truncate(this.#s.start).catch(() => {})
    await this.#s.fh.close().catch(() => {})
  }
}

/**
 * Rewrites a BFC file with only the entries `keep` accepts, dropping dead bytes (objects no index
 * names any more) too: under the file's lock, into a new file beside it, renamed into place.
 * Objects are copied byte for byte (an encrypted one stays valid: its associated data is its
 * path, which does not change), with the old header (salt and all), so no key is needed.
 * Returns the entries dropped and the bytes saved.
 */
export async function compactBfc(file: string, name: string, keep: (e: BfcEntry) => boolean): Promise<{ dropped: BfcEntry[]; before: number; after: number }> {
  const target = path.resolve(file)
  const release = await lockFile(target)
  await removeDeadTemps(target).catch(() => {})
  const tmp = tempBeside(target)
  try {
    const old = await BfcFile.open(target, name)
    const src = await fs.open(target, 'r')
    const out = await fs.open(tmp, 'wx')
    try {
      const header = Buffer.alloc(HEADER_SIZE)
      await src.read(header, 0, HEADER_SIZE, 0)
      await out.write(header, 0, HEADER_SIZE, 0)
      let pos = HEADER_SIZE
      const kept: BfcEntry[] = []
      const dropped: BfcEntry[] = []
      const buf = Buffer.alloc(1 << 20)
      for (const e of [...old.entries.values()].sort((a, b) => a.objOffset - b.objOffset)) {
        if (!keep(e)) {
          dropped.push(e)
          continue
        }
        for (let done = 0; done < e.objSize; ) {
          const n = Math.min(buf.length, e.objSize - done)
          const { bytesRead } = await src.read(buf, 0, n, e.objOffset + done)
          if (bytesRead === 0) throw new OcikitError('INVALID_BFC', `${name}: ${e.path} is cut short`)
          await out.write(buf, 0, bytesRead, pos + done)
          done += bytesRead
        }
        kept.push({ ...e, objOffset: pos })
        pos += e.objSize
      }
      const index = encodeIndex(kept)
      await out.write(index, 0, index.length, pos)
      const footer = encodeFooter(pos, index)
      await out.write(footer, 0, footer.length, pos + index.length)
      await out.sync()
      await out.close()
      await fs.rename(tmp, target)
      return { dropped, before: old.end, after: pos + index.length + footer.length }
    } finally {
      await src.close()
      await out.close().catch(() => {})
    }
  } catch (e) {
    await fs.rm(tmp, { force: true })
    throw e
  } finally {
    await release().catch(() => {})
  }
}
