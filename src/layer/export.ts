/**
 * Exporting an image's merged filesystem as one tar stream, without unpacking it: layers are
 * read top to bottom, and an entry is written only if no upper layer already wrote that path,
 * deleted it (whiteout), hid its directory (opaque whiteout) or put a non-directory above it.
 * Hardlinks are resolved as unpacking the layers in order would resolve them (see exportImage).
 * The tar is written by the layer tar writer, so PAX records (extended attributes included)
 * keep their exact bytes; each entry keeps its own time, owner ids and mode, without user and
 * group names.
 */
import type { Readable } from 'node:stream'
import type tarStream from 'tar-stream'
import type { Image, IoOptions, Layer } from '../image/types.ts'
import { cleanEntryPath, type EntryType, type LayerEntry, OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './entry.ts'
import { entryOwner, readTar, type TarReader } from './read.ts'
import { tarEntries } from './tar-write.ts'

function ancestors(rel: string): string[] {
  const parts = rel.split('/')
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'))
}

const TYPES: Partial<Record<tarStream.Header['type'], EntryType>> = {
  file: 'file',
  'contiguous-file': 'file',
  link: 'hardlink',
  symlink: 'symlink',
  directory: 'directory',
  'character-device': 'char-device',
  'block-device': 'block-device',
  fifo: 'fifo',
}

/** A tar entry as a layer entry at `name`; undefined for kinds a layer cannot hold. */
function toEntry(h: tarStream.Header, name: string, xattrs: [string, Buffer][], content?: Readable): LayerEntry | undefined {
  const type = TYPES[h.type]
  if (!type) return undefined
  return {
    path: name,
    type,
    mode: (h.mode ?? 0) & 0o7777,
    ...entryOwner(h),
    size: type === 'file' ? h.size : 0,
    linkname: h.linkname || undefined,
    devmajor: h.devmajor,
    devminor: h.devminor,
    mtime: h.mtime ? h.mtime.getTime() / 1000 : 0,
    ...(xattrs.length ? { xattrs: Object.fromEntries(xattrs) } : {}),
    ...(content ? { open: () => content } : {}),
  }
}

/** A hardlink entry that wants the file its target named when its layer was made. */
interface LinkRequest {
  header: tarStream.Header
  rel: string
  xattrs: [string, Buffer][]
  /** The layer whose link last routed it: only a layer below it can hold the file. */
  layer: number
}

/** A directory that unpacking creates because an entry lies under it, with no entry of its own in that layer. */
interface ImpliedDir {
  /** The topmost layer that implies it while it is visible. */
  layer: number
  /** Only whiteouts of that layer imply it: unpacking creates it only when no lower layer has it. */
  weak: boolean
  /** A lower layer has it, or something under it. */
  providedBelow: boolean
  /** A whiteout of its own layer deletes it (or an opaque whiteout above it). */
  deletedBySelf: boolean
}

/** What one layer held at a path, as far as its tar has been read. */
type Seen = 'file' | 'link' | 'other'

const push = <K, V>(m: Map<K, V[]>, k: K, vs: V[]) => (vs.length ? m.set(k, [...(m.get(k) ?? []), ...vs]) : m)

/**
 * The merged filesystem of an image as an uncompressed tar stream. Every layer is verified
 * (digest and diff ID) as it is read. Entries of upper layers come first, so a directory's own
 * entry may follow its children; tar tools handle that.
 *
 * Hardlinks come after their targets, as extractors require, and keep the content they had when
 * their layer was made, as unpacking the layers in order does: a link is written as a link when
 * its target in the merged tree is still the same file; otherwise (an upper layer replaced or
 * deleted the target) the file's content is written under the first link's name and the other
 * links point there. A target of a lower layer is met further down; a target that its own layer
 * held before the link, but that is not in the merged tree, is read again from that layer at the
 * end. A link whose target no layer holds is kept as it was, at the end.
 */
export function exportImage(img: Image, o: IoOptions = {}): Readable {
  return tarEntries(mergedEntries(img, o), 0).stream
}

/** A reader of a layer's tar (verified against its digest and diff ID as it is read). */
async function readLayer(layer: Layer, o: IoOptions): Promise<TarReader> {
  return readTar(await layer.uncompressed(o), `layer ${await layer.digest()}`)
}

/** The entries of the merged tree, in the order exportImage writes them. */
async function* mergedEntries(img: Image, o: IoOptions): AsyncGenerator<LayerEntry> {
  await img.config() // an artifact, or a config that disagrees with the manifest, fails here, before any output
  const layers = (await img.layers()).reverse()
  /** Paths of the merged tree, with the layer (0 = top) each came from. */
  const claimed = new Map<string, number>()
  /** Paths already written. */
  const emitted = new Set<string>()
  const deleted = new Set<string>() // whited out, or under a non-directory of an upper layer
  const opaque = new Set<string>()
  const hidden = (rel: string) => deleted.has(rel) || opaque.has('') || ancestors(rel).some((a) => deleted.has(a) || opaque.has(a))
  /** Link requests for a target that a lower layer holds. */
  const pending = new Map<string, LinkRequest[]>()
  /** Link requests served by reading a layer again: layer → target → requests. */
  const rereads = new Map<number, Map<string, LinkRequest[]>>()
  /**
   * Directories no entry of their layer names, which unpacking creates (as containerd does) for
   * what lies under them. A tar extractor creates them too, but only for an entry written under
   * them: those that end up with none (only whiteouts were under them) are written at the end.
   */
  const implied = new Map<string, ImpliedDir>()

  function* linksTo(reqs: LinkRequest[], target: string): Generator<LayerEntry> {
    for (const r of reqs) {
      const e = toEntry(r.header, r.rel, r.xattrs)
      if (!e) continue
      emitted.add(r.rel)
      yield { ...e, type: 'hardlink', linkname: target, size: 0 }
    }
  }
  /** A file's content under the first requester's name, the others linked to it. */
  function* materialize(h: tarStream.Header, xattrs: [string, Buffer][], body: Readable, reqs: LinkRequest[]): Generator<LayerEntry> {
    const [first, ...rest] = reqs as [LinkRequest, ...LinkRequest[]]
    const e = toEntry(h, first.rel, xattrs, body)
    if (!e) {
      body.resume()
      return
    }
    emitted.add(first.rel)
    yield { ...e, type: 'file', linkname: undefined }
    yield* linksTo(rest, first.rel)
  }
  /** Sends link requests for `target`, as layer `li` saw it so far, to where they are served. */
  function* route(li: number, target: string, reqs: LinkRequest[], seen: Map<string, Seen>, links: Map<string, string>): Generator<LayerEntry> {
    for (const r of reqs) r.layer = li
    let t = target
    for (let hops = 0; hops < 256; hops++) {
      if (claimed.get(t) === li && emitted.has(t)) {
        yield* linksTo(reqs, t) // the same file is in the merged tree
        return
      }
      const next = links.get(t)
      if (next === undefined) break
      t = next // a link of this same layer: follow it to its file
    }
    if (seen.get(t) === 'file') {
      const m = rereads.get(li) ?? new Map<string, LinkRequest[]>()
      rereads.set(li, push(m, t, reqs))
    } else push(pending, t, reqs)
  }

  for (const [li, layer] of layers.entries()) {
    const newDeleted: string[] = []
    const newOpaque: string[] = []
    const impliedHere: ImpliedDir[] = []
    const impliedNames: string[] = []
    /** Whited-out names and opaque directories of this layer, so far. */
    const layerDeleted = new Set<string>()
    const layerOpaque = new Set<string>()
    const deletedHere = (a: string) => layerDeleted.has(a) || layerOpaque.has('') || ancestors(a).some((p) => layerDeleted.has(p) || layerOpaque.has(p))
    const seen = new Map<string, Seen>()
    const links = new Map<string, string>()
    const { entries, tap } = await readLayer(layer, o)
    for await (const entry of entries) {
      const h = entry.header
      const xattrs = tap.xattrsOf(h)
      const rel = cleanEntryPath(h.name)
      const base = rel.slice(rel.lastIndexOf('/') + 1)
      const dir = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : ''
      const whiteout = base.startsWith(WHITEOUT_PREFIX)
      for (const x of [rel, ...ancestors(rel)]) {
        const d = implied.get(x)
        if (d && d.layer < li) d.providedBelow = true
      }
      for (const a of ancestors(rel)) {
        const d = implied.get(a)
        // A directory this layer deleted before is created again by unpacking, and then kept.
        if (d) {
          if (d.layer === li && (!whiteout || deletedHere(a))) d.weak = false
        } else if (!claimed.has(a) && !hidden(a)) {
          const made = { layer: li, weak: whiteout && !deletedHere(a), providedBelow: false, deletedBySelf: false }
          implied.set(a, made)
          impliedHere.push(made)
          impliedNames.push(a)
        }
      }
      if (base === OPAQUE_WHITEOUT) {
        newOpaque.push(dir)
        layerOpaque.add(dir)
      } else if (whiteout) {
        const name = (dir ? `${dir}/` : '') + base.slice(WHITEOUT_PREFIX.length)
        newDeleted.push(name)
        layerDeleted.add(name)
      }
      const shadowed = rel === '' || whiteout || claimed.has(rel) || hidden(rel)
      const isLink = h.type === 'link' && Boolean(h.linkname)
      const isFile = h.type === 'file' || h.type === 'contiguous-file'
      // Requests of upper layers only: a link of this layer named what was there before it.
      const wanting = whiteout || !(isFile || isLink) ? undefined : pending.get(rel)
      const served = wanting?.filter((r) => r.layer < li)
      const waiting = served?.length ? served : undefined
      if (waiting) {
        const rest = (wanting as LinkRequest[]).filter((r) => r.layer >= li)
        if (rest.length) pending.set(rel, rest)
        else pending.delete(rel)
      }
      if (!shadowed) {
        claimed.set(rel, li)
        if (h.type !== 'directory') newDeleted.push(`${rel}/`) // nothing lower can sit under a non-directory
      }
      if (!whiteout) seen.set(rel, isFile ? 'file' : isLink ? 'link' : 'other')
      if (isLink) {
        const target = cleanEntryPath(h.linkname)
        links.set(rel, target)
        entry.resume()
        yield* route(li, target, [...(shadowed ? [] : [{ header: h, rel, xattrs, layer: li }]), ...(waiting ?? [])], seen, links)
        continue
      }
      if (isFile && waiting && shadowed) {
        yield* materialize(h, xattrs, entry as unknown as Readable, waiting)
        continue
      }
      const e = shadowed ? undefined : toEntry(h, rel, xattrs, isFile ? (entry as unknown as Readable) : undefined)
      if (!e) {
        entry.resume()
        continue
      }
      emitted.add(rel)
      yield e
      if (!isFile) entry.resume()
      else if (waiting) yield* linksTo(waiting, rel)
    }
    impliedNames.forEach((a, i) => {
      ;(impliedHere[i] as ImpliedDir).deletedBySelf = deletedHere(a)
    })
    for (const d of newDeleted) deleted.add(d.replace(/\/$/, ''))
    for (const d of newOpaque) opaque.add(d)
  }
  // Files that a link named after its layer had passed them, and the merged tree does not hold.
  for (const [li, wanted] of rereads) {
    const { entries, tap } = await readLayer(layers[li] as Layer, o)
    for await (const entry of entries) {
      const rel = cleanEntryPath(entry.header.name)
      const reqs = wanted.get(rel)
      if (reqs && (entry.header.type === 'file' || entry.header.type === 'contiguous-file')) {
        wanted.delete(rel)
        yield* materialize(entry.header, tap.xattrsOf(entry.header), entry as unknown as Readable, reqs)
      } else entry.resume()
    }
    for (const [target, reqs] of wanted) push(pending, target, reqs)
  }
  // Implied directories that nothing written lies under: written when unpacking would keep them.
  // One whose own layer only implies it by whiteouts, that a lower layer has, and that a whiteout
  // of its layer deletes, is gone; one its layer wrote into is kept whatever that layer deleted.
  const holding = new Set<string>()
  for (const p of emitted) for (const a of ancestors(p)) holding.add(a)
  for (const [a, d] of implied) {
    if (claimed.has(a) || holding.has(a) || (d.providedBelow && d.weak && d.deletedBySelf)) continue
    yield { path: a, type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 }
  }
  // Targets that no layer holds: the links are kept as they were, last.
  for (const [target, reqs] of pending) yield* linksTo(reqs, target)
}
