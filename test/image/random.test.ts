import assert from 'node:assert/strict'
import { test } from 'node:test'
import tarStream from 'tar-stream'
import { randomImage, randomIndex } from '../../src/image/random.ts'

test('randomImage with a seed is reproducible, without one it is not', async () => {
  const a = await randomImage({ seed: 7 })
  const b = await randomImage({ seed: 7 })
  const c = await randomImage()
  assert.equal(await a.digest(), await b.digest())
  assert.notEqual(await a.digest(), await c.digest())
})

test('randomImage layers are real tars whose diff IDs match the config', async () => {
  const img = await randomImage({ layers: 2, layerSize: 300, filesPerLayer: 2, compression: 'zstd' })
  const layers = await img.layers()
  assert.equal(layers.length, 2)
  assert.equal(layers[0]?.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd')
  const names: string[] = []
  const extract = tarStream.extract()
  extract.on('entry', (h, s, next) => {
    names.push(h.name)
    s.resume()
    s.on('end', next)
  })
  const u = await (layers[1] as NonNullable<(typeof layers)[1]>).uncompressed()
  u.pipe(extract)
  await new Promise<void>((r) => extract.on('finish', () => r()))
  assert.deepEqual(names, ['random/', 'random/layer1-file0', 'random/layer1-file1'])
  assert.equal(await layers[0]?.diffId(), (await img.config()).rootfs.diff_ids[0])
})

test('views hand out copies that cannot change the view', async () => {
  const img = await randomImage({ seed: 1 })
  const m = await img.manifest()
  m.layers.pop()
  assert.equal((await img.manifest()).layers.length, 3)
  const idx = await randomIndex({ seed: 1 })
  const im = await idx.manifest()
  im.manifests.length = 0
  assert.equal((await idx.manifest()).manifests.length, 2)
  assert.equal(JSON.parse(Buffer.from(await idx.rawManifest()).toString()).manifests.length, 2)
})
