/**
 * What `ocikit explore` shows, computed: each layer read once as a stream (its entries indexed,
 * each file's content hashed on the way, nothing else kept), then the merged filesystem layer by
 * layer (whiteouts applied), what each layer adds, changes and deletes, the wasted space (bytes a
 * layer ships that a later one overwrites or deletes), an efficiency figure, and the difference
 * between two images' filesystems.
 */
import { createHash } from 'node:crypto'
import type { Digest } from '../digest.ts'
import type { Image, IoOptions } from '../image/types.ts'
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from '../layer/entry.ts'
import { readTar } from '../layer/read.ts'

/** One entry of a layer, as the index keeps it. */
export interface ExploredFile {
  readonly path: string
  readonly type: string
  readonly size: number
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly linkname?: string | undefined
  /** sha256 of a file's content (files only). */
  readonly sha256?: string | undefined
}

/** One layer: its blob, its history entry, and what it did to the filesystem below it. */
export interface ExploredLayer {
  readonly index: number
  readonly digest: Digest
  readonly size: number
  readonly uncompressedSize: number
  readonly createdBy?: string | undefined
  readonly created?: string | undefined
  readonly entries: number
  readonly added: { count: number; bytes: number }
  readonly changed: { count: number; bytes: number }
  readonly deleted: { count: number; bytes: number }
  /** The layer's own entries (whiteouts shown as type 'whiteout' with the path they delete). */
  readonly files: readonly ExploredFile[]
}

/** Bytes a layer ships that a later layer overwrites or deletes. */
export interface WastedFile {
  readonly path: string
  readonly bytes: number
  /** The layer that wrote it. */
  readonly layer: number
  /** The layer that overwrote or deleted it. */
  readonly by: number
  readonly how: 'overwritten' | 'deleted'
}

/** An image, explored. */
export interface Exploration {
  readonly digest: Digest
  readonly mediaType: string
  readonly platform: string
  readonly config: {
    entrypoint?: string[]
    cmd?: string[]
    env?: string[]
    user?: string
    workingDir?: string
    exposedPorts?: string[]
    labels?: Record<string, string>
  }
  readonly layers: readonly ExploredLayer[]
  readonly compressedSize: number
  readonly uncompressedSize: number
  /** Bytes of the files in the final filesystem. */
  readonly finalBytes: number
  /** Bytes of every file every layer ships. */
  readonly shippedBytes: number
  /** finalBytes / shippedBytes (1 when nothing is shipped). */
  readonly efficiency: number
  readonly wasted: readonly WastedFile[]
  readonly wastedBytes: number
  /** The merged filesystem after the last layer, by path. */
  readonly merged: ReadonlyMap<string, ExploredFile & { layer: number }>
}

