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
