/**
 * The OCI distribution API for one repository: manifests, blobs (verified, resumable
 * downloads; uploads with existence checks, cross-repository mounts, single PUT or chunked
 * PATCH), tags, catalog and delete.
 */
import { Readable } from 'node:stream'
import { type Digest, DigestingStream, digestOf, isDigest, verifyingStream } from '../../digest.ts'
import { isIndexType, isManifestType, MediaType } from '../../documents/media-types.ts'
import type { Descriptor, Index } from '../../documents/schemas.ts'
import { detectManifestType, MAX_DOCUMENT_SIZE, parseIndex, parseJsonBytes } from '../../documents/validate.ts'
import { OcikitError, RegistryError } from '../../errors.ts'
import { bodyError, type HttpBody, type HttpResponse, readBody, serverUrl } from '../../http/http.ts'
import type { IoOptions } from '../../image/types.ts'
import { chain } from '../../streams.ts'
import { type RegistryOptions, RegistryTransport } from './transport.ts'

/** The largest upload chunk held in memory (256 MiB), whatever the registry's `OCI-Chunk-Min-Length`. */
const MAX_CHUNK = 256 << 20

/** The most pages of tags or catalog followed (10,000: at a page of 100, a million names). */
const MAX_PAGES = 10_000

/** The most names a tag list or catalog may hold, over all its pages (more is TOO_LARGE). */
export const MAX_LISTED_NAMES = 1_000_000

/** What manifests ocikit asks registries for. */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest].join(', ')

/** A fetched manifest: bytes as served, verified against the digest. */
export interface FetchedManifest {
  bytes: Uint8Array
  mediaType: string
  digest: Digest
}

/** The body without its first `n` bytes. */
function skipping(body: HttpBody, n: number): HttpBody {
  return {
    cancel: () => body.cancel(),
    async *[Symbol.asyncIterator]() {
      let skip = n
      for await (const c of body) {
        if (skip >= c.length) {
          skip -= c.length
          continue
        }
        yield skip ? c.subarray(skip) : c
        skip = 0
      }
    },
  }
}

/** A client for one repository of a registry. */
/** A 404 that says the registry no longer knows the upload session (restarted, or expired it): worth a fresh session. */
function uploadForgotten(e: RegistryError): boolean {
  return e.status === 404 && e.errors.some((d) => d.code === 'BLOB_UPLOAD_UNKNOWN')
}

export class RegistryClient {
  readonly t: RegistryTransport
  readonly repository: string
  /** `host/repo`, for messages. */
  readonly name: string
  constructor(registry: string, repository: string, o: RegistryOptions = {}) {
    this.t = new RegistryTransport(registry, o)
    this.repository = repository
    this.name = `${registry}/${repository}`
  }

  #pull = () => `repository:${this.repository}:pull`
  #push = () => `repository:${this.repository}:pull,push`

