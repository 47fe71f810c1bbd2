/**
 * What the registry transport sends to whom: credentials and tokens stay with the registry
 * (and the realm) they belong to. Each test is named after the leak it guards against, and runs
 * on an in-process fake network, so that HTTPS hosts, CDNs and token services can be played.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isOcikitError } from '../../../src/errors.ts'
import { RegistryTransport } from '../../../src/stores/registry/transport.ts'
import { type FakeAnswer, type FakeRequest, fakeNet, tokenAnswer } from '../../helpers/fake-net.ts'
import { freePort } from '../../helpers/registry.ts'

const ok = { status: 200, body: '{}' }
const get = (t: RegistryTransport, path = 'app/manifests/v1', scope = 'repository:app:pull') =>
  t.request({ method: 'GET', path, scope, ok: [200] }).then((r) => r.body.cancel())
const sentAuth = (log: FakeRequest[], origin: string) => log.filter((r) => r.url.origin === origin && r.headers.authorization !== undefined)

describe('registry transport: credentials stay with their registry', () => {
  test('a bearer token for one registry is not sent to another that names the same realm (issue 13.1)', async () => {
    const realmA = 'https://auth.a.example/token'
    const bearerA = { 'www-authenticate': `Bearer realm="${realmA}",service="a"` }
    const net = fakeNet({
      'https://a.example': (r) => (r.headers.authorization === 'Bearer token-of-alice' ? ok : { status: 401, headers: bearerA }),
      'https://auth.a.example': (r) => tokenAnswer(r.headers.authorization ? 'token-of-alice' : 'anonymous-token'),
      // B answers with A's realm and service, hoping for A's token on the retry.
      'https://b.example': (r) => (r.headers.authorization === 'Bearer anonymous-token' ? ok : { status: 401, headers: bearerA }),
    })
    const credentials = async (host: string) => (host === 'a.example' ? { username: 'alice', password: 'secret' } : undefined)
    await get(new RegistryTransport('a.example', { http: net.send, credentials }))
    // B learns the bearer scheme on a push-scoped request, then makes a pull-scoped one: the
    // scope A's token was cached under.
    const b = new RegistryTransport('b.example', { http: net.send, credentials })
    await get(b, 'app/blobs/uploads/', 'repository:app:pull,push')
    await get(b)
    const toB = net.log.filter((r) => r.url.origin === 'https://b.example').map((r) => r.headers.authorization)
    assert.ok(!toB.includes('Bearer token-of-alice'), `B was sent: ${toB.join(', ')}`)
    assert.deepEqual(toB, [undefined, 'Bearer anonymous-token', 'Bearer anonymous-token'])
  })

  test('two users of one registry do not share a token', async () => {
    const bearer = { 'www-authenticate': 'Bearer realm="https://auth.r.example/token",service="r"' }
    const net = fakeNet({
      'https://r.example': (r) => (r.headers.authorization?.startsWith('Bearer ') ? ok : { status: 401, headers: bearer }),
      'https://auth.r.example': (r) => tokenAnswer(`token-for-${Buffer.from((r.headers.authorization ?? '').slice(6), 'base64').toString()}`),
    })
    await get(new RegistryTransport('r.example', { http: net.send, credentials: async () => ({ username: 'alice', password: 'a' }) }))
    const bob = new RegistryTransport('r.example', { http: net.send, credentials: async () => ({ username: 'bob', password: 'b' }) })
    await get(bob, 'app/blobs/uploads/', 'repository:app:pull,push')
    await get(bob)
    const sent = net.log.filter((r) => r.url.origin === 'https://r.example' && r.headers.authorization).map((r) => r.headers.authorization)
    assert.deepEqual(sent, ['Bearer token-for-alice:a', 'Bearer token-for-bob:b', 'Bearer token-for-bob:b'])
  })

  test('a public registry that redirects to a loopback or private address is refused, nothing is asked there; --insecure HOST allows it (issue 19)', async () => {
    for (const target of [
      'http://127.0.0.1:9/x',
      'https://10.0.0.5/x',
      'https://169.254.169.254/latest/meta-data',
      'http://[::1]:5000/x',
      'http://[::ffff:127.0.0.1]/x',
      'http://localhost/x',
    ]) {
      const net = fakeNet({ 'https://r.example': () => ({ status: 307, headers: { location: target } }) })
      const t = new RegistryTransport('r.example', { http: net.send, credentials: async () => undefined, attempts: 1 })
      await assert.rejects(
        get(t, 'app/blobs/sha256:00'),
        (e) => isOcikitError(e, 'REGISTRY_ERROR') && /a loopback or private address/.test(e.message) && /--insecure/.test(e.message),
        target,
      )
      assert.deepEqual(
        net.log.map((r) => r.url.origin),
        ['https://r.example'],
        `${target} was never asked`,
      )
    }
    const net = fakeNet({
      'https://r.example': () => ({ status: 307, headers: { location: 'https://10.0.0.5/blob' } }),
      'https://10.0.0.5': () => ({ status: 200, body: 'ok' }),
    })
    const t = new RegistryTransport('r.example', { http: net.send, credentials: async () => undefined, insecure: ['10.0.0.5'] })
    await get(t, 'app/blobs/sha256:00')
    assert.equal(net.log.at(-1)?.url.origin, 'https://10.0.0.5', 'followed to the host the user named')
    // A redirect to a public CDN, and a registry on this machine redirecting on it, are as before.
    const cdn = fakeNet({
      'https://r.example': () => ({ status: 307, headers: { location: 'https://cdn.example/b' } }),
      'https://cdn.example': () => ({ status: 200, body: 'ok' }),
    })
    await get(new RegistryTransport('r.example', { http: cdn.send, credentials: async () => undefined }), 'app/blobs/sha256:00')
    assert.equal(cdn.log.at(-1)?.url.origin, 'https://cdn.example')
    // A scheme other than http(s) is refused too.
    const ftp = fakeNet({ 'https://r.example': () => ({ status: 302, headers: { location: 'ftp://files.example/b' } }) })
    await assert.rejects(
      get(new RegistryTransport('r.example', { http: ftp.send, credentials: async () => undefined }), 'app/blobs/sha256:00'),
      /not an http\(s\) URL/,
    )
  })

  test("a redirect target that answers 401 never gets the registry's credentials, nor the realm it names (issue 13.2)", async () => {
    const net = fakeNet({
      'https://r.example': (r): FakeAnswer => {
        if (!r.headers.authorization) return { status: 401, headers: { 'www-authenticate': 'Basic realm="r"' } }
        return { status: 307, headers: { location: 'https://cdn.example/blob?sig=1' } }
      },
      'https://cdn.example': () => ({ status: 401, headers: { 'www-authenticate': 'Bearer realm="https://evil.example/token",service="cdn"' } }),
      'https://evil.example': () => tokenAnswer('x'),
    })
    const t = new RegistryTransport('r.example', { http: net.send, credentials: async () => ({ username: 'alice', password: 'secret' }) })
    await assert.rejects(get(t, 'app/blobs/sha256:00'), (e) => isOcikitError(e, 'UNAUTHORIZED') && /redirected to https:\/\/cdn\.example/.test(e.message))
    assert.equal(sentAuth(net.log, 'https://cdn.example').length, 0)
    assert.equal(net.log.filter((r) => r.url.origin === 'https://evil.example').length, 0, 'the realm named by the CDN is never asked')
    assert.ok(!JSON.stringify(net.log.filter((r) => r.url.origin !== 'https://r.example')).includes(Buffer.from('alice:secret').toString('base64')))
  })

  test('a refresh token is not re-sent on a cross-origin redirect of the token request (issue 13.3)', async () => {
    const net = fakeNet({
      'https://r.example': () => ({ status: 401, headers: { 'www-authenticate': 'Bearer realm="https://auth.r.example/token",service="r"' } }),
      'https://auth.r.example': () => ({ status: 307, headers: { location: 'https://evil.example/steal' } }),
      'https://evil.example': () => tokenAnswer('x'),
    })
    const t = new RegistryTransport('r.example', { http: net.send, credentials: async () => ({ identityToken: 'refresh-secret' }) })
    await assert.rejects(get(t), (e) => isOcikitError(e, 'UNAUTHORIZED') && /refresh token/.test(e.message) && !e.message.includes('refresh-secret'))
    assert.equal(net.log.filter((r) => r.url.origin === 'https://evil.example').length, 0)
    assert.ok(net.log.every((r) => r.url.origin === 'https://auth.r.example' || !r.body.includes('refresh-secret')))
  })

  test('a refresh token follows a same-origin 307 of the token request', async () => {
    const bearer = { 'www-authenticate': 'Bearer realm="https://auth.r.example/token",service="r"' }
    const net = fakeNet({
      'https://r.example': (r) => (r.headers.authorization === 'Bearer fresh' ? ok : { status: 401, headers: bearer }),
      'https://auth.r.example': (r) =>
        r.url.pathname === '/token'
          ? { status: 307, headers: { location: '/v2/token' } }
          : r.body.includes('refresh-secret')
            ? tokenAnswer('fresh')
            : { status: 401 },
    })
    await get(new RegistryTransport('r.example', { http: net.send, credentials: async () => ({ identityToken: 'refresh-secret' }) }))
  })

  test('Basic credentials are not sent in clear text to an http:// realm of an HTTPS registry (issue 13.4)', async () => {
    const bearer = { 'www-authenticate': 'Bearer realm="http://auth.example/token",service="r"' }
    const net = fakeNet({
      'https://r.example': (r) => (r.headers.authorization === 'Bearer t' ? ok : { status: 401, headers: bearer }),
      'http://auth.example': () => tokenAnswer('t'),
    })
    const credentials = async () => ({ username: 'alice', password: 'secret' })
    await assert.rejects(
      get(new RegistryTransport('r.example', { http: net.send, credentials })),
      (e) => isOcikitError(e, 'INSECURE_TRANSPORT') && e.message.includes('http://auth.example/token') && e.message.includes('--insecure auth.example'),
    )
    assert.equal(net.log.filter((r) => r.url.protocol === 'http:').length, 0, 'nothing went to the plain-HTTP realm')
    // Opted in: the realm's host marked insecure.
    await get(new RegistryTransport('r.example', { http: net.send, credentials, insecure: ['auth.example'] }))
    // Anonymous: there is no secret to protect.
    await get(new RegistryTransport('r.example', { http: net.send, credentials: async () => undefined }))
  })
})

describe('registry transport: what is retried', () => {
  test('a 400, 403 or 404 is not retried: one request, the answer in the error (issue 19: a removed check would retry them)', async () => {
    for (const [status, code] of [
      [400, 'REGISTRY_ERROR'],
      [403, 'DENIED'],
      [404, 'MANIFEST_UNKNOWN'],
    ] as const) {
      const net = fakeNet({
        'https://r.example': () => ({
          status,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ errors: [{ code: 'X', message: `no (${status})` }] }),
        }),
      })
      const retries: unknown[] = []
      const t = new RegistryTransport('r.example', { http: net.send, credentials: async () => undefined, backoffMs: 1, onRetry: (r) => retries.push(r) })
      await assert.rejects(get(t), (e) => isOcikitError(e) && e.code === code && e.message.includes(`no (${status})`), String(status))
      assert.equal(net.log.length, 1, `${status}: asked once`)
      assert.deepEqual(retries, [], `${status}: no retry`)
    }
    // While a 503 is retried (the other side of the same check).
    let n = 0
    const busy = fakeNet({ 'https://r.example': () => (n++ < 2 ? { status: 503 } : { status: 200, body: '{}' }) })
    await get(new RegistryTransport('r.example', { http: busy.send, credentials: async () => undefined, backoffMs: 1 }))
    assert.equal(busy.log.length, 3)
  })

  test('a refused connection to a loopback registry fails at once, saying the registry is not reachable (issue 13.9)', async () => {
    const port = await freePort() // nothing listens there
    const started = Date.now()
    const retries: unknown[] = []
    const t = new RegistryTransport(`127.0.0.1:${port}`, { onRetry: (r) => retries.push(r) })
    await assert.rejects(
      get(t),
      (e) => isOcikitError(e, 'NETWORK_ERROR') && e.message.includes(`not reachable at http://127.0.0.1:${port}`) && /connection refused/.test(e.message),
    )
    assert.deepEqual(retries, [])
    assert.ok(Date.now() - started < 1000)
  })

  test('an unknown host fails at once; a refused connection elsewhere is tried twice; a reset is retried (issue 13.9)', async () => {
    const fail = (code: string) => () => {
      throw Object.assign(new Error(`${code} r.example`), { code })
    }
    const net = fakeNet({
      'https://unknown.example': fail('ENOTFOUND'),
      'https://refused.example': fail('ECONNREFUSED'),
      'https://reset.example': fail('ECONNRESET'),
    })
    const tries = (host: string) => net.log.filter((r) => r.url.host === host).length
    const o = { http: net.send, backoffMs: 1, attempts: 4 }
    await assert.rejects(
      get(new RegistryTransport('unknown.example', o)),
      (e) => isOcikitError(e, 'NETWORK_ERROR') && /unknown host unknown\.example/.test(e.message),
    )
    await assert.rejects(get(new RegistryTransport('refused.example', o)), (e) => isOcikitError(e, 'NETWORK_ERROR') && /connection refused/.test(e.message))
    await assert.rejects(get(new RegistryTransport('reset.example', o)), (e) => isOcikitError(e, 'NETWORK_ERROR') && /after 4 attempt/.test(e.message))
    assert.deepEqual([tries('unknown.example'), tries('refused.example'), tries('reset.example')], [1, 2, 4])
  })

  test('document requests carry the total deadline, blob transfers do not (issue 13.9)', async () => {
    const seen: (number | undefined)[] = []
    const t = new RegistryTransport('r.example', {
      requestTimeoutMs: 1234,
      http: async (url, init) => {
        seen.push(init?.deadlineMs)
        return fakeNet({ 'https://r.example': () => ok }).send(url, init)
      },
    })
    await get(t)
    await t.request({ method: 'GET', path: 'app/blobs/sha256:00', ok: [200], streaming: true }).then((r) => r.body.cancel())
    assert.deepEqual(seen, [1234, undefined])
  })
})
