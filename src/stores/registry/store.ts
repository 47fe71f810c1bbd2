/** Reading and writing images in a registry repository, as lazy views and a pushing writer. */
import { Readable } from 'node:stream'
import pLimit from 'p-limit'
import type { Digest } from '../../digest.ts'
import { isNondistributableType } from '../../documents/media-types.ts'
import type { Descriptor } from '../../documents/schemas.ts'
import { parseManifestOrIndex } from '../../documents/validate.ts'
import type { Image, ImageIndex, ImageOrIndex, IoOptions } from '../../image/types.ts'
import { BlobLayer, type BlobSource, eachChild, SourceImage, SourceIndex } from '../../image/view.ts'
import { OncePerKey } from '../../once.ts'
import { chain, progressTap } from '../../streams.ts'
import { TransferGroup } from '../../transfers.ts'
import type { LayoutWriteOptions } from '../layout/store.ts'
import type { RegistryClient } from './client.ts'
import type { RegistryOptions } from './transport.ts'

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

/** Options of {@link writeToRegistry}. */
export type RegistryWriteOptions = LayoutWriteOptions

/** The repository to mount from: the source's, when it is another repository of the same registry. */
function mountSource(client: RegistryClient, origin: BlobSource | undefined): string | undefined {
  return origin instanceof RegistryBlobSource && origin.client.t.registry === client.t.registry ? origin.client.repository : undefined
}

/**
 * One push: the client, its options (whose signal is the transfer group's), the uploads stopped
 * together on a failure, and the bound on blobs at once.
 */
interface RegistryPush {
  client: RegistryClient
  o: RegistryWriteOptions & { signal: AbortSignal }
  uploads: TransferGroup
  limit: ReturnType<typeof pLimit>
  /** Blob uploads and child manifests, each once however many images hold it. */
  once: OncePerKey<string, void>
}

async function pushBlob(p: RegistryPush, d: Descriptor, open: () => Promise<Readable>, origin: BlobSource | undefined): Promise<void> {
  return p.once.run(d.digest, () =>
    p.uploads.run(() =>
      p.limit(async () => {
        p.o.signal.throwIfAborted()
        const how = await p.client.uploadBlob(d, open, { ...p.o, mountFrom: mountSource(p.client, origin) })
        p.o.onBlob?.({ digest: d.digest, size: d.size, existed: how !== 'uploaded', mounted: how === 'mounted' })
      }),
    ),
  )
}

async function pushImage(p: RegistryPush, img: Image, ref: string): Promise<void> {
  const manifest = await img.manifest()
  const layers = await img.layers()
  const raw = await img.rawConfig()
  await Promise.all([
    pushBlob(p, manifest.config, async () => Readable.from([Buffer.from(raw)]), img instanceof SourceImage ? img.source : undefined),
    ...layers.map((layer, i) => {
      const d = manifest.layers[i] as Descriptor
      if (isNondistributableType(d.mediaType)) return undefined // foreign layers stay where their urls say
      const open = async () => chain(await layer.compressed(p.o), ...progressTap(d.digest, d.size, p.o.onProgress))
      return pushBlob(p, d, open, layer instanceof BlobLayer ? layer.source : undefined)
    }),
  ])
  await p.client.putManifest(ref, await img.rawManifest(), await img.mediaType(), p.o)
}

async function pushIndex(p: RegistryPush, idx: ImageIndex, ref: string, depth = 0): Promise<void> {
  // Child manifests go by digest, each once however often the index lists it.
  await eachChild(idx, p.client.name, depth, {
    image: (img, d) => p.once.run(`manifest ${d.digest}`, () => pushImage(p, img, d.digest)),
    index: (child, d) => p.once.run(`manifest ${d.digest}`, () => pushIndex(p, child, d.digest, depth + 1)),
  })
  await p.client.putManifest(ref, await idx.rawManifest(), await idx.mediaType(), p.o)
}

/**
 * Pushes an image or index: every blob first (skipping those present, mounting from another
 * repository of the same registry when the source is there), child manifests by digest, and
 * the top manifest last under `tag` (or its digest). An interrupted push never leaves the tag
 * pointing at an image whose blobs are not all there.
 */
export async function writeToRegistry(client: RegistryClient, x: ImageOrIndex, tag: string | undefined, o: RegistryWriteOptions = {}): Promise<Descriptor> {
  const uploads = new TransferGroup(o.signal)
  const p: RegistryPush = {
    client,
    o: { ...o, signal: uploads.signal },
    uploads,
    limit: pLimit(o.concurrency ?? client.t.o.concurrency ?? 4),
    once: new OncePerKey(),
  }
  const digest: Digest = await x.digest()
  const ref = tag ?? digest
  try {
    if (x.kind === 'image') await pushImage(p, x, ref)
    else await pushIndex(p, x, ref)
  } catch (e) {
    // The first failure stops the other uploads, and the push ends when they have stopped: a
    // command does not sit on after its error while other layers still upload.
    throw await uploads.failed(e)
  }
  return { mediaType: await x.mediaType(), digest, size: (await x.rawManifest()).length }
}

export type { RegistryOptions }
