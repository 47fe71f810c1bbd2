/**
 * An OCI image layout directory: `oci-layout`, `index.json` and `blobs/<alg>/<hex>`.
 *
 * Blobs are written through a hasher into a temp file beside their final place and
 * renamed only after digest and size match. `index.json` is changed under a lock and
 * replaced atomically, so concurrent writers (other processes too) lose nothing.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BufferPool, releaseChunk } from '../../buffer-pool.ts'
import { type Digest, DigestingStream, digestAlgorithm, digestHex, type Expected, parseDigest, verifiedAs, verifyBytes, verifyingStream } from '../../digest.ts'
import { canonicalJson } from '../../documents/canonical.ts'
import { MediaType } from '../../documents/media-types.ts'
import { type Descriptor, type Index, indexSchema, ociLayoutSchema } from '../../documents/schemas.ts'
import { checkSchema, MAX_DOCUMENT_SIZE, parseJsonBytes } from '../../documents/validate.ts'
import { DigestMismatchError, InvalidDocumentError, isErrno, NotFoundError, OcikitError, SizeMismatchError } from '../../errors.ts'
import type { BlobSource, IoOptions } from '../../image/types.ts'
import { chain } from '../../streams.ts'
import { createTempFile } from '../../temp-file.ts'
import { lockFile, preloadLock } from '../file-lock.ts'

const LAYOUT_VERSION = '1.0.0'
/** Largest `index.json` accepted (it lists every tag, so it may exceed a manifest). */
const MAX_INDEX_JSON = 64 * 1024 * 1024
/** Prefix of temp files inside `blobs/<alg>/`; fsck and gc know to skip them. */
export const TEMP_PREFIX = '.tmp-'
/** The whole name of a blob temp file as ocikit makes them: the only files besides blobs that gc deletes. */
const BLOB_TEMP_NAME = /^\.tmp-[0-9a-f]{16}$/

/** Options of {@link OciLayout.writeBlob}. */
export interface WriteBlobOptions extends IoOptions {
  /** Pass-through streams the bytes also flow through on their way to disk (progress taps). */
  taps?: NodeJS.ReadWriteStream[] | undefined
  /**
   * Awaited after the bytes are written and checked, before the blob is renamed into place: a
   * check that runs beside the transfer. If it rejects, the temp file is removed and nothing
   * else changes; its error is thrown.
   */
  commitAfter?: Promise<unknown> | undefined
}

/** Result of writing a blob. */
export interface WrittenBlob {
  digest: Digest
  size: number
  /** True when the layout already had the blob and nothing was written. */
  existed: boolean
}

/** An OCI image layout on disk. Obtain one with {@link OciLayout.open} or {@link OciLayout.create}. */
export class OciLayout implements BlobSource {
  /** Absolute path of the layout directory. */
  readonly dir: string
  /** `oci:DIR`, for messages. */
  readonly name: string
  private constructor(dir: string) {
    this.dir = path.resolve(dir)
    this.name = `oci:${dir}`
  }

