/**
 * An archive file opened for reading: indexed once (see tar-index.ts), then each entry read where
 * it lies. A gzip-compressed archive (`.tar.gz`) is decompressed once, sequentially, into a temp
 * file that is removed when the process exits.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream, rmSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import { InvalidDocumentError, isErrno, NotFoundError, OcikitError } from '../../errors.ts'
import { createTempFile } from '../../temp-file.ts'
import { indexTar, type TarEntryAt, type TarIndex } from './tar-index.ts'

const staged = new Set<string>()
let cleanupInstalled = false
function removeOnExit(file: string): void {
  staged.add(file)
  if (cleanupInstalled) return
  cleanupInstalled = true
  process.once('exit', () => {
    for (const f of staged) rmSync(f, { force: true })
  })
}

/** An indexed tar file. `name` names it in messages (e.g. `oci-archive:app.tar`). */
export class TarFile {
  readonly name: string
  /** The file whose bytes the index points into (the archive, or its decompressed copy). */
  readonly #path: string
  readonly index: TarIndex
  private constructor(name: string, file: string, index: TarIndex) {
    this.name = name
    this.#path = file
    this.index = index
  }

  /**
   * Opens and indexes `file`. A missing file is MANIFEST_UNKNOWN naming it; a file that is not a
   * tar (or a truncated one) is INVALID_LAYOUT.
   */
  static async open(file: string, name: string): Promise<TarFile> {
    let fh: fs.FileHandle
    try {
      fh = await fs.open(file, 'r')
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new NotFoundError('MANIFEST_UNKNOWN', `${name}: ${file} does not exist`, { cause: e })
      throw e
    }
    let target = file
    try {
      const st = await fh.stat()
      if (!st.isFile()) throw new InvalidDocumentError('INVALID_LAYOUT', name, [`${file} is not a regular file`])
      const head = Buffer.alloc(2)
      await fh.read(head, 0, 2, 0)
      if (head[0] === 0x1f && head[1] === 0x8b) {
        await fh.close()
        target = await TarFile.#gunzip(file, name)
        fh = await fs.open(target, 'r')
      }
      const size = (await fh.stat()).size
      return new TarFile(name, target, await indexTar(fh, size, name))
    } finally {
      await fh.close()
    }
  }

  static async #gunzip(file: string, name: string): Promise<string> {
    const out = path.join(os.tmpdir(), `ocikit-archive-${randomBytes(6).toString('hex')}.tar`)
    const tmp = await createTempFile(out)
    removeOnExit(out)
    try {
      await pipeline(createReadStream(file), zlib.createGunzip(), tmp.stream)
    } catch (e) {
      await tmp.discard()
      throw new InvalidDocumentError('INVALID_LAYOUT', name, [`${file} is gzip-compressed but cannot be decompressed: ${(e as Error).message}`], { cause: e })
    }
    return out
  }

  /** The entry of this name, or undefined. */
  entry(name: string): TarEntryAt | undefined {
    return this.index.entries.get(name)
  }

  /** The entry of this name; INVALID_LAYOUT naming `why` when the archive lacks it. */
  need(name: string, why: string): TarEntryAt {
    const e = this.entry(name)
    if (!e) throw new InvalidDocumentError('INVALID_LAYOUT', this.name, [`${name} is missing (${why})`])
    return e
  }

  /** A stream of an entry's bytes (unverified: callers verify against what they expect). */
  stream(e: TarEntryAt, o: { signal?: AbortSignal | undefined } = {}): Readable {
    if (e.size === 0) return Readable.from([])
    return createReadStream(this.#path, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20, signal: o.signal })
  }

  /** A whole small entry (a document), at most `max` bytes (else TOO_LARGE). */
  async read(e: TarEntryAt, max: number): Promise<Buffer> {
    if (e.size > max) throw new OcikitError('TOO_LARGE', `${this.name}: ${e.name} is ${e.size} bytes, over the ${max}-byte limit`)
    const fh = await fs.open(this.#path, 'r')
    try {
      const b = Buffer.alloc(e.size)
      const { bytesRead } = await fh.read(b, 0, e.size, e.offset)
      if (bytesRead < e.size) throw new InvalidDocumentError('INVALID_LAYOUT', this.name, [`${e.name} is truncated`])
      return b
    } finally {
      await fh.close()
    }
  }
}
