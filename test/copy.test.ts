/**
 * The write engine (src/copy.ts) under many writes at once: their blob transfers to one place
 * share one limit per process, so fifty writes hold at most that many sources open (the load run
 * of issue 19 grew to 750 MiB at 200 images before it).
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { fsck, list, write } from '../src/api.ts'
import { digestOf } from '../src/digest.ts'
import { canonicalJson } from '../src/documents/canonical.ts'
import type { Descriptor } from '../src/documents/schemas.ts'
import { isOcikitError } from '../src/errors.ts'
import { MemoryBlobSource } from '../src/image/random.ts'
import { SourceImage } from '../src/image/view.ts'
import { tempDir } from './helpers/tmp.ts'

/** `n` images of four layers each whose layer streams are slow, and a count of how many are open at once. */
function slowImages(n: number) {
  const mem = new MemoryBlobSource('slow')
  const seen = { open: 0, most: 0 }
  const src = {
    name: 'slow',
    readBlob: (d: Descriptor) => mem.readBlob(d),
    async openBlob(d: Descriptor) {
      const bytes = Buffer.from(await mem.readBlob(d))
      seen.open++
      seen.most = Math.max(seen.most, seen.open)
      let sent = false
      const s = new Readable({
        read() {
          if (sent) return void this.push(null)
          sent = true
          setTimeout(() => this.push(bytes), 15)
        },
      })
      s.once('close', () => seen.open--)
      return s
    },
  }
  const images = Array.from({ length: n }, (_, i) => {
    const layers = [0, 1, 2, 3].map((k) => mem.put(Buffer.alloc(3000, i * 4 + k + 1), 'application/vnd.oci.image.layer.v1.tar'))
    const config = mem.put(
      canonicalJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }),
      'application/vnd.oci.image.config.v1+json',
    )
    const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers }
    const raw = canonicalJson(manifest)
    return new SourceImage(src, raw, digestOf(raw), manifest.mediaType, manifest as never)
  })
  return { images, seen }
}

test('fifty writes at once into one layout hold at most 16 layer sources open, and all complete', async (t) => {
  const dir = await tempDir(t)
  const { images, seen } = slowImages(50)
  await Promise.all(images.map((img, i) => write(`oci:${dir}/layout:i${i}`, img)))
  assert.ok(seen.most <= 16, `${seen.most} sources open at once`)
  assert.ok(seen.most >= 8, `the writes ran side by side (${seen.most} at most)`)
  const tags = new Map((await list(`oci:${dir}/layout`)).map((e) => [e.tag, e.descriptor.digest]))
  for (const [i, img] of images.entries()) assert.equal(tags.get(`i${i}`), await img.digest())
  assert.equal((await fsck(`oci:${dir}/layout`)).ok, true)
})

test('writes into different layouts do not share a limit', async (t) => {
  const dir = await tempDir(t)
  const { images, seen } = slowImages(12)
  await Promise.all(images.map((img, i) => write(`oci:${dir}/l${i}:v1`, img)))
  assert.ok(seen.most > 16, `${seen.most} sources open at once over twelve layouts of four layers`)
})

/** An image of one layer whose source serves that layer with a changed byte the first `bad` times. */
function flakyImage(bad: number) {
  const mem = new MemoryBlobSource('flaky')
  const layer = mem.put(Buffer.alloc(5000, 7), 'application/vnd.oci.image.layer.v1.tar')
  const config = mem.put(
    canonicalJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }),
    'application/vnd.oci.image.config.v1+json',
  )
  const reads = { layer: 0 }
  const src = {
    name: 'flaky',
    readBlob: (d: Descriptor) => mem.readBlob(d),
    async openBlob(d: Descriptor) {
      const bytes = Buffer.from(await mem.readBlob(d))
      if (d.digest === layer.digest && reads.layer++ < bad) bytes[100] = (bytes[100] as number) ^ 0xff
      return Readable.from([bytes])
    },
  }
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] }
  const raw = canonicalJson(manifest)
  return { img: new SourceImage(src, raw, digestOf(raw), manifest.mediaType, manifest as never), reads }
}

test('a blob that arrives with a changed byte is read once more, with a notice, and the write completes', async (t) => {
  const dir = await tempDir(t)
  const { img, reads } = flakyImage(1)
  const notices: string[] = []
  await write(`oci:${dir}/layout:v1`, img, { onNotice: (m) => notices.push(m) })
  assert.equal(reads.layer, 2)
  assert.equal(notices.length, 1)
  assert.match(notices[0] as string, /digest mismatch.*reading sha256:[0-9a-f]{64} again/)
  assert.equal((await list(`oci:${dir}/layout`))[0]?.descriptor.digest, await img.digest())
  assert.equal((await fsck(`oci:${dir}/layout`)).ok, true)
})

test('a blob wrong twice is DIGEST_MISMATCH, and the layout the write would have made is not left behind', async (t) => {
  const dir = await tempDir(t)
  const { img, reads } = flakyImage(2)
  await assert.rejects(write(`oci:${dir}/layout:v1`, img), (e) => isOcikitError(e, 'DIGEST_MISMATCH'))
  assert.equal(reads.layer, 2, 'read twice, not more')
  assert.deepEqual(await fs.readdir(dir), [])
})
