import assert from 'node:assert/strict'
import { PassThrough, Readable } from 'node:stream'
import { test } from 'node:test'
import { chain, type Progress, progressTap } from '../src/streams.ts'

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