  /** Opens an existing layout; throws INVALID_LAYOUT naming the file when it is not one. */
  static async open(dir: string): Promise<OciLayout> {
    const l = new OciLayout(dir)
    // Both are checked, the oci-layout file's verdict first when both fail.
    const [layoutFile, index, blobDirs] = await Promise.allSettled([l.#checkLayoutFile(), l.readIndex(), l.#checkBlobDirs()])
    if (layoutFile.status === 'rejected') throw layoutFile.reason
    if (index.status === 'rejected') throw index.reason
    if (blobDirs.status === 'rejected') throw blobDirs.reason
    return l
  }

  /**
   * Refuses (INVALID_LAYOUT) a layout whose `blobs/` or `blobs/<alg>/` is a symlink or not a
   * directory: writes would land, and gc would delete, wherever the link leads.
   */
  async #checkBlobDirs(): Promise<void> {
    const root = path.join(this.dir, 'blobs')
    const refuse = (p: string, what: string) =>
      new InvalidDocumentError('INVALID_LAYOUT', this.name, [`${p} is ${what}; ocikit reads and writes blobs only in real directories of the layout`])
    const st = await fs.lstat(root).catch((e) => {
      if (isErrno(e, 'ENOENT')) return undefined
      throw e
    })
    if (!st) return
    if (st.isSymbolicLink()) throw refuse(root, 'a symlink')
    if (!st.isDirectory()) throw refuse(root, 'not a directory')
    for (const e of await fs.readdir(root, { withFileTypes: true })) {
      if (e.isSymbolicLink()) throw refuse(path.join(root, e.name), 'a symlink')
    }
  }

  /**
   * Opens a layout, creating it when `dir` is missing or empty. A non-empty directory that is
   * not a layout is refused (INVALID_LAYOUT) and left untouched.
   */
  static async create(dir: string): Promise<OciLayout> {
    // A layout opened to be written is locked at the end of the write: the lock's code loads
    // now, while the transfer runs, instead of after it.
    preloadLock()
    const l = new OciLayout(dir)
    let entries: string[] = []
    try {
      entries = await fs.readdir(l.dir)
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e
    }
    if (entries.length > 0 && !entries.includes('oci-layout')) {
      throw new InvalidDocumentError('INVALID_LAYOUT', l.name, [
        `${l.dir} exists, is not empty and has no oci-layout file: not an OCI layout; refusing to write into it`,
      ])
    }
    if (entries.length > 0) return OciLayout.open(dir)
    // Build the skeleton beside the target and rename it into place, so that another process
    // never sees a half-made layout. Losing that race is fine: the winner's layout is opened.
    const tmp = `${l.dir}${TEMP_PREFIX}${randomBytes(6).toString('hex')}`
    try {
      await OciLayout.#writeSkeleton(tmp)
      await fs.rename(tmp, l.dir).catch(async (e) => {
        if (isErrno(e, 'ENOTEMPTY') || isErrno(e, 'EEXIST')) return
        if (isErrno(e, 'EBUSY') || isErrno(e, 'EXDEV') || isErrno(e, 'EINVAL')) return OciLayout.#writeSkeleton(l.dir) // a mount point or cwd
        throw e
      })
    } finally {
      await fs.rm(tmp, { recursive: true, force: true })
    }
    return OciLayout.open(dir)
  }

  static async #writeSkeleton(dir: string): Promise<void> {
    await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true })
    await Promise.all([
      writeFileAtomic(path.join(dir, 'index.json'), canonicalJson({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }), true),
      writeFileAtomic(path.join(dir, 'oci-layout'), Buffer.from(`${JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION })}\n`), true),
    ])
  }

  async #checkLayoutFile(): Promise<void> {
    const file = path.join(this.dir, 'oci-layout')
    let bytes: Uint8Array
    try {
      bytes = await readSmallFile(file, this.name, 64 * 1024)
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) {
        const dir = await fs.stat(this.dir).catch(() => undefined)
        const why = !dir ? `${this.dir} does not exist` : !dir.isDirectory() ? `${this.dir} is not a directory` : `${file} is missing: not an OCI layout`
        throw new InvalidDocumentError('INVALID_LAYOUT', this.name, [why], { cause: e })
      }
      throw e
    }
    const doc = checkSchema(ociLayoutSchema, parseJsonBytes(bytes, file, 'INVALID_LAYOUT', 64 * 1024), 'oci-layout', file, 'INVALID_LAYOUT')
    if (!doc.imageLayoutVersion.startsWith('1.')) {
      throw new InvalidDocumentError('INVALID_LAYOUT', file, [`imageLayoutVersion '${doc.imageLayoutVersion}' is not supported (only 1.x)`])
    }
  }

  /** Path of a blob, for a validated digest. The digest is re-checked so no string can escape `blobs/`. */
  blobPath(digest: Digest): string {
    const d = parseDigest(digest)
    return path.join(this.dir, 'blobs', digestAlgorithm(d), digestHex(d))
  }

  /**
   * Marks a blob present as in use now (its mtime), so that gc's grace period covers a write
   * that reuses it; true when it is present (with `size`, when given), false when it is not.
   */
  async renewBlob(digest: Digest, size?: number): Promise<boolean> {
    const p = this.blobPath(digest)
    const now = new Date()
    try {
      await fs.utimes(p, now, now)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return false
      throw e
    }
    return this.hasBlob(digest, size)
  }

  /** The digests of `blobs` that are not present with their size. */
  async missingBlobs(blobs: Iterable<{ digest: Digest; size?: number | undefined }>): Promise<Digest[]> {
    const list = [...blobs]
    const present = await Promise.all(list.map((b) => this.hasBlob(b.digest, b.size)))
    return list.filter((_, i) => !present[i]).map((b) => b.digest)
  }

  /** True when the blob is present (and, when `size` is given, has that size). */
  async hasBlob(digest: Digest, size?: number): Promise<boolean> {
    try {
      const st = await fs.stat(this.blobPath(digest))
      return st.isFile() && (size === undefined || st.size === size)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return false
      throw e
    }
  }

  /** Opens a blob's file: BLOB_UNKNOWN when absent, INVALID_LAYOUT when it is not a regular file. */
  async #openBlobFile(digest: Digest): Promise<OpenedFile> {
    try {
      return await openRegularFile(this.blobPath(digest), this.name)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw this.#missing(digest, e)
      throw e
    }
  }

  #missing(digest: Digest, cause: unknown): NotFoundError {
    return new NotFoundError('BLOB_UNKNOWN', `${this.name}: blob ${digest} is missing (${path.relative(this.dir, this.blobPath(digest))})`, { cause })
  }

  /** A stream of a blob, verified against `d` as it is read. Throws BLOB_UNKNOWN if absent. */
  async openBlob(d: Descriptor, o?: IoOptions): Promise<Readable> {
    const file = new PooledFileStream((await this.#openBlobFile(d.digest)).fh, o?.signal)
    // chain(), not pipe(): a small blob can be read to its end, and fail verification, before
    // the caller attaches its own handlers; the error must wait for them, not crash the process.
    return chain(file, verifyingStream(d, `${this.name} blob ${d.digest}`))
  }

  /** A whole small blob (manifest, config), verified; over 4 MiB is refused before reading. */
  async readBlob(d: Descriptor, _o?: IoOptions): Promise<Uint8Array> {
    return this.readBlobByDigest(d.digest, d.size)
  }

  /** Like {@link readBlob} for a blob whose size is not known beforehand (still capped at 4 MiB). */
  async readBlobByDigest(digest: Digest, size?: number): Promise<Uint8Array> {
    const what = `${this.name} blob ${digest}`
    if (size !== undefined && size > MAX_DOCUMENT_SIZE) {
      throw new OcikitError('TOO_LARGE', `${what} is ${size} bytes, over the ${MAX_DOCUMENT_SIZE}-byte document limit`)
    }
    let bytes: Buffer
    const { fh, size: onDisk } = await this.#openBlobFile(digest)
    try {
      // One byte more than expected (or than the limit): a longer file shows in the same read.
      const { bytes: got, ended } = await readUpTo(fh, (size ?? Math.min(onDisk, MAX_DOCUMENT_SIZE)) + 1)
      if (size !== undefined && got.length !== size) throw new SizeMismatchError(what, size, ended ? got.length : onDisk)
      if (!ended) throw new OcikitError('TOO_LARGE', `${what} is over the ${MAX_DOCUMENT_SIZE}-byte document limit`)
      bytes = got
    } finally {
      await fh.close()
    }
    verifyBytes(bytes, { digest, size }, what)
    return bytes
  }

  /**
   * Writes a blob: streams `data` through a hasher into a temp file in `blobs/<alg>/`, checks
   * digest and size against `expected` (when given), then renames it into place. A blob that is
   * already present is not written again (its mtime is refreshed so gc's grace period covers it).
   * On any failure the temp file is removed and nothing else changes.
   */
  async writeBlob(data: Readable | Uint8Array, expected?: Expected, o?: WriteBlobOptions): Promise<WrittenBlob> {
    if (expected && (await this.renewBlob(expected.digest, expected.size))) {
      if (data instanceof Readable) data.destroy()
      return { digest: expected.digest, size: expected.size ?? (await fs.stat(this.blobPath(expected.digest))).size, existed: true }
    }
    const alg = expected ? digestAlgorithm(expected.digest) : 'sha256'
    const dir = path.join(this.dir, 'blobs', alg)
    await fs.mkdir(dir, { recursive: true })
    const tmp = await createTempFile(path.join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`), { flush: true })
    // A stream that verifies itself against the same digest and size is not hashed twice.
    const checked = data instanceof Readable ? verifiedAs(data) : undefined
    const preverified = expected?.size !== undefined && checked?.digest === expected.digest && checked.size === expected.size
    const hasher = preverified ? undefined : new DigestingStream(alg)
    try {
      const input = data instanceof Readable ? data : Readable.from([Buffer.from(data)])
      const steps = [input, ...(hasher ? [hasher] : []), ...(o?.taps ?? []), tmp.stream] as unknown as [Readable, NodeJS.WritableStream]
      await pipeline(...steps, { signal: o?.signal })
      const digest = hasher ? hasher.digest : (expected?.digest as Digest)
      const size = hasher ? hasher.size : tmp.stream.bytesWritten
      const what = `${this.name}: blob ${expected?.digest ?? digest}`
      if (expected?.size !== undefined && size !== expected.size) throw new SizeMismatchError(what, expected.size, size)
      if (expected && digest !== expected.digest) throw new DigestMismatchError(what, expected.digest, digest)
      await o?.commitAfter
      await fs.rename(tmp.path, this.blobPath(digest))
      return { digest, size, existed: false }
    } catch (e) {
      await tmp.discard()
      throw e
    }
  }

  /** The parsed, validated `index.json`. */
  async readIndex(): Promise<Index> {
    const file = path.join(this.dir, 'index.json')
    let bytes: Uint8Array
    try {
      bytes = await readSmallFile(file, this.name, MAX_INDEX_JSON)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new InvalidDocumentError('INVALID_LAYOUT', this.name, [`${file} is missing`], { cause: e })
      throw e
    }
    return checkSchema(indexSchema, parseJsonBytes(bytes, file, 'INVALID_LAYOUT', MAX_INDEX_JSON), 'index', file, 'INVALID_LAYOUT')
  }

  /**
   * Changes `index.json` under an exclusive lock (held across processes) and replaces it
   * atomically. `change` gets the current index and returns the new one; it may throw to
   * leave the file untouched.
   */
  async updateIndex<T>(change: (index: Index) => Index | Promise<Index>, during?: (index: Index) => Promise<T>): Promise<T | undefined> {
    const release = await this.lock()
    try {
      const next = await change(await this.readIndex())
      await writeFileAtomic(path.join(this.dir, 'index.json'), canonicalJson(next), false)
      return during ? await during(next) : undefined
    } finally {
      await release()
    }
  }

  /** Takes the layout's lock (the one `index.json` changes happen under); returns its release. */
  async lock(): Promise<() => Promise<void>> {
    return lockFile(path.join(this.dir, 'index.json'))
  }

  /**
   * Every blob under `blobs/<alg>/`, with its size and mtime, and ocikit's own temp files there.
   * Only regular files are listed (never a symlink, whatever it points at), and only those named
   * like a blob of a known algorithm or like a temp file ocikit makes: everything else is left
   * alone, since gc deletes what this lists. A `blobs/` or `blobs/<alg>/` that is a symlink is
   * refused (INVALID_LAYOUT).
   */
  async listBlobs(): Promise<{ blobs: { digest: Digest; size: number; mtimeMs: number }[]; temps: { path: string; mtimeMs: number }[] }> {
    await this.#checkBlobDirs()
    const blobs: { digest: Digest; size: number; mtimeMs: number }[] = []
    const temps: { path: string; mtimeMs: number }[] = []
    const root = path.join(this.dir, 'blobs')
    const algs = await fs.readdir(root, { withFileTypes: true }).catch(() => [])
    for (const alg of algs.filter((a) => a.isDirectory())) {
      const dir = path.join(root, alg.name)
      for (const f of await fs.readdir(dir).catch(() => [] as string[])) {
        const p = path.join(dir, f)
        const st = await fs.lstat(p).catch(() => undefined) // gone meanwhile: nothing to list
        if (!st?.isFile()) continue
        if (BLOB_TEMP_NAME.test(f)) temps.push({ path: p, mtimeMs: st.mtimeMs })
        else {
          try {
            blobs.push({ digest: parseDigest(`${alg.name}:${f}`), size: st.size, mtimeMs: st.mtimeMs })
          } catch {
            // Not a blob name we know (another algorithm, or not a digest); leave it alone.
          }
        }
      }
    }
    return { blobs, temps }
  }

  /** Reads a whole blob without verifying it, for fsck's own hashing. */
  async rawBlobStream(digest: Digest): Promise<Readable> {
    return (await this.#openBlobFile(digest)).fh.createReadStream({ highWaterMark: 1 << 20 })
  }
}

/**
 * Writes a file atomically: a temp file beside it, flushed, then renamed over it (or, with
 * `exclusive`, linked into place only if the file does not exist yet).
 */
async function writeFileAtomic(final: string, bytes: Uint8Array, exclusive: boolean): Promise<void> {
  const tmp = `${final}${TEMP_PREFIX}${randomBytes(6).toString('hex')}`
  try {
    await fs.writeFile(tmp, bytes, { flush: true })
    if (exclusive) {
      await fs.link(tmp, final).catch((e) => {
        if (!isErrno(e, 'EEXIST')) throw e
      })
    } else {
      await fs.rename(tmp, final)
    }
  } finally {
    await fs.rm(tmp, { force: true })
  }
}

/** An open regular file and its size when opened. */
interface OpenedFile {
  fh: fs.FileHandle
  size: number
}

/**
 * Opens a file of a layout for reading, following symlinks. Anything but a regular file is an
 * INVALID_LAYOUT error naming it: a directory, a device that never ends, or a FIFO (opened
 * without blocking, where a plain open would wait for a writer forever). ENOENT passes through.
 */
async function openRegularFile(file: string, layoutName: string): Promise<OpenedFile> {
  let fh: fs.FileHandle
  try {
    fh = await fs.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  } catch (e) {
    if (!isErrno(e, 'ENXIO')) throw e // a socket
    throw new InvalidDocumentError('INVALID_LAYOUT', layoutName, [`${file} is not a regular file`], { cause: e })
  }
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new InvalidDocumentError('INVALID_LAYOUT', layoutName, [`${file} is not a regular file`])
    return { fh, size: st.size }
  } catch (e) {
    await fh.close()
    throw e
  }
}

/** A whole small file of a layout (a regular file of at most `max` bytes, else INVALID_LAYOUT). */
async function readSmallFile(file: string, layoutName: string, max: number): Promise<Buffer> {
  const { fh, size } = await openRegularFile(file, layoutName)
  try {
    // Sized from the stat, not the limit: a 64 MiB buffer for every index.json read is costly.
    const { bytes, ended } = await readUpTo(fh, Math.min(size, max) + 1)
    if (!ended) throw new InvalidDocumentError('INVALID_LAYOUT', layoutName, [`${file} is over ${max} bytes`])
    return bytes
  } finally {
    await fh.close()
  }
}

/**
 * Reads from the start of an open file until `limit` bytes or the end: `ended` tells which.
 * A small file of known size takes one read instead of a stat and a read loop.
 */
async function readUpTo(fh: fs.FileHandle, limit: number): Promise<{ bytes: Buffer; ended: boolean }> {
  const buf = Buffer.allocUnsafe(limit)
  let at = 0
  while (at < limit) {
    const { bytesRead } = await fh.read(buf, at, limit - at, at)
    if (bytesRead === 0) return { bytes: buf.subarray(0, at), ended: true }
    at += bytesRead
  }
  return { bytes: buf, ended: false }
}

/**
 * Reads a whole file in 1 MiB chunks taken from a small pool of buffers: a consumer that hands
 * chunks back with `releaseChunk` (the registry upload does, once a chunk is on the socket)
 * has the file read into the same few buffers over and over instead of fresh ones.
 */
class PooledFileStream extends Readable {
  readonly #fh: fs.FileHandle
  readonly #pool = new BufferPool(1 << 20, 8)
  constructor(fh: fs.FileHandle, signal?: AbortSignal) {
    super({ highWaterMark: 1, objectMode: false, signal })
    this.#fh = fh
  }
  override _read(): void {
    const b = this.#pool.take()
    this.#fh.read(b, 0, b.length, null).then(
      ({ bytesRead }) => {
        if (bytesRead === b.length) {
          this.push(b)
          return
        }
        // A short last chunk (or a small blob) is copied out, as fs.ReadStream does, so that
        // whoever keeps it does not keep a whole 1 MiB buffer; the buffer goes straight back.
        const rest = bytesRead === 0 ? null : Buffer.from(b.subarray(0, bytesRead))
        releaseChunk(b)
        this.push(rest)
      },
      (e: Error) => this.destroy(e),
    )
  }
  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    this.#fh.close().then(
      () => cb(e),
      (closeError: Error) => cb(e ?? closeError),
    )
  }
}
