import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BufferPool, releaseChunk } from '../src/buffer-pool.ts'

test('a released chunk (or a part of one) is reused; other buffers are ignored', () => {
  const pool = new BufferPool(1024, 2)
  const a = pool.take()
  assert.equal(a.length, 1024)
  releaseChunk(a.subarray(0, 10))
  const b = pool.take()
  assert.equal(b.buffer, a.buffer, 'the released buffer comes back')
  assert.equal(b.length, 1024, 'whole, not the part that was released')
  const c = pool.take()
  assert.notEqual(c.buffer, a.buffer)
  releaseChunk(Buffer.alloc(1024)) // not from a pool: nothing happens
  releaseChunk(b)
  releaseChunk(b) // twice: the second does nothing
  assert.equal(pool.take().buffer, b.buffer)
  assert.notEqual(pool.take().buffer, b.buffer, 'released once, handed out once')
})

test('a pool keeps at most `keep` free buffers', () => {
  const pool = new BufferPool(16, 1)
  const [a, b] = [pool.take(), pool.take()]
  releaseChunk(a)
  releaseChunk(b)
  assert.equal(pool.take().buffer, a.buffer)
  const next = pool.take()
  assert.notEqual(next.buffer, b.buffer, 'b was left to the collector')
})
