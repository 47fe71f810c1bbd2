/** Reading layer files: detecting their compression and listing their entries. */

import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { addAbortSignal, type Readable, Transform } from 'node:stream'
import tarStream from 'tar-stream'
import { decompressor } from '../compress.ts'
import type { Compression } from '../documents/media-types.ts'
import { OcikitError } from '../errors.ts'
import { chain } from '../streams.ts'
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
export interface TarEntryListing {
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
function tarFormatError(e: unknown, what: string): unknown {
  if (!(e instanceof Error) || e.constructor !== Error || (e as NodeJS.ErrnoException).code !== undefined) return e
  return new OcikitError('INVALID_LAYER', `${what} is not a valid tar: ${e.message}`, { cause: e })
}

const isId = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0

/** Why a header cannot be trusted: a number tar-stream could not read (it gives NaN for a field that is not octal). */
function badHeaderField(h: tarStream.Header): string | undefined {
  if (!isId(h.mode)) return 'mode'
  if (!isId(h.uid) || !isId(h.gid)) return 'owner'
  if (h.mtime && Number.isNaN(h.mtime.getTime())) return 'time'
  if ((h.type === 'character-device' || h.type === 'block-device') && (!isId(h.devmajor) || !isId(h.devminor))) return 'device numbers'
  return undefined
}

/** A tar being read by {@link readTar}. */
export interface TarReader {
  /** The entries, in order; each body must be read or resumed before the next comes. */
  readonly entries: AsyncGenerator<TarEntry>
  /** The header tap in front of the parser: `tap.xattrsOf(header)` gives an entry's exact xattr bytes. */
  readonly tap: PaxXattrTap
  /**
   * The error to report for `e`, which ended the reading: the input's own failure when `e` only
   * says that an entry's body was destroyed because of it, and parser errors as INVALID_LAYER
   * naming the tar (tarFormatError). `entries` throws errors already explained.
   */
  explain(e: unknown): unknown
  /** Stops reading and closes the input (when handling an entry failed). */
  destroy(): void
}

/**
 * Reads an uncompressed tar stream, `what` naming it in errors. The input passes through
 * completeTarEnd and the header tap (which also stops a header whose size tar-stream would
 * misread, and wait forever) into tar-stream's parser. An entry whose header holds a mode,
 * owner, time or device number that is not a number is INVALID_LAYER naming it, rather than
 * a value made up.
 */
export function readTar(tar: Readable, what: string, o: { signal?: AbortSignal | undefined } = {}): TarReader {
  const extract = tarStream.extract()
  const tap = new PaxXattrTap()
  if (o.signal) addAbortSignal(o.signal, tar)
  const input = chain(tar, completeTarEnd(), tap)
  /** The first failure of the input or the parser, which an entry's body reports only as 'destroyed'. */
  let failure: unknown
  input.on('error', (e) => {
    failure ??= e
    extract.destroy(e)
  })
  extract.on('error', (e) => {
    failure ??= e
  })
  input.pipe(extract as unknown as NodeJS.WritableStream)
  const explain = (e: unknown) => tarFormatError(failure !== undefined && (e as NodeJS.ErrnoException).code === 'STREAM_DESTROYED' ? failure : e, what)
  async function* entries(): AsyncGenerator<TarEntry> {
    try {
      for await (const entry of extract) {
        const bad = badHeaderField(entry.header)
        if (bad) throw new OcikitError('INVALID_LAYER', `${what}: entry ${entry.header.name} has an invalid ${bad} in its tar header`)
        yield entry
      }
    } catch (e) {
      throw explain(e)
    }
  }
  return {
    entries: entries(),
    tap,
    explain,
    destroy: () => {
      extract.destroy()
      input.destroy()
    },
  }
}

/** Lists the entries of an uncompressed tar stream; `what` names it in errors. */
export async function* listTar(tar: Readable, what = 'layer'): AsyncGenerator<TarEntryListing> {
  for await (const entry of readTar(tar, what).entries) {
    const h = entry.header
    entry.resume()
    const path = h.name.replace(/\/$/, '')
    const base = path.slice(path.lastIndexOf('/') + 1)
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : ''
    let whiteout: TarEntryListing['whiteout']
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
export async function* listLayerFile(file: string): AsyncGenerator<TarEntryListing> {
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
