import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import { applyLayer, applyTar } from '../../src/layer/apply.ts'
import { layerFromDiff, layerFromDirectory, writeLayerFile } from '../../src/layer/encode.ts'
import { exportImage } from '../../src/layer/export.ts'
import { listLayerFile } from '../../src/layer/read.ts'
import { directoryEntries } from '../../src/layer/source-directory.ts'
import { type XattrApi, xattrApi } from '../../src/layer/xattr.ts'
import { peer, which } from '../helpers/peers.ts'
import { tempDir } from '../helpers/tmp.ts'

/** The xattr module and a directory whose filesystem takes user xattrs, or why not. */
async function setup(t: import('node:test').TestContext): Promise<{ api: XattrApi; dir: string } | undefined> {
  const api = await xattrApi()
  const dir = await tempDir(t)
  let why: string | undefined
  if (!api) why = 'the optional fs-xattr module is not installed'
  else {
    await fs.writeFile(path.join(dir, 'probe'), '')
    await api.setAttribute(path.join(dir, 'probe'), 'user.probe', 'x').catch((e) => {
      why = `this filesystem takes no user xattrs (${(e as NodeJS.ErrnoException).code})`
    })
    await fs.rm(path.join(dir, 'probe'))
  }
  if (why) {
    if (process.env.CI === 'true') assert.fail(`xattr suite required under CI: ${why}`)
    t.skip(why)
    return undefined
  }
  return { api: api as XattrApi, dir }
}

async function tree(api: XattrApi, root: string): Promise<string> {
  const src = path.join(root, 'src')
  await fs.mkdir(path.join(src, 'etc'), { recursive: true })
  await fs.writeFile(path.join(src, 'etc/app.conf'), 'x=1\n')
  await fs.writeFile(path.join(src, 'plain.txt'), 'no attributes\n')
  await fs.symlink('plain.txt', path.join(src, 'link'))
  await api.setAttribute(path.join(src, 'etc/app.conf'), 'user.origin', 'built by ci')
  await api.setAttribute(path.join(src, 'etc/app.conf'), 'user.a-first', 'é') // sorted before user.origin
  await api.setAttribute(path.join(src, 'etc'), 'user.dir', 'yes')
  return src
}

test('xattrs: kept only when asked, as SCHILY.xattr PAX records that GNU tar and our apply restore', async (t) => {
  const s = await setup(t)
  if (!s) return
  const { api, dir } = s
  const src = await tree(api, dir)
  // Not asked for: no records, and the digest is the one of the same tree without attributes.
  const plain = await layerFromDirectory(src, { stagingDir: dir }).info()
  const bare = path.join(dir, 'bare')
  await fs.cp(src, bare, { recursive: true, verbatimSymlinks: true })
  for (const f of ['etc/app.conf', 'etc']) for (const n of api.listAttributesSync(path.join(bare, f))) api.removeAttributeSync(path.join(bare, f), n)
  assert.equal(plain.digest, (await layerFromDirectory(bare, { stagingDir: dir }).info()).digest)

  const file = path.join(dir, 'x.tar')
  await writeLayerFile(directoryEntries(src, { xattrs: true }), file, { compression: 'none' })
  const listed = new Map<string, string[] | undefined>()
  for await (const e of listLayerFile(file)) listed.set(e.path, e.xattrs)
  assert.deepEqual(listed.get('etc/app.conf'), ['user.a-first', 'user.origin'])
  assert.deepEqual(listed.get('etc'), ['user.dir'])
  assert.equal(listed.get('plain.txt'), undefined)
  assert.equal(listed.get('link'), undefined)

  const ours = path.join(dir, 'ours')
  const layer = layerFromDirectory(src, { xattrs: true, stagingDir: dir })
  await applyLayer(layer, ours)
  assert.equal(api.getAttributeSync(path.join(ours, 'etc/app.conf'), 'user.origin').toString(), 'built by ci')
  assert.equal(api.getAttributeSync(path.join(ours, 'etc/app.conf'), 'user.a-first').toString(), 'é')
  assert.equal(api.getAttributeSync(path.join(ours, 'etc'), 'user.dir').toString(), 'yes')
  assert.deepEqual(api.listAttributesSync(path.join(ours, 'plain.txt')), [])

  if (which('tar')) {
    const gnu = path.join(dir, 'gnu')
    await fs.mkdir(gnu)
    await peer('tar', ['--xattrs', '--xattrs-include=user.*', '-xf', file, '-C', gnu])
    assert.equal(api.getAttributeSync(path.join(gnu, 'etc/app.conf'), 'user.origin').toString(), 'built by ci')
    assert.equal(api.getAttributeSync(path.join(gnu, 'etc'), 'user.dir').toString(), 'yes')
  }
})

