import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import * as ocikit from '../src/index.ts'
import { tempDir } from './helpers/tmp.ts'

test('the package entry gives library users the whole job: layers, images, stores, unpack', async (t) => {
  const dir = await tempDir(t)
  const layer = ocikit.layerFromFiles({ 'app/index.js': 'console.log(1)\n', 'app/run': { content: '#!/bin/sh\n', mode: 0o755 } })
  const img = await ocikit.editConfig(await ocikit.appendLayers(ocikit.scratch({ os: 'linux', architecture: 'amd64' }), [layer]), {
    cmd: ['node', '/app/index.js'],
  })
  const d = await ocikit.write(`oci:${dir}/layout:v1`, img)
  assert.equal(d.digest, await img.digest())
  const back = await ocikit.readImage(`oci:${dir}/layout:v1`)
  assert.deepEqual((await back.config()).config?.Cmd, ['node', '/app/index.js'])
  await ocikit.unpackImage(back, path.join(dir, 'rootfs'))
  assert.equal(await fs.readFile(path.join(dir, 'rootfs/app/index.js'), 'utf8'), 'console.log(1)\n')
  assert.equal(typeof ocikit.layerFromDirectory, 'function')
  assert.equal(typeof ocikit.setGarbageCollector, 'function')
  await layer.dispose()
})
