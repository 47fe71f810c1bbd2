import assert from 'node:assert/strict'
import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { test } from 'node:test'
import tarStream from 'tar-stream'
import type { Image } from '../../src/image/types.ts'
import { applyTar, unpackImage } from '../../src/layer/apply.ts'
import { exportImage } from '../../src/layer/export.ts'
import { needPeers, peer } from '../helpers/peers.ts'
import { type RawEntry, rawImage } from '../helpers/tar.ts'
import { tempDir } from '../helpers/tmp.ts'
import { describeTree } from '../helpers/tree.ts'

/** The names and types of a tar's entries, in order (links with their targets). */
async function listTar(file: string): Promise<string[]> {
  const extract = tarStream.extract()
  const done = pipeline((await fs.open(file)).createReadStream(), extract as unknown as NodeJS.WritableStream)
  const out: string[] = []
  for await (const e of extract) {
    out.push(e.header.type === 'link' ? `${e.header.name} -> ${e.header.linkname}` : e.header.name)
    e.resume()
  }
  await done
  return out
}

/**
 * Exports `layers` as one tar and checks that it extracts (with our applier, and with GNU tar
 * when present) to the tree that unpacking the layers one by one gives. Returns the tar's entries.
 */
async function exportMatchesUnpack(t: import('node:test').TestContext, layers: RawEntry[][]): Promise<string[]> {
  const img: Image = await rawImage(layers)
  const root = await tempDir(t)
  const unpacked = path.join(root, 'unpacked')
  await unpackImage(img, unpacked)
  const want = await describeTree(unpacked)
  const file = path.join(root, 'merged.tar')
  await pipeline(exportImage(img), createWriteStream(file))
  const ours = path.join(root, 'ours')
  await applyTar((await fs.open(file)).createReadStream(), ours)
  assert.deepEqual(await describeTree(ours), want, 'our applier')
  if (!needPeers('tar').skip) {
    const gnu = path.join(root, 'gnu')
    await fs.mkdir(gnu)
    await peer('tar', ['-xf', file, '-C', gnu])
    assert.deepEqual(await describeTree(gnu), want, 'GNU tar')
  }
  return listTar(file)
}

test('export: a hardlink to a file of a lower layer comes after its target', async (t) => {
  const names = await exportMatchesUnpack(t, [[{ name: 'a', content: 'lower' }], [{ name: 'b', type: 'link', linkname: 'a' }]])
  assert.deepEqual(names, ['a', 'b -> a'])
})

test('export: a hardlink whose target an upper layer replaced keeps the content it was made with', async (t) => {
  const names = await exportMatchesUnpack(t, [
    [{ name: 'a', content: 'old' }],
    [
      { name: 'b', type: 'link', linkname: 'a' },
      { name: 'c', type: 'link', linkname: 'a' },
    ],
    [{ name: 'a', content: 'new' }],
  ])
  // b gets the old content, c stays linked to it; a is the new file.
  assert.deepEqual(names, ['a', 'b', 'c -> b'])
})

test('export: a hardlink whose target an upper layer deleted keeps the content; links within one layer stay as they are', async (t) => {
  const names = await exportMatchesUnpack(t, [
    [
      { name: 'd/', type: 'directory' },
      { name: 'd/a', content: 'kept by the link' },
      { name: 'x', content: 'x' },
      { name: 'y', type: 'link', linkname: 'x' },
    ],
    [{ name: 'b', type: 'link', linkname: 'd/a' }],
    [{ name: 'd/.wh.a' }],
  ])
  assert.deepEqual(names, ['d/', 'b', 'x', 'y -> x'])
})

test('export: a hardlink to a hardlink of a lower layer reaches the file behind both', async (t) => {
  const names = await exportMatchesUnpack(t, [
    [
      { name: 'a', content: 'first' },
      { name: 'm', type: 'link', linkname: 'a' },
    ],
    [{ name: 'b', type: 'link', linkname: 'm' }],
    [{ name: 'a', content: 'replaced' }],
  ])
  assert.deepEqual(names, ['a', 'm', 'b -> m'])
})

