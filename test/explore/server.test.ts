/**
 * explore's page server: the pages show what the image has (layers and sizes, a layer's files,
 * the merged files, wasted space, the diff); a request without the token, or with another Host,
 * is refused; a file name from the image is shown as text, never as markup.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { test } from 'node:test'
import { diffExplorations, exploreImage } from '../../src/explore/analyze.ts'
import { esc, serveExploration } from '../../src/explore/server.ts'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import { layerFromDirectory } from '../../src/layer/encode.ts'
import { threeLayers } from '../helpers/explore-image.ts'
import { tempDir } from '../helpers/tmp.ts'

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => {
        body += c.toString()
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', reject)
  })
}

test('the pages: overview with layers and sizes, a layer’s files, the merged files up to a layer, wasted space, the diff', async (t) => {
  const { one, two } = await threeLayers(await tempDir(t))
  const x = await exploreImage(one)
  const s = await serveExploration(x, { diff: { against: 'oci:old', changes: diffExplorations(await exploreImage(two), x) } })
  t.after(() => s.close())
  const token = new URL(s.url).searchParams.get('token') as string
  const at = (p: string, q = '') => `${new URL(s.url).origin}${p}?token=${token}${q}`
  const home = await get(s.url)
  assert.equal(home.status, 200)
  assert.match(home.headers['content-security-policy'] as string, /default-src 'none'/)
  assert.ok(home.body.includes(x.digest))
  assert.equal((home.body.match(/<tr id="layer-/g) ?? []).length, 3)
  assert.match(home.body, /1\.1 KiB in 2 file\(s\)/)
  const layer0 = await get(at('/layer', '&i=0'))
  assert.ok(layer0.body.includes('<code>b.bin</code>') && layer0.body.includes('<code>dir/c</code>'))
  const merged0 = await get(at('/fs', '&upto=0'))
  assert.ok(merged0.body.includes('<code>b.bin</code>'), 'b.bin is there after layer 0')
  const merged2 = await get(at('/fs', '&upto=2'))
  assert.ok(!merged2.body.includes('<code>b.bin</code>'), 'and gone after layer 2 deleted it')
  const filtered = await get(at('/fs', '&upto=2&filter=dir'))
  assert.ok(filtered.body.includes('<code>dir/c</code>') && !filtered.body.includes('<code>a.txt</code>'))
  const wasted = await get(at('/wasted'))
  assert.ok(wasted.body.includes('<code>b.bin</code>') && wasted.body.includes('deleted by layer 2'))
  assert.ok(wasted.body.includes('<code>a.txt</code>') && wasted.body.includes('overwritten by layer 1'))
  assert.equal((await get(at('/diff'))).status, 200)
  assert.equal((await get(at('/nowhere'))).status, 404)
})

test('refused: no token, a wrong token, a Host other than the loopback address and port (DNS rebinding)', async (t) => {
  const { one } = await threeLayers(await tempDir(t))
  const s = await serveExploration(await exploreImage(one))
  t.after(() => s.close())
  const origin = new URL(s.url).origin
  assert.equal((await get(`${origin}/`)).status, 403)
  assert.equal((await get(`${origin}/?token=${'0'.repeat(32)}`)).status, 403)
  const rebound = await get(s.url, { host: 'example.com' })
  assert.equal(rebound.status, 403)
  assert.match(rebound.body, /only to 127\.0\.0\.1/)
  assert.equal((await get(s.url.replace('127.0.0.1', 'localhost'))).status, 200)
})

test('a file named like markup is shown as text', async (t) => {
  const dir = await tempDir(t)
  const evil = '<img src=x onerror=alert(1)>'
  await fs.writeFile(path.join(dir, evil), 'x')
  const img = await appendLayers(scratch({ os: 'linux', architecture: 'amd64' }), [layerFromDirectory(dir)])
  const s = await serveExploration(await exploreImage(img))
  t.after(() => s.close())
  const token = new URL(s.url).searchParams.get('token')
  const page = await get(`${new URL(s.url).origin}/layer?token=${token}&i=0`)
  assert.ok(page.body.includes(esc(evil)), 'escaped')
  assert.ok(!page.body.includes(evil), 'never raw')
  assert.equal(esc(`a"b'c&<>`), 'a&quot;b&#39;c&amp;&lt;&gt;')
})

test('an index: the page offers its platforms, explores another on first visit, keeps the choice in its links; an unknown one is 404', async (t) => {
  const { randomIndex } = await import('../../src/image/random.ts')
  const { formatPlatform } = await import('../../src/image/platform.ts')
  const idx = await randomIndex({ seed: 91, layers: 1 })
  const children = (await idx.manifest()).manifests
  const list = children.map((m) => formatPlatform(m.platform as import('../../src/documents/schemas.ts').Platform))
  const first = await exploreImage(await idx.image(children[0]?.digest as import('../../src/digest.ts').Digest))
  let explored = 0
  const s = await serveExploration(first, {
    platforms: {
      list,
      explore: async (p) => {
        explored++
        return exploreImage(await idx.image(children[list.indexOf(p)]?.digest as import('../../src/digest.ts').Digest))
      },
    },
  })
  t.after(() => s.close())
  const home = await get(s.url)
  const other = list.find((p) => p !== first.platform) as string
  assert.ok(home.body.includes(`platform=${encodeURIComponent(other)}`), 'a link to the other platform')
  const page = await get(`${s.url}&platform=${encodeURIComponent(other)}`)
  assert.equal(page.status, 200)
  assert.ok(page.body.includes(children[list.indexOf(other)]?.digest as string), 'that platform’s image')
  assert.ok(page.body.includes(`platform=${encodeURIComponent(other)}`), 'its links keep the choice')
  await get(`${s.url}&platform=${encodeURIComponent(other)}`)
  assert.equal(explored, 1, 'explored once, then kept')
  assert.equal((await get(`${s.url}&platform=linux%2Fs390x`)).status, 404)
})
