/** The repository client on an in-process fake network: listing limits. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isOcikitError } from '../../../src/errors.ts'
import { MAX_LISTED_NAMES, RegistryClient } from '../../../src/stores/registry/client.ts'
import { type FakeAnswer, fakeNet } from '../../helpers/fake-net.ts'

const names = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

test('one large page of tags (400,000 in one answer) is collected without overflowing the stack (issue 13.10)', async () => {
  const tags = names(400_000, 't')
  const net = fakeNet({ 'https://r.example': () => ({ status: 200, body: JSON.stringify({ name: 'app', tags }) }) })
  const got = await new RegistryClient('r.example', 'app', { http: net.send }).tags()
  assert.equal(got.length, tags.length)
  assert.equal(got.at(-1), 't399999')
})

test('the total over all pages is capped, not only each page (issue 13.10)', async () => {
  const per = Math.ceil(MAX_LISTED_NAMES / 2) + 1
  const net = fakeNet({
    'https://r.example': (r) => {
      const page = Number(r.url.searchParams.get('last') ?? 0)
      return { status: 200, headers: { link: `</v2/app/tags/list?last=${page + 1}>; rel="next"` }, body: JSON.stringify({ tags: names(per, `p${page}-`) }) }
    },
  })
  await assert.rejects(
    new RegistryClient('r.example', 'app', { http: net.send }).tags(),
    (e) => isOcikitError(e, 'TOO_LARGE') && e.message.includes(`more than ${MAX_LISTED_NAMES} names`),
  )
  assert.equal(net.log.length, 2, 'stopped at the page that went over')
})

/** A server on 127.0.0.1 that answers every request with `status` and an endless chunked body; counts the bytes it got to send. */
async function endless(t: import('node:test').TestContext, status: number): Promise<{ host: string; sent: () => number }> {
  const http = await import('node:http')
  let sent = 0
  const chunk = Buffer.alloc(256 << 10, 0x7b)
  const server = http.createServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
    const pump = () => {
      while (!res.destroyed && res.write(chunk)) sent += chunk.length
      if (!res.destroyed) res.once('drain', pump)
    }
    res.on('close', () => res.off('drain', pump))
    pump()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => server.close(() => r())))
  t.after(() => server.closeAllConnections())
  return { host: `127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`, sent: () => sent }
}

test('a manifest sent chunked, with no Content-Length, past the 4 MiB cap: the read stops at the cap (issue 19)', async (t) => {
  const s = await endless(t, 200)
  await assert.rejects(new RegistryClient(s.host, 'app', { attempts: 1 }).manifest('v1'), (e) => isOcikitError(e, 'TOO_LARGE'))
  await new Promise((r) => setTimeout(r, 100))
  assert.ok(s.sent() < 16 << 20, `the server got ${s.sent()} bytes out before the client hung up`)
})

test('an error body sent chunked without end: the message is capped, and the read stops (issue 19)', async (t) => {
  const s = await endless(t, 500)
  const err = await new RegistryClient(s.host, 'app', { attempts: 1, backoffMs: 1 }).manifest('v1').catch((e: unknown) => e)
  assert.ok(isOcikitError(err), String(err))
  assert.ok(err.message.length < 70 * 1024, `message of ${err.message.length} characters`)
  await new Promise((r) => setTimeout(r, 100))
  assert.ok(s.sent() < 16 << 20, `the server got ${s.sent()} bytes out before the client hung up`)
})

test('an upload session the registry forgot (404 BLOB_UPLOAD_UNKNOWN) is started again, not a failure (issue 19)', async () => {
  let puts = 0
  const net = fakeNet({
    'https://r.example': (r): FakeAnswer => {
      if (r.method === 'HEAD') return { status: 404 }
      if (r.method === 'POST') return { status: 202, headers: { location: `/v2/app/blobs/uploads/s${Math.random()}` } }
      if (r.method === 'PUT' && puts++ === 0) {
        return {
          status: 404,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'blob upload unknown' }] }),
        }
      }
      return { status: 201 }
    },
  })
  const bytes = Buffer.from('a blob')
  const { digestOf } = await import('../../../src/digest.ts')
  const { Readable } = await import('node:stream')
  const how = await new RegistryClient('r.example', 'app', { http: net.send, backoffMs: 1 }).uploadBlob(
    { mediaType: 'application/octet-stream', digest: digestOf(bytes), size: bytes.length },
    async () => Readable.from([bytes]),
  )
  assert.equal(how, 'uploaded')
  assert.equal(net.log.filter((r) => r.method === 'POST').length, 2, 'a fresh session')
  assert.equal(puts, 2)
})
