/** Reading, writing and tagging images in an OCI layout. */
import fs from 'node:fs/promises'
import type { Readable } from 'node:stream'
import type { LimitFunction } from 'p-limit'
import type { Digest } from '../../digest.ts'
import { isImageConfigType } from '../../documents/media-types.ts'
import type { Descriptor } from '../../documents/schemas.ts'
import { detectManifestType, parseJsonBytes } from '../../documents/validate.ts'
import { NotFoundError, OcikitError } from '../../errors.ts'
import type { ImageOrIndex, IoOptions } from '../../image/types.ts'
import { openView } from '../../image/view.ts'
import type { LayoutName } from '../../name/parse.ts'
import { formatName } from '../../name/parse.ts'
import { directoryKey, placeLimit } from '../../transfers.ts'
import { addEntry, findInIndex, type IndexRef, REF_NAME, tagList, tagOf } from '../oci-index.ts'
import type { CommitResult, ImageSink, ListedEntry, PutBlobOptions, PutOutcome, Store } from '../types.ts'
import { fsckLayout } from './fsck.ts'
import { gcLayout } from './gc.ts'
import { OciLayout } from './layout.ts'

/** Which image of a layout: a tag, a digest, or (neither) the only one. */
export type LayoutRef = IndexRef

/** The `index.json` entry (or, for a digest not listed there, a descriptor of the blob) that `ref` names. */
export async function resolveInLayout(layout: OciLayout, ref: LayoutRef): Promise<Descriptor> {
  return findInIndex(await layout.readIndex(), ref, layout.name, async (digest) => {
    if (!(await layout.hasBlob(digest))) return undefined
    // A manifest reachable only through an index: learn its type from its content.
    const raw = await layout.readBlobByDigest(digest)
    const mediaType = detectManifestType(parseJsonBytes(raw, `${layout.name} blob ${digest}`, 'INVALID_MANIFEST'), `${layout.name} blob ${digest}`)
    return { mediaType, digest, size: raw.length }
  })
}

/** The image or index that `ref` names in a layout, as a lazy view. */
export async function readFromLayout(layout: OciLayout, ref: LayoutRef, o?: IoOptions): Promise<ImageOrIndex> {
  return openView(layout, await resolveInLayout(layout, ref), o)
}

/** The `index.json` entry for `d`: with its platform (a tagged image) and its tag. */
async function entryFor(x: ImageOrIndex, d: Descriptor, tag: string | undefined): Promise<Descriptor> {
  const desc: Descriptor = { ...d }
  if (x.kind === 'image' && tag !== undefined && isImageConfigType((await x.manifest()).config.mediaType)) {
    const c = await x.config()
    desc.platform = { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) }
  }
  if (tag !== undefined) desc.annotations = { [REF_NAME]: tag }
  return desc
}

/** Thrown inside the index update when a blob the write needs is gone: the update is not made. */
class BlobsGone {
  readonly digests: Digest[]
  constructor(digests: Digest[]) {
    this.digests = digests
  }
}

/** Blobs written at once into one layout from this process, over all its writes (see placeLimit). */
const BLOBS_PER_LAYOUT = 16

/**
 * Writes into a layout, under a tag or by digest alone (`index.json` gets an untagged entry). The
 * layout is created on the first blob, so a write that fails before it leaves no directory.
 *
 * With gc running beside it (docs/layers.md): every blob present that the write reuses has its
 * mtime renewed, so gc's grace period covers it; and under the layout's lock, which gc holds for
 * its whole run, the commit checks that every blob the write needs is still there before it
 * records the entry, answering `missing` (the engine puts them back) when one is not. So a write
 * that succeeds leaves an entry whose every blob exists.
 */
export class LayoutSink implements ImageSink {
  readonly name: string
  readonly copiesForeignLayers = true
  readonly sharedLimit: LimitFunction
  readonly #dir: string
  readonly #tag: string | undefined
  #layout: Promise<{ layout: OciLayout; created: boolean }> | undefined
  /** Blobs this write named (not ones it found), which an abort of a layout it created takes away again. */
  readonly #written: Digest[] = []
  constructor(dir: string, tag: string | undefined, name = `oci:${dir}${tag === undefined ? '' : `:${tag}`}`) {
    this.#dir = dir
    this.#tag = tag
    this.name = name
    this.sharedLimit = placeLimit(directoryKey('layout', dir), BLOBS_PER_LAYOUT)
  }

