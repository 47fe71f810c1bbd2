/**
 * docker-save archives (`docker-archive:FILE[:REPO:TAG|@N]`), as `docker save`, `podman save` and
 * skopeo write them and `docker load` / `podman load` read them: `manifest.json` (one entry per
 * image: `Config`, `RepoTags`, `Layers`), `repositories`, the configs and the layer tars. Both the
 * classic layout (`<id>/layer.tar`, `<hex>.json`) and Docker 25's, which is also an OCI layout
 * (`blobs/sha256/…`, `index.json`), are read; several images and tags per file.
 *
 * An image read from one is the archive's own OCI manifest when the archive holds one for its
 * config (Docker 25+), else a Docker v2 manifest made from `manifest.json`, the layer files as
 * they are (uncompressed or gzip). Written archives hold uncompressed layers, named by their
 * diffID under `blobs/sha256/`, as `docker load` expects: compressed layers are decompressed
 * into a temp file on disk first (never into memory), to learn their size.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { type Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { compressionOf, decompressor } from '../../compress.ts'
import { type Digest, DigestingStream, digestOf, isDigest, verifyBytes, verifyingStream } from '../../digest.ts'
import { canonicalJson } from '../../documents/canonical.ts'
import { isImageConfigType, layerCompression, MediaType } from '../../documents/media-types.ts'
import type { Descriptor, ImageConfig, Index, Manifest } from '../../documents/schemas.ts'
import { MAX_DOCUMENT_SIZE, parseImageConfig, parseJsonBytes, parseManifestOrIndex } from '../../documents/validate.ts'
import { DigestMismatchError, InvalidDocumentError, NotFoundError, NotSupportedError, OcikitError } from '../../errors.ts'
import { formatPlatform } from '../../image/platform.ts'
import type { BlobSource, Image, ImageOrIndex, IoOptions } from '../../image/types.ts'
import { SourceImage, SourceIndex } from '../../image/view.ts'
import { sniffCompression } from '../../layer/read.ts'
import { type ArchiveName, formatName } from '../../name/parse.ts'
import { formatReference, parseReference } from '../../name/reference.ts'
import { chain } from '../../streams.ts'
import { createTempFile } from '../../temp-file.ts'
import { fsckViews } from '../fsck-views.ts'
import { blobEntryName, REF_NAME } from '../oci-index.ts'
import type { CommitResult, ImageSink, ListedEntry, PutBlobOptions, PutOutcome, Store } from '../types.ts'
import { LayoutTarSource, readLayoutIndex } from './oci-archive.ts'
import { TarFile } from './tar-file.ts'
import type { TarEntryAt } from './tar-index.ts'
import { rewriteArchive, type TarWriter } from './tar-writer.ts'

/** One image of `manifest.json`. */
interface SaveEntry {
  Config: string
  RepoTags: string[] | null
  Layers: string[]
}

const DOCKER_TAR_LAYER = 'application/vnd.docker.image.rootfs.diff.tar'

/** `manifest.json`, checked: an array of entries whose every file is in the archive. */
async function readSaveManifest(tar: TarFile): Promise<SaveEntry[]> {
  const raw = await tar.read(tar.need('manifest.json', 'not a docker-save archive'), MAX_DOCUMENT_SIZE)
  const doc = parseJsonBytes(raw, `${tar.name} manifest.json`, 'INVALID_LAYOUT')
  const bad = (why: string) => new InvalidDocumentError('INVALID_LAYOUT', `${tar.name} manifest.json`, [why])
  if (!Array.isArray(doc)) throw bad('not a JSON array of images')
  return doc.map((e: unknown, i) => {
    const x = e as Partial<SaveEntry>
    if (typeof x?.Config !== 'string' || !Array.isArray(x.Layers) || !x.Layers.every((l) => typeof l === 'string')) {
      throw bad(`[${i}] lacks Config (a file name) or Layers (a list of file names)`)
    }
    if (x.RepoTags != null && !(Array.isArray(x.RepoTags) && x.RepoTags.every((t) => typeof t === 'string')))
      throw bad(`[${i}].RepoTags is not a list of names`)
    for (const f of [x.Config, ...x.Layers]) tar.need(cleanName(f), `named by manifest.json [${i}]`)
    return { Config: cleanName(x.Config), RepoTags: x.RepoTags ?? null, Layers: x.Layers.map(cleanName) }
  })
}

