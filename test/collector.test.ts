import assert from 'node:assert/strict'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { test } from 'node:test'
import { GC_STEP, noteStreamed, setGarbageCollector } from '../src/collector.ts'
import { DigestingStream } from '../src/digest.ts'

test('an installed collector runs once per GC_STEP bytes streamed; none installed, nothing runs', async (t) => {
  t.after(() => setGarbageCollector(undefined))
  let runs = 0
  setGarbageCollector(() => runs++)
  noteStreamed(GC_STEP - 1)
  assert.equal(runs, 0)
  noteStreamed(1)
  assert.equal(runs, 1)
  // Hashing streams (layer builds, blob writes) report what goes through them.
  const data = Buffer.alloc(2 * GC_STEP + 4096, 3)
  const chunks = Array.from({ length: Math.ceil(data.length / (1 << 20)) }, (_, i) => data.subarray(i << 20, (i + 1) << 20))
  await pipeline(Readable.from(chunks), new DigestingStream(), new Writable({ write: (_c, _e, cb) => cb() }))
  assert.equal(runs, 3)
  setGarbageCollector(undefined)
  noteStreamed(10 * GC_STEP)
  assert.equal(runs, 3)
})
