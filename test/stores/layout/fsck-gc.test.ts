import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { fsck, gc, untag, write } from '../../../src/api.ts'
import { isOcikitError } from '../../../src/errors.ts'
import { randomImage, randomIndex } from '../../../src/image/random.ts'
import type { Image } from '../../../src/image/types.ts'
import { snapshot, tempDir } from '../../helpers/tmp.ts'
import { delegatingImage } from '../../helpers/views.ts'

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

test('gc during a write: blobs the write reuses are renewed, so gc with its grace period keeps them (issue 13.7)', async (t) => {
  const dir = await tempDir(t)
  const img = await randomImage({ seed: 31, layers: 3 })
  await write(`oci:${dir}:old`, img)
  await untag(`oci:${dir}:old`)
  // The blobs have lain unreferenced for an hour: older than gc's grace period.
  const hourAgo = new Date(Date.now() - 3600_000)
  for (const f of await fs.readdir(path.join(dir, 'blobs', 'sha256'))) await fs.utimes(path.join(dir, 'blobs', 'sha256', f), hourAgo, hourAgo)
  // A write that reuses them all, with a gc (default grace) once it has passed over the layers.
  const existed: boolean[] = []
  let report: Awaited<ReturnType<typeof gc>> | undefined
  const racing = racingGc(img, 4, async () => {
    report = await gc(`oci:${dir}`)
  })
  await write(`oci:${dir}:new`, racing, { onBlob: (b) => existed.push(b.existed) && racing.blobs++ })
  // The config and the layers had been reused (and renewed) when gc ran; the manifest, not yet
  // reached, was old, unreferenced and deleted, then written again (manifests are not blob events).
  assert.deepEqual(existed, [true, true, true, true])
  assert.deepEqual(
    report?.removed.map((b) => b.digest),
    [await img.digest()],
  )
  const r = await fsck(`oci:${dir}`)
  assert.equal(r.ok, true, JSON.stringify(r.problems))
})

/**
 * `img`, whose writer runs `race` (once) when it asks for the manifest's bytes after `after`
 * blobs were reported through `onBlob`: in the middle of a write, nothing tagged yet.
 */
function racingGc(img: Image, after: number, race: () => Promise<void>): Image & { blobs: number } {
  let ran = false
  const racing = Object.assign(
    delegatingImage(img, {
      rawManifest: async () => {
        if (!ran && racing.blobs >= after) {
          ran = true
          await race()
        }
        return img.rawManifest()
      },
    }),
    { blobs: 0 },
  )
  return racing
}

test('gc --grace 0 deleting blobs while a write runs: the write puts them back before it tags, and fsck is clean (issue 13.7)', async (t) => {
  const dir = await tempDir(t)
  const layout = `oci:${dir}`
  await write(`${layout}:other`, await randomImage({ seed: 32, layers: 1 }))
  const img = await randomImage({ seed: 33, layers: 3 })
  // gc runs once the config and the three layers are in place, none of them referenced yet.
  let removed = -1
  const racing = racingGc(img, 4, async () => {
    removed = (await gc(layout, { graceMs: 0 })).removed.length
  })
  await write(`${layout}:v1`, racing, { onBlob: () => racing.blobs++ })
  assert.ok(removed >= 3, `gc removed ${removed} blobs from under the write`)
  const r = await fsck(layout)
  assert.equal(r.ok, true, JSON.stringify(r.problems))
  assert.equal(r.reachable, 1 + 1 + 1 + 1 + 1 + 3, 'both images, every blob')
})

test('a layout whose blobs/ is a symlink is refused: gc never deletes, and writes never land, where it leads (issue 13.8)', async (t) => {
  const dir = await tempDir(t)
  const elsewhere = await tempDir(t)
  await write(`oci:${dir}:v1`, await randomImage({ seed: 34, layers: 1 }))
  // The blobs move to a project directory, with an old temp-looking file and an unrelated one.
  await fs.cp(path.join(dir, 'blobs'), elsewhere, { recursive: true })
  await fs.rm(path.join(dir, 'blobs'), { recursive: true })
  await fs.symlink(elsewhere, path.join(dir, 'blobs'))
  const old = new Date(Date.now() - 3600_000)
  for (const name of ['.tmp-0123456789abcdef', 'notes.txt']) {
    await fs.writeFile(path.join(elsewhere, 'sha256', name), 'keep me')
    await fs.utimes(path.join(elsewhere, 'sha256', name), old, old)
  }
  const before = await snapshot(elsewhere)
  const refused = (e: unknown) => isOcikitError(e, 'INVALID_LAYOUT') && /blobs is a symlink/.test((e as Error).message)
  await assert.rejects(gc(`oci:${dir}`, { graceMs: 0 }), refused)
  await assert.rejects(write(`oci:${dir}:v2`, await randomImage({ seed: 35, layers: 1 })), refused)
  assert.deepEqual(await snapshot(elsewhere), before, 'nothing outside the layout changed')
})

