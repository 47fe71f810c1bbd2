/** `ocikit explore --report`: the same figures as the library, --max-wasted for CI, --diff, and bad input before anything runs. */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { write } from '../../src/api.ts'
import { ocikit } from '../helpers/cli.ts'
import { threeLayers } from '../helpers/explore-image.ts'
import { tempDir } from '../helpers/tmp.ts'

// The layer indexes explore keeps go to a directory of the test's own, not the user's cache.
process.env.OCIKIT_CACHE_DIR = mkdtempSync(path.join(os.tmpdir(), 'ocikit-explore-cache-'))
after(() => rmSync(process.env.OCIKIT_CACHE_DIR as string, { recursive: true, force: true }))

test('explore --report --json gives the analysis; --max-wasted exits 1 over the limit; --diff lists the changes', async (t) => {
  const dir = await tempDir(t)
  const { one, two } = await threeLayers(dir)
  await write(`oci:${dir}/out:one`, one)
  await write(`oci:${dir}/out:two`, two)
  const r = await ocikit(['explore', `oci:${dir}/out:one`, '--report', '--json'])
  assert.equal(r.code, 0, r.stderr)
  const x = JSON.parse(r.stdout)
  assert.equal(x.digest, await one.digest())
  assert.equal(x.layers.length, 3)
  assert.equal(x.wastedBytes, 1100)
  assert.deepEqual(
    x.wasted.map((w: { path: string }) => w.path),
    ['b.bin', 'a.txt'],
  )
  const human = await ocikit(['explore', `oci:${dir}/out:one`, '--report'])
  assert.match(human.stdout, /wasted 1\.1 KiB in 2 file\(s\)/)
  assert.match(human.stdout, /b\.bin {2}\(layer 0, deleted by layer 2\)/)
  const over = await ocikit(['explore', `oci:${dir}/out:one`, '--report', '--max-wasted', '1000'])
  assert.equal(over.code, 1)
  assert.match(over.stderr, /over the 1000 B allowed/)
  assert.equal((await ocikit(['explore', `oci:${dir}/out:one`, '--report', '--max-wasted', '2K'])).code, 0)
  const diff = await ocikit(['explore', `oci:${dir}/out:two`, '--report', '--diff', `oci:${dir}/out:one`, '--json'])
  assert.deepEqual(JSON.parse(diff.stdout).diff, [])
})

test('explore: a name that does not exist and an unknown platform are clear errors, before any server starts', async (t) => {
  const dir = await tempDir(t)
  const { one } = await threeLayers(dir)
  await write(`oci:${dir}/out:one`, one)
  const missing = await ocikit(['explore', `oci:${dir}/out:nope`, '--report'])
  assert.notEqual(missing.code, 0)
  assert.match(missing.stderr, /nope/)
  const platform = await ocikit(['explore', `oci:${dir}/out:one`, '--report', '--platform', 'linux/arm64'])
  assert.notEqual(platform.code, 0)
  assert.match(platform.stderr, /linux\/amd64/)
})

test('explore without --report serves the page on 127.0.0.1, prints its URL, and stops on Ctrl-C', async (t) => {
  const dir = await tempDir(t)
  const { one } = await threeLayers(dir)
  await write(`oci:${dir}/out:one`, one)
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../../src/cli/main.ts'), 'explore', `oci:${dir}/out:one`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.after(() => child.kill('SIGKILL'))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      const m = /^(http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{32})$/m.exec(out)
      if (m) resolve(m[1] as string)
    })
    child.on('exit', () => reject(new Error(`exited before printing a URL: ${out}`)))
  })
  const res = await fetch(url)
  assert.equal(res.status, 200)
  assert.ok((await res.text()).includes(await one.digest()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  child.kill('SIGINT')
  assert.equal(await exited, 0)
})
