import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { copy, fsck, list, read, readImage, tag, untag, write } from '../../../src/api.ts'
import { digestOf } from '../../../src/digest.ts'
import { canonicalJson } from '../../../src/documents/canonical.ts'
import type { Descriptor } from '../../../src/documents/schemas.ts'
import { isOcikitError } from '../../../src/errors.ts'
import { parsePlatform } from '../../../src/image/platform.ts'
import { MemoryBlobSource, randomImage, randomIndex } from '../../../src/image/random.ts'
import type { IoOptions } from '../../../src/image/types.ts'
import { SourceImage } from '../../../src/image/view.ts'
import { inspectView } from '../../../src/inspect.ts'
import { unpackImage } from '../../../src/layer/apply.ts'
import { OciLayout } from '../../../src/stores/layout/layout.ts'
import { REF_NAME } from '../../../src/stores/oci-index.ts'
import { sharedLayerIndex } from '../../helpers/shared-index.ts'
import { snapshot, tempDir } from '../../helpers/tmp.ts'
import { delegatingImage } from '../../helpers/views.ts'

test('write then read by tag, by digest and as the only image', async (t) => {
  const dir = await tempDir(t)
  const img = await randomImage({ seed: 1 })
  const d = await write(`oci:${dir}:v1`, img)
  assert.equal(d.digest, await img.digest())
  assert.equal(await (await read(`oci:${dir}:v1`)).digest(), d.digest)
  assert.equal(await (await read(`oci:${dir}@${d.digest}`)).digest(), d.digest)
  assert.equal(await (await read(`oci:${dir}`)).digest(), d.digest)
  const back = await readImage(`oci:${dir}:v1`)
  assert.deepEqual(await back.rawConfig(), await img.rawConfig())
  const [l0] = await back.layers()
  assert.equal(await l0?.diffId(), (await img.config()).rootfs.diff_ids[0])
})

test('several tags, a moved tag, untag, and errors that list the tags', async (t) => {
  const dir = await tempDir(t)
  const a = await randomImage({ seed: 1 })
  const b = await randomImage({ seed: 2 })
  await write(`oci:${dir}:a`, a)
  await write(`oci:${dir}:b`, b)
  await assert.rejects(read(`oci:${dir}`), (e) => isOcikitError(e, 'AMBIGUOUS_REFERENCE') && /tags: a, b/.test(e.message))
  await assert.rejects(read(`oci:${dir}:c`), (e) => isOcikitError(e, 'MANIFEST_UNKNOWN') && /no tag 'c' \(tags: a, b\)/.test(e.message))
  await tag(`oci:${dir}:a`, 'latest')
  assert.equal(await (await read(`oci:${dir}:latest`)).digest(), await a.digest())
  await write(`oci:${dir}:latest`, b) // moves the tag
  assert.equal(await (await read(`oci:${dir}:latest`)).digest(), await b.digest())
  assert.deepEqual(
    (await list(`oci:${dir}`)).map((e) => e.tag),
    ['a', 'b', 'latest'],
  )
  await untag(`oci:${dir}:a`)
  assert.deepEqual(
    (await list(`oci:${dir}`)).map((e) => e.tag),
    ['b', 'latest'],
  )
  await assert.rejects(untag(`oci:${dir}:a`), (e) => isOcikitError(e, 'MANIFEST_UNKNOWN'))
  await assert.rejects(tag(`oci:${dir}:b`, 'bad tag'), (e) => isOcikitError(e, 'INVALID_NAME'))
})

