/** `ocikit explore --report`: the same figures as the library, --max-wasted for CI, --diff, and bad input before anything runs. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { write } from '../../src/api.ts'
import { ocikit } from '../helpers/cli.ts'
import { threeLayers } from '../helpers/explore-image.ts'
import { tempDir } from '../helpers/tmp.ts'

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

test('explore: a name that does not exist, an unknown platform, and no --report are clear errors', async (t) => {
  const dir = await tempDir(t)
  const { one } = await threeLayers(dir)
  await write(`oci:${dir}/out:one`, one)
  const missing = await ocikit(['explore', `oci:${dir}/out:nope`, '--report'])
  assert.notEqual(missing.code, 0)
  assert.match(missing.stderr, /nope/)
  const platform = await ocikit(['explore', `oci:${dir}/out:one`, '--report', '--platform', 'linux/arm64'])
  assert.notEqual(platform.code, 0)
  assert.match(platform.stderr, /linux\/amd64/)
  const page = await ocikit(['explore', `oci:${dir}/out:one`])
  assert.notEqual(page.code, 0)
  assert.match(page.stderr, /web page is not built yet; use --report/)
})
