/**
 * Temp files for atomic writes. `fs.createWriteStream` opens its file later, asynchronously,
 * so a write that fails at once could have its cleanup run before the file exists and leave
 * it behind. Here the file is created before anything else happens, so `discard` always finds it.
 */
import type { WriteStream } from 'node:fs'
import fs from 'node:fs/promises'

/** A temp file that already exists, a stream that writes it, and how to throw it away. */
export interface TempFile {
  readonly path: string
  readonly stream: WriteStream
  /** Closes the file if still open and removes it; never throws. */
  discard(): Promise<void>
}

/** Creates `path` exclusively (it must not exist) and opens a write stream on it. */
export async function createTempFile(path: string, o: { flush?: boolean } = {}): Promise<TempFile> {
  const fh = await fs.open(path, 'wx', 0o644)
  const stream = fh.createWriteStream({ flush: o.flush ?? false })
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
