/**
 * The one write engine: walks an image or index once over any store's {@link ImageSink}, and
 * `copy()`, which reads a name, converts when asked, and writes another.
 *
 * What every write gets, whatever the store: blobs in parallel under one limit; a blob that
 * several images of an index hold put once; an image's config read and checked against its
 * manifest while its layers move, and no layer named before that check passed; the first failure
 * stops every other transfer, and the write rejects with it only once they have all settled;
 * manifests below the top by digest, after their blobs; the top (and its tag) last, so a failed
 * write never leaves a tag naming an image whose blobs are not all there; progress and abort.
 */
import { Readable } from 'node:stream'
import pLimit from 'p-limit'
import { type ConvertOptions, convert } from './convert.ts'
import type { Digest } from './digest.ts'
import { isNondistributableType } from './documents/media-types.ts'
import type { Descriptor, Platform } from './documents/schemas.ts'
import { isOcikitError, NotFoundError, OcikitError } from './errors.ts'
import { sourceOf } from './image/partial.ts'
import { imageForPlatform } from './image/platform.ts'
import type { BlobSource, Image, ImageIndex, ImageOrIndex } from './image/types.ts'
import { eachChild } from './image/view.ts'
import { parseName } from './name/parse.ts'
import { OncePerKey } from './once.ts'
import type { BfcOptions } from './stores/bfc/store.ts'
import { storeFor } from './stores/open.ts'
import type { RegistryOptions } from './stores/registry/transport.ts'
import type { ImageSink, WriteOptions } from './stores/types.ts'
import { progressTap } from './streams.ts'
import { TransferGroup } from './transfers.ts'

/** How many times a write puts back blobs that went missing before its commit (a gc beside it), before it gives up. */
const WRITE_ROUNDS = 3

/** One round of a write: the sink, the options (whose signal is the transfer group's), and what it has put. */
interface Walk {
  sink: ImageSink
  o: WriteOptions & { signal: AbortSignal }
  transfers: TransferGroup
  limit: ReturnType<typeof pLimit>
  /** Blobs by digest and manifests by `manifest DIGEST`, each put once however many images hold it. */
  once: OncePerKey<string, void>
  /** Every blob and manifest put or found, for the commit's check. */
  needed: Map<Digest, Descriptor>
}

async function describeView(x: ImageOrIndex): Promise<{ d: Descriptor; bytes: Uint8Array }> {
  const bytes = await x.rawManifest()
  return { d: { mediaType: await x.mediaType(), digest: await x.digest(), size: bytes.length }, bytes }
}

function putBlob(w: Walk, d: Descriptor, open: () => Promise<Readable>, origin: BlobSource | undefined, commitAfter?: Promise<unknown>): Promise<void> {
  return w.once.run(d.digest, () => w.transfers.run(() => w.limit(() => (w.sink.sharedLimit ? w.sink.sharedLimit(() => transfer()) : transfer()))))
  async function transfer(): Promise<void> {
    w.o.signal.throwIfAborted()
    const put = () => w.sink.putBlob(d, open, { signal: w.o.signal, taps: progressTap(d.digest, d.size, w.o.onProgress), commitAfter, origin })
    let how: Awaited<ReturnType<ImageSink['putBlob']>>
    try {
      how = await put().catch((e: unknown) => {
        // Bytes that arrived wrong (a flipped bit on the way, a proxy that cut them short) were
        // not kept; they are read once more from the source, which usually serves them right.
        // Wrong twice: the source itself holds them wrong, and that is the error.
        if (!(isOcikitError(e, 'DIGEST_MISMATCH') || isOcikitError(e, 'SIZE_MISMATCH')) || w.o.signal.aborted) throw e
        w.o.onNotice?.(`${(e as Error).message}; reading ${d.digest} again`)
        return put()
      })
    } catch (e) {
      // A non-distributable layer may legitimately be absent from the source.
      if (isOcikitError(e, 'BLOB_UNKNOWN') && isNondistributableType(d.mediaType)) return
      throw e
    }
    w.needed.set(d.digest, d)
    w.o.onBlob?.({ digest: d.digest, size: d.size, existed: how !== 'written', mounted: how === 'mounted' })
  }
}

/** Puts an image's config and layers (not its manifest). */
async function putImageBlobs(w: Walk, img: Image): Promise<void> {
  const manifest = await img.manifest()
  const layers = await img.layers()
  // Read and checked beside the layers; a failed check stops the transfers under way.
  const checked = img.rawConfig()
  checked.catch((e: unknown) => w.transfers.stop(e))
  await Promise.all([
    putBlob(w, manifest.config, async () => Readable.from([Buffer.from(await checked)]), sourceOf(img)),
    ...layers.map((layer, i) => {
      const d = manifest.layers[i] as Descriptor
      if (isNondistributableType(d.mediaType) && !w.sink.copiesForeignLayers) return undefined
      return putBlob(w, d, () => layer.compressed(w.o), sourceOf(layer), checked)
    }),
  ])
}

/** Puts a manifest below the top, by digest. */
async function putManifest(w: Walk, x: ImageOrIndex): Promise<void> {
  const { d, bytes } = await describeView(x)
  await w.transfers.run(() => w.sink.putManifest(d, bytes, { signal: w.o.signal }))
  w.needed.set(d.digest, d)
}

