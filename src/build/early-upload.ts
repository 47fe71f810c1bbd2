/**
 * Uploads while compressing: a sink that can take a blob as it streams (a registry,
 * {@link ImageSink.putStream}) is handed each layer the build encodes now, while it is encoded,
 * so the upload overlaps the compression instead of following it. When the write engine comes
 * to put that layer, the blob is there already: it is counted as written, with no second
 * request. A failed early upload costs nothing but the time: the layer is put the ordinary way.
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../digest.ts'
import type { Descriptor } from '../documents/schemas.ts'
import type { ImageOrIndex, IoOptions } from '../image/types.ts'
import type { CommitResult, ImageSink, PutBlobOptions, PutOutcome } from '../stores/types.ts'

/** A sink that takes the build's layers while they are made, then stands for the sink it wraps. */
export class EarlyUploadSink implements ImageSink {
  readonly #inner: ImageSink & Required<Pick<ImageSink, 'putStream'>>
  readonly #uploads: Promise<void>[] = []
  readonly #sent = new Set<Digest>()
  readonly #signal: AbortSignal | undefined
  readonly #onFailure: (e: Error) => void
  constructor(inner: ImageSink & Required<Pick<ImageSink, 'putStream'>>, o: { signal?: AbortSignal | undefined; onFailure: (e: Error) => void }) {
    this.#inner = inner
    this.#signal = o.signal
    this.#onFailure = o.onFailure
  }
  /** The wrapped sink, when it can take streams; else undefined. */
  static over(sink: ImageSink, o: { signal?: AbortSignal | undefined; onFailure: (e: Error) => void }): EarlyUploadSink | undefined {
    return sink.putStream ? new EarlyUploadSink(sink as ImageSink & Required<Pick<ImageSink, 'putStream'>>, o) : undefined
  }
  /** Starts uploading one layer's bytes as they come (see {@link BuildLayerOptions.onEncoding}). */
  take(bytes: Readable): void {
    this.#uploads.push(
      this.#inner.putStream(bytes, { signal: this.#signal }).then(
        (r) => {
          this.#sent.add(r.digest)
        },
        (e: Error) => {
          bytes.destroy()
          this.#onFailure(e)
        },
      ),
    )
  }
  get name() {
    return this.#inner.name
  }
  get concurrency() {
    return this.#inner.concurrency
  }
  get copiesForeignLayers() {
    return this.#inner.copiesForeignLayers
  }
  get prefersCompressedLayers() {
    return this.#inner.prefersCompressedLayers
  }
  async prepare(x: ImageOrIndex): Promise<void> {
    await this.#inner.prepare?.(x)
  }
  async putBlob(d: Descriptor, open: () => Promise<Readable>, o: PutBlobOptions): Promise<PutOutcome> {
    // Every layer is encoded before the engine puts any (the manifest names their digests), so
    // every early upload has started by now: wait for them to end.
    await Promise.all(this.#uploads)
    if (this.#sent.has(d.digest)) return 'written'
    return this.#inner.putBlob(d, open, o)
  }
  putManifest(d: Descriptor, bytes: Uint8Array, o: IoOptions): Promise<PutOutcome> {
    return this.#inner.putManifest(d, bytes, o)
  }
  commit(x: ImageOrIndex, d: Descriptor, bytes: Uint8Array, needed: readonly Descriptor[], o: IoOptions): Promise<CommitResult> {
    return this.#inner.commit(x, d, bytes, needed, o)
  }
  async abort(): Promise<void> {
    await Promise.all(this.#uploads)
    await this.#inner.abort?.()
  }
}
