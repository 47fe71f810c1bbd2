/**
 * The registry commands as a user runs them, against a small fake server: what reaches the
 * terminal from a registry is escaped, and a bad host is refused before anything is sent.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { type TestContext, test } from 'node:test'
import { ocikit } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'

async function fakeRegistry(t: TestContext, handler: http.RequestListener): Promise<{ host: string; hits: () => number }> {
  let hits = 0
  const server = http.createServer((req, res) => {
    hits++
    handler(req, res)
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  t.after(() => server.close())
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits }
}

const ESC = '\u001b'

test('terminal escape sequences from a registry (error messages, tag names) are printed escaped (issue 13.5)', async (t) => {
  const { host } = await fakeRegistry(t, (req, res) => {
    if (req.url?.includes('/tags/list')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'app', tags: [`v1${ESC}]0;pwned${ESC}\\`, 'v2'] }))
      return
    }
    res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'DENIED', message: `no ${ESC}[2J${ESC}[31mway` }] }))
  })
  const tags = await ocikit(['tags', `${host}/app`])
  assert.equal(tags.code, 0)
  assert.ok(!tags.stdout.includes(ESC), JSON.stringify(tags.stdout))
  assert.match(tags.stdout, /v1\\x1b\]0;pwned\\x1b\\\n/)
  const err = await ocikit(['inspect', `${host}/app:v1`])
  assert.equal(err.code, 1)
  assert.ok(!err.stderr.includes(ESC), JSON.stringify(err.stderr))
  assert.match(err.stderr, /no \\x1b\[2J\\x1b\[31mway/)
})

test('login refuses a host with a path, query, fragment or bad port before sending anything or saving (issue 13.6)', async (t) => {
  const { host, hits } = await fakeRegistry(t, (_req, res) => res.writeHead(200).end('{}'))
  const dir = await tempDir(t)
  const env = { DOCKER_CONFIG: dir }
  for (const bad of [`${host}/v2/evil`, `${host}?q=1`, `${host}#x`, '127.0.0.1:0', '127.0.0.1:65536']) {
    const r = await ocikit(['login', bad, '-u', 'alice', '--password-stdin'], { env, input: 'secret\n' })
    assert.equal(r.code, 1, bad)
    assert.match(r.stderr, /invalid registry host/, bad)
  }
  assert.equal(hits(), 0, 'nothing was requested')
  await assert.rejects(fs.stat(path.join(dir, 'config.json')), { code: 'ENOENT' })
  const ok = await ocikit(['login', `http://${host}/`, '-u', 'alice', '--password-stdin'], { env, input: 'secret\n' })
  assert.equal(ok.code, 0, ok.stderr)
  assert.deepEqual(Object.keys(JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8')).auths), [host])
})
