/**
 * explore's analysis: three layers, one that overwrites a file of the first and one that deletes
 * another; what each layer adds, changes and deletes, the wasted space, the efficiency, the merged
 * filesystem, and the difference between two images.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { diffExplorations, exploreImage } from '../../src/explore/analyze.ts'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import { layerFromDirectory } from '../../src/layer/encode.ts'
import { threeLayers } from '../helpers/explore-image.ts'
import { tempDir } from '../helpers/tmp.ts'

const amd64 = { os: 'linux', architecture: 'amd64' }

test('three layers: adds, changes and deletes per layer; wasted space names the overwritten and the deleted file; efficiency', async (t) => {
  const { one } = await threeLayers(await tempDir(t))
  const x = await exploreImage(one)
  assert.equal(x.layers.length, 3)
  assert.deepEqual(
    x.layers.map((l) => [l.added.count, l.changed.count, l.deleted.count]),
    [
      [4, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ],
  )
  assert.equal(x.layers[1]?.changed.bytes, 200)
  assert.equal(x.layers[2]?.deleted.bytes, 1000)
  assert.deepEqual(
    x.wasted.map((w) => [w.path, w.bytes, w.layer, w.by, w.how]),
    [
      ['b.bin', 1000, 0, 2, 'deleted'],
      ['a.txt', 100, 0, 1, 'overwritten'],
    ],
  )
  assert.equal(x.wastedBytes, 1100)
  assert.equal(x.shippedBytes, 100 + 1000 + 50 + 200)
  assert.equal(x.finalBytes, 250)
  assert.equal(x.efficiency, 250 / 1350)
  assert.deepEqual([...x.merged.keys()].sort(), ['a.txt', 'dir', 'dir/c'])
  assert.ok(x.layers[2]?.files.some((f) => f.type === 'whiteout' && f.path === 'b.bin'))
})

test('the difference between two images: added, removed, changed by content', async (t) => {
  const { one, two } = await threeLayers(await tempDir(t))
  const a = await exploreImage(one)
  const b = await exploreImage(two)
  assert.deepEqual(diffExplorations(a, b), [])
  const dir = await tempDir(t)
  await fs.mkdir(path.join(dir, 'dir'))
  await fs.writeFile(path.join(dir, 'a.txt'), 'B'.repeat(200)) // same size, other bytes
  await fs.writeFile(path.join(dir, 'new.txt'), 'n')
  const three = await appendLayers(scratch(amd64), [layerFromDirectory(dir)])
  assert.deepEqual(
    diffExplorations(a, await exploreImage(three)).map((c) => [c.path, c.change]),
    [
      ['a.txt', 'changed'],
      ['dir/c', 'removed'],
      ['new.txt', 'added'],
    ],
  )
})

test('the layer indexes are kept by digest: a second exploration reads no layer, and gives the same figures', async (t) => {
  const dir = await tempDir(t)
  const { one } = await threeLayers(dir)
  const cacheDir = path.join(dir, 'explore-cache')
  const first = await exploreImage(one, { cacheDir })
  assert.equal((await fs.readdir(cacheDir)).filter((f) => f.endsWith('.json')).length, 3)
  // A view whose layers cannot be read: only the cache can answer.
  const { delegatingImage } = await import('../helpers/views.ts')
  const unreadable = delegatingImage(one, {
    layers: async () =>
      (await one.layers()).map((l) => ({
        ...l,
        mediaType: l.mediaType,
        digest: () => l.digest(),
        diffId: () => l.diffId(),
        size: () => l.size(),
        compressed: () => l.compressed(),
        uncompressed: async () => {
          throw new Error('read a layer')
        },
      })),
  })
  const second = await exploreImage(unreadable, { cacheDir })
  assert.deepEqual(second.wasted, first.wasted)
  assert.equal(second.efficiency, first.efficiency)
  // A damaged entry is read again, not trusted.
  const [f] = (await fs.readdir(cacheDir)).filter((n) => n.endsWith('.json'))
  await fs.writeFile(path.join(cacheDir, f as string), '{"not":"a list"}')
  await assert.rejects(exploreImage(unreadable, { cacheDir }), /read a layer/)
})

test('what a whiteout removes: a file alone, a directory with what is under it (not a sibling of the same prefix), an opaque directory’s contents, the root’s', async () => {
  const { removedBy } = await import('../../src/explore/analyze.ts')
  const m = new Map([
    ['a', { type: 'directory' }],
    ['a/x', { type: 'file' }],
    ['a/y', { type: 'directory' }],
    ['a/y/z', { type: 'file' }],
    ['a.txt', { type: 'file' }],
    ['b', { type: 'file' }],
  ])
  const w = (path: string, type = 'whiteout') => ({ path, type, size: 0, mode: 0, uid: 0, gid: 0 })
  assert.deepEqual(removedBy(m, w('b')), ['b'])
  assert.deepEqual(removedBy(m, w('a')).sort(), ['a', 'a/x', 'a/y', 'a/y/z'])
  assert.deepEqual(removedBy(m, w('a/.wh..wh..opq', 'opaque')).sort(), ['a/x', 'a/y', 'a/y/z'])
  assert.deepEqual(removedBy(m, w('/.wh..wh..opq', 'opaque')).length, 6)
  assert.deepEqual(removedBy(m, w('nothing')), [])
})
