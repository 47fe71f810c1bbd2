import assert from 'node:assert/strict'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { test } from 'node:test'
import { DigestingStream, digestOf, isDigest, parseDigest, verifyBytes, verifyingStream } from '../src/digest.ts'
import { isOcikitError } from '../src/errors.ts'

const EMPTY = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

test('digestOf hashes with sha256 and sha512', () => {
  assert.equal(digestOf(''), EMPTY)
  assert.match(digestOf('', 'sha512'), /^sha512:cf83e135/)
})

test('parseDigest accepts sha256 and sha512 and refuses the rest with coded errors', () => {
  assert.equal(parseDigest(EMPTY), EMPTY)
  assert.ok(isDigest(digestOf('x', 'sha512')))
  for (const bad of ['sha256:xyz', 'sha256:../../x', 'sha256:', `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, 'nocolon', '../sha256:aa']) {
    assert.throws(
      () => parseDigest(bad),
      (e) => isOcikitError(e, 'INVALID_DIGEST') && e.message.includes(bad),
      bad,
    )
  }
  assert.throws(
    () => parseDigest('md5:d41d8cd98f00b204e9800998ecf8427e'),
    (e) => isOcikitError(e, 'UNSUPPORTED_DIGEST_ALGORITHM') && /md5/.test(e.message),
  )
})

test('DigestingStream reports digest and size of what passed through', async () => {
  const h = new DigestingStream()
  const sink = new Writable({ write: (_c, _e, cb) => cb() })
  await pipeline(Readable.from([Buffer.from('ab'), Buffer.from('c')]), h, sink)
  assert.equal(h.digest, digestOf('abc'))
  assert.equal(h.size, 3)
})

async function drain(r: Readable): Promise<void> {
  await pipeline(r, new Writable({ write: (_c, _e, cb) => cb() }))
}

test('verifyingStream passes matching bytes and fails on wrong digest, truncation or excess', async () => {
  await drain(Readable.from([Buffer.from('abc')]).pipe(verifyingStream({ digest: digestOf('abc'), size: 3 }, 'blob')))
  await assert.rejects(drain(Readable.from([Buffer.from('abd')]).pipe(verifyingStream({ digest: digestOf('abc'), size: 3 }, 'blob'))), (e) =>
    isOcikitError(e, 'DIGEST_MISMATCH'),
  )
  await assert.rejects(
    drain(Readable.from([Buffer.from('ab')]).pipe(verifyingStream({ digest: digestOf('abc'), size: 3 }, 'blob'))),
    (e) => isOcikitError(e, 'SIZE_MISMATCH') && /truncated/.test(e.message),
  )
  await assert.rejects(drain(Readable.from([Buffer.from('abcd')]).pipe(verifyingStream({ digest: digestOf('abc'), size: 3 }, 'blob'))), (e) =>
    isOcikitError(e, 'SIZE_MISMATCH'),
  )
})

test('verifyBytes checks in-memory bytes', () => {
  verifyBytes(Buffer.from('abc'), { digest: digestOf('abc') }, 'x')
  assert.throws(
    () => verifyBytes(Buffer.from('abc'), { digest: digestOf('abd') }, 'x'),
    (e) => isOcikitError(e, 'DIGEST_MISMATCH'),
  )
})
