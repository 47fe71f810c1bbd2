/**
 * Uploading while compressing: each layer the build encodes now streams to a sink that takes
 * streams, and the write engine then counts it as written without a second put; a reused layer
 * does not stream; a failed early upload is a notice and the layer is put the ordinary way.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { buildImage } from '../../src/build/build.ts'
import { LayerCache } from '../../src/build/cache.ts'
import { EarlyUploadSink } from '../../src/build/early-upload.ts'
import { writeTo } from '../../src/copy.ts'
import { type Digest, digestOf } from '../../src/digest.ts'
import type { Descriptor } from '../../src/documents/schemas.ts'
import type { Image } from '../../src/image/types.ts'
import { MemoryStore } from '../../src/stores/memory/store.ts'
import type { ImageSink, PutBlobOptions } from '../../src/stores/types.ts'
import { tempDir } from '../helpers/tmp.ts'

/** A memory sink that also takes streams, recording what came which way. */
async function streamingSink(o: { fail?: boolean } = {}) {
  const store = new MemoryStore()
  const inner = await store.store('x').sink()
  const streamed = new Map<Digest, Buffer>()
  const put: Digest[] = []
  const sink: ImageSink = {
    name: inner.name,
    copiesForeignLayers: inner.copiesForeignLayers,
    putBlob: (d: Descriptor, open: () => Promise<Readable>, po: PutBlobOptions) => {
      put.push(d.digest)
      return inner.putBlob(d, open, po)
    },
    putManifest: (d, b, io) => inner.putManifest(d, b, io),
    commit: (x, d, b, n, io) => inner.commit(x, d, b, n, io),
    async putStream(bytes: Readable) {
      const chunks: Buffer[] = []
      for await (const c of bytes) {
        chunks.push(c as Buffer)
        if (o.fail) throw new Error('the registry went away')
      }
      const all = Buffer.concat(chunks)
      const d = { mediaType: 'application/octet-stream', digest: digestOf(all), size: all.length }
      await inner.putBlob(d, async () => Readable.from([all]), {}) // into the store, as a registry keeps it
      streamed.set(d.digest, all)
      return { digest: d.digest, size: d.size }
    },
  }
  return { sink, streamed, put }
}

async function context(t: import('node:test').TestContext): Promise<string> {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'a.txt'), 'a'.repeat(100_000))
  await fs.writeFile(path.join(dir, 'b.txt'), 'b\n')
  return dir
}

test('a layer encoded now streams to the sink while it is made; the engine counts it written and puts it no second time', async (t) => {
  const dir = await context(t)
  const { sink, streamed, put } = await streamingSink()
  const notices: string[] = []
  const early = EarlyUploadSink.over(sink, { onFailure: (e) => notices.push(e.message) }) as EarlyUploadSink
  const plan = await buildImage(
    { context: dir, timestamp: 0 },
    { cache: new LayerCache(path.join(dir, '..', `${path.basename(dir)}-c`)), onLayerEncoding: (b) => early.take(b) },
  )
  const events: { digest: string; existed: boolean }[] = []
  await writeTo(early, plan.image, { onBlob: (b) => events.push(b) })
  const [layer] = await (plan.image as Image).manifest().then((m) => m.layers)
  assert.ok(layer)
  assert.ok(streamed.has(layer.digest), 'the layer went up as a stream')
  assert.equal(streamed.get(layer.digest)?.length, layer.size)
  assert.ok(!put.includes(layer.digest), 'and was not put again')
  assert.deepEqual(
    events.find((e) => e.digest === layer.digest),
    { digest: layer.digest, size: layer.size, existed: false, mounted: false },
  )
  assert.deepEqual(notices, [])
})

test('a layer reused from the cache does not stream; a failed early upload is a notice and the layer is put the ordinary way', async (t) => {
  const dir = await context(t)
  const cache = new LayerCache(path.join(dir, '..', `${path.basename(dir)}-c`))
  await (await buildImage({ context: dir, timestamp: 0 }, { cache })).image.digest()
  const reused = await streamingSink()
  const early = EarlyUploadSink.over(reused.sink, { onFailure: () => {} }) as EarlyUploadSink
  const plan = await buildImage({ context: dir, timestamp: 0 }, { cache, onLayerEncoding: (b) => early.take(b) })
  await writeTo(early, plan.image)
  assert.equal(reused.streamed.size, 0, 'nothing streamed: the layer was in the cache')
  assert.equal(reused.put.length, 2, 'the layer and the config were put')

  await fs.writeFile(path.join(dir, 'b.txt'), 'changed\n')
  const failing = await streamingSink({ fail: true })
  const notices: string[] = []
  const early2 = EarlyUploadSink.over(failing.sink, { onFailure: (e) => notices.push(e.message) }) as EarlyUploadSink
  const plan2 = await buildImage({ context: dir, timestamp: 0 }, { cache, onLayerEncoding: (b) => early2.take(b) })
  const d = await writeTo(early2, plan2.image)
  assert.deepEqual(notices, ['the registry went away'])
  const [layer] = (await (plan2.image as Image).manifest()).layers
  assert.ok(layer && failing.put.includes(layer.digest), 'the layer was put after the stream failed')
  assert.equal(d.digest, await plan2.image.digest())
})

test('a sink that takes no streams is left as it is', async () => {
  const inner = await new MemoryStore().store('y').sink()
  assert.equal(EarlyUploadSink.over(inner, { onFailure: () => {} }), undefined)
})
