/**
 * Writes an archive as a stream: entries go into a tar (tar-stream's packer) written to a temp
 * file beside the target, one after another as they come, each blob straight from its source;
 * `finish()` completes the tar, flushes it to disk and renames it over the target, so the file
 * appears complete or not at all. Entries are stamped the same way every time (mode 0644, owner
 * 0:0, time 1970-01-01), so the same content makes the same archive.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { finished, pipeline } from 'node:stream/promises'
import tarStream from 'tar-stream'
import { OcikitError } from '../../errors.ts'
import { createTempFile, type TempFile } from '../../temp-file.ts'
import { lockFile } from '../file-lock.ts'
import { TarFile } from './tar-file.ts'
import type { TarEntryAt } from './tar-index.ts'

/** A tar being written to a temp file that becomes `file`. */
export class TarWriter {
  readonly file: string
  readonly #tmp: TempFile
  readonly #pack = tarStream.pack()
  readonly #done: Promise<void>
  /** Entries are written one after another: each waits for the one before. */
  #queue: Promise<unknown> = Promise.resolve()
  #failed: unknown
  readonly #release: () => Promise<void>
  private constructor(file: string, tmp: TempFile, release: () => Promise<void>) {
    this.file = file
    this.#tmp = tmp
    this.#release = release
    // A failed entry destroys the packer with its error, which the write reports already.
    this.#pack.on('error', (e) => {
      this.#failed ??= e
    })
    this.#pack.pipe(tmp.stream)
    this.#done = finished(tmp.stream)
    this.#done.catch((e: unknown) => {
      this.#failed ??= e
    })
  }

  /**
   * Starts a tar that will become `file` (its directory must exist), under the file's lock, held
   * until the write finishes or is discarded: two writes of one archive take turns, so neither
   * loses the other's tags. Temp files a killed write left beside the file are removed (no live
   * writer can own one while the lock is held).
   */
  static async create(file: string): Promise<TarWriter> {
    const release = await lockFile(path.resolve(file))
    try {
      const prefix = `.${path.basename(file)}.tmp-`
      for (const f of await fs.readdir(path.dirname(file)).catch(() => [] as string[])) {
        if (f.startsWith(prefix)) await fs.rm(path.join(path.dirname(file), f), { force: true })
      }
      const tmp = await createTempFile(path.join(path.dirname(file), `${prefix}${randomBytes(6).toString('hex')}`), { flush: true })
      return new TarWriter(file, tmp, release)
    } catch (e) {
      await release().catch(() => {})
      throw e
    }
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#failed) throw this.#failed
      return work()
    })
    this.#queue = run.catch(() => {})
    return run
  }

  /** Adds a directory entry (`name` without the trailing '/'). */
  directory(name: string): Promise<void> {
    return this.#enqueue(
      () =>
        new Promise<void>((resolve, reject) => {
          this.#pack.entry({ name: `${name}/`, type: 'directory', mode: 0o755, mtime: new Date(0), uid: 0, gid: 0 }, (e) => (e ? reject(e) : resolve()))
        }),
    )
  }

  /**
   * Adds a file of `size` bytes from `body` (bytes, or a stream that must give exactly `size`
   * bytes). A body that fails, or gives another size, fails the entry and the whole archive.
   */
  add(name: string, size: number, body: Uint8Array | (() => Promise<Readable>)): Promise<void> {
    return this.#enqueue(async () => {
      const source = body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : await body()
      const entry = this.#pack.entry({ name, size, type: 'file', mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 })
      try {
        await pipeline(source, entry)
      } catch (e) {
        this.#failed ??= e
        this.#pack.destroy(e as Error)
        throw e
      }
    })
  }

  /** Completes the tar after every entry queued so far, flushes it and renames it over the target. */
  async finish(): Promise<void> {
    await this.#enqueue(async () => {
      this.#pack.finalize()
      await this.#done
    })
    try {
      await fs.rename(this.#tmp.path, this.file)
    } finally {
      await this.#release().catch(() => {})
    }
  }

  /** Throws the temp file away; the target is left as it was. Never throws. */
  async discard(): Promise<void> {
    this.#pack.destroy()
    await this.#tmp.discard()
    await this.#release().catch(() => {})
  }
}

/**
 * Starts rewriting the archive `file`: a new tar beside it, into which the entries of the old one
 * that `keep` names are carried over first (read where they lie). `readOld` reads what the sink
 * needs of the old archive (its index.json, its manifest.json); a file that does not exist yet
 * starts empty, and one that cannot be read as such an archive fails the write.
 */
export async function rewriteArchive<T>(
  file: string,
  name: string,
  readOld: (tar: TarFile) => Promise<T>,
  keep: (entry: TarEntryAt, old: T) => boolean,
  first: (writer: TarWriter) => Promise<void> = async () => {},
): Promise<{ writer: TarWriter; old: T | undefined; held: Map<string, number> }> {
  let old: { tar: TarFile; doc: T } | undefined
  try {
    const tar = await TarFile.open(file, name)
    old = { tar, doc: await readOld(tar) }
  } catch (e) {
    if (!(e instanceof OcikitError && e.code === 'MANIFEST_UNKNOWN')) throw e // the file is new
  }
  const writer = await TarWriter.create(file)
  await first(writer)
  const held = new Map<string, number>()
  if (old) {
    const from = old.tar
    for (const e of from.index.entries.values()) {
      if (!keep(e, old.doc)) continue
      held.set(e.name, e.size)
      await writer.add(e.name, e.size, async () => from.stream(e))
    }
  }
  return { writer, old: old?.doc, held }
}
