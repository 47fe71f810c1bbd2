import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { fsck, gc, untag, write } from '../../../src/api.ts'
import { isOcikitError } from '../../../src/errors.ts'
import { randomImage, randomIndex } from '../../../src/image/memory.ts'
import { snapshot, tempDir } from '../../helpers/tmp.ts'

const blob = (dir: string, digest: string) => path.join(dir, 'blobs', 'sha256', digest.slice(7))

async function layoutWithImages(dir: string) {
  const img = await randomImage({ seed: 11, layers: 3 })
  const idx = await randomIndex({ seed: 12, layers: 2 })
  await write(`oci:${dir}:img`, img)
  await write(`oci:${dir}:idx`, idx)
  return { img, idx, m: await img.manifest() }
}

test('fsck of a clean layout re-hashes every reachable blob once', async (t) => {
  const dir = await tempDir(t)
  await layoutWithImages(dir)
  const r = await fsck(`oci:${dir}`)
  assert.equal(r.ok, true)
  // img: manifest+config+3 layers; idx: index + 2×(manifest+config+2 layers)
  assert.equal(r.reachable, 5 + 1 + 8)
  assert.equal(r.hashed, r.reachable)
})

test('fsck reports missing, truncated and corrupt blobs and invalid documents with their path, changing nothing', async (t) => {
  const dir = await tempDir(t)
  const { m, idx } = await layoutWithImages(dir)
  await fs.rm(blob(dir, m.layers[0]!.digest))
  const l1 = blob(dir, m.layers[1]!.digest)
  await fs.truncate(l1, 10)
  const cfg = blob(dir, m.config.digest)
  const c = await fs.readFile(cfg)
  c.writeUInt8(c.readUInt8(5) ^ 1, 5)
  await fs.writeFile(cfg, c)
  const child = (await idx.manifest()).manifests[1]!
  await fs.writeFile(blob(dir, child.digest), Buffer.alloc(child.size, 0x20))
  const before = await snapshot(dir)
  const r = await fsck(`oci:${dir}`)
  assert.equal(r.ok, false)
  const byKind = Object.fromEntries(r.problems.map((p) => [`${p.kind}:${p.digest}`, p.via]))
  assert.match(byKind[`missing:${m.layers[0]!.digest}`] ?? '', /index\.json manifests\[0\] \(tag img\) → layers\[0\]/)
  assert.match(byKind[`truncated:${m.layers[1]!.digest}`] ?? '', /→ layers\[1\]/)
  assert.match(byKind[`corrupt:${m.config.digest}`] ?? '', /→ config/)
  assert.match(byKind[`corrupt:${child.digest}`] ?? '', /\(tag idx\) → manifests\[1\]/)
  assert.equal(r.problems.length, 4)
  assert.deepEqual(await snapshot(dir), before)
})

test('gc deletes only unreachable blobs; --dry-run lists them and deletes nothing', async (t) => {
  const dir = await tempDir(t)
  const { img } = await layoutWithImages(dir)
  await untag(`oci:${dir}:idx`)
  const before = await snapshot(dir)
  const dry = await gc(`oci:${dir}`, { dryRun: true, graceMs: 0 })
  assert.equal(dry.removed.length, 9)
  assert.deepEqual(await snapshot(dir), before)
  const recent = await gc(`oci:${dir}`, {})
  assert.equal(recent.removed.length, 0, 'the default grace period keeps fresh blobs')
  assert.equal(recent.keptRecent, 9)
  const r = await gc(`oci:${dir}`, { graceMs: 0 })
  assert.equal(r.removed.length, 9)
  assert.ok(r.bytes > 0)
  const after = await fsck(`oci:${dir}:img`)
  assert.equal(after.ok, true)
  assert.equal(after.reachable, 5)
  const left = await fs.readdir(path.join(dir, 'blobs', 'sha256'))
  assert.equal(left.length, 5)
  assert.ok(left.includes((await img.digest()).slice(7)))
})

test('gc refuses to run when a reachable manifest is missing, deleting nothing', async (t) => {
  const dir = await tempDir(t)
  const { idx } = await layoutWithImages(dir)
  await fs.rm(blob(dir, (await idx.manifest()).manifests[0]!.digest))
  const before = await snapshot(dir)
  await assert.rejects(gc(`oci:${dir}`, { graceMs: 0 }), (e) => isOcikitError(e, 'INVALID_LAYOUT') && /gc refused/.test(e.message) && /fsck/.test(e.message))
  assert.deepEqual(await snapshot(dir), before)
})