const cleanName = (f: string) => f.replace(/^(\.\/)+/, '')

/** A name's normal form, so that `alpine:3`, `docker.io/library/alpine:3` and `library/alpine:3` are one. */
function normalTag(t: string): string {
  try {
    return formatReference(parseReference(t))
  } catch {
    return t
  }
}

/** The blobs of one docker-save archive: files by digest, and the manifests made for it. */
class SaveSource implements BlobSource {
  readonly name: string
  readonly tar: TarFile
  readonly files = new Map<string, TarEntryAt>()
  readonly docs = new Map<string, Uint8Array>()
  readonly #layout: LayoutTarSource | undefined
  constructor(tar: TarFile, layout: boolean) {
    this.tar = tar
    this.name = tar.name
    this.#layout = layout ? new LayoutTarSource(tar) : undefined
  }
  #file(d: Descriptor): TarEntryAt | undefined {
    return this.files.get(d.digest) ?? (this.#layout ? this.tar.entry(blobEntryName(d.digest)) : undefined)
  }
  async openBlob(d: Descriptor, o?: IoOptions): Promise<Readable> {
    const f = this.#file(d)
    if (!f) throw new NotFoundError('BLOB_UNKNOWN', `${this.name}: no blob ${d.digest}`)
    return chain(this.tar.stream(f, o), verifyingStream(d, `${this.name} ${f.name}`))
  }
  async readBlob(d: Descriptor, o?: IoOptions): Promise<Uint8Array> {
    const doc = this.docs.get(d.digest)
    if (doc) return new Uint8Array(doc)
    const f = this.#file(d)
    if (!f) throw new NotFoundError('BLOB_UNKNOWN', `${this.name}: no blob ${d.digest}`)
    void o
    const bytes = await this.tar.read(f, MAX_DOCUMENT_SIZE)
    verifyBytes(bytes, d, `${this.name} ${f.name}`)
    return bytes
  }
}

/** Every manifest of the archive's own OCI layout (Docker 25+), by its config digest. */
async function layoutManifests(src: SaveSource): Promise<Map<string, { raw: Uint8Array; d: Descriptor }>> {
  const out = new Map<string, { raw: Uint8Array; d: Descriptor }>()
  if (!src.tar.entry('index.json') || !src.tar.entry('oci-layout')) return out
  const walk = async (index: Index, depth: number): Promise<void> => {
    for (const d of index.manifests) {
      if (!isDigest(d.digest) || depth > 2) continue
      const raw = await src.readBlob(d).catch(() => undefined)
      if (!raw) continue
      const p = parseManifestOrIndex(raw, `${src.name} ${d.digest}`, d.mediaType)
      if (p.kind === 'index') await walk(p.index, depth + 1)
      else if (isImageConfigType(p.manifest.config.mediaType))
        out.set(p.manifest.config.digest, { raw, d: { mediaType: p.mediaType, digest: d.digest, size: raw.length } })
    }
  }
  await walk(await readLayoutIndex(src.tar), 0)
  return out
}

