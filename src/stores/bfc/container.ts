/**
 * Reading a BFC file: opening reads the footer and the index only (a file of any size opens in
 * milliseconds); each object is read where it lies, its header checked against the index, its
 * content decrypted, decompressed and checked (size and CRC32C) as it streams. A file whose last
 * write was cut off before its footer (a crash while appending) is read at its last valid footer,
 * found by scanning back; `recovered` says how many trailing bytes that left out.
 */

import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import { Readable, Transform, type TransformCallback } from 'node:stream'
import zlib from 'node:zlib'
import { OcikitError } from '../../errors.ts'
import type { IoOptions } from '../../image/types.ts'
import { chain } from '../../streams.ts'
import { bfcCrc } from './crc32c.ts'
import { type BfcKeySource, DecryptStream, deriveKey, NONCE_SIZE, TAG_SIZE } from './crypto.ts'
import {
  align16,
  type BfcEntry,
  type BfcFooter,
  type BfcHeader,
  badBfc,
  FEATURE_AEAD,
  FOOTER_END,
  FOOTER_SIZE,
  HEADER_SIZE,
  OBJECT_HEADER_SIZE,
  type ObjectHead,
  objectSize,
  parseFooter,
  parseHeader,
  parseIndex,
  parseObjectHead,
  TYPE_FILE,
  TYPE_SYMLINK,
} from './format.ts'

/** How far back from the end a torn file is scanned for its last valid footer. */
const RECOVERY_SCAN = 256 << 20

/** Options for opening a BFC file. */
export interface BfcOpenOptions {
  /** The key source, for encrypted objects (asked only when one is read). */
  key?: BfcKeySource | undefined
}

/** Checks content as it streams: exactly `size` bytes whose CRC32C is `crc`. */
class ContentCheck extends Transform {
  #crc = 0
  #n = 0
  readonly size: number
  readonly crc: number
  readonly what: string
  constructor(size: number, crc: number, what: string) {
    super()
    this.size = size
    this.crc = crc
    this.what = what
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.#n += chunk.length
    if (this.#n > this.size) {
      cb(badBfc(this.what, `more than its ${this.size} bytes`))
      return
    }
    this.#crc = bfcCrc(chunk, this.#crc)
    cb(null, chunk)
  }
  override _flush(cb: TransformCallback): void {
    if (this.#n !== this.size) cb(badBfc(this.what, `${this.#n} bytes where the index says ${this.size}`))
    else if (this.#crc !== this.crc)
      cb(badBfc(this.what, `CRC32C 0x${this.#crc.toString(16).padStart(8, '0')} where 0x${this.crc.toString(16).padStart(8, '0')} was stored`))
    else cb()
  }
}

/** An open BFC file: its header, its entries by path, and reads of their contents. */
export class BfcFile {
  readonly path: string
  readonly name: string
  readonly header: BfcHeader
  readonly entries: ReadonlyMap<string, BfcEntry>
  /** Whether the index came in the raw-byte order the format asks for. */
  readonly sorted: boolean
  /** Where the valid file ends (after its footer). */
  readonly end: number
  /** Bytes after the last valid footer (a write cut off before it finished); 0 for a sound file. */
  readonly recovered: number
  readonly footer: BfcFooter
  readonly #key: BfcKeySource | undefined
  #derived: Promise<Buffer> | undefined

  private constructor(
    path: string,
    name: string,
    v: { header: BfcHeader; entries: BfcEntry[]; sorted: boolean; end: number; recovered: number; footer: BfcFooter },
    key: BfcKeySource | undefined,
  ) {
    this.path = path
    this.name = name
    this.header = v.header
    this.entries = new Map(v.entries.map((e) => [e.path, e]))
    this.sorted = v.sorted
    this.end = v.end
    this.recovered = v.recovered
    this.footer = v.footer
    this.#key = key
  }

  /** Opens `path` (named `name` in messages): footer, index and header, each checked. */
  static async open(path: string, name: string, o: BfcOpenOptions = {}): Promise<BfcFile> {
    let fh: fs.FileHandle
    try {
      fh = await fs.open(path, 'r')
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOENT') throw new OcikitError('MANIFEST_UNKNOWN', `${name}: no such file ${path}`, { cause: e })
      throw new OcikitError('INVALID_ARGUMENT', `${name}: cannot open ${path}: ${code ?? (e as Error).message}`, { cause: e })
    }
    try {
      const size = (await fh.stat()).size
      if (size < HEADER_SIZE + 8 + FOOTER_SIZE) throw badBfc(name, `${size} bytes, shorter than a header, an empty index and a footer`)
      const read = async (at: number, n: number) => {
        const b = Buffer.alloc(n)
        const { bytesRead } = await fh.read(b, 0, n, at)
        return b.subarray(0, bytesRead)
      }
      const tryFooter = async (at: number) => {
        const footer = parseFooter(await read(at, FOOTER_SIZE), name, at)
        if (!footer) return undefined
        const index = await read(footer.indexOffset, footer.indexSize)
        if (bfcCrc(index) !== footer.indexCrc) return { footer, index, crcOk: false }
        return { footer, index, crcOk: true }
      }
      let at = size - FOOTER_SIZE
      let found = await tryFooter(at)
      if (found && !found.crcOk) throw badBfc(name, `the index CRC32C does not match its footer (0x${found.footer.indexCrc.toString(16).padStart(8, '0')})`)
      if (!found) {
        // A torn append: look back for the newest footer whose index checks out.
        const from = Math.max(HEADER_SIZE, size - RECOVERY_SCAN)
        const tail = await read(from, size - from)
        let p = tail.lastIndexOf(FOOTER_END)
        while (p >= 0 && !found) {
          const footerAt = from + p - (FOOTER_SIZE - 8)
          if (footerAt >= HEADER_SIZE) {
            const f = await tryFooter(footerAt).catch(() => undefined)
            if (f?.crcOk) {
              found = f
              at = footerAt
            }
          }
          p = p > 0 ? tail.lastIndexOf(FOOTER_END, p - 1) : -1
        }
        if (!found) throw badBfc(name, 'no footer at its end, and no valid one before it (a truncated or damaged file)')
      }
      const { entries, sorted } = parseIndex(found.index, name, found.footer.indexOffset)
      const header = parseHeader(await read(0, HEADER_SIZE), name)
      const end = at + FOOTER_SIZE
      return new BfcFile(path, name, { header, entries, sorted, end, recovered: size - end, footer: found.footer }, o.key)
    } finally {
      await fh.close()
    }
  }

  /** Whether any object is encrypted (or the header says the file is). */
  get encrypted(): boolean {
    return (this.header.features & FEATURE_AEAD) !== 0n || [...this.entries.values()].some((e) => e.enc === 1)
  }

  /** The file's key; KEY_REQUIRED when none was given. */
  key(): Promise<Buffer> {
    if (!this.#key) {
      return Promise.reject(
        new OcikitError(
          'KEY_REQUIRED',
          `${this.name} is encrypted: give its password (OCIKIT_BFC_PASSWORD, or at the prompt) or its key file (--key-file FILE)`,
        ),
      )
    }
    this.#derived ??= deriveKey(this.#key, this.header.salt)
    this.#derived.catch(() => {
      this.#derived = undefined
    })
    return this.#derived
  }

