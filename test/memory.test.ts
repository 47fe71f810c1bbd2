import assert from 'node:assert/strict'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { test } from 'node:test'
import { compressor } from '../src/layer/compress.ts'
import { GC_STEP, noteStreamed, setGarbageCollector } from '../src/memory.ts'

test('an installed collector runs once per GC_STEP bytes streamed; none installed, nothing runs', async (t) => {
  t.after(() => setGarbageCollector(undefined))
  let runs = 0
  setGarbageCollector(() => runs++)
  noteStreamed(GC_STEP - 1)
  assert.equal(runs, 0)
  noteStreamed(1)
  assert.equal(runs, 1)
  // Compression is one of the long streams that reports what it streams.
  const data = Buffer.alloc(2 * GC_STEP + 4096, 3)
  const chunks = Array.from({ length: Math.ceil(data.length / (1 << 20)) }, (_, i) => data.subarray(i << 20, (i + 1) << 20))
  await pipeline(Readable.from(chunks), compressor('gzip', { level: 1 }), new Writable({ write: (_c, _e, cb) => cb() }))
  assert.equal(runs, 3)
  setGarbageCollector(undefined)
  noteStreamed(10 * GC_STEP)
  assert.equal(runs, 3)
})
