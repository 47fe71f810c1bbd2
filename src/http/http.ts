/**
 * HTTP/1.1 requests on Node's own `http`/`https` modules, with keep-alive connection pools.
 *
 * Written here rather than using `fetch` because fetch moves every body through web streams:
 * in bench/registry.ts a 53 MiB blob pull took 0.45 s through fetch and 0.2 s through this,
 * with a third of the difference in garbage collection. The interface is the small part of
 * fetch the registry client needs; redirects are never followed here (the transport does that
 * by hand, so that credentials stay with their origin).
 */
import { readFileSync } from 'node:fs'
import type http from 'node:http'
import type { ClientRequest } from 'node:http'
import type https from 'node:https'
import { Readable } from 'node:stream'
import { releaseChunk } from '../buffer-pool.ts'
import { AbortedError, OcikitError, RegistryError } from '../errors.ts'

/** A response body: an async iterable of bytes that can be dropped unread. */
export interface HttpBody extends AsyncIterable<Uint8Array> {
  /** Discards the rest of the body (and, for a long one, the connection). Never throws. */
  cancel(): Promise<void>
}

/** The parts of a response the registry client reads. */
export interface HttpResponse {
  readonly status: number
  /** The URL this response answers. */
  readonly url: string
  readonly headers: { get(name: string): string | null }
  readonly body: HttpBody
}

/** What a request may carry: bytes, text, or a stream (sent as it is read). */
export type HttpRequestBody = Uint8Array | string | Readable

/** One request. */
export interface HttpRequestInit {
  method?: string | undefined
  headers?: Record<string, string> | undefined
  body?: HttpRequestBody | undefined
  signal?: AbortSignal | undefined
  /**
   * The whole exchange (connecting, sending, the answer's headers and its body) must be over
   * within this many ms, or the request fails as a network error. For documents; blob transfers,
   * whose length is unbounded, leave it out and are bounded by the stall timeout.
   */
  deadlineMs?: number | undefined
}

/** Sends one request and resolves when the response headers have arrived. */
export type HttpSend = (url: URL, init?: HttpRequestInit) => Promise<HttpResponse>

/** How an {@link HttpSend} connects. */
export interface HttpClientOptions {
  /** PEM file of CA certificates to trust for HTTPS (only these are trusted then). */
  caFile?: string | undefined
  /**
   * A request fails, as a network error that is retried, when fewer than 1 KiB moved in either
   * direction over this many ms while it waited on the network: connecting, sending, waiting for
   * the answer, or reading an answer its reader is waiting for (default 30 s). A reader or a
   * request body that is slow itself (back-pressure) is not a stall. So a server that never
   * answers, or trickles a byte a second, is given up on, however long the transfer.
   */
  stallTimeoutMs?: number | undefined
}

/** The default of {@link HttpClientOptions.stallTimeoutMs}. */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000

/** Fewer bytes than this in a stall window is a stall. */
const STALL_MIN_BYTES = 1024
/** How many times a stall window samples the transfer's state. */
const STALL_SAMPLES = 5

/** Bodies shorter than this are read to the end on cancel, so their connection can be reused. */
const DRAIN_LIMIT = 64 * 1024

function headerGetter(msg: http.IncomingMessage): { get(name: string): string | null } {
  return {
    get(name: string) {
      const v = msg.headers[name.toLowerCase()]
      if (v === undefined) return null
      return Array.isArray(v) ? v.join(', ') : v
    },
  }
}

