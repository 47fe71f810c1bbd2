/** Reading, writing and tagging images in an OCI layout. */
import type { Readable } from 'node:stream'
import pLimit from 'p-limit'
import type { Digest } from '../../digest.ts'
import { isImageConfigType, isNondistributableType } from '../../documents/media-types.ts'
import type { Descriptor, Index } from '../../documents/schemas.ts'
import { detectManifestType, parseJsonBytes } from '../../documents/validate.ts'
import { isOcikitError, NotFoundError, OcikitError } from '../../errors.ts'
import type { Image, ImageIndex, ImageOrIndex, IoOptions } from '../../image/types.ts'
import { eachChild, openView } from '../../image/view.ts'
import { OncePerKey } from '../../once.ts'
import { progressTap } from '../../streams.ts'
import { TransferGroup } from '../../transfers.ts'
import { type OciLayout, REF_NAME, tagOf } from './layout.ts'

/** Which image of a layout: a tag, a digest, or (neither) the only one. */
export interface LayoutRef {
  readonly tag?: string | undefined
  readonly digest?: Digest | undefined
}

function tagList(index: Index): string {
  const tags = index.manifests.map(tagOf).filter((t): t is string => t !== undefined)
  return tags.length > 0 ? tags.join(', ') : 'none'
}

/** The `index.json` entry (or, for a digest not listed there, a descriptor of the blob) that `ref` names. */
export async function resolveInLayout(layout: OciLayout, ref: LayoutRef): Promise<Descriptor> {
  const index = await layout.readIndex()
  if (ref.tag !== undefined) {
    const hits = index.manifests.filter((m) => tagOf(m) === ref.tag)
    const hit = hits[hits.length - 1]
    if (!hit) throw new NotFoundError('MANIFEST_UNKNOWN', `${layout.name}: no tag '${ref.tag}' (tags: ${tagList(index)})`)
    return hit
  }
  if (ref.digest !== undefined) {
    const listed = index.manifests.find((m) => m.digest === ref.digest)
    if (listed) return listed
    if (!(await layout.hasBlob(ref.digest))) throw new NotFoundError('MANIFEST_UNKNOWN', `${layout.name}: no manifest ${ref.digest}`)
    // A manifest reachable only through an index: learn its type from its content.
    const raw = await layout.readBlobByDigest(ref.digest)
    const mediaType = detectManifestType(parseJsonBytes(raw, `${layout.name} blob ${ref.digest}`, 'INVALID_MANIFEST'), `${layout.name} blob ${ref.digest}`)
    return { mediaType, digest: ref.digest, size: raw.length }
  }
  if (index.manifests.length === 1) return index.manifests[0] as Descriptor
  if (index.manifests.length === 0) throw new NotFoundError('MANIFEST_UNKNOWN', `${layout.name}: the layout holds no images`)
  throw new OcikitError(
    'AMBIGUOUS_REFERENCE',
    `${layout.name}: the layout holds ${index.manifests.length} images; name one with ${layout.name}:TAG or @DIGEST (tags: ${tagList(index)})`,
  )
}

/** The image or index that `ref` names in a layout, as a lazy view. */
export async function readFromLayout(layout: OciLayout, ref: LayoutRef, o?: IoOptions): Promise<ImageOrIndex> {
  return openView(layout, await resolveInLayout(layout, ref), o)
}

/** Options of {@link writeToLayout}. */
export interface LayoutWriteOptions extends IoOptions {
  /** Blobs written at once (default 4). */
  concurrency?: number
  /** Called once per blob: written, or skipped because the destination had it (or mounted it). */
  onBlob?: (e: { digest: Digest; size: number; existed: boolean; mounted?: boolean }) => void
}

/**
 * One write into a layout: its options (whose signal is the transfer group's), the transfers
 * stopped together on a failure, the bound on blobs at once, and the blobs under way by digest.
 */
interface LayoutWrite {
  layout: OciLayout
  o: LayoutWriteOptions & { signal: AbortSignal }
  transfers: TransferGroup
  limit: ReturnType<typeof pLimit>
  blobs: OncePerKey<Digest, void>
}

