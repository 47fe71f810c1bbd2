/**
 * A store held in memory: blobs by digest and tags, behind the same seam as every other store.
 * For tests and small tools (a user's test can write an image here and read it back without a
 * disk or a registry); every blob is held whole, so it is no place for large layers.
 */
import type { Readable } from 'node:stream'
import { type Digest, verifyBytes } from '../../digest.ts'
import type { Descriptor } from '../../documents/schemas.ts'
import { NotFoundError, NotSupportedError, OcikitError } from '../../errors.ts'
import { MemoryBlobSource } from '../../image/random.ts'
import type { ImageOrIndex, IoOptions } from '../../image/types.ts'
import { openView } from '../../image/view.ts'
import { chain } from '../../streams.ts'
import type { CommitResult, ImageSink, ListedEntry, PutBlobOptions, PutOutcome, Store } from '../types.ts'

/** Blobs and tags in memory. `store(tag)` gives the {@link Store} for one tag of it. */
export class MemoryStore {
  readonly name: string
  readonly #blobs: MemoryBlobSource
  readonly #tags = new Map<string, Descriptor>()
  constructor(name = 'memory') {
    this.name = name
    this.#blobs = new MemoryBlobSource(name)
  }

  /** True when the store holds the blob. */
  has(digest: Digest): boolean {
    return this.#blobs.has(digest)
  }

  /** The tags, in the order they were first set. */
  tags(): string[] {
    return [...this.#tags.keys()]
  }

  /** The store for one tag (or, with none, for writes recorded by digest alone). */
  store(tag?: string): Store {
    const name = `${this.name}${tag === undefined ? '' : `:${tag}`}`
    const no = (what: string) => async (): Promise<never> => {
      throw new NotSupportedError(`${name}: the memory store does not ${what}`)
    }
    return {
      name,
      read: async (o) => {
        const d = tag === undefined ? undefined : this.#tags.get(tag)
        if (!d) throw new NotFoundError('MANIFEST_UNKNOWN', `${name}: no tag '${tag}' (tags: ${this.tags().join(', ') || 'none'})`)
        return openView(this.#blobs, d, o)
      },
      sink: async () => new MemorySink(name, this.#blobs, (d) => (tag === undefined ? undefined : this.#tags.set(tag, d))),
      list: async (): Promise<ListedEntry[]> => [...this.#tags].map(([t, descriptor]) => ({ tag: t, descriptor })),
      tag: async (newTag) => {
        const d = tag === undefined ? undefined : this.#tags.get(tag)
        if (!d) throw new NotFoundError('MANIFEST_UNKNOWN', `${name}: no tag '${tag}'`)
        this.#tags.set(newTag, d)
        return d
      },
      untag: async () => {
        const d = tag === undefined ? undefined : this.#tags.get(tag)
        if (!d || tag === undefined) throw new NotFoundError('MANIFEST_UNKNOWN', `${name}: no tag '${tag}'`)
        this.#tags.delete(tag)
        return d
      },
      fsck: no('check itself (every blob is verified as it is put)'),
      gc: no('collect garbage'),
    }
  }
}

/** Writes into a {@link MemoryStore}: each blob read whole and verified before it is kept. */
class MemorySink implements ImageSink {
  readonly name: string
  readonly copiesForeignLayers = true
  readonly #blobs: MemoryBlobSource
  readonly #record: (d: Descriptor) => void
  constructor(name: string, blobs: MemoryBlobSource, record: (d: Descriptor) => void) {
    this.name = name
    this.#blobs = blobs
    this.#record = record
  }

  async putBlob(d: Descriptor, open: () => Promise<Readable>, o: PutBlobOptions): Promise<PutOutcome> {
    if (this.#blobs.has(d.digest)) return 'existed'
    const bytes = Buffer.concat(await chain(await open(), ...(o.taps ?? [])).toArray({ signal: o.signal }))
    verifyBytes(bytes, d, `${this.name} blob ${d.digest}`)
    await o.commitAfter
    this.#blobs.put(bytes, d.mediaType)
    return 'written'
  }

  async putManifest(d: Descriptor, bytes: Uint8Array, _o: IoOptions): Promise<PutOutcome> {
    if (this.#blobs.has(d.digest)) return 'existed'
    verifyBytes(bytes, d, `${this.name} manifest ${d.digest}`)
    this.#blobs.put(Buffer.from(bytes), d.mediaType)
    return 'written'
  }

  async commit(_x: ImageOrIndex, d: Descriptor, bytes: Uint8Array, needed: readonly Descriptor[], o: IoOptions): Promise<CommitResult> {
    await this.putManifest(d, bytes, o)
    const missing = needed.filter((n) => !this.#blobs.has(n.digest)).map((n) => n.digest)
    if (missing.length > 0) throw new OcikitError('BLOB_UNKNOWN', `${this.name}: blobs the write put are gone: ${missing.join(', ')}`)
    this.#record({ mediaType: d.mediaType, digest: d.digest, size: d.size })
    return { descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size } }
  }
}
