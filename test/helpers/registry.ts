/**
 * Starts Debian's docker-registry (CNCF Distribution) on 127.0.0.1 at a free port, anonymous,
 * with htpasswd Basic auth, or with token auth backed by a small token server here that checks
 * credentials and signs JWTs for the requested scope (the Bearer flow Docker Hub and GHCR use).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { createSign, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A running registry. */
export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string
  /** Token requests seen (token auth only), for asserting on the flow. */
  tokenRequests: { scope: string[]; user: string | undefined }[]
  /** The certificate to trust, for a TLS registry. */
  caFile?: string | undefined
  /** The token realm and service the registry's challenges name (token auth only). */
  token?: { realm: string; service: string } | undefined
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url')

async function startTokenServer(
  t: TestContext,
  dir: string,
  users: Record<string, string>,
  seen: TestRegistry['tokenRequests'],
): Promise<{ realm: string; cert: string }> {
  const key = path.join(dir, 'token.key')
  const cert = path.join(dir, 'token.crt')
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=ocikit-test-token'])
  const pem = await fs.readFile(key, 'utf8')
  const der = (await fs.readFile(cert, 'utf8')).replace(/-----[^-]+-----|\s/g, '')
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const auth = req.headers.authorization
    let user: string | undefined
    if (req.method === 'POST') {
      // The OAuth2 form: grant_type=refresh_token; a refresh token 'refresh-NAME' stands for user NAME.
      let body = ''
      for await (const c of req) body += c
      const form = new URLSearchParams(body)
      const name = form.get('refresh_token')?.replace(/^refresh-/, '')
      if (form.get('grant_type') !== 'refresh_token' || !name || !(name in users)) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad refresh token"}')
        return
      }
      user = name
      for (const s of (form.get('scope') ?? '').split(' ').filter(Boolean)) url.searchParams.append('scope', s)
    }
    if (auth?.startsWith('Basic ')) {
      const [u, p] = Buffer.from(auth.slice(6), 'base64').toString().split(':')
      if (!u || users[u] !== p) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}')
        return
      }
      user = u
    }
    const scopes = url.searchParams.getAll('scope')
    seen.push({ scope: scopes, user })
    // Anonymous users get pull only; known users get what they ask for.
    const access = scopes.flatMap((s) => {
      const [type, name, actions] = [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1, s.lastIndexOf(':')), s.slice(s.lastIndexOf(':') + 1)]
      const wanted = actions.split(',')
      return [{ type, name, actions: user ? wanted : wanted.filter((a) => a === 'pull') }]
    })
    const now = Math.floor(Date.now() / 1000)
    const header = { alg: 'RS256', typ: 'JWT', x5c: [der] }
    const claims = {
      iss: 'ocikit-test',
      sub: user ?? '',
      aud: 'test-registry',
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    }
    const body = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const sig = createSign('RSA-SHA256').update(body).sign(pem)
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${body}.${b64url(sig)}`, expires_in: 300 }))
  })
  const port = await freePort()
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()))
  t.after(() => new Promise<void>((r) => server.close(() => r())))
  return { realm: `http://127.0.0.1:${port}/token`, cert }
}

/** Starts a registry for the test; it is stopped when the test ends. */
export async function startRegistry(
  t: TestContext,
  o: { auth?: 'none' | 'htpasswd' | 'token'; users?: Record<string, string>; tls?: boolean } = {},
): Promise<TestRegistry> {
  // Removed by the hook below, after the registry has exited: removing it while the registry
  // still runs races with its writes (ENOTEMPTY), and a failing hook must not leave it running.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ocikit-registry-'))
  const port = await freePort()
  const users = o.users ?? { alice: 'wonderland' }
  const tokenRequests: TestRegistry['tokenRequests'] = []
  let auth = ''
  let token: TestRegistry['token']
  if (o.auth === 'htpasswd') {
    const lines = await Promise.all(Object.entries(users).map(async ([u, p]) => (await run('htpasswd', ['-Bbn', u, p])).stdout.trim()))
    await fs.writeFile(path.join(dir, 'htpasswd'), `${lines.join('\n')}\n`)
    auth = `auth:\n  htpasswd:\n    realm: test-realm\n    path: ${path.join(dir, 'htpasswd')}\n`
  } else if (o.auth === 'token') {
    const { realm, cert } = await startTokenServer(t, dir, users, tokenRequests)
    token = { realm, service: 'test-registry' }
    auth = `auth:\n  token:\n    realm: ${realm}\n    service: test-registry\n    issuer: ocikit-test\n    rootcertbundle: ${cert}\n`
  }
  let tls = ''
  let caFile: string | undefined
  if (o.tls) {
    caFile = path.join(dir, 'registry.crt')
    const key = path.join(dir, 'registry.key')
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      caFile,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ])
    tls = `  tls:\n    certificate: ${caFile}\n    key: ${key}\n`
  }
  const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${path.join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
  secret: ${randomBytes(8).toString('hex')}
${tls}${auth}`
  await fs.writeFile(path.join(dir, 'config.yml'), config)
  const child: ChildProcess = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (c) => {
    stderr += String(c)
  })
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const killed = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(killed)
    }
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 })
  })
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      const status = o.tls
        ? await new Promise<number>((resolve, reject) => {
            https
              .get(`https://127.0.0.1:${port}/v2/`, { rejectUnauthorized: false }, (res) => {
                res.resume()
                resolve(res.statusCode ?? 0)
              })
              .on('error', reject)
          })
        : await fetch(`http://127.0.0.1:${port}/v2/`).then(async (res) => {
            await res.body?.cancel()
            return res.status
          })
      if (status === 200 || status === 401) break
    } catch {}
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`docker-registry did not start: ${stderr.slice(-2000)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return { host: `127.0.0.1:${port}`, tokenRequests, caFile, token }
}
