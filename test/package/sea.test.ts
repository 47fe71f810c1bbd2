/**
 * The single executable (`npm run build:sea`): built from this checkout, it runs with no Node on
 * the machine (an empty PATH), prints the version, builds a layer and pushes to a real registry.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { needPeers } from '../helpers/peers.ts'
import { startRegistry } from '../helpers/registry.ts'
import { tempDir } from '../helpers/tmp.ts'

const run = promisify(execFile)
const root = path.resolve(import.meta.dirname, '../..')
const exe = path.join(root, 'dist', 'sea', `ocikit-linux-${process.arch}`)

test('the single executable needs no Node: --version, a layer build and a push to a real registry', {
  timeout: 180_000,
  ...needPeers('docker-registry'),
}, async (t) => {
  await run(process.execPath, [path.join(root, 'scripts', 'build-sea.ts')], { cwd: root, maxBuffer: 1 << 24 })
  const bare = { env: { PATH: '/nonexistent', HOME: process.env.HOME ?? '/root' }, maxBuffer: 1 << 24 }
  const version = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')).version
  assert.equal((await run(exe, ['--version'], bare)).stdout.trim(), version)
  const dir = await tempDir(t)
  await fs.mkdir(path.join(dir, 'src'))
  await fs.writeFile(path.join(dir, 'src', 'hello.txt'), 'hello\n')
  const layer = JSON.parse((await run(exe, ['layer', 'create', path.join(dir, 'src'), '-o', path.join(dir, 'l.tar.gz'), '--json'], bare)).stdout)
  assert.match(layer.digest, /^sha256:/)
  const r = await startRegistry(t)
  await run(exe, ['append', 'scratch', `oci:${dir}/out:v1`, '--dir', path.join(dir, 'src')], bare)
  const pushed = await run(exe, ['copy', `oci:${dir}/out:v1`, `${r.host}/app:v1`], bare)
  assert.match(pushed.stdout, new RegExp(`${r.host}/app:v1 sha256:[0-9a-f]{64} \\(2 blob\\(s\\) written`))
  assert.equal((await run(exe, ['digest', `${r.host}/app:v1`], bare)).stdout.trim(), (await run(exe, ['digest', `oci:${dir}/out:v1`], bare)).stdout.trim())
})
