/**
 * The layer cache: finished layers (compressed blob, digest, diffID) found again by what they
 * hold. Two keys:
 * - the content key, portable: the layer's uncompressed tar (its diffID, which covers relative
 *   paths, types, modes, owners, link targets, contents and entry times) and how it is
 *   compressed. A CI runner that restores the cache at another path hits it.
 * - the metadata key, this machine only: the same entries' lstat data (device, inode, size,
 *   modification and change times in nanoseconds). It short-cuts reading the files to learn the
 *   diffID. It is recorded only when every file's change time is older than the walk by more
 *   than the file system's time step could hide ({@link LayerCache.racyNs}), so that a file
 *   changed within one step after being read can never give a stale hit.
 *
 * Layout under the cache directory: `layers/HEX.json` (content key → the layer), `blobs/sha256/HEX`,
 * `stat/HEX` (metadata key → diffID). Every file is written to a temp file and renamed; a blob
 * read back is verified against its digest while it streams. Bounded: {@link LayerCache.prune}
 * removes the least recently used layers beyond a size.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { decompressor } from '../compress.ts'
import { type Digest, digestHex, isDigest, verifyingStream } from '../digest.ts'
import { type Compression, layerCompression } from '../documents/media-types.ts'
import { OcikitError } from '../errors.ts'
import type { IoOptions, Layer } from '../image/types.ts'
import type { LayerInfo } from '../layer/encode.ts'
import { chain } from '../streams.ts'
import { createTempFile, writeFileVia } from '../temp-file.ts'

/** Default bound of the cache: 5 GiB of blobs. */
export const DEFAULT_CACHE_MAX_BYTES = 5 * 2 ** 30

/** The cache directory: `$OCIKIT_CACHE_DIR`, else `$XDG_CACHE_HOME/ocikit`, else `~/.cache/ocikit`. */
export function defaultCacheDir(): string {
  if (process.env.OCIKIT_CACHE_DIR) return path.resolve(process.env.OCIKIT_CACHE_DIR)
  const base = process.env.XDG_CACHE_HOME ? path.resolve(process.env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache')
  return path.join(base, 'ocikit')
}

/** One cached layer. */
export interface CachedLayerRecord {
  /** The content key (hex). */
  key: string
  mediaType: string
  digest: Digest
  diffId: Digest
  size: number
  uncompressedSize: number
  entries: number
  /** Last use, ms since the epoch (the record file's modification time). */
  lastUsed: number
}

function isRecord(x: unknown): x is Omit<CachedLayerRecord, 'lastUsed' | 'key'> {
  const r = x as Record<string, unknown>
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.mediaType === 'string' &&
    isDigest(r.digest) &&
    isDigest(r.diffId) &&
    Number.isSafeInteger(r.size) &&
    Number.isSafeInteger(r.uncompressedSize)
  )
}

const HEX = /^[0-9a-f]{64}$/

/** The content key of a layer: its diffID and how it is compressed. */
export function contentKey(diffId: Digest, compression: Compression, level: number | undefined): string {
  return createHash('sha256')
    .update(`ocikit-layer-v1\n${diffId}\n${compression}\n${level ?? 'default'}`)
    .digest('hex')
}

