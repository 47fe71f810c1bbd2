/** Reading layer files: detecting their compression and listing their entries. */

import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { type Readable, Transform } from 'node:stream'
import tarStream from 'tar-stream'
import { OcikitError } from '../errors.ts'
import { chain } from '../image/view.ts'
import type { Compression } from '../spec/media-types.ts'
import { decompressor } from './compress.ts'
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './entry.ts'
import { xattrsOfPax } from './xattr.ts'

/** The compression of a blob, from its first bytes (gzip 1f8b, zstd 28b52ffd, else none). */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip'
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd'
  return 'none'
}

/** The compression of a layer file, from its first bytes. */
export async function fileCompression(file: string): Promise<Compression> {
  const fh = await open(file, 'r').catch((e) => {
    throw new OcikitError('INVALID_ARGUMENT', `cannot read ${file}: ${(e as Error).message}`, { cause: e })
  })
  try {
    const head = Buffer.alloc(4)
    await fh.read(head, 0, 4, 0)
    return sniffCompression(head)
  } finally {
    await fh.close()
  }
}

/**
 * Completes the tail of a tar stream: pads the last block and adds the two end-of-archive
 * blocks. Some writers (umoci 0.4.7, for one) end their layers right after the last file's
 * bytes, which Go's tar reader accepts but tar-stream refuses. A well-formed tar only gains
 * zero blocks, which readers skip. Layers are verified against their diffID before this step,
 * so it cannot hide a truncated layer.
 */
export function completeTarEnd(): Transform {
  let total = 0
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      total += chunk.length
      cb(null, chunk)
    },
    flush(cb) {
      cb(null, Buffer.alloc(((512 - (total % 512)) % 512) + 1024))
    },
  })
}

/** One entry as `layer ls` shows it. */
export interface ListedEntry {
  path: string
  type: string
  mode: number
  uid: number
  gid: number
  size: number
  linkname?: string | undefined
  /** For whiteouts: what they delete (`path`), or the directory an opaque whiteout hides. */
  whiteout?: { kind: 'delete' | 'opaque'; target: string } | undefined
  /** Names of the extended attributes the entry carries. */
  xattrs?: string[] | undefined
}

/** Lists the entries of an uncompressed tar stream. */
export async function* listTar(tar: Readable): AsyncGenerator<ListedEntry> {
  const extract = tarStream.extract()
  const tail = chain(tar, completeTarEnd())
  tail.on('error', (e) => extract.destroy(e))
  tail.pipe(extract as unknown as NodeJS.WritableStream)
  for await (const entry of extract) {
    const h = entry.header
    entry.resume()
    const path = h.name.replace(/\/$/, '')
    const base = path.slice(path.lastIndexOf('/') + 1)
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : ''
    let whiteout: ListedEntry['whiteout']
    if (base === OPAQUE_WHITEOUT) whiteout = { kind: 'opaque', target: dir || '.' }
    else if (base.startsWith(WHITEOUT_PREFIX)) whiteout = { kind: 'delete', target: (dir ? `${dir}/` : '') + base.slice(WHITEOUT_PREFIX.length) }
    const xattrs = xattrsOfPax(h.pax as Record<string, string> | undefined).map(([name]) => name)
    yield {
      path,
      type: h.type ?? 'file',
      mode: h.mode ?? 0,
      ...entryOwner(h),
      size: h.size ?? 0,
      linkname: h.linkname ?? undefined,
      whiteout,
      ...(xattrs.length ? { xattrs } : {}),
    }
  }
}

/** Lists the entries of a layer file (any compression). */
export async function* listLayerFile(file: string): AsyncGenerator<ListedEntry> {
  const c = await fileCompression(file)
  yield* listTar(chain(createReadStream(file), decompressor(c)))
}

/** The owner of a tar entry, taking PAX `uid`/`gid` records over the ustar fields (tar-stream does not). */
export function entryOwner(h: tarStream.Header): { uid: number; gid: number } {
  const pax = (h.pax ?? {}) as Record<string, string>
  const num = (v: string | undefined, fallback: number | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : (fallback ?? 0))
  return { uid: num(pax.uid, h.uid), gid: num(pax.gid, h.gid) }
}