function responseOf(msg: http.IncomingMessage, url: URL, method: string): HttpResponse {
  // The connection goes back to its pool only once the body has been read to its end: read
  // the ones that have nothing in them now, so that callers need not.
  if (method === 'HEAD' || msg.headers['content-length'] === '0' || msg.statusCode === 204 || msg.statusCode === 304) msg.resume()
  return {
    status: msg.statusCode ?? 0,
    url: url.toString(),
    headers: headerGetter(msg),
    body: {
      [Symbol.asyncIterator]: () => msg[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>,
      cancel: async () => {
        if (msg.destroyed || msg.readableEnded) return
        const length = Number(msg.headers['content-length'] ?? Number.NaN)
        if (msg.complete || length <= DRAIN_LIMIT) {
          msg.on('error', () => {})
          msg.resume()
        } else msg.destroy()
      },
    },
  }
}

/** Largest error body read (64 KiB). */
export const MAX_ERROR_BODY = 64 * 1024

/**
 * Reads at most `max` bytes of an error body as text (the rest is discarded). Best effort: a
 * connection that breaks partway gives what arrived before it.
 */
export async function cappedText(res: HttpResponse, max = MAX_ERROR_BODY): Promise<string> {
  const chunks: Uint8Array[] = []
  let n = 0
  try {
    for await (const c of res.body) {
      chunks.push(c)
      n += c.length
      if (n >= max) break
    }
  } catch {
    // what arrived is all there is
  }
  await res.body.cancel()
  return Buffer.concat(chunks).subarray(0, max).toString('utf8')
}

/**
 * A whole response body of at most `max` bytes. More (declared or sent) is a TOO_LARGE error;
 * a connection that breaks partway is a NETWORK_ERROR and an abort is ABORTED, each naming `what`.
 */
export async function readBody(res: HttpResponse, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? Number.NaN)
  if (declared > max) {
    await res.body.cancel()
    throw new RegistryError('TOO_LARGE', `${what}: ${declared} bytes, over the ${max}-byte limit`, res.status)
  }
  const chunks: Uint8Array[] = []
  let n = 0
  try {
    for await (const c of res.body) {
      n += c.length
      if (n > max) {
        await res.body.cancel()
        throw new RegistryError('TOO_LARGE', `${what}: over the ${max}-byte limit`, res.status)
      }
      chunks.push(c)
    }
  } catch (e) {
    throw bodyError(e, what)
  }
  return Buffer.concat(chunks)
}

/** The coded error for a failure while a response body streams in. */
export function bodyError(e: unknown, what: string): OcikitError {
  if (e instanceof OcikitError) return e
  if ((e as Error)?.name === 'AbortError') return new AbortedError(what, { cause: e })
  return new RegistryError('NETWORK_ERROR', `${what}: the connection broke while the answer was read (${(e as Error)?.message})`, 0, [], { cause: e })
}

/**
 * A URL a server handed us (a redirect, an upload location, a pagination link, a token realm),
 * resolved against `base`. Anything but an http(s) URL is a REGISTRY_ERROR naming `what`.
 */
export function serverUrl(value: string, base: string | URL | undefined, what: string): URL {
  let url: URL | undefined
  try {
    url = new URL(value, base)
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new RegistryError('REGISTRY_ERROR', `${what} is not an http(s) URL: '${value.slice(0, 200)}'`, 0)
  }
  return url
}

const clients = new Map<string, HttpSend>()

/**
 * The request function for a CA setting; one per setting per process, so that every store
 * that talks to the same registry shares its connections.
 */
export function httpClient(o: HttpClientOptions = {}): HttpSend {
  const key = `${o.caFile ?? ''}|${o.stallTimeoutMs ?? ''}`
  let send = clients.get(key)
  if (!send) {
    send = createHttpClient(o)
    clients.set(key, send)
  }
  return send
}

/** A new request function with its own connection pools. */
export function createHttpClient(o: HttpClientOptions = {}): HttpSend {
  let ca: Buffer | undefined
  if (o.caFile !== undefined) {
    try {
      ca = readFileSync(o.caFile)
    } catch (e) {
      throw new OcikitError('INVALID_ARGUMENT', `cannot read --ca-file ${o.caFile}: ${(e as Error).message}`, { cause: e })
    }
  }
  // Loaded on first use: `node:https` brings TLS with it, and every CLI run would pay for it.
  // Not through import(): the ESM view of node:http reads every export, and one of them loads
  // Node's bundled undici (another 15 ms).
  let plain: { mod: typeof http; agent: http.Agent } | undefined
  let secure: { mod: typeof https; agent: https.Agent } | undefined
  const stallMs = o.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS
  return async (url, init = {}) => {
    let mod: typeof http | typeof https
    let agent: http.Agent
    if (url.protocol === 'https:') {
      if (!secure) {
        const m = process.getBuiltinModule('node:https')
        secure = { mod: m, agent: new m.Agent({ keepAlive: true, maxSockets: 32, ...(ca ? { ca } : {}) }) }
      }
      ;({ mod, agent } = secure)
    } else {
      if (!plain) {
        const m = process.getBuiltinModule('node:http')
        plain = { mod: m, agent: new m.Agent({ keepAlive: true, maxSockets: 32 }) }
      }
      ;({ mod, agent } = plain)
    }
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = mod.request(url, {
        method: init.method ?? 'GET',
        headers: init.headers,
        agent,
        signal: init.signal,
      })
      let answered = false
      const watch = watchdog(req, stallMs, init.deadlineMs)
      req.on('error', (e) => {
        watch.stop()
        if (!answered) reject(e)
      })
      req.on('response', (msg) => {
        answered = true
        watch.answer(msg)
        resolve(responseOf(msg, url, init.method ?? 'GET'))
      })
      const body = init.body
      if (body instanceof Readable) {
        body.on('error', (e) => req.destroy(e))
        // A server may answer (say 401) before reading the whole body: stop sending then.
        req.on('close', () => body.destroy())
        sendBody(body, req)
      } else req.end(body)
    })
  }
}

