/**
 * OCI archives (`oci-archive:FILE[:TAG]`): an OCI image layout in one tar file (`oci-layout`,
 * `index.json`, `blobs/<alg>/<hex>`), as skopeo, podman and buildah write it. Several tags per
 * file. Reading seeks to each blob; writing streams every blob into a new tar beside the file
 * (carrying over what the file already held) and renames it into place at the end.
 */
import type { Readable } from 'node:stream'
import { verifyBytes, verifyingStream } from '../../digest.ts'
import { canonicalJson } from '../../documents/canonical.ts'
import { MediaType } from '../../documents/media-types.ts'
import type { Descriptor, Index } from '../../documents/schemas.ts'
import { indexSchema, ociLayoutSchema } from '../../documents/schemas.ts'
import { checkSchema, MAX_DOCUMENT_SIZE, parseJsonBytes } from '../../documents/validate.ts'
import { NotSupportedError, OcikitError } from '../../errors.ts'
import type { BlobSource, ImageOrIndex, IoOptions } from '../../image/types.ts'
import { openView } from '../../image/view.ts'
import { type ArchiveName, formatName } from '../../name/parse.ts'
import { chain } from '../../streams.ts'
import { fsckViews } from '../fsck-views.ts'
import { addEntry, blobEntryName, findInIndex, REF_NAME, tagOf } from '../oci-index.ts'
import type { CommitResult, ImageSink, ListedEntry, PutBlobOptions, PutOutcome, Store } from '../types.ts'
import { TarFile } from './tar-file.ts'
import { rewriteArchive, type TarWriter } from './tar-writer.ts'

/** Largest `index.json` read from an archive (it lists every tag). */
const MAX_INDEX_JSON = 64 * 1024 * 1024

