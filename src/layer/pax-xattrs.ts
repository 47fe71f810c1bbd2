/**
 * The exact bytes of the extended attributes in a tar's PAX records. tar-stream decodes PAX
 * values as UTF-8 text, which mangles binary values such as `security.capability`; this tap
 * sits in front of tar-stream's extractor, passes the tar through unchanged, follows its
 * headers, and keeps each entry's `SCHILY.xattr.*` values as bytes, keyed by the offset of the
 * entry's body (tar-stream's `header.byteOffset`).
 *
 * Written here because neither tar-stream nor node-tar hands out PAX values as bytes.
 */
import { Transform, type TransformCallback } from 'node:stream'
import type tarStream from 'tar-stream'
import { XATTR_PAX_PREFIX, xattrsOfPax } from './xattr.ts'

const BLOCK = 512
/** PAX headers larger than this are not kept (tar-stream refuses them too). */
const MAX_PAX = 1 << 20

const padOf = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK

/**
 * A header's size field read as tar-stream reads it: octal (leading spaces and NULs skipped, up
 * to the first space; empty is 0), or base-256 when the first byte is 0x80. NaN for anything
 * else: base-256 with another first byte (tar-stream takes that as a null size and then waits
 * for the body forever), or a negative one.
 */
export function sizeField(h: Buffer): number {
  const f = h.subarray(124, 136)
  if ((f[0] as number) & 0x80) {
    if (f[0] !== 0x80) return Number.NaN
    let n = 0
    for (let i = 1; i < f.length; i++) n = n * 256 + (f[i] as number)
    return n
  }
  let i = 0
  while (i < f.length && f[i] === 0x20) i++
  let end = f.indexOf(0x20, i)
  if (end < 0) end = f.length
  while (i < end && f[i] === 0) i++
  return i === end ? 0 : Number.parseInt(f.toString('latin1', i, end), 8)
}

/** The records of a PAX header body, values as bytes. */
export function paxRecords(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  let p = 0
  while (p < buf.length) {
    const sp = buf.indexOf(0x20, p)
    if (sp < 0) break
    const len = Number.parseInt(buf.toString('latin1', p, sp), 10)
    if (!(len > 0) || p + len > buf.length) break
    const rec = buf.subarray(sp + 1, p + len - 1) // without the closing newline
    const eq = rec.indexOf(0x3d)
    if (eq < 0) break
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)))
    p += len
  }
  return out
}

/** A PAX header body being collected. */
interface PaxMeta {
  global: boolean
  parts: Buffer[]
  left: number
}

/** A pass-through stream that collects the raw xattr values of a tar's entries. */
export class PaxXattrTap extends Transform {
  #offset = 0
  readonly #head = Buffer.alloc(BLOCK)
  #headFill = 0
  #skip = 0
  #meta: PaxMeta | undefined
  #local: Map<string, Buffer> | undefined
  readonly #global = new Map<string, Buffer>()
  readonly #found = new Map<number, Map<string, Buffer>>()
  #lost = false

  /**
   * The extended attributes (name without the `SCHILY.xattr.` prefix, value bytes) of an entry
   * tar-stream read from this tap's output, exact: the tap's bytes when they name the same
   * attributes tar-stream decoded (they always do unless the tap lost its way in a malformed
   * tar), else tar-stream's text. Each entry's values are handed out once.
   */
  xattrsOf(header: tarStream.Header): [string, Buffer][] {
    const at = (header as tarStream.Header & { byteOffset?: number }).byteOffset
    const raw = at === undefined || this.#lost ? undefined : this.#found.get(at)
    if (at !== undefined) this.#found.delete(at)
    const decoded = xattrsOfPax(header.pax as Record<string, string> | undefined)
    if (raw && raw.size === decoded.length && decoded.every(([name]) => raw.has(name))) return [...raw]
    return decoded.map(([name, value]) => [name, Buffer.from(value, 'utf8')])
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.#lost) this.#scan(chunk)
    cb(this.#error ?? null, chunk)
  }

  /**
   * Set for a header whose sizes tar-stream would misread: the stream fails before it gets
   * there. A plain Error, as tar-stream's own are, so that tarFormatError names the layer.
   */
  #error: Error | undefined
  #invalid(what: string): void {
    this.#lost = true
    this.#error = new Error(`invalid ${what} in the tar header at byte ${this.#offset - BLOCK}`)
  }

  #scan(chunk: Buffer): void {
    let p = 0
    while (p < chunk.length && !this.#lost) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - p)
        this.#skip -= n
        p += n
        this.#offset += n
        continue
      }
      if (this.#meta) {
        const m = this.#meta
        const n = Math.min(m.left, chunk.length - p)
        m.parts.push(Buffer.from(chunk.subarray(p, p + n)))
        m.left -= n
        p += n
        this.#offset += n
        if (m.left === 0) this.#endMeta()
        continue
      }
      const n = Math.min(BLOCK - this.#headFill, chunk.length - p)
      chunk.copy(this.#head, this.#headFill, p, p + n)
      this.#headFill += n
      p += n
      this.#offset += n
      if (this.#headFill < BLOCK) break
      this.#headFill = 0
      this.#header()
    }
  }

  #header(): void {
    const h = this.#head
    if (h.every((b) => b === 0)) return // end-of-archive blocks
    const size = sizeField(h)
    if (!Number.isSafeInteger(size) || size < 0) {
      this.#invalid('size field')
      return
    }
    switch (h[156]) {
      case 0x78: // 'x': PAX records for the next entry
      case 0x67: // 'g': PAX records for every later entry
        if (size > MAX_PAX) {
          this.#lost = true
          return
        }
        this.#meta = { global: h[156] === 0x67, parts: [], left: size }
        if (size === 0) this.#endMeta()
        return
      case 0x4c: // 'L', 'K': GNU long name and long link name
      case 0x4b:
        this.#skip = size + padOf(size)
        return
    }
    const attrs = new Map<string, Buffer>()
    for (const [k, v] of [...this.#global, ...(this.#local ?? [])]) {
      if (k.startsWith(XATTR_PAX_PREFIX) && k.length > XATTR_PAX_PREFIX.length) attrs.set(k.slice(XATTR_PAX_PREFIX.length), v)
    }
    if (attrs.size) this.#found.set(this.#offset, attrs)
    const paxSize = this.#local?.get('size')
    // As tar-stream reads them: a PAX size wins, and a directory never has a body.
    const bodySize = h[156] === 0x35 ? 0 : paxSize ? Number.parseInt(paxSize.toString('latin1'), 10) : size
    this.#local = undefined
    if (!Number.isSafeInteger(bodySize) || bodySize < 0) {
      this.#invalid('PAX size record')
      return
    }
    this.#skip = bodySize + padOf(bodySize)
  }

  #endMeta(): void {
    const m = this.#meta as PaxMeta
    this.#meta = undefined
    const size = m.parts.reduce((a, b) => a + b.length, 0)
    const records = paxRecords(Buffer.concat(m.parts))
    if (m.global) for (const [k, v] of records) this.#global.set(k, v)
    else this.#local = records
    this.#skip = padOf(size)
  }
}
