/**
 * Interop of the OCI layout store with real peers: layouts ocikit writes are read by skopeo,
 * umoci and oci-image-tool; layouts skopeo and umoci write are read by ocikit, byte for byte.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { fsck, list, read, readImage, write } from '../../src/api.ts'
import { randomImage, randomIndex } from '../../src/image/random.ts'
import type { Image } from '../../src/image/types.ts'
import { needPeers, peer } from '../helpers/peers.ts'
import { tempDir } from '../helpers/tmp.ts'

/** Reads every layer's uncompressed stream, which verifies blob digests and diff IDs. */
async function readAllLayers(img: Image): Promise<number> {
  let n = 0
  for (const l of await img.layers()) {
    for await (const c of await l.uncompressed()) n += (c as Buffer).length
  }
  return n
}

describe('layouts written by ocikit, read by peers', needPeers('skopeo', 'umoci', 'oci-image-tool'), () => {
  test('skopeo inspect and copy, umoci ls and unpack, oci-image-tool validate', async (t) => {
    const root = await tempDir(t)
    const dir = path.join(root, 'layout')
    const img = await randomImage({ seed: 31, layers: 3, filesPerLayer: 2 })
    const idx = await randomIndex({ seed: 32, layers: 1 })
    await write(`oci:${dir}:v1`, img)
    await write(`oci:${dir}:multi`, idx)

    const inspected = JSON.parse((await peer('skopeo', ['inspect', `oci:${dir}:v1`])).stdout)
    assert.equal(inspected.Digest, await img.digest())
    assert.equal(inspected.Layers.length, 3)
    const raw = (await peer('skopeo', ['inspect', '--raw', `oci:${dir}:multi`])).stdout
    assert.equal(raw, Buffer.from(await idx.rawManifest()).toString())

    await peer('skopeo', ['copy', `oci:${dir}:v1`, `oci:${root}/skopeo-copy:v1`])
    assert.equal(await (await read(`oci:${root}/skopeo-copy:v1`)).digest(), await img.digest())
    await peer('skopeo', ['copy', '--all', `oci:${dir}:multi`, `oci:${root}/skopeo-copy:multi`])
    assert.equal(await (await read(`oci:${root}/skopeo-copy:multi`)).digest(), await idx.digest())

    const tags = (await peer('umoci', ['ls', '--layout', dir])).stdout.trim().split('\n').sort()
    assert.deepEqual(tags, ['multi', 'v1'])
    const bundle = path.join(root, 'bundle')
    await peer('umoci', ['unpack', '--rootless', '--image', `${dir}:v1`, bundle])
    const files = (await fs.readdir(path.join(bundle, 'rootfs', 'random'))).sort()
    assert.deepEqual(files, ['layer0-file0', 'layer0-file1', 'layer1-file0', 'layer1-file1', 'layer2-file0', 'layer2-file1'])

    const v = await peer('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=v1', dir])
    assert.match(v.stdout + v.stderr, /Validation succeeded/)
  })
})

describe('layouts written by peers, read by ocikit', needPeers('skopeo', 'umoci'), () => {
  test('a layout made by umoci (init, new, insert) reads with the same digests and verified layers', async (t) => {
    const root = await tempDir(t)
    const dir = path.join(root, 'umoci')
    await peer('umoci', ['init', '--layout', dir])
    await peer('umoci', ['new', '--image', `${dir}:base`])
    const content = path.join(root, 'content')
    await fs.mkdir(path.join(content, 'etc'), { recursive: true })
    await fs.writeFile(path.join(content, 'etc', 'hello.txt'), 'hello from umoci\n')
    await peer('umoci', ['insert', '--rootless', '--image', `${dir}:base`, '--tag', 'app', content, '/'])
    await peer('umoci', ['config', '--image', `${dir}:app`, '--config.env', 'A=1', '--config.cmd', '/bin/true'])

    const theirs = JSON.parse((await peer('skopeo', ['inspect', `oci:${dir}:app`])).stdout)
    const img = await readImage(`oci:${dir}:app`)
    assert.equal(await img.digest(), theirs.Digest)
    const cfg = await img.config()
    assert.ok(cfg.config?.Env?.includes('A=1'))
    assert.deepEqual(cfg.config?.Cmd, ['/bin/true'])
    assert.equal((await img.layers()).length, theirs.Layers.length)
    assert.ok((await readAllLayers(img)) > 0)
    const raw = (await peer('skopeo', ['inspect', '--raw', `oci:${dir}:app`])).stdout
    assert.equal(Buffer.from(await img.rawManifest()).toString(), raw)
    assert.deepEqual((await list(`oci:${dir}`)).map((e) => e.tag).sort(), ['app', 'base'])
    assert.equal((await fsck(`oci:${dir}`)).ok, true)
  })

  test('layouts made by skopeo (OCI with zstd, and Docker v2s2 media types) read with the same digests', async (t) => {
    const root = await tempDir(t)
    const src = path.join(root, 'src')
    await write(`oci:${src}:v1`, await randomImage({ seed: 41, layers: 2 }))
    const zstd = path.join(root, 'zstd')
    await peer('skopeo', ['copy', '--dest-compress-format', 'zstd', `oci:${src}:v1`, `oci:${zstd}:z`])
    const docker = path.join(root, 'docker')
    await peer('skopeo', ['copy', '--format', 'v2s2', `oci:${src}:v1`, `oci:${docker}:d`])
    for (const [dir, tag, mediaType] of [
      [zstd, 'z', 'application/vnd.oci.image.layer.v1.tar+zstd'],
      [docker, 'd', 'application/vnd.docker.image.rootfs.diff.tar.gzip'],
    ] as const) {
      // skopeo 1.9 cannot read back a Docker-typed manifest from a layout, so take the digest from the index.json it wrote.
      const theirs = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8')).manifests[0]
      const name = `oci:${dir}:${tag}`
      const img = await readImage(name)
      assert.equal(await img.digest(), theirs.digest, name)
      assert.equal(await img.mediaType(), theirs.mediaType)
      const layers = await img.layers()
      assert.equal(layers[0]?.mediaType, mediaType)
      assert.ok((await readAllLayers(img)) > 0)
      assert.equal((await fsck(name)).ok, true)
    }
  })
})
