import assert from 'node:assert/strict'
import { PassThrough, Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { test } from 'node:test'
import { chain, type Progress, progressTap, TeeStream } from '../src/streams.ts'

test('chain carries an error from any step to the last stream; progressTap reports every 64 KiB and at the end', async () => {
  const seen: Progress[] = []
  const out = chain(Readable.from([Buffer.alloc(100_000), Buffer.alloc(50_000)]), ...progressTap('blob', 150_000, (p) => seen.push(p)))
  let n = 0
  for await (const c of out) n += (c as Buffer).length
  assert.equal(n, 150_000)
  assert.deepEqual(seen, [
    { id: 'blob', done: 100_000, total: 150_000 },
    { id: 'blob', done: 150_000, total: 150_000 },
  ])
  assert.deepEqual(progressTap('x', 1, undefined), [])
  const broken = new PassThrough()
  const tail = chain(Readable.from(['a']), broken)
  broken.destroy(new Error('step failed'))
  await assert.rejects(tail.toArray(), /step failed/)
})

test('TeeStream: the side gets every byte, with back-pressure; a side that fails drops out and the main stream goes on intact', async () => {
  const data = Array.from({ length: 200 }, (_, i) => Buffer.alloc(16384, i))
  const total = data.reduce((n, b) => n + b.length, 0)
  // A slow side: it reads one chunk per tick.
  const side = new PassThrough({ highWaterMark: 1024 })
  let sideBytes = 0
  const sideDone = (async () => {
    for await (const c of side) {
      sideBytes += (c as Buffer).length
      await new Promise((r) => setImmediate(r))
    }
  })()
  let mainBytes = 0
  const sink = new Writable({
    write: (c, _e, cb) => {
      mainBytes += c.length
      cb()
    },
  })
  await pipeline(Readable.from(data), new TeeStream(side), sink)
  await sideDone
  assert.equal(sideBytes, total)
  assert.equal(mainBytes, total)
  // A side destroyed a little way in: the main stream still gets everything.
  const broken = new PassThrough()
  let seen = 0
  broken.on('data', (c: Buffer) => {
    seen += c.length
    if (seen > 100_000) broken.destroy(new Error('upload failed'))
  })
  let main2 = 0
  const sink2 = new Writable({
    write: (c, _e, cb) => {
      main2 += c.length
      cb()
    },
  })
  await pipeline(Readable.from(data), new TeeStream(broken), sink2)
  assert.equal(main2, total)
  assert.ok(seen < total)
})
