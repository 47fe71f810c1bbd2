/**
 * A layer a build makes, found in the layer cache when its inputs are unchanged. On first need:
 * the metadata key (lstat data) may give the diffID straight away; else one pass tars and hashes
 * the entries (no compression) to learn it; the content key then finds the finished layer, or
 * the layer is encoded once into the cache. See cache.ts for why no stale hit is possible.
 */
import { createHash } from 'node:crypto'
import { statSync } from 'node:fs'
import { PassThrough, type Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { compressionBlockSize } from '../compress.ts'
import { type Digest, DigestingStream } from '../digest.ts'
import { type Compression, ociLayerType } from '../documents/media-types.ts'
import { resolveTimestamp } from '../documents/time.ts'
import { OcikitError } from '../errors.ts'
import type { IoOptions, Layer } from '../image/types.ts'
import { type EncodeOptions, EntriesLayer, encodeLayer, type LayerInfo } from '../layer/encode.ts'
import type { LayerEntry } from '../layer/entry.ts'
import { tarEntries } from '../layer/tar-write.ts'
import { type CachedLayerRecord, contentKey, type LayerCache } from './cache.ts'

/** How a build layer was had: from the cache (by metadata or by content) or encoded now. */
export type LayerOrigin = 'cache' | 'built'
/** How a cache hit was found: by the files' metadata (nothing read) or by their content (read and hashed). */
export type CacheHit = 'metadata' | 'content'

/** Options of {@link BuildLayer}. */
export interface BuildLayerOptions extends EncodeOptions {
  /** The cache; without one the layer is encoded into a staging file, as any made layer. */
  cache?: LayerCache | undefined
  /** What the layer is, for reports (`dependencies`, `application`, `--add ./conf`…). */
  label: string
  /**
   * Called when the layer is encoded now (not found in the cache) with a copy of its blob's
   * bytes as they are made, for a destination to take while the compression runs. The callee
   * must read the stream or destroy it; its failure does not fail the build.
   */
  onEncoding?: ((bytes: Readable) => void) | undefined
}

/** Racy windows in ms (see {@link LayerCache.racyNs}): file systems with sub-second times, and without. */
const RACY_FINE_MS = 100
const RACY_COARSE_MS = 2000

/** The metadata key of `entries`, or undefined when a file entry has no file on disk or one changed too recently to trust. */
function statKeyOf(entries: readonly LayerEntry[], o: { timestamp: number; walkStartMs: number; racyNs: bigint | undefined }): string | undefined {
  const h = createHash('sha256').update(`ocikit-stat-v2\n${o.timestamp}\n`)
  let newest = 0
  let fine = false
  for (const e of entries) {
    h.update(
      `${e.path}\0${e.type}\0${e.mode}\0${e.uid}\0${e.gid}\0${e.size}\0${e.linkname ?? ''}\0${e.devmajor ?? ''}\0${e.devminor ?? ''}\0${e.mtime ?? ''}\0`,
    )
    for (const [k, v] of Object.entries(e.xattrs ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) h.update(`${k}\0`).update(v).update('\0')
    if (e.type !== 'file') continue
    if (!e.file) return undefined
    // The walk's own lstat when there is one (no second stat of every file); else one now.
    const s = e.fileStat ?? statSync(e.file)
    const latest = Math.max(s.ctimeMs, s.mtimeMs)
    if (latest > newest) newest = latest
    if (s.ctimeMs % 1000 !== 0 || s.mtimeMs % 1000 !== 0) fine = true
    h.update(`${s.dev}:${s.ino}:${e.size}:${s.mtimeMs}:${s.ctimeMs}\n`)
  }
  const racy = o.racyNs === undefined ? (fine ? RACY_FINE_MS : RACY_COARSE_MS) : Number(o.racyNs) / 1e6
  // A file changed within the clock's step after it was read would keep the times it was read with.
  if (newest > o.walkStartMs - racy) return undefined
  return h.digest('hex')
}

async function collect(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>): Promise<LayerEntry[]> {
  const out: LayerEntry[] = []
  for await (const e of entries) out.push(e)
  return out
}

/** The diffID of `entries` at `timestamp`: tarred and hashed, not compressed. */
async function diffIdOf(entries: readonly LayerEntry[], timestamp: number, compression: Compression, signal?: AbortSignal): Promise<Digest> {
  const tar = tarEntries(entries, timestamp, { slabSize: compressionBlockSize(compression) })
  const hash = new DigestingStream()
  const sink = new Writable({ write: (_c, _e, cb) => cb() })
  await pipeline(tar.stream, hash, sink, { signal })
  return hash.digest
}

/**
 * A layer from entries (`source` is called once, on first need), had from the cache when one
 * is given. `origin()` says, after first need, whether it was reused or built.
 */
export class BuildLayer implements Layer {
  readonly mediaType: string
  readonly label: string
  readonly #source: () => AsyncIterable<LayerEntry> | Iterable<LayerEntry>
  readonly #o: BuildLayerOptions
  readonly #cache: LayerCache | undefined
  #ready: Promise<{ layer: Layer; info: Omit<LayerInfo, 'empty'>; origin: LayerOrigin; hit?: CacheHit }> | undefined
  readonly #staged: EntriesLayer | undefined
  constructor(source: () => AsyncIterable<LayerEntry> | Iterable<LayerEntry>, o: BuildLayerOptions) {
    this.#source = source
    this.#o = { ...o, timestamp: resolveTimestamp(o.timestamp) }
    this.#cache = o.cache
    this.label = o.label
    const staged = o.cache ? undefined : new EntriesLayer((sink, eo) => encodeLayer(source(), sink, { ...eo, copyTo: this.#copy() }), this.#o)
    this.#staged = staged
    this.mediaType = ociLayerType(o.compression ?? 'gzip')
  }
  /** A copy of the blob's bytes for {@link BuildLayerOptions.onEncoding}, when it is set. */
  #copy(): PassThrough | undefined {
    if (!this.#o.onEncoding) return undefined
    const copy = new PassThrough()
    this.#o.onEncoding(copy)
    return copy
  }
  #prepare() {
    this.#ready ??= (async () => {
      if (this.#staged) {
        const info = await this.#staged.info()
        return { layer: this.#staged, info, origin: 'built' as const }
      }
      const cache = this.#cache as LayerCache
      const compression = this.#o.compression ?? 'gzip'
      const timestamp = this.#o.timestamp as number
      const walkStartMs = Date.now() // before the walk: see statKeyOf
      const entries = await collect(this.#source())
      const statKey = statKeyOf(entries, { timestamp, walkStartMs, racyNs: cache.racyNs })
      let diffId = statKey ? await cache.diffIdFor(statKey) : undefined
      let rec: CachedLayerRecord | undefined
      let hit: CacheHit | undefined
      if (diffId) rec = await cache.get(contentKey(diffId, compression, this.#o.level))
      if (rec) hit = 'metadata'
      else if (await cache.isEmpty()) {
        // Nothing to find by content (a first build, a CI runner with no cache restored): the
        // pass that learns the diffID first would only double the reading; encode straight away.
      } else {
        diffId = await diffIdOf(entries, timestamp, compression, this.#o.signal)
        rec = await cache.get(contentKey(diffId, compression, this.#o.level))
        if (rec) hit = 'content'
      }
      let origin: LayerOrigin = 'cache'
      if (!rec) {
        origin = 'built'
        const level = this.#o.level
        const key = diffId ? contentKey(diffId, compression, level) : (info: LayerInfo) => contentKey(info.diffId, compression, level)
        rec = await cache.put(key, (sink) => encodeLayer(entries, sink, { ...this.#o, copyTo: this.#copy() }))
        if (diffId && rec.diffId !== diffId) throw new OcikitError('INVALID_ARGUMENT', `layer ${this.label}: its files changed while it was built; build again`)
      }
      if (statKey) await cache.recordStat(statKey, rec.diffId)
      return { layer: cache.layer(rec), info: { ...rec }, origin, ...(hit ? { hit } : {}) }
    })()
    this.#ready.catch(() => {
      this.#ready = undefined
    })
    return this.#ready
  }
  /** What the layer holds and how it was had (reused from the cache or built). */
  async report(): Promise<{ label: string; digest: Digest; diffId: Digest; size: number; uncompressedSize: number; origin: LayerOrigin; hit?: CacheHit }> {
    const { info, origin, hit } = await this.#prepare()
    return {
      label: this.label,
      digest: info.digest,
      diffId: info.diffId,
      size: info.size,
      uncompressedSize: info.uncompressedSize,
      origin,
      ...(hit ? { hit } : {}),
    }
  }
  async digest() {
    return (await this.#prepare()).info.digest
  }
  async diffId() {
    return (await this.#prepare()).info.diffId
  }
  async size() {
    return (await this.#prepare()).info.size
  }
  async compressed(o?: IoOptions) {
    return (await this.#prepare()).layer.compressed(o)
  }
  async uncompressed(o?: IoOptions) {
    return (await this.#prepare()).layer.uncompressed(o)
  }
  /** Removes a staging file (layers built without a cache). */
  async dispose(): Promise<void> {
    await this.#staged?.dispose()
  }
}
