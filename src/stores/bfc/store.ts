/**
 * BFC single-file containers (`bfc:FILE[:TAG]`): an OCI image layout stored as one BFC file, its
 * entries the layout's own files (`oci-layout`, `index.json`, `blobs/sha256/<hex>` and their
 * directories), so BFC's own tool lists, verifies and extracts what ocikit writes, and a layout
 * that tool packed is an image ocikit reads. Reading opens the footer and index only and seeks to
 * each blob, verified against its digest as it streams (BFC's CRC32C is checked too, but it is not
 * a digest). Writing appends (see writer.ts); several tags and images per file.
 */
import type { Readable } from 'node:stream'
import { type Digest, verifyBytes, verifyingStream } from '../../digest.ts'
import { canonicalJson } from '../../documents/canonical.ts'
import { isImageConfigType, isIndexType, isManifestType, MediaType } from '../../documents/media-types.ts'
import type { Descriptor, Index } from '../../documents/schemas.ts'
import { indexSchema, ociLayoutSchema } from '../../documents/schemas.ts'
import { checkSchema, MAX_DOCUMENT_SIZE, parseJsonBytes } from '../../documents/validate.ts'
import { OcikitError } from '../../errors.ts'
import type { BlobSource, ImageOrIndex, IoOptions } from '../../image/types.ts'
import { openView } from '../../image/view.ts'
import { type ArchiveName, formatName } from '../../name/parse.ts'
import { chain } from '../../streams.ts'
import { fsckViews } from '../fsck-views.ts'
import { addEntry, blobEntryName, findInIndex, REF_NAME, tagOf } from '../oci-index.ts'
import type { CommitResult, FsckProblem, ImageSink, ListedEntry, PutBlobOptions, PutOutcome, Store } from '../types.ts'
import { BfcFile } from './container.ts'
import type { BfcKeySource } from './crypto.ts'
import { comparePaths, isBfcPath, TYPE_DIR } from './format.ts'
import { type BfcWriteOptions, BfcWriter, compactBfc } from './writer.ts'

/** Largest `index.json` read from a BFC file. */
const MAX_INDEX_JSON = 64 * 1024 * 1024

/** How to open BFC stores: the key of encrypted files, and how new objects are written. */
export interface BfcOptions extends BfcWriteOptions {
  key?: BfcKeySource | undefined
}

