/**
 * Encodes layer entries as a tar stream, deterministically: every entry gets the same
 * timestamp (unless it brings its own `mtime`), empty user and group names, and no atime/ctime. Headers are ustar; a PAX
 * extended header is added for what ustar cannot hold (names over 100 bytes that cannot be
 * split at a '/', non-ASCII names, link targets over 100 bytes, ids over 0o777777, sizes of
 * 8 GiB and more). The bytes are the ones tar-stream's pack() writes for the same headers, so
 * layers keep their digests across the change.
 *
 * Written here instead of using tar-stream's pack(): the tar is assembled straight into
 * fixed-size slabs (file contents read with readSync into the slab), which the compressor takes
 * as its blocks and hands back when they are compressed. tar-stream gives each entry its own
 * stream, promise and buffers, and the parallel compressor then copied everything once more into
 * blocks; on the bench tree that made the main thread the bottleneck of the whole layer build and
 * left some 60 MB of garbage buffers for the GC (bench/layer.ts, docs/performance.md).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { Readable } from 'node:stream'
import { BufferPool } from '../buffer-pool.ts'
import { OcikitError } from '../errors.ts'
import type { EntryType, LayerEntry } from './entry.ts'
import { XATTR_PAX_PREFIX } from './xattr.ts'

const TYPEFLAG: Record<EntryType | 'pax', number> = {
  file: 0x30,
  hardlink: 0x31,
  symlink: 0x32,
  'char-device': 0x33,
  'block-device': 0x34,
  directory: 0x35,
  fifo: 0x36,
  pax: 0x78,
}
/** Largest id that fits the 6 octal digits of a ustar header; larger ids go in PAX records. */
const MAX_OCTAL_ID = 0o777777
/** Largest size that fits 11 octal digits; larger sizes go in PAX records (and base-256 in the header). */
const MAX_OCTAL_SIZE = 0o77777777777
const BLOCK = 512

/** Counts of what a tar stream held. */
export interface TarStats {
  entries: number
}

/** The fields of one ustar header. */
interface HeaderFields {
  name: string
  type: EntryType | 'pax'
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  linkname: string
  devmajor: number
  devminor: number
}

const ascii = (s: string) => Buffer.byteLength(s) === s.length

/**
 * Writes `n` at `buf[off]` as `width` octal digits and a space (all sevens when it does not
 * fit). Digit by digit: formatting strings here cost some 20 ms over the bench tree's headers.
 */
function putOctal(buf: Buffer, off: number, n: number, width: number): void {
  const fits = n < 8 ** width
  for (let i = width - 1; i >= 0; i--) {
    buf[off + i] = fits ? 0x30 + (n % 8) : 0x37
    n = Math.floor(n / 8)
  }
  buf[off + width] = 0x20
}

/**
 * Writes the 512-byte ustar header of `h` at `buf[off]`; false when ustar cannot hold the
 * name or the link target (the caller then writes a PAX header first).
 */
function writeHeader(buf: Buffer, off: number, h: HeaderFields): boolean {
  let name = h.name
  let prefix = ''
  if (!ascii(name)) return false
  while (name.length > 100) {
    const i = name.indexOf('/')
    if (i === -1) return false
    prefix += prefix ? `/${name.slice(0, i)}` : name.slice(0, i)
    name = name.slice(i + 1)
  }
  if (prefix.length > 155) return false
  if (Buffer.byteLength(h.linkname) > 100) return false
  buf.fill(0, off, off + BLOCK)
  buf.write(name, off)
  putOctal(buf, off + 100, h.mode & 0o7777, 6)
  putOctal(buf, off + 108, h.uid, 6)
  putOctal(buf, off + 116, h.gid, 6)
  if (h.size >= 8 ** 11) {
    // Base-256, as GNU tar and tar-stream write sizes past 11 octal digits.
    buf[off + 124] = 0x80
    let n = h.size
    for (let i = 11; i > 0; i--) {
      buf[off + 124 + i] = n & 0xff
      n = Math.floor(n / 0x100)
    }
  } else putOctal(buf, off + 124, h.size, 11)
  putOctal(buf, off + 136, h.mtime, 11)
  buf[off + 156] = TYPEFLAG[h.type]
  if (h.linkname) buf.write(h.linkname, off + 157)
  buf.write('ustar\u000000', off + 257, 'latin1')
  putOctal(buf, off + 329, h.devmajor, 6)
  putOctal(buf, off + 337, h.devminor, 6)
  if (prefix) buf.write(prefix, off + 345)
  // The checksum counts its own field as eight spaces.
  let sum = 8 * 32
  for (let i = off; i < off + 148; i++) sum += buf[i] as number
  for (let i = off + 156; i < off + BLOCK; i++) sum += buf[i] as number
  putOctal(buf, off + 148, sum, 6)
  return true
}