/** The blobs of an OCI layout inside a tar, read by seeking and verified as they stream. */
export class LayoutTarSource implements BlobSource {
  readonly name: string
  readonly tar: TarFile
  constructor(tar: TarFile) {
    this.tar = tar
    this.name = tar.name
  }
  #entry(d: Descriptor) {
    const e = this.tar.entry(blobEntryName(d.digest))
    if (!e) throw new OcikitError('BLOB_UNKNOWN', `${this.name}: blob ${d.digest} is missing (${blobEntryName(d.digest)})`)
    return e
  }
  async openBlob(d: Descriptor, o?: IoOptions): Promise<Readable> {
    return chain(this.tar.stream(this.#entry(d), o), verifyingStream(d, `${this.name} blob ${d.digest}`))
  }
  async readBlob(d: Descriptor, _o?: IoOptions): Promise<Uint8Array> {
    const bytes = await this.tar.read(this.#entry(d), MAX_DOCUMENT_SIZE)
    verifyBytes(bytes, d, `${this.name} blob ${d.digest}`)
    return bytes
  }
}

/** The parsed `index.json` of a layout in a tar, after checking its `oci-layout`. */
export async function readLayoutIndex(tar: TarFile): Promise<Index> {
  const layoutFile = tar.need('oci-layout', 'not an OCI layout archive')
  checkSchema(
    ociLayoutSchema,
    parseJsonBytes(await tar.read(layoutFile, 64 * 1024), `${tar.name} oci-layout`, 'INVALID_LAYOUT'),
    'oci-layout',
    tar.name,
    'INVALID_LAYOUT',
  )
  const raw = await tar.read(tar.need('index.json', 'not an OCI layout archive'), MAX_INDEX_JSON)
  return checkSchema(
    indexSchema,
    parseJsonBytes(raw, `${tar.name} index.json`, 'INVALID_LAYOUT', MAX_INDEX_JSON),
    'index',
    `${tar.name} index.json`,
    'INVALID_LAYOUT',
  )
}

async function resolve(src: LayoutTarSource, index: Index, tag: string | undefined): Promise<Descriptor> {
  return findInIndex(index, { tag }, src.name, async () => undefined)
}

/**
 * Writes into an OCI archive under a tag (or untagged). The new tar is made beside the file on the
 * first blob; what the file already held is carried over first, so other tags stay.
 */
class OciArchiveSink implements ImageSink {
  readonly name: string
  readonly copiesForeignLayers = true
  /** A tar is written one entry after another. */
  readonly concurrency = 1
  readonly #file: string
  readonly #tag: string | undefined
  #started: Promise<{ writer: TarWriter; index: Index; held: Map<string, number> }> | undefined
  constructor(file: string, tag: string | undefined, name: string) {
    this.#file = file
    this.#tag = tag
    this.name = name
  }

  #start() {
    this.#started ??= (async () => {
      const layoutFile = Buffer.from(`${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`)
      const { writer, old, held } = await rewriteArchive(
        this.#file,
        this.name,
        readLayoutIndex,
        (e) => e.name.startsWith('blobs/'),
        (w) => w.add('oci-layout', layoutFile.length, layoutFile),
      )
      return { writer, index: old ?? { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }, held }
    })()
    return this.#started
  }

  async #put(d: Descriptor, size: number, body: Uint8Array | (() => Promise<Readable>)): Promise<PutOutcome> {
    const { writer, held } = await this.#start()
    const name = blobEntryName(d.digest)
    if (held.has(name)) return 'existed'
    held.set(name, size)
    try {
      await writer.add(name, size, body)
    } catch (e) {
      held.delete(name)
      throw e
    }
    return 'written'
  }

  putBlob(d: Descriptor, open: () => Promise<Readable>, o: PutBlobOptions): Promise<PutOutcome> {
    const taps = [...(o.taps ?? [])]
    return this.#put(d, d.size, async () => chain(await open(), ...taps))
  }

  async putManifest(d: Descriptor, bytes: Uint8Array, _o: IoOptions): Promise<PutOutcome> {
    verifyBytes(bytes, d, `${this.name} manifest ${d.digest}`)
    return this.#put(d, bytes.length, bytes)
  }

  async commit(_x: ImageOrIndex, d: Descriptor, bytes: Uint8Array, _needed: readonly Descriptor[], o: IoOptions): Promise<CommitResult> {
    await this.putManifest(d, bytes, o)
    const { writer, index } = await this.#start()
    const entry: Descriptor = {
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      ...(this.#tag === undefined ? {} : { annotations: { [REF_NAME]: this.#tag } }),
    }
    const next = canonicalJson(addEntry(index, entry))
    await writer.add('index.json', next.length, next)
    await writer.finish()
    return { descriptor: entry }
  }

  async abort(): Promise<void> {
    const started = await this.#started?.catch(() => undefined)
    await started?.writer.discard()
  }
}

/** The store for a name `oci-archive:FILE[:TAG]`. */
export function ociArchiveStore(n: ArchiveName): Store {
  const name = formatName(n)
  const open = async () => {
    const tar = await TarFile.open(n.path, `oci-archive:${n.path}`)
    return { src: new LayoutTarSource(tar), index: await readLayoutIndex(tar) }
  }
  const no = (what: string) => async (): Promise<never> => {
    throw new NotSupportedError(`${name}: ${what}`)
  }
  return {
    name,
    read: async (o) => {
      const { src, index } = await open()
      return openView(src, await resolve(src, index, n.ref), o)
    },
    sink: async () => new OciArchiveSink(n.path, n.ref, name),
    list: async (): Promise<ListedEntry[]> => (await open()).index.manifests.map((d) => ({ tag: tagOf(d), descriptor: d })),
    tag: no("an archive is written whole; copy the image to a new tag instead ('ocikit copy oci-archive:FILE:OLD oci-archive:FILE:NEW')"),
    untag: no('an archive is written whole; copy the images to keep into a new archive'),
    fsck: async (o) => {
      const { src, index } = await open()
      return fsckViews(
        index.manifests.map((d, i) => ({ via: `index.json manifests[${i}]${tagOf(d) ? ` (tag ${tagOf(d)})` : ''}`, open: () => openView(src, d) })),
        o,
      )
    },
    gc: no('an archive holds only what its images reach once it is rewritten; copy the images to keep into a new archive'),
  }
}
