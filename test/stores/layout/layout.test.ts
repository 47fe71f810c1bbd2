import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { type Digest, digestOf, verifyingStream } from '../../../src/digest.ts'
import { isOcikitError } from '../../../src/errors.ts'
import { OciLayout } from '../../../src/stores/layout/layout.ts'
import { chain } from '../../../src/streams.ts'
import { snapshot, tempDir } from '../../helpers/tmp.ts'

test('create makes oci-layout, index.json and blobs/ in a missing or empty directory', async (t) => {
  const dir = path.join(await tempDir(t), 'new')
  await OciLayout.create(dir)
  assert.deepEqual(JSON.parse(await fs.readFile(path.join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' })
  assert.deepEqual(JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8')).manifests, [])
  assert.ok((await fs.stat(path.join(dir, 'blobs', 'sha256'))).isDirectory())
  await OciLayout.create(dir) // opening again is fine
})

test('a non-empty directory that is not a layout is refused and left untouched', async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'precious.txt'), 'keep me')
  const before = await snapshot(dir)
  await assert.rejects(OciLayout.create(dir), (e) => isOcikitError(e, 'INVALID_LAYOUT') && /not an OCI layout/.test(e.message))
  await assert.rejects(OciLayout.open(dir), (e) => isOcikitError(e, 'INVALID_LAYOUT') && e.message.includes('oci-layout'))
  assert.deepEqual(await snapshot(dir), before)
})

test('a malformed index.json or oci-layout is an error naming the file', async (t) => {
  const dir = await tempDir(t)
  await OciLayout.create(dir)
  await fs.writeFile(path.join(dir, 'index.json'), '{"schemaVersion": 2, "manifests": [{"digest": "sha256:nope"}]}')
  await assert.rejects(
    OciLayout.open(dir),
    (e) => isOcikitError(e, 'INVALID_LAYOUT') && e.message.includes('index.json') && e.message.includes('index.manifests[0].digest'),
  )
  await fs.writeFile(path.join(dir, 'index.json'), 'not json')
  await assert.rejects(OciLayout.open(dir), (e) => isOcikitError(e, 'INVALID_LAYOUT') && /index\.json.*not JSON/.test(e.message))
  await fs.writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion": "2.0.0"}')
  await assert.rejects(OciLayout.open(dir), (e) => isOcikitError(e, 'INVALID_LAYOUT') && /oci-layout/.test(e.message))
})

test('writeBlob names a blob after its bytes, and skips one already present', async (t) => {
  const l = await OciLayout.create(await tempDir(t))
  const w = await l.writeBlob(Readable.from([Buffer.from('hello ')]), undefined)
  assert.deepEqual(w, { digest: digestOf('hello '), size: 6, existed: false })
  assert.equal(await fs.readFile(l.blobPath(w.digest), 'utf8'), 'hello ')
  const again = await l.writeBlob(Buffer.from('hello '), { digest: w.digest, size: 6 })
  assert.equal(again.existed, true)
})

test('writeBlob with the wrong digest or size writes nothing and leaves no temp file', async (t) => {
  const dir = await tempDir(t)
  const l = await OciLayout.create(dir)
  const before = await snapshot(dir)
  await assert.rejects(l.writeBlob(Buffer.from('evil'), { digest: digestOf('good') }), (e) => isOcikitError(e, 'DIGEST_MISMATCH'))
  await assert.rejects(l.writeBlob(Buffer.from('good'), { digest: digestOf('good'), size: 5 }), (e) => isOcikitError(e, 'SIZE_MISMATCH'))
  assert.deepEqual(await snapshot(dir), before)
})

test('writeBlob whose source stream fails leaves nothing behind', async (t) => {
  const dir = await tempDir(t)
  const l = await OciLayout.create(dir)
  const before = await snapshot(dir)
  const failing = new Readable({
    read() {
      this.push(Buffer.from('partial'))
      this.destroy(new Error('connection reset'))
    },
  })
  await assert.rejects(l.writeBlob(failing, { digest: digestOf('x') }), /connection reset/)
  assert.deepEqual(await snapshot(dir), before)
})

test('a stream that verifies itself is trusted only for its own digest: wrong bytes still write nothing', async (t) => {
  const dir = await tempDir(t)
  const l = await OciLayout.create(dir)
  const before = await snapshot(dir)
  const good = { digest: digestOf('good'), size: 4 }
  // Same size, other bytes: the verifying stream (not a second hash) must catch it.
  const lying = chain(Readable.from([Buffer.from('evil')]), verifyingStream(good, 'test blob'))
  await assert.rejects(l.writeBlob(lying, good), (e) => isOcikitError(e, 'DIGEST_MISMATCH'))
  // A verifying stream for another digest gets hashed as usual.
  const other = chain(Readable.from([Buffer.from('evil')]), verifyingStream({ digest: digestOf('evil'), size: 4 }, 'test blob'))
  await assert.rejects(l.writeBlob(other, good), (e) => isOcikitError(e, 'DIGEST_MISMATCH'))
  assert.deepEqual(await snapshot(dir), before)
  // More than one sync step (8 MiB) of verified bytes lands whole.
  const big = Buffer.alloc(9 << 20, 7)
  const d = { digest: digestOf(big), size: big.length }
  const w = await l.writeBlob(chain(Readable.from([big.subarray(0, 5 << 20), big.subarray(5 << 20)]), verifyingStream(d, 'big blob')), d)
  assert.deepEqual(w, { ...d, existed: false })
  assert.ok((await fs.readFile(l.blobPath(d.digest))).equals(big))
})

test('a digest can never become a path outside blobs/', async (t) => {
  const l = await OciLayout.create(await tempDir(t))
  assert.throws(
    () => l.blobPath('sha256:../../etc/passwd' as Digest),
    (e) => isOcikitError(e, 'INVALID_DIGEST'),
  )
  assert.throws(
    () => l.blobPath('md5:d41d8cd98f00b204e9800998ecf8427e' as Digest),
    (e) => isOcikitError(e, 'UNSUPPORTED_DIGEST_ALGORITHM'),
  )
})

test('reading a blob whose bytes do not match its name fails; a missing one is BLOB_UNKNOWN', async (t) => {
  const l = await OciLayout.create(await tempDir(t))
  const w = await l.writeBlob(Buffer.from('original'))
  await fs.writeFile(l.blobPath(w.digest), 'tampered')
  const desc = { mediaType: 'application/octet-stream', digest: w.digest, size: 8 }
  await assert.rejects(l.readBlob(desc), (e) => isOcikitError(e, 'DIGEST_MISMATCH'))
  const s = await l.openBlob(desc)
  // Left unread for a while: the small blob is read and fails verification before anyone
  // listens, and the error must wait for the reader instead of crashing the process.
  await new Promise((r) => setTimeout(r, 50))
  await assert.rejects(
    async () => {
      for await (const _ of s);
    },
    (e) => isOcikitError(e, 'DIGEST_MISMATCH'),
  )
  await assert.rejects(l.readBlob({ ...desc, digest: digestOf('absent') }), (e) => isOcikitError(e, 'BLOB_UNKNOWN') && /missing/.test(e.message))
  await assert.rejects(l.openBlob({ ...desc, digest: digestOf('absent') }), (e) => isOcikitError(e, 'BLOB_UNKNOWN'))
})

test('readBlob checks a small blob against the size and digest it is read for', async (t) => {
  const l = await OciLayout.create(await tempDir(t))
  const { digest } = await l.writeBlob(Buffer.from('{"a":1}'), undefined)
  assert.equal(Buffer.from(await l.readBlob({ mediaType: 'application/json', digest, size: 7 })).toString(), '{"a":1}')
  assert.equal(Buffer.from(await l.readBlobByDigest(digest)).toString(), '{"a":1}')
  const size = (n: number) => (e: unknown) => isOcikitError(e, 'SIZE_MISMATCH') && e.message.includes(String(n))
  await assert.rejects(l.readBlob({ mediaType: 'application/json', digest, size: 6 }), size(7), 'longer on disk than described')
  await assert.rejects(l.readBlob({ mediaType: 'application/json', digest, size: 9 }), size(7), 'shorter on disk than described')
  await fs.chmod(l.blobPath(digest), 0o644)
  await fs.writeFile(l.blobPath(digest), '{"a":2}')
  await assert.rejects(l.readBlob({ mediaType: 'application/json', digest, size: 7 }), (e) => isOcikitError(e, 'DIGEST_MISMATCH'))
  await assert.rejects(l.readBlobByDigest(digest), (e) => isOcikitError(e, 'DIGEST_MISMATCH'))
})

test('open reports a missing oci-layout file before a broken index.json', async (t) => {
  const dir = await tempDir(t)
  await OciLayout.create(dir)
  await fs.rm(path.join(dir, 'oci-layout'))
  await fs.writeFile(path.join(dir, 'index.json'), 'not json')
  await assert.rejects(OciLayout.open(dir), (e) => isOcikitError(e, 'INVALID_LAYOUT') && /oci-layout is missing/.test(e.message))
})

test('openBlob streams a blob and fails on one longer or shorter than described', async (t) => {
  const dir = await tempDir(t)
  const l = await OciLayout.create(dir)
  const data = Buffer.alloc(2.5 * (1 << 20), 7)
  const d = { mediaType: 'application/octet-stream', digest: digestOf(data), size: data.length }
  await l.writeBlob(data, d)
  const read = async () => {
    const chunks: Buffer[] = []
    for await (const c of await l.openBlob(d)) chunks.push(Buffer.from(c as Buffer))
    return Buffer.concat(chunks)
  }
  assert.ok((await read()).equals(data))
  await fs.chmod(l.blobPath(d.digest), 0o644)
  await fs.appendFile(l.blobPath(d.digest), 'x')
  await assert.rejects(read(), (e) => isOcikitError(e, 'SIZE_MISMATCH'))
  await fs.truncate(l.blobPath(d.digest), 1000)
  await assert.rejects(read(), (e) => isOcikitError(e, 'SIZE_MISMATCH'))
})

test('openBlob gives a small blob in a chunk of its own size, not a 1 MiB buffer', async (t) => {
  const l = await OciLayout.create(await tempDir(t))
  const data = Buffer.from('{"small":true}')
  const d = { mediaType: 'application/json', digest: digestOf(data), size: data.length }
  await l.writeBlob(data, d)
  const chunks: Buffer[] = []
  for await (const c of await l.openBlob(d)) chunks.push(c as Buffer)
  assert.ok(Buffer.concat(chunks).equals(data))
  for (const c of chunks) assert.ok(c.buffer.byteLength < 1 << 20, `a ${c.length}-byte chunk holds ${c.buffer.byteLength} bytes`)
})
