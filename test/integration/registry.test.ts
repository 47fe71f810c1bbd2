/**
 * The registry store against a real registry (Debian's docker-registry, CNCF Distribution),
 * anonymous, with htpasswd Basic auth and with token auth; a fault-injecting proxy in front
 * of it; and a fake server for responses no real registry should send.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { copy, deleteImage, listTags, read, write } from '../../src/api.ts'
import { digestOf } from '../../src/digest.ts'
import { canonicalJson } from '../../src/documents/canonical.ts'
import type { Descriptor } from '../../src/documents/schemas.ts'
import { isOcikitError, OcikitError } from '../../src/errors.ts'
import { createHttpClient } from '../../src/http/http.ts'
import { MemoryBlobSource, randomImage, randomIndex } from '../../src/image/random.ts'
import { SourceImage } from '../../src/image/view.ts'
import { RegistryClient } from '../../src/stores/registry/client.ts'
import { CLI_MAIN, ocikit } from '../helpers/cli.ts'
import { startFaultProxy } from '../helpers/fault-proxy.ts'
import { needPeers } from '../helpers/peers.ts'
import { freePort, startRegistry } from '../helpers/registry.ts'
import { sharedLayerIndex } from '../helpers/shared-index.ts'
import { tempDir } from '../helpers/tmp.ts'

const alice = async () => ({ username: 'alice', password: 'wonderland' })
const fast = { backoffMs: 10 }

describe('registry: real docker-registry', needPeers('docker-registry', 'htpasswd', 'openssl'), () => {
  for (const auth of ['none', 'htpasswd', 'token'] as const) {
    test(`push, pull and copy an image and an index (${auth})`, async (t) => {
      const r = await startRegistry(t, { auth })
      const o = { registry: { credentials: alice, ...fast } }
      const img = await randomImage({ seed: 1, layers: 3 })
      const d = await write(`${r.host}/app:v1`, img, o)
      assert.equal(d.digest, await img.digest())
      const back = await read(`${r.host}/app:v1`, o)
      assert.equal(await back.digest(), await img.digest())
      assert.equal(back.kind, 'image')
      let bytes = 0
      for (const l of back.kind === 'image' ? await back.layers() : []) for await (const c of await l.uncompressed()) bytes += (c as Buffer).length
      assert.ok(bytes > 0)
      const idx = await randomIndex({ seed: 2 })
      await write(`${r.host}/multi:v1`, idx, o)
      assert.equal(await (await read(`${r.host}/multi@${await idx.digest()}`, o)).digest(), await idx.digest())
      const dir = await tempDir(t)
      await copy(`${r.host}/multi:v1`, `oci:${dir}:m`, o)
      let existed = 0
      await copy(`oci:${dir}:m`, `${r.host}/other:v2`, { ...o, onBlob: (b) => (existed += b.existed ? 1 : 0) })
      assert.deepEqual(await listTags(`${r.host}/other`, o), ['v2'])
      // Blobs already in the registry (another repository) are mounted or found, not sent again.
      await copy(`${r.host}/app:v1`, `${r.host}/app-copy:v1`, { ...o, onBlob: (b) => (existed += b.existed ? 1 : 0) })
      assert.ok(existed >= 4, `mounted or skipped: ${existed}`)
      const again: boolean[] = []
      await write(`${r.host}/app:v1`, img, { ...o, onBlob: (b) => again.push(b.existed) })
      assert.ok(again.every(Boolean), 'a second push sends no blob')
      if (auth === 'token') {
        assert.ok(r.tokenRequests.some((q) => q.scope.includes('repository:app:pull,push') && q.user === 'alice'))
      }
    })
  }

  for (const auth of ['htpasswd', 'token'] as const) {
    test(`a wrong password is one clear error, with no retry storm (${auth})`, async (t) => {
      const r = await startRegistry(t, { auth })
      const bad = { registry: { credentials: async () => ({ username: 'alice', password: 'nope' }), ...fast } }
      await assert.rejects(write(`${r.host}/app:v1`, await randomImage({ seed: 3, layers: 1 }), bad), (e) => {
        return isOcikitError(e, 'UNAUTHORIZED') && e.message.includes(r.host) && e.message.includes("'alice'") && !e.message.includes('nope')
      })
      if (auth === 'token') assert.ok(r.tokenRequests.length <= 4, `token requests: ${r.tokenRequests.length}`)
      const anon = { registry: { credentials: async () => undefined, ...fast } }
      await assert.rejects(read(`${r.host}/app:v1`, anon), (e) => isOcikitError(e, 'UNAUTHORIZED') || isOcikitError(e, 'MANIFEST_UNKNOWN'))
    })
  }

  test('the images of an index go up at the same time, and a layer they share is sent and reported once', async (t) => {
    const r = await startRegistry(t)
    const { index, probe } = sharedLayerIndex()
    const reported: string[] = []
    await write(`${r.host}/multi:v1`, index, { registry: fast, onBlob: (e) => reported.push(e.digest) })
    assert.equal(probe.peak, 2, 'the layers of two images were sent at once')
    assert.equal(probe.opened.filter((d) => d === probe.shared).length, 1)
    assert.equal(new Set(reported).size, reported.length, 'each blob reported once')
    const dir = await tempDir(t)
    await copy(`${r.host}/multi:v1`, `oci:${dir}:m`, { registry: fast })
    assert.equal(await (await read(`oci:${dir}:m`)).digest(), await index.digest())
  })

  test('large blobs go up in chunks (PATCH) and come back intact', async (t) => {
    const r = await startRegistry(t)
    const img = await randomImage({ seed: 4, layers: 2, layerSize: 300_000, compression: 'none' })
    await write(`${r.host}/chunked:v1`, img, { registry: { chunkSize: 64 * 1024, ...fast } })
    const back = await read(`${r.host}/chunked:v1`)
    assert.equal(await back.digest(), await img.digest())
    const [layer] = back.kind === 'image' ? await back.layers() : []
    let n = 0
    for await (const c of await layer!.compressed()) n += (c as Buffer).length
    assert.equal(n, await layer!.size())
  })

  test('a blob streamed before its digest is known (uploadStream) lands under the digest of what was sent; a stream that breaks names nothing', async (t) => {
    const r = await startRegistry(t)
    const client = new RegistryClient(r.host, 'streamed', fast)
    const bytes = Buffer.alloc(3 << 20, 0x41)
    async function* pieces() {
      for (let i = 0; i < bytes.length; i += 65536) yield bytes.subarray(i, i + 65536)
    }
    const got = await client.uploadStream(Readable.from(pieces()))
    assert.equal(got.digest, digestOf(bytes))
    assert.equal(got.size, bytes.length)
    assert.equal(await client.hasBlob(got.digest), true)
    // Half the bytes, then a failure: rejected, and nothing is there under any digest we could name.
    async function* broken() {
      yield bytes.subarray(0, 1 << 20)
      throw new Error('source broke')
    }
    const other = Buffer.alloc(1 << 20, 0x42)
    await assert.rejects(client.uploadStream(Readable.from(broken())), /source broke|NETWORK|socket|aborted/i)
    assert.equal(await client.hasBlob(digestOf(bytes.subarray(0, 1 << 20))), false)
    assert.equal(await client.hasBlob(digestOf(other)), false)
  })

  test('CLI: login checks and saves, tags, catalog, copy, delete, logout', async (t) => {
    const r = await startRegistry(t, { auth: 'token' })
    const home = await tempDir(t)
    const env = { DOCKER_CONFIG: path.join(home, 'docker'), REGISTRY_AUTH_FILE: '', XDG_RUNTIME_DIR: '' }
    const layout = path.join(home, 'layout')
    await write(`oci:${layout}:v1`, await randomImage({ seed: 5, layers: 1 }))
    const loginBad = await runWithStdin(['login', r.host, '-u', 'alice', '--password-stdin'], 'wrong', env)
    assert.equal(loginBad.code, 1)
    assert.match(loginBad.stderr, /refused/)
    await assert.rejects(fs.stat(path.join(home, 'docker', 'config.json')), 'nothing saved on a failed login')
    const login = await runWithStdin(['login', r.host, '-u', 'alice', '--password-stdin'], 'wonderland\n', env)
    assert.equal(login.code, 0, login.stderr)
    const saved = await fs.readFile(path.join(home, 'docker', 'config.json'), 'utf8')
    assert.ok(JSON.parse(saved).auths[r.host].auth)
    assert.equal(((await fs.stat(path.join(home, 'docker', 'config.json'))).mode & 0o777).toString(8), '600')
    const cp = await ocikit(['copy', `oci:${layout}:v1`, `${r.host}/app:v1`], { env })
    assert.equal(cp.code, 0, cp.stderr)
    assert.equal((await ocikit(['tag', `${r.host}/app:v1`, 'latest'], { env })).code, 0)
    assert.deepEqual((await ocikit(['tags', `${r.host}/app`], { env })).stdout.trim().split('\n').sort(), ['latest', 'v1'])
    const digest = (await ocikit(['digest', `${r.host}/app:v1`], { env })).stdout.trim()
    assert.equal(digest, (await ocikit(['digest', `oci:${layout}:v1`])).stdout.trim())
    const del = await ocikit(['delete', `${r.host}/app:v1`], { env })
    assert.equal(del.code, 0, del.stderr)
    const gone = await ocikit(['inspect', `${r.host}/app@${digest}`], { env })
    assert.equal(gone.code, 1)
    assert.match(gone.stderr, /MANIFEST_UNKNOWN|status 404|unknown/i)
    assert.equal((await ocikit(['logout', r.host], { env })).code, 0)
    assert.deepEqual(JSON.parse(await fs.readFile(path.join(home, 'docker', 'config.json'), 'utf8')).auths, {})
  })

  test('a fault-injecting proxy: 500, 429 with Retry-After, a dropped connection mid-blob; the copy still succeeds', async (t) => {
    const r = await startRegistry(t)
    const img = await randomImage({ seed: 6, layers: 2, layerSize: 200_000, compression: 'none' })
    await write(`${r.host}/app:v1`, img)
    const faults = { manifest500: 1, head429: 1, dropBlob: 1, rangeRequests: 0 }
    const proxy = http.createServer((req, res) => {
      const url = req.url ?? '/'
      if (req.method === 'GET' && url.includes('/manifests/') && faults.manifest500-- > 0) return void res.writeHead(500).end('boom')
      if (req.method === 'HEAD' && url.includes('/blobs/') && faults.head429-- > 0) return void res.writeHead(429, { 'retry-after': '0' }).end()
      if (req.headers.range) faults.rangeRequests++
      const up = http.request({ host: '127.0.0.1', port: Number(r.host.split(':')[1]), path: url, method: req.method, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers)
        const big = req.method === 'GET' && url.includes('/blobs/') && Number(upRes.headers['content-length']) > 100_000
        if (big && faults.dropBlob-- > 0) {
          // Headers and exactly 50,000 bytes of body, then the connection drops.
          res.flushHeaders()
          let sent = 0
          upRes.on('data', (c: Buffer) => {
            if (sent >= 50_000) return
            const part = c.subarray(0, 50_000 - sent)
            sent += part.length
            res.write(part, () => {
              if (sent >= 50_000) {
                upRes.destroy()
                res.socket?.destroy()
              }
            })
          })
          return
        }
        upRes.pipe(res)
      })
      req.pipe(up)
    })
    const port = await freePort()
    await new Promise<void>((done) => proxy.listen(port, '127.0.0.1', () => done()))
    t.after(() => new Promise<void>((done) => proxy.close(() => done())))
    const retries: string[] = []
    const dir = await tempDir(t)
    await copy(`127.0.0.1:${port}/app:v1`, `oci:${dir}:v1`, { registry: { ...fast, onRetry: (x) => retries.push(x.reason) } })
    assert.equal(await (await read(`oci:${dir}:v1`)).digest(), await img.digest())
    assert.ok(retries.includes('status 500'), retries.join())
    assert.ok(faults.rangeRequests >= 1, 'the broken download resumed with a Range request')
    await write(`127.0.0.1:${port}/again:v1`, await randomImage({ seed: 7, layers: 1 }), {
      registry: { ...fast, onRetry: (x) => retries.push(x.reason) },
    })
    assert.ok(retries.includes('status 429'), retries.join())
  })
})

async function runWithStdin(args: string[], input: string, env: NodeJS.ProcessEnv) {
  const { spawn } = await import('node:child_process')
  const main = path.resolve(import.meta.dirname, '../../src/cli/main.ts')
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, [main, ...args], { env: { ...process.env, ...env } })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (d) => {
      stdout += d
    })
    c.stderr.on('data', (d) => {
      stderr += d
    })
    c.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }))
    c.stdin.end(input)
  })
}

describe('registry: tokens from a real token service stay with their registry', needPeers('docker-registry', 'htpasswd', 'openssl'), () => {
  test("a registry that names another's realm and service never gets the other's token (issue 13.1)", async (t) => {
    const a = await startRegistry(t, { auth: 'token' })
    const { realm, service } = a.token as { realm: string; service: string }
    await write(`${a.host}/app:v1`, await randomImage({ seed: 41, layers: 1 }), { registry: { credentials: alice, ...fast } })
    // B answers every request without a token the way A does, and records the tokens it is sent.
    const received: string[] = []
    const b = http.createServer((req, res) => {
      const auth = req.headers.authorization
      if (!auth?.startsWith('Bearer ')) return void res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="${service}"` }).end()
      received.push(auth.slice(7))
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}')
    })
    await new Promise<void>((done) => b.listen(0, '127.0.0.1', done))
    t.after(() => b.close())
    const bHost = `127.0.0.1:${(b.address() as import('node:net').AddressInfo).port}`
    const credentials = async (host: string) => (host === a.host ? alice() : undefined)
    // One process, one token cache: A's pull token is cached, then B is asked for a push and a pull.
    await read(`${a.host}/app:v1`, { registry: { credentials, ...fast } })
    const c = new RegistryClient(bHost, 'app', { credentials, ...fast })
    await c.uploadBlob({ mediaType: 'application/octet-stream', digest: digestOf('x'), size: 1 }, async () => Readable.from([Buffer.from('x')])).catch(() => {})
    await c.hasBlob(digestOf('y'))
    assert.ok(received.length >= 2, `B was sent ${received.length} tokens`)
    const subjects = received.map((tok) => JSON.parse(Buffer.from(tok.split('.')[1] as string, 'base64url').toString()).sub)
    assert.ok(!subjects.includes('alice'), `B was sent tokens for: ${subjects.join(', ')}`)
  })
})

describe('registry: responses no registry should send (fake server)', () => {
  async function fake(t: import('node:test').TestContext, handler: http.RequestListener): Promise<string> {
    const server = http.createServer(handler)
    const port = await freePort()
    await new Promise<void>((done) => server.listen(port, '127.0.0.1', () => done()))
    t.after(() => new Promise<void>((done) => server.close(() => done())))
    return `127.0.0.1:${port}`
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf('{}'), size: 2 },
    layers: [],
  })

  test('a manifest whose bytes do not match Docker-Content-Digest or the requested digest', async (t) => {
    const host = await fake(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': digestOf('other') }).end(manifest)
    })
    const c = new RegistryClient(host, 'app', fast)
    await assert.rejects(c.manifest('v1'), (e) => isOcikitError(e, 'DIGEST_MISMATCH') && /Docker-Content-Digest/.test(e.message))
    await assert.rejects(c.manifest(digestOf('wanted')), (e) => isOcikitError(e, 'DIGEST_MISMATCH') && /requested/.test(e.message))
  })

  test('an HTML error page instead of JSON is named as such', async (t) => {
    const host = await fake(t, (_req, res) => {
      res.writeHead(400, { 'content-type': 'text/html' }).end('<html><body>Bad Gateway</body></html>')
    })
    await assert.rejects(read(`${host}/app:v1`, { registry: fast }), (e) => isOcikitError(e, 'REGISTRY_ERROR') && /HTML page/.test(e.message))
  })

  test('a manifest over 4 MiB is refused', async (t) => {
    const host = await fake(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(Buffer.alloc(5 << 20, 0x20))
    })
    await assert.rejects(read(`${host}/app:v1`, { registry: fast }), (e) => isOcikitError(e, 'TOO_LARGE'))
  })

  test('retries are bounded, and the error says how many attempts were made', async (t) => {
    let hits = 0
    const host = await fake(t, (_req, res) => {
      hits++
      res.writeHead(503).end()
    })
    await assert.rejects(
      read(`${host}/app:v1`, { registry: { ...fast, attempts: 3 } }),
      (e) => isOcikitError(e, 'REGISTRY_ERROR') && /after 3 attempts/.test(e.message),
    )
    assert.equal(hits, 3)
  })

  test('a blob download that breaks resumes even where the server ignores Range; one that keeps breaking gives up, naming the attempts', async (t) => {
    const blob = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251))
    const d = { mediaType: 'application/octet-stream', digest: digestOf(blob), size: blob.length }
    let requests = 0
    let alwaysBreak = false
    const ranges: (string | undefined)[] = []
    const host = await fake(t, (req, res) => {
      requests++
      ranges.push(req.headers.range)
      res.writeHead(200, { 'content-length': String(blob.length) })
      // The first answer (and every answer, once asked to) breaks after 100,000 bytes; the
      // others send the whole blob from its start, whatever the Range said.
      if (requests === 1 || alwaysBreak) res.write(blob.subarray(0, 100_000), () => res.socket?.destroy())
      else res.end(blob)
    })
    const c = new RegistryClient(host, 'app', { ...fast, attempts: 3 })
    const chunks: Buffer[] = []
    for await (const chunk of await c.openBlob(d)) chunks.push(chunk as Buffer)
    assert.ok(Buffer.concat(chunks).equals(blob), 'the bytes already read were skipped in the full answer')
    assert.deepEqual(ranges, [undefined, 'bytes=100000-'])
    alwaysBreak = true
    requests = 0
    await assert.rejects(
      async () => {
        for await (const _ of await c.openBlob(d)) {
          // read to the end
        }
      },
      (e) => isOcikitError(e, 'NETWORK_ERROR') && /after 3 attempt/.test(e.message),
    )
    assert.equal(requests, 3)
  })

  test('a registry that goes silent is a network error after the stall timeout, retried, and connections are reused', async (t) => {
    let hits = 0
    const sockets = new Set<unknown>()
    const host = await fake(t, (req, res) => {
      hits++
      sockets.add(req.socket)
      if (req.url?.includes('/manifests/silent')) return // never answers
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest)
    })
    const c = new RegistryClient(host, 'app', { ...fast, attempts: 2, http: createHttpClient({ stallTimeoutMs: 150 }) })
    await c.manifest('v1')
    await c.manifest('v1')
    assert.equal(sockets.size, 1, 'keep-alive: one connection for both requests')
    await assert.rejects(
      c.manifest('silent'),
      (e) => isOcikitError(e, 'NETWORK_ERROR') && /after 2 attempt/.test(e.message) && /stalled: less than 1 KiB moved in 0.15 s/.test(e.message),
    )
    assert.equal(hits, 4)
  })

  test('a token refused partway through (expired) is replaced once, and the work carries on', async (t) => {
    let tokens = 0
    let served = 0
    let host = ''
    host = await fake(t, (req, res) => {
      const challenge = { 'www-authenticate': `Bearer realm="http://${host}/token",service="fake"` }
      if (req.url?.startsWith('/token')) {
        tokens++
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `t${tokens}`, expires_in: 300 }))
      }
      const auth = req.headers.authorization
      const ok = auth === 'Bearer t2' || (auth === 'Bearer t1' && served < 3)
      if (!ok) return void res.writeHead(401, challenge).end()
      served++
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest)
    })
    const c = new RegistryClient(host, 'app', fast)
    for (let i = 0; i < 6; i++) await c.manifest('v1')
    assert.equal(served, 6)
    assert.equal(tokens, 2)
  })

  test('a repository whose name starts with "http" is a path on the registry, not a URL', async (t) => {
    const paths: string[] = []
    const host = await fake(t, (req, res) => {
      paths.push(req.url ?? '')
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest)
    })
    const m = await new RegistryClient(host, 'httpd', fast).manifest('v1')
    assert.equal(m.digest, digestOf(manifest))
    assert.deepEqual(paths, ['/v2/httpd/manifests/v1'])
  })

  test('a connection that breaks while a manifest or a tags page is read is retried', async (t) => {
    let hits = 0
    const host = await fake(t, (req, res) => {
      hits++
      const body = req.url?.includes('/tags/') ? JSON.stringify({ name: 'app', tags: ['a', 'b'] }) : manifest
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': String(body.length) })
      if (hits % 2 === 1) {
        res.write(body.slice(0, 10))
        return void setTimeout(() => res.destroy(), 5)
      }
      res.end(body)
    })
    const c = new RegistryClient(host, 'app', fast)
    assert.equal((await c.manifest('v1')).digest, digestOf(manifest))
    assert.deepEqual(await c.tags(), ['a', 'b'])
    assert.equal(hits, 4)
    const broken = await fake(t, (_req, res) => {
      res.writeHead(200, { 'content-length': '1000' }).write('{"sche')
      setTimeout(() => res.destroy(), 5)
    })
    await assert.rejects(
      new RegistryClient(broken, 'app', { ...fast, attempts: 2 }).manifest('v1'),
      (e) => isOcikitError(e, 'NETWORK_ERROR') && /connection broke/.test(e.message) && /after 2 attempt/.test(e.message),
    )
  })

  test('broken answers from a registry or its token service are coded errors that say what was wrong', { timeout: 60_000 }, async (t) => {
    let answer: (req: http.IncomingMessage, res: http.ServerResponse) => void = () => {}
    const host = await fake(t, (req, res) => answer(req, res))
    // A fresh client for each case: a client remembers how the registry authenticates.
    const client = () => new RegistryClient(host, 'app', { ...fast, attempts: 1 })
    const cases: [string, typeof answer, () => Promise<unknown>, string, RegExp][] = [
      ['tags: JSON null', (_q, r) => r.writeHead(200).end('null'), () => client().tags(), 'REGISTRY_ERROR', /not a JSON object/],
      [
        'tags: a next link back to the same page',
        (q, r) => r.writeHead(200, { link: `<${q.url}>; rel="next"` }).end('{"tags":["a"]}'),
        () => client().tags(),
        'REGISTRY_ERROR',
        /circle/,
      ],
      [
        'tags: next links that never end, each to a new page',
        (q, r) => r.writeHead(200, { link: `</v2/app/tags/list?last=${Number(/last=(\d+)/.exec(q.url ?? '')?.[1] ?? 0) + 1}>; rel="next"` }).end('{"tags":[]}'),
        () => client().tags(),
        'REGISTRY_ERROR',
        /more than 10000 pages/,
      ],
      [
        'tags: a next link that is no URL',
        (_q, r) => r.writeHead(200, { link: '<http://[bad>; rel="next"' }).end('{"tags":[]}'),
        () => client().tags(),
        'REGISTRY_ERROR',
        /next page link is not an http\(s\) URL/,
      ],
      [
        'a redirect to a URL that is no URL',
        (_q, r) => r.writeHead(307, { location: 'http://[::1' }).end(),
        () => client().manifest('v1'),
        'REGISTRY_ERROR',
        /redirect .* is not an http\(s\) URL/,
      ],
      [
        'a bearer realm that is no URL',
        (_q, r) => r.writeHead(401, { 'www-authenticate': 'Bearer realm="not a url"' }).end(),
        () => client().manifest('v1'),
        'REGISTRY_ERROR',
        /token realm .* not an http\(s\) URL/,
      ],
      [
        'a token answer of JSON null',
        (q, r) =>
          q.url?.startsWith('/token') ? r.writeHead(200).end('null') : r.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token"` }).end(),
        () => client().manifest('v1'),
        'REGISTRY_ERROR',
        /without a token/,
      ],
      [
        'a referrers answer that is not an index',
        (q, r) =>
          r.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end(q.url?.includes('/referrers/') ? '{"manifests":null}' : manifest),
        () => client().referrers(digestOf(manifest)),
        'INVALID_MANIFEST',
        /referrers of/,
      ],
      [
        'an upload location that is no URL',
        (q, r) => (q.method === 'HEAD' ? r.writeHead(404).end() : r.writeHead(202, { location: 'http://[::1' }).end()),
        () => client().uploadBlob({ mediaType: 'application/octet-stream', digest: digestOf('x'), size: 1 }, async () => Readable.from([Buffer.from('x')])),
        'REGISTRY_ERROR',
        /upload location is not an http\(s\) URL/,
      ],
    ]
    for (const [what, handler, run, code, message] of cases) {
      answer = handler
      await assert.rejects(run(), (e) => isOcikitError(e, code as never) && message.test(e.message), what)
    }
  })

  test('a registry that wants upload chunks over 256 MiB gets the blob in one streamed PUT', async (t) => {
    const seen: string[] = []
    let received = Buffer.alloc(0)
    const host = await fake(t, (req, res) => {
      seen.push(`${req.method} ${req.url?.split('?')[0]}`)
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        if (req.method === 'HEAD') return void res.writeHead(404).end()
        if (req.method === 'POST')
          return void res.writeHead(202, { location: `/v2/app/blobs/uploads/u${seen.length}`, 'oci-chunk-min-length': String(1 << 30) }).end()
        if (req.method === 'PUT') received = Buffer.concat(chunks)
        res.writeHead(req.method === 'PUT' ? 201 : 204).end()
      })
    })
    const notices: string[] = []
    const data = Buffer.alloc(100_000, 7)
    const c = new RegistryClient(host, 'app', { ...fast, chunkSize: 10_000, onNotice: (m) => notices.push(m) })
    const d = { mediaType: 'application/octet-stream', digest: digestOf(data), size: data.length }
    assert.equal(await c.uploadBlob(d, async () => Readable.from([data])), 'uploaded')
    assert.ok(received.equals(data))
    assert.ok(!seen.some((x) => x.startsWith('PATCH')), seen.join(', '))
    assert.ok(seen.includes('DELETE /v2/app/blobs/uploads/u2'), 'the chunked session is cancelled')
    assert.match(notices.join('\n'), /chunks of at least 1073741824 bytes/)
  })

  test('delete resolves a tag through GET when HEAD gives no Docker-Content-Digest', async (t) => {
    const deleted: string[] = []
    const host = await fake(t, (req, res) => {
      if (req.method === 'DELETE') {
        deleted.push(req.url ?? '')
        return void res.writeHead(202).end()
      }
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest)
    })
    assert.equal(await deleteImage(`${host}/app:v1`, { registry: fast }), digestOf(manifest))
    assert.deepEqual(deleted, [`/v2/app/manifests/${digestOf(manifest)}`])
  })

  test('a redirect to another host does not carry the Authorization header', async (t) => {
    let leaked: string | undefined = 'unset'
    const other = await fake(t, (req, res) => {
      leaked = req.headers.authorization
      res.writeHead(200).end('x')
    })
    const host = await fake(t, (req, res) => {
      if (!req.headers.authorization) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end()
      res.writeHead(307, { location: `http://${other}/blob` }).end()
    })
    const c = new RegistryClient(host, 'app', { ...fast, credentials: alice })
    const s = await c.openBlob({ mediaType: 'application/octet-stream', digest: digestOf('x'), size: 1 })
    for await (const _ of s);
    assert.equal(leaked, undefined)
  })
})

describe('registry interop: skopeo and podman', needPeers('docker-registry', 'skopeo', 'podman'), () => {
  test('skopeo and podman pull what ocikit pushed; ocikit pulls what skopeo pushed, digests identical', async (t) => {
    const r = await startRegistry(t)
    const dir = await tempDir(t)
    const src = path.join(dir, 'src')
    await fs.mkdir(src)
    await fs.writeFile(path.join(src, 'hello.txt'), 'hello from ocikit\n')
    const { appendLayers, scratch } = await import('../../src/image/mutate.ts')
    const { layerFromDirectory } = await import('../../src/layer/encode.ts')
    const img = await appendLayers(scratch({ os: 'linux', architecture: 'amd64' }), [layerFromDirectory(src, { prefix: '/data' })])
    await write(`${r.host}/app:v1`, img)
    const { peer } = await import('../helpers/peers.ts')
    await peer('skopeo', ['copy', '--src-tls-verify=false', `docker://${r.host}/app:v1`, `oci:${dir}/sk:v1`])
    assert.equal(await (await read(`oci:${dir}/sk:v1`)).digest(), await img.digest())
    await peer('skopeo', ['copy', '--dest-tls-verify=false', `oci:${dir}/sk:v1`, `docker://${r.host}/from-skopeo:v1`])
    assert.equal(await (await read(`${r.host}/from-skopeo:v1`)).digest(), await img.digest())
    const root = path.join(dir, 'podman')
    const pod = ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs']
    await peer('podman', [...pod, 'pull', '--tls-verify=false', `${r.host}/app:v1`])
    const id = (await peer('podman', [...pod, 'create', `${r.host}/app:v1`, '/nothing'])).stdout.trim()
    await peer('podman', [...pod, 'export', '-o', path.join(dir, 'fs.tar'), id])
    const listing = (await peer('tar', ['-tf', path.join(dir, 'fs.tar')])).stdout
    assert.match(listing, /data\/hello\.txt/)
  })
})

describe('registry: interrupted push', needPeers('docker-registry'), () => {
  test('an aborted push leaves no tag, and a later push completes', async (t) => {
    const r = await startRegistry(t)
    const img = await randomImage({ seed: 8, layers: 3, layerSize: 400_000, compression: 'none' })
    const ac = new AbortController()
    await assert.rejects(
      write(`${r.host}/app:v1`, img, { signal: ac.signal, onProgress: () => ac.abort(), registry: fast }),
      (e) => (e as Error).name === 'AbortError' || isOcikitError(e, 'ABORTED'),
    )
    const c = new RegistryClient(r.host, 'app', fast)
    assert.equal(await c.headManifest('v1'), undefined, 'no tag for a partial push')
    await write(`${r.host}/app:v1`, img, { registry: fast })
    assert.equal((await c.headManifest('v1'))?.digest, await img.digest())
  })
  test('Ctrl-C (SIGINT) during a CLI push over an existing tag: the tag still names the image it named, the exit says why', {
    timeout: 60_000,
  }, async (t) => {
    const r = await startRegistry(t)
    const dir = await tempDir(t)
    const old = await randomImage({ seed: 81, layers: 1 })
    await write(`${r.host}/app:v1`, old, { registry: fast })
    const next = await randomImage({ seed: 82, layers: 3, layerSize: 300_000, compression: 'none' })
    await write(`oci:${dir}/layout:next`, next)
    let child: ChildProcess | undefined
    let uploads = 0
    // The first blob upload that reaches the registry is the moment: SIGINT, then let it through.
    const proxy = await startFaultProxy(t, r.host, {
      seed: 1,
      rate: 0,
      before: async (req) => {
        if (req.method === 'PUT' && /\/manifests\//.test(req.url ?? '')) throw new Error('a manifest was put')
        if (!/\/blobs\/uploads\//.test(req.url ?? '') || uploads++ > 0) return
        child?.kill('SIGINT')
        await new Promise((res) => setTimeout(res, 300))
      },
    })
    child = spawn(process.execPath, [CLI_MAIN, 'copy', `oci:${dir}/layout:next`, `${proxy.host}/app:v1`], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString()
    })
    const code = await new Promise<number | null>((res) => child?.on('exit', (c) => res(c)))
    assert.ok(uploads > 0, 'the push had begun')
    assert.notEqual(code, 0)
    assert.match(stderr, /interrupted/)
    assert.match(stderr, /ABORTED|aborted/)
    const c = new RegistryClient(r.host, 'app', fast)
    assert.equal((await c.headManifest('v1'))?.digest, await old.digest(), 'v1 still names the old image')
  })
})

describe('registry: a failed upload', needPeers('docker-registry'), () => {
  test('one layer that fails stops the other uploads; the push rejects with that failure and pushes no tag', {
    timeout: 30_000,
  }, async (t) => {
    const r = await startRegistry(t)
    const mem = new MemoryBlobSource('broken')
    const bad = mem.put(Buffer.alloc(2000, 1), 'application/vnd.oci.image.layer.v1.tar')
    const slow = mem.put(Buffer.alloc(2000, 2), 'application/vnd.oci.image.layer.v1.tar')
    const config = mem.put(
      canonicalJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [bad.digest, slow.digest] } }),
      'application/vnd.oci.image.config.v1+json',
    )
    let slowStopped = false
    const src = {
      name: 'broken',
      readBlob: (d: Descriptor) => mem.readBlob(d),
      async openBlob(d: Descriptor) {
        if (d.digest === bad.digest) {
          // Fails once the upload has begun, not before.
          return new Readable({
            read() {
              setTimeout(() => this.destroy(new OcikitError('INVALID_LAYER', 'the source broke')), 50)
            },
          })
        }
        let sent = false
        return new Readable({
          read() {
            if (!sent) this.push(Buffer.alloc(100, 2))
            sent = true // then nothing more, ever: only being stopped ends this upload
          },
          destroy(e, cb) {
            slowStopped = true
            cb(e)
          },
        })
      },
    }
    const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [bad, slow] }
    const raw = canonicalJson(manifest)
    const img = new SourceImage(src, raw, digestOf(raw), manifest.mediaType, manifest as never)
    await assert.rejects(write(`${r.host}/app:v1`, img, { registry: fast }), (e) => isOcikitError(e, 'INVALID_LAYER'))
    // Stopped, not left to run on: a command would otherwise sit after its error until it ended.
    for (let waited = 0; !slowStopped && waited < 2000; waited += 10) await new Promise((res) => setTimeout(res, 10))
    assert.ok(slowStopped, 'the other upload was stopped')
    assert.equal(await new RegistryClient(r.host, 'app', fast).headManifest('v1'), undefined, 'no tag')
  })
})

describe('registry: referrers', needPeers('docker-registry'), () => {
  test('an artifact pushed with a subject is found as a referrer (tag-schema fallback on Distribution 2.8)', async (t) => {
    const r = await startRegistry(t)
    const img = await randomImage({ seed: 9, layers: 1 })
    await write(`${r.host}/app:v1`, img, { registry: fast })
    const c = new RegistryClient(r.host, 'app', fast)
    const { Readable } = await import('node:stream')
    const empty = Buffer.from('{}')
    const sbom = Buffer.from('{"sbom":true}')
    const emptyDesc = { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(empty), size: 2 }
    const sbomDesc = { mediaType: 'application/spdx+json', digest: digestOf(sbom), size: sbom.length }
    await c.uploadBlob(emptyDesc, async () => Readable.from([empty]))
    await c.uploadBlob(sbomDesc, async () => Readable.from([sbom]))
    const subject = { mediaType: await img.mediaType(), digest: await img.digest(), size: (await img.rawManifest()).length }
    const artifact = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/spdx+json',
        config: emptyDesc,
        layers: [sbomDesc],
        subject,
      }),
    )
    await c.putManifest(digestOf(artifact), artifact, 'application/vnd.oci.image.manifest.v1+json')
    const { referrers } = await import('../../src/api.ts')
    const found = await referrers(`${r.host}/app:v1`, { registry: fast })
    assert.deepEqual(
      found.map((d) => [d.digest, d.artifactType]),
      [[digestOf(artifact), 'application/spdx+json']],
    )
    assert.deepEqual(await referrers(`${r.host}/app:v1`, { artifactType: 'application/other', registry: fast }), [])
    const cli = await ocikit(['referrers', `${r.host}/app:v1`])
    assert.match(cli.stdout, new RegExp(`${digestOf(artifact)}\\s+application/spdx\\+json`))
    // The artifact itself copies like an image: registry → layout → another repository, same digest.
    const dir = await tempDir(t)
    await copy(`${r.host}/app@${digestOf(artifact)}`, `oci:${dir}:sbom`, { registry: fast })
    const pushed = await copy(`oci:${dir}:sbom`, `${r.host}/sboms:v1`, { registry: fast })
    assert.equal(pushed.digest, digestOf(artifact))
    const shown = await ocikit(['inspect', `${r.host}/sboms:v1`])
    assert.match(shown.stdout, /Artifact:\s+application\/spdx\+json/)
  })
})

describe('registry: HTTPS with --ca-file', needPeers('docker-registry', 'openssl'), () => {
  test('an untrusted certificate is a clear error; with the CA file the push and pull work', async (t) => {
    const r = await startRegistry(t, { tls: true })
    const img = await randomImage({ seed: 10, layers: 1 })
    await assert.rejects(
      write(`${r.host}/app:v1`, img, { registry: { ...fast, attempts: 1, caFile: '/nonexistent/ca.pem' } }),
      (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /ca-file/.test(e.message),
    )
    const { OcikitError } = await import('../../src/errors.ts')
    const wrongCa = path.join(await tempDir(t), 'other.pem')
    const { execFileSync } = await import('node:child_process')
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${wrongCa}.key`, '-out', wrongCa, '-days', '1', '-subj', '/CN=other'],
      { stdio: 'ignore' },
    )
    await assert.rejects(
      write(`${r.host}/app:v1`, img, { registry: { ...fast, attempts: 1, caFile: wrongCa } }),
      (e) => e instanceof OcikitError && e.code === 'NETWORK_ERROR',
    )
    await write(`${r.host}/app:v1`, img, { registry: { ...fast, caFile: r.caFile } })
    assert.equal(await (await read(`${r.host}/app:v1`, { registry: { caFile: r.caFile } })).digest(), await img.digest())
    const cli = await ocikit(['--ca-file', r.caFile as string, 'digest', `${r.host}/app:v1`])
    assert.equal(cli.stdout.trim(), await img.digest())
  })
})

describe('registry: OAuth2 refresh tokens', needPeers('docker-registry', 'openssl'), () => {
  test('an identity token is exchanged through the OAuth2 POST form', async (t) => {
    const r = await startRegistry(t, { auth: 'token' })
    const o = { registry: { ...fast, credentials: async () => ({ identityToken: 'refresh-alice' }) } }
    const img = await randomImage({ seed: 11, layers: 1 })
    await write(`${r.host}/app:v1`, img, o)
    assert.equal(await (await read(`${r.host}/app:v1`, o)).digest(), await img.digest())
    assert.ok(r.tokenRequests.some((q) => q.user === 'alice' && q.scope.includes('repository:app:pull,push')))
    const bad = { registry: { ...fast, credentials: async () => ({ identityToken: 'refresh-mallory' }) } }
    await assert.rejects(write(`${r.host}/app:v2`, img, bad), (e) => isOcikitError(e, 'UNAUTHORIZED') && !e.message.includes('refresh-mallory'))
  })
})