/**
 * Ends a request that stalls or outlives its deadline (see {@link HttpClientOptions.stallTimeoutMs}
 * and {@link HttpRequestInit.deadlineMs}) by destroying it with an error that says which; the
 * answer's body then fails with that error too. Stops when the answer has been read or the
 * request fails. Its timers never keep the process alive.
 */
function watchdog(req: ClientRequest, stallMs: number, deadlineMs: number | undefined) {
  let msg: http.IncomingMessage | undefined
  const moved = () => (req.socket ? req.socket.bytesRead + req.socket.bytesWritten : 0)
  // Waiting on the network, not on our own side: connecting or sending into a full socket, the
  // answer not there yet once everything was sent, or an answer whose reader wants more.
  const waiting = () => {
    if (!msg) return !req.socket || req.writableNeedDrain || req.writableEnded
    // All of it arrived, or a full buffer: the reader is the slow one.
    return !msg.complete && msg.readableLength < msg.readableHighWaterMark
  }
  // Once there is an answer, its body carries the error to whoever reads it.
  const fail = (e: Error) => (msg ?? req).destroy(e)
  // A stall is a whole window spent waiting on the network with less than STALL_MIN_BYTES moved.
  // The state is sampled several times a window: any sample where our side is the slow one (a
  // reader not reading, a body not producing), or a tick that comes late (our own event loop was
  // busy), starts the window again, so a reader that resumes just before a tick is not blamed.
  const tickMs = Math.max(1, Math.floor(stallMs / STALL_SAMPLES))
  let windowStart = Date.now()
  let windowBytes = 0
  let lastTick = windowStart
  const restart = (now: number) => {
    windowStart = now
    windowBytes = moved()
  }
  const stall = setInterval(() => {
    const now = Date.now()
    const late = now - lastTick > 2 * tickMs
    lastTick = now
    if (late || !waiting() || moved() - windowBytes >= STALL_MIN_BYTES) restart(now)
    else if (now - windowStart >= stallMs) fail(new Error(`stalled: less than 1 KiB moved in ${stallMs / 1000} s`))
  }, tickMs)
  stall.unref()
  const deadline = deadlineMs === undefined ? undefined : setTimeout(() => fail(new Error(`no complete answer within ${deadlineMs / 1000} s`)), deadlineMs)
  deadline?.unref()
  const stop = () => {
    clearInterval(stall)
    if (deadline) clearTimeout(deadline)
  }
  return {
    stop,
    answer(m: http.IncomingMessage) {
      msg = m
      restart(Date.now())
      m.once('end', stop)
      m.once('close', stop)
    },
  }
}

/**
 * Writes a stream into a request, as `pipe()` would, and hands each chunk back to its buffer
 * pool (`releaseChunk`) once the socket has taken it, so that a file read for an upload reuses
 * a few buffers. A failure on either side ends it: the handlers set by the caller destroy the
 * other side.
 */
function sendBody(body: Readable, req: ClientRequest): void {
  body.on('data', (c: Buffer) => {
    if (!req.write(c, () => releaseChunk(c))) body.pause()
  })
  req.on('drain', () => body.resume())
  body.on('end', () => req.end())
  body.resume()
}
