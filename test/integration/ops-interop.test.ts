/**
 * The image operations from the command line on a real registry, checked by skopeo and podman:
 * mutate's config as skopeo reads it; a rebase within the registry that downloads no layer, and
 * podman's export of it (the new base's files and the image's own); flatten's export equal to
 * the original's. Bad input writes nothing.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { write } from '../../src/api.ts'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import { layerFromFiles } from '../../src/layer/encode.ts'
import { ocikit } from '../helpers/cli.ts'
import { needPeers, peer, podmanExport } from '../helpers/peers.ts'
import { startRegistry } from '../helpers/registry.ts'
import { tempDir } from '../helpers/tmp.ts'

const amd64 = { os: 'linux', architecture: 'amd64' }

/** podman's export of an image, as a sorted list of `path size` lines (directories and owners aside). */
async function exported(dir: string, name: string): Promise<string[]> {
  const out = await podmanExport(dir, name)
  const listing = (await peer('tar', ['-tvf', out])).stdout.split('\n').filter((l) => l && !l.startsWith('d'))
  return listing.map((l) => l.split(/\s+/).slice(2, 3).concat(l.split(/\s+/).slice(5)).join(' ')).sort()
}

describe('image operations: real registry, skopeo and podman', needPeers('docker-registry', 'skopeo', 'podman'), () => {
  test('mutate, rebase (no layer downloaded), flatten and optimize, as skopeo and podman see them', async (t) => {
    const r = await startRegistry(t)
    const dir = await tempDir(t)
    const reg = (n: string) => `${r.host}/${n}`
    const base1 = await appendLayers(scratch(amd64), [layerFromFiles({ 'etc/os-release': 'ID=one\n', 'usr/lib/libone.so': 'one' })])
    const base2 = await appendLayers(scratch(amd64), [layerFromFiles({ 'etc/os-release': 'ID=two\n', 'usr/lib/libtwo.so': 'two' })])
    const app = await appendLayers(base1, [layerFromFiles({ 'app/main.js': 'console.log(1)\n' }), layerFromFiles({ 'app/data/x': 'x' })])
    await write(reg('base:1'), base1)
    await write(reg('base:2'), base2)
    await write(reg('app:1'), app)

    const m = await ocikit([
      'mutate',
      reg('app:1'),
      '--to',
      reg('app:mutated'),
      '--env',
      'MODE=prod',
      '--label',
      'team=core',
      '--cmd',
      '["node","/app/main.js"]',
    ])
    assert.equal(m.code, 0, m.stderr)
    const cfg = JSON.parse((await peer('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${reg('app:mutated')}`])).stdout)
    assert.ok(cfg.config.Env.includes('MODE=prod'))
    assert.deepEqual(cfg.config.Labels, { team: 'core' })
    assert.deepEqual(cfg.config.Cmd, ['node', '/app/main.js'])

    const reb = await ocikit(['rebase', reg('app:1'), '--old-base', reg('base:1'), '--new-base', reg('base:2'), '--to', reg('app:rebased'), '--json'])
    assert.equal(reb.code, 0, reb.stderr)
    // Only the new config is sent: every layer was already there or mounted, so none was read.
    assert.deepEqual([JSON.parse(reb.stdout).written, JSON.parse(reb.stdout).skipped], [1, 3])
    const files = await exported(dir, reg('app:rebased'))
    assert.ok(
      files.some((f) => f.endsWith('usr/lib/libtwo.so')),
      files.join('\n'),
    )
    assert.ok(!files.some((f) => f.endsWith('usr/lib/libone.so')))
    assert.ok(files.some((f) => f.endsWith('app/main.js')) && files.some((f) => f.endsWith('app/data/x')))

    // The rebased image records its base: --new-base alone takes it back, by the recorded digest.
    const back = await ocikit(['rebase', reg('app:rebased'), '--new-base', reg('base:1'), '--to', reg('app:back')])
    assert.equal(back.code, 0, back.stderr)
    const backFiles = await exported(dir, reg('app:back'))
    assert.ok(backFiles.some((f) => f.endsWith('usr/lib/libone.so')) && !backFiles.some((f) => f.endsWith('usr/lib/libtwo.so')))
    const noBase = await ocikit(['rebase', reg('app:1'), '--new-base', reg('base:2'), '--to', reg('app:x')])
    assert.equal(noBase.code, 1)
    assert.match(noBase.stderr, /records no base .*give --old-base/)

    const flat = await ocikit(['flatten', reg('app:1'), '--to', reg('app:flat')])
    assert.equal(flat.code, 0, flat.stderr)
    const layers = JSON.parse((await peer('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg('app:flat')}`])).stdout).layers
    assert.equal(layers.length, 1)
    assert.deepEqual(await exported(dir, reg('app:flat')), await exported(dir, reg('app:1')))

    const opt = await ocikit(['optimize', reg('app:1'), '--to', reg('app:opt')])
    assert.equal(opt.code, 0, opt.stderr)
    assert.match(opt.stdout, /nothing to remove/)
  })

  test('bad input: an OLD that is not the base, an unknown platform, a bad env name: clear errors, nothing written', async (t) => {
    const dir = await tempDir(t)
    const other = await appendLayers(scratch(amd64), [layerFromFiles({ 'x/y': 'z' })])
    const app = await appendLayers(scratch(amd64), [layerFromFiles({ 'a/b': 'c' })])
    await write(`oci:${dir}/l:app`, app)
    await write(`oci:${dir}/l:other`, other)
    const before = await fs.readFile(path.join(dir, 'l', 'index.json'), 'utf8')
    const cases: [string[], RegExp, number][] = [
      [
        ['rebase', `oci:${dir}/l:app`, '--old-base', `oci:${dir}/l:other`, '--new-base', `oci:${dir}/l:other`, '--to', `oci:${dir}/l:bad`],
        /is not the base of/,
        1,
      ],
      [['mutate', `oci:${dir}/l:app`, '--to', `oci:${dir}/l:bad`, '--env', 'NO SPACE=1'], /env 'NO SPACE=1'/, 1],
      [
        ['flatten', `oci:${dir}/l:app`, '--to', `oci:${dir}/l:bad`, '--platform', 'linux/arm64'],
        /no image for platform linux\/arm64; available: linux\/amd64/,
        1,
      ],
      [['optimize', `oci:${dir}/l:app`, '--to', `oci:${dir}/l:bad`, '--platform', 'linux/nope'], /unknown architecture 'nope'/, 2],
      [['mutate', `oci:${dir}/l:app`, '--to', `oci:${dir}/l:bad`], /nothing to change/, 1],
    ]
    for (const [args, re, code] of cases) {
      const res = await ocikit(args)
      assert.equal(res.code, code, args.join(' '))
      assert.match(res.stderr, re, args.join(' '))
    }
    assert.equal(await fs.readFile(path.join(dir, 'l', 'index.json'), 'utf8'), before, 'no tag was written')
  })
})