test('an index: platform resolution, nested images by digest, and copy between layouts', async (t) => {
  const dir = await tempDir(t)
  const idx = await randomIndex({ seed: 3 })
  await write(`oci:${dir}/a:multi`, idx)
  const arm = await read(`oci:${dir}/a:multi`, { platform: parsePlatform('linux/arm64') })
  assert.equal(arm.kind, 'image')
  // An image reachable only through the index can be named by digest.
  assert.equal(await (await read(`oci:${dir}/a@${await arm.digest()}`)).digest(), await arm.digest())
  await assert.rejects(
    read(`oci:${dir}/a:multi`, { platform: parsePlatform('windows/amd64') }),
    (e) => isOcikitError(e, 'PLATFORM_NOT_FOUND') && /linux\/arm64\/v8/.test(e.message),
  )
  const d = await copy(`oci:${dir}/a:multi`, `oci:${dir}/b:m`)
  assert.equal(d.digest, await idx.digest())
  const one = await copy(`oci:${dir}/a:multi`, `oci:${dir}/c:arm`, { platform: parsePlatform('linux/arm64/v8') })
  assert.equal(one.digest, await arm.digest())
  assert.equal(one.platform?.architecture, 'arm64')
})

test('a manifest in the layout that fails validation is a clear error, and reading changes nothing', async (t) => {
  const dir = await tempDir(t)
  const img = await randomImage({ seed: 9 })
  await write(`oci:${dir}:v1`, img)
  const bad = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x/y', digest: 'sha256:abc', size: 1 }, layers: [] }))
  const d = digestOf(bad)
  await fs.writeFile(path.join(dir, 'blobs', 'sha256', d.slice(7)), bad)
  const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8'))
  index.manifests.push({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: d,
    size: bad.length,
    annotations: { 'org.opencontainers.image.ref.name': 'bad' },
  })
  await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify(index))
  const before = await snapshot(dir)
  await assert.rejects(
    read(`oci:${dir}:bad`),
    (e) => isOcikitError(e, 'INVALID_MANIFEST') && e.message.includes('manifest.config.digest') && e.message.includes(d),
  )
  await assert.rejects(tag(`oci:${dir}:bad`, 'x'), (e) => isOcikitError(e, 'INVALID_MANIFEST'))
  assert.equal(await (await read(`oci:${dir}:v1`)).digest(), await img.digest())
  assert.deepEqual(await snapshot(dir), before)
})

test('a layer blob that is corrupt on disk fails the read of that layer', async (t) => {
  const dir = await tempDir(t)
  const img = await randomImage({ seed: 4, layers: 1 })
  await write(`oci:${dir}:v1`, img)
  const layerDigest = (await img.manifest()).layers[0]?.digest as string
  const p = path.join(dir, 'blobs', 'sha256', layerDigest.slice(7))
  const bytes = await fs.readFile(p)
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1)
  await fs.writeFile(p, bytes)
  const [layer] = await (await readImage(`oci:${dir}:v1`)).layers()
  await assert.rejects(
    async () => {
      for await (const _ of await layer!.compressed());
    },
    (e) => isOcikitError(e, 'DIGEST_MISMATCH'),
  )
})

test('writing to a digest name or a non-layout directory is refused without changes', async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'file'), 'x')
  const before = await snapshot(dir)
  const img = await randomImage({ seed: 1, layers: 1 })
  await assert.rejects(write(`oci:${dir}`, img), (e) => isOcikitError(e, 'INVALID_LAYOUT'))
  await assert.rejects(write(`oci:${dir}@${await img.digest()}`, img), (e) => isOcikitError(e, 'INVALID_NAME'))
  assert.deepEqual(await snapshot(dir), before)
})

test('a file store whose file does not exist says so with the name, and creates nothing', async (t) => {
  const dir = await tempDir(t)
  for (const n of [`bfc:${dir}/x.bfc`, `oci-archive:${dir}/x.tar`]) {
    await assert.rejects(read(n), (e) => isOcikitError(e) && e.message.includes(n) && /no such file|does not exist|ENOENT/.test(e.message), n)
  }
  assert.deepEqual(await fs.readdir(dir), [])
})