  #open(): Promise<OciLayout> {
    this.#layout ??= (async () => {
      const existed = await fs.stat(this.#dir).then(
        () => true,
        () => false,
      )
      return { layout: await OciLayout.create(this.#dir), created: !existed }
    })()
    return this.#layout.then((l) => l.layout)
  }

  async putBlob(d: Descriptor, open: () => Promise<Readable>, o: PutBlobOptions): Promise<PutOutcome> {
    const layout = await this.#open()
    if (await layout.renewBlob(d.digest, d.size)) return 'existed'
    const written = await layout.writeBlob(await open(), d, { signal: o.signal, taps: [...(o.taps ?? [])], commitAfter: o.commitAfter })
    if (!written.existed) this.#written.push(d.digest)
    return written.existed ? 'existed' : 'written'
  }

  async putManifest(d: Descriptor, bytes: Uint8Array, o: IoOptions): Promise<PutOutcome> {
    const written = await (await this.#open()).writeBlob(bytes, { digest: d.digest, size: d.size }, o)
    return written.existed ? 'existed' : 'written'
  }

  async commit(x: ImageOrIndex, d: Descriptor, bytes: Uint8Array, needed: readonly Descriptor[], o: IoOptions): Promise<CommitResult> {
    const layout = await this.#open()
    await this.putManifest(d, bytes, o)
    const entry = await entryFor(x, d, this.#tag)
    try {
      await layout.updateIndex(async (index) => {
        const gone = await layout.missingBlobs([...needed, d])
        if (gone.length > 0) throw new BlobsGone(gone)
        return addEntry(index, entry)
      })
    } catch (e) {
      if (e instanceof BlobsGone) return { missing: e.digests }
      throw e
    }
    return { descriptor: entry }
  }

  async abort(): Promise<void> {
    // A layout this write created: the blobs it named go (a writer beside it that reuses one
    // puts it back at its commit), and the layout too when nothing else is in it.
    const opened = await this.#layout?.catch(() => undefined)
    if (!opened?.created) return
    try {
      for (const d of this.#written) await fs.rm(opened.layout.blobPath(d), { force: true })
      const index = await opened.layout.readIndex()
      const { blobs, temps } = await opened.layout.listBlobs()
      if (index.manifests.length === 0 && blobs.length === 0 && temps.length === 0) await fs.rm(opened.layout.dir, { recursive: true, force: true })
    } catch {
      // left as it is: it is a valid (empty) layout
    }
  }
}

/** Every entry of a layout's `index.json`, in file order. */
export async function listLayout(layout: OciLayout): Promise<ListedEntry[]> {
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

/** The layout store for a name `oci:DIR[:TAG|@DIGEST]`. */
export function layoutStore(n: LayoutName): Store {
  const name = formatName(n)
  const ref = { tag: n.tag, digest: n.digest }
  return {
    name,
    read: async (o) => readFromLayout(await OciLayout.open(n.path), ref, o),
    sink: async () => {
      if (n.digest) throw new OcikitError('INVALID_NAME', `${name}: cannot write to a digest; name a tag (oci:DIR:TAG) or none`)
      return new LayoutSink(n.path, n.tag, name)
    },
    list: async () => listLayout(await OciLayout.open(n.path)),
    tag: async (newTag) => tagInLayout(await OciLayout.open(n.path), ref, newTag),
    untag: async () => {
      if (n.tag === undefined) throw new OcikitError('INVALID_NAME', `${name}: name the tag to remove (oci:DIR:TAG)`)
      return untagInLayout(await OciLayout.open(n.path), n.tag)
    },
    fsck: async (o) => fsckLayout(await OciLayout.open(n.path), o),
    gc: async (o) => {
      if (n.tag !== undefined || n.digest !== undefined) throw new OcikitError('INVALID_NAME', `${name}: gc works on a whole layout; name it as oci:DIR`)
      return gcLayout(await OciLayout.open(n.path), o)
    },
  }
}