test('export: a hardlink to a file its own layer held, since replaced above, gets that file read again', async (t) => {
  const names = await exportMatchesUnpack(t, [
    [
      { name: 'a', content: 'first' },
      { name: 'm', type: 'link', linkname: 'a' },
      { name: 'z', content: 'z' },
    ],
    [{ name: 'a', content: 'replaced' }],
  ])
  assert.deepEqual(names, ['a', 'z', 'm'])
})

test('export: entries keep their own time, mode and owner ids; user and group names are left out', async () => {
  const when = new Date('2024-05-06T07:08:09Z')
  const img = await rawImage([
    [
      { name: 'bin/', type: 'directory', mode: 0o700, mtime: when, uid: 5, gid: 6 },
      { name: 'bin/tool', content: '#!/bin/sh\n', mode: 0o4755, mtime: when, uid: 1000, gid: 2000 },
    ],
    [{ name: 'etc/', type: 'directory', mtime: new Date('2025-01-01T00:00:00Z') }],
  ])
  const extract = tarStream.extract()
  const done = pipeline(exportImage(img), extract as unknown as NodeJS.WritableStream)
  const seen: Record<string, tarStream.Header> = {}
  for await (const e of extract) {
    seen[e.header.name] = e.header
    e.resume()
  }
  await done
  const tool = seen['bin/tool'] as tarStream.Header
  assert.equal(tool.mtime.getTime(), when.getTime())
  assert.equal(tool.mode & 0o7777, 0o4755)
  assert.deepEqual([tool.uid, tool.gid, tool.uname, tool.gname], [1000, 2000, '', ''])
  assert.equal((seen['bin/'] as tarStream.Header).mode & 0o7777, 0o700)
  assert.equal((seen['etc/'] as tarStream.Header).mtime.toISOString(), '2025-01-01T00:00:00.000Z')
})

test('export: empty files, symlinks, directories and whiteouts of a stack of layers', async (t) => {
  const names = await exportMatchesUnpack(t, [
    [{ name: 'etc/', type: 'directory' }, { name: 'etc/empty' }, { name: 'etc/gone', content: 'deleted above' }, { name: 'etc/keep', content: 'k' }],
    [{ name: 'etc/.wh.gone' }, { name: 'etc/also-empty' }, { name: 'etc/link', type: 'symlink', linkname: 'keep' }],
  ])
  assert.deepEqual(names, ['etc/also-empty', 'etc/link', 'etc/', 'etc/empty', 'etc/keep'])
})

test('export: the parent directories of whiteouts exist, as after unpacking, even when no layer holds them', async (t) => {
  const names = await exportMatchesUnpack(t, [[{ name: 'b', content: 'b' }], [{ name: 'd/.wh..wh..opq' }, { name: 'e/f/.wh.a' }, { name: '.wh.e' }]])
  assert.deepEqual(names, ['b', 'd/', 'e/', 'e/f/'])
})

test('export: directories with only whiteouts under them stay or go as unpacking decides', async (t) => {
  // e holds a lower file that a whiteout deletes: e stays, empty. f is deleted by its own layer's
  // whiteout after a whiteout under it: gone. g is deleted first and then needed again: created.
  const names = await exportMatchesUnpack(t, [
    [
      { name: 'e/a', content: 'a' },
      { name: 'f/a', content: 'a' },
      { name: 'g/a', content: 'a' },
    ],
    [{ name: 'e/.wh.a' }, { name: 'f/.wh.a' }, { name: '.wh.f' }, { name: '.wh.g' }, { name: 'g/.wh.a' }],
  ])
  assert.deepEqual(names, ['e/', 'g/'])
})

test('export: a link to a path its own layer replaces later keeps the lower file', async (t) => {
  const names = await exportMatchesUnpack(t, [
    [{ name: 'c', content: 'lower', mode: 0o755 }],
    [
      { name: 'a', type: 'link', linkname: 'c' },
      { name: 'c', content: 'upper' },
    ],
  ])
  assert.deepEqual(names, ['c', 'a'])
})
