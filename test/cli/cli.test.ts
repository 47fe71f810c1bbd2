import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { write } from '../../src/api.ts'
import { randomImage, randomIndex } from '../../src/image/random.ts'
import { ocikit } from '../helpers/cli.ts'
import { snapshot, tempDir } from '../helpers/tmp.ts'

async function fixture(t: import('node:test').TestContext) {
  const dir = await tempDir(t)
  const img = await randomImage({ seed: 21, layers: 2 })
  const idx = await randomIndex({ seed: 22, layers: 1 })
  await write(`oci:${dir}:v1`, img)
  await write(`oci:${dir}:multi`, idx)
  return { dir, img, idx }
}

test('--version and --help', async () => {
  const v = await ocikit(['--version'])
  assert.equal(v.code, 0)
  assert.equal(v.stdout.trim(), JSON.parse(await fs.readFile('package.json', 'utf8')).version)
  const h = await ocikit(['--help'])
  assert.equal(h.code, 0)
  for (const cmd of ['inspect', 'manifest', 'config', 'digest', 'ls', 'tag', 'untag', 'copy', 'fsck', 'gc']) assert.match(h.stdout, new RegExp(`\\n  ${cmd} `))
  assert.match(h.stdout, /oci:DIR\[:TAG\]/)
  const gh = await ocikit(['gc', '--help'])
  assert.match(gh.stdout, /--dry-run/)
  assert.match(gh.stdout, /--grace/)
})

