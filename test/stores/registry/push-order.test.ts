/**
 * What a push sends, in what order, with which token: against an in-process registry on the
 * fake network, so that these hold where docker-registry is not installed (issue 19). Blobs go
 * before the manifest that names them, child manifests before the index, the tag last; each
 * repository gets a token for its own scope.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { write } from '../../../src/api.ts'
import { randomImage, randomIndex } from '../../../src/image/random.ts'
import { type FakeAnswer, type FakeRequest, fakeNet, tokenAnswer } from '../../helpers/fake-net.ts'

/** A registry that keeps blobs and manifests in memory, behind Bearer tokens whose scope it checks. */
function memoryRegistry(o: { loseOnFirstManifest?: boolean } = {}) {
  let lose = o.loseOnFirstManifest ?? false
  const blobs = new Set<string>()
  const manifests = new Map<string, string>()
  const events: string[] = []
  const tokens: string[] = []
  const challenge = (repo: string) => ({
    status: 401,
    headers: { 'www-authenticate': `Bearer realm="https://auth.r.example/token",service="r",scope="repository:${repo}:pull,push"` },
  })
  const registry = (r: FakeRequest): FakeAnswer => {
    const m = /^\/v2\/(.+?)\/(blobs\/uploads\/?|blobs|manifests)\/?(.*)$/.exec(r.url.pathname)
    if (!m) return { status: 200, body: '{}' }
    const [, repo, kind, rest] = m as unknown as [string, string, string, string]
    if (r.headers.authorization !== `Bearer token-for-${repo}`) return challenge(repo)
    if (kind === 'blobs') return blobs.has(`${repo}@${rest}`) ? { status: 200, headers: { 'content-length': '0' } } : { status: 404 }
    if (kind.startsWith('blobs/uploads')) {
      if (r.method === 'POST') return { status: 202, headers: { location: `/v2/${repo}/blobs/uploads/u${Math.random().toString(36).slice(2)}` } }
      const digest = r.url.searchParams.get('digest') as string
      blobs.add(`${repo}@${digest}`)
      events.push(`blob ${repo} ${digest.slice(7, 15)}`)
      return { status: 201 }
    }
    if (r.method === 'PUT') {
      if (lose) {
        // The registry loses a blob the client has put, and says so at the manifest.
        lose = false
        const gone = [...blobs].find((b) => b.startsWith(`${repo}@`)) as string
        blobs.delete(gone)
        events.push(`lost ${repo} ${gone.split('@')[1]?.slice(7, 15)}`)
        return {
          status: 400,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry' }] }),
        }
      }
      // Like Distribution: a manifest whose blobs are not all there is refused.
      const doc = JSON.parse(r.body) as { config?: { digest: string }; layers?: { digest: string }[] }
      const named = [doc.config, ...(doc.layers ?? [])].filter((b): b is { digest: string } => b !== undefined)
      if (named.some((b) => !blobs.has(`${repo}@${b.digest}`))) {
        return {
          status: 400,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry' }] }),
        }
      }
      manifests.set(`${repo}:${rest}`, r.body)
      events.push(`manifest ${repo} ${rest.startsWith('sha256:') ? rest.slice(7, 15) : rest}`)
      return { status: 201 }
    }
    return manifests.has(`${repo}:${rest}`) ? { status: 200, body: manifests.get(`${repo}:${rest}`) } : { status: 404 }
  }
  const auth = (r: FakeRequest): FakeAnswer => {
    const scope = r.url.searchParams.get('scope') ?? ''
    tokens.push(scope)
    return tokenAnswer(`token-for-${/^repository:([^:]+):/.exec(scope)?.[1]}`)
  }
  return { net: fakeNet({ 'https://r.example': registry, 'https://auth.r.example': auth }), events, tokens }
}

test('an image: its config and layers before its manifest, the tagged manifest last; a token for its repository only', async () => {
  const { net, events, tokens } = memoryRegistry()
  const img = await randomImage({ seed: 81, layers: 3 })
  await write('r.example/app:v1', img, { registry: { http: net.send, credentials: async () => undefined } })
  const m = await img.manifest()
  const blobEvents = events.filter((e) => e.startsWith('blob'))
  assert.equal(blobEvents.length, 4, 'three layers and the config')
  for (const d of [m.config, ...m.layers]) assert.ok(blobEvents.includes(`blob app ${d.digest.slice(7, 15)}`))
  assert.equal(events.at(-1), 'manifest app v1', 'the tag is written last')
  assert.equal(events.filter((e) => e.startsWith('manifest')).length, 1)
  assert.ok(tokens.length > 0 && tokens.every((s) => s.startsWith('repository:app:')), tokens.join(' '))
})

test('an index: every child’s blobs before the child’s manifest, every child before the index, the tag last; another repository gets its own token', async () => {
  const { net, events, tokens } = memoryRegistry()
  const idx = await randomIndex({ seed: 82, layers: 2 })
  await write('r.example/multi:v1', idx, { registry: { http: net.send, credentials: async () => undefined } })
  const children = (await idx.manifest()).manifests
  for (const c of children) {
    const child = await idx.image(c.digest)
    const cm = await child.manifest()
    const at = events.indexOf(`manifest multi ${c.digest.slice(7, 15)}`)
    assert.ok(at >= 0, `the child ${c.digest} was put by digest`)
    for (const d of [cm.config, ...cm.layers]) {
      const b = events.indexOf(`blob multi ${d.digest.slice(7, 15)}`)
      assert.ok(b >= 0 && b < at, `${d.digest} before its manifest`)
    }
  }
  assert.equal(events.at(-1), 'manifest multi v1')
  const before = tokens.length
  await write('r.example/other:v1', await randomImage({ seed: 83 }), { registry: { http: net.send, credentials: async () => undefined } })
  assert.ok(tokens.length > before, 'a new token for the other repository')
  assert.ok(
    tokens.slice(before).every((s) => s.startsWith('repository:other:')),
    tokens.slice(before).join(' '),
  )
})

test('a registry that loses a blob the push put (MANIFEST_BLOB_UNKNOWN at the manifest): the blob is put again and the push completes', async () => {
  const { net, events } = memoryRegistry({ loseOnFirstManifest: true })
  const img = await randomImage({ seed: 84, layers: 2 })
  await write('r.example/app:v1', img, { registry: { http: net.send, credentials: async () => undefined, backoffMs: 1 } })
  const lost = events.find((e) => e.startsWith('lost'))
  assert.ok(lost, events.join(' | '))
  const digest = lost.split(' ')[2]
  assert.ok(events.indexOf(`blob app ${digest}`, events.indexOf(lost)) > events.indexOf(lost), 'put again after it was lost')
  assert.equal(events.at(-1), 'manifest app v1')
})