/** Reads one layer's entries once, hashing each file's content as it streams by. */
async function indexLayer(stream: NodeJS.ReadableStream, what: string, o: IoOptions): Promise<ExploredFile[]> {
  const out: ExploredFile[] = []
  const reader = readTar(stream as import('node:stream').Readable, what, o)
  for await (const entry of reader.entries) {
    const h = entry.header
    const path = h.name.replace(/^\.\//, '').replace(/\/$/, '')
    const base = path.slice(path.lastIndexOf('/') + 1)
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : ''
    if (base === OPAQUE_WHITEOUT || base.startsWith(WHITEOUT_PREFIX)) {
      entry.resume()
      const target = base === OPAQUE_WHITEOUT ? `${dir}/${OPAQUE_WHITEOUT}` : (dir ? `${dir}/` : '') + base.slice(WHITEOUT_PREFIX.length)
      out.push({ path: target, type: base === OPAQUE_WHITEOUT ? 'opaque' : 'whiteout', size: 0, mode: 0, uid: 0, gid: 0 })
      continue
    }
    let sha256: string | undefined
    if ((h.type ?? 'file') === 'file') {
      const hash = createHash('sha256')
      for await (const c of entry) hash.update(c as Buffer)
      sha256 = hash.digest('hex')
    } else entry.resume()
    out.push({
      path,
      type: h.type === 'link' ? 'hardlink' : (h.type ?? 'file'),
      size: h.size ?? 0,
      mode: h.mode ?? 0,
      uid: h.uid ?? 0,
      gid: h.gid ?? 0,
      ...(h.linkname ? { linkname: h.linkname } : {}),
      ...(sha256 ? { sha256 } : {}),
    })
  }
  return out
}

/**
 * The paths of `merged` a whiteout or opaque entry removes: a whiteout's target and, when that
 * is (or may be) a directory, what lies under it; everything under an opaque directory (the
 * root's too). A whiteout of a file looks at nothing else, so a layer of many deletions costs
 * no walk of the whole filesystem each.
 */
export function removedBy(merged: ReadonlyMap<string, { type: string }>, f: ExploredFile): string[] {
  const dir = f.type === 'opaque' ? f.path.slice(0, -(OPAQUE_WHITEOUT.length + 1)) : f.path
  const out = f.type === 'whiteout' && merged.has(dir) ? [dir] : []
  const type = merged.get(dir)?.type
  if (f.type === 'opaque' || type === undefined || type === 'directory') {
    const prefix = dir ? `${dir}/` : ''
    for (const p of merged.keys()) if (p !== dir && p.startsWith(prefix)) out.push(p)
  }
  return out
}

/** Options of {@link exploreImage}. */
export interface ExploreOptions extends IoOptions {
  /**
   * A directory where each layer's index is kept, by the layer's digest (written through a temp
   * file and renamed), so that a second exploration of the same layers reads none of them.
   */
  cacheDir?: string | undefined
}

/** The layer's index from the cache, when there is a sound one. */
async function cachedIndex(dir: string, digest: Digest): Promise<ExploredFile[] | undefined> {
  const fs = process.getBuiltinModule('node:fs/promises')
  const text = await fs.readFile(`${dir}/${digest.replace(':', '-')}.json`, 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  try {
    const v = JSON.parse(text) as unknown
    if (!Array.isArray(v) || !v.every((f) => typeof f?.path === 'string' && typeof f?.type === 'string' && Number.isSafeInteger(f?.size))) return undefined
    return v as ExploredFile[]
  } catch {
    return undefined
  }
}

async function saveIndex(dir: string, digest: Digest, files: readonly ExploredFile[]): Promise<void> {
  const fs = process.getBuiltinModule('node:fs/promises')
  await fs.mkdir(dir, { recursive: true })
  const file = `${dir}/${digest.replace(':', '-')}.json`
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`
  await fs.writeFile(tmp, JSON.stringify(files))
  await fs.rename(tmp, file)
}

/** Explores an image: every layer read once (uncompressed), or not at all when its index is cached; the rest computed from the index. */
export async function exploreImage(img: Image, o: ExploreOptions = {}): Promise<Exploration> {
  const [manifest, config, layers] = await Promise.all([img.manifest(), img.config(), img.layers()])
  const history = (config.history ?? []).filter((h) => !h.empty_layer)
  const merged = new Map<string, ExploredFile & { layer: number }>()
  const wasted: WastedFile[] = []
  const explored: ExploredLayer[] = []
  let shippedBytes = 0
  let uncompressedSize = 0
  for (const [i, layer] of layers.entries()) {
    const d = manifest.layers[i] as { digest: Digest; size: number }
    let files = o.cacheDir ? await cachedIndex(o.cacheDir, d.digest) : undefined
    if (!files) {
      files = await indexLayer(await layer.uncompressed(o), `layer ${i} (${d.digest})`, o)
      if (o.cacheDir) await saveIndex(o.cacheDir, d.digest, files).catch(() => {})
    }
    const added = { count: 0, bytes: 0 }
    const changed = { count: 0, bytes: 0 }
    const deleted = { count: 0, bytes: 0 }
    const remove = (p: string, how: 'deleted' | 'overwritten', by: number) => {
      const old = merged.get(p)
      if (!old) return
      merged.delete(p)
      if (how === 'deleted') {
        deleted.count++
        deleted.bytes += old.size
      }
      if (old.type === 'file' && old.size > 0) wasted.push({ path: p, bytes: old.size, layer: old.layer, by, how })
    }
    let bytes = 0
    for (const f of files) {
      if (f.type === 'whiteout' || f.type === 'opaque') {
        for (const p of removedBy(merged, f)) remove(p, 'deleted', i)
        continue
      }
      bytes += f.size
      if (f.type === 'file') shippedBytes += f.size
      const old = merged.get(f.path)
      if (old && old.type !== 'directory') {
        changed.count++
        changed.bytes += f.size
        if (old.type === 'file' && old.size > 0) wasted.push({ path: f.path, bytes: old.size, layer: old.layer, by: i, how: 'overwritten' })
      } else if (!old) {
        added.count++
        added.bytes += f.size
      }
      merged.set(f.path, { ...f, layer: i })
    }
    uncompressedSize += bytes
    explored.push({
      index: i,
      digest: d.digest,
      size: d.size,
      uncompressedSize: bytes,
      createdBy: history[i]?.created_by,
      created: history[i]?.created,
      entries: files.length,
      added,
      changed,
      deleted,
      files,
    })
  }
  let finalBytes = 0
  for (const f of merged.values()) if (f.type === 'file') finalBytes += f.size
  const c = config.config ?? {}
  return {
    digest: await img.digest(),
    mediaType: await img.mediaType(),
    platform: [config.os, config.architecture, config.variant].filter(Boolean).join('/'),
    config: {
      ...(c.Entrypoint ? { entrypoint: c.Entrypoint } : {}),
      ...(c.Cmd ? { cmd: c.Cmd } : {}),
      ...(c.Env ? { env: c.Env } : {}),
      ...(c.User ? { user: c.User } : {}),
      ...(c.WorkingDir ? { workingDir: c.WorkingDir } : {}),
      ...(c.ExposedPorts ? { exposedPorts: Object.keys(c.ExposedPorts) } : {}),
      ...(c.Labels ? { labels: c.Labels } : {}),
    },
    layers: explored,
    compressedSize: manifest.layers.reduce((n, l) => n + l.size, 0),
    uncompressedSize,
    finalBytes,
    shippedBytes,
    efficiency: shippedBytes === 0 ? 1 : finalBytes / shippedBytes,
    wasted: wasted.sort((a, b) => b.bytes - a.bytes || (a.path < b.path ? -1 : 1)),
    wastedBytes: wasted.reduce((n, w) => n + w.bytes, 0),
    merged,
  }
}

/** One path that differs between two images' final filesystems. */
export interface FileChange {
  readonly path: string
  readonly change: 'added' | 'removed' | 'changed'
  readonly before?: number | undefined
  readonly after?: number | undefined
}

/** What differs between two explored images' final filesystems, sorted by path. */
export function diffExplorations(a: Exploration, b: Exploration): FileChange[] {
  const out: FileChange[] = []
  for (const [p, f] of b.merged) {
    const old = a.merged.get(p)
    if (!old) out.push({ path: p, change: 'added', after: f.size })
    else if (
      old.type !== f.type ||
      old.size !== f.size ||
      old.sha256 !== f.sha256 ||
      old.mode !== f.mode ||
      old.linkname !== f.linkname ||
      old.uid !== f.uid ||
      old.gid !== f.gid
    ) {
      out.push({ path: p, change: 'changed', before: old.size, after: f.size })
    }
  }
  for (const [p, f] of a.merged) if (!b.merged.has(p)) out.push({ path: p, change: 'removed', before: f.size })
  return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0))
}