async function writeImageBlobs(w: LayoutWrite, img: Image): Promise<void> {
  const { layout, limit, o } = w
  const manifest = await img.manifest()
  const layers = await img.layers()
  // The config is read, and checked against the manifest, while the layers stream in; no blob is
  // renamed into place before the check passed, so a bad config still leaves nothing behind,
  // and it stops the transfers under way. The config is written beside the layers, the
  // manifest last.
  const checked = img.rawConfig()
  checked.catch((e: unknown) => w.transfers.stop(e))
  await Promise.all([
    w.blobs.run(manifest.config.digest, () =>
      w.transfers.run(async () => {
        const written = await layout.writeBlob(await checked, manifest.config, o)
        o.onBlob?.(written)
      }),
    ),
    ...layers.map((layer, i) => {
      const d = manifest.layers[i] as Descriptor
      return w.blobs.run(d.digest, () =>
        w.transfers.run(() =>
          limit(async () => {
            o.signal.throwIfAborted()
            if (await layout.renewBlob(d.digest, d.size)) {
              o.onBlob?.({ digest: d.digest, size: d.size, existed: true })
              return
            }
            let stream: Readable
            try {
              stream = await layer.compressed(o)
            } catch (e) {
              // Foreign / non-distributable layers may legitimately be absent from the source.
              if (isOcikitError(e, 'BLOB_UNKNOWN') && isNondistributableType(d.mediaType)) return
              throw e
            }
            const taps = progressTap(d.digest, d.size, o.onProgress)
            const written = await layout.writeBlob(stream, d, { ...o, taps, commitAfter: checked })
            o.onBlob?.(written)
          }),
        ),
      )
    }),
  ])
  const digest = await img.digest()
  await w.blobs.run(digest, () =>
    w.transfers.run(async () => {
      const written = await layout.writeBlob(await img.rawManifest(), { digest }, o)
      o.onBlob?.(written)
    }),
  )
}

async function writeIndexBlobs(w: LayoutWrite, idx: ImageIndex, depth = 0): Promise<void> {
  await eachChild(idx, w.layout.name, depth, {
    image: (img) => writeImageBlobs(w, img),
    index: (child, d) => w.blobs.run(d.digest, () => writeIndexBlobs(w, child, depth + 1)),
  })
  const raw = await idx.rawManifest()
  const digest = await idx.digest()
  await w.transfers.run(async () => {
    const written = await w.layout.writeBlob(raw, { digest }, w.o)
    w.o.onBlob?.(written)
  })
}

/** How many times a write puts back blobs that a concurrent gc deleted before it gives up. */
const WRITE_ROUNDS = 3

/** Thrown inside the index update when a blob the write needs is gone: the update is not made. */
class BlobsGone {
  readonly digests: Digest[]
  constructor(digests: Digest[]) {
    this.digests = digests
  }
}

/**
 * Writes an image or index (every blob it reaches) into a layout, then records it in
 * `index.json`, tagged when `tag` is given (moving the tag if another image had it).
 * Blobs come first and the tag last, so a failure never leaves a tag without its blobs.
 * The first failure stops every other transfer of the write, and the write rejects (with that
 * failure) only once all of them have removed their temp files.
 *
 * With gc running beside it (docs/layers.md): every blob the write reuses has its mtime renewed,
 * so gc's grace period covers it; and under the layout's lock, which gc holds for its whole run,
 * the write checks that every blob it needs is still there before it records the entry. One
 * that gc deleted meanwhile is written again (up to three rounds; then BLOB_UNKNOWN and no
 * entry). So a write that succeeds leaves an entry whose every blob exists.
 */
export async function writeToLayout(layout: OciLayout, x: ImageOrIndex, tag: string | undefined, o: LayoutWriteOptions = {}): Promise<Descriptor> {
  let desc: Descriptor | undefined
  for (let round = 1; ; round++) {
    const needed = await writeBlobs(layout, x, o)
    // After the blobs: describing a tagged image reads its config, which the write checks first.
    desc ??= await describe(x, tag)
    const entry = desc
    try {
      await layout.updateIndex(async (index) => {
        const gone = await layout.missingBlobs(needed.values())
        if (gone.length > 0) throw new BlobsGone(gone)
        return addEntry(index, entry)
      })
      return entry
    } catch (e) {
      if (!(e instanceof BlobsGone)) throw e
      if (round >= WRITE_ROUNDS) {
        throw new NotFoundError(
          'BLOB_UNKNOWN',
          `${layout.name}: ${e.digests.length} blob(s) of the image (${e.digests[0]}...) were deleted while it was written, ${round} times (a gc running beside the write?); nothing was recorded`,
        )
      }
    }
  }
}

