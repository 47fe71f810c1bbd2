/**
 * The image operations in the library: mutate, rebase, flatten and optimize, on images and on
 * every image (or one) of an index. Filesystems are compared by unpacking both images.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { read, write } from '../../src/api.ts'
import { isOcikitError } from '../../src/errors.ts'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import { randomIndex } from '../../src/image/random.ts'
import type { Image, ImageOrIndex } from '../../src/image/types.ts'
import { unpackImage } from '../../src/layer/apply.ts'
import { layerFromFiles } from '../../src/layer/encode.ts'
import { forEachImage } from '../../src/ops/each.ts'
import { mutateImage } from '../../src/ops/edit.ts'
import { flatten } from '../../src/ops/flatten.ts'
import { optimize } from '../../src/ops/optimize.ts'
import { BASE_DIGEST, BASE_NAME, rebase, rebaseConfig } from '../../src/ops/rebase.ts'
import { type RawEntry, rawImage } from '../helpers/tar.ts'
import { tempDir } from '../helpers/tmp.ts'
import { describeTree } from '../helpers/tree.ts'

const amd64 = { os: 'linux', architecture: 'amd64' }

async function tree(t: import('node:test').TestContext, img: Image) {
  const dir = path.join(await tempDir(t), 'rootfs')
  await unpackImage(img, dir)
  return describeTree(dir)
}

test('mutate changes the config and annotations only: the layers and their digests stay; bad names are errors naming them', async () => {
  const base = await appendLayers(scratch(amd64), [layerFromFiles({ 'app/a': 'a' }), layerFromFiles({ 'app/b': 'b' })])
  const out = await mutateImage(base, {
    env: ['A=1', 'PATH=/bin'],
    labels: ['team=x'],
    annotations: ['org.example.note=hi'],
    cmd: ['/app/run'],
    timestamp: 1700000000,
  })
  assert.deepEqual(
    (await out.manifest()).layers.map((l) => l.digest),
    (await base.manifest()).layers.map((l) => l.digest),
  )
  const c = await out.config()
  assert.deepEqual(c.config?.Env, ['A=1', 'PATH=/bin'])
  assert.deepEqual(c.config?.Labels, { team: 'x' })
  assert.deepEqual(c.config?.Cmd, ['/app/run'])
  assert.equal(c.created, '2023-11-14T22:13:20Z')
  assert.equal(c.history?.at(-1)?.created_by, 'ocikit mutate')
  assert.equal((await out.manifest()).annotations?.['org.example.note'], 'hi')
  assert.equal((await (await mutateImage(base, { dropHistory: true })).config()).history, undefined)
  for (const [edit, re] of [
    [{ env: ['BAD NAME=1'] }, /env 'BAD NAME=1'/],
    [{ env: ['=1'] }, /env '=1'/],
    [{ labels: ['a b=1'] }, /label name 'a b'/],
    [{ annotations: ['noequals'] }, /annotation 'noequals' is not KEY=VALUE/],
  ] as const) {
    await assert.rejects(mutateImage(base, edit as never), (e) => isOcikitError(e, 'INVALID_ARGUMENT') && re.test((e as Error).message))
  }
})

test('on an index, every image is changed, or only the one --platform names; the index keeps its annotations', async (t) => {
  const idx = await randomIndex({ seed: 71, layers: 1 })
  const dir = await tempDir(t)
  await write(`oci:${dir}:multi`, idx)
  const x = await read(`oci:${dir}:multi`)
  const all = await forEachImage(x, (img) => mutateImage(img, { env: ['A=1'] }), { where: 'x' })
  assert.equal(all.kind, 'index')
  const children = async (i: ImageOrIndex) => (i.kind === 'index' ? (await i.manifest()).manifests : [])
  const before = await children(x)
  const after = await children(all)
  assert.equal(after.length, before.length)
  assert.ok(after.every((d, i) => d.digest !== before[i]?.digest && JSON.stringify(d.platform) === JSON.stringify(before[i]?.platform)))
  const one = await forEachImage(x, (img) => mutateImage(img, { env: ['A=1'] }), { where: 'x', platform: { os: 'linux', architecture: 'arm64' } })
  const oneChildren = await children(one)
  assert.deepEqual(
    oneChildren.map((d, i) => d.digest === before[i]?.digest),
    before.map((d) => d.platform?.architecture !== 'arm64'),
  )
  await assert.rejects(
    forEachImage(x, async (img) => img, { where: 'x', platform: { os: 'linux', architecture: 's390x' } }),
    (e) => isOcikitError(e, 'PLATFORM_NOT_FOUND') && /available: linux\/amd64, linux\/arm64/.test((e as Error).message),
  )
  // The written result: every child readable, fsck-clean.
  await write(`oci:${dir}:changed`, all)
  assert.equal(await (await read(`oci:${dir}:changed`)).digest(), await all.digest())
})

test("rebase swaps the old base's layers for the new base's, keeps the image's own, and takes from the new base's config what came from the old's", async (t) => {
  const oldBase = await mutateImage(await appendLayers(scratch(amd64), [layerFromFiles({ 'etc/os': 'old', 'usr/lib/libold': 'x' })]), {
    env: ['PATH=/old/bin', 'BASE=old'],
    labels: ['base=old'],
    cmd: ['/bin/old-sh'],
  })
  const newBase = await mutateImage(await appendLayers(scratch(amd64), [layerFromFiles({ 'etc/os': 'new', 'usr/lib/libnew': 'y' })]), {
    env: ['PATH=/new/bin', 'NEWVAR=1'],
    labels: ['base=new'],
    cmd: ['/bin/new-sh'],
  })
  const app = await mutateImage(await appendLayers(oldBase, [layerFromFiles({ 'app/main': 'app' })]), { env: ['APP=1'], labels: ['app=yes'] })
  const out = await rebase(app, oldBase, newBase, { newBaseName: 'oci:./new:v1' })
  const m = await out.manifest()
  assert.deepEqual(
    m.layers.map((l) => l.digest),
    [(await newBase.manifest()).layers[0]?.digest, (await app.manifest()).layers[1]?.digest],
  )
  assert.equal(m.annotations?.[BASE_NAME], 'oci:./new:v1')
  assert.equal(m.annotations?.[BASE_DIGEST], await newBase.digest())
  const c = (await out.config()).config ?? {}
  assert.deepEqual(c.Env, ['NEWVAR=1', 'PATH=/new/bin', 'APP=1'])
  assert.deepEqual(c.Labels, { base: 'new', app: 'yes' })
  assert.deepEqual(c.Cmd, ['/bin/new-sh'])
  const files = await tree(t, out)
  assert.ok(files['usr/lib/libnew'] && files['app/main'] && !files['usr/lib/libold'])
  // An OLD that is not the base: the error names the first layer that differs.
  await assert.rejects(
    rebase(app, newBase, oldBase),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /is not the base of .*: layer 0 of/.test((e as Error).message),
  )
  // What the image set itself stays, even where the old base had the same field.
  assert.deepEqual(rebaseConfig({ Cmd: ['mine'] }, { Cmd: ['old'] }, { Cmd: ['new'] }).Cmd, ['mine'])
})

/** Layers with an overwrite, a whiteout, an opaque directory, hardlinks, an empty layer and repeats. */
async function trickyImage(): Promise<Image> {
  const base: RawEntry[] = [
    { name: 'etc/', type: 'directory' },
    { name: 'etc/conf', content: 'v1' },
    { name: 'var/cache/', type: 'directory' },
    { name: 'var/cache/a', content: 'a' },
    { name: 'bin/', type: 'directory' },
    { name: 'bin/tool', content: 'tool', mode: 0o755 },
    { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
  ]
  const repeat: RawEntry[] = [
    { name: 'opt/', type: 'directory' },
    { name: 'opt/x', content: 'x' },
  ]
  return rawImage([
    base,
    repeat,
    [{ name: 'etc/conf', content: 'v2' }, { name: 'var/.wh.cache' }],
    [],
    repeat, // a repeat nothing between touches: removable
    [{ name: 'etc/.wh.conf' }],
    [{ name: 'etc/conf', content: 'v3' }],
    [{ name: 'etc/conf', content: 'v2' }, { name: 'var/.wh.cache' }], // repeats layer 2, but layers 5 and 6 touch etc/conf: kept
  ])
}

test('flatten gives one layer holding exactly the tree that unpacking every layer gives', async (t) => {
  const img = await trickyImage()
  const flat = await flatten(img)
  assert.equal((await flat.layers()).length, 1)
  assert.equal((await flat.config()).rootfs.diff_ids.length, 1)
  assert.equal((await flat.config()).history?.length, 1)
  assert.deepEqual(await tree(t, flat), await tree(t, img))
})

test('optimize drops empty layers and harmless repeats, never changes the unpacked filesystem, and says what it removed', async (t) => {
  const img = await trickyImage()
  const { image, removed } = await optimize(img)
  assert.deepEqual(
    removed.map((r) => [r.index, r.reason.split(':')[0]?.split(' ')[0]]),
    [
      [3, 'empty'],
      [4, 'repeats'],
    ],
  )
  assert.equal((await image.layers()).length, 6)
  assert.deepEqual(await tree(t, image), await tree(t, img))
  const again = await optimize(image)
  assert.deepEqual(again.removed, [])
  assert.equal(again.image, image, 'nothing to remove: the same view')
})