test('gc deletes only blobs and ocikit temp files: not symlinks, odd names or an algorithm directory that is a link (issue 13.8)', async (t) => {
  const dir = await tempDir(t)
  const outside = await tempDir(t)
  await write(`oci:${dir}:v1`, await randomImage({ seed: 36, layers: 1 }))
  const sha = path.join(dir, 'blobs', 'sha256')
  const old = new Date(Date.now() - 3600_000)
  await fs.writeFile(path.join(outside, 'precious'), 'x')
  const unref = 'f'.repeat(64)
  await fs.writeFile(path.join(sha, unref), 'unreferenced')
  await fs.writeFile(path.join(sha, '.tmp-0123456789abcdef'), 'abandoned')
  await fs.writeFile(path.join(sha, '.tmp-mine'), 'not ours')
  await fs.writeFile(path.join(sha, 'README'), 'not a blob')
  await fs.symlink(path.join(outside, 'precious'), path.join(sha, 'e'.repeat(64)))
  for (const f of [unref, '.tmp-0123456789abcdef', '.tmp-mine', 'README']) await fs.utimes(path.join(sha, f), old, old)
  const r = await gc(`oci:${dir}`)
  assert.deepEqual(
    r.removed.map((b) => b.digest),
    [`sha256:${unref}`],
  )
  assert.equal(r.tempsRemoved, 1)
  assert.deepEqual((await fs.readdir(sha)).filter((f) => !/^[0-9a-f]{64}$/.test(f) || f === 'e'.repeat(64)).sort(), ['.tmp-mine', 'README', 'e'.repeat(64)])
  assert.equal(await fs.readFile(path.join(outside, 'precious'), 'utf8'), 'x')
  // An algorithm directory that is a link: refused.
  await fs.symlink(outside, path.join(dir, 'blobs', 'sha512'))
  await assert.rejects(gc(`oci:${dir}`), (e) => isOcikitError(e, 'INVALID_LAYOUT') && /sha512 is a symlink/.test((e as Error).message))
})

test('a tag on an index of indexes: gc deletes nothing it reaches, fsck re-hashes every nested blob and finds a damaged one (issue 19)', async (t) => {
  const dir = await tempDir(t)
  const { OciLayout } = await import('../../../src/stores/layout/layout.ts')
  const { canonicalJson } = await import('../../../src/documents/canonical.ts')
  const { REF_NAME } = await import('../../../src/stores/oci-index.ts')
  const inner = await randomIndex({ seed: 71, layers: 2 })
  await write(`oci:${dir}:inner`, inner)
  const raw = await inner.rawManifest()
  const outer = canonicalJson({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: await inner.mediaType(), digest: await inner.digest(), size: raw.length }],
  })
  const layout = await OciLayout.open(dir)
  const w = await layout.writeBlob(outer)
  // Only the outer index is tagged: everything else is reached through it.
  await layout.updateIndex(() => ({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: w.digest, size: w.size, annotations: { [REF_NAME]: 'outer' } }],
  }))
  const stray = await layout.writeBlob(Buffer.from('nobody names me'))
  const sha = path.join(dir, 'blobs', 'sha256')
  const old = new Date(Date.now() - 3600_000)
  for (const f of await fs.readdir(sha)) await fs.utimes(path.join(sha, f), old, old)
  const before = (await fs.readdir(sha)).length
  const r = await gc(`oci:${dir}`, { graceMs: 0 })
  assert.deepEqual(
    r.removed.map((b) => b.digest),
    [stray.digest],
  )
  assert.equal((await fs.readdir(sha)).length, before - 1)
  const report = await fsck(`oci:${dir}`)
  assert.equal(report.ok, true)
  assert.equal(report.hashed, before - 1, 'every blob the nested indexes reach, re-hashed')
  // A layer two indexes down, damaged: fsck names it and the path it was reached by.
  const child = await inner.image((await inner.manifest()).manifests[0]?.digest as import('../../../src/digest.ts').Digest)
  const layerDigest = (await child.manifest()).layers[0]?.digest as string
  await fs.writeFile(path.join(sha, layerDigest.slice(7)), 'damaged')
  const bad = await fsck(`oci:${dir}`)
  assert.equal(bad.ok, false)
  assert.ok(
    bad.problems.some((p) => p.digest === layerDigest && /manifests\[0\].*manifests\[0\]/.test(p.via)),
    JSON.stringify(bad.problems),
  )
})