/** The image one `manifest.json` entry describes. */
async function imageOf(src: SaveSource, e: SaveEntry, i: number, own: Map<string, { raw: Uint8Array; d: Descriptor }>): Promise<Image> {
  const cfgEntry = src.tar.need(e.Config, `the config of manifest.json [${i}]`)
  const cfgBytes = await src.tar.read(cfgEntry, MAX_DOCUMENT_SIZE)
  const cfgDigest = digestOf(cfgBytes)
  src.files.set(cfgDigest, cfgEntry)
  const mine = own.get(cfgDigest)
  if (mine) {
    const p = parseManifestOrIndex(mine.raw, `${src.name} ${mine.d.digest}`, mine.d.mediaType)
    if (p.kind === 'image') return new SourceImage(src, mine.raw, mine.d.digest, p.mediaType, p.manifest)
  }
  const config: ImageConfig = parseImageConfig(cfgBytes, `${src.name} ${e.Config}`)
  const diffIds = config.rootfs.diff_ids
  if (diffIds.length !== e.Layers.length) {
    throw new InvalidDocumentError('INVALID_LAYOUT', `${src.name} manifest.json [${i}]`, [
      `lists ${e.Layers.length} layers but its config ${e.Config} has ${diffIds.length} diff IDs`,
    ])
  }
  const layers: Descriptor[] = []
  for (const [j, file] of e.Layers.entries()) {
    const f = src.tar.need(file, `layer ${j} of manifest.json [${i}]`)
    const head = await src.tar.read({ ...f, size: Math.min(f.size, 4) }, 4)
    const compression = sniffCompression(head)
    let digest: Digest
    if (compression === 'none') digest = diffIds[j] as Digest
    else {
      const named = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(file)
      digest = named ? (`sha256:${named[1]}` as Digest) : await hashEntry(src.tar, f)
    }
    src.files.set(digest, f)
    layers.push({
      mediaType: compression === 'gzip' ? MediaType.dockerLayerGzip : compression === 'zstd' ? MediaType.dockerLayerZstd : DOCKER_TAR_LAYER,
      digest,
      size: f.size,
    })
  }
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, digest: cfgDigest, size: cfgBytes.length },
    layers,
  }
  const raw = canonicalJson(manifest)
  const digest = digestOf(raw)
  src.docs.set(digest, raw)
  return new SourceImage(src, raw, digest, MediaType.dockerManifest, manifest)
}

async function hashEntry(tar: TarFile, f: TarEntryAt): Promise<Digest> {
  const h = new DigestingStream('sha256')
  // Hashed on the way to nowhere.
  await pipeline(tar.stream(f), h, new Writable({ write: (_c, _e, cb) => cb() }))
  return h.digest
}

/** The images of an archive, each with its tags and place in `manifest.json`. */
async function openArchive(file: string): Promise<{ src: SaveSource; entries: SaveEntry[]; images: () => Promise<Image[]> }> {
  const tar = await TarFile.open(file, `docker-archive:${file}`)
  const entries = await readSaveManifest(tar)
  const src = new SaveSource(tar, tar.entry('index.json') !== undefined && tar.entry('oci-layout') !== undefined)
  let own: Promise<Map<string, { raw: Uint8Array; d: Descriptor }>> | undefined
  return {
    src,
    entries,
    images: async () => {
      own ??= layoutManifests(src)
      const o = await own
      const out: Image[] = []
      for (const [i, e] of entries.entries()) out.push(await imageOf(src, e, i, o))
      return out
    },
  }
}

/** Which entry a ref names: `@N` (from 0), a `REPO:TAG` of its RepoTags, or, with none, the only one (undefined: all of them). */
function pick(entries: SaveEntry[], ref: string | undefined, where: string): number | undefined {
  const tags = () => entries.flatMap((e) => e.RepoTags ?? []).join(', ') || 'none'
  if (ref === undefined) return entries.length === 1 ? 0 : undefined
  const at = /^@(\d+)$/.exec(ref)
  if (at) {
    const n = Number(at[1])
    if (n >= entries.length) throw new NotFoundError('MANIFEST_UNKNOWN', `${where}: no image @${n}; it holds ${entries.length} (@0 to @${entries.length - 1})`)
    return n
  }
  const want = normalTag(ref)
  const i = entries.findIndex((e) => (e.RepoTags ?? []).some((t) => normalTag(t) === want))
  if (i < 0) throw new NotFoundError('MANIFEST_UNKNOWN', `${where}: no image tagged '${ref}' (tags: ${tags()})`)
  return i
}

/** All the images of the archive as one index (for `inspect` and copies of the whole file), each annotated with its first tag. */
async function indexOf(src: SaveSource, images: Image[], entries: SaveEntry[]): Promise<SourceIndex> {
  const manifests: Descriptor[] = []
  for (const [i, img] of images.entries()) {
    const c = await img.config()
    const raw = await img.rawManifest()
    const tag = entries[i]?.RepoTags?.[0]
    manifests.push({
      mediaType: await img.mediaType(),
      digest: await img.digest(),
      size: raw.length,
      platform: { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) },
      ...(tag ? { annotations: { [REF_NAME]: tag } } : {}),
    })
    src.docs.set(await img.digest(), raw)
  }
  const index: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }
  const raw = canonicalJson(index)
  return new SourceIndex(src, raw, digestOf(raw), MediaType.ociIndex, index)
}

