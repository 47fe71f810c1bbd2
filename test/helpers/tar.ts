/** Tars made entry by entry with raw headers, and images made of them, for layer tests. */
import zlib from 'node:zlib'
import tarStream from 'tar-stream'
import { digestOf } from '../../src/digest.ts'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import { MemoryBlobSource } from '../../src/image/random.ts'
import type { Image } from '../../src/image/types.ts'
import { BlobLayer } from '../../src/image/view.ts'

/** One tar entry: a file (the default), a directory, a symlink or a hardlink (`link`). */
export interface RawEntry {
  name: string
  type?: 'file' | 'directory' | 'symlink' | 'link'
  linkname?: string
  content?: string
  /** Default 0644 (0755 for directories). */
  mode?: number
  /** Default the epoch. */
  mtime?: Date
  uid?: number
  gid?: number
}

/** A tar made with raw headers, so hostile names reach the applier unchanged. */
export async function rawTar(entries: RawEntry[]): Promise<Buffer> {
  const pack = tarStream.pack()
  const chunks: Buffer[] = []
  const done = new Promise<void>((r) => pack.on('end', () => r()))
  pack.on('data', (c) => chunks.push(c as Buffer))
  for (const e of entries) {
    const body = Buffer.from(e.content ?? '')
    pack.entry(
      {
        name: e.name,
        type: e.type ?? 'file',
        linkname: e.linkname,
        mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644),
        mtime: e.mtime ?? new Date(0),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        size: body.length,
      },
      body,
    )
  }
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

/** An image on scratch whose layers (bottom first) are gzip tars of the given entries. */
export async function rawImage(layers: RawEntry[][]): Promise<Image> {
  const src = new MemoryBlobSource()
  const made = []
  for (const entries of layers) {
    const tar = await rawTar(entries)
    const desc = src.put(zlib.gzipSync(tar), 'application/vnd.oci.image.layer.v1.tar+gzip')
    made.push(new BlobLayer(src, desc, async () => digestOf(tar)))
  }
  return appendLayers(scratch(), made)
}