test('only the command named on the command line is built; help and typos see them all', async () => {
  const { buildProgram } = await import('../../src/cli/program.ts')
  const names = (argv: string[]) => buildProgram(['node', 'ocikit', ...argv]).commands.map((c) => c.name())
  assert.deepEqual(names(['copy', 'a', 'b']), ['copy'])
  assert.deepEqual(names(['--insecure', 'copy', 'config', 'x']), ['manifest', 'config', 'digest'], 'the value of --insecure is not a command')
  assert.deepEqual(names(['--debug', 'layer', 'create', 'd']), ['layer'])
  const all = names(['--help'])
  assert.ok(all.length >= 20 && all.includes('login') && all.includes('inspect'), all.join(' '))
  assert.deepEqual(names(['cpy']), all)
  assert.deepEqual(names(['--help', 'copy']), all)
  assert.deepEqual(names([]), all)
  // Every command is in the table, so that naming it builds only its own group.
  for (const name of all) {
    const built = names([name])
    assert.ok(built.includes(name) && built.length < all.length, `${name}: ${built.join(' ')}`)
  }
  const typo = await ocikit(['cpy', 'a', 'b'])
  assert.equal(typo.code, 2)
  assert.match(typo.stderr, /unknown command 'cpy'[\s\S]*Did you mean copy\?/)
  const help = await ocikit(['help', 'copy'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /Usage: ocikit copy/)
})

test('a reader that closes the pipe early ends the command quietly', async () => {
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, [path.resolve('src/cli/main.ts'), '--help'], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.destroy() // like `| head -c 0`
  let stderr = ''
  child.stderr.on('data', (c) => (stderr += c))
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
  assert.equal(stderr, '')
  assert.equal(code, 0)
})

test('inspect, digest, manifest, config and ls print what the layout holds', async (t) => {
  const { dir, img, idx } = await fixture(t)
  const i = await ocikit(['inspect', `oci:${dir}:v1`])
  assert.equal(i.code, 0, i.stderr)
  assert.match(i.stdout, /Platform:\s+linux\/amd64/)
  assert.match(i.stdout, /Layers \(2, /)
  assert.ok(i.stdout.includes(await img.digest()))
  const j = JSON.parse((await ocikit(['inspect', '--json', `oci:${dir}:multi`])).stdout)
  assert.equal(j.kind, 'index')
  assert.deepEqual(
    j.manifests.map((m: { platform: string }) => m.platform),
    ['linux/amd64', 'linux/arm64/v8'],
  )
  assert.equal((await ocikit(['digest', `oci:${dir}:multi`])).stdout.trim(), await idx.digest())
  const armDigest = (await ocikit(['digest', '--platform', 'linux/arm64', `oci:${dir}:multi`])).stdout.trim()
  assert.equal(armDigest, (await idx.manifest()).manifests[1]?.digest)
  assert.equal((await ocikit(['manifest', `oci:${dir}:v1`])).stdout, `${Buffer.from(await img.rawManifest()).toString()}\n`)
  assert.equal((await ocikit(['config', `oci:${dir}:v1`])).stdout, `${Buffer.from(await img.rawConfig()).toString()}\n`)
  const ls = await ocikit(['ls', `oci:${dir}`])
  assert.match(ls.stdout, /^v1\s+sha256:[0-9a-f]{64}\s+application\/vnd\.oci\.image\.manifest\.v1\+json$/m)
  assert.match(ls.stdout, /^multi\s+sha256:/m)
})

test('tag, untag, fsck, gc through the CLI', async (t) => {
  const { dir } = await fixture(t)
  assert.equal((await ocikit(['tag', `oci:${dir}:v1`, 'latest'])).code, 0)
  assert.match((await ocikit(['ls', `oci:${dir}`])).stdout, /^latest\s/m)
  assert.equal((await ocikit(['untag', `oci:${dir}:multi`])).code, 0)
  const f = await ocikit(['fsck', `oci:${dir}`])
  assert.equal(f.code, 0)
  assert.match(f.stdout, /clean/)
  const dry = await ocikit(['gc', '--dry-run', '--grace', '0', `oci:${dir}`])
  assert.match(dry.stdout, /would delete 7 blob\(s\)/)
  const g = await ocikit(['gc', '--grace', '0', `oci:${dir}`])
  assert.match(g.stdout, /deleted 7 blob\(s\)/)
  assert.equal((await fs.readdir(path.join(dir, 'blobs', 'sha256'))).length, 4)
})

test('fsck exits 1 and names the damaged blob and its path', async (t) => {
  const { dir, img } = await fixture(t)
  const layer = (await img.manifest()).layers[1]!.digest
  await fs.writeFile(path.join(dir, 'blobs', 'sha256', layer.slice(7)), 'garbage')
  const f = await ocikit(['fsck', `oci:${dir}`])
  assert.equal(f.code, 1)
  assert.ok(f.stdout.includes(`(tag v1) → layers[1]: ${layer}`))
})

test('errors: one clear line, non-zero exit, stack only with --debug, nothing changed', async (t) => {
  const { dir } = await fixture(t)
  const before = await snapshot(dir)
  const cases: [string[], RegExp][] = [
    [['inspect', `oci:${dir}`], /holds 2 images.*tags: v1, multi/],
    [['inspect', `oci:${dir}:nope`], /no tag 'nope'/],
    [['config', '--platform', 'linux/s390x', `oci:${dir}:multi`], /no image for platform linux\/s390x; available: linux\/amd64, linux\/arm64\/v8/],
    [['inspect', 'dir:/x'], /unknown transport 'dir'/],
    [['tag', `oci:${dir}:v1`, 'bad tag'], /invalid tag/],
    [['inspect', 'bfc:x.bfc'], /bfc:x.bfc: no such file x.bfc/],
    [['gc', `oci:${dir}:v1`], /whole layout/],
    [['ls', '127.0.0.1:1/app'], /use 'ocikit tags 127\.0\.0\.1:1\/app'/],
    [['tag', '127.0.0.1:1/app:v1', 'a:b'], /invalid tag 'a:b'.*at most 128/],
  ]
  for (const [args, re] of cases) {
    const r = await ocikit(args)
    assert.equal(r.code, 1, args.join(' '))
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`)
    assert.doesNotMatch(r.stderr, /\n\s+at /)
  }
  const d = await ocikit(['--debug', 'inspect', `oci:${dir}:nope`])
  assert.match(d.stderr, /\n\s+at /)
  assert.match(d.stderr, /MANIFEST_UNKNOWN/)
  const usage = await ocikit(['inspect'])
  assert.equal(usage.code, 2)
  assert.match(usage.stderr, /missing required argument/)
  assert.deepEqual(await snapshot(dir), before)
})

test('copy between layouts through the CLI keeps the digest', async (t) => {
  const { dir, idx } = await fixture(t)
  const r = await ocikit(['copy', `oci:${dir}:multi`, `oci:${dir}-copy:m`])
  t.after(() => fs.rm(`${dir}-copy`, { recursive: true, force: true }))
  assert.equal(r.code, 0, r.stderr)
  assert.equal((await ocikit(['digest', `oci:${dir}-copy:m`])).stdout.trim(), await idx.digest())
  const again = await ocikit(['copy', `oci:${dir}:multi`, `oci:${dir}-copy:m`])
  assert.match(again.stdout, /0 blob\(s\) written/)
})

test('the installed command (bin/ocikit.js and its bundled program) runs the main job', async (t) => {
  const bundle = path.resolve('dist/cli/ocikit.mjs')
  const built = await fs.stat(bundle).then(
    () => true,
    () => false,
  )
  // npm install builds dist/ (the prepare script); a source checkout without a build has none.
  if (!built && process.env.CI !== 'true') {
    t.skip('dist/cli/ocikit.mjs is not built (npm run build)')
    return
  }
  const run = (args: string[]) => promisify(execFile)(process.execPath, ['bin/ocikit.js', ...args])
  const v = await run(['--version'])
  assert.equal(v.stdout.trim(), JSON.parse(await fs.readFile('package.json', 'utf8')).version)
  const src = await tempDir(t)
  await fs.writeFile(path.join(src, 'hello.txt'), 'hello\n')
  const out = await tempDir(t)
  const appended = await run(['append', 'scratch', `oci:${out}:v1`, '--dir', src, '--prefix', '/app', '-q'])
  const inspect = JSON.parse((await run(['inspect', '--json', `oci:${out}:v1`])).stdout)
  assert.equal(inspect.kind, 'image')
  assert.equal(inspect.layers.length, 1)
  assert.ok(appended.stdout.includes(inspect.digest))
  await run(['fsck', `oci:${out}`])
  // Start-up cost: the bundle reaches Node's modules without running their lazy getters
  // (scripts/bundle-cli.ts), which would load undici, parseArgs, worker_threads and more.
  const hook = `data:text/javascript,process.on('exit', () => process.stderr.write(process.moduleLoadList.join('\\n')))`
  const loaded = (await promisify(execFile)(process.execPath, ['--import', hook, 'bin/ocikit.js', 'copy', `oci:${out}:v1`, `oci:${out}:v2`, '-q'])).stderr
  assert.match(loaded, /NativeModule crypto/)
  for (const lazy of ['internal/util/parse_args', 'internal/util/diff', 'worker_threads', 'undici']) assert.doesNotMatch(loaded, new RegExp(lazy))
})

test("inspect: continuation lines of Env and Labels are indented under their first, not started with ':' (issue 21.7)", async (t) => {
  const dir = await tempDir(t)
  const src = path.join(dir, 'src')
  await fs.mkdir(src)
  await fs.writeFile(path.join(src, 'a'), 'a')
  const name = `oci:${dir}/l:v1`
  const made = await ocikit(['append', 'scratch', name, '--dir', src, '--env', 'A=1', '--env', 'B=2', '--label', 'x=1', '--label', 'y=2'])
  assert.equal(made.code, 0, made.stderr)
  const lines = (await ocikit(['inspect', name])).stdout.split('\n')
  assert.ok(!lines.some((l) => l.startsWith(':')), lines.join('\n'))
  const env = lines.findIndex((l) => l.startsWith('Env:'))
  assert.deepEqual(lines.slice(env, env + 2), [`${'Env:'.padEnd(13)}A=1`, `${''.padEnd(13)}B=2`])
  const labels = lines.findIndex((l) => l.startsWith('Labels:'))
  assert.deepEqual(lines.slice(labels, labels + 2), [`${'Labels:'.padEnd(13)}x=1`, `${''.padEnd(13)}y=2`])
})

test('gc right after untag says what it kept and why, and how to delete it now (issue 21.9)', async (t) => {
  const { dir } = await fixture(t)
  assert.equal((await ocikit(['untag', `oci:${dir}:v1`])).code, 0)
  const r = await ocikit(['gc', `oci:${dir}`])
  assert.equal(r.code, 0)
  assert.match(r.stdout, /deleted 0 blob\(s\)/)
  assert.match(r.stdout, /kept 4 unreferenced blob\(s\): younger than the grace period, which protects writes running beside gc; --grace 0 to delete them now/)
  assert.match((await ocikit(['gc', `oci:${dir}`, '--grace', '0'])).stdout, /deleted 4 blob\(s\)/)
})