  /** Fetches a manifest by tag or digest, checking its digest against the request and Docker-Content-Digest. */
  async manifest(ref: string, o: IoOptions = {}): Promise<FetchedManifest> {
    const what = `${this.name}:${ref} manifest`
    const { res, bytes } = await this.t.requestBytes(
      { method: 'GET', path: `${this.repository}/manifests/${ref}`, headers: { accept: MANIFEST_ACCEPT }, scope: this.#pull(), ok: [200], signal: o.signal },
      MAX_DOCUMENT_SIZE,
      what,
    )
    const algo = isDigest(ref) ? (ref.split(':')[0] as 'sha256' | 'sha512') : 'sha256'
    const digest = digestOf(bytes, algo)
    if (isDigest(ref) && digest !== ref) throw new OcikitError('DIGEST_MISMATCH', `${what}: served bytes hash to ${digest}, not the requested ${ref}`)
    const header = res.headers.get('docker-content-digest')
    if (header && isDigest(header) && header.split(':')[0] === algo && header !== digest) {
      throw new OcikitError('DIGEST_MISMATCH', `${what}: served bytes hash to ${digest}, but Docker-Content-Digest says ${header}`)
    }
    const contentType = res.headers.get('content-type')?.split(';')[0]?.trim()
    const mediaType = detectManifestType(
      parseJsonBytes(bytes, what, 'INVALID_MANIFEST'),
      what,
      contentType && contentType !== 'application/json' ? contentType : undefined,
    )
    return { bytes, mediaType, digest }
  }

  /** The descriptor of a manifest (HEAD), or undefined when absent. */
  async headManifest(ref: string, o: IoOptions = {}): Promise<Descriptor | undefined> {
    const res = await this.t.request({
      method: 'HEAD',
      path: `${this.repository}/manifests/${ref}`,
      headers: { accept: MANIFEST_ACCEPT },
      scope: this.#pull(),
      ok: [200, 404],
      signal: o.signal,
    })
    if (res.status === 404) return undefined
    const digest = res.headers.get('docker-content-digest')
    return {
      mediaType: res.headers.get('content-type')?.split(';')[0]?.trim() ?? MediaType.ociManifest,
      digest: (digest && isDigest(digest) ? digest : '') as Digest,
      size: Number(res.headers.get('content-length') ?? 0),
    }
  }

  /**
   * Uploads a manifest under a tag or its digest. A manifest with a `subject` is also recorded
   * in the referrers tag-schema index (`sha256-HEX`) when the registry does not answer with
   * `OCI-Subject` (it has no referrers API).
   */
  async putManifest(ref: string, bytes: Uint8Array, mediaType: string, o: IoOptions = {}): Promise<void> {
    const res = await this.t.request({
      method: 'PUT',
      path: `${this.repository}/manifests/${ref}`,
      headers: { 'content-type': mediaType },
      body: () => Buffer.from(bytes),
      scope: this.#push(),
      ok: [201, 200],
      signal: o.signal,
    })
    await res.body.cancel()
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as {
      subject?: Descriptor
      artifactType?: string
      config?: Descriptor
      annotations?: Record<string, string>
    }
    if (doc.subject && !res.headers.get('oci-subject')) {
      const entry: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.length }
      const artifactType = doc.artifactType ?? doc.config?.mediaType
      if (artifactType) entry.artifactType = artifactType
      if (doc.annotations) entry.annotations = doc.annotations
      await this.#addFallbackReferrer(doc.subject.digest, entry, o)
    }
  }

  /** The tag under which registries without the referrers API keep a subject's referrers. */
  static referrersTag(subject: Digest): string {
    return subject.replace(':', '-')
  }