/** Writes every blob `x` reaches; returns each blob the entry needs (written, or found present and renewed). */
async function writeBlobs(layout: OciLayout, x: ImageOrIndex, o: LayoutWriteOptions): Promise<Map<Digest, { digest: Digest; size: number }>> {
  const transfers = new TransferGroup(o.signal)
  const needed = new Map<Digest, { digest: Digest; size: number }>()
  const onBlob: LayoutWriteOptions['onBlob'] = (b) => {
    needed.set(b.digest, { digest: b.digest, size: b.size })
    o.onBlob?.(b)
  }
  const w: LayoutWrite = { layout, o: { ...o, onBlob, signal: transfers.signal }, transfers, limit: pLimit(o.concurrency ?? 4), blobs: new OncePerKey() }
  try {
    if (x.kind === 'image') await writeImageBlobs(w, x)
    else await writeIndexBlobs(w, x)
  } catch (e) {
    throw await transfers.failed(e)
  }
  return needed
}

/** The `index.json` entry for `x`: its descriptor, with its platform (a tagged image) and its tag. */
async function describe(x: ImageOrIndex, tag: string | undefined): Promise<Descriptor> {
  const raw = await x.rawManifest()
  const desc: Descriptor = { mediaType: await x.mediaType(), digest: await x.digest(), size: raw.length }
  if (x.kind === 'image' && tag !== undefined && isImageConfigType((await x.manifest()).config.mediaType)) {
    const c = await x.config()
    desc.platform = { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) }
  }
  if (tag !== undefined) desc.annotations = { [REF_NAME]: tag }
  return desc
}

/** `index` with `desc` added: a tagged entry replaces any entry holding that tag; an untagged one is added once. */
export function addEntry(index: Index, desc: Descriptor): Index {
  const tag = tagOf(desc)
  const others = index.manifests.filter((m) => (tag === undefined ? !(m.digest === desc.digest && tagOf(m) === undefined) : tagOf(m) !== tag))
  return { ...index, manifests: [...others, desc] }
}

/** One entry of a layout's `index.json`. */
export interface LayoutEntry {
  readonly tag?: string | undefined
  readonly descriptor: Descriptor
}

/** Every entry of a layout's `index.json`, in file order. */
export async function listLayout(layout: OciLayout): Promise<LayoutEntry[]> {
  return (await layout.readIndex()).manifests.map((d) => ({ tag: tagOf(d), descriptor: d }))
}

/** Gives the image that `ref` names another tag in the same layout (moving it if held). */
export async function tagInLayout(layout: OciLayout, ref: LayoutRef, newTag: string): Promise<Descriptor> {
  const src = await resolveInLayout(layout, ref)
  await openView(layout, src) // never tag a manifest that is missing, corrupt or invalid
  const desc: Descriptor = { ...structuredClone(src), annotations: { ...src.annotations, [REF_NAME]: newTag } }
  await layout.updateIndex((index) => addEntry(index, desc))
  return desc
}

/** Removes a tag from a layout's `index.json`; the blobs stay until gc. Throws MANIFEST_UNKNOWN if absent. */
export async function untagInLayout(layout: OciLayout, tag: string): Promise<Descriptor> {
  let removed: Descriptor | undefined
  await layout.updateIndex((index) => {
    removed = index.manifests.find((m) => tagOf(m) === tag)
    if (!removed) throw new NotFoundError('MANIFEST_UNKNOWN', `${layout.name}: no tag '${tag}' (tags: ${tagList(index)})`)
    return { ...index, manifests: index.manifests.filter((m) => tagOf(m) !== tag) }
  })
  return removed as Descriptor
}
