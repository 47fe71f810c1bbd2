/**
 * build(): a Node.js project in three layers, reproducible across runs and paths, incremental
 * through the layer cache (asserted by its counters), --omit-dev, diffs, file maps, prebuilt
 * layers, multi-platform bases, the config flags; bad input fails before anything is written.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { read, write } from '../../src/api.ts'
import { build, buildImage } from '../../src/build/build.ts'
import { LayerCache } from '../../src/build/cache.ts'
import { isOcikitError } from '../../src/errors.ts'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import { randomIndex } from '../../src/image/random.ts'
import type { Image, Layer } from '../../src/image/types.ts'
import { layerFromFiles, writeLayerFile } from '../../src/layer/encode.ts'
import { listTar } from '../../src/layer/read.ts'
import { fileMapEntries } from '../../src/layer/source-files.ts'
import { NODE_APP, writeNodeApp } from '../helpers/node-app.ts'
import { tempDir } from '../helpers/tmp.ts'

async function paths(l: Layer): Promise<string[]> {
  const out: string[] = []
  for await (const e of listTar(await l.uncompressed())) out.push(e.type === 'symlink' ? `${e.path} -> ${e.linkname}` : e.path)
  return out
}

async function layersOf(name: string): Promise<Layer[]> {
  const x = await read(name)
  assert.equal(x.kind, 'image')
  return (x as Image).layers()
}

describe('build', () => {
  test('a Node.js project: dependencies, local packages and application layers, the node command, NODE_ENV and source labels', async (t) => {
    const dir = await tempDir(t)
    const app = path.join(dir, 'app')
    await writeNodeApp(app)
    const out = `oci:${path.join(dir, 'out')}:dev`
    const r = await build({ context: app, to: [out] }, { cache: new LayerCache(path.join(dir, 'cache')) })
    assert.deepEqual(
      r.layers.map((l) => l.label),
      ['dependencies', 'local packages', 'application'],
    )
    const [deps, local, appLayer] = (await layersOf(out)) as [Layer, Layer, Layer]
    const d = await paths(deps)
    assert.ok(d.includes(`app/${NODE_APP.prod}/index.js`))
    assert.ok(d.includes(`app/${NODE_APP.dev[1]}/package.json`), 'dev packages are in without --omit-dev')
    assert.ok(d.includes(`app/${NODE_APP.prodBin} -> ../left-pad/cli.js`), '.bin links stay links')
    assert.ok(!d.some((p) => p.startsWith(`app/${NODE_APP.link}`)), 'the workspace link is not a dependency')
    assert.ok(!d.some((p) => p.startsWith('app/server.js') || p.startsWith('app/packages/util/index.js')))
    const l = await paths(local)
    assert.deepEqual(l, [
      'app',
      'app/node_modules',
      'app/node_modules/@app',
      `app/${NODE_APP.link} -> ../../packages/util`,
      'app/packages',
      'app/packages/util',
      'app/packages/util/index.js',
      'app/packages/util/package.json',
    ])
    const a = await paths(appLayer)
    assert.deepEqual(a, ['app', 'app/lib', 'app/lib/routes.js', 'app/package-lock.json', 'app/package.json', 'app/server.js'])
    const cfg = await ((await read(out)) as Image).config()
    assert.deepEqual(cfg.config?.Cmd, ['node', '/app/server.js'])
    assert.equal(cfg.config?.WorkingDir, '/app')
    assert.ok(cfg.config?.Env?.includes('NODE_ENV=production'))
    assert.equal(cfg.config?.Labels?.['org.opencontainers.image.title'], 'demo-app')
    assert.equal(cfg.config?.Labels?.['org.opencontainers.image.version'], '2.1.0')
    assert.equal(cfg.config?.Labels?.['org.opencontainers.image.licenses'], 'Apache-2.0')
    assert.deepEqual(
      cfg.history?.map((h) => h.created_by),
      ['ocikit build: dependencies', 'ocikit build: local packages', 'ocikit build: application'],
    )
    const m = await ((await read(out)) as Image).manifest()
    assert.equal(m.annotations?.['org.opencontainers.image.title'], 'demo-app')
  })

  test('a start script that is just `node FILE` gives the command; --cmd and --entrypoint override it', async (t) => {
    const dir = await tempDir(t)
    await writeNodeApp(dir, { start: 'script' })
    const p = await buildImage({ context: dir }, { cache: false })
    assert.deepEqual(p.command, ['node', '/app/server.js'])
    const q = await buildImage({ context: dir, config: { entrypoint: ['/usr/bin/tini', '--', 'node', 'x.js'] } }, { cache: false })
    assert.deepEqual(q.command, ['/usr/bin/tini', '--', 'node', 'x.js'])
    const r = await buildImage({ context: dir, config: { cmd: ['node', '--enable-source-maps', 'server.js'] } }, { cache: false })
    assert.deepEqual(r.command, ['node', '--enable-source-maps', 'server.js'])
  })
  test('--format docker gives a Docker v2 manifest, and a notice when it goes into an OCI layout', async (t) => {
    const dir = await tempDir(t)
    await fs.mkdir(path.join(dir, 'ctx'))
    await fs.writeFile(path.join(dir, 'ctx', 'x'), 'x')
    const notices: string[] = []
    const r = await build({ context: path.join(dir, 'ctx'), to: [`oci:${dir}/out:1`], format: 'docker' }, { cache: false, onNotice: (m) => notices.push(m) })
    assert.equal(r.mediaType, 'application/vnd.docker.distribution.manifest.v2+json')
    assert.equal(notices.length, 1)
    assert.match(notices[0] as string, /skopeo and podman do not read .*--format oci/)
    const oci = await build({ context: path.join(dir, 'ctx'), to: [`oci:${dir}/out:2`] }, { cache: false, onNotice: (m) => notices.push(m) })
    assert.equal(oci.mediaType, 'application/vnd.oci.image.manifest.v1+json')
    assert.equal(notices.length, 1, 'no notice for an OCI image')
  })
  test('no node_modules: one application layer; a notice only when package.json names dependencies', async (t) => {
    const dir = await tempDir(t)
    await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'bare', main: 'index.js' }))
    await fs.writeFile(path.join(dir, 'index.js'), 'console.log(1)\n')
    const notices: string[] = []
    const p = await buildImage({ context: dir }, { cache: false, onNotice: (m) => notices.push(m) })
    assert.deepEqual(await Promise.all(p.layers.map(async (l) => (await paths(l)).join(','))), ['app,app/index.js,app/package.json'])
    assert.equal(notices.length, 0, notices.join('; '))
    await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'bare', main: 'index.js', dependencies: { 'left-pad': '1.3.0' } }))
    await buildImage({ context: dir }, { cache: false, onNotice: (m) => notices.push(m) })
    assert.equal(notices.length, 1)
    assert.match(notices[0] as string, /has no node_modules: .*npm ci/)
  })

  test('--omit-dev leaves out exactly the packages the lockfile marks dev, and the .bin links into them', async (t) => {
    const dir = await tempDir(t)
    await writeNodeApp(dir)
    const p = await buildImage({ context: dir, omitDev: true }, { cache: false })
    const d = await paths(p.layers[0] as Layer)
    for (const dev of NODE_APP.dev) assert.ok(!d.some((x) => x.startsWith(`app/${dev}`)), `${dev} left out`)
    assert.ok(!d.some((x) => x.startsWith(`app/${NODE_APP.devBin}`)), 'its .bin link left out')
    assert.ok(d.includes(`app/${NODE_APP.prod}/index.js`))
    assert.ok(d.includes(`app/${NODE_APP.prodBin} -> ../left-pad/cli.js`))
    assert.deepEqual(p.project?.omitted, [...NODE_APP.dev])
  })

  test('--omit-dev on a yarn tree (no npm lockfile): the packages only dev dependencies reach are left out, with their .bin links', async (t) => {
    const dir = await tempDir(t)
    await writeNodeApp(dir)
    await fs.rm(path.join(dir, 'package-lock.json'))
    await fs.writeFile(path.join(dir, 'yarn.lock'), '# yarn lockfile v1\n')
    const p = await buildImage({ context: dir, omitDev: true }, { cache: false })
    assert.equal(p.project?.manager, 'yarn')
    const d = await paths(p.layers[0] as Layer)
    for (const dev of NODE_APP.dev) assert.ok(!d.some((x) => x.startsWith(`app/${dev}`)), `${dev} left out`)
    assert.ok(!d.some((x) => x.startsWith(`app/${NODE_APP.devBin}`)), 'its .bin link left out')
    assert.ok(d.includes(`app/${NODE_APP.prod}/index.js`))
    assert.ok(d.includes(`app/${NODE_APP.prodBin} -> ../left-pad/cli.js`))
  })

  test('--omit-dev on a pnpm tree: the links and the .pnpm store entries of dev-only packages go, a production package’s own dependencies stay', async (t) => {
    const dir = await tempDir(t)
    const put = async (rel: string, content: string) => {
      await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true })
      await fs.writeFile(path.join(dir, rel), content)
    }
    const link = async (rel: string, target: string) => {
      await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true })
      await fs.symlink(target, path.join(dir, rel))
    }
    const store = 'node_modules/.pnpm'
    await put('package.json', JSON.stringify({ name: 'p', main: 'index.js', dependencies: { 'left-pad': '1' }, devDependencies: { 'mocha-ish': '9' } }))
    await put('pnpm-lock.yaml', "lockfileVersion: '9.0'\n")
    await put('index.js', "require('left-pad')\n")
    await put(
      `${store}/left-pad@1.3.0/node_modules/left-pad/package.json`,
      JSON.stringify({ name: 'left-pad', version: '1.3.0', dependencies: { common: '1' } }),
    )
    await link(`${store}/left-pad@1.3.0/node_modules/common`, '../../common@1.0.0/node_modules/common')
    await put(`${store}/common@1.0.0/node_modules/common/package.json`, JSON.stringify({ name: 'common', version: '1.0.0' }))
    await put(
      `${store}/mocha-ish@9.0.0/node_modules/mocha-ish/package.json`,
      JSON.stringify({ name: 'mocha-ish', version: '9.0.0', dependencies: { 'debug-ish': '1' } }),
    )
    await link(`${store}/mocha-ish@9.0.0/node_modules/debug-ish`, '../../debug-ish@1.0.0/node_modules/debug-ish')
    await put(`${store}/debug-ish@1.0.0/node_modules/debug-ish/package.json`, JSON.stringify({ name: 'debug-ish', version: '1.0.0' }))
    await link('node_modules/left-pad', '.pnpm/left-pad@1.3.0/node_modules/left-pad')
    await link('node_modules/mocha-ish', '.pnpm/mocha-ish@9.0.0/node_modules/mocha-ish')
    const all = await paths((await buildImage({ context: dir }, { cache: false })).layers[0] as Layer)
    assert.ok(all.includes('app/node_modules/mocha-ish -> .pnpm/mocha-ish@9.0.0/node_modules/mocha-ish'), 'without --omit-dev everything, links as links')
    const p = await buildImage({ context: dir, omitDev: true }, { cache: false })
    assert.equal(p.project?.manager, 'pnpm')
    const d = await paths(p.layers[0] as Layer)
    assert.ok(d.includes('app/node_modules/left-pad -> .pnpm/left-pad@1.3.0/node_modules/left-pad'))
    assert.ok(d.includes(`app/${store}/left-pad@1.3.0/node_modules/left-pad/package.json`))
    assert.ok(d.includes(`app/${store}/left-pad@1.3.0/node_modules/common -> ../../common@1.0.0/node_modules/common`))
    assert.ok(d.includes(`app/${store}/common@1.0.0/node_modules/common/package.json`), 'a production package’s dependency stays')
    assert.ok(!d.some((x) => x.includes('mocha-ish') || x.includes('debug-ish')), d.filter((x) => x.includes('ish')).join(', '))
    assert.deepEqual(p.project?.omitted, [`${store}/debug-ish@1.0.0`, `${store}/mocha-ish@9.0.0`, 'node_modules/mocha-ish'])
  })

  test('reproducible: twice, and from a copy of the context at another path with a fresh cache, the same digest', async (t) => {
    const dir = await tempDir(t)
    const a = path.join(dir, 'a')
    const b = path.join(dir, 'elsewhere', 'b')
    await writeNodeApp(a)
    await fs.mkdir(path.dirname(b), { recursive: true })
    await fs.cp(a, b, { recursive: true, verbatimSymlinks: true })
    const one = await build({ context: a, to: [`oci:${dir}/o1`] }, { cache: new LayerCache(path.join(dir, 'c1')) })
    const two = await build({ context: a, to: [`oci:${dir}/o2`] }, { cache: new LayerCache(path.join(dir, 'c1')) })
    const three = await build({ context: b, to: [`oci:${dir}/o3`] }, { cache: new LayerCache(path.join(dir, 'c2')) })
    assert.equal(one.digest, two.digest)
    assert.equal(one.digest, three.digest)
    assert.deepEqual(two.cache, { reused: 3, built: 0 })
    assert.deepEqual(three.cache, { reused: 0, built: 3 })
  })

  test('incremental: after one source file changes only the application layer is built; a cache restored at another path is hit by content', async (t) => {
    const dir = await tempDir(t)
    const app = path.join(dir, 'app')
    await writeNodeApp(app)
    const cacheDir = path.join(dir, 'cache')
    const first = await build({ context: app, to: [`oci:${dir}/out`] }, { cache: new LayerCache(cacheDir) })
    await fs.writeFile(path.join(app, 'lib/routes.js'), 'module.exports = ["/"]\n')
    const second = await build({ context: app, to: [`oci:${dir}/out`] }, { cache: new LayerCache(cacheDir) })
    assert.deepEqual(
      second.layers.map((l) => l.origin),
      ['cache', 'cache', 'built'],
    )
    assert.equal(second.layers[0]?.digest, first.layers[0]?.digest, 'the dependency layer digest is unchanged')
    assert.notEqual(second.layers[2]?.digest, first.layers[2]?.digest)
    // A CI runner: the project checked out at another path, the cache directory restored elsewhere.
    const ci = path.join(dir, 'runner', 'work')
    await fs.mkdir(path.dirname(ci), { recursive: true })
    await fs.cp(app, ci, { recursive: true, verbatimSymlinks: true })
    await fs.cp(cacheDir, path.join(dir, 'restored'), { recursive: true })
    const onCi = await build({ context: ci, to: [`oci:${dir}/ci`] }, { cache: new LayerCache(path.join(dir, 'restored')) })
    assert.deepEqual(onCi.cache, { reused: 3, built: 0 })
    assert.equal(onCi.digest, second.digest)
  })

  test('the metadata short-cut: an unchanged tree is a hit with no file read; a file rewritten with the same size and old mtime is not', async (t) => {
    const dir = await tempDir(t)
    const app = path.join(dir, 'app')
    await fs.mkdir(app)
    const f = path.join(app, 'data.txt')
    await fs.writeFile(f, 'aaaa')
    const old = new Date(Date.now() - 3600_000)
    await fs.utimes(f, old, old)
    // A racy window of 0 lets a file written a moment ago be trusted by its metadata, as one written long ago is.
    const cache = new LayerCache(path.join(dir, 'cache'), { racyMs: 0 })
    const one = await build({ context: app, to: [`oci:${dir}/o`] }, { cache })
    assert.equal((await fs.readdir(path.join(dir, 'cache', 'stat'))).length, 1, 'the metadata key was recorded')
    const again = await build({ context: app, to: [`oci:${dir}/o`] }, { cache })
    assert.equal(again.layers[0]?.hit, 'metadata')
    await new Promise((r) => setTimeout(r, 20))
    await fs.writeFile(f, 'bbbb')
    await fs.utimes(f, old, old)
    const two = await build({ context: app, to: [`oci:${dir}/o`] }, { cache })
    assert.notEqual(two.layers[0]?.diffId, one.layers[0]?.diffId)
    assert.equal(two.layers[0]?.origin, 'built')
    // A file changed within the racy window is never trusted by its metadata.
    const strict = new LayerCache(path.join(dir, 'strict'), { racyMs: 60_000 })
    await build({ context: app, to: [`oci:${dir}/o`] }, { cache: strict })
    await assert.rejects(fs.readdir(path.join(dir, 'strict', 'stat')), 'no metadata key for a file changed within the window')
    // The default window: 100 ms where file times have fractions of a second (as here), else 2 s.
    await fs.writeFile(f, 'cccc')
    const fine = (await fs.stat(f, { bigint: true })).ctimeNs % 1_000_000_000n !== 0n
    const auto = new LayerCache(path.join(dir, 'auto'))
    await new Promise((r) => setTimeout(r, 300))
    await build({ context: app, to: [`oci:${dir}/o`] }, { cache: auto })
    const keys = await fs.readdir(path.join(dir, 'auto', 'stat')).catch(() => [])
    assert.equal(keys.length, fine ? 1 : 0, fine ? '300 ms old on a fine-grained file system: trusted' : 'a coarse file system waits 2 s')
  })

  test('--add, --files, --diff and --layer each add one layer; the diff deletes with whiteouts', async (t) => {
    const dir = await tempDir(t)
    await fs.mkdir(path.join(dir, 'old/etc'), { recursive: true })
    await fs.writeFile(path.join(dir, 'old/etc/a'), 'a')
    await fs.writeFile(path.join(dir, 'old/etc/gone'), 'g')
    await fs.cp(path.join(dir, 'old'), path.join(dir, 'new'), { recursive: true })
    await fs.rm(path.join(dir, 'new/etc/gone'))
    await fs.writeFile(path.join(dir, 'new/etc/a'), 'A')
    await fs.writeFile(path.join(dir, 'conf.ini'), 'x=1\n')
    await writeLayerFile(fileMapEntries({ 'opt/pre/built.txt': 'prebuilt' }), path.join(dir, 'pre.tar.gz'))
    const p = await buildImage(
      {
        add: [{ src: path.join(dir, 'conf.ini'), dest: '/etc/app/' }],
        files: { '/usr/local/bin/run': { content: '#!/bin/sh\n', mode: 0o755, uid: 1000 } },
        diff: [{ old: path.join(dir, 'old'), new: path.join(dir, 'new') }],
        layers: [path.join(dir, 'pre.tar.gz')],
        chown: { uid: 10, gid: 20 },
      },
      { cache: false },
    )
    const [add, files, diff, pre] = p.layers as [Layer, Layer, Layer, Layer]
    assert.deepEqual(await paths(add), ['etc', 'etc/app', 'etc/app/conf.ini'])
    const f = []
    for await (const e of listTar(await files.uncompressed())) f.push(`${e.path} ${e.mode.toString(8)} ${e.uid}:${e.gid}`)
    assert.deepEqual(f, ['usr 755 10:20', 'usr/local 755 10:20', 'usr/local/bin 755 10:20', 'usr/local/bin/run 755 1000:20'])
    assert.deepEqual(await paths(diff), ['etc', 'etc/a', 'etc/.wh.gone'])
    assert.deepEqual(await paths(pre), ['opt', 'opt/pre', 'opt/pre/built.txt'])
    const report = await p.report()
    assert.equal(report[3]?.origin, 'file')
  })

  test('a multi-platform base with --platform all: one child per platform, the added layers shared, annotations on the index', async (t) => {
    const dir = await tempDir(t)
    const base = await randomIndex({ layers: 1, seed: 5 })
    await write(`oci:${dir}/base:1`, base)
    await fs.mkdir(path.join(dir, 'ctx'))
    await fs.writeFile(path.join(dir, 'ctx/hello.txt'), 'hi')
    const r = await build({ context: path.join(dir, 'ctx'), from: `oci:${dir}/base:1`, platform: 'all', to: [`oci:${dir}/out:1`] }, { cache: false })
    assert.equal(r.platforms.length, 2)
    const x = await read(`oci:${dir}/out:1`)
    assert.equal(x.kind, 'index')
    if (x.kind !== 'index') return
    const m = await x.manifest()
    assert.deepEqual(
      m.manifests.map((d) => d.platform?.architecture),
      ['amd64', 'arm64'],
    )
    assert.equal(m.annotations?.['org.opencontainers.image.base.name'], `oci:${dir}/base:1`)
    const tops = await Promise.all(m.manifests.map(async (d) => (await (await x.image(d.digest)).manifest()).layers.at(-1)?.digest))
    assert.equal(tops[0], tops[1], 'the added layer is the same blob in both')
    const baseTops = await Promise.all((await base.manifest()).manifests.map(async (d) => (await (await base.image(d.digest)).manifest()).layers[0]?.digest))
    const kids = await Promise.all(m.manifests.map(async (d) => (await (await x.image(d.digest)).manifest()).layers[0]?.digest))
    assert.deepEqual(kids, baseTops, "each child keeps its own base's layers")
    const one = await build(
      { context: path.join(dir, 'ctx'), from: `oci:${dir}/base:1`, platform: { os: 'linux', architecture: 'arm64' }, to: [`oci:${dir}/arm:1`] },
      { cache: false },
    )
    assert.deepEqual(one.platforms, [{ os: 'linux', architecture: 'arm64', variant: 'v8' }])
  })

  test('the config flags land in the config; the base’s org.opencontainers labels and manifest annotations are not inherited', async (t) => {
    const dir = await tempDir(t)
    const b0 = scratch({ os: 'linux', architecture: 'amd64' })
    const base = await appendLayers(b0, [layerFromFiles({ 'bin/sh': 'sh' })])
    const { editConfig } = await import('../../src/image/mutate.ts')
    const labelled = await editConfig(base, { labels: { 'org.opencontainers.image.title': 'base-os', keep: 'me' } })
    await write(`oci:${dir}/base:1`, labelled)
    await fs.mkdir(path.join(dir, 'ctx'))
    await fs.writeFile(path.join(dir, 'ctx/x'), 'x')
    const r = await build(
      {
        context: path.join(dir, 'ctx'),
        from: `oci:${dir}/base:1`,
        to: [`oci:${dir}/out:1`, `oci:${dir}/second:2`],
        config: {
          env: ['A=1'],
          user: '1000:1000',
          exposedPorts: ['8080', '53/udp'],
          volumes: ['/data'],
          stopSignal: 'SIGINT',
          labels: ['team=core'],
          healthcheck: { test: ['CMD', 'curl', '-f', 'http://localhost/'], intervalSeconds: 30, retries: 3 },
        },
        annotations: { 'com.example.build': '7' },
        timestamp: 1700000000,
      },
      { cache: false },
    )
    assert.equal(r.written.length, 2)
    assert.equal(r.written[0]?.descriptor.digest, r.written[1]?.descriptor.digest)
    const img = (await read(`oci:${dir}/second:2`)) as Image
    const c = await img.config()
    assert.deepEqual(c.config?.ExposedPorts, { '8080/tcp': {}, '53/udp': {} })
    assert.deepEqual(c.config?.Volumes, { '/data': {} })
    assert.equal(c.config?.StopSignal, 'SIGINT')
    assert.equal(c.config?.User, '1000:1000')
    assert.deepEqual(c.config?.Healthcheck, { Test: ['CMD', 'curl', '-f', 'http://localhost/'], Interval: 30e9, Retries: 3 })
    assert.equal(c.config?.Labels?.keep, 'me')
    assert.equal(c.config?.Labels?.team, 'core')
    assert.equal(c.config?.Labels?.['org.opencontainers.image.title'], undefined, "the base's title is not the image's")
    assert.equal(c.config?.Labels?.['org.opencontainers.image.base.digest'], await labelled.digest())
    assert.equal(c.created, '2023-11-14T22:13:20Z')
    const m = await img.manifest()
    assert.equal(m.annotations?.['com.example.build'], '7')
    assert.equal(m.annotations?.['org.opencontainers.image.base.name'], `oci:${dir}/base:1`)
  })

  test('in a git work tree: revision label, created from the last commit, entry times still 1970', async (t) => {
    const dir = await tempDir(t)
    await fs.writeFile(path.join(dir, 'a.txt'), 'a')
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', dir, ...args], {
        env: { ...process.env, GIT_AUTHOR_DATE: '2024-01-02T03:04:05Z', GIT_COMMITTER_DATE: '2024-01-02T03:04:05Z' },
      })
    try {
      git('init', '-q')
    } catch {
      t.skip('git is not installed')
      return
    }
    git('-c', 'user.email=a@b', '-c', 'user.name=a', 'add', '.')
    git('-c', 'user.email=a@b', '-c', 'user.name=a', 'commit', '-qm', 'one')
    git('remote', 'add', 'origin', 'https://user:secret@git.example.com/team/app.git')
    const saved = process.env.SOURCE_DATE_EPOCH
    delete process.env.SOURCE_DATE_EPOCH
    t.after(() => {
      if (saved !== undefined) process.env.SOURCE_DATE_EPOCH = saved
    })
    const p = await buildImage({ context: dir }, { cache: false })
    const img = p.image as Image
    const c = await img.config()
    assert.equal(c.created, '2024-01-02T03:04:05Z')
    assert.match(c.config?.Labels?.['org.opencontainers.image.revision'] ?? '', /^[0-9a-f]{40}$/)
    assert.equal(c.config?.Labels?.['org.opencontainers.image.source'], 'https://git.example.com/team/app', 'no credentials in the label')
    assert.deepEqual(await paths(p.layers[0] as Layer), ['app', 'app/a.txt'], '.git is left out')
    for await (const e of listTar(await (p.layers[0] as Layer).uncompressed())) assert.equal(e.path.includes('.git'), false)
  })
})

describe('build: bad input fails before anything is written', () => {
  async function fails(t: import('node:test').TestContext, spec: Parameters<typeof build>[0], code: string, pattern: RegExp): Promise<void> {
    const dir = await tempDir(t)
    const out = path.join(dir, 'out')
    await assert.rejects(
      build({ ...spec, to: [`oci:${out}:x`] }, { cache: new LayerCache(path.join(dir, 'cache')) }),
      (e) => isOcikitError(e) && e.code === code && pattern.test(e.message),
    )
    await assert.rejects(fs.stat(out), 'no layout was written')
  }

  test('a missing context', async (t) => {
    await fails(t, { context: '/nonexistent/ctx' }, 'INVALID_ARGUMENT', /context \/nonexistent\/ctx does not exist/)
  })
  test('a base that does not exist names it', async (t) => {
    const dir = await tempDir(t)
    await fs.mkdir(path.join(dir, 'ctx'))
    await write(`oci:${dir}/l:1`, scratch())
    await fails(t, { context: path.join(dir, 'ctx'), from: `oci:${dir}/l:nope` }, 'MANIFEST_UNKNOWN', /nope/)
  })
  test('an unknown platform lists the available ones', async (t) => {
    const dir = await tempDir(t)
    await fs.mkdir(path.join(dir, 'ctx'))
    await write(`oci:${dir}/b:1`, await randomIndex({ layers: 1 }))
    await fails(t, { context: path.join(dir, 'ctx'), from: `oci:${dir}/b:1`, platform: { os: 'linux', architecture: 's390x' } }, 'PLATFORM_NOT_FOUND', /amd64/)
  })
  test('a bad env, port, volume or stop signal names the value', async (t) => {
    const dir = await tempDir(t)
    await fs.mkdir(path.join(dir, 'ctx'))
    const ctx = path.join(dir, 'ctx')
    await fails(t, { context: ctx, config: { env: ['=x'] } }, 'INVALID_ARGUMENT', /'=x'/)
    await fails(t, { context: ctx, config: { exposedPorts: ['70000'] } }, 'INVALID_ARGUMENT', /70000/)
    await fails(t, { context: ctx, config: { volumes: ['data'] } }, 'INVALID_ARGUMENT', /'data'/)
    await fails(t, { context: ctx, config: { stopSignal: 'kill me' } }, 'INVALID_ARGUMENT', /kill me/)
  })
  test('a lockfile that disagrees with node_modules names the package', async (t) => {
    const dir = await tempDir(t)
    await writeNodeApp(dir, { lockVersion: '1.2.0' })
    await fails(t, { context: dir }, 'LOCKFILE_MISMATCH', /node_modules\/left-pad is 1\.2\.0 on disk, 1\.3\.0 in the lockfile/)
  })
  test('native code for another platform names the package, unless allowed', async (t) => {
    const dir = await tempDir(t)
    await writeNodeApp(dir)
    await fs.writeFile(path.join(dir, 'node_modules/left-pad/binding.gyp'), '{}')
    const other = process.arch === 'arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64' }
    await fails(t, { context: dir, platform: other }, 'NATIVE_CODE', /left-pad/)
    const notices: string[] = []
    await buildImage({ context: dir, platform: other, allowForeignNative: true }, { cache: false, onNotice: (m) => notices.push(m) })
    assert.ok(notices.some((n) => n.includes('left-pad')))
  })
  test('no destination', async () => {
    await assert.rejects(build({ context: '.' }), (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /--to/.test(e.message))
  })
})