/** Puts every child of an index (blobs, then the child's manifest), all at once under the walk's limit. */
async function putChildren(w: Walk, idx: ImageIndex, depth: number): Promise<void> {
  await eachChild(idx, w.sink.name, depth, {
    image: (img, d) =>
      w.once.run(`manifest ${d.digest}`, async () => {
        await putImageBlobs(w, img)
        await putManifest(w, img)
      }),
    index: (child, d) =>
      w.once.run(`manifest ${d.digest}`, async () => {
        await putChildren(w, child, depth + 1)
        await putManifest(w, child)
      }),
  })
}

/**
 * Writes an image or index into a sink (see the module comment for what every write gets) and
 * returns the descriptor the sink recorded. When the sink's commit finds blobs gone that the
 * write had put (a gc beside it), they are put again, up to three rounds; then BLOB_UNKNOWN.
 */
export async function writeTo(sink: ImageSink, x: ImageOrIndex, o: WriteOptions = {}): Promise<Descriptor> {
  await sink.prepare?.(x)
  for (let round = 1; ; round++) {
    const transfers = new TransferGroup(o.signal)
    const w: Walk = {
      sink,
      o: { ...o, signal: transfers.signal },
      transfers,
      limit: pLimit(o.concurrency ?? sink.concurrency ?? 4),
      once: new OncePerKey(),
      needed: new Map(),
    }
    try {
      if (x.kind === 'image') await putImageBlobs(w, x)
      else await putChildren(w, x, 0)
    } catch (e) {
      const first = await transfers.failed(e)
      await sink.abort?.()
      throw first
    }
    const { d, bytes } = await describeView(x)
    const r = await sink.commit(x, d, bytes, [...w.needed.values()], { signal: o.signal })
    if ('descriptor' in r) return r.descriptor
    if (round >= WRITE_ROUNDS) {
      throw new NotFoundError(
        'BLOB_UNKNOWN',
        `${sink.name}: ${r.missing.length} blob(s) of the image (${r.missing[0]}...) were deleted while it was written, ${round} times (a gc running beside the write?); nothing was recorded`,
      )
    }
  }
}

/** Options of {@link copy}. */
export interface CopyOptions extends WriteOptions, ConvertOptions {
  /** Copy only the image for this platform out of an index. */
  platform?: Platform | undefined
  /** How to reach registries (insecure hosts, credentials, retries). */
  registry?: RegistryOptions | undefined
  /** The key of encrypted `bfc:` files (source or destination), and whether a new one is encrypted or compressed. */
  bfc?: BfcOptions | undefined
}

/**
 * Copies an image or a whole index from one store to another (any to any). Digests stay
 * identical unless a conversion (`format`, `compression`) is asked for and changes something.
 * Both names are parsed before anything is read, so a bad name fails first.
 */
export async function copy(src: string, dst: string, o: CopyOptions = {}): Promise<Descriptor> {
  const to = storeFor(parseName(dst), o)
  const srcName = parseName(src)
  const from = storeFor(srcName, o)
  let x = await from.read(o)
  if (o.platform) x = await imageForPlatform(x, o.platform, from.name)
  const sink = await to.sink()
  let compression = o.compression
  if (!compression && srcName.transport === 'docker-archive' && sink.prefersCompressedLayers) {
    // docker save keeps layers as plain tars; a registry should get them compressed.
    compression = 'gzip'
    o.onNotice?.(
      `${from.name}: its layers are uncompressed tars; compressing them with gzip for ${to.name} (their digests change, the diffIDs stay; --compression to choose)`,
    )
  }
  if (o.format || compression) x = await convert(x, { ...o, compression })
  return writeTo(sink, x, o)
}

/** A name with `tag` as its tag, for the stores whose names end in `:TAG` (layouts, OCI archives, BFC files). */
function withTag(name: string, tag: string, what: string): string {
  const n = parseName(name)
  const tagged = n.transport === 'oci' ? n.tag !== undefined || n.digest !== undefined : n.transport === 'registry' ? true : n.ref !== undefined
  if (n.transport === 'registry' || n.transport === 'docker-archive') {
    throw new OcikitError(
      'NOT_SUPPORTED',
      `${what} ${name}: copying every tag works between OCI layouts, OCI archives and BFC files (oci:, oci-archive:, bfc:)`,
    )
  }
  if (tagged) throw new OcikitError('INVALID_NAME', `${what} ${name}: name the store without a tag to copy every tag`)
  return `${name}:${tag}`
}

/**
 * Copies every tagged image and index of a store into another, under the same tags (layouts,
 * OCI archives and BFC files; names without a tag). Blobs the images share go once when the
 * destination is a layout or a BFC file (each later copy finds them there). Returns what was
 * written, tag by tag; a failure stops at that tag, with the ones before it written.
 */
export async function copyTags(src: string, dst: string, o: CopyOptions = {}): Promise<{ tag: string; descriptor: Descriptor }[]> {
  withTag(dst, 'x', 'destination')
  withTag(src, 'x', 'source')
  const entries = await storeFor(parseName(src), o).list()
  const tags = entries.map((e) => e.tag).filter((t): t is string => t !== undefined)
  if (tags.length === 0) throw new OcikitError('MANIFEST_UNKNOWN', `${src}: no tagged image to copy`)
  const out: { tag: string; descriptor: Descriptor }[] = []
  for (const tag of tags) out.push({ tag, descriptor: await copy(withTag(src, tag, 'source'), withTag(dst, tag, 'destination'), o) })
  return out
}
