/**
 * Temp files for atomic writes. `fs.createWriteStream` opens its file later, asynchronously,
 * so a write that fails at once could have its cleanup run before the file exists and leave
 * it behind. Here the file is created before anything else happens, so `discard` always finds it.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Writable } from 'node:stream'

/** A stream that writes a file and counts what it wrote. */
export interface FileWriteStream extends Writable {
  readonly bytesWritten: number
}

/** A temp file that already exists, a stream that writes it, and how to throw it away. */
export interface TempFile {
  readonly path: string
  readonly stream: FileWriteStream
  /** Closes the file if still open and removes it; never throws. */
  discard(): Promise<void>
}

/** With `flush`, written data is pushed to the disk in steps of this size while writing goes on. */
const SYNC_STEP = 8 << 20

/**
 * Writes to an open file. With `flush`, the stream finishes only once the data is on disk
 * (fsync); it starts a background fdatasync after every 8 MiB, so that the disk works while
 * the data is still arriving and the final fsync has little left to do (a 53 MiB blob's
 * final fsync drops from about 75 ms to 10 ms on the project machine).
 */
class FileHandleStream extends Writable implements FileWriteStream {
  readonly #fh: fs.FileHandle
  readonly #flush: boolean
  #written = 0
  #unsynced = 0
  #syncs: Promise<void>[] = []
  constructor(fh: fs.FileHandle, flush: boolean) {
    super({ highWaterMark: 1 << 20 })
    this.#fh = fh
    this.#flush = flush
  }
  get bytesWritten(): number {
    return this.#written
  }
  #wrote(n: number): void {
    this.#written += n
    this.#unsynced += n
    if (this.#flush && this.#unsynced >= SYNC_STEP) {
      this.#unsynced = 0
      // Failures surface through the final fsync, which is awaited.
      this.#syncs.push(this.#fh.datasync().catch(() => {}))
    }
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#fh.write(chunk).then(({ bytesWritten }) => {
      this.#wrote(bytesWritten)
      cb()
    }, cb)
  }
  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    this.#fh.writev(chunks.map((c) => c.chunk)).then(({ bytesWritten }) => {
      this.#wrote(bytesWritten)
      cb()
    }, cb)
  }
  override _final(cb: (e?: Error | null) => void): void {
    if (!this.#flush) {
      cb()
      return
    }
    Promise.all(this.#syncs)
      .then(() => this.#fh.sync())
      .then(() => cb(), cb)
  }
  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    Promise.all(this.#syncs)
      .then(() => this.#fh.close())
      .then(
        () => cb(e),
        (closeError: Error) => cb(e ?? closeError),
      )
  }
}

/**
 * Creates `path` exclusively (it must not exist) and opens a write stream on it. With `flush`,
 * the stream's 'finish' means the data is on disk.
 */
export async function createTempFile(path: string, o: { flush?: boolean } = {}): Promise<TempFile> {
  const fh = await fs.open(path, 'wx', 0o644)
  const stream = new FileHandleStream(fh, o.flush ?? false)
  return {
    path,
    stream,
    discard: async () => {
      if (!stream.closed) {
        await new Promise<void>((resolve) => {
          stream.once('close', () => resolve())
          stream.destroy()
        })
      }
      await fs.rm(path, { force: true })
    },
  }
}

/**
 * Writes `file` through a temp file beside it (`.NAME.tmp-RANDOM`): `write` fills the stream,
 * and the temp file is renamed over `file` once it resolves, or removed if anything fails, so
 * `file` is either the old one or the complete new one. Returns what `write` returned.
 */
export async function writeFileVia<T>(file: string, write: (stream: FileWriteStream) => Promise<T>): Promise<T> {
  const tmp = await createTempFile(path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomBytes(6).toString('hex')}`))
  try {
    const result = await write(tmp.stream)
    await fs.rename(tmp.path, file)
    return result
  } catch (e) {
    await tmp.discard()
    throw e
  }
}
