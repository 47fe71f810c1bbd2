/** The layer cache: records only with their blob, verified reads, bounded by prune (least recently used first). */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { text } from 'node:stream/consumers'
import { test } from 'node:test'
import { contentKey, LayerCache } from '../../src/build/cache.ts'
import { digestOf } from '../../src/digest.ts'
import { isOcikitError } from '../../src/errors.ts'
import { encodeLayer } from '../../src/layer/encode.ts'
import { fileMapEntries } from '../../src/layer/source-files.ts'
import { tempDir } from '../helpers/tmp.ts'

async function put(c: LayerCache, content: string) {
  const entries = fileMapEntries({ f: content })
  return c.put(contentKey(digestOf(content), 'gzip', undefined), (s) => encodeLayer(entries, s))
}

test('put, get and read back; a record whose blob is gone is a miss; a blob changed on disk fails the read', async (t) => {
  const dir = await tempDir(t)
  const c = new LayerCache(dir)
  const rec = await put(c, 'hello')
  const got = await c.get(rec.key)
  assert.equal(got?.digest, rec.digest)
  assert.equal(await text(await c.layer(rec).uncompressed()).then((s) => s.includes('hello')), true)
  const blob = path.join(dir, 'blobs/sha256', rec.digest.slice(7))
  const bytes = await fs.readFile(blob)
  bytes.writeUInt8((bytes.at(-5) as number) ^ 0xff, bytes.length - 5)
  await fs.writeFile(blob, bytes)
  await assert.rejects(text(await c.layer(rec).compressed()), (e) => isOcikitError(e, 'DIGEST_MISMATCH'))
  await fs.rm(blob)
  assert.equal(await c.get(rec.key), undefined)
})

test('prune keeps the most recently used layers within the bound, removes the rest and orphan blobs; --all empties it', async (t) => {
  const dir = await tempDir(t)
  const c = new LayerCache(dir)
  const a = await put(c, 'a'.repeat(10))
  const b = await put(c, 'b'.repeat(20))
  const old = new Date(Date.now() - 60_000)
  await fs.utimes(path.join(dir, 'layers', `${a.key}.json`), old, old)
  await fs.writeFile(path.join(dir, 'blobs/sha256', 'f'.repeat(64)), 'orphan')
  const older = new Date(Date.now() - 3600_000)
  await fs.utimes(path.join(dir, 'blobs/sha256', 'f'.repeat(64)), older, older)
  await fs.writeFile(path.join(dir, 'blobs/sha256', 'e'.repeat(64)), 'a build is writing its record')
  const r = await c.prune(b.size)
  assert.equal(r.layers, 1)
  assert.deepEqual(
    (await c.list()).map((x) => x.key),
    [b.key],
  )
  assert.deepEqual((await fs.readdir(path.join(dir, 'blobs/sha256'))).sort(), [b.digest.slice(7), 'e'.repeat(64)].sort())
  await c.prune(0)
  assert.deepEqual(await c.list(), [])
  assert.deepEqual(await fs.readdir(path.join(dir, 'blobs/sha256')), [])
  await assert.rejects(c.prune(-1), (e) => isOcikitError(e, 'INVALID_ARGUMENT'))
})

test('four builds at once on one cache, two pairs with the same content: all succeed, no entry is corrupt, a fifth build reuses them (issue 19)', async (t) => {
  const { spawn } = await import('node:child_process')
  const os = await import('node:os')
  const fsp = await import('node:fs/promises')
  const pathm = await import('node:path')
  const dir = await fsp.mkdtemp(pathm.join(os.tmpdir(), 'ocikit-cache4-'))
  t.after(() => fsp.rm(dir, { recursive: true, force: true }))
  const cacheDir = pathm.join(dir, 'cache')
  const child = pathm.resolve(import.meta.dirname, '../helpers/kill-child.ts')
  const run = (tag: string, seed: number) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [child, 'cache', cacheDir, tag, String(seed)], { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      c.stderr.on('data', (d: Buffer) => {
        stderr += d.toString()
      })
      c.on('exit', (code) => resolve({ code, stderr }))
    })
  const results = await Promise.all([run('a', 1), run('b', 1), run('c', 2), run('d', 2)])
  for (const [i, r] of results.entries()) assert.equal(r.code, 0, `build ${i}: ${r.stderr}`)
  const cache = new LayerCache(cacheDir)
  const records = await cache.list()
  assert.equal(records.length, 2, 'one entry per distinct layer')
  for (const rec of records) {
    let n = 0
    for await (const c of await cache.layer(rec).compressed()) n += (c as Buffer).length
    assert.equal(n, rec.size)
  }
  const { build } = await import('../../src/build/build.ts')
  const ctx = pathm.join(dir, 'ctx-1')
  const again = await build({ context: ctx, to: [`oci:${dir}/again:1`] }, { cache })
  assert.deepEqual(again.cache, { reused: 1, built: 0 })
})
