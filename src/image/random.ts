/**
 * Images held in memory, and the random-image test helper. Meant for tests and small
 * artifacts: every blob lives in a Map, so do not put real layers here.
 */
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import tarStream from 'tar-stream'
import { type Digest, digestOf, verifyBytes } from '../digest.ts'
import { canonicalJson } from '../documents/canonical.ts'
import { type Compression, MediaType, ociLayerType } from '../documents/media-types.ts'
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from '../documents/schemas.ts'
import { EPOCH_ISO } from '../documents/time.ts'
import { MAX_DOCUMENT_SIZE } from '../documents/validate.ts'
import { NotFoundError, OcikitError } from '../errors.ts'
import type { BlobSource, Image, ImageIndex, IoOptions } from './types.ts'
import { SourceImage, SourceIndex } from './view.ts'

/** A BlobSource over a Map of blobs held in memory; reads are verified like any other source. */
export class MemoryBlobSource implements BlobSource {
  readonly name: string
  readonly #blobs = new Map<string, Uint8Array>()
  constructor(name = 'memory') {
    this.name = name
  }
  /** Stores bytes and returns their descriptor. */
  put(data: Uint8Array, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
    const digest = digestOf(data)
    this.#blobs.set(digest, new Uint8Array(data))
    return { mediaType, digest, size: data.length, ...extra }
  }
  /** True when the source holds a blob of this digest. */
  has(digest: Digest): boolean {
    return this.#blobs.has(digest)
  }
  #get(d: Descriptor): Uint8Array {
    const b = this.#blobs.get(d.digest)
    if (!b) throw new NotFoundError('BLOB_UNKNOWN', `${this.name}: no blob ${d.digest}`)
    verifyBytes(b, d, `${this.name} blob ${d.digest}`)
    return b
  }
  async openBlob(d: Descriptor, _o?: IoOptions): Promise<Readable> {
    return Readable.from([Buffer.from(this.#get(d))], { objectMode: false })
  }
  async readBlob(d: Descriptor, _o?: IoOptions): Promise<Uint8Array> {
    if (d.size > MAX_DOCUMENT_SIZE) throw new OcikitError('TOO_LARGE', `${this.name}: blob ${d.digest} is over the document size limit`)
    return new Uint8Array(this.#get(d))
  }
}

/** A tiny seeded PRNG (mulberry32) so random images can be reproduced from a seed. */
function prng(seed: number): (n: number) => Buffer {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  return (n) => {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i += 4) {
      const v = next()
      for (let j = 0; j < 4 && i + j < n; j++) b[i + j] = (v >>> (8 * j)) & 0xff
    }
    return b
  }
}

async function tarOf(files: { name: string; data: Buffer }[]): Promise<Buffer> {
  const pack = tarStream.pack()
  const chunks: Buffer[] = []
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c) => chunks.push(c as Buffer))
    pack.on('end', resolve)
    pack.on('error', reject)
  })
  const common = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' }
  pack.entry({ ...common, name: 'random/', type: 'directory', mode: 0o755 })
  for (const f of files) pack.entry({ ...common, name: f.name, size: f.data.length, mode: 0o644 }, f.data)
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

/** Options of {@link randomImage}. */
export interface RandomImageOptions {
  /** Number of layers (default 3). */
  layers?: number
  /** Bytes of random file content per layer (default 1024). */
  layerSize?: number
  /** Files per layer (default 1). */
  filesPerLayer?: number
  /** Seed for reproducible content; random when absent. */
  seed?: number
  /** Layer compression (default gzip). */
  compression?: Compression
  /** Platform of the image (default linux/amd64). */
  platform?: Platform
  /** Use Docker v2 schema 2 media types instead of OCI ones. */
  docker?: boolean
}

/**
 * An image of N layers of random tar content, held in memory. Part of the public API so
 * that users can test their own stores and pipelines. With a `seed` the image (and its
 * digest) is the same on every call.
 */
export function randomImage(o: RandomImageOptions = {}): Promise<Image> {
  return putRandomImage(new MemoryBlobSource('random-image'), o)
}

async function putRandomImage(src: MemoryBlobSource, o: RandomImageOptions): Promise<Image> {
  const n = o.layers ?? 3
  const size = o.layerSize ?? 1024
  const perLayer = o.filesPerLayer ?? 1
  const rand = o.seed === undefined ? randomBytes : prng(o.seed)
  const compression = o.compression ?? 'gzip'
  const layers: Descriptor[] = []
  const diffIds: Digest[] = []
  for (let i = 0; i < n; i++) {
    const files = Array.from({ length: perLayer }, (_, j) => ({ name: `random/layer${i}-file${j}`, data: rand(size) }))
    const tar = await tarOf(files)
    diffIds.push(digestOf(tar))
    const { gzipSync, zstdCompressSync } = process.getBuiltinModule('node:zlib')
    const blob = compression === 'gzip' ? gzipSync(tar) : compression === 'zstd' ? zstdCompressSync(tar) : tar
    const mt = o.docker ? MediaType.dockerLayerGzip : ociLayerType(compression)
    layers.push(src.put(blob, mt))
  }
  const platform = o.platform ?? { os: 'linux', architecture: 'amd64' }
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created: EPOCH_ISO,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created: EPOCH_ISO, created_by: `ocikit randomImage layer ${i}` })),
  }
  const configDesc = src.put(canonicalJson(config), o.docker ? MediaType.dockerConfig : MediaType.ociConfig)
  const mediaType = o.docker ? MediaType.dockerManifest : MediaType.ociManifest
  const manifest: Manifest = { schemaVersion: 2, mediaType, config: configDesc, layers }
  const raw = canonicalJson(manifest)
  src.put(raw, mediaType)
  return new SourceImage(src, raw, digestOf(raw), mediaType, manifest)
}

/** An index of random images, one per platform (default linux/amd64 and linux/arm64/v8). */
export async function randomIndex(o: RandomImageOptions & { platforms?: Platform[] } = {}): Promise<ImageIndex> {
  const platforms = o.platforms ?? [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ]
  const src = new MemoryBlobSource('random-index')
  const manifests: Descriptor[] = []
  for (const [i, platform] of platforms.entries()) {
    const img = await putRandomImage(src, { ...o, platform, seed: o.seed === undefined ? undefined : o.seed + i })
    manifests.push({ mediaType: await img.mediaType(), digest: await img.digest(), size: (await img.rawManifest()).length, platform })
  }
  const mediaType = o.docker ? MediaType.dockerManifestList : MediaType.ociIndex
  const index: Index = { schemaVersion: 2, mediaType, manifests }
  const raw = canonicalJson(index)
  src.put(raw, mediaType)
  return new SourceIndex(src, raw, digestOf(raw), mediaType, index)
}
