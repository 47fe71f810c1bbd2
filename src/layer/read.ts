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
import { PaxXattrTap } from './pax-xattrs.ts'
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

/** One entry of a tar being read: its header, and a stream of its body. */
export type TarEntry = tarStream.Extract extends AsyncIterable<infer E> ? E : never

/**
 * An error of the tar parser (tar-stream throws plain Errors with no code: a bad header
 * checksum, an unexpected end) as INVALID_LAYER naming `what`, the parser's error as its cause.
 * Every other error (I/O, digests, aborts, ocikit's own) is returned as it is.
 */
export function tarFormatError(e: unknown, what: string): unknown {
  if (!(e instanceof Error) || e.constructor !== Error || (e as NodeJS.ErrnoException).code !== undefined) return e
  return new OcikitError('INVALID_LAYER', `${what} is not a valid tar: ${e.message}`, { cause: e })
}

const isId = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0

/**
 * Tar entries of an extractor, with parser errors as INVALID_LAYER naming `what`
 * (tarFormatError). A header whose numbers tar-stream could not read (it gives NaN for a field
 * that is not octal) is INVALID_LAYER naming the entry, rather than a mode, owner or time made up.
 */
export async function* tarParsed(extract: tarStream.Extract, what: string): AsyncGenerator<TarEntry> {
  try {
    for await (const entry of extract) {
      const h = entry.header
      const bad = !isId(h.mode)
        ? 'mode'
        : !isId(h.uid) || !isId(h.gid)
          ? 'owner'
          : h.mtime && Number.isNaN(h.mtime.getTime())
            ? 'time'
            : (h.type === 'character-device' || h.type === 'block-device') && (!isId(h.devmajor) || !isId(h.devminor))
              ? 'device numbers'
              : undefined
      if (bad) throw new OcikitError('INVALID_LAYER', `${what}: entry ${h.name} has an invalid ${bad} in its tar header`)
      yield entry
    }
  } catch (e) {
    throw tarFormatError(e, what)
  }
}

/** Lists the entries of an uncompressed tar stream; `what` names it in errors. */
export async function* listTar(tar: Readable, what = 'layer'): AsyncGenerator<ListedEntry> {
  const extract = tarStream.extract()
  // The tap also stops a tar whose header sizes would leave tar-stream waiting forever.
  const tail = chain(tar, completeTarEnd(), new PaxXattrTap())
  tail.on('error', (e) => extract.destroy(e))
  tail.pipe(extract as unknown as NodeJS.WritableStream)
  for await (const entry of tarParsed(extract, what)) {
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
  try {
    yield* listTar(chain(createReadStream(file), decompressor(c)), file)
  } catch (e) {
    // zlib's errors (Z_DATA_ERROR, Z_BUF_ERROR for a cut file) and zstd's say nothing of the file.
    const code = String((e as NodeJS.ErrnoException).code ?? '')
    if (code.startsWith('Z_') || code.startsWith('ERR_ZSTD')) {
      throw new OcikitError('INVALID_LAYER', `${file} is not valid ${c} data: ${(e as Error).message}`, { cause: e })
    }
    throw e
  }
}

/** The owner of a tar entry, taking PAX `uid`/`gid` records over the ustar fields (tar-stream does not). */
export function entryOwner(h: tarStream.Header): { uid: number; gid: number } {
  const pax = (h.pax ?? {}) as Record<string, string>
  const num = (v: string | undefined, fallback: number | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : (fallback ?? 0))
  return { uid: num(pax.uid, h.uid), gid: num(pax.gid, h.gid) }
}