test('nested indexes: platform resolution through two levels, copy, fsck', async (t) => {
  const dir = await tempDir(t)
  const inner = await randomIndex({ seed: 31, layers: 1 })
  await write(`oci:${dir}:inner`, inner)
  const innerRaw = await inner.rawManifest()
  const outer = canonicalJson({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: await inner.mediaType(), digest: await inner.digest(), size: innerRaw.length }],
  })
  const layout = await OciLayout.open(dir)
  const w = await layout.writeBlob(outer)
  await layout.updateIndex((index) => ({
    ...index,
    manifests: [
      ...index.manifests,
      { mediaType: 'application/vnd.oci.image.index.v1+json', digest: w.digest, size: w.size, annotations: { [REF_NAME]: 'outer' } },
    ],
  }))
  const arm = await readImage(`oci:${dir}:outer`, { platform: parsePlatform('linux/arm64') })
  assert.equal((await arm.config()).architecture, 'arm64')
  await assert.rejects(
    readImage(`oci:${dir}:outer`, { platform: parsePlatform('linux/s390x') }),
    (e) => isOcikitError(e, 'PLATFORM_NOT_FOUND') && /linux\/amd64, linux\/arm64\/v8/.test(e.message),
  )
  const d = await copy(`oci:${dir}:outer`, `oci:${dir}-copy:o`)
  t.after(() => fs.rm(`${dir}-copy`, { recursive: true, force: true }))
  assert.equal(d.digest, w.digest)
  assert.equal((await fsck(`oci:${dir}-copy`)).ok, true)
  assert.equal((await fsck(`oci:${dir}`)).reachable, 1 + 1 + 2 * 3)
})

test('the images of an index are written at the same time, and a layer they share is read and reported once', async (t) => {
  const dir = await tempDir(t)
  const { index, probe } = sharedLayerIndex()
  const reported: string[] = []
  await write(`oci:${dir}:multi`, index, { onBlob: (e) => reported.push(e.digest) })
  assert.equal(probe.peak, 2, 'the layers of two images were read at once')
  assert.equal(probe.opened.filter((d) => d === probe.shared).length, 1)
  assert.equal(reported.filter((d) => d === probe.shared).length, 1)
  assert.equal(new Set(reported).size, reported.length, 'each blob reported once')
  assert.deepEqual((await fsck(`oci:${dir}`)).problems, [])
  assert.equal(await (await read(`oci:${dir}:multi`)).digest(), await index.digest())
})

test('an artifact (an SBOM on the empty config) is written, copied, checked and inspected; unpacking it says what it is', async (t) => {
  const dir = await tempDir(t)
  const src = new MemoryBlobSource()
  const config = src.put(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json')
  const sbom = src.put(Buffer.from('{"spdxVersion":"SPDX-2.3"}'), 'application/spdx+json')
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/spdx+json', config, layers: [sbom] }
  const raw = canonicalJson(manifest)
  const artifact = new SourceImage(src, raw, digestOf(raw), manifest.mediaType, manifest as never)
  await write(`oci:${dir}/a:sbom`, artifact)
  await copy(`oci:${dir}/a:sbom`, `oci:${dir}/b:sbom`)
  for (const l of ['a', 'b']) assert.deepEqual((await fsck(`oci:${dir}/${l}`)).problems, [])
  const back = await readImage(`oci:${dir}/b:sbom`)
  assert.equal(await back.digest(), digestOf(raw))
  assert.deepEqual(Buffer.from(await back.rawConfig()).toString(), '{}')
  const facts = await inspectView(back)
  assert.equal(facts.kind === 'image' && facts.artifactType, 'application/spdx+json')
  await assert.rejects(
    unpackImage(back, path.join(dir, 'root')),
    (e) => isOcikitError(e, 'NOT_SUPPORTED') && /artifact \(application\/spdx\+json\)/.test(e.message),
  )
})

test('an image whose config has a diff ID count unlike its layer count is refused by copy, and nothing is written', async (t) => {
  const dir = await tempDir(t)
  const src = new MemoryBlobSource()
  const layer = src.put(Buffer.from('not really a layer'), 'application/vnd.oci.image.layer.v1.tar+gzip')
  const config = src.put(
    canonicalJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf('a'), digestOf('b')] } }),
    'application/vnd.oci.image.config.v1+json',
  )
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] }
  const raw = canonicalJson(manifest)
  await assert.rejects(
    write(`oci:${dir}:bad`, new SourceImage(src, raw, digestOf(raw), manifest.mediaType, manifest as never)),
    (e) => isOcikitError(e, 'INVALID_CONFIG') && /has 2 entries but the manifest has 1 layers/.test(e.message),
  )
  assert.deepEqual(await list(`oci:${dir}`), [])
  assert.deepEqual(await fs.readdir(path.join(dir, 'blobs', 'sha256')), [], 'no blob written')
})

