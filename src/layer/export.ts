/**
 * Exporting an image's merged filesystem as one tar stream, without unpacking it: layers are
 * read top to bottom, and an entry is written only if no upper layer already wrote that path,
 * deleted it (whiteout), hid its directory (opaque whiteout) or put a non-directory above it.
 * Hardlinks are resolved as unpacking the layers in order would resolve them (see exportImage).
 */
import type { Readable } from 'node:stream'
import tarStream from 'tar-stream'
import type { Image, IoOptions, Layer } from '../image/types.ts'
import { chain } from '../image/view.ts'
import { cleanEntryPath, OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './entry.ts'
import { completeTarEnd } from './read.ts'

function ancestors(rel: string): string[] {
  const parts = rel.split('/')
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'))
}

/** Where one entry's content goes in the output tar. */
type EntrySink = ReturnType<tarStream.Pack['entry']>

/** A hardlink entry that wants the file its target named when its layer was made. */
interface LinkRequest {
  header: tarStream.Header
  rel: string
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
  const pack = tarStream.pack()
  const put = (h: tarStream.Header, body?: { pipe: (sink: EntrySink) => unknown }) =>
    new Promise<void>((resolve, reject) => {
      const sink = pack.entry(h, (err) => (err ? reject(err) : resolve()))
      if (body) body.pipe(sink)
    })
  const entriesOf = async (layer: Layer) => {
    const extract = tarStream.extract()
    const tar = chain(await layer.uncompressed(o), completeTarEnd())
    tar.on('error', (e) => extract.destroy(e))
    tar.pipe(extract as unknown as NodeJS.WritableStream)
    return extract
  }
  const run = async () => {
    const layers = (await img.layers()).reverse()
    /** Paths of the merged tree, with the layer (0 = top) each came from. */
    const claimed = new Map<string, number>()
    /** Paths already in the output tar. */
    const emitted = new Set<string>()
    const deleted = new Set<string>() // whited out, or under a non-directory of an upper layer
    const opaque = new Set<string>()
    const hidden = (rel: string) => deleted.has(rel) || opaque.has('') || ancestors(rel).some((a) => deleted.has(a) || opaque.has(a))
    /** Link requests for a target that a lower layer holds. */
    const pending = new Map<string, LinkRequest[]>()
    /** Link requests served by reading a layer again: layer → target → requests. */
    const rereads = new Map<number, Map<string, LinkRequest[]>>()

    const linksTo = async (reqs: LinkRequest[], target: string) => {
      for (const r of reqs) {
        await put({ ...r.header, name: r.rel, linkname: target, size: 0 })
        emitted.add(r.rel)
      }
    }
    /** A file's content under the first requester's name, the others linked to it. */
    const materialize = async (h: tarStream.Header, body: { pipe: (sink: EntrySink) => unknown }, reqs: LinkRequest[]) => {
      const [first, ...rest] = reqs as [LinkRequest, ...LinkRequest[]]
      await put({ ...h, name: first.rel, type: 'file', linkname: '' }, body)
      emitted.add(first.rel)
      await linksTo(rest, first.rel)
    }
    /** Sends link requests for `target`, as layer `li` saw it so far, to where they are served. */
    const route = async (li: number, target: string, reqs: LinkRequest[], seen: Map<string, Seen>, links: Map<string, string>) => {
      let t = target
      for (let hops = 0; hops < 256; hops++) {
        if (claimed.get(t) === li && emitted.has(t)) return linksTo(reqs, t) // the same file is in the merged tree
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
      const seen = new Map<string, Seen>()
      const links = new Map<string, string>()
      for await (const entry of await entriesOf(layer)) {
        const h = entry.header
        const rel = cleanEntryPath(h.name)
        const base = rel.slice(rel.lastIndexOf('/') + 1)
        const dir = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : ''
        const whiteout = base.startsWith(WHITEOUT_PREFIX)
        if (base === OPAQUE_WHITEOUT) newOpaque.push(dir)
        else if (whiteout) newDeleted.push((dir ? `${dir}/` : '') + base.slice(WHITEOUT_PREFIX.length))
        const shadowed = rel === '' || whiteout || claimed.has(rel) || hidden(rel)
        const isLink = h.type === 'link' && Boolean(h.linkname)
        const isFile = h.type === 'file' || h.type === 'contiguous-file'
        const waiting = whiteout ? undefined : pending.get(rel)
        if (waiting && (isFile || isLink)) pending.delete(rel)
        if (!shadowed) {
          claimed.set(rel, li)
          if (h.type !== 'directory') newDeleted.push(`${rel}/`) // nothing lower can sit under a non-directory
        }
        if (!whiteout) seen.set(rel, isFile ? 'file' : isLink ? 'link' : 'other')
        if (isLink) {
          const target = cleanEntryPath(h.linkname)
          links.set(rel, target)
          entry.resume()
          await route(li, target, [...(shadowed ? [] : [{ header: h, rel }]), ...(waiting ?? [])], seen, links)
          continue
        }
        if (isFile && waiting && shadowed) {
          await materialize(h, entry, waiting)
          continue
        }
        if (shadowed) {
          entry.resume()
          continue
        }
        await put({ ...h, name: h.type === 'directory' ? `${rel}/` : rel }, entry)
        emitted.add(rel)
        if (isFile && waiting) await linksTo(waiting, rel)
      }
      for (const d of newDeleted) deleted.add(d.replace(/\/$/, ''))
      for (const d of newOpaque) opaque.add(d)
    }
    // Files that a link named after its layer had passed them, and the merged tree does not hold.
    for (const [li, wanted] of rereads) {
      for await (const entry of await entriesOf(layers[li] as Layer)) {
        const rel = cleanEntryPath(entry.header.name)
        const reqs = wanted.get(rel)
        if (reqs && (entry.header.type === 'file' || entry.header.type === 'contiguous-file')) {
          wanted.delete(rel)
          await materialize(entry.header, entry, reqs)
        } else entry.resume()
      }
      for (const [target, reqs] of wanted) push(pending, target, reqs)
    }
    // Targets that no layer holds: the links are kept as they were, last.
    for (const [target, reqs] of pending) await linksTo(reqs, target)
    pack.finalize()
  }
  run().catch((e) => pack.destroy(e as Error))
  return pack as unknown as Readable
}
