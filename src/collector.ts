/**
 * Prompting garbage collection during long streaming work. A layer build or a blob transfer
 * allocates its data as Buffers outside the JavaScript heap; V8 collects them only when
 * that external memory has grown by some 64 MB since the last collection, so a stream holds
 * tens of megabytes of dead buffers at any time. The command-line program installs a
 * collector (see cli/main.ts); the library then asks for a collection after every
 * {@link GC_STEP} bytes it hashes on the way (layer builds, blob writes). Library users keep their own GC policy: without a
 * collector installed, nothing happens.
 */

/** Bytes streamed between two collections. */
export const GC_STEP = 32 << 20

let collector: (() => void) | undefined
let step = GC_STEP
let streamed = 0

/**
 * Installs (or, with undefined, removes) the function that runs a full garbage collection,
 * to run after every `every` bytes (default {@link GC_STEP}).
 */
export function setGarbageCollector(fn: (() => void) | undefined, every = GC_STEP): void {
  collector = fn
  step = every
  streamed = 0
}

/** Records `bytes` streamed; runs the installed collector once every step. */
export function noteStreamed(bytes: number): void {
  if (!collector) return
  streamed += bytes
  if (streamed >= step) {
    streamed = 0
    collector()
  }
}
