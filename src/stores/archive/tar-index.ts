/**
 * A tar file read by seeking: its headers are read once, each entry's data skipped over, into
 * an index of names to offsets; an entry's bytes are then read where they lie. So reading one
 * image out of an archive of ten touches only its bytes.
 *
 * Written here rather than with tar-stream: its extractor reads every byte in order (an entry's
 * data must be consumed to reach the next header). This reader understands what archive writers
 * (docker, podman, skopeo, ocikit) put in: ustar names with a prefix, PAX `path` and `size`
 * records, GNU long names, base-256 sizes.
 */
import type fs from 'node:fs/promises'
import { InvalidDocumentError, UnsafePathError } from '../../errors.ts'
import { cleanEntryPath } from '../../layer/entry.ts'
import { paxRecords, sizeField } from '../../layer/pax-xattrs.ts'

const BLOCK = 512
/** PAX and GNU long-name records larger than this are refused (no writer needs them). */
const MAX_META = 1 << 20

/** Where one regular file of the tar lies. */
export interface TarEntryAt {
  /** The entry's name, normalised (`./a/b` is `a/b`). */
  readonly name: string
  /** Offset of its first data byte in the file. */
  readonly offset: number
  readonly size: number
}

/** The regular files of a tar, by name (the last entry of a name wins, as extraction would), in file order. */
export interface TarIndex {
  readonly entries: ReadonlyMap<string, TarEntryAt>
  /** Directory entries, by name (kept so that a rewrite can carry them over). */
  readonly directories: readonly string[]
}

const str = (b: Buffer, start: number, len: number) => {
  const s = b.subarray(start, start + len)
  const nul = s.indexOf(0)
  return s.toString('utf8', 0, nul < 0 ? s.length : nul)
}

/**
 * Indexes the tar in `fh` (of `fileSize` bytes). A truncated tar, a header whose checksum fails,
 * or an entry running past the end of the file is INVALID_LAYOUT naming `what`; an entry whose
 * name is absolute or has a `..` component is UNSAFE_PATH.
 */
export async function indexTar(fh: fs.FileHandle, fileSize: number, what: string): Promise<TarIndex> {
  const bad = (why: string) => new InvalidDocumentError('INVALID_LAYOUT', what, [why])
  const entries = new Map<string, TarEntryAt>()
  const directories: string[] = []
  const header = Buffer.alloc(BLOCK)
  let at = 0
  let longName: string | undefined
  let pax = new Map<string, Buffer>()
  const readMeta = async (offset: number, size: number) => {
    if (size > MAX_META) throw bad(`a tar metadata record of ${size} bytes at byte ${offset}`)
    const b = Buffer.alloc(size)
    const { bytesRead } = await fh.read(b, 0, size, offset)
    if (bytesRead < size) throw bad(`truncated: a record at byte ${offset} runs past the end of the file`)
    return b
  }
  for (;;) {
    const { bytesRead } = await fh.read(header, 0, BLOCK, at)
    if (bytesRead === 0) break // a tar that ends without its end-of-archive blocks
    if (bytesRead < BLOCK) throw bad(`truncated: a partial header at byte ${at}`)
    if (header.every((b) => b === 0)) break // end of archive
    let sum = 0
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] as number)
    if (Number.parseInt(str(header, 148, 8).trim() || 'x', 8) !== sum) throw bad(`not a tar, or damaged: the header at byte ${at} fails its checksum`)
    const type = String.fromCharCode(header[156] as number)
    let size = sizeField(header)
    if (!Number.isFinite(size) || size < 0) throw bad(`the header at byte ${at} has an unreadable size`)
    const data = at + BLOCK
    if (type === 'x' || type === 'g') {
      const recs = paxRecords(await readMeta(data, size))
      if (type === 'x') pax = recs
    } else if (type === 'L') {
      longName = str(await readMeta(data, size), 0, size)
    } else {
      const prefix = str(header, 345, 155)
      const raw = pax.get('path')?.toString('utf8') ?? longName ?? (prefix ? `${prefix}/${str(header, 0, 100)}` : str(header, 0, 100))
      if (pax.has('size')) size = Number(pax.get('size')?.toString('latin1'))
      let name: string
      try {
        name = cleanEntryPath(raw)
      } catch (e) {
        throw e instanceof UnsafePathError ? new UnsafePathError(raw, `in ${what}: ${e.message.replace(/^.*?: /, '')}`) : e
      }
      if (data + size > fileSize) throw bad(`truncated: entry '${name}' (${size} bytes at byte ${data}) runs past the end of the file (${fileSize} bytes)`)
      if (type === '0' || type === '\0' || type === '7') entries.set(name, { name, offset: data, size })
      else if (type === '5' && name !== '') directories.push(name)
      pax = new Map()
      longName = undefined
    }
    at = data + Math.ceil(size / BLOCK) * BLOCK
    if (at > fileSize && size > 0) throw bad(`truncated at byte ${fileSize}`)
  }
  return { entries, directories }
}