/** Waits until `cond` holds; fails after 5 s instead of waiting forever. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !cond(); waited += 5) {
    if (waited > 5000) assert.fail(`timed out: ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** A source whose config read waits for `configGate`, and whose layer streams send one chunk, then wait for `layerGate`. */
function gatedSource(configGate: Promise<void>, layerGate: Promise<void>) {
  const mem = new MemoryBlobSource('gated')
  const events: string[] = []
  const layerDestroyed: boolean[] = []
  const src = {
    name: 'gated',
    put: mem.put.bind(mem),
    async readBlob(d: Descriptor, o?: IoOptions) {
      events.push('config read starts')
      await configGate
      return mem.readBlob(d, o)
    },
    async openBlob(d: Descriptor, o?: IoOptions) {
      events.push('layer stream opens')
      const whole = Buffer.from(await mem.readBlob(d, o))
      let sent = false
      const i = layerDestroyed.push(false) - 1
      return new Readable({
        read() {
          if (!sent) {
            sent = true
            this.push(whole.subarray(0, 1))
            return
          }
          layerGate.then(() => {
            this.push(whole.subarray(1))
            this.push(null)
          })
        },
        destroy(e, cb) {
          layerDestroyed[i] = true
          cb(e)
        },
      })
    },
  }
  return { src, events, layerDestroyed }
}

function gatedImage(src: ReturnType<typeof gatedSource>['src'], diffIds: number) {
  const layer = src.put(Buffer.from('layer bytes'), 'application/vnd.oci.image.layer.v1.tar+gzip')
  const ids = Array.from({ length: diffIds }, (_, i) => digestOf(String(i)))
  const config = src.put(
    canonicalJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: ids } }),
    'application/vnd.oci.image.config.v1+json',
  )
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] }
  const raw = canonicalJson(manifest)
  return new SourceImage(src, raw, digestOf(raw), manifest.mediaType, manifest as never)
}

test('a layout write streams the layers while the config is read, and renames nothing before the config is checked', {
  timeout: 10_000,
}, async (t) => {
  const dir = await tempDir(t)
  let openConfig = () => {}
  let openLayer = () => {}
  const g = gatedSource(new Promise((r) => (openConfig = r)), new Promise((r) => (openLayer = r)))
  const img = gatedImage(g.src, 1)
  const writing = write(`oci:${dir}:v1`, img)
  // The layer's stream is open and its first bytes are on their way while the config still waits.
  await until(() => g.events.includes('layer stream opens'), 'the layer stream opens while the config read waits')
  assert.ok(g.events.includes('config read starts'))
  openLayer()
  await new Promise((r) => setTimeout(r, 50))
  assert.deepEqual(
    (await fs.readdir(path.join(dir, 'blobs', 'sha256'))).filter((f) => !f.startsWith('.tmp-')),
    [],
    'the layer waits for the config check before it is renamed into place',
  )
  openConfig()
  const d = await writing
  assert.equal(d.digest, await img.digest())
  assert.deepEqual((await fsck(`oci:${dir}`)).problems, [])
})

