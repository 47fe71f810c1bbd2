/**
 * The package as users get it: `npm ci` accepts the committed lockfile; `npm pack` holds only
 * what runs; the packed tarball installs globally and as a dev dependency and runs there (a real
 * command, not only --version); on an older Node the command says in one line what it needs.
 * Installs fetch the dependencies from the npm registry.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { tempDir } from '../helpers/tmp.ts'

const run = promisify(execFile)
const root = path.resolve(import.meta.dirname, '../..')
const npm = (args: string[], cwd = root) =>
  run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, maxBuffer: 1 << 26, env: { ...process.env } })

test('npm ci accepts the committed lockfile (every optional platform package is recorded)', async () => {
  await npm(['ci', '--dry-run', '--ignore-scripts'])
})

test('the package holds only what runs: the library, the bundled CLI, docs, no tests, sources, benchmarks or maps', async () => {
  const { stdout } = await npm(['pack', '--dry-run', '--json', '--ignore-scripts'])
  const [info] = JSON.parse(stdout) as [{ files: { path: string }[]; size: number }]
  const files = info.files.map((f) => f.path)
  for (const want of ['bin/ocikit.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/ocikit.mjs', 'README.md', 'LICENSE', 'CHANGELOG.md', 'package.json']) {
    assert.ok(files.includes(want), `${want} is in the package`)
  }
  const stray = files.filter(
    (f) => /^(test|bench|src|scripts|\.ci|dist\/sea)\//.test(f) || f.endsWith('.map') || (f.startsWith('dist/cli/') && f !== 'dist/cli/ocikit.mjs'),
  )
  assert.deepEqual(stray, [])
  assert.ok(info.size < 1 << 20, `packed size ${info.size} bytes`)
})

test('the packed tarball installs globally and as a dev dependency, and runs a real command in both', { timeout: 300_000 }, async (t) => {
  const dir = await tempDir(t)
  const { stdout } = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir])
  const tarball = path.join(dir, (JSON.parse(stdout) as [{ filename: string }])[0].filename)
  const version = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')).version
  const src = path.join(dir, 'src')
  await fs.mkdir(src)
  await fs.writeFile(path.join(src, 'hello.txt'), 'hi\n')
  // Global, into a prefix of its own.
  const prefix = path.join(dir, 'prefix')
  await npm(['install', '-g', '--prefix', prefix, tarball])
  const bin = path.join(prefix, 'bin', 'ocikit')
  assert.equal((await run(bin, ['--version'])).stdout.trim(), version)
  const made = await run(bin, ['layer', 'create', src, '-o', path.join(dir, 'l.tar.gz'), '--json'])
  assert.match(JSON.parse(made.stdout).digest, /^sha256:[0-9a-f]{64}$/)
  // A project's dev dependency, through npx.
  const project = path.join(dir, 'project')
  await fs.mkdir(project)
  await fs.writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  await npm(['install', '--save-dev', tarball], project)
  assert.equal((await run('npx', ['--no-install', 'ocikit', '--version'], { cwd: project })).stdout.trim(), version)
  const appended = await run('npx', ['--no-install', 'ocikit', 'append', 'scratch', 'oci:./out:v1', '--dir', src], { cwd: project })
  assert.match(appended.stdout, /oci:\.\/out:v1 sha256:/)
  // The oldest Node the package says it runs on (engines: >=22.15), its official binary from npm.
  const engines = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')).engines.node as string
  const oldest = `${/\d+\.\d+/.exec(engines)?.[0]}.0`
  const nodeDir = path.join(dir, 'node-oldest')
  await fs.mkdir(nodeDir)
  const packed = await npm(['pack', `node-linux-${process.arch}@${oldest}`, '--silent', '--pack-destination', nodeDir])
  await run('tar', ['-xzf', path.join(nodeDir, packed.stdout.trim().split('\n').at(-1) as string), '-C', nodeDir])
  const node22 = path.join(nodeDir, 'package', 'bin', 'node')
  const cliOnOldest = path.join(prefix, 'lib', 'node_modules', 'ocikit', 'bin', 'ocikit.js')
  assert.equal((await run(node22, ['-p', 'process.versions.node'])).stdout.trim(), oldest)
  assert.equal((await run(node22, [cliOnOldest, '--version'])).stdout.trim(), version)
  const onOldest = await run(node22, [cliOnOldest, 'append', 'scratch', `oci:${dir}/oldest:v1`, '--dir', src])
  assert.match(onOldest.stdout, /oldest:v1 sha256:/)
  assert.match((await run(node22, [cliOnOldest, 'fsck', `oci:${dir}/oldest`])).stdout, /clean/)
  // An older Node (the system's, where it is one): one line saying what is needed, no stack.
  const candidates = await Promise.all(
    ['/usr/bin/node', '/usr/local/bin/node'].map((p) =>
      fs.access(p).then(
        () => p,
        () => undefined,
      ),
    ),
  )
  const system = candidates.find((p) => p !== undefined)
  const old = system ? (await run(system, ['-p', 'process.versions.node']).catch(() => ({ stdout: '' }))).stdout.trim() : ''
  if (old && Number(old.split('.')[0]) < 22) {
    const r = await run(system as string, [path.join(prefix, 'lib', 'node_modules', 'ocikit', 'bin', 'ocikit.js'), '--version']).then(
      () => assert.fail('expected a failure'),
      (e: { code: number; stderr: string }) => e,
    )
    assert.equal(r.code, 1)
    assert.equal(r.stderr.trim().split('\n').length, 1)
    assert.match(r.stderr, new RegExp(`needs Node.js 22.15 or newer, and this is ${old.replaceAll('.', '\\.')}`))
  } else t.diagnostic(`no Node older than 22 on this machine (${old || 'none found'}): the old-Node message is not checked here`)
})
