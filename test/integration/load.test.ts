/**
 * Load (issue 19), the short version: ten images of twenty random layers pushed at once to the
 * real docker-registry from one process, then pulled back at once into one layout. Every pull
 * names the image pushed, and the layout is fsck-clean. `node bench/load.ts` runs 10, 50 and 200
 * images, each phase in a process of its own, with time and peak memory (docs/reliability.md).
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { copy, fsck, list, write } from '../../src/api.ts'
import { randomImage } from '../../src/image/random.ts'
import { needPeers } from '../helpers/peers.ts'
import { startRegistry } from '../helpers/registry.ts'
import { tempDir } from '../helpers/tmp.ts'

const IMAGES = 10
const registry = { backoffMs: 20 }

test(`${IMAGES} images of 20 layers pushed at once, then pulled at once into one layout`, needPeers('docker-registry'), async (t) => {
  const r = await startRegistry(t)
  const dir = await tempDir(t)
  const src = path.join(dir, 'src')
  const tags = Array.from({ length: IMAGES }, (_, i) => `i${i}`)
  const digests: string[] = []
  for (const [i, tag] of tags.entries()) {
    const img = await randomImage({ seed: 700 + i, layers: 20, layerSize: 20_000, compression: 'none' })
    digests.push(await img.digest())
    await write(`oci:${src}:${tag}`, img)
  }
  await Promise.all(tags.map((tag) => copy(`oci:${src}:${tag}`, `${r.host}/load/app:${tag}`, { registry })))
  await Promise.all(tags.map((tag) => copy(`${r.host}/load/app:${tag}`, `oci:${dir}/dst:${tag}`, { registry })))
  const got = new Map((await list(`oci:${dir}/dst`)).map((e) => [e.tag, e.descriptor.digest]))
  assert.deepEqual(
    tags.map((tag) => got.get(tag)),
    digests,
  )
  const report = await fsck(`oci:${dir}/dst`)
  assert.equal(report.ok, true, JSON.stringify(report.problems))
  assert.equal(report.reachable, IMAGES * 22, 'every layer, config and manifest is there')
})
