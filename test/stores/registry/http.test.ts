import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { digestOf } from '../../../src/digest.ts'
import { OciLayout } from '../../../src/stores/layout/layout.ts'
import { createHttpClient } from '../../../src/stores/registry/http.ts'
import { tempDir } from '../../helpers/tmp.ts'

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