/** What a written image's layer became in the archive. */
interface WrittenLayer {
  name: string
  diffId: Digest
  size: number
}

/**
 * Writes one image into a docker-save archive under a tag (or none). The new tar is made beside
 * the file on the first blob; the images the file already held are carried over (a tag that
 * moves to the new image leaves the old one).
 */
class DockerArchiveSink implements ImageSink {
  readonly name: string
  readonly copiesForeignLayers = true
  readonly concurrency = 1
  readonly #file: string
  readonly #tag: string | undefined
  readonly #layers = new Map<string, WrittenLayer>()
  #started: Promise<{ writer: TarWriter; entries: SaveEntry[]; held: Map<string, number> }> | undefined
  constructor(file: string, tag: string | undefined, name: string) {
    this.#file = file
    this.#tag = tag
    this.name = name
  }

  async prepare(x: ImageOrIndex): Promise<void> {
    if (x.kind === 'index') {
      const platforms = (await x.manifest()).manifests.map((d) => (d.platform ? formatPlatform(d.platform) : d.digest)).join(', ')
      throw new NotSupportedError(`${this.name}: a docker-save archive holds images, not an index; pick one with --platform (the index has: ${platforms})`)
    }
    const m = await x.manifest()
    if (!isImageConfigType(m.config.mediaType)) {
      throw new NotSupportedError(
        `${this.name}: ${await x.digest()} is an artifact (${m.artifactType ?? m.config.mediaType}); docker-save archives hold container images`,
      )
    }
  }

  #start() {
    this.#started ??= (async () => {
      // What the old images use is carried over: their configs and layers.
      const { writer, old, held } = await rewriteArchive(this.#file, this.name, readSaveManifest, (e, entries) =>
        entries.some((x) => x.Config === e.name || x.Layers.includes(e.name)),
      )
      return { writer, entries: old ?? [], held }
    })()
    return this.#started
  }

  async putBlob(d: Descriptor, open: () => Promise<Readable>, o: PutBlobOptions): Promise<PutOutcome> {
    const { writer, held } = await this.#start()
    const taps = [...(o.taps ?? [])]
    const compression = layerCompression(d.mediaType)
    if (compression === undefined || compression === 'none') {
      // A config, or a layer that is already a plain tar: in as it is, under its digest.
      const name = blobEntryName(d.digest)
      if (compression === 'none') this.#layers.set(d.digest, { name, diffId: d.digest, size: d.size })
      if (held.has(name)) return 'existed'
      held.set(name, d.size)
      await writer.add(name, d.size, async () => chain(await open(), ...taps))
      return 'written'
    }
    // Decompressed into a temp file first: the tar header needs the size.
    const staged = await createTempFile(path.join(os.tmpdir(), `ocikit-layer-${randomBytes(6).toString('hex')}.tar`))
    try {
      const hash = new DigestingStream('sha256')
      await pipeline(chain(await open(), ...taps), decompressor(compressionOf(d.mediaType)), hash, staged.stream, { signal: o.signal })
      const name = blobEntryName(hash.digest)
      this.#layers.set(d.digest, { name, diffId: hash.digest, size: hash.size })
      if (held.has(name)) return 'existed'
      held.set(name, hash.size)
      await writer.add(name, hash.size, async () => createReadStream(staged.path))
      return 'written'
    } finally {
      await staged.discard()
    }
  }

  async putManifest(d: Descriptor): Promise<PutOutcome> {
    throw new NotSupportedError(`${this.name}: a docker-save archive holds no index (${d.digest})`)
  }

  async commit(x: ImageOrIndex, _d: Descriptor, _bytes: Uint8Array, _needed: readonly Descriptor[], _o: IoOptions): Promise<CommitResult> {
    if (x.kind !== 'image') throw new NotSupportedError(`${this.name}: a docker-save archive holds images, not an index`)
    const { writer, entries } = await this.#start()
    const m = await x.manifest()
    const config = await x.config()
    const layers: WrittenLayer[] = m.layers.map((l, i) => {
      const w = this.#layers.get(l.digest)
      if (!w) throw new OcikitError('BLOB_UNKNOWN', `${this.name}: layer ${i} (${l.digest}) was not written`)
      const want = config.rootfs.diff_ids[i]
      if (w.diffId !== want) throw new DigestMismatchError(`${this.name}: layer ${i} (${l.digest}) uncompressed`, want ?? '(none)', w.diffId)
      return w
    })
    const cfgName = blobEntryName(m.config.digest)
    const tags = this.#tag === undefined ? [] : [this.#tag]
    const want = new Set(tags.map(normalTag))
    // A tag moves: images that held it keep their other tags.
    const kept = entries.map((e) => ({ ...e, RepoTags: (e.RepoTags ?? []).filter((t) => !want.has(normalTag(t))) }))
    const same = kept.find((e) => e.Config === cfgName && e.Layers.join() === layers.map((l) => l.name).join())
    if (same) same.RepoTags = [...(same.RepoTags ?? []), ...tags]
    else kept.push({ Config: cfgName, RepoTags: tags, Layers: layers.map((l) => l.name) })
    const manifestJson = Buffer.from(JSON.stringify(kept))
    await writer.add('manifest.json', manifestJson.length, manifestJson)
    const repositories: Record<string, Record<string, string>> = {}
    for (const e of kept) {
      const last = e.Layers.at(-1)?.split('/').at(-1) ?? ''
      for (const t of e.RepoTags ?? []) {
        const colon = t.lastIndexOf(':')
        if (colon <= t.lastIndexOf('/')) continue
        const repo = t.slice(0, colon)
        repositories[repo] = { ...repositories[repo], [t.slice(colon + 1)]: last }
      }
    }
    const repos = Buffer.from(JSON.stringify(repositories))
    await writer.add('repositories', repos.length, repos)
    await writer.finish()
    // What reading the image back gives: a Docker v2 manifest of the plain-tar layers.
    const back: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { mediaType: MediaType.dockerConfig, digest: m.config.digest, size: m.config.size },
      layers: layers.map((l) => ({ mediaType: DOCKER_TAR_LAYER, digest: l.diffId, size: l.size })),
    }
    const raw = canonicalJson(back)
    return { descriptor: { mediaType: MediaType.dockerManifest, digest: digestOf(raw), size: raw.length } }
  }

  async abort(): Promise<void> {
    const started = await this.#started?.catch(() => undefined)
    await started?.writer.discard()
  }
}

