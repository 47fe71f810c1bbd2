/**
 * Bad input at the command line, as a new user meets it: each gives a clear error (naming the
 * thing) and leaves nothing written or half-made.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { ocikit } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'

async function image(dir: string, args: string[] = []): Promise<string> {
  const src = path.join(dir, 'src')
  await fs.mkdir(path.join(src, 'sub'), { recursive: true })
  for (let i = 0; i < 50; i++) await fs.writeFile(path.join(src, 'sub', `f${i}.txt`), `file ${i} `.repeat(2000))
  const name = `oci:${dir}/layout:v1`
  const r = await ocikit(['append', 'scratch', name, '--dir', src, '--platform', 'linux/amd64', ...args])
  assert.equal(r.code, 0, r.stderr)
  return name
}

test('append with a --dir that is a file or missing says so and leaves no layout behind (issue 21.3)', async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'afile'), 'x')
  for (const bad of [path.join(dir, 'afile'), path.join(dir, 'missing')]) {
    const r = await ocikit(['append', 'scratch', `oci:${dir}/out:v1`, '--dir', bad])
    assert.equal(r.code, 1)
    assert.match(r.stderr, new RegExp(`${bad.replaceAll('/', '\\/')}.*(not a directory|does not exist|no such)`, 'i'))
    await assert.rejects(fs.stat(path.join(dir, 'out')), { code: 'ENOENT' }, 'no layout was made')
  }
})

test('unpack into a path that is a file is a clear error, and the file is untouched (issue 21.3)', async (t) => {
  const dir = await tempDir(t)
  const name = await image(dir)
  const file = path.join(dir, 'afile')
  await fs.writeFile(file, 'keep')
  const r = await ocikit(['unpack', name, file])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /afile is not a directory; unpack into a new or empty directory/)
  assert.equal(await fs.readFile(file, 'utf8'), 'keep')
})

test('--platform is never silently ignored: a single-platform image for another platform, and unknown platforms, are errors (issue 21.4)', async (t) => {
  const dir = await tempDir(t)
  const name = await image(dir)
  for (const cmd of [
    ['config', name],
    ['copy', name, `oci:${dir}/other:v1`],
    ['unpack', name, path.join(dir, 'rootfs')],
  ]) {
    const r = await ocikit([...cmd, '--platform', 'linux/arm64'])
    assert.equal(r.code, 1, cmd.join(' '))
    assert.match(r.stderr, /no image for platform linux\/arm64; available: linux\/amd64/)
  }
  await assert.rejects(fs.stat(path.join(dir, 'other')), { code: 'ENOENT' })
  await assert.rejects(fs.stat(path.join(dir, 'rootfs')), { code: 'ENOENT' })
  assert.equal((await ocikit(['config', name, '--platform', 'linux/amd64'])).code, 0)
  const bogus = await ocikit(['append', 'scratch', `oci:${dir}/bogus:v1`, '--dir', path.join(dir, 'src'), '--platform', 'linux/bogusarch'])
  assert.equal(bogus.code, 2)
  assert.match(bogus.stderr, /unknown architecture 'bogusarch' \(known: 386, amd64/)
  await assert.rejects(fs.stat(path.join(dir, 'bogus')), { code: 'ENOENT' })
})

test('a corrupt layer during unpack: a coded error naming the layer and the image, and no partial tree left (issue 21.5)', async (t) => {
  const dir = await tempDir(t)
  for (const compression of ['zstd', 'gzip']) {
    const name = await image(path.join(dir, compression), ['--compression', compression])
    const manifest = JSON.parse((await ocikit(['manifest', name])).stdout)
    const digest: string = manifest.layers[0].digest
    const blob = path.join(dir, compression, 'layout', 'blobs', 'sha256', digest.slice(7))
    const bytes = await fs.readFile(blob)
    for (let i = bytes.length >> 1; i < (bytes.length >> 1) + 64; i++) bytes[i] = (bytes[i] as number) ^ 0x5a
    await fs.chmod(blob, 0o644)
    await fs.writeFile(blob, bytes)
    const out = path.join(dir, compression, 'rootfs')
    const r = await ocikit(['unpack', name, out])
    assert.equal(r.code, 1, compression)
    assert.match(r.stderr, new RegExp(`${name.replaceAll('/', '\\/')}: layer 1 of 1 \\(${digest}\\): .*; nothing was left in`), r.stderr)
    await assert.rejects(fs.stat(out), { code: 'ENOENT' }, 'the partial tree was removed')
    const kept = await ocikit(['unpack', name, out, '--keep-partial'])
    assert.equal(kept.code, 1)
    assert.match(kept.stderr, /the partial tree in .* was kept/)
  }
})

test('a layout directory that does not exist is named as such (issue 21.6)', async (t) => {
  const dir = await tempDir(t)
  const r = await ocikit(['inspect', `oci:${dir}/nowhere:v1`])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /nowhere does not exist/)
  assert.doesNotMatch(r.stderr, /oci-layout is missing/)
})
