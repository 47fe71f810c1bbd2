/**
 * HTTP to one registry: scheme choice (plain HTTP only for loopback and hosts marked
 * insecure), authentication from challenges (Basic; Bearer tokens per scope, cached), retries
 * with exponential backoff and jitter on 408, 429, 5xx and connection errors (honouring
 * Retry-After), and redirects followed by hand so that `Authorization` never goes to another host.
 */

import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseChallenges } from '../../auth/challenge.ts'
import { type CredentialProvider, type Credentials, defaultCredentials } from '../../auth/credentials.ts'
import { TokenCache } from '../../auth/token.ts'
import { AbortedError, OcikitError, RegistryError, type RegistryErrorDetail } from '../../errors.ts'
import { cappedText, type HttpRequestBody, type HttpResponse, type HttpSend, httpClient, readBody, serverUrl } from '../../http/http.ts'

/** Options for talking to registries. */
export interface RegistryOptions {
  /** Hosts (`host[:port]`) reached over plain HTTP besides localhost, 127.0.0.1 and [::1]. */
  insecure?: readonly string[] | undefined
  /**
   * PEM file of CA certificates to trust for HTTPS (only these are trusted then).
   * Giving one means HTTPS for every host, loopback included.
   */
  caFile?: string | undefined
  /** Where credentials come from (default: docker and containers auth files, helpers). */
  credentials?: CredentialProvider | undefined
  /** Attempts per request on transient failures (default 5). */
  attempts?: number | undefined
  /**
   * A request that moves less than 1 KiB over this many ms while waiting on the network fails
   * and is retried (default 30 s; see `HttpClientOptions.stallTimeoutMs`). Ignored with `http`.
   */
  stallTimeoutMs?: number | undefined
  /**
   * A document request (a manifest, a token, a tag page, an upload's start or end, a HEAD) fails
   * and is retried when it is not over within this many ms (default 60 s). Blob transfers are
   * bounded by the stall timeout instead.
   */
  requestTimeoutMs?: number | undefined
  /** First backoff delay in ms (default 250; doubled each time, with jitter, at most 10 s). */
  backoffMs?: number | undefined
  /** Blobs transferred at once (default 4). */
  concurrency?: number | undefined
  /** Blobs larger than this are uploaded in chunks (default 64 MiB). */
  chunkSize?: number | undefined
  onNotice?: ((m: string) => void) | undefined
  /** Reported on each retry, for progress displays. */
  onRetry?: ((e: { url: string; attempt: number; reason: string; delayMs: number }) => void) | undefined
  /** How requests are sent (default: Node's http/https with keep-alive, trusting `caFile`). */
  http?: HttpSend | undefined
}

const MAX_REDIRECTS = 5

/** The default of {@link RegistryOptions.requestTimeoutMs}. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000

const tokenCaches = new WeakMap<HttpSend, TokenCache>()

/** True for hosts reached over plain HTTP by default. */
export function isLoopback(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]
  return name === 'localhost' || name === '127.0.0.1' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name ?? '')
}

/** Loopback, private, link-local and shared address ranges (IPv4 and IPv6), by Node's own BlockList. */
let privateRanges: import('node:net').BlockList | undefined
function ranges(): import('node:net').BlockList {
  if (!privateRanges) {
    // node:net is loaded only when a redirect is checked, not on every start.
    const b = new (process.getBuiltinModule('node:net').BlockList)()
    for (const [net, bits] of [
      ['0.0.0.0', 8],
      ['10.0.0.0', 8],
      ['100.64.0.0', 10],
      ['127.0.0.0', 8],
      ['169.254.0.0', 16],
      ['172.16.0.0', 12],
      ['192.168.0.0', 16],
    ] as const) {
      b.addSubnet(net, bits, 'ipv4')
    }
    // ::ffff:0:0/96: every IPv4-mapped address (URLs write them in hex, ::ffff:7f00:1), whatever it maps to.
    for (const [net, bits] of [
      ['::', 127],
      ['::ffff:0:0', 96],
      ['fc00::', 7],
      ['fe80::', 10],
    ] as const)
      b.addSubnet(net, bits, 'ipv6')
    privateRanges = b
  }
  return privateRanges
}

