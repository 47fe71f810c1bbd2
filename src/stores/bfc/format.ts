/**
 * BFC format v1, byte for byte as BFC's C implementation writes it (the reference the project
 * keeps beside its design, `bfc/FORMAT.md`): the 4096-byte header, 40-byte object headers,
 * the sorted index and the 56-byte footer; their encoders, and parsers that check every field a
 * hostile file could get wrong (bounds, tags, CRCs, sizes, sort order, paths). All integers are
 * little-endian. No I/O here.
 */
import { randomBytes } from 'node:crypto'
import { OcikitError } from '../../errors.ts'
import { bfcCrc } from './crc32c.ts'

export const HEADER_SIZE = 4096
export const FOOTER_SIZE = 56
export const OBJECT_HEADER_SIZE = 40
const MAGIC = Buffer.from('BFCFv1\0\0', 'latin1')
export const FOOTER_TAG = Buffer.from('BFCFIDX\0', 'latin1')
export const FOOTER_END = Buffer.from('BFCFEND\0', 'latin1')
export const FEATURE_ZSTD = 1n
export const FEATURE_AEAD = 2n
export const TYPE_FILE = 1
export const TYPE_DIR = 2
export const TYPE_SYMLINK = 3
export const S_IFMT = 0o170000
export const S_IFREG = 0o100000
export const S_IFDIR = 0o040000
export const S_IFLNK = 0o120000
/** Longest path a BFC object header can name (its `name_len` is a u16). */
export const MAX_PATH = 65535
/** Largest index ocikit reads (it lists every blob of every image; 64 MiB is millions of entries). */
export const MAX_INDEX_SIZE = 64 << 20

/** `n` rounded up to a multiple of 16. */
export const align16 = (n: number): number => (n + 15) & ~15

/** A BFC format error: the file is not what BFC v1 says, with where. */
export function badBfc(file: string, why: string): OcikitError {
  return new OcikitError('INVALID_BFC', `${file}: not a valid BFC file: ${why}`)
}

/** The parsed header. */
export interface BfcHeader {
  readonly blockSize: number
  readonly features: bigint
  readonly uuid: Buffer
  /** 32 bytes; password mode uses the first 16 (what libsodium's Argon2id reads). */
  readonly salt: Buffer
}

/** A new header's 4096 bytes: a random v4 UUID, the features and salt given, its CRC set. */
export function encodeHeader(h: { features: bigint; salt?: Buffer | undefined }): Buffer {
  const b = Buffer.alloc(HEADER_SIZE)
  MAGIC.copy(b, 0)
  b.writeUInt32LE(4096, 12)
  b.writeBigUInt64LE(h.features, 16)
  const uuid = randomBytes(16)
  uuid[6] = ((uuid[6] as number) & 0x0f) | 0x40
  uuid[8] = ((uuid[8] as number) & 0x3f) | 0x80
  uuid.copy(b, 24)
  if (h.salt) h.salt.copy(b, 40, 0, 32)
  b.writeUInt32LE(bfcCrc(b.subarray(12)), 8)
  return b
}

/** Parses and checks a header (magic, CRC). */
export function parseHeader(b: Buffer, file: string): BfcHeader {
  if (b.length < HEADER_SIZE || !b.subarray(0, 8).equals(MAGIC)) throw badBfc(file, 'no BFCFv1 magic at offset 0')
  const crc = b.readUInt32LE(8)
  if (bfcCrc(b.subarray(12, HEADER_SIZE)) !== crc) throw badBfc(file, `the header CRC32C does not match (stored 0x${crc.toString(16).padStart(8, '0')})`)
  return { blockSize: b.readUInt32LE(12), features: b.readBigUInt64LE(16), uuid: Buffer.from(b.subarray(24, 40)), salt: Buffer.from(b.subarray(40, 72)) }
}

/** One object as an object header and the index describe it. */
export interface BfcEntry {
  readonly path: string
  readonly type: number
  readonly objOffset: number
  readonly objSize: number
  /** Full st_mode, with the type bits. */
  readonly mode: number
  readonly mtimeNs: bigint
  readonly comp: number
  readonly enc: number
  readonly origSize: number
  readonly crc: number
}

/** The object type from a mode's type bits, or undefined. */
export function typeOfMode(mode: number): number | undefined {
  const t = mode & S_IFMT
  return t === S_IFREG ? TYPE_FILE : t === S_IFDIR ? TYPE_DIR : t === S_IFLNK ? TYPE_SYMLINK : undefined
}

/**
 * Whether BFC's own writer would store `path` unchanged: relative, `/`-separated, no empty
 * component, no `.` or `..` component, and none of the C scanner's quirks (a path ending in `.`,
 * a `..` followed by `/` or the end even inside a name). ocikit writes and extracts only these.
 */
