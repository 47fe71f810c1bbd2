/**
 * `ocikit build` and `ocikit cache` as a user runs them: the README's main job, a build file,
 * --digest-file and --json, a rebuild that reuses the cache, cache ls and prune, and bad input
 * that writes nothing.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { ocikit } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'

const ROOT = path.resolve(import.meta.dirname, '../..')

test("the README's main job runs as written: build the example app into a layout, inspect it, fsck it", async (t) => {
  const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8')
  const block = /## Two commands[\s\S]*?```sh\n(.*)\n```/.exec(readme)?.[1]
  assert.ok(block, 'the README has its main-job command')
  const steps = block.replace(/^npm ci && /, '').split(' && ')
  const dir = await tempDir(t)
  await fs.cp(path.join(ROOT, 'examples'), path.join(dir, 'examples'), { recursive: true })
  const env = { OCIKIT_CACHE_DIR: path.join(dir, 'cache') }
  const outs: string[] = []
  for (const step of steps) {
    const args = step.trim().split(/\s+/)
    assert.deepEqual(args.slice(0, 2), ['npx', 'ocikit'], step)
    const r = await ocikit(args.slice(2), { cwd: dir, env })
    assert.equal(r.code, 0, `${step}: ${r.stderr}`)
    outs.push(r.stdout)
  }
  assert.match(outs[0] as string, /command: \["node","\/app\/server\.js"\]/)
  assert.match(outs[1] as string, /NODE_ENV=production/)
  assert.match(outs[2] as string, /clean/)
})

test('build -f: a YAML build file, --digest-file, --json; a rebuild reuses every layer and sends nothing new', async (t) => {
  const tmp = await tempDir(t)
  const dir = path.join(tmp, 'app')
  await fs.mkdir(dir)
  await fs.writeFile(path.join(dir, 'server.js'), 'console.log("hi")\n')
  await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '2.0.0', main: 'server.js' }))
  await fs.writeFile(path.join(dir, 'motd'), 'welcome\n')
  await fs.writeFile(
    path.join(dir, 'ocikit.yaml'),
    ['context: .', 'to: oci:out:v2', 'env: { PORT: 8080 }', 'expose: [8080]', 'add: ["motd:/etc/motd"]', 'timestamp: 1700000000', ''].join('\n'),
  )
  const env = { OCIKIT_CACHE_DIR: path.join(tmp, 'cache') }
  const digestFile = path.join(tmp, 'digest.txt')
  const first = await ocikit(['build', '-f', 'ocikit.yaml', '--json', '--digest-file', digestFile], { cwd: dir, env })
  assert.equal(first.code, 0, first.stderr)
  const r = JSON.parse(first.stdout)
  assert.equal((await fs.readFile(digestFile, 'utf8')).trim(), r.digest)
  assert.deepEqual(
    r.layers.map((l: { label: string; origin: string }) => l.origin),
    ['built', 'built'],
  )
  assert.equal(r.layers[0].label, 'application')
  assert.match(r.layers[1].label, /^add .*motd$/)
  const config = JSON.parse((await ocikit(['config', 'oci:out:v2'], { cwd: dir })).stdout)
  assert.ok(config.config.Env.includes('PORT=8080'))
  assert.deepEqual(Object.keys(config.config.ExposedPorts), ['8080/tcp'])
  assert.equal(config.created, '2023-11-14T22:13:20Z')
  // The same build again: the same digest, every layer from the cache, no blob written.
  const again = JSON.parse((await ocikit(['build', '-f', 'ocikit.yaml', '--json'], { cwd: dir, env })).stdout)
  assert.equal(again.digest, r.digest)
  assert.deepEqual(again.cache, { reused: 2, built: 0 })
  assert.deepEqual(again.blobs, { written: 0, existed: 3, mounted: 0 }, 'two layers and the config, all there')
  // A flag given too replaces the file's value.
  const over = JSON.parse((await ocikit(['build', '-f', 'ocikit.yaml', '--json', '--env', 'PORT=9090', '--to', 'oci:out:v3'], { cwd: dir, env })).stdout)
  assert.notEqual(over.digest, r.digest)
  assert.ok(JSON.parse((await ocikit(['config', 'oci:out:v3'], { cwd: dir })).stdout).config.Env.includes('PORT=9090'))
})

test('cache ls and prune: the layers a build left, removed by size and by --all', async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'a.txt'), 'a'.repeat(5000))
  const env = { OCIKIT_CACHE_DIR: path.join(dir, 'cache') }
  assert.equal((await ocikit(['build', '.', '--to', `oci:${dir}/out:1`, '-q'], { cwd: dir, env })).code, 0)
  const ls = await ocikit(['cache', 'ls', '--json'], { env })
  assert.equal(ls.code, 0, ls.stderr)
  const records = JSON.parse(ls.stdout).layers
  assert.equal(records.length, 1)
  assert.match(records[0].digest, /^sha256:[0-9a-f]{64}$/)
  const prune = await ocikit(['cache', 'prune', '--all'], { env })
  assert.equal(prune.code, 0, prune.stderr)
  assert.match(prune.stdout, /removed 1 layer/)
  assert.deepEqual(JSON.parse((await ocikit(['cache', 'ls', '--json'], { env })).stdout).layers, [])
  const bad = await ocikit(['cache', 'prune', '--max-size', 'lots'], { env })
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /--max-size/)
})

test('build: bad input is an error naming it, and nothing is written', async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'x'), 'x')
  const out = path.join(dir, 'out')
  for (const [args, pattern] of [
    [['build', path.join(dir, 'missing'), '--to', `oci:${out}:1`], /missing.*does not exist/],
    [['build', dir, '--to', `oci:${out}:1`, '--env', '=1'], /env '=1'/],
    [['build', dir, '--to', `oci:${out}:1`, '--expose', '99999'], /99999/],
    [['build', dir, '--to', `oci:${out}:1`, '--chown', 'root'], /--chown/],
    [['build', dir], /--to/],
  ] as const) {
    const r = await ocikit([...args])
    assert.notEqual(r.code, 0, args.join(' '))
    assert.match(r.stderr, pattern)
  }
  assert.equal(existsSync(out), false, 'no layout was created')
  const help = await ocikit(['build', '--help'])
  assert.match(help.stdout, /--omit-dev/)
  assert.match(help.stdout, /three layers/)
})