/**
 * Whether a host name (as in a URL, IPv6 in brackets) is `localhost` or an address literal in a
 * loopback, private, link-local or shared range (IPv4-mapped IPv6 too). Names that would resolve
 * to such an address are not resolved here.
 */
export function isPrivateHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)?.[1]
  const addr = mapped ?? h
  const v = process.getBuiltinModule('node:net').isIP(addr)
  return v !== 0 && ranges().check(addr, v === 6 ? 'ipv6' : 'ipv4')
}

/** What a request body can be. */
export type RequestBody = HttpRequestBody

/** A request: relative paths are under `/v2/`. `body` is a factory so that a retry can re-send it. */
export interface RegistryRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
  path: string
  headers?: Record<string, string> | undefined
  body?: (() => RequestBody | Promise<RequestBody>) | undefined
  /** The bearer token scope this request needs, e.g. `repository:app:pull,push` or `registry:catalog:*`. */
  scope?: string | undefined
  /** Statuses the caller handles itself (others become errors). */
  ok: readonly number[]
  /** Whether a failure may be retried by sending again (default: not for POST/PATCH). */
  retry?: boolean | undefined
  /**
   * A blob transfer, whose length has no bound: no total deadline, only the stall timeout.
   * Without it, the request must be over within `requestTimeoutMs`.
   */
  streaming?: boolean | undefined
  signal?: AbortSignal | undefined
}

/** The HTTP side of one registry. */
export class RegistryTransport {
  readonly registry: string
  readonly base: string
  readonly o: RegistryOptions
  /** The registry's own origin: the only one that is sent its credentials. */
  readonly #origin: string
  readonly #http: HttpSend
  readonly #tokens: TokenCache
  readonly #credentials: CredentialProvider
  #creds: Promise<Credentials | undefined> | undefined
  /** How this registry authenticates, once learned from a challenge. */
  #scheme: { kind: 'basic' } | { kind: 'bearer'; params: Record<string, string> } | undefined

  constructor(registry: string, o: RegistryOptions = {}) {
    this.registry = registry
    this.o = o
    const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry
    const plain = o.caFile === undefined && (isLoopback(host) || (o.insecure ?? []).includes(registry))
    this.base = `${plain ? 'http' : 'https'}://${host}`
    this.#origin = new URL(this.base).origin
    this.#http = o.http ?? httpClient({ caFile: o.caFile, stallTimeoutMs: o.stallTimeoutMs })
    let cache = tokenCaches.get(this.#http)
    if (!cache) {
      cache = new TokenCache(this.#http)
      tokenCaches.set(this.#http, cache)
    }
    this.#tokens = cache
    this.#credentials = o.credentials ?? defaultCredentials(o.onNotice)
  }

  #getCreds(): Promise<Credentials | undefined> {
    this.#creds ??= this.#credentials(this.registry)
    return this.#creds
  }

  #scopes(req: RegistryRequest, challenge?: Record<string, string>): string[] {
    const s = new Set<string>()
    for (const x of req.scope?.split(' ') ?? []) if (x) s.add(x)
    if (challenge?.scope) for (const x of challenge.scope.split(' ')) s.add(x)
    return [...s]
  }

  /**
   * The token cache key: this registry, these credentials (as a hash: the key holds no secret),
   * the realm, service and scopes. The cache is shared by every registry of a process, and a
   * registry may name another's realm in its challenge: keyed by realm alone, it would be handed
   * the other registry's token.
   */
  async #tokenKey(params: Record<string, string>, scopes: string[]): Promise<string> {
    const c = await this.#getCreds()
    const who = c
      ? createHash('sha256')
          .update(JSON.stringify([c.username, c.password, c.identityToken]))
          .digest('hex')
          .slice(0, 32)
      : '-'
    return `${this.registry}|${who}|${params.realm}|${params.service ?? ''}|${[...scopes].sort().join(' ')}`
  }

