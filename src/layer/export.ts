/**
 * Exporting an image's merged filesystem as one tar stream, without unpacking it: layers are
 * read top to bottom, and an entry is written only if no upper layer already wrote that path,
 * deleted it (whiteout), hid its directory (opaque whiteout) or put a non-directory above it.
 */
import type { Readable } from 'node:stream'
import tarStream from 'tar-stream'
import type { Image, IoOptions } from '../image/types.ts'
import { chain } from '../image/view.ts'
import { cleanEntryPath, OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './entry.ts'
import { completeTarEnd } from './read.ts'

function ancestors(rel: string): string[] {
  const parts = rel.split('/')
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'))
}

/**
 * The merged filesystem of an image as an uncompressed tar stream. Every layer is verified
 * (digest and diff ID) as it is read. Entries of upper layers come first, so a directory's own
 * entry may follow its children; tar tools handle that.
 */
export function exportImage(img: Image, o: IoOptions = {}): Readable {
  const pack = tarStream.pack()
  const run = async () => {
    const layers = (await img.layers()).reverse()
    const written = new Set<string>()
    const deleted = new Set<string>() // whited out, or under a non-directory of an upper layer
    const opaque = new Set<string>()
    const hidden = (rel: string) => deleted.has(rel) || opaque.has('') || ancestors(rel).some((a) => deleted.has(a) || opaque.has(a))
    for (const layer of layers) {
      const newDeleted: string[] = []
      const newOpaque: string[] = []
      const extract = tarStream.extract()
      const tar = chain(await layer.uncompressed(o), completeTarEnd())
      tar.on('error', (e) => extract.destroy(e))
      tar.pipe(extract as unknown as NodeJS.WritableStream)
      for await (const entry of extract) {
        const h = entry.header
        const rel = cleanEntryPath(h.name)
        const base = rel.slice(rel.lastIndexOf('/') + 1)
        const dir = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : ''
        if (base === OPAQUE_WHITEOUT) newOpaque.push(dir)
        else if (base.startsWith(WHITEOUT_PREFIX)) newDeleted.push((dir ? `${dir}/` : '') + base.slice(WHITEOUT_PREFIX.length))
        if (rel === '' || base.startsWith(WHITEOUT_PREFIX) || written.has(rel) || hidden(rel)) {
          entry.resume()
          continue
        }
        written.add(rel)
        if (h.type !== 'directory') newDeleted.push(`${rel}/`) // nothing lower can sit under a non-directory
        await new Promise<void>((resolve, reject) => {
          const sink = pack.entry({ ...h, name: h.type === 'directory' ? `${rel}/` : rel }, (err) => (err ? reject(err) : resolve()))
          entry.pipe(sink)
        })
      }
      for (const d of newDeleted) deleted.add(d.replace(/\/$/, ''))
      for (const d of newOpaque) opaque.add(d)
    }
    pack.finalize()
  }
  run().catch((e) => pack.destroy(e as Error))
  return pack as unknown as Readable
}