/** The blobs of a layout in a BFC file, read where they lie and verified as they stream. */
export class BfcBlobSource implements BlobSource {
  readonly name: string
  readonly file: BfcFile
  constructor(file: BfcFile) {
    this.file = file
    this.name = file.name
  }
  #entry(d: Descriptor) {
    const e = this.file.entries.get(blobEntryName(d.digest))
    if (!e || e.type === TYPE_DIR) throw new OcikitError('BLOB_UNKNOWN', `${this.name}: blob ${d.digest} is missing (${blobEntryName(d.digest)})`)
    if (e.origSize !== d.size) throw new OcikitError('SIZE_MISMATCH', `${this.name}: blob ${d.digest} holds ${e.origSize} bytes where ${d.size} were expected`)
    return e
  }
  async openBlob(d: Descriptor, o?: IoOptions): Promise<Readable> {
    return chain(await this.file.stream(this.#entry(d), o), verifyingStream(d, `${this.name} blob ${d.digest}`))
  }
  async readBlob(d: Descriptor, o?: IoOptions): Promise<Uint8Array> {
    const bytes = await this.file.read(this.#entry(d), MAX_DOCUMENT_SIZE, o)
    verifyBytes(bytes, d, `${this.name} blob ${d.digest}`)
    return bytes
  }
}

/** The parsed `index.json` of the layout in a BFC file, after checking its `oci-layout`. */
export async function readBfcIndex(file: BfcFile): Promise<Index> {
  const need = (p: string) => {
    const e = file.entries.get(p)
    if (!e || e.type === TYPE_DIR) throw new OcikitError('INVALID_LAYOUT', `${file.name}: no ${p}: not an OCI layout in a BFC file`)
    return e
  }
  checkSchema(
    ociLayoutSchema,
    parseJsonBytes(await file.read(need('oci-layout'), 64 * 1024), `${file.name} oci-layout`, 'INVALID_LAYOUT'),
    'oci-layout',
    file.name,
    'INVALID_LAYOUT',
  )
  const raw = await file.read(need('index.json'), MAX_INDEX_JSON)
  return checkSchema(
    indexSchema,
    parseJsonBytes(raw, `${file.name} index.json`, 'INVALID_LAYOUT', MAX_INDEX_JSON),
    'index',
    `${file.name} index.json`,
    'INVALID_LAYOUT',
  )
}

const EMPTY_INDEX: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }
const LAYOUT_FILE = Buffer.from(`${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`)

/** Whether a blob of this media type is a JSON document (compressed when asked), not a layer. */
const isDocument = (mediaType: string) => isManifestType(mediaType) || isIndexType(mediaType) || isImageConfigType(mediaType) || mediaType.endsWith('+json')

/** Writes the layout's skeleton (directories, `oci-layout`) and a new `index.json` from `edit` of the old one. */
async function writeIndex(w: BfcWriter, file: BfcFile | undefined, edit: (old: Index) => Index): Promise<Index> {
  const old = file?.entries.has('index.json') ? await readBfcIndex(file) : EMPTY_INDEX
  for (const dir of ['blobs', 'blobs/sha256']) await w.addDir(dir)
  if (!w.has('oci-layout')) await w.addBytes('oci-layout', LAYOUT_FILE)
  const next = edit(old)
  await w.addBytes('index.json', canonicalJson(next), { compressible: true })
  return next
}

/** Writes into a BFC file under a tag (or untagged), appending to the file when it exists. */
class BfcSink implements ImageSink {
  readonly name: string
  readonly copiesForeignLayers = true
  /** Objects are appended one after another. */
  readonly concurrency = 1
  readonly #file: string
  readonly #tag: string | undefined
  readonly #o: BfcOptions
  #started: Promise<{ w: BfcWriter; old: BfcFile | undefined }> | undefined
  constructor(file: string, tag: string | undefined, name: string, o: BfcOptions) {
    this.#file = file
    this.#tag = tag
    this.name = name
    this.#o = o
  }
  #start() {
    this.#started ??= (async () => {
      const w = await BfcWriter.begin(this.#file, this.name, this.#o)
      const old = await BfcFile.open(this.#file, this.name, { key: this.#o.key }).catch(() => undefined)
      return { w, old }
    })()
    return this.#started
  }
  async putBlob(d: Descriptor, open: () => Promise<Readable>, o: PutBlobOptions): Promise<PutOutcome> {
    const { w } = await this.#start()
    const p = blobEntryName(d.digest)
    if (!isBfcPath(p)) throw new OcikitError('INVALID_DIGEST', `${this.name}: ${d.digest} makes no path BFC stores`)
    if (w.has(p)) return 'existed'
    await o.commitAfter
    if (isDocument(d.mediaType) && d.size <= MAX_DOCUMENT_SIZE) {
      const bytes = Buffer.concat(await chain(await open(), ...(o.taps ?? [])).toArray({ signal: o.signal }))
      verifyBytes(bytes, d, `${this.name} blob ${d.digest}`)
      await w.addBytes(p, bytes, { compressible: true })
    } else {
      // The source's stream is verified (it fails at its end on a wrong digest), and the object
      // is named in the index only when the write finishes.
      await w.addStream(p, chain(await open(), ...(o.taps ?? []), verifyingStream(d, `${this.name} blob ${d.digest}`)))
    }
    return 'written'
  }
  async putManifest(d: Descriptor, bytes: Uint8Array, _o: IoOptions): Promise<PutOutcome> {
    verifyBytes(bytes, d, `${this.name} manifest ${d.digest}`)
    const { w } = await this.#start()
    const p = blobEntryName(d.digest)
    if (w.has(p)) return 'existed'
    await w.addBytes(p, bytes, { compressible: true })
    return 'written'
  }
  async commit(_x: ImageOrIndex, d: Descriptor, bytes: Uint8Array, _needed: readonly Descriptor[], o: IoOptions): Promise<CommitResult> {
    await this.putManifest(d, bytes, o)
    const { w, old } = await this.#start()
    const entry: Descriptor = {
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      ...(this.#tag === undefined ? {} : { annotations: { [REF_NAME]: this.#tag } }),
    }
    await writeIndex(w, old, (idx) => addEntry(idx, entry))
    await w.finish()
    return { descriptor: entry }
  }
  async abort(): Promise<void> {
    const started = await this.#started?.catch(() => undefined)
    await started?.w.discard()
  }
}

/** Structural checks BFC's own `verify` does not make: order, object headers, every object's content. */
async function checkStructure(file: BfcFile, o: IoOptions): Promise<FsckProblem[]> {
  const problems: FsckProblem[] = []
  const add = (path: string, message: string) => problems.push({ kind: 'invalid', digest: '' as Digest, via: `${file.name} ${path}`, role: 'blob', message })
  if (!file.sorted) add('(index)', 'the index is not sorted by raw bytes, as BFC v1 requires (BFC looks entries up by binary search)')
  for (const e of [...file.entries.values()].sort((a, b) => comparePaths(a.path, b.path))) {
    o.signal?.throwIfAborted()
    try {
      await file.head(e)
      if (e.type !== TYPE_DIR) for await (const _ of await file.stream(e, o));
    } catch (err) {
      if (!(err instanceof OcikitError)) throw err
      add(e.path, err.message)
    }
  }
  return problems
}

/** The store for a name `bfc:FILE[:TAG]`. */
export function bfcStore(n: ArchiveName, o: BfcOptions = {}): Store {
  const name = formatName(n)
  const open = async () => {
    const file = await BfcFile.open(n.path, name, { key: o.key })
    return { file, src: new BfcBlobSource(file), index: await readBfcIndex(file) }
  }
  const retag = async (edit: (idx: Index) => Index) => {
    const w = await BfcWriter.begin(n.path, name, o)
    try {
      const file = await BfcFile.open(n.path, name, { key: o.key })
      await writeIndex(w, file, edit)
      await w.finish()
    } catch (e) {
      await w.discard()
      throw e
    }
  }
  return {
    name,
    read: async (io) => {
      const { src, index } = await open()
      return openView(src, await findInIndex(index, { tag: n.ref }, name, async () => undefined), io)
    },
    sink: async () => new BfcSink(n.path, n.ref, name, o),
    list: async (): Promise<ListedEntry[]> => (await open()).index.manifests.map((d) => ({ tag: tagOf(d), descriptor: d })),
    tag: async (newTag) => {
      const { index } = await open()
      const d = await findInIndex(index, { tag: n.ref }, name, async () => undefined)
      const entry: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size, annotations: { [REF_NAME]: newTag } }
      await retag((idx) => addEntry(idx, entry))
      return entry
    },
    untag: async () => {
      if (n.ref === undefined) throw new OcikitError('INVALID_NAME', `${name}: name the tag to remove (bfc:FILE:TAG)`)
      const { index } = await open()
      const d = await findInIndex(index, { tag: n.ref }, name, async () => undefined)
      await retag((idx) => ({ ...idx, manifests: idx.manifests.filter((m) => tagOf(m) !== n.ref) }))
      return d
    },
    fsck: async (io) => {
      const { file, src, index } = await open()
      const structure = await checkStructure(file, io ?? {})
      const views = await fsckViews(
        index.manifests.map((d, i) => ({ via: `index.json manifests[${i}]${tagOf(d) ? ` (tag ${tagOf(d)})` : ''}`, open: () => openView(src, d) })),
        io,
      )
      const problems = [...structure, ...views.problems]
      // A write cut off before its footer left bytes no reader sees; the next write cuts them off.
      const notes =
        file.recovered > 0
          ? [`${file.recovered} bytes after the last valid footer (a write cut off before it finished): ignored, and removed by the next write`]
          : []
      return { ...views, ok: problems.length === 0, problems, notes }
    },
    gc: async (g) => {
      // What the tags reach: every manifest, config and layer, through nested indexes.
      const { file, src, index } = await open()
      const live = new Set<string>(['oci-layout', 'index.json'])
      const reach = async (x: ImageOrIndex): Promise<void> => {
        const d = await x.digest()
        if (live.has(blobEntryName(d))) return
        live.add(blobEntryName(d))
        if (x.kind === 'index') {
          for (const c of (await x.manifest()).manifests) await reach(isIndexType(c.mediaType) ? await x.index(c.digest) : await x.image(c.digest))
          return
        }
        const m = await x.manifest()
        for (const b of [m.config, ...m.layers]) live.add(blobEntryName(b.digest))
      }
      for (const d of index.manifests) await reach(await openView(src, d))
      const keep = (e: { path: string; type: number }) => e.type === TYPE_DIR || live.has(e.path)
      const gone = [...file.entries.values()].filter((e) => !keep(e))
      const removed = gone.map((e) => ({ digest: `sha256:${e.path.split('/').at(-1)}` as Digest, size: e.origSize }))
      if (g?.dryRun) return { removed, bytes: removed.reduce((n, r) => n + r.size, 0), keptRecent: 0, tempsRemoved: 0, dryRun: true }
      // Under the file's lock, which every write holds from its first object to its footer.
      const r = await compactBfc(n.path, name, keep)
      return { removed, bytes: r.before - r.after, keptRecent: 0, tempsRemoved: 0, dryRun: false }
    },
  }
}
