import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { test } from 'node:test'
import zlib from 'node:zlib'
import { compressor, looksIncompressible } from '../src/compress.ts'
import { isOcikitError } from '../src/errors.ts'

async function compress(data: Buffer, kind: 'gzip' | 'zstd', o: { level?: number; concurrency?: number } = {}): Promise<Buffer> {
  const out: Buffer[] = []
  const chunks = []
  for (let i = 0; i < data.length; i += 100_003) chunks.push(data.subarray(i, i + 100_003))
  await pipeline(
    Readable.from(chunks.length ? chunks : [Buffer.alloc(0)]),
    compressor(kind, o),
    new Writable({
      write: (c, _e, cb) => {
        out.push(c)
        cb()
      },
    }),
  )
  return Buffer.concat(out)
}

const sample = Buffer.concat([randomBytes(1_500_000), Buffer.alloc(2_000_000, 'compressible text '), randomBytes(777)])

test('parallel gzip is one standard gzip stream that gunzip reads back exactly', async () => {
  for (const data of [sample, Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(1 << 20, 7)]) {
    const gz = await compress(data, 'gzip')
    assert.deepEqual(gz.subarray(0, 3), Buffer.from([0x1f, 0x8b, 8]))
    assert.ok(zlib.gunzipSync(gz).equals(data))
  }
})

test('parallel gzip output does not depend on the number of threads', async () => {
  const a = await compress(sample, 'gzip', { concurrency: 1 })
  const b = await compress(sample, 'gzip', { concurrency: 7 })
  assert.ok(a.equals(b))
})

test('parallel gzip is as small as single-stream gzip at the same level (within 1%)', async () => {
  const text = Buffer.alloc(6_000_000)
  for (let i = 0; i < text.length; i++) text[i] = 97 + ((i * 7 + (i >> 5)) % 23)
  const ours = await compress(text, 'gzip', { level: 6 })
  const single = zlib.gzipSync(text, { level: 6 })
  assert.ok(ours.length <= single.length * 1.01, `${ours.length} vs ${single.length}`)
})

test('gzip stores random-looking data instead of deflating it, and deflates text', async () => {
  // The first deflate block after the 10-byte gzip header: its type is in bits 1-2 of its first
  // byte (0 stored, 2 dynamic Huffman); a stored block then has LEN and NLEN = ~LEN.
  const blockType = (gz: Buffer) => ((gz[10] as number) >> 1) & 3
  const random = randomBytes(1 << 20)
  const stored = await compress(random, 'gzip')
  assert.equal(blockType(stored), 0)
  assert.equal(stored.readUInt16LE(11) ^ stored.readUInt16LE(13), 0xffff)
  assert.ok(zlib.gunzipSync(stored).equals(random))
  assert.equal(blockType(await compress(Buffer.alloc(1 << 20, 'compressible text '), 'gzip')), 2)
  assert.ok(looksIncompressible(randomBytes(65536)))
  assert.ok(!looksIncompressible(Buffer.alloc(65536, 'function(x) { return x }\n')))
  assert.ok(!looksIncompressible(randomBytes(4000)), 'too small to bother')
  // Text, then random windows, then text again inside one block: three segments, one stream.
  const mixed = Buffer.concat([Buffer.alloc(100_000, 'abc '), randomBytes(300_000), Buffer.alloc(200_000, 'xyz ')])
  assert.ok(zlib.gunzipSync(await compress(mixed, 'gzip')).equals(mixed))
})

test('zstd frames concatenate into a stream zstd reads back exactly', async () => {
  for (const data of [sample, Buffer.alloc(0), Buffer.alloc(9 << 20, 1)]) {
    const z = await compress(data, 'zstd')
    assert.ok(zlib.zstdDecompressSync(z).equals(data))
  }
})

test('levels out of range are refused', () => {
  assert.throws(
    () => compressor('gzip', { level: 0 }),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /1 to 9/.test(e.message),
  )
  assert.throws(
    () => compressor('zstd', { level: 30 }),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /1 to 19/.test(e.message),
  )
})
