/**
 * The store contract: what every store must do, run against each of them through the seam
 * (`Store.read`, `Store.sink` and the one write engine). A new store gets the whole suite by
 * adding one entry to STORES.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { describe, type TestContext, test } from 'node:test'
import { writeTo } from '../../src/copy.ts'
import { type Digest, digestOf } from '../../src/digest.ts'
import { canonicalJson } from '../../src/documents/canonical.ts'
import { isOcikitError } from '../../src/errors.ts'
import { MemoryBlobSource, randomImage, randomIndex } from '../../src/image/random.ts'
import type { Image, ImageOrIndex, Layer } from '../../src/image/types.ts'
import { SourceImage } from '../../src/image/view.ts'
import { parseName } from '../../src/name/parse.ts'
import { TarFile } from '../../src/stores/archive/tar-file.ts'
import { BfcFile } from '../../src/stores/bfc/container.ts'
import { OciLayout } from '../../src/stores/layout/layout.ts'
import { MemoryStore } from '../../src/stores/memory/store.ts'
import { blobEntryName } from '../../src/stores/oci-index.ts'
import { storeFor } from '../../src/stores/open.ts'
import { RegistryClient } from '../../src/stores/registry/client.ts'
import type { BlobEvent, Store } from '../../src/stores/types.ts'
import { needPeers } from '../helpers/peers.ts'
import { startRegistry } from '../helpers/registry.ts'
import { sharedLayerIndex } from '../helpers/shared-index.ts'
import { tempDir } from '../helpers/tmp.ts'
import { delegatingImage } from '../helpers/views.ts'

/** One store under test: the store for a tag, and whether it holds a blob (and no stray temp file). */
interface Harness {
  at(tag: string): Store
  holds(digest: Digest): Promise<boolean>
  /** Files a failed write may have left half-made (temp files); empty for stores without files. */
  leftovers(): Promise<string[]>
}

const STORES: { name: string; needs?: string[]; open(t: TestContext): Promise<Harness> }[] = [
  {
    name: 'OCI layout',
    async open(t) {
      const dir = path.join(await tempDir(t), 'layout')
      return {
        at: (tag) => storeFor(parseName(`oci:${dir}:${tag}`)),
        holds: async (d) => (await OciLayout.open(dir)).hasBlob(d),
        leftovers: async () => (await fs.readdir(path.join(dir, 'blobs', 'sha256')).catch(() => [])).filter((f) => f.startsWith('.tmp-')),
      }
    },
  },
  {
    name: 'registry (docker-registry)',
    needs: ['docker-registry'],
    async open(t) {
      const r = await startRegistry(t)
      const registry = { backoffMs: 10 }
      return {
        at: (tag) => storeFor(parseName(`${r.host}/app:${tag}`), { registry }),
        holds: (d) => new RegistryClient(r.host, 'app', registry).hasBlob(d),
        leftovers: async () => [],
      }
    },
  },
  {
    name: 'OCI archive',
    async open(t) {
      const file = path.join(await tempDir(t), 'images.tar')
      return {
        at: (tag) => storeFor(parseName(`oci-archive:${file}:${tag}`)),
        holds: async (d) => (await TarFile.open(file, 'test')).entry(blobEntryName(d)) !== undefined,
        leftovers: async () => (await fs.readdir(path.dirname(file))).filter((f) => f.includes('.tmp-')),
      }
    },
  },
  {
    name: 'BFC file',
    async open(t) {
      const file = path.join(await tempDir(t), 'images.bfc')
      return {
        at: (tag) => storeFor(parseName(`bfc:${file}:${tag}`)),
        holds: async (d) => (await BfcFile.open(file, 'test').catch(() => undefined))?.entries.has(blobEntryName(d)) ?? false,
        leftovers: async () => (await fs.readdir(path.dirname(file))).filter((f) => f.includes('.tmp-')),
      }
    },
  },
  {
    name: 'BFC file, encrypted and compressed',
    async open(t) {
      const file = path.join(await tempDir(t), 'images.bfc')
      const bfc = { key: { key: Buffer.alloc(32, 9) }, encrypt: true, compress: true }
      return {
        at: (tag) => storeFor(parseName(`bfc:${file}:${tag}`), { bfc }),
        holds: async (d) => (await BfcFile.open(file, 'test').catch(() => undefined))?.entries.has(blobEntryName(d)) ?? false,
        leftovers: async () => (await fs.readdir(path.dirname(file))).filter((f) => f.includes('.tmp-')),
      }
    },
  },
  {
    name: 'memory',
    async open() {
      const m = new MemoryStore('contract')
      return { at: (tag) => m.store(tag), holds: async (d) => m.has(d), leftovers: async () => [] }
    },
  },
]

async function bytesOf(s: Readable): Promise<Buffer> {
  return Buffer.concat(await s.toArray())
}