export function isBfcPath(path: string): boolean {
  const bytes = Buffer.byteLength(path)
  if (bytes === 0 || bytes > MAX_PATH || path.includes('\0')) return false
  if (path.startsWith('/') || path.endsWith('/') || path.endsWith('.') || path.includes('//')) return false
  if (/\.\.(\/|$)/.test(path)) return false
  return path.split('/').every((c) => c !== '' && c !== '.' && c !== '..')
}

/** Compares paths by their raw bytes (C `strcmp`), the index's order. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/** An object header (40 bytes) followed by the name and its padding to align16(40 + name length). */
export function encodeObjectHead(e: Omit<BfcEntry, 'objOffset' | 'objSize'> & { encSize: number }): Buffer {
  const name = Buffer.from(e.path)
  const b = Buffer.alloc(align16(OBJECT_HEADER_SIZE + name.length))
  b.writeUInt8(e.type, 0)
  b.writeUInt8(e.comp, 1)
  b.writeUInt8(e.enc, 2)
  b.writeUInt16LE(name.length, 4)
  b.writeUInt32LE(e.mode, 8)
  b.writeBigUInt64LE(e.mtimeNs, 12)
  b.writeBigUInt64LE(BigInt(e.origSize), 20)
  b.writeBigUInt64LE(BigInt(e.encSize), 28)
  b.writeUInt32LE(e.crc, 36)
  name.copy(b, OBJECT_HEADER_SIZE)
  return b
}

/** An object header as read: the fields it duplicates from the index, and `encSize`. */
export interface ObjectHead {
  readonly type: number
  readonly comp: number
  readonly enc: number
  readonly nameLength: number
  readonly mode: number
  readonly mtimeNs: bigint
  readonly origSize: number
  readonly encSize: number
  readonly crc: number
}

/** Parses an object header (the first 40 bytes of an object). */
export function parseObjectHead(b: Buffer, file: string, at: number): ObjectHead {
  if (b.length < OBJECT_HEADER_SIZE) throw badBfc(file, `the object at ${at} is cut short`)
  const big = (o: number, what: string) => {
    const v = b.readBigUInt64LE(o)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw badBfc(file, `the object at ${at} has a ${what} of ${v}`)
    return Number(v)
  }
  return {
    type: b.readUInt8(0),
    comp: b.readUInt8(1),
    enc: b.readUInt8(2),
    nameLength: b.readUInt16LE(4),
    mode: b.readUInt32LE(8),
    mtimeNs: b.readBigUInt64LE(12),
    origSize: big(20, 'size'),
    encSize: big(28, 'stored size'),
    crc: b.readUInt32LE(36),
  }
}

/** The size of an object: header, name and padding, content (a symlink's padded to 16). */
export function objectSize(type: number, nameLength: number, encSize: number): number {
  const head = align16(OBJECT_HEADER_SIZE + nameLength)
  return type === TYPE_DIR ? head : type === TYPE_SYMLINK ? head + align16(encSize) : head + encSize
}

/** The index blob for `entries` (sorted here by raw bytes). */
export function encodeIndex(entries: readonly BfcEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => comparePaths(a.path, b.path))
  const parts: Buffer[] = []
  const head = Buffer.alloc(8)
  head.writeUInt32LE(1, 0)
  head.writeUInt32LE(sorted.length, 4)
  parts.push(head)
  for (const e of sorted) {
    const name = Buffer.from(e.path)
    const b = Buffer.alloc(4 + name.length + 48)
    b.writeUInt32LE(name.length, 0)
    name.copy(b, 4)
    let o = 4 + name.length
    b.writeBigUInt64LE(BigInt(e.objOffset), o)
    b.writeBigUInt64LE(BigInt(e.objSize), o + 8)
    b.writeUInt32LE(e.mode, o + 16)
    b.writeBigUInt64LE(e.mtimeNs, o + 20)
    b.writeUInt32LE(e.comp, o + 28)
    b.writeUInt32LE(e.enc, o + 32)
    b.writeBigUInt64LE(BigInt(e.origSize), o + 36)
    b.writeUInt32LE(e.crc, o + 44)
    o += 48
    parts.push(b)
  }
  return Buffer.concat(parts)
}

/**
 * Parses an index blob. Every entry must lie inside the data area (`dataEnd`: where the index
 * starts), have a mode of a known type and a path BFC's writer would store unchanged; paths must
 * be unique. `sorted` says whether they came in the raw-byte order the format asks for (fsck
 * reports it; reading does not need it).
 */
