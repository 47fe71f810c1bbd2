import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import tarStream from 'tar-stream'
import type { LayerEntry } from '../../src/layer/entry.ts'
import { directoryEntries } from '../../src/layer/source-directory.ts'
import { fileMapEntries } from '../../src/layer/source-files.ts'
import { tarEntries } from '../../src/layer/tar-write.ts'
import { tempDir } from '../helpers/tmp.ts'

async function bytes(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of s) chunks.push(Buffer.from(c as Buffer))
  return Buffer.concat(chunks)
}

/** The same entries through tar-stream's pack(), as the reference for the bytes. */
async function referenceTar(entries: LayerEntry[], mtime: number): Promise<Buffer> {
  const pack = tarStream.pack()
  const out = bytes(pack as unknown as Readable)
  const types = {
    file: 'file',
    directory: 'directory',
    symlink: 'symlink',
    hardlink: 'link',
    fifo: 'fifo',
    'char-device': 'character-device',
    'block-device': 'block-device',
  } as const
  for (const e of entries) {
    const pax: Record<string, string> = {}
    if (e.uid > 0o777777) pax.uid = String(e.uid)
    if (e.gid > 0o777777) pax.gid = String(e.gid)
    const content = e.type === 'file' ? Buffer.from(await (e.read?.() ?? Promise.resolve(new Uint8Array()))) : undefined
    await new Promise<void>((resolve, reject) =>
      pack.entry(
        {
          name: e.type === 'directory' ? `${e.path}/` : e.path,
          type: types[e.type],
          mode: e.mode,
          uid: Math.min(e.uid, 0o777777),
          gid: Math.min(e.gid, 0o777777),
          uname: '',
          gname: '',
          size: content?.length ?? 0,
          mtime: new Date(mtime * 1000),
          linkname: e.linkname ?? '',
          devmajor: e.devmajor ?? 0,
          devminor: e.devminor ?? 0,
          ...(Object.keys(pax).length ? { pax } : {}),
        },
        content ?? Buffer.alloc(0),
        (err) => (err ? reject(err) : resolve()),
      ),
    )
  }
  pack.finalize()
  return out
}

test('tar bytes match tar-stream for ustar, split long names, PAX names and links, large ids, and slab edges', async () => {
  const files = {
    'a.txt': 'x',
    [`${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(90)}`]: 'a long name split into prefix and name',
    [`${`${'g'.repeat(120)}/`.repeat(3)}h`]: 'over 255 bytes: PAX',
    ['x'.repeat(150)]: 'no slash to split at: PAX',
    'café/naïve.txt': 'non-ASCII: PAX',
    link: { symlink: 't'.repeat(150) },
    'short-link': { symlink: 'a.txt' },
    'big/file.bin': Buffer.alloc((3 << 20) + 77, 9),
    exe: { content: '#!/bin/sh\n', mode: 0o4755 },
    // Exactly one 4 KiB slab of content after its header, to land on a slab boundary.
    'edge.bin': Buffer.alloc(4096 - 512, 1),
  }
  for (const uid of [0, 1000, 0o777777 + 5]) {
    const entries = fileMapEntries(files, { uid, gid: uid + 1 })
    for (const slabSize of [4096, 1 << 20]) {
      const ours = await bytes(tarEntries(entries, 1_700_000_000, { slabSize }).stream)
      assert.ok(ours.equals(await referenceTar(entries, 1_700_000_000)), `uid ${uid}, slab ${slabSize}`)
    }
  }
})

test('a file that changes size between the walk and the read aborts the layer, naming the file', async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'grows.txt'), 'short')
  await fs.writeFile(path.join(dir, 'shrinks.txt'), 'a longer text than later')
  const entries: LayerEntry[] = []
  for await (const e of directoryEntries(dir)) entries.push(e)
  await fs.writeFile(path.join(dir, 'grows.txt'), 'now much longer than before')
  const grows = entries.filter((e) => e.path === 'grows.txt')
  await assert.rejects(bytes(tarEntries(grows, 0).stream), /grows\.txt grew while being read/)
  await fs.writeFile(path.join(dir, 'shrinks.txt'), 'short')
  const shrinks = entries.filter((e) => e.path === 'shrinks.txt')
  await assert.rejects(bytes(tarEntries(shrinks, 0).stream), /shrinks\.txt shrank while being read/)
  // A file that ends exactly where its slab does: no room to read one byte further, so its size is asked for.
  await fs.writeFile(path.join(dir, 'edge.txt'), Buffer.alloc(512, 'e'))
  const edge = []
  for await (const e of directoryEntries(dir)) if (e.path === 'edge.txt') edge.push(e)
  await fs.appendFile(path.join(dir, 'edge.txt'), 'more')
  await assert.rejects(bytes(tarEntries(edge, 0, { slabSize: 1024 }).stream), /edge\.txt grew while being read/)
})

test('files read from disk give the same bytes as the same content given in memory, at every slab edge', async (t) => {
  const dir = await tempDir(t)
  for (const [name, size] of [
    ['a', 512],
    ['b', 1000],
    ['c', 1],
    ['d', 511],
    ['e', 1536],
    ['f', 0],
    ['g', 513],
  ] as const) {
    await fs.writeFile(path.join(dir, name), Buffer.alloc(size, name))
  }
  const fromDisk: LayerEntry[] = []
  for await (const e of directoryEntries(dir)) fromDisk.push(e)
  const inMemory = await Promise.all(
    fromDisk.map(async (e) => {
      const content = await fs.readFile(path.join(dir, e.path))
      return { ...e, file: undefined, read: async () => content }
    }),
  )
  for (const slabSize of [512, 1024, 1536, 4096]) {
    const a = await bytes(tarEntries(fromDisk, 0, { slabSize }).stream)
    const b = await bytes(tarEntries(inMemory, 0, { slabSize }).stream)
    assert.ok(a.equals(b), `slab ${slabSize}`)
  }
})

test('slab sizes that are not multiples of 512 are refused', () => {
  assert.throws(() => tarEntries([], 0, { slabSize: 1000 }), /multiple of 512/)
})

test('entries over 1 MiB are streamed through open(), never read whole; small ones may be read whole', async () => {
  const big = Buffer.alloc((1 << 20) + 1, 5)
  const entry = (size: number, content: Buffer): LayerEntry => ({
    path: `f${size}`,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size,
    read: size > 1 << 20 ? () => Promise.reject(new Error('read whole')) : async () => content,
    open: () => Readable.from([content.subarray(0, 1000), content.subarray(1000)]),
  })
  const tar = await bytes(tarEntries([entry(big.length, big), entry(3, Buffer.from('abc'))], 0).stream)
  assert.ok(tar.subarray(512, 512 + big.length).equals(big))
})

test("a directory entry's open() fails with the read error when its file vanished", async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'gone.txt'), 'soon gone')
  const entries: LayerEntry[] = []
  for await (const e of directoryEntries(dir)) entries.push(e)
  await fs.rm(path.join(dir, 'gone.txt'))
  const e = entries.find((x) => x.path === 'gone.txt') as LayerEntry
  await assert.rejects(bytes(e.open?.() as Readable), /ENOENT/)
})
