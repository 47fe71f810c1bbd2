/** Stream helpers shared by layers, stores and the write engine: chaining with errors carried, progress taps. */
import { pipeline, type Readable, Transform, type Writable } from 'node:stream'

/** Progress of a long operation: what is worked on, how far, of how much. */
export interface Progress {
  /** What is being worked on, e.g. a blob digest. */
  readonly id: string
  readonly done: number
  readonly total?: number | undefined
}

/** Pipes `src` through `steps`, returning the last stream; an error anywhere fails the last stream. */
export function chain(src: Readable, ...steps: NodeJS.ReadWriteStream[]): Readable {
  if (steps.length === 0) return src
  return pipeline([src, ...steps] as unknown as [Readable, NodeJS.WritableStream], () => {}) as unknown as Readable
}

/** A pass-through that reports bytes seen as progress of `id` (about every 64 KiB and at the end). */
export function progressTap(id: string, total: number | undefined, onProgress: ((p: Progress) => void) | undefined): NodeJS.ReadWriteStream[] {
  if (!onProgress) return []
  let done = 0
  let reported = 0
  return [
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        done += chunk.length
        if (done - reported >= 1 << 16) {
          reported = done
          onProgress({ id, done, total })
        }
        cb(null, chunk)
      },
      flush(cb) {
        onProgress({ id, done, total })
        cb()
      },
    }),
  ]
}

/**
 * A pass-through that also hands every chunk to `side` (a second destination of the same
 * bytes, such as an upload that runs while a layer is compressed). It waits for `side` to take
 * each chunk (back-pressure), ends it when the stream ends and destroys it when the stream
 * fails. Best effort: once `side` fails or is destroyed, it is left out and the main stream
 * goes on unharmed.
 */
export class TeeStream extends Transform {
  readonly #side: Writable
  constructor(side: Writable) {
    super()
    this.#side = side
    side.on('error', () => {}) // its consumer reports its own failure; here it only drops out
  }
  #sideOpen(): boolean {
    return !this.#side.destroyed && !this.#side.writableEnded
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, data?: Buffer) => void): void {
    if (!this.#sideOpen() || this.#side.write(chunk)) {
      cb(null, chunk)
      return
    }
    const go = () => {
      this.#side.off('drain', go).off('close', go)
      cb(null, chunk)
    }
    this.#side.on('drain', go).on('close', go)
  }
  override _flush(cb: (e?: Error | null) => void): void {
    if (this.#sideOpen()) this.#side.end()
    cb()
  }
  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    if (this.#sideOpen()) this.#side.destroy(e ?? new Error('the stream it copied stopped'))
    cb(e)
  }
}
