/** Stream helpers shared by layers, stores and the write engine: chaining with errors carried, progress taps. */
import { pipeline, type Readable, Transform } from 'node:stream'

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