  async #fallbackIndex(subject: Digest, o: IoOptions): Promise<Index> {
    try {
      const tag = RegistryClient.referrersTag(subject)
      const m = await this.manifest(tag, o)
      return parseIndex(m.bytes, `${this.name}:${tag} (the referrers of ${subject})`, m.mediaType).index
    } catch (e) {
      if (e instanceof RegistryError && e.code === 'MANIFEST_UNKNOWN') return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }
      throw e
    }
  }

  async #addFallbackReferrer(subject: Digest, entry: Descriptor, o: IoOptions): Promise<void> {
    const index = await this.#fallbackIndex(subject, o)
    if (index.manifests.some((m) => m.digest === entry.digest)) return
    index.manifests.push(entry)
    const bytes = Buffer.from(JSON.stringify(index))
    await this.t
      .request({
        method: 'PUT',
        path: `${this.repository}/manifests/${RegistryClient.referrersTag(subject)}`,
        headers: { 'content-type': MediaType.ociIndex },
        body: () => bytes,
        scope: this.#push(),
        ok: [201, 200],
        signal: o.signal,
      })
      .then((r) => r.body.cancel())
  }

  /**
   * The manifests that name `subject` as their subject: from the referrers API, or, where the
   * registry has none (404), from the tag-schema fallback index. Filtered by `artifactType` if given.
   */
  async referrers(subject: Digest, o: IoOptions & { artifactType?: string | undefined } = {}): Promise<Descriptor[]> {
    const q = o.artifactType ? `?artifactType=${encodeURIComponent(o.artifactType)}` : ''
    const res = await this.t.request({
      method: 'GET',
      path: `${this.repository}/referrers/${subject}${q}`,
      headers: { accept: MediaType.ociIndex },
      scope: this.#pull(),
      ok: [200, 404],
      signal: o.signal,
    })
    let index: Index
    if (res.status === 200) {
      const what = `${this.name} referrers of ${subject}`
      index = parseIndex(await readBody(res, MAX_DOCUMENT_SIZE, what), what, MediaType.ociIndex).index
    } else {
      await res.body.cancel()
      index = await this.#fallbackIndex(subject, o)
    }
    return index.manifests.filter((d) => !o.artifactType || d.artifactType === o.artifactType)
  }

  /** Deletes a manifest by digest. */
  async deleteManifest(digest: Digest, o: IoOptions = {}): Promise<void> {
    const res = await this.t.request({
      method: 'DELETE',
      path: `${this.repository}/manifests/${digest}`,
      scope: `repository:${this.repository}:delete`,
      ok: [202, 200],
      signal: o.signal,
    })
    await res.body.cancel()
  }

  /** True when the repository has the blob. */
  async hasBlob(digest: Digest, o: IoOptions = {}): Promise<boolean> {
    const res = await this.t.request({ method: 'HEAD', path: `${this.repository}/blobs/${digest}`, scope: this.#pull(), ok: [200, 404], signal: o.signal })
    return res.status === 200
  }

  /**
   * A stream of a blob, verified against `d` as it arrives. A connection that breaks mid-body
   * is resumed with a Range request from where it stopped (when the server honours ranges).
   */
  async openBlob(d: Descriptor, o: IoOptions = {}): Promise<Readable> {
    const path = `${this.repository}/blobs/${d.digest}`
    const first = await this.t.request({ method: 'GET', path, scope: this.#pull(), ok: [200], signal: o.signal, streaming: true })
    const t = this.t
    const attempts = t.o.attempts ?? 5
    const pull = this.#pull()
    async function* body(): AsyncGenerator<Uint8Array> {
      let source: HttpBody = first.body
      let got = 0
      for (let attempt = 1; ; attempt++) {
        try {
          for await (const c of source) {
            got += c.length
            yield c
          }
          return
        } catch (e) {
          if (o.signal?.aborted || attempt >= attempts || got >= d.size) throw bodyError(e, `${t.registry}: blob ${d.digest}, after ${attempt} attempt(s)`)
          const headers = { range: `bytes=${got}-` }
          const res = await t.request({ method: 'GET', path, headers, scope: pull, ok: [200, 206], signal: o.signal, streaming: true })
          // A server that ignores the range sends it all again: skip what we already have.
          source = res.status === 200 ? skipping(res.body, got) : res.body
        }
      }
    }
    return chain(Readable.from(body(), { objectMode: false }), verifyingStream(d, `${this.name} blob ${d.digest}`))
  }

  /** A whole small blob (a config), verified; capped at 4 MiB. Manifests go through {@link manifest}. */
  async readBlob(d: Descriptor, o: IoOptions = {}): Promise<Uint8Array> {
    if (isManifestType(d.mediaType) || isIndexType(d.mediaType)) {
      const m = await this.manifest(d.digest, o)
      if (m.bytes.length !== d.size)
        throw new OcikitError('SIZE_MISMATCH', `${this.name} manifest ${d.digest}: ${m.bytes.length} bytes, descriptor says ${d.size}`)
      return m.bytes
    }
    if (d.size > MAX_DOCUMENT_SIZE) throw new OcikitError('TOO_LARGE', `${this.name} blob ${d.digest}: ${d.size} bytes, over the document limit`)
    const chunks: Buffer[] = []
    for await (const c of await this.openBlob(d, o)) chunks.push(c as Buffer)
    return Buffer.concat(chunks)
  }

  /**
   * Uploads a blob unless the repository has it. `before`, when given, must resolve before
   * anything is mounted or sent (it rejects: nothing is). With `mountFrom`, first asks the registry to
   * mount it from that repository. Blobs up to `chunkSize` go in one PUT; larger ones in PATCH
   * chunks (at least the registry's OCI-Chunk-Min-Length), falling back to one PUT if chunks are refused.
   * Returns what happened.
   */
  async uploadBlob(
    d: Descriptor,
    open: () => Promise<Readable>,
    o: IoOptions & { mountFrom?: string | undefined; before?: Promise<unknown> | undefined } = {},
  ): Promise<'existed' | 'mounted' | 'uploaded'> {
    if (await this.hasBlob(d.digest, o)) return 'existed'
    // A check that must pass before the blob is named here (the image's config, read meanwhile).
    await o.before
    const uploads = `${this.repository}/blobs/uploads/`
    if (o.mountFrom && o.mountFrom !== this.repository) {
      const res = await this.t.request({
        method: 'POST',
        path: `${uploads}?mount=${encodeURIComponent(d.digest)}&from=${encodeURIComponent(o.mountFrom)}`,
        scope: this.#push(),
        ok: [201, 202],
        retry: true,
        signal: o.signal,
      })
      await res.body.cancel()
      if (res.status === 201) return 'mounted'
      await this.#cancelUpload(res)
    }
    const chunkSize = this.t.o.chunkSize ?? 64 << 20
    if (d.size > chunkSize) {
      try {
        await this.#chunked(d, open, chunkSize, o)
        return 'uploaded'
      } catch (e) {
        // A registry that refuses chunks, or forgot the session part way: one PUT, in a fresh session.
        if (!(e instanceof RegistryError) || !([400, 405, 416, 501].includes(e.status) || uploadForgotten(e))) throw e
        this.t.o.onNotice?.(`${this.t.registry} refused a chunked upload (status ${e.status}); sending ${d.digest} in one request`)
      }
    }
    await this.#monolithic(d, open, o)
    return 'uploaded'
  }

  /**
   * Uploads a blob whose digest is learned as it streams (a layer being compressed now): one
   * upload session, the bytes in one streamed PATCH, then the PUT that names the digest, which
   * the registry checks against what it received. Nothing is retried (the stream cannot be
   * read twice): on failure the session is cancelled and the error thrown; the caller puts the
   * blob the ordinary way later. Returns the digest and size of what was sent.
   */
  async uploadStream(bytes: Readable, o: IoOptions = {}): Promise<{ digest: Digest; size: number }> {
    const { location } = await this.#start(o)
    const hash = new DigestingStream()
    try {
      const res = await this.t.request({
        method: 'PATCH',
        path: location.toString(),
        headers: { 'content-type': 'application/octet-stream' },
        body: () => chain(bytes, hash),
        scope: this.#push(),
        ok: [202],
        retry: false,
        signal: o.signal,
        streaming: true,
      })
      await res.body.cancel()
      const next = this.#location(res)
      next.searchParams.set('digest', hash.digest)
      const put = await this.t.request({
        method: 'PUT',
        path: next.toString(),
        headers: { 'content-length': '0' },
        scope: this.#push(),
        ok: [201, 204],
        retry: false,
        signal: o.signal,
      })
      await put.body.cancel()
      return { digest: hash.digest, size: hash.size }
    } catch (e) {
      bytes.destroy()
      await this.#abandon(location)
      throw e
    }
  }

  async #start(o: IoOptions): Promise<{ location: URL; minChunk: number }> {
    const res = await this.t.request({
      method: 'POST',
      path: `${this.repository}/blobs/uploads/`,
      scope: this.#push(),
      ok: [202],
      retry: true,
      signal: o.signal,
    })
    await res.body.cancel()
    return { location: this.#location(res), minChunk: Number(res.headers.get('oci-chunk-min-length') ?? 0) || 0 }
  }

  #location(res: HttpResponse): URL {
    const loc = res.headers.get('location')
    if (!loc) throw new RegistryError('REGISTRY_ERROR', `${this.t.registry}: upload answer without a Location header`, res.status)
    return serverUrl(loc, res.url || this.t.base, `${this.t.registry}: the upload location`)
  }

  async #cancelUpload(res: HttpResponse): Promise<void> {
    let location: URL
    try {
      location = this.#location(res)
    } catch {
      return // only tidying up: the registry drops abandoned uploads itself
    }
    await this.#abandon(location)
  }

  /** Cancels an upload session (best effort). */
  async #abandon(location: URL): Promise<void> {
    await this.t
      .request({ method: 'DELETE', path: location.toString(), scope: this.#push(), ok: [204, 202, 200, 404], retry: false })
      .then((r) => r.body.cancel())
      .catch(() => {})
  }

  async #monolithic(d: Descriptor, open: () => Promise<Readable>, o: IoOptions): Promise<void> {
    // A failed PUT starts over with a fresh upload session and a fresh stream.
    const attempts = this.t.o.attempts ?? 5
    for (let attempt = 1; ; attempt++) {
      const { location } = await this.#start(o)
      location.searchParams.set('digest', d.digest)
      try {
        const res = await this.t.request({
          method: 'PUT',
          path: location.toString(),
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(d.size) },
          body: open,
          scope: this.#push(),
          ok: [201, 204],
          retry: false,
          signal: o.signal,
          streaming: true,
        })
        await res.body.cancel()
        return
      } catch (e) {
        const transient = e instanceof RegistryError && (e.code === 'NETWORK_ERROR' || e.status >= 500 || e.status === 429 || uploadForgotten(e))
        if (!transient || attempt >= attempts || o.signal?.aborted) throw e
      }
    }
  }

  async #chunked(d: Descriptor, open: () => Promise<Readable>, chunkSize: number, o: IoOptions): Promise<void> {
    let { location, minChunk } = await this.#start(o)
    if (minChunk > MAX_CHUNK) {
      // Chunks are held in memory while they go: a registry that wants them larger than this
      // gets the blob in one streamed PUT instead.
      this.t.o.onNotice?.(`${this.t.registry} wants upload chunks of at least ${minChunk} bytes; sending ${d.digest} in one request`)
      await this.#abandon(location)
      return this.#monolithic(d, open, o)
    }
    const size = Math.max(chunkSize, minChunk)
    let offset = 0
    let pending: Buffer[] = []
    let pendingLength = 0
    const send = async (chunk: Buffer) => {
      const res = await this.t.request({
        method: 'PATCH',
        path: location.toString(),
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(chunk.length),
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
        body: () => chunk,
        scope: this.#push(),
        ok: [202],
        retry: true,
        signal: o.signal,
        streaming: true,
      })
      await res.body.cancel()
      location = this.#location(res)
      offset += chunk.length
    }
    for await (const c of await open()) {
      pending.push(c as Buffer)
      pendingLength += (c as Buffer).length
      while (pendingLength >= size) {
        const all = Buffer.concat(pending, pendingLength)
        await send(all.subarray(0, size))
        pending = [all.subarray(size)]
        pendingLength = all.length - size
      }
    }
    if (pendingLength > 0) await send(Buffer.concat(pending, pendingLength))
    location.searchParams.set('digest', d.digest)
    const res = await this.t.request({
      method: 'PUT',
      path: location.toString(),
      headers: { 'content-length': '0' },
      scope: this.#push(),
      ok: [201, 204],
      retry: true,
      signal: o.signal,
    })
    await res.body.cancel()
  }

  /** Every tag of the repository, following `Link` pagination. */
  async tags(o: IoOptions = {}): Promise<string[]> {
    return this.#paged(`${this.repository}/tags/list?n=1000`, 'tags', this.#pull(), o)
  }

  /** Every repository of the registry (the catalog), following `Link` pagination. */
  async catalog(o: IoOptions = {}): Promise<string[]> {
    return this.#paged('_catalog?n=1000', 'repositories', 'registry:catalog:*', o)
  }

  async #paged(first: string, field: 'tags' | 'repositories', scope: string, o: IoOptions): Promise<string[]> {
    const out: string[] = []
    const seen = new Set<string>()
    const what = `${this.t.registry}: the ${field === 'tags' ? `tags of ${this.repository}` : 'catalog'}`
    let path: string | undefined = first
    while (path) {
      // A registry whose `next` link leads back to a page already read would loop forever.
      if (seen.has(path)) throw new RegistryError('REGISTRY_ERROR', `${what}: the pagination links go round in a circle`, 0)
      // ...and one whose links never end, each to a new page, would never stop either.
      if (seen.size >= MAX_PAGES) throw new RegistryError('REGISTRY_ERROR', `${what}: more than ${MAX_PAGES} pages`, 0)
      seen.add(path)
      const { res, bytes } = await this.t.requestBytes({ method: 'GET', path, scope, ok: [200], signal: o.signal }, 16 << 20, what)
      let body: unknown
      try {
        body = JSON.parse(bytes.toString('utf8'))
      } catch {
        // reported below
      }
      if (typeof body !== 'object' || body === null) throw new RegistryError('REGISTRY_ERROR', `${what}: the answer is not a JSON object`, res.status)
      const items = (body as Record<string, unknown>)[field]
      if (Array.isArray(items)) {
        // One by one: spreading a page of millions into push() overflows the call stack.
        for (const x of items) if (typeof x === 'string') out.push(x)
        if (out.length > MAX_LISTED_NAMES) throw new RegistryError('TOO_LARGE', `${what}: more than ${MAX_LISTED_NAMES} names`, res.status)
      }
      const link = res.headers.get('link')
      const next = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1] : undefined
      path = next ? serverUrl(next, res.url || this.t.base, `${what}: the next page link`).toString() : undefined
    }
    return out
  }
}