/** The store for a name `docker-archive:FILE[:REPO:TAG|:@N]`. */
export function dockerArchiveStore(n: ArchiveName): Store {
  const name = formatName(n)
  const where = `docker-archive:${n.path}`
  const no = (what: string) => async (): Promise<never> => {
    throw new NotSupportedError(`${name}: ${what}`)
  }
  const read = async (): Promise<ImageOrIndex> => {
    const a = await openArchive(n.path)
    const i = pick(a.entries, n.ref, where)
    const images = await a.images()
    if (i === undefined) return indexOf(a.src, images, a.entries)
    return images[i] as Image
  }
  return {
    name,
    read,
    sink: async () => {
      if (n.ref !== undefined && /^@\d+$/.test(n.ref)) throw new OcikitError('INVALID_NAME', `${name}: write under a REPO:TAG (or none), not @N`)
      return new DockerArchiveSink(n.path, n.ref, name)
    },
    list: async (): Promise<ListedEntry[]> => {
      const a = await openArchive(n.path)
      const images = await a.images()
      const out: ListedEntry[] = []
      for (const [i, img] of images.entries()) {
        const raw = await img.rawManifest()
        const descriptor = { mediaType: await img.mediaType(), digest: await img.digest(), size: raw.length }
        const tags = a.entries[i]?.RepoTags ?? []
        if (tags.length === 0) out.push({ descriptor })
        for (const tag of tags) out.push({ tag, descriptor })
      }
      return out
    },
    tag: no('an archive is written whole; copy the image under the new tag instead'),
    untag: no('an archive is written whole; copy the images to keep into a new archive'),
    fsck: async (o) => {
      const a = await openArchive(n.path)
      const images = await a.images()
      return fsckViews(
        images.map((img, i) => ({
          via: `manifest.json [${i}]${a.entries[i]?.RepoTags?.[0] ? ` (${a.entries[i]?.RepoTags?.[0]})` : ''}`,
          open: async () => img,
        })),
        o,
      )
    },
    gc: no('an archive holds only what its images reach once it is rewritten'),
  }
}
