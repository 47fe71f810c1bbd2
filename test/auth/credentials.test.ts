import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { test } from 'node:test'
import { parseChallenges } from '../../src/auth/challenge.ts'
import { defaultCredentials, removeCredentials, saveCredentials } from '../../src/auth/credentials.ts'
import { ocikit } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'

function withEnv(t: import('node:test').TestContext, env: Record<string, string | undefined>) {
  const old = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
  }
  t.after(() => {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })
}

test('credentials: REGISTRY_AUTH_FILE first, then docker config; auth entries decoded', async (t) => {
  const dir = await tempDir(t)
  const docker = path.join(dir, 'docker')
  await fs.mkdir(docker)
  await fs.writeFile(
    path.join(docker, 'config.json'),
    JSON.stringify({
      auths: {
        'a.example': { auth: Buffer.from('bob:pw:with:colons').toString('base64') },
        'https://index.docker.io/v1/': { auth: Buffer.from('hub:x').toString('base64') },
      },
    }),
  )
  const authFile = path.join(dir, 'auth.json')
  await fs.writeFile(authFile, JSON.stringify({ auths: { 'b.example': { username: 'carol', password: 'pw2' } } }))
  withEnv(t, { DOCKER_CONFIG: docker, REGISTRY_AUTH_FILE: authFile, XDG_RUNTIME_DIR: undefined })
  const get = defaultCredentials()
  assert.deepEqual(await get('a.example'), { username: 'bob', password: 'pw:with:colons' })
  assert.deepEqual(await get('b.example'), { username: 'carol', password: 'pw2' })
  assert.deepEqual(await get('docker.io'), { username: 'hub', password: 'x' })
  assert.equal(await get('c.example'), undefined)
})

test('credential helpers run as docker-credential-NAME; a missing helper falls back to anonymous with a notice', async (t) => {
  const dir = await tempDir(t)
  const bin = path.join(dir, 'bin')
  await fs.mkdir(bin)
  const helper = path.join(bin, 'docker-credential-ocikittest')
  await fs.writeFile(
    helper,
    '#!/bin/sh\nread host\nif [ "$host" = "h.example" ]; then echo \'{"ServerURL":"h.example","Username":"helper-user","Secret":"helper-secret"}\'; else echo "credentials not found" >&2; exit 1; fi\n',
    { mode: 0o755 },
  )
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ credHelpers: { 'h.example': 'ocikittest', 'm.example': 'absent' }, auths: {} }))
  withEnv(t, { DOCKER_CONFIG: dir, REGISTRY_AUTH_FILE: undefined, XDG_RUNTIME_DIR: undefined, PATH: `${bin}:${process.env.PATH}` })
  const notices: string[] = []
  const get = defaultCredentials((m) => notices.push(m))
  assert.deepEqual(await get('h.example'), { username: 'helper-user', password: 'helper-secret' })
  assert.equal(await get('m.example'), undefined)
  assert.match(notices.join(), /docker-credential-absent is not installed; using anonymous access to m\.example/)
})

test('save and remove credentials: mode 0600, other entries kept', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'config.json')
  await fs.writeFile(file, JSON.stringify({ auths: { other: { auth: 'eDp5' } }, credsStore: 'desktop' }))
  await saveCredentials('r.example', { username: 'u', password: 'p' }, file)
  const saved = JSON.parse(await fs.readFile(file, 'utf8'))
  assert.equal(saved.auths['r.example'].auth, Buffer.from('u:p').toString('base64'))
  assert.equal(saved.auths.other.auth, 'eDp5')
  assert.equal(saved.credsStore, 'desktop')
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600)
  assert.equal(await removeCredentials('r.example', file), true)
  assert.equal(await removeCredentials('r.example', file), false)
  assert.deepEqual(Object.keys(JSON.parse(await fs.readFile(file, 'utf8')).auths), ['other'])
})

test('WWW-Authenticate challenges parse, quoted commas included', () => {
  assert.deepEqual(parseChallenges('Bearer realm="https://auth/token",service="reg",scope="repository:a/b:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'https://auth/token', service: 'reg', scope: 'repository:a/b:pull,push' } },
  ])
  assert.deepEqual(
    parseChallenges('Basic realm="x", Bearer realm="y",service=s').map((c) => c.scheme),
    ['basic', 'bearer'],
  )
  assert.deepEqual(parseChallenges(null), [])
})

test('a malformed config.json is reported by place, never quoting its text, even under --debug (issue 13.5)', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'config.json')
  const secret = Buffer.from('alice:hunter2-very-secret').toString('base64')
  // An unquoted value: the parser quotes the text around it in its message.
  await fs.writeFile(file, `{"auths": {"r.example": {"auth": ${secret}}}}`)
  withEnv(t, { REGISTRY_AUTH_FILE: file, XDG_RUNTIME_DIR: undefined, DOCKER_CONFIG: dir })
  const err = await defaultCredentials()('r.example').then(
    () => assert.fail('expected an error'),
    (e: Error) => e,
  )
  assert.match(err.message, /config.json is not valid JSON/)
  // Nothing of the secret in the message, the cause chain or the stack that --debug prints.
  let text = ''
  for (let e: unknown = err; e instanceof Error; e = e.cause) text += `${e.message}\n${e.stack}\n`
  assert.ok(!text.includes(secret.slice(0, 8)), text)
  // The file is read when a registry first asks for credentials.
  const server = http.createServer((_req, res) => res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end())
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  t.after(() => server.close())
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`
  const r = await ocikit(['--debug', 'copy', `${host}/app:v1`, `oci:${dir}/out:v1`], { env: { REGISTRY_AUTH_FILE: file, DOCKER_CONFIG: dir } })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /not valid JSON/)
  assert.ok(!r.stderr.includes(secret.slice(0, 8)), r.stderr)
})