test('a config that fails its check stops the layer transfers under way; its error is the one reported and nothing is written', {
  timeout: 10_000,
}, async (t) => {
  const dir = await tempDir(t)
  let openConfig = () => {}
  // The layer never finishes on its own: only the failed check can end the write.
  const g = gatedSource(new Promise((r) => (openConfig = r)), new Promise(() => {}))
  const img = gatedImage(g.src, 2)
  const writing = write(`oci:${dir}:v1`, img)
  await until(() => g.events.includes('layer stream opens'), 'the layer stream opens while the config read waits')
  openConfig()
  await assert.rejects(writing, (e) => isOcikitError(e, 'INVALID_CONFIG') && /has 2 entries but the manifest has 1 layers/.test(e.message))
  assert.deepEqual(g.layerDestroyed, [true], 'the layer stream was stopped')
  assert.deepEqual(await fs.readdir(path.join(dir, 'blobs', 'sha256')), [], 'no blob and no temp file left')
  assert.deepEqual(await list(`oci:${dir}`), [])
})

test('a blob or index.json that is not a regular file (a FIFO, a directory, a link to /dev/zero) is a clear error, not a hang', {
  timeout: 20_000,
}, async (t) => {
  const dir = await tempDir(t)
  const img = await randomImage({ seed: 7, layers: 1 })
  await write(`oci:${dir}:v1`, img)
  const layout = await OciLayout.open(dir)
  const m = await img.manifest()
  const configPath = layout.blobPath(m.config.digest)
  const layerPath = layout.blobPath(m.layers[0]!.digest)
  const { execFileSync } = await import('node:child_process')
  await fs.rm(configPath)
  execFileSync('mkfifo', [configPath])
  await fs.rm(layerPath)
  await fs.symlink('/dev/zero', layerPath)
  const notRegular = (e: unknown) => isOcikitError(e, 'INVALID_LAYOUT') && /is not a regular file/.test((e as Error).message)
  await assert.rejects(async () => (await readImage(`oci:${dir}:v1`)).config(), notRegular)
  const [layer] = await (await readImage(`oci:${dir}:v1`)).layers()
  await assert.rejects(layer!.compressed(), notRegular)
  const report = await fsck(`oci:${dir}`)
  assert.deepEqual(report.problems.map((p) => p.message).sort(), ['not a regular file', 'not a regular file'])
  await fs.rm(configPath)
  await fs.mkdir(configPath)
  await assert.rejects(async () => (await readImage(`oci:${dir}:v1`)).config(), notRegular)
  await fs.rename(path.join(dir, 'index.json'), path.join(dir, 'index.json.real'))
  execFileSync('mkfifo', [path.join(dir, 'index.json')])
  await assert.rejects(read(`oci:${dir}:v1`), notRegular)
})

test('a write that fails after some of its blobs were named leaves no layout behind when it created it', async (t) => {
  const dir = path.join(await tempDir(t), 'new-layout')
  const img = await randomImage({ seed: 81, layers: 1 })
  let configWritten: () => void = () => {}
  const written = new Promise<void>((r) => {
    configWritten = r
  })
  const [layer] = await img.layers()
  const failing = delegatingImage(img, {
    layers: async () => [
      {
        mediaType: layer?.mediaType ?? '',
        digest: () => (layer as NonNullable<typeof layer>).digest(),
        diffId: () => (layer as NonNullable<typeof layer>).diffId(),
        size: () => (layer as NonNullable<typeof layer>).size(),
        uncompressed: () => (layer as NonNullable<typeof layer>).uncompressed(),
        // Fails only once the config is in place under its name.
        compressed: async () => {
          await written
          throw new Error('the source broke')
        },
      },
    ],
  })
  await assert.rejects(write(`oci:${dir}:v1`, failing, { onBlob: () => configWritten() }), /the source broke/)
  await assert.rejects(fs.stat(dir), { code: 'ENOENT' }, 'the layout this write made is gone, config blob and all')
})