/** One PAX record: `LEN key=value\n`, where LEN counts the whole record in bytes, itself included. */
function paxRecord(key: string, value: string | Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), typeof value === 'string' ? Buffer.from(value) : value, Buffer.from('\n')])
  let digits = String(body.length).length
  if (body.length + digits >= 10 ** digits) digits++
  return Buffer.concat([Buffer.from(String(body.length + digits)), body])
}

/** The header fields of an entry, stamped with `mtime` (seconds since the epoch), and its PAX records if any. */
function fieldsOf(e: LayerEntry, mtime: number): { h: HeaderFields; pax: Record<string, string | Uint8Array> | undefined } {
  const pax: Record<string, string | Uint8Array> = {}
  if (e.uid > MAX_OCTAL_ID) pax.uid = String(e.uid)
  if (e.gid > MAX_OCTAL_ID) pax.gid = String(e.gid)
  if (e.size > MAX_OCTAL_SIZE) pax.size = String(e.size)
  for (const [name, value] of Object.entries(e.xattrs ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    pax[`${XATTR_PAX_PREFIX}${name}`] = value
  }
  const h: HeaderFields = {
    name: e.type === 'directory' ? `${e.path}/` : e.path,
    type: e.type,
    mode: e.mode,
    uid: Math.min(e.uid, MAX_OCTAL_ID),
    gid: Math.min(e.gid, MAX_OCTAL_ID),
    size: e.type === 'file' ? e.size : 0,
    mtime: e.mtime === undefined ? mtime : Math.min(Math.max(0, Math.floor(e.mtime)), MAX_OCTAL_SIZE),
    linkname: e.linkname ?? '',
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
  }
  return { h, pax: Object.keys(pax).length > 0 ? pax : undefined }
}

/** Writes bytes into slabs and collects the full ones. */
class SlabWriter {
  readonly #pool: BufferPool
  #slab: Buffer
  #pos = 0
  readonly full: Buffer[] = []
  constructor(pool: BufferPool) {
    this.#pool = pool
    this.#slab = pool.take()
  }
  #next(): void {
    if (this.#pos < this.#slab.length) return
    this.full.push(this.#slab)
    this.#slab = this.#pool.take()
    this.#pos = 0
  }
  /** Room for a 512-byte header: its buffer and offset (slabs are multiples of 512 bytes). */
  header(): [Buffer, number] {
    this.#next()
    const at = this.#pos
    this.#pos += BLOCK
    return [this.#slab, at]
  }
  copy(src: Uint8Array): void {
    let off = 0
    while (off < src.length) {
      this.#next()
      const n = Math.min(src.length - off, this.#slab.length - this.#pos)
      this.#slab.set(src.subarray(off, off + n), this.#pos)
      this.#pos += n
      off += n
    }
  }
  zeros(n: number): void {
    while (n > 0) {
      this.#next()
      const k = Math.min(n, this.#slab.length - this.#pos)
      this.#slab.fill(0, this.#pos, this.#pos + k)
      this.#pos += k
      n -= k
    }
  }
  /**
   * Reads `size` bytes of an open file into the slabs. 'short': the file ended early; 'grew':
   * it has more. The last read asks for one byte more where the slab has room, so that a file
   * that grew shows without another system call (that byte lies past the write position and is
   * overwritten or left out later); 'unknown' when there was no such room.
   */
  readFile(fd: number, size: number): 'exact' | 'short' | 'grew' | 'unknown' {
    let left = size
    while (left > 0) {
      this.#next()
      const room = this.#slab.length - this.#pos
      const probe = left < room
      const n = readSync(fd, this.#slab, this.#pos, probe ? left + 1 : Math.min(left, room), null)
      if (n === 0) return 'short'
      if (n > left) {
        this.#pos += left
        return 'grew'
      }
      this.#pos += n
      left -= n
      if (left === 0) return probe ? 'exact' : 'unknown'
    }
    return 'exact'
  }
  pad(size: number): void {
    const r = size % BLOCK
    if (r) this.zeros(BLOCK - r)
  }
  /** What is left: the partly filled slab. */
  rest(): Buffer {
    return this.#slab.subarray(0, this.#pos)
  }
}

function writeEntryHeader(w: SlabWriter, e: LayerEntry, mtime: number): void {
  const { h, pax } = fieldsOf(e, mtime)
  const [buf, at] = w.header()
  // Without PAX records ustar may hold it; when it cannot (writeHeader wrote nothing), the PAX form goes in the same place.
  if (!pax && writeHeader(buf, at, h)) return
  writePax(w, h, pax, buf, at)
}

/** A PAX header (path, link target and `pax` records) at `buf[at]`, its records, then the entry's own header. */
function writePax(w: SlabWriter, h: HeaderFields, pax: Record<string, string | Uint8Array> | undefined, buf: Buffer, at: number): void {
  const records = [paxRecord('path', h.name)]
  if (h.linkname) records.push(paxRecord('linkpath', h.linkname))
  for (const [k, v] of Object.entries(pax ?? {})) records.push(paxRecord(k, v))
  const body = Buffer.concat(records)
  const named = { ...h, name: 'PaxHeader', linkname: h.linkname ? 'PaxHeader' : '' }
  writeHeader(buf, at, { ...named, type: 'pax', size: body.length })
  w.copy(body)
  w.pad(body.length)
  const [b2, at2] = w.header()
  writeHeader(b2, at2, named)
}

async function copyContent(w: SlabWriter, e: LayerEntry): Promise<void> {
  const wrong = (n: number) => new OcikitError('INVALID_ARGUMENT', `${e.file ?? e.path} ${n > e.size ? 'grew' : 'shrank'} while being read; layer aborted`)
  if (e.file !== undefined) {
    const fd = openSync(e.file, 'r')
    try {
      const read = w.readFile(fd, e.size)
      if (read === 'short') throw wrong(0)
      if (read === 'grew') throw wrong(e.size + 1)
      if (read === 'unknown') {
        const now = fstatSync(fd).size
        if (now !== e.size) throw wrong(now)
      }
    } finally {
      closeSync(fd)
    }
    return
  }
  let n = 0
  const take = (c: Uint8Array) => {
    n += c.length
    if (n > e.size) throw wrong(n)
    w.copy(c)
  }
  // Whole reads only for small files: a large one is streamed, never held in memory at once.
  if (e.read && (e.size <= SMALL_FILE || !e.open)) take(await e.read())
  else if (e.open) for await (const c of e.open()) take(c as Uint8Array)
  else throw new OcikitError('INVALID_ARGUMENT', `layer entry ${e.path} has no content`)
  if (n !== e.size) throw wrong(n)
}

/** Files up to this size may be read whole (`LayerEntry.read`); larger ones are streamed (`open`). */
const SMALL_FILE = 1 << 20

/** Bytes of the slabs a tar is written into by default. */
export const DEFAULT_SLAB = 1 << 20

/**
 * A tar stream of the entries, produced as the consumer reads it (files are read only as fast
 * as the tar is taken), in chunks of `slabSize` bytes (a multiple of 512) except the last.
 * `stats` resolves when the last entry is written. An error in a source fails the stream.
 */
export function tarEntries(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  mtime: number,
  o: { slabSize?: number | undefined } = {},
): { stream: Readable; stats: Promise<TarStats> } {
  const slabSize = o.slabSize ?? DEFAULT_SLAB
  if (slabSize % BLOCK !== 0 || slabSize <= 0) throw new OcikitError('INVALID_ARGUMENT', `tar slab size must be a multiple of 512, got ${slabSize}`)
  let done: (s: TarStats) => void = () => {}
  let failed: (e: unknown) => void = () => {}
  const stats = new Promise<TarStats>((resolve, reject) => {
    done = resolve
    failed = reject
  })
  stats.catch(() => {}) // surfaced through the stream; callers awaiting stats still see it
  async function* produce(): AsyncGenerator<Buffer> {
    const w = new SlabWriter(new BufferPool(slabSize))
    let n = 0
    try {
      for await (const e of entries) {
        writeEntryHeader(w, e, mtime)
        if (e.type === 'file' && e.size > 0) {
          await copyContent(w, e)
          w.pad(e.size)
        }
        n++
        if (w.full.length) yield* w.full.splice(0)
      }
      w.zeros(2 * BLOCK)
      yield* w.full.splice(0)
      const rest = w.rest()
      if (rest.length) yield rest
      done({ entries: n })
    } catch (e) {
      failed(e)
      throw e
    }
  }
  return { stream: Readable.from(produce(), { objectMode: false, highWaterMark: 1 }), stats }
}