  /** Reads an object's header and checks it against its index entry; returns it with where the content starts. */
  async head(e: BfcEntry): Promise<ObjectHead & { contentAt: number }> {
    const what = `${this.name} ${e.path}`
    const name = Buffer.from(e.path)
    const fh = await fs.open(this.path, 'r')
    let b: Buffer
    try {
      b = Buffer.alloc(OBJECT_HEADER_SIZE + name.length)
      const { bytesRead } = await fh.read(b, 0, b.length, e.objOffset)
      b = b.subarray(0, bytesRead)
    } finally {
      await fh.close()
    }
    const h = parseObjectHead(b, what, e.objOffset)
    if (h.nameLength !== name.length || !b.subarray(OBJECT_HEADER_SIZE).equals(name)) throw badBfc(what, `the object at ${e.objOffset} is named otherwise`)
    const disagree = (
      [
        ['type', h.type, e.type],
        ['mode', h.mode, e.mode],
        ['mtime', h.mtimeNs, e.mtimeNs],
        ['compression', h.comp, e.comp],
        ['encryption', h.enc, e.enc],
        ['size', h.origSize, e.origSize],
        ['CRC32C', h.crc, e.crc],
      ] as const
    ).filter(([, a, b]) => a !== b)
    if (disagree.length) throw badBfc(what, `its object header and the index disagree on ${disagree.map(([k]) => k).join(', ')}`)
    if (objectSize(h.type, h.nameLength, h.encSize) !== e.objSize)
      throw badBfc(what, `the object's stored size ${h.encSize} does not fit the index's object size ${e.objSize}`)
    if (e.enc === 1 && h.encSize < NONCE_SIZE + TAG_SIZE) throw badBfc(what, 'an encrypted object shorter than its nonce and tag')
    if (e.enc === 0 && e.comp === 0 && e.type === TYPE_FILE && h.encSize !== e.origSize)
      throw badBfc(what, `${h.encSize} bytes stored for a ${e.origSize}-byte file`)
    return { ...h, contentAt: e.objOffset + align16(OBJECT_HEADER_SIZE + h.nameLength) }
  }

  /** The content of a file (or a symlink's target), decrypted, decompressed and checked as it streams. */
  async stream(e: BfcEntry, o: IoOptions = {}): Promise<Readable> {
    const what = `${this.name} ${e.path}`
    if (e.type !== TYPE_FILE && e.type !== TYPE_SYMLINK) throw new OcikitError('INVALID_ARGUMENT', `${what} is a directory, not a file`)
    const h = await this.head(e)
    const raw =
      h.encSize === 0
        ? Readable.from([])
        : createReadStream(this.path, { start: h.contentAt, end: h.contentAt + h.encSize - 1, highWaterMark: 1 << 20, signal: o.signal })
    const steps: NodeJS.ReadWriteStream[] = []
    if (e.enc === 1) steps.push(new DecryptStream(await this.key(), e.path, what))
    if (e.comp === 1) steps.push(zlib.createZstdDecompress({ maxOutputLength: Math.max(1, e.origSize) }))
    steps.push(new ContentCheck(e.origSize, e.crc, what))
    return chain(raw, ...steps)
  }

  /** The whole content of a file, at most `max` bytes (TOO_LARGE beyond). */
  async read(e: BfcEntry, max: number, o: IoOptions = {}): Promise<Buffer> {
    if (e.origSize > max) throw new OcikitError('TOO_LARGE', `${this.name} ${e.path}: ${e.origSize} bytes, over the ${max} allowed`)
    const chunks: Buffer[] = []
    for await (const c of await this.stream(e, o)) chunks.push(c as Buffer)
    return Buffer.concat(chunks)
  }
}
