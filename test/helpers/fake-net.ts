/**
 * An in-process stand-in for the network: an `HttpSend` that routes each request by origin to
 * a handler, and records every request (with its headers and body) for assertions. It lets tests
 * play registries, CDNs and token services on HTTPS hosts that do not exist.
 */
import { Readable } from 'node:stream'
import type { HttpRequestInit, HttpResponse, HttpSend } from '../../src/http/http.ts'

/** A request as the fake network saw it. */
export interface FakeRequest {
  url: URL
  method: string
  headers: Record<string, string>
  body: string
}

/** A handler's answer. */
export interface FakeAnswer {
  status: number
  headers?: Record<string, string>
  body?: string | Uint8Array
}

/** Answers requests for one origin. */
export type FakeHandler = (r: FakeRequest) => FakeAnswer | Promise<FakeAnswer>

async function bodyText(body: HttpRequestInit['body']): Promise<string> {
  if (body === undefined) return ''
  if (typeof body === 'string') return body
  if (body instanceof Readable) return Buffer.concat(await body.toArray()).toString('utf8')
  return Buffer.from(body).toString('utf8')
}

/** A fake network of `origin → handler`; a request to any other origin fails as a refused connection. */
export function fakeNet(hosts: Record<string, FakeHandler>): { send: HttpSend; log: FakeRequest[] } {
  const log: FakeRequest[] = []
  const send: HttpSend = async (url, init = {}) => {
    const req: FakeRequest = { url: new URL(url), method: init.method ?? 'GET', headers: { ...init.headers }, body: await bodyText(init.body) }
    log.push(req)
    const handler = hosts[url.origin]
    if (!handler) throw Object.assign(new Error(`connect ECONNREFUSED ${url.host}`), { code: 'ECONNREFUSED' })
    const a = await handler(req)
    const headers = new Map(Object.entries(a.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
    const bytes = a.body === undefined ? Buffer.alloc(0) : Buffer.from(a.body)
    if (!headers.has('content-length')) headers.set('content-length', String(bytes.length))
    const res: HttpResponse = {
      status: a.status,
      url: url.toString(),
      headers: { get: (n) => headers.get(n.toLowerCase()) ?? null },
      body: {
        async *[Symbol.asyncIterator]() {
          if (bytes.length) yield bytes
        },
        cancel: async () => {},
      },
    }
    return res
  }
  return { send, log }
}

/** The JSON answer of a token service. */
export function tokenAnswer(token: string): FakeAnswer {
  return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, expires_in: 300 }) }
}
