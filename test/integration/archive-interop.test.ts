/**
 * Archives with real peers: podman loads what ocikit writes (both kinds, with their tags) and
 * exports the files; skopeo reads them; ocikit reads what `podman save` (both formats) and
 * `skopeo copy … docker-archive:` write, seeing the same config digest and diffIDs as skopeo does.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, type TestContext, test } from 'node:test'
import { readImage, write } from '../../src/api.ts'
import { digestOf } from '../../src/digest.ts'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import { layerFromDirectory } from '../../src/layer/encode.ts'
import { needPeers, peer } from '../helpers/peers.ts'
import { tempDir } from '../helpers/tmp.ts'

/** podman with its own storage under `dir` (vfs: no overlay mounts needed). */
function podman(dir: string) {
  const root = path.join(dir, 'podman')
  const args = ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs']
  return (...a: string[]) => peer('podman', [...args, ...a])
}

async function appImage(t: TestContext) {
  const dir = await tempDir(t)
  const src = path.join(dir, 'src')
  await fs.mkdir(path.join(src, 'bin'), { recursive: true })
  await fs.writeFile(path.join(src, 'hello.txt'), 'hello from ocikit\n')
  await fs.writeFile(path.join(src, 'bin', 'run'), '#!/bin/sh\necho hi\n', { mode: 0o755 })
  const img = await appendLayers(scratch({ os: 'linux', architecture: 'amd64' }), [layerFromDirectory(src, { prefix: '/app' })])
  return { dir, img }
}

/** What skopeo sees in an archive: the config's digest and the diffIDs. */
async function skopeoView(name: string): Promise<{ config: string; diffIds: string[] }> {
  const raw = (await peer('skopeo', ['inspect', '--raw', name])).stdout
  const config = (await peer('skopeo', ['inspect', '--config', '--raw', name])).stdout
  assert.equal(JSON.parse(raw).config.digest, digestOf(config))
  return { config: digestOf(config), diffIds: JSON.parse(config).rootfs.diff_ids }
}

async function ocikitView(name: string): Promise<{ config: string; diffIds: string[] }> {
  const img = await readImage(name)
  return { config: digestOf(await img.rawConfig()), diffIds: (await img.config()).rootfs.diff_ids }
}

describe('archives: podman and skopeo', needPeers('podman', 'skopeo'), () => {
  test('podman loads our docker-archive and oci-archive with their tags, and exports the files', async (t) => {
    const { dir, img } = await appImage(t)
    const pod = podman(dir)
    await write(`docker-archive:${dir}/d.tar:ocikit/app:1`, img)
    await write(`oci-archive:${dir}/o.tar:v1`, img)
    // podman takes a name without a registry as localhost's
    assert.match((await pod('load', '-i', `${dir}/d.tar`)).stdout, /Loaded image: localhost\/ocikit\/app:1/)
    assert.match((await pod('load', '-i', `${dir}/o.tar`)).stdout, /Loaded image/)
    const images = (await pod('images', '--format', '{{.Repository}}:{{.Tag}}')).stdout
    assert.match(images, /localhost\/ocikit\/app:1/)
    const id = (await pod('create', 'localhost/ocikit/app:1', '/nothing')).stdout.trim()
    await pod('export', '-o', path.join(dir, 'fs.tar'), id)
    const listing = (await peer('tar', ['-tvf', path.join(dir, 'fs.tar')])).stdout
    assert.match(listing, /app\/hello\.txt/)
    assert.match(listing, /-rwxr-xr-x .* app\/bin\/run/)
  })

  test('skopeo reads what we write; we read what podman save and skopeo write, with the same config digest and diffIDs', async (t) => {
    const { dir, img } = await appImage(t)
    const want = { config: digestOf(await img.rawConfig()), diffIds: (await img.config()).rootfs.diff_ids }
    await write(`docker-archive:${dir}/d.tar:ocikit/app:1`, img)
    await write(`oci-archive:${dir}/o.tar:v1`, img)
    assert.deepEqual(await skopeoView(`docker-archive:${dir}/d.tar`), want)
    assert.deepEqual(await skopeoView(`oci-archive:${dir}/o.tar:v1`), want)
    // podman save, both formats, of the image it loaded from us; skopeo's own docker-archive.
    const pod = podman(dir)
    await pod('load', '-i', `${dir}/d.tar`)
    await pod('save', '--format', 'docker-archive', '-o', `${dir}/ps-d.tar`, 'localhost/ocikit/app:1')
    await pod('save', '--format', 'oci-archive', '-o', `${dir}/ps-o.tar`, 'localhost/ocikit/app:1')
    await peer('skopeo', ['copy', `oci-archive:${dir}/o.tar:v1`, `docker-archive:${dir}/sk-d.tar:skopeo/app:2`])
    for (const [ours, theirs] of [
      [`docker-archive:${dir}/ps-d.tar`, `docker-archive:${dir}/ps-d.tar`],
      [`docker-archive:${dir}/ps-d.tar:localhost/ocikit/app:1`, `docker-archive:${dir}/ps-d.tar`],
      [`oci-archive:${dir}/ps-o.tar`, `oci-archive:${dir}/ps-o.tar`],
      [`docker-archive:${dir}/sk-d.tar:skopeo/app:2`, `docker-archive:${dir}/sk-d.tar`],
    ] as const) {
      const v = await ocikitView(ours)
      assert.deepEqual(v, await skopeoView(theirs), ours)
      assert.deepEqual(v.diffIds, want.diffIds, `${ours}: the layers are the ones we wrote`)
    }
  })
})

describe('archives: to a registry', needPeers('docker-registry'), () => {
  test('a docker-archive copied to a registry has its layers gzip-compressed, and the copy says so; config and diffIDs stay', async (t) => {
    const { startRegistry } = await import('../helpers/registry.ts')
    const { copy } = await import('../../src/api.ts')
    const r = await startRegistry(t)
    const { dir, img } = await appImage(t)
    await write(`docker-archive:${dir}/d.tar:app:1`, img)
    const notices: string[] = []
    await copy(`docker-archive:${dir}/d.tar:app:1`, `${r.host}/app:1`, { onNotice: (m) => notices.push(m) })
    assert.match(notices.join('\n'), /uncompressed tars; compressing them with gzip/)
    const pushed = await readImage(`${r.host}/app:1`)
    assert.ok((await pushed.manifest()).layers.every((l) => l.mediaType.endsWith('gzip')))
    assert.deepEqual(await ocikitView(`${r.host}/app:1`), await ocikitView(`docker-archive:${dir}/d.tar:app:1`))
    // Asked for by name, the compression is kept as asked, without a notice.
    notices.length = 0
    await copy(`docker-archive:${dir}/d.tar:app:1`, `${r.host}/app:z`, { compression: 'zstd', format: 'oci', onNotice: (m) => notices.push(m) })
    assert.deepEqual(notices, [])
    assert.ok((await (await readImage(`${r.host}/app:z`)).manifest()).layers.every((l) => l.mediaType.endsWith('zstd')))
  })
})
