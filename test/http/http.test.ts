import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { type TestContext, test } from 'node:test'
import { digestOf } from '../../src/digest.ts'
import { createHttpClient } from '../../src/http/http.ts'
import { OciLayout } from '../../src/stores/layout/layout.ts'
import { tempDir } from '../helpers/tmp.ts'

test('a blob read from a layout is sent intact while its buffers are reused', async (t) => {
  // 5.5 MiB of bytes that differ in every MiB, so that a buffer reused too early would show.
  const data = Buffer.alloc(5.5 * (1 << 20))
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i)
  const layout = await OciLayout.create(await tempDir(t))
  const d = { mediaType: 'application/octet-stream', digest: digestOf(data), size: data.length }
  await layout.writeBlob(data, d)
  const server = http.createServer(async (req, res) => {
    const h = createHash('sha256')
    let n = 0
    // Read slowly, so that the sender runs ahead and has to wait for the socket.
    for await (const c of req) {
      h.update(c)
      n += c.length
      if (n % (1 << 20) < c.length) await new Promise((r) => setTimeout(r, 5))
    }
    res.end(JSON.stringify({ digest: `sha256:${h.digest('hex')}`, size: n }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => server.close())
  const send = createHttpClient()
  const stream = await layout.openBlob(d)
  const chunks = new Set<ArrayBufferLike>()
  stream.on('data', (c: Buffer) => chunks.add(c.buffer))
  stream.pause()
  const res = await send(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`), {
    method: 'PUT',
    headers: { 'content-length': String(data.length) },
    body: stream,
  })
  let text = ''
  for await (const c of res.body) text += Buffer.from(c).toString()
  assert.deepEqual(JSON.parse(text), { digest: d.digest, size: d.size })
  assert.ok(chunks.size < 6, `6 chunks went through ${chunks.size} buffers: they were reused`)
})

/** A server on 127.0.0.1 for one test; returns its base URL. */
async function serve(t: TestContext, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => {
    server.closeAllConnections()
    server.close()
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function readAll(res: { body: AsyncIterable<Uint8Array> }): Promise<number> {
  let n = 0
  for await (const c of res.body) n += c.length
  return n
}

test('a server that trickles a byte at a time is a stall, however long the answer (issue 13.9)', async (t) => {
  const base = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '1000000' })
    const tick = setInterval(() => res.write('x'), 20)
    res.on('close', () => clearInterval(tick))
  })
  const send = createHttpClient({ stallTimeoutMs: 200 })
  const started = Date.now()
  const res = await send(new URL(`${base}/blob`))
  await assert.rejects(readAll(res), /stalled: less than 1 KiB moved in 0.2 s/)
  assert.ok(Date.now() - started < 2000, 'given up on within a few windows')
})

test('a document request that keeps sending but never ends fails at its deadline (issue 13.9)', async (t) => {
  const base = await serve(t, (_req, res) => {
    res.writeHead(200)
    const tick = setInterval(() => res.write(Buffer.alloc(4096, 0x20)), 20)
    res.on('close', () => clearInterval(tick))
  })
  const send = createHttpClient({ stallTimeoutMs: 200 })
  const res = await send(new URL(`${base}/manifest`), { deadlineMs: 400 })
  await assert.rejects(readAll(res), /no complete answer within 0.4 s/)
  // A server that never answers at all: the same deadline, before any header.
  const silent = await serve(t, () => {})
  await assert.rejects(send(new URL(`${silent}/x`), { deadlineMs: 300 }), /no complete answer within 0.3 s|stalled/)
})

test('a slow reader or a slow request body is not a stall: only waiting on the network is (issue 13.9)', async (t) => {
  const data = Buffer.alloc(4 << 20, 7)
  const base = await serve(t, async (req, res) => {
    if (req.method === 'PUT') {
      res.end(String(await readAll({ body: req })))
      return
    }
    res.writeHead(200, { 'content-length': String(data.length) }).end(data)
  })
  const send = createHttpClient({ stallTimeoutMs: 150 })
  // The reader takes its time (three stall windows) before and while it reads.
  const res = await send(new URL(`${base}/blob`))
  await new Promise((r) => setTimeout(r, 450))
  let n = 0
  for await (const c of res.body) {
    n += c.length
    if (n === c.length) await new Promise((r) => setTimeout(r, 450))
  }
  assert.equal(n, data.length)
  // The body's source pauses for three windows between its two halves.
  async function* slowBody() {
    yield data.subarray(0, 1 << 20)
    await new Promise((r) => setTimeout(r, 450))
    yield data.subarray(1 << 20)
  }
  const put = await send(new URL(`${base}/upload`), {
    method: 'PUT',
    headers: { 'content-length': String(data.length) },
    body: Readable.from(slowBody()),
  })
  let text = ''
  for await (const c of put.body) text += Buffer.from(c).toString()
  assert.equal(text, String(data.length))
})