/** A layer cache in one directory; it is created on first write. */
export class LayerCache {
  readonly dir: string
  /**
   * How much older than the walk every file's change time must be for a metadata key to be
   * recorded (ns). Default (undefined): 100 ms where the file system keeps sub-second times (any
   * file's time has a fraction of a second: ext4, xfs, btrfs, tmpfs and overlayfs step by a
   * clock tick of at most 10 ms), else 2 s (FAT steps by 2 s, some network file systems by 1 s).
   */
  readonly racyNs: bigint | undefined
  constructor(dir: string = defaultCacheDir(), o: { racyMs?: number } = {}) {
    this.dir = dir
    this.racyNs = o.racyMs === undefined ? undefined : BigInt(Math.round(o.racyMs * 1e6))
  }
  #blob(d: Digest): string {
    return path.join(this.dir, 'blobs', 'sha256', digestHex(d))
  }
  /** True when the cache holds no layer at all (a first build, or a CI runner with nothing restored). */
  async isEmpty(): Promise<boolean> {
    const names = await fs.readdir(path.join(this.dir, 'layers')).catch(() => [] as string[])
    return !names.some((n) => n.endsWith('.json'))
  }
  /** The layer under content `key`, when its record and blob are both there (its use is recorded). */
  async get(key: string): Promise<CachedLayerRecord | undefined> {
    const file = path.join(this.dir, 'layers', `${key}.json`)
    let parsed: unknown
    try {
      parsed = JSON.parse(await fs.readFile(file, 'utf8'))
    } catch {
      return undefined
    }
    if (!isRecord(parsed)) return undefined
    const st = await fs.stat(this.#blob(parsed.digest)).catch(() => undefined)
    if (!st || st.size !== parsed.size) return undefined
    const now = new Date()
    await fs.utimes(file, now, now).catch(() => {})
    return { ...parsed, entries: typeof parsed.entries === 'number' ? parsed.entries : -1, key, lastUsed: now.getTime() }
  }
  /** The diffID recorded for a metadata key, if any. */
  async diffIdFor(statKey: string): Promise<Digest | undefined> {
    const text = await fs.readFile(path.join(this.dir, 'stat', statKey), 'utf8').catch(() => undefined)
    const d = text?.trim()
    return d !== undefined && isDigest(d) ? d : undefined
  }
  /** Records that the entries with metadata key `statKey` have diffID `diffId`. */
  async recordStat(statKey: string, diffId: Digest): Promise<void> {
    await fs.mkdir(path.join(this.dir, 'stat'), { recursive: true })
    await writeFileVia(path.join(this.dir, 'stat', statKey), async (s) => {
      s.end(`${diffId}\n`)
      await new Promise<void>((resolve, reject) => s.once('finish', resolve).once('error', reject))
    })
  }
  /**
   * Encodes a layer into the cache: `encode` writes the blob into the stream it is given and
   * returns what it wrote; the blob is renamed to its digest and the record written under `key`
   * (or the key made from what was written, when it is only known then).
   */
  async put(key: string | ((info: LayerInfo) => string), encode: (sink: Writable) => Promise<LayerInfo>): Promise<CachedLayerRecord> {
    const blobs = path.join(this.dir, 'blobs', 'sha256')
    await fs.mkdir(blobs, { recursive: true })
    await fs.mkdir(path.join(this.dir, 'layers'), { recursive: true })
    const tmpPath = path.join(blobs, `.tmp-${randomBytes(8).toString('hex')}`)
    const tmp = await createTempFile(tmpPath)
    let info: LayerInfo
    try {
      info = await encode(tmp.stream)
      await fs.rename(tmpPath, this.#blob(info.digest))
    } catch (e) {
      await tmp.discard()
      throw e
    }
    const rec = {
      mediaType: info.mediaType,
      digest: info.digest,
      diffId: info.diffId,
      size: info.size,
      uncompressedSize: info.uncompressedSize,
      entries: info.entries,
    }
    const name = typeof key === 'string' ? key : key(info)
    await writeFileVia(path.join(this.dir, 'layers', `${name}.json`), async (s) => {
      s.end(`${JSON.stringify(rec)}\n`)
      await new Promise<void>((resolve, reject) => s.once('finish', resolve).once('error', reject))
    })
    return { ...rec, key: name, lastUsed: Date.now() }
  }
  /** A layer reading the cached blob, verified as it streams. */
  layer(rec: CachedLayerRecord): Layer {
    const file = this.#blob(rec.digest)
    return {
      mediaType: rec.mediaType,
      digest: async () => rec.digest,
      diffId: async () => rec.diffId,
      size: async () => rec.size,
      compressed: async (o?: IoOptions): Promise<Readable> =>
        chain(createReadStream(file, { highWaterMark: 1 << 20, signal: o?.signal }), verifyingStream(rec, `cached layer ${rec.digest}`)),
      uncompressed: async (o?: IoOptions): Promise<Readable> =>
        chain(
          createReadStream(file, { highWaterMark: 1 << 20, signal: o?.signal }),
          verifyingStream(rec, `cached layer ${rec.digest}`),
          decompressor(layerCompression(rec.mediaType) ?? 'gzip'),
          verifyingStream({ digest: rec.diffId }, `cached layer ${rec.digest} (uncompressed)`),
        ),
    }
  }
  /** Every cached layer, most recently used first. */
  async list(): Promise<CachedLayerRecord[]> {
    const names = await fs.readdir(path.join(this.dir, 'layers')).catch(() => [] as string[])
    const out: CachedLayerRecord[] = []
    for (const n of names) {
      const key = n.replace(/\.json$/, '')
      if (!HEX.test(key)) continue
      const file = path.join(this.dir, 'layers', n)
      const [text, st] = await Promise.all([fs.readFile(file, 'utf8').catch(() => undefined), fs.stat(file).catch(() => undefined)])
      let parsed: unknown
      try {
        parsed = text === undefined ? undefined : JSON.parse(text)
      } catch {}
      if (!st || !isRecord(parsed)) continue
      out.push({ ...parsed, entries: typeof parsed.entries === 'number' ? parsed.entries : -1, key, lastUsed: st.mtimeMs })
    }
    return out.sort((a, b) => b.lastUsed - a.lastUsed)
  }
  /**
   * Removes the least recently used layers until the blobs they keep total at most `maxBytes`
   * (0: everything), then the blobs of the layers removed, blobs no record has named for ten
   * minutes (a build writing its record now keeps its blob), metadata records no layer needs,
   * and temp files over an hour old.
   * Returns what was removed.
   */
  async prune(maxBytes: number = DEFAULT_CACHE_MAX_BYTES): Promise<{ layers: number; bytes: number }> {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new OcikitError('INVALID_ARGUMENT', `a cache bound is a whole number of bytes, got ${maxBytes}`)
    const all = await this.list()
    const kept = new Set<string>()
    const removedDigests = new Set<string>()
    let total = 0
    let removed = 0
    for (const r of all) {
      if (!kept.has(r.digest) && total + r.size > maxBytes) {
        await fs.rm(path.join(this.dir, 'layers', `${r.key}.json`), { force: true })
        removedDigests.add(r.digest)
        removed++
        continue
      }
      if (!kept.has(r.digest)) total += r.size
      kept.add(r.digest)
    }
    let bytes = 0
    const blobs = path.join(this.dir, 'blobs', 'sha256')
    const hour = 3600_000
    for (const n of await fs.readdir(blobs).catch(() => [] as string[])) {
      const p = path.join(blobs, n)
      const st = await fs.lstat(p).catch(() => undefined)
      if (!st?.isFile()) continue
      const age = Date.now() - st.mtimeMs
      const stale = n.startsWith('.tmp-') && age > hour
      // A blob no record names yet may belong to a build that is writing its record now: spared for ten minutes, unless all goes.
      const orphan = HEX.test(n) && !kept.has(`sha256:${n}`) && (maxBytes === 0 || age > 10 * 60_000 || removedDigests.has(`sha256:${n}`))
      if (orphan || stale) {
        await fs.rm(p, { force: true })
        bytes += st.size
      }
    }
    const keptDiffIds = new Set(all.filter((r) => kept.has(r.digest)).map((r) => r.diffId))
    const statDir = path.join(this.dir, 'stat')
    for (const n of await fs.readdir(statDir).catch(() => [] as string[])) {
      const st = await fs.lstat(path.join(statDir, n)).catch(() => undefined)
      if (!st?.isFile()) continue
      const age = Date.now() - st.mtimeMs
      // Another build may be writing a record now (its temp file), or have just written one
      // whose layer record this listing missed: spared, unless everything goes.
      if (!HEX.test(n)) {
        if (age > hour) await fs.rm(path.join(statDir, n), { force: true })
        continue
      }
      if (maxBytes !== 0 && age < 10 * 60_000) continue
      const d = await this.diffIdFor(n)
      if (!d || !keptDiffIds.has(d)) await fs.rm(path.join(statDir, n), { force: true })
    }
    return { layers: removed, bytes }
  }
}
