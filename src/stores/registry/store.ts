/** Reading and writing images in a registry repository, as lazy views and a pushing writer. */
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { LimitFunction } from 'p-limit'
import type { Digest } from '../../digest.ts'
import { isIndexType, isManifestType } from '../../documents/media-types.ts'
import type { Descriptor } from '../../documents/schemas.ts'
import { parseManifestOrIndex } from '../../documents/validate.ts'
import { NotSupportedError, RegistryError } from '../../errors.ts'
import type { BlobSource, ImageOrIndex, IoOptions } from '../../image/types.ts'
import { SourceImage, SourceIndex } from '../../image/view.ts'
import { formatName, type RegistryName } from '../../name/parse.ts'
import { chain } from '../../streams.ts'
import { placeLimit } from '../../transfers.ts'
import type { CommitResult, ImageSink, PutBlobOptions, PutOutcome, Store } from '../types.ts'
import { RegistryClient } from './client.ts'
import type { RegistryOptions } from './transport.ts'

/**
 * Blob uploads at once to one registry from this process, over all its writes: half the
 * connections it shares per host (32, src/http/http.ts), so that downloads and manifests from the
 * same host still get through.
 */
const UPLOADS_PER_REGISTRY = 16

/** A BlobSource over one registry repository. */
export class RegistryBlobSource implements BlobSource {
  readonly client: RegistryClient
  readonly name: string
  constructor(client: RegistryClient) {
    this.client = client
    this.name = client.name
  }
  openBlob(d: Descriptor, o?: IoOptions): Promise<Readable> {
    return this.client.openBlob(d, o)
  }
  readBlob(d: Descriptor, o?: IoOptions): Promise<Uint8Array> {
    return this.client.readBlob(d, o)
  }
}

/** The image or index a tag or digest names in a repository, as a lazy view. */
export async function readFromRegistry(client: RegistryClient, ref: string, o: IoOptions = {}): Promise<ImageOrIndex> {
  const m = await client.manifest(ref, o)
  const src = new RegistryBlobSource(client)
  const p = parseManifestOrIndex(m.bytes, `${client.name}@${m.digest}`, m.mediaType)
  return p.kind === 'image' ? new SourceImage(src, m.bytes, m.digest, p.mediaType, p.manifest) : new SourceIndex(src, m.bytes, m.digest, p.mediaType, p.index)
}

/** The repository to mount from: the source's, when it is another repository of the same registry. */
function mountSource(client: RegistryClient, origin: BlobSource | undefined): string | undefined {
  return origin instanceof RegistryBlobSource && origin.client.t.registry === client.t.registry ? origin.client.repository : undefined
}

/**
 * Pushes into one repository: a blob the repository has is skipped (HEAD), one that the source
 * holds in another repository of the same registry is mounted, others are uploaded (one PUT, or
 * PATCH chunks for large ones); manifests below the top go by digest, the top under the tag (or
 * its digest) last. Non-distributable layers are not pushed (they stay where their urls say).
 */
export class RegistrySink implements ImageSink {
  readonly name: string
  readonly copiesForeignLayers = false
  readonly prefersCompressedLayers = true
  readonly concurrency: number | undefined
  readonly sharedLimit: LimitFunction
  readonly #client: RegistryClient
  readonly #tag: string | undefined
  constructor(client: RegistryClient, tag: string | undefined, name = client.name) {
    this.#client = client
    this.#tag = tag
    this.name = name
    this.concurrency = client.t.o.concurrency
    this.sharedLimit = placeLimit(`registry ${client.t.registry}`, UPLOADS_PER_REGISTRY)
  }

  async putBlob(d: Descriptor, open: () => Promise<Readable>, o: PutBlobOptions): Promise<PutOutcome> {
    const taps = [...(o.taps ?? [])]
    const how = await this.#client.uploadBlob(d, async () => chain(await open(), ...taps), {
      signal: o.signal,
      mountFrom: mountSource(this.#client, o.origin),
      before: o.commitAfter,
    })
    return how === 'uploaded' ? 'written' : how
  }

  putStream(bytes: Readable, o: IoOptions): Promise<{ digest: Digest; size: number }> {
    return this.#client.uploadStream(bytes, o)
  }

  async putManifest(d: Descriptor, bytes: Uint8Array, o: IoOptions): Promise<PutOutcome> {
    await this.#putManifest(d.digest, d, bytes, o)
    return 'written'
  }

  /**
   * Puts a manifest; when the registry answers that a blob it names is unknown although every
   * blob was put (seen with Distribution when several clients push the same blob into one
   * repository at once), tries again after a moment, twice.
   */
  async #putManifest(ref: string, d: Descriptor, bytes: Uint8Array, o: IoOptions): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#client.putManifest(ref, bytes, d.mediaType, o)
        return
      } catch (e) {
        if (!blobUnknownToManifest(e) || attempt >= 3 || o.signal?.aborted) throw e
        await sleep(100 * attempt, undefined, { signal: o.signal })
      }
    }
  }

  async commit(_x: ImageOrIndex, d: Descriptor, bytes: Uint8Array, needed: readonly Descriptor[], o: IoOptions): Promise<CommitResult> {
    try {
      await this.#putManifest(this.#tag ?? d.digest, d, bytes, o)
    } catch (e) {
      if (!blobUnknownToManifest(e)) throw e
      // The registry lost a blob the write put: put back whatever it says it does not have.
      const missing: Digest[] = []
      for (const b of needed)
        if (!isManifestType(b.mediaType) && !isIndexType(b.mediaType) && !(await this.#client.hasBlob(b.digest, o))) missing.push(b.digest)
      if (missing.length === 0) throw e
      return { missing }
    }
    return { descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size } }
  }
}

/** A manifest refused because a blob it names is unknown to the registry (MANIFEST_BLOB_UNKNOWN). */
function blobUnknownToManifest(e: unknown): boolean {
  return e instanceof RegistryError && e.status === 400 && e.errors.some((x) => x.code === 'MANIFEST_BLOB_UNKNOWN' || x.code === 'BLOB_UNKNOWN')
}

/** The registry store for a name `HOST/REPO[:TAG][@DIGEST]`. */
export function registryStore(n: RegistryName, o: RegistryOptions): Store {
  const name = formatName(n)
  const r = n.reference
  const client = () => new RegistryClient(r.registry, r.repository, o)
  const ref = r.digest ?? r.tag ?? 'latest'
  const repo = `${r.registry}/${r.repository}`
  return {
    name,
    read: (io) => readFromRegistry(client(), ref, io),
    // By digest alone (`REPO@sha256:…`), the manifest goes under its digest and no tag moves.
    sink: async () => new RegistrySink(client(), r.digest && !r.tag ? undefined : r.tag, name),
    list: async () => {
      throw new NotSupportedError(`${name}: ls lists OCI layouts; for a registry repository use 'ocikit tags ${repo}'`)
    },
    tag: async (newTag) => {
      const c = client()
      const m = await c.manifest(ref)
      await c.putManifest(newTag, m.bytes, m.mediaType)
      return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length, annotations: { 'org.opencontainers.image.ref.name': newTag } }
    },
    untag: async () => {
      throw new NotSupportedError(`${name}: registries cannot remove a tag alone; 'ocikit delete' removes the manifest (and every tag on it)`)
    },
    fsck: async () => {
      throw new NotSupportedError(`${name}: fsck works on OCI layouts (oci:DIR); copy the image to one to check it`)
    },
    gc: async () => {
      throw new NotSupportedError(`${name}: registries collect their own garbage; gc works on OCI layouts (oci:DIR)`)
    },
  }
}

export type { RegistryOptions }