export function parseIndex(b: Buffer, file: string, dataEnd: number): { entries: BfcEntry[]; sorted: boolean } {
  if (b.length < 8) throw badBfc(file, 'the index is shorter than its 8-byte header')
  const version = b.readUInt32LE(0)
  if (version !== 1) throw badBfc(file, `index version ${version} (only 1 is known)`)
  const count = b.readUInt32LE(4)
  if (count > (b.length - 8) / 53) throw badBfc(file, `the index says ${count} entries, more than its ${b.length} bytes can hold`)
  const entries: BfcEntry[] = []
  const seen = new Set<string>()
  let sorted = true
  let o = 8
  const u64 = (at: number, what: string, path: string) => {
    const v = b.readBigUInt64LE(at)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw badBfc(file, `entry ${JSON.stringify(path)} has a ${what} of ${v}`)
    return Number(v)
  }
  for (let i = 0; i < count; i++) {
    if (o + 4 > b.length) throw badBfc(file, `index entry ${i} is cut short`)
    const len = b.readUInt32LE(o)
    if (len === 0 || len > MAX_PATH || o + 4 + len + 48 > b.length)
      throw badBfc(file, `index entry ${i} has a path length of ${len}, past the index's end or out of range`)
    const path = b.toString('utf8', o + 4, o + 4 + len)
    if (Buffer.byteLength(path) !== len) throw badBfc(file, `index entry ${i}'s path is not UTF-8`)
    if (!isBfcPath(path)) throw badBfc(file, `entry ${JSON.stringify(path)}: not a path BFC stores (absolute, '.', '..' or an empty component)`)
    if (seen.has(path)) throw badBfc(file, `entry ${JSON.stringify(path)} is listed twice`)
    seen.add(path)
    const f = o + 4 + len
    const mode = b.readUInt32LE(f + 16)
    const type = typeOfMode(mode)
    if (type === undefined) throw badBfc(file, `entry ${JSON.stringify(path)} has mode 0${mode.toString(8)}, of no type BFC knows`)
    const e: BfcEntry = {
      path,
      type,
      objOffset: u64(f, 'object offset', path),
      objSize: u64(f + 8, 'object size', path),
      mode,
      mtimeNs: b.readBigUInt64LE(f + 20),
      comp: b.readUInt32LE(f + 28),
      enc: b.readUInt32LE(f + 32),
      origSize: u64(f + 36, 'size', path),
      crc: b.readUInt32LE(f + 44),
    }
    if (e.objOffset < HEADER_SIZE || e.objOffset + e.objSize > dataEnd) {
      throw badBfc(
        file,
        `entry ${JSON.stringify(path)} points at bytes ${e.objOffset}..${e.objOffset + e.objSize}, outside the data area (${HEADER_SIZE}..${dataEnd})`,
      )
    }
    if (e.comp > 1 || e.enc > 1) throw badBfc(file, `entry ${JSON.stringify(path)} has compression ${e.comp} and encryption ${e.enc} (0 or 1 each)`)
    const last = entries.at(-1)
    if (last && comparePaths(last.path, path) >= 0) sorted = false
    entries.push(e)
    o = f + 48
  }
  return { entries, sorted }
}

/** The footer's 56 bytes. */
export function encodeFooter(indexOffset: number, index: Buffer): Buffer {
  const b = Buffer.alloc(FOOTER_SIZE)
  FOOTER_TAG.copy(b, 0)
  b.writeBigUInt64LE(BigInt(index.length), 8)
  b.writeUInt32LE(bfcCrc(index), 16)
  b.writeBigUInt64LE(BigInt(indexOffset), 20)
  FOOTER_END.copy(b, 48)
  return b
}

/** A parsed footer. */
export interface BfcFooter {
  readonly indexOffset: number
  readonly indexSize: number
  readonly indexCrc: number
}

/** Parses a footer found at `at` in a file of `fileSize` bytes; undefined when its tags are not there. */
export function parseFooter(b: Buffer, file: string, at: number): BfcFooter | undefined {
  if (b.length < FOOTER_SIZE || !b.subarray(0, 8).equals(FOOTER_TAG) || !b.subarray(48, 56).equals(FOOTER_END)) return undefined
  const size = b.readBigUInt64LE(8)
  const offset = b.readBigUInt64LE(20)
  if (size === 0n || size > BigInt(MAX_INDEX_SIZE)) throw badBfc(file, `the footer gives an index of ${size} bytes`)
  if (offset < BigInt(HEADER_SIZE) || offset + size > BigInt(at))
    throw badBfc(file, `the footer puts the index at ${offset}..${offset + size}, past the footer at ${at}`)
  return { indexOffset: Number(offset), indexSize: Number(size), indexCrc: b.readUInt32LE(16) }
}