/** Every blob of a view read back through the store: manifests, configs and layer bytes, by digest. */
async function contents(x: ImageOrIndex, out = new Map<string, string>()): Promise<Map<string, string>> {
  out.set(await x.digest(), digestOf(await x.rawManifest()))
  if (x.kind === 'index') {
    for (const d of (await x.manifest()).manifests) {
      const child = d.mediaType.includes('index') ? await x.index(d.digest) : await x.image(d.digest)
      await contents(child, out)
    }
    return out
  }
  const m = await x.manifest()
  out.set(m.config.digest, digestOf(await x.rawConfig()))
  for (const [i, l] of (await x.layers()).entries()) out.set((m.layers[i] as { digest: string }).digest, digestOf(await bytesOf(await l.compressed())))
  return out
}

/** An OCI artifact: an SBOM on the empty config. */
function artifact(): Image {
  const src = new MemoryBlobSource('artifact')
  const config = src.put(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json')
  const sbom = src.put(Buffer.from('{"spdxVersion":"SPDX-2.3"}'), 'application/spdx+json')
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/spdx+json', config, layers: [sbom] }
  const raw = canonicalJson(manifest)
  return new SourceImage(src, raw, digestOf(raw), manifest.mediaType, manifest as never)
}

/** `img` with layer `n` breaking after its first 1000 bytes. */
async function breakingAt(img: Image, n: number): Promise<Image> {
  const layers = await img.layers()
  const broken: Layer[] = layers.map((l, i) =>
    i !== n
      ? l
      : {
          mediaType: l.mediaType,
          digest: () => l.digest(),
          diffId: () => l.diffId(),
          size: () => l.size(),
          uncompressed: (o) => l.uncompressed(o),
          compressed: async () => {
            const head = (await bytesOf(await l.compressed())).subarray(0, 1000)
            return Readable.from(
              (async function* () {
                yield head
                throw new Error('the source broke mid-layer')
              })(),
            )
          },
        },
  )
  return delegatingImage(img, { layers: async () => broken })
}

for (const s of STORES) {
  describe(`store contract: ${s.name}`, s.needs ? needPeers(...s.needs) : {}, () => {
    test('an image written and read back: every digest and byte the same', async (t) => {
      const h = await s.open(t)
      const img = await randomImage({ seed: 51, layers: 3 })
      const d = await writeTo(await h.at('v1').sink(), img)
      assert.equal(d.digest, await img.digest())
      const back = await h.at('v1').read()
      assert.equal(back.kind, 'image')
      assert.deepEqual(await contents(back), await contents(img))
    })

    test('an index written and read back: every child by digest, digests the same', async (t) => {
      const h = await s.open(t)
      const idx = await randomIndex({ seed: 52, layers: 2 })
      const d = await writeTo(await h.at('multi').sink(), idx)
      assert.equal(d.digest, await idx.digest())
      assert.deepEqual(await contents(await h.at('multi').read()), await contents(idx))
    })

    test('an artifact (an SBOM on the empty config) written and read back as it is', async (t) => {
      const h = await s.open(t)
      const a = artifact()
      await writeTo(await h.at('sbom').sink(), a)
      const back = await h.at('sbom').read()
      assert.equal(await back.digest(), await a.digest())
      assert.equal(back.kind === 'image' && Buffer.from(await back.rawConfig()).toString(), '{}')
    })

    test('a blob that several images of an index hold is put once', async (t) => {
      const h = await s.open(t)
      const { index, probe } = sharedLayerIndex(200)
      const events: BlobEvent[] = []
      await writeTo(await h.at('shared').sink(), index, { onBlob: (e) => events.push(e) })
      assert.equal(events.filter((e) => e.digest === probe.shared).length, 1)
      assert.equal(probe.opened.filter((d) => d === probe.shared).length, 1, 'the shared layer was read once')
      assert.equal(await (await h.at('shared').read()).digest(), await index.digest())
    })

    test('a failure in the middle leaves no tag and no named partial blob, and the write reports it', async (t) => {
      const h = await s.open(t)
      const img = await randomImage({ seed: 53, layers: 2, layerSize: 64 * 1024 })
      const broken = (await img.manifest()).layers[1]?.digest as Digest
      await assert.rejects(writeTo(await h.at('v1').sink(), await breakingAt(img, 1)), /the source broke mid-layer/)
      await assert.rejects(h.at('v1').read(), (e) => isOcikitError(e, 'MANIFEST_UNKNOWN') || isOcikitError(e, 'INVALID_LAYOUT'))
      assert.equal(await h.holds(broken).catch(() => false), false, 'the broken layer is not there under its name')
      assert.deepEqual(await h.leftovers(), [])
      // The store still works: the same image, whole, writes and reads back.
      await writeTo(await h.at('v1').sink(), img)
      assert.equal(await (await h.at('v1').read()).digest(), await img.digest())
    })
  })
}