test('xattrs: a diff sees a change of attributes alone when asked to', async (t) => {
  const s = await setup(t)
  if (!s) return
  const { api, dir } = s
  const oldTree = await tree(api, path.join(dir, 'old'))
  const newTree = path.join(dir, 'new')
  await fs.cp(oldTree, newTree, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true })
  for (const f of ['etc/app.conf', 'etc'])
    for (const n of api.listAttributesSync(path.join(oldTree, f)))
      await api.setAttribute(path.join(newTree, f), n, api.getAttributeSync(path.join(oldTree, f), n))
  assert.equal((await layerFromDiff(oldTree, newTree, { xattrs: true, stagingDir: dir }).info()).empty, true)
  await api.setAttribute(path.join(newTree, 'etc/app.conf'), 'user.origin', 'changed')
  assert.equal((await layerFromDiff(oldTree, newTree, { stagingDir: dir }).info()).empty, true, 'not asked: attributes are not compared')
  const d = layerFromDiff(oldTree, newTree, { xattrs: true, stagingDir: dir })
  const info = await d.info()
  assert.equal(info.empty, false)
  const out = path.join(dir, 'applied')
  await fs.cp(oldTree, out, { recursive: true, verbatimSymlinks: true })
  await applyLayer(d, out)
  assert.equal(api.getAttributeSync(path.join(out, 'etc/app.conf'), 'user.origin').toString(), 'changed')
})

test('xattrs: binary values (not UTF-8) are restored byte for byte, also after GNU long names and big files', async (t) => {
  const s = await setup(t)
  if (!s) return
  const { api, dir } = s
  const bin = Buffer.from([0xff, 0x00, 0x80, 0xc3, 0x28, 0x0a, 0x3d, 0x20])
  const src = path.join(dir, 'src')
  const deep = path.join(src, 'd'.repeat(120), 'e'.repeat(120))
  await fs.mkdir(deep, { recursive: true })
  await fs.writeFile(path.join(deep, 'cap'), 'binary attribute\n')
  await fs.writeFile(path.join(src, 'big'), Buffer.alloc(3 * 512 + 7, 1))
  await fs.writeFile(path.join(src, 'z'), 'last\n')
  await api.setAttribute(path.join(deep, 'cap'), 'user.bin', bin)
  await api.setAttribute(path.join(src, 'big'), 'user.big', Buffer.from([0xfe, 0xfd]))
  await api.setAttribute(path.join(src, 'z'), 'user.text', 'plain')
  const file = path.join(dir, 'x.tar')
  await writeLayerFile(directoryEntries(src, { xattrs: true }), file, { compression: 'none' })
  const check = async (out: string) => {
    assert.deepEqual(api.getAttributeSync(path.join(out, path.relative(src, deep), 'cap'), 'user.bin'), bin)
    assert.deepEqual(api.getAttributeSync(path.join(out, 'big'), 'user.big'), Buffer.from([0xfe, 0xfd]))
    assert.equal(api.getAttributeSync(path.join(out, 'z'), 'user.text').toString(), 'plain')
  }
  const ours = path.join(dir, 'ours')
  await applyTar((await fs.open(file)).createReadStream(), ours)
  await check(ours)
  if (which('tar')) {
    // A GNU-format tar (long names as 'L' records, which this tap must step over) followed by ours.
    const gnuSrc = path.join(dir, 'gnu-src')
    await fs.mkdir(path.join(gnuSrc, 'f'.repeat(150)), { recursive: true })
    await fs.writeFile(path.join(gnuSrc, 'f'.repeat(150), 'g'.repeat(150)), 'x'.repeat(700))
    const gnuTar = path.join(dir, 'gnu.tar')
    await peer('tar', ['--format=gnu', '-cf', gnuTar, '-C', gnuSrc, '.'])
    const both = path.join(dir, 'both.tar')
    await fs.writeFile(both, Buffer.concat([await fs.readFile(gnuTar), await fs.readFile(file)]))
    const out = path.join(dir, 'both')
    await applyTar((await fs.open(both)).createReadStream(), out)
    assert.equal(await fs.readFile(path.join(out, 'f'.repeat(150), 'g'.repeat(150)), 'utf8'), 'x'.repeat(700))
    await check(out)
  }
})

test('xattrs: export keeps binary values byte for byte', async (t) => {
  const s = await setup(t)
  if (!s) return
  const { api, dir } = s
  const bin = Buffer.from([0xff, 0x00, 0x80, 0xc3, 0x28, 0x0a])
  const src = path.join(dir, 'src')
  await fs.mkdir(src)
  await fs.writeFile(path.join(src, 'cap'), 'binary attribute\n')
  await api.setAttribute(path.join(src, 'cap'), 'user.bin', bin)
  const img = await appendLayers(scratch(), [layerFromDirectory(src, { xattrs: true, stagingDir: dir, compression: 'none' })])
  const out = path.join(dir, 'out')
  await applyTar(exportImage(img), out)
  assert.deepEqual(api.getAttributeSync(path.join(out, 'cap'), 'user.bin'), bin)
})