  /** A token for this registry from its challenge's realm, cached under `key`. */
  async #fetchToken(key: string, params: Record<string, string>, scopes: string[], signal: AbortSignal | undefined): Promise<string> {
    const plainRegistry = this.base.startsWith('http:')
    return this.#tokens.fetch({
      key,
      params,
      scopes,
      creds: await this.#getCreds(),
      registry: this.registry,
      plainRealmAllowed: (host) => plainRegistry || (this.o.insecure ?? []).includes(host),
      signal,
    })
  }

  async #authorization(req: RegistryRequest): Promise<string | undefined> {
    const scheme = this.#scheme
    if (!scheme) return undefined
    const creds = await this.#getCreds()
    if (scheme.kind === 'basic') {
      return creds?.username !== undefined ? `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}` : undefined
    }
    const scopes = this.#scopes(req)
    const key = await this.#tokenKey(scheme.params, scopes)
    const token = this.#tokens.get(key) ?? (await this.#fetchToken(key, scheme.params, scopes, req.signal))
    return `Bearer ${token}`
  }

  /** Learns the auth scheme from a 401; returns false when there is nothing new to try. */
  async #learn(res: HttpResponse, req: RegistryRequest): Promise<boolean> {
    const challenges = parseChallenges(res.headers.get('www-authenticate'))
    const bearer = challenges.find((c) => c.scheme === 'bearer')
    const basic = challenges.find((c) => c.scheme === 'basic')
    if (bearer) {
      const before = this.#scheme
      this.#scheme = { kind: 'bearer', params: bearer.params }
      const scopes = this.#scopes(req, bearer.params)
      const key = await this.#tokenKey(bearer.params, scopes)
      if (before?.kind === 'bearer' && this.#tokens.get(key)) {
        this.#tokens.drop(key) // the token we sent was refused; get one fresh token, once
        return true
      }
      await this.#fetchToken(key, bearer.params, scopes, req.signal)
      return true
    }
    if (basic) {
      const had = this.#scheme?.kind === 'basic'
      this.#scheme = { kind: 'basic' }
      return !had && (await this.#getCreds())?.username !== undefined
    }
    return false
  }

  /** Sends a request, authenticating, retrying and following redirects; returns a response whose status is in `req.ok`. */
  async request(request: RegistryRequest): Promise<HttpResponse> {
    let req = request
    const attempts = req.retry === false || (req.retry === undefined && (req.method === 'POST' || req.method === 'PATCH')) ? 1 : (this.o.attempts ?? 5)
    const url = new URL(/^https?:\/\//.test(req.path) ? req.path : `${this.base}/v2/${req.path.replace(/^\//, '')}`)
    let authRetried = false
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse
      let authorized = false
      try {
        ;({ res, authorized } = await this.#send(req, url))
      } catch (e) {
        if (req.signal?.aborted) throw new AbortedError(`${req.method} ${url}`, { cause: e })
        // Our own errors (a digest mismatch in an upload's source, say) are not the network's.
        if (e instanceof OcikitError && !(e instanceof RegistryError && e.code === 'NETWORK_ERROR')) throw e
        const unreachable = this.#unreachable(e, url)
        if (unreachable && attempt >= unreachable.attempts) throw new RegistryError('NETWORK_ERROR', unreachable.message, 0, [], { cause: e })
        if (attempt >= attempts) {
          throw new RegistryError(
            'NETWORK_ERROR',
            `${this.registry}: ${req.method} ${this.#where(url)} failed after ${attempt} attempt(s): ${(e as Error).message}`,
            0,
            [],
            { cause: e },
          )
        }
        await this.#backoff(url, attempt, (e as Error).message, undefined, req.signal)
        continue
      }
      if (res.status === 401 && new URL(res.url || this.base).origin !== this.#origin) {
        // A redirect target (a CDN) that asks for authentication: its challenge must never make
        // us send the registry's credentials to it, or to the realm it names.
        await res.body.cancel()
        throw new RegistryError(
          'UNAUTHORIZED',
          `${this.registry}: ${req.method} ${url.pathname} was redirected to ${new URL(res.url).origin}, which asks for authentication; the registry's credentials go only to the registry itself`,
          401,
        )
      }
      if (res.status === 401 && !authRetried) {
        await res.body.cancel()
        authRetried = true
        // A bearer challenge may ask for more scopes (a mount needs pull on the source repository).
        const wanted = parseChallenges(res.headers.get('www-authenticate')).find((c) => c.scheme === 'bearer')?.params.scope
        if (wanted) req = { ...req, scope: [...new Set([...(req.scope?.split(' ') ?? []), ...wanted.split(' ')])].join(' ') }
        // Sent before a parallel request learned how to authenticate: just send it again.
        const learnedMeanwhile = !authorized && this.#scheme !== undefined && (await this.#authorization(req)) !== undefined
        if (learnedMeanwhile || (await this.#learn(res, req))) {
          attempt--
          continue
        }
        throw await this.#request401(res, req)
      }
      if (req.ok.includes(res.status)) return res
      if (res.status === 401) {
        await res.body.cancel()
        throw await this.#request401(res, req)
      }
      const transient = res.status === 408 || res.status === 429 || res.status >= 500
      if (transient && attempt < attempts) {
        await res.body.cancel()
        await this.#backoff(url, attempt, `status ${res.status}`, res.headers.get('retry-after'), req.signal)
        continue
      }
      throw await this.errorFrom(res, req, attempt)
    }
  }

  /**
   * Sends a request (as {@link request}) and reads its whole body, at most `max` bytes. A
   * connection that breaks while the body streams in is retried like a failed request.
   */
  async requestBytes(req: RegistryRequest, max: number, what: string): Promise<{ res: HttpResponse; bytes: Buffer }> {
    const attempts = this.o.attempts ?? 5
    for (let attempt = 1; ; attempt++) {
      const res = await this.request(req)
      try {
        return { res, bytes: await readBody(res, max, what) }
      } catch (e) {
        if (!(e instanceof RegistryError && e.code === 'NETWORK_ERROR') || req.signal?.aborted) throw e
        if (attempt >= attempts) throw new RegistryError('NETWORK_ERROR', `${e.message}, after ${attempt} attempt(s)`, 0, [], { cause: e.cause })
        await this.#backoff(new URL(res.url || this.base), attempt, e.message, undefined, req.signal)
      }
    }
  }

  /**
   * For a failure that sending again cannot mend soon, what to say and how many attempts it is
   * worth: an unknown host or a certificate that is not trusted at once; a refused connection at
   * once on this machine (nothing listens there), after one retry elsewhere. Undefined for
   * failures that may pass (a reset, a stall, a timeout).
   */
  #unreachable(e: unknown, url: URL): { message: string; attempts: number } | undefined {
    const code = String((e as NodeJS.ErrnoException)?.code ?? '')
    const at = `${this.registry}: the registry is not reachable at ${url.origin}`
    if (code === 'ENOTFOUND' || code === 'EAI_NONAME') return { message: `${at}: unknown host ${url.hostname}`, attempts: 1 }
    if (code === 'ECONNREFUSED') {
      const where = isLoopback(url.host) ? 'is a registry running on that port?' : 'is the host and port right?'
      return { message: `${at}: connection refused (${where})`, attempts: isLoopback(url.host) ? 1 : 2 }
    }
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_SSL|ERR_TLS/.test(code)) {
      return {
        message: `${at}: TLS failed (${code}); trust its CA with --ca-file PEM, or reach it over plain HTTP with --insecure ${this.registry}`,
        attempts: 1,
      }
    }
    return undefined
  }

  /** A URL for messages: its path on the registry, or origin and path elsewhere (never the query: it may hold a signature). */
  #where(url: URL): string {
    return url.origin === this.#origin ? url.pathname : `${url.origin}${url.pathname}`
  }

  async #request401(res: HttpResponse, req: RegistryRequest): Promise<RegistryError> {
    const creds = await this.#getCreds()
    const who = creds?.username ? `as '${creds.username}'` : 'anonymously'
    return new RegistryError(
      'UNAUTHORIZED',
      `${this.registry}: ${req.method} ${new URL(res.url || this.base).pathname}: authentication ${who} was refused (status 401); check the credentials (ocikit login ${this.registry})`,
      401,
    )
  }

  async #send(req: RegistryRequest, start: URL): Promise<{ res: HttpResponse; authorized: boolean }> {
    let url = start
    let authorized = false
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': 'ocikit', ...req.headers }
      // Credentials go only to the registry's own origin, never to a redirect target elsewhere.
      if (url.origin === this.#origin) {
        const auth = await this.#authorization(req)
        if (auth) headers.authorization = auth
        authorized = auth !== undefined
      }
      const body = req.body ? await req.body() : undefined
      const deadlineMs = req.streaming ? undefined : (this.o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)
      const res = await this.#http(url, { method: req.method, headers, body, signal: req.signal, deadlineMs })
      const location = res.headers.get('location')
      if ([301, 302, 303, 307, 308].includes(res.status) && location && (req.method === 'GET' || req.method === 'HEAD')) {
        await res.body.cancel()
        if (hop >= MAX_REDIRECTS)
          throw new RegistryError('REGISTRY_ERROR', `${this.registry}: more than ${MAX_REDIRECTS} redirects for ${start.pathname}`, res.status)
        const next = serverUrl(location, url, `${this.registry}: the redirect for ${start.pathname}`)
        // A registry out on the network may not point ocikit at this machine or its network
        // (a request it could not make itself), unless the user named that host.
        if (isPrivateHost(next.hostname) && !isPrivateHost(new URL(this.base).hostname) && !(this.o.insecure ?? []).includes(next.host)) {
          throw new RegistryError(
            'REGISTRY_ERROR',
            `${this.registry}: ${req.method} ${start.pathname} was redirected to ${next.origin}, a loopback or private address; a registry elsewhere may not send ocikit into this network (--insecure ${next.host} allows it)`,
            res.status,
          )
        }
        url = next
        continue
      }
      return { res, authorized }
    }
  }

  async #backoff(url: URL, attempt: number, reason: string, retryAfter: string | null | undefined, signal?: AbortSignal): Promise<void> {
    const base = this.o.backoffMs ?? 250
    let delay = Math.min(10_000, base * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2)
    if (retryAfter) {
      const secs = Number(retryAfter)
      const at = Number.isFinite(secs) ? secs * 1000 : Date.parse(retryAfter) - Date.now()
      if (Number.isFinite(at) && at >= 0) delay = Math.min(at, 60_000)
    }
    this.o.onRetry?.({ url: url.pathname, attempt, reason, delayMs: Math.round(delay) })
    try {
      await sleep(delay, undefined, { signal })
    } catch (e) {
      throw new AbortedError(url.pathname, { cause: e })
    }
  }

  /** The error for an unexpected status, with the registry's JSON error entries when it sent any. */
  async errorFrom(res: HttpResponse, req: RegistryRequest, attempts = 1): Promise<RegistryError> {
    const text = req.method === 'HEAD' ? '' : await cappedText(res)
    let errors: RegistryErrorDetail[] = []
    let detail = ''
    const type = res.headers.get('content-type') ?? ''
    try {
      const j = JSON.parse(text) as { errors?: RegistryErrorDetail[] }
      if (Array.isArray(j.errors)) errors = j.errors.filter((e) => typeof e?.code === 'string')
      detail = errors.map((e) => `${e.code}${e.message ? `: ${e.message}` : ''}`).join('; ')
    } catch {
      if (/html/i.test(type) || /^\s*</.test(text)) detail = 'an HTML page instead of a JSON error (a proxy or the wrong host?)'
      else if (text.trim()) detail = text.trim().slice(0, 200)
    }
    const path = this.#where(new URL(res.url || this.base))
    const tries = attempts > 1 ? ` after ${attempts} attempts` : ''
    const msg = `${this.registry}: ${req.method} ${path}: status ${res.status}${tries}${detail ? `: ${detail}` : ''}`
    const codes = errors.map((e) => e.code)
    if (res.status === 404 || codes.includes('MANIFEST_UNKNOWN') || codes.includes('BLOB_UNKNOWN') || codes.includes('NAME_UNKNOWN')) {
      return new RegistryError(codes.includes('BLOB_UNKNOWN') || /\/blobs\//.test(path) ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN', msg, res.status, errors)
    }
    if (res.status === 401) return new RegistryError('UNAUTHORIZED', msg, res.status, errors)
    if (res.status === 403 || codes.includes('DENIED')) return new RegistryError('DENIED', msg, res.status, errors)
    return new RegistryError('REGISTRY_ERROR', msg, res.status, errors)
  }
}
