import assert from 'node:assert/strict'
import { test } from 'node:test'
import { copy, fsck, read, readImage, write } from '../src/api.ts'
import { convert } from '../src/convert.ts'
import { isOcikitError } from '../src/errors.ts'
import { randomImage, randomIndex } from '../src/image/random.ts'
import type { Image } from '../src/image/types.ts'
import { tempDir } from './helpers/tmp.ts'

async function tars(img: Image): Promise<string[]> {
  const out: string[] = []
  for (const l of await img.layers()) {
    const chunks: Buffer[] = []
    for await (const c of await l.uncompressed()) chunks.push(c as Buffer)
    out.push(Buffer.concat(chunks).toString('base64'))
  }
  return out
}

test('a conversion that changes nothing keeps the very same image', async () => {
  const img = await randomImage({ seed: 1 })
  assert.equal(await convert(img, { format: 'oci', compression: 'gzip' }), img)
})

test('copy --compression zstd recompresses layers with the same diffIDs and content', async (t) => {
  const dir = await tempDir(t)
  const img = await randomImage({ seed: 2, layers: 2 })
  await write(`oci:${dir}:gz`, img)
  const d = await copy(`oci:${dir}:gz`, `oci:${dir}:zst`, { compression: 'zstd' })
  assert.notEqual(d.digest, await img.digest())
  const z = await readImage(`oci:${dir}:zst`)
  assert.deepEqual(
    (await z.manifest()).layers.map((l) => l.mediaType),
    ['application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar+zstd'],
  )
  assert.deepEqual((await z.config()).rootfs.diff_ids, (await img.config()).rootfs.diff_ids)
  assert.deepEqual(await tars(z), await tars(img))
  assert.equal((await fsck(`oci:${dir}`)).ok, true)
})

test('copy --format docker and back to oci', async (t) => {
  const dir = await tempDir(t)
  await write(`oci:${dir}:oci`, await randomImage({ seed: 3, layers: 1 }))
  await copy(`oci:${dir}:oci`, `oci:${dir}:docker`, { format: 'docker' })
  const dk = await readImage(`oci:${dir}:docker`)
  assert.equal(await dk.mediaType(), 'application/vnd.docker.distribution.manifest.v2+json')
  const m = await dk.manifest()
  assert.equal(m.config.mediaType, 'application/vnd.docker.container.image.v1+json')
  assert.equal(m.layers[0]?.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip')
  assert.equal(m.layers[0]?.digest, (await (await readImage(`oci:${dir}:oci`)).manifest()).layers[0]?.digest, 'same layer bytes, only the type changes')
  await copy(`oci:${dir}:docker`, `oci:${dir}:back`, { format: 'oci' })
  assert.equal(await (await readImage(`oci:${dir}:back`)).mediaType(), 'application/vnd.oci.image.manifest.v1+json')
  await assert.rejects(
    copy(`oci:${dir}:oci`, `oci:${dir}:bad`, { format: 'docker', compression: 'zstd' }),
    (e) => isOcikitError(e, 'NOT_SUPPORTED') && /Docker v2/.test(e.message),
  )
})

test('an index converts child by child', async (t) => {
  const dir = await tempDir(t)
  const idx = await randomIndex({ seed: 4, layers: 1 })
  await write(`oci:${dir}:idx`, idx)
  await copy(`oci:${dir}:idx`, `oci:${dir}:dk`, { format: 'docker' })
  const x = await read(`oci:${dir}:dk`)
  assert.equal(x.kind, 'index')
  const m = x.kind === 'index' ? await x.manifest() : undefined
  assert.equal(m?.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json')
  assert.deepEqual(
    m?.manifests.map((d) => d.platform?.architecture),
    ['amd64', 'arm64'],
  )
  assert.ok(m?.manifests.every((d) => d.mediaType === 'application/vnd.docker.distribution.manifest.v2+json'))
  assert.equal((await fsck(`oci:${dir}`)).ok, true)
})
