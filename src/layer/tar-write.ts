/**
 * Encodes layer entries as a tar stream, deterministically: every entry gets the same
 * timestamp, empty user and group names, and no atime/ctime. tar-stream writes ustar headers
 * and switches to PAX for long or non-ASCII names; this module adds PAX records for what
 * tar-stream cannot encode in ustar (ids over 0o777777, sizes of 8 GiB and more).
 */
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import tarStream from 'tar-stream'
import type { EntryType, LayerEntry } from './entry.ts'

const TAR_TYPE: Record<EntryType, tarStream.Header['type']> = {
  file: 'file',
  directory: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  fifo: 'fifo',
  'char-device': 'character-device',
  'block-device': 'block-device',
}
/** tar-stream writes ids as 6 octal digits; larger ids go in PAX records. */
const MAX_OCTAL_ID = 0o777777
const MAX_OCTAL_SIZE = 0o77777777777

/** Counts of what a tar stream held. */
export interface TarStats {
  entries: number
}

/** The tar header of an entry, stamped with `mtime` (seconds since the epoch). */
export function tarHeader(e: LayerEntry, mtime: number): tarStream.Header {
  const pax: Record<string, string> = {}
  if (e.uid > MAX_OCTAL_ID) pax.uid = String(e.uid)
  if (e.gid > MAX_OCTAL_ID) pax.gid = String(e.gid)
  if (e.size > MAX_OCTAL_SIZE) pax.size = String(e.size)
  const h: tarStream.Header = {
    name: e.type === 'directory' ? `${e.path}/` : e.path,
    type: TAR_TYPE[e.type],
    mode: e.mode,
    uid: Math.min(e.uid, MAX_OCTAL_ID),
    gid: Math.min(e.gid, MAX_OCTAL_ID),
    uname: '',
    gname: '',
    size: e.type === 'file' ? e.size : 0,
    mtime: new Date(mtime * 1000),
    linkname: e.linkname ?? '',
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
  }
  if (Object.keys(pax).length > 0) h.pax = pax
  return h
}

/** Files up to this size are read whole, ahead of the tar writer; larger ones are streamed. */
const SMALL_FILE = 1 << 20
/** How far ahead small files are read: entries, and bytes held. */
const READ_AHEAD_ENTRIES = 16
const READ_AHEAD_BYTES = 4 << 20

type Prepared = { entry: LayerEntry; content?: Promise<Uint8Array> | undefined }

/**
 * Yields entries with the content of small files already being read, a bounded window ahead,
 * so that disk reads overlap with tar encoding and compression.
 */
async function* readAhead(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>): AsyncGenerator<Prepared> {
  const window: Prepared[] = []
  let bytes = 0
  for await (const entry of entries) {
    const small = entry.type === 'file' && entry.size > 0 && entry.size <= SMALL_FILE && entry.read !== undefined
    const content = small ? entry.read?.() : undefined
    content?.catch(() => {}) // observed when its turn comes
    window.push({ entry, content })
    bytes += small ? entry.size : 0
    while (window.length > READ_AHEAD_ENTRIES || bytes > READ_AHEAD_BYTES) {
      const p = window.shift() as Prepared
      if (p.content) bytes -= p.entry.size
      yield p
    }
  }
  yield* window
}

/**
 * A tar stream of the entries, produced with back-pressure (files are read only as fast as
 * the consumer takes the tar). `stats` resolves when the last entry is written. An error in a
 * source fails the stream.
 */
export function tarEntries(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>, mtime: number): { stream: Readable; stats: Promise<TarStats> } {
  const pack = tarStream.pack()
  const add = (header: tarStream.Header, content?: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve())
      if (content) pack.entry(header, Buffer.from(content.buffer, content.byteOffset, content.byteLength), cb)
      // A file entry given no buffer waits for its body to be written: give empty files an empty one.
      else if (header.type === 'file') pack.entry(header, Buffer.alloc(0), cb)
      else pack.entry(header, cb)
    })
  const stats = (async () => {
    let n = 0
    try {
      for await (const { entry: e, content } of readAhead(entries)) {
        const header = tarHeader(e, mtime)
        if (content) await add(header, await content)
        else if (e.type === 'file' && e.size > 0) {
          if (!e.open) throw new Error(`layer entry ${e.path} has no content`)
          await pipeline(e.open(), pack.entry(header))
        } else await add(header)
        n++
      }
      pack.finalize()
      return { entries: n }
    } catch (err) {
      pack.destroy(err as Error)
      throw err
    }
  })()
  stats.catch(() => {}) // surfaced through the stream; callers awaiting stats still see it
  return { stream: pack as unknown as Readable, stats }
}

/** The owner of a tar entry, taking PAX `uid`/`gid` records over the ustar fields (tar-stream does not). */
export function entryOwner(h: tarStream.Header): { uid: number; gid: number } {
  const pax = (h.pax ?? {}) as Record<string, string>
  const num = (v: string | undefined, fallback: number | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : (fallback ?? 0))
  return { uid: num(pax.uid, h.uid), gid: num(pax.gid, h.gid) }
}
