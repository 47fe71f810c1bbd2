/**
 * A fault-injecting proxy in front of a real registry, for the fault campaign: each request, by
 * a seeded draw, is passed through or meets one fault: a 500/502/503, a 429 with Retry-After in
 * seconds or as an HTTP date, a connection dropped before the answer, a body cut short, a blob
 * served with one byte changed, a slow answer, or an upload session the registry "forgot".
 * Counts every fault by kind.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'

export const FAULT_KINDS = ['500', '502', '503', '429-seconds', '429-date', 'drop', 'truncate', 'wrong-bytes', 'slow', 'forget-upload'] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

/** mulberry32: a campaign's draws (faults, kills), the same for the same seed. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), s | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Starts the proxy for `upstream` (`127.0.0.1:PORT`); `rate` is the share of requests that meet a
 * fault. `before`, if given, is awaited before a request without a fault is passed on (a test's
 * hook: hold a request, or act when one arrives).
 */
export async function startFaultProxy(
  t: TestContext,
  upstream: string,
  o: { seed: number; rate: number; before?: (req: http.IncomingMessage) => Promise<void> | void },
): Promise<{ host: string; injected: Map<FaultKind, number>; requests: () => number }> {
  const draw = seeded(o.seed)
  const injected = new Map<FaultKind, number>()
  let requests = 0
  const port = Number(upstream.split(':')[1])
  const server = http.createServer((req, res) => {
    requests++
    const url = req.url ?? '/'
    const isBlobGet = req.method === 'GET' && /\/blobs\/sha256:/.test(url)
    const isUpload = /\/blobs\/uploads\/./.test(url) && (req.method === 'PATCH' || req.method === 'PUT')
    let fault: FaultKind | undefined
    if (url !== '/v2/' && draw() < o.rate) {
      const pool = FAULT_KINDS.filter((k) => (k === 'wrong-bytes' || k === 'truncate' ? req.method === 'GET' : k === 'forget-upload' ? isUpload : true))
      fault = pool[Math.floor(draw() * pool.length)]
    }
    if (fault) injected.set(fault, (injected.get(fault) ?? 0) + 1)
    const drain = () => req.resume()
    switch (fault) {
      case '500':
      case '502':
      case '503':
        drain()
        res.writeHead(Number(fault), { 'content-type': 'text/plain' }).end(`injected ${fault}`)
        return
      case '429-seconds':
        drain()
        res.writeHead(429, { 'retry-after': '0' }).end()
        return
      case '429-date':
        drain()
        res.writeHead(429, { 'retry-after': new Date(Date.now() + 100).toUTCString() }).end()
        return
      case 'drop':
        drain()
        req.socket.destroy()
        return
      case 'forget-upload':
        drain()
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end(JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'blob upload unknown to registry' }] }))
        return
      default:
    }
    const forward = () => {
      const up = http.request({ host: '127.0.0.1', port, path: url, method: req.method, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers)
        if (fault === 'truncate') {
          let sent = 0
          upRes.on('data', (c: Buffer) => {
            if (sent > 100) return
            sent += c.length
            res.write(c.subarray(0, Math.max(1, Math.floor(c.length / 2))), () => {
              upRes.destroy()
              res.socket?.destroy()
            })
          })
          upRes.on('end', () => res.socket?.destroy())
          return
        }
        if (fault === 'wrong-bytes' && isBlobGet) {
          let first = true
          upRes.on('data', (c: Buffer) => {
            if (first && c.length > 0) {
              const b = Buffer.from(c)
              b[0] = (b[0] as number) ^ 0xff
              res.write(b)
              first = false
            } else res.write(c)
          })
          upRes.on('end', () => res.end())
          return
        }
        upRes.pipe(res)
      })
      up.on('error', () => res.socket?.destroy())
      req.pipe(up)
    }
    if (fault === 'slow') setTimeout(forward, 200)
    else if (o.before) Promise.resolve(o.before(req)).then(forward, () => req.socket.destroy())
    else forward()
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()))
  t.after(() => new Promise<void>((done) => server.close(() => done())))
  t.after(() => server.closeAllConnections())
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, injected, requests: () => requests }
}
