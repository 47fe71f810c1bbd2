/** Reading and writing images in a registry repository, as lazy views and a pushing writer. */
import { Readable } from 'node:stream'
import pLimit from 'p-limit'
import { type Digest, isDigest } from '../../digest.ts'
import { OcikitError } from '../../errors.ts'
import type { Image, ImageIndex, ImageOrIndex, IoOptions } from '../../image/types.ts'
import { BlobLayer, type BlobSource, chain, progressTap, SourceImage, SourceIndex } from '../../image/view.ts'
import { isIndexType, isManifestType, isNondistributableType } from '../../spec/media-types.ts'
import type { Descriptor } from '../../spec/schemas.ts'
import { parseManifestOrIndex } from '../../spec/validate.ts'
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

async function pushImage(client: RegistryClient, img: Image, ref: string, o: RegistryWriteOptions, limit: ReturnType<typeof pLimit>): Promise<void> {
  const manifest = await img.manifest()
  const layers = await img.layers()
  const raw = await img.rawConfig()
  const config = limit(async () => {
    const how = await client.uploadBlob(manifest.config, async () => Readable.from([Buffer.from(raw)]), {
      ...o,
      mountFrom: mountSource(client, img instanceof SourceImage ? img.source : undefined),
    })
    o.onBlob?.({ digest: manifest.config.digest, size: manifest.config.size, existed: how !== 'uploaded', mounted: how === 'mounted' })
  })
  await Promise.all([
    config,
    ...layers.map((layer, i) =>
      limit(async () => {
        const d = manifest.layers[i] as Descriptor
        if (isNondistributableType(d.mediaType)) return // foreign layers stay where their urls say
        const mountFrom = mountSource(client, layer instanceof BlobLayer ? layer.source : undefined)
        const open = async () => chain(await layer.compressed(o), ...progressTap(d.digest, d.size, o.onProgress))
        const how = await client.uploadBlob(d, open, { ...o, mountFrom })
        o.onBlob?.({ digest: d.digest, size: d.size, existed: how !== 'uploaded', mounted: how === 'mounted' })
      }),
    ),
  ])
  await client.putManifest(ref, await img.rawManifest(), await img.mediaType(), o)
}

async function pushIndex(
  client: RegistryClient,
  idx: ImageIndex,
  ref: string,
  o: RegistryWriteOptions,
  limit: ReturnType<typeof pLimit>,
  depth = 0,
): Promise<void> {
  if (depth > 8) throw new OcikitError('INVALID_MANIFEST', `${client.name}: indexes nested more than 8 deep`)
  const m = await idx.manifest()
  for (const d of m.manifests) {
    if (!isDigest(d.digest)) continue
    if (isManifestType(d.mediaType)) await pushImage(client, await idx.image(d.digest), d.digest, o, limit)
    else if (isIndexType(d.mediaType)) await pushIndex(client, await idx.index(d.digest), d.digest, o, limit, depth + 1)
    else throw new OcikitError('UNSUPPORTED_MEDIA_TYPE', `${client.name}: index entry ${d.digest} has media type '${d.mediaType}'; cannot copy it`)
  }
  await client.putManifest(ref, await idx.rawManifest(), await idx.mediaType(), o)
}

/**
 * Pushes an image or index: every blob first (skipping those present, mounting from another
 * repository of the same registry when the source is there), child manifests by digest, and
 * the top manifest last under `tag` (or its digest). An interrupted push never leaves the tag
 * pointing at an image whose blobs are not all there.
 */
export async function writeToRegistry(client: RegistryClient, x: ImageOrIndex, tag: string | undefined, o: RegistryWriteOptions = {}): Promise<Descriptor> {
  const limit = pLimit(o.concurrency ?? client.t.o.concurrency ?? 4)
  const digest: Digest = await x.digest()
  const ref = tag ?? digest
  if (x.kind === 'image') await pushImage(client, x, ref, o, limit)
  else await pushIndex(client, x, ref, o, limit)
  return { mediaType: await x.mediaType(), digest, size: (await x.rawManifest()).length }
}

export type { RegistryOptions }
