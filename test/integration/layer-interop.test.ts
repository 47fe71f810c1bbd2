/**
 * Layers against real peers: GNU tar, bsdtar and node-tar read what ocikit writes; umoci
 * unpacks images carrying ocikit layers (whiteouts included) to the same tree; and ocikit
 * unpacks an image umoci made to the same tree umoci does.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import * as nodeTar from 'tar'
import { readImage, write } from '../../src/api.ts'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import { unpackImage } from '../../src/layer/apply.ts'
import { layerFromDiff, layerFromDirectory, writeLayerFile } from '../../src/layer/encode.ts'
import { directoryEntries } from '../../src/layer/source-directory.ts'
import { needPeers, peer } from '../helpers/peers.ts'
import { tempDir } from '../helpers/tmp.ts'
import { describeTree, edgeTree, genTree } from '../helpers/tree.ts'

async function sourceTrees(root: string): Promise<string[]> {
  const edge = path.join(root, 'edge')
  const bench = path.join(root, 'bench')
  await edgeTree(edge)
  await genTree(bench, 3)
  return [edge, bench]
}

describe('tar readers', needPeers('tar', 'bsdtar', 'gzip', 'zstd'), () => {
  test('GNU tar and bsdtar extract our gzip and zstd layers to the same tree; gzip -t and zstd -t pass', async (t) => {
    const root = await tempDir(t)
    for (const src of await sourceTrees(root)) {
      const want = await describeTree(src)
      const gz = `${src}.tar.gz`
      const zst = `${src}.tar.zst`
      await writeLayerFile(directoryEntries(src), gz)
      await writeLayerFile(directoryEntries(src), zst, { compression: 'zstd' })
      await peer('gzip', ['-t', gz])
      await peer('zstd', ['-q', '-t', zst])
      for (const [name, args] of [
        ['gnu-gz', ['tar', '-xzpf', gz]],
        ['gnu-zst', ['tar', '--zstd', '-xpf', zst]],
        ['bsd-gz', ['bsdtar', '-xpf', gz]],
      ] as const) {
        const out = `${src}-${name}`
        await fs.mkdir(out)
        await peer(args[0], [...args.slice(1), '-C', out])
        assert.deepEqual(await describeTree(out), want, `${path.basename(src)} via ${name}`)
      }
    }
  })
})

test('node-tar reads our layers: names, types, contents and link targets', async (t) => {
  const root = await tempDir(t)
  for (const src of await sourceTrees(root)) {
    const gz = `${src}.tar.gz`
    await writeLayerFile(directoryEntries(src), gz)
    const out = `${src}-node-tar`
    await fs.mkdir(out)
    // preservePaths keeps absolute symlink targets as written (node-tar strips the '/' otherwise).
    await nodeTar.x({ file: gz, cwd: out, preserveOwner: false, preservePaths: true })
    // node-tar does not create FIFOs, so they are left out of this comparison.
    const strip = (tree: Awaited<ReturnType<typeof describeTree>>) =>
      Object.fromEntries(
        Object.entries(tree)
          .filter(([, v]) => v.type !== 'fifo')
          .map(([k, v]) => [k, { type: v.type, sha256: v.sha256, target: v.target, linkGroup: v.linkGroup }]),
      )
    assert.deepEqual(strip(await describeTree(out)), strip(await describeTree(src)), path.basename(src))
  }
})

describe('umoci', needPeers('umoci'), () => {
  test('an image carrying ocikit layers, a diff layer among them, unpacks with umoci to the same tree', async (t) => {
    const root = await tempDir(t)
    const [edge = '', bench = ''] = await sourceTrees(root)
    // A second version of the bench tree: some files deleted, one directory replaced, one added.
    const next = path.join(root, 'bench-next')
    await fs.cp(bench, next, { recursive: true, verbatimSymlinks: true })
    const top = (await fs.readdir(next)).sort()
    await fs.rm(path.join(next, top[0] as string), { recursive: true })
    await fs.writeFile(path.join(next, 'added.txt'), 'new file\n')
    const img = await appendLayers(scratch({ os: 'linux', architecture: 'amd64' }), [
      layerFromDirectory(edge, { prefix: '/edge' }),
      // umoci 0.4.7 (Debian) refuses zstd layers, so this image uses gzip throughout.
      layerFromDirectory(bench, { prefix: '/app' }),
      layerFromDiff(bench, next, { prefix: '/app' }),
    ])
    const layout = path.join(root, 'layout')
    await write(`oci:${layout}:v1`, img)
    const bundle = path.join(root, 'bundle')
    await peer('umoci', ['unpack', '--image', `${layout}:v1`, bundle])
    assert.deepEqual(await describeTree(path.join(bundle, 'rootfs', 'edge')), await describeTree(edge))
    assert.deepEqual(await describeTree(path.join(bundle, 'rootfs', 'app')), await describeTree(next))
    // and ocikit unpacks its own image to the same trees
    const ours = path.join(root, 'ours')
    await unpackImage(await readImage(`oci:${layout}:v1`), ours)
    assert.deepEqual(await describeTree(path.join(ours, 'app')), await describeTree(next))
  })

  test('ocikit unpack of an image umoci made gives the same tree as umoci unpack', async (t) => {
    const root = await tempDir(t)
    const [edge = '', bench = ''] = await sourceTrees(root)
    const layout = path.join(root, 'umoci')
    await peer('umoci', ['init', '--layout', layout])
    await peer('umoci', ['new', '--image', `${layout}:img`])
    await peer('umoci', ['insert', '--image', `${layout}:img`, bench, '/app'])
    await peer('umoci', ['insert', '--image', `${layout}:img`, edge, '/edge'])
    await peer('umoci', ['insert', '--image', `${layout}:img`, '--whiteout', '/app/node_modules'])
    const bundle = path.join(root, 'bundle')
    await peer('umoci', ['unpack', '--image', `${layout}:img`, bundle])
    const ours = path.join(root, 'ours')
    await unpackImage(await readImage(`oci:${layout}:img`), ours)
    const theirs = await describeTree(path.join(bundle, 'rootfs'))
    assert.ok(!Object.keys(theirs).some((k) => k.startsWith('app/node_modules')), 'the whiteout took effect')
    assert.deepEqual(await describeTree(ours), theirs)
  })
})
