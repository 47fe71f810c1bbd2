/**
 * Parallel writers against the real registry (issue 19): eight processes push images that share
 * layers into one repository, then into eight (mounting from each other); every push completes
 * and every image pulls back whole.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { copy, fsck, read, write } from '../../src/api.ts'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import { layerFromFiles } from '../../src/layer/encode.ts'
import { ocikit } from '../helpers/cli.ts'
import { needPeers } from '../helpers/peers.ts'
import { startRegistry } from '../helpers/registry.ts'
import { tempDir } from '../helpers/tmp.ts'

const amd64 = { os: 'linux', architecture: 'amd64' }

describe('parallel pushes: real registry', needPeers('docker-registry'), () => {
  test('8 processes push images sharing two layers into one repository, then into 8 repositories: all complete, every image pulls', async (t) => {
    const r = await startRegistry(t)
    const dir = await tempDir(t)
    const shared = [layerFromFiles({ 'usr/lib/big.so': Buffer.alloc(400_000, 1) }), layerFromFiles({ 'etc/conf': 'shared\n' })]
    const digests: string[] = []
    for (let i = 0; i < 8; i++) {
      const img = await appendLayers(scratch(amd64), [...shared, layerFromFiles({ [`app/${i}.js`]: `console.log(${i})\n` })])
      await write(`oci:${dir}/src:i${i}`, img)
      digests.push(await img.digest())
    }
    const one = await Promise.all(digests.map((_, i) => ocikit(['copy', '-q', `oci:${dir}/src:i${i}`, `${r.host}/app:t${i}`])))
    for (const [i, x] of one.entries()) assert.equal(x.code, 0, `push ${i} into one repository: ${x.stderr}`)
    const many = await Promise.all(digests.map((_, i) => ocikit(['copy', '-q', `${r.host}/app:t${i}`, `${r.host}/app${i}:v1`])))
    for (const [i, x] of many.entries()) assert.equal(x.code, 0, `copy ${i} into its own repository: ${x.stderr}`)
    for (const [i, d] of digests.entries()) {
      for (const ref of [`app:t${i}`, `app${i}:v1`]) {
        assert.equal(await (await read(`${r.host}/${ref}`)).digest(), d, ref)
        await copy(`${r.host}/${ref}`, `oci:${dir}/back:${ref.replace(/[:]/g, '-')}`)
      }
    }
    assert.equal((await fsck(`oci:${dir}/back`)).ok, true)
  })
})
