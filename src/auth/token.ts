/**
 * Bearer tokens for the distribution token flow: GET the realm with Basic credentials (or
 * anonymously), or POST the OAuth2 form with a refresh token; cached per registry, credentials,
 * realm, service and scope until shortly before they expire, so that a token fetched for one
 * registry (or one user) is never handed to another.
 *
 * What goes where (docs/registries.md): Basic credentials and refresh tokens go to the realm the
 * registry's own challenge names, and to redirects of it on the same origin only; never over
 * plain HTTP when the registry itself was reached over HTTPS, unless the realm's host is marked
 * insecure; a redirect of a refresh-token POST to another origin is not followed.
 */
import { OcikitError, RegistryError } from '../errors.ts'
import { type HttpRequestInit, type HttpResponse, type HttpSend, httpClient, readBody, serverUrl } from '../http/http.ts'
import type { Credentials } from './credentials.ts'

/** One token request: what {@link TokenCache.fetch} needs to know. */
export interface TokenRequest {
  /** The cache key; it must name the registry and the credentials (see `RegistryTransport`). */
  key: string
  /** The bearer challenge's parameters (`realm`, `service`, `scope`). */
  params: Record<string, string>
  scopes: string[]
  creds: Credentials | undefined
  /** The registry host, for messages. */
  registry: string
  /**
   * Whether credentials may go to a plain-HTTP realm on `host`: true when the registry itself is
   * spoken to over plain HTTP, or the host is marked insecure.
   */
  plainRealmAllowed: (host: string) => boolean
  signal?: AbortSignal | undefined
}

interface Cached {
  token: string
  expires: number
}

const MAX_TOKEN_RESPONSE = 1 << 20
/** A token request, answer included, must be over within this (then it fails as a network error). */
const TOKEN_DEADLINE_MS = 60_000

/** A cache of bearer tokens; one per process is enough. */
export class TokenCache {
  readonly #tokens = new Map<string, Cached>()
  readonly #http: HttpSend
  constructor(send: HttpSend = httpClient()) {
    this.#http = send
  }

  /**
   * Sends a request to the token service, following its redirects. Basic credentials stay with
   * the realm's origin; a body (the refresh-token form) is never carried to another origin: such
   * a redirect is an UNAUTHORIZED error instead.
   */
  async #send(start: URL, init: HttpRequestInit, registry: string): Promise<HttpResponse> {
    let url = start
    for (let hop = 0; ; hop++) {
      const res = await this.#http(url, { ...init, deadlineMs: TOKEN_DEADLINE_MS })
      const location = res.headers.get('location')
      if (!location || ![301, 302, 303, 307, 308].includes(res.status) || hop >= 5) return res
      await res.body.cancel()
      const next = serverUrl(location, url, `the token service's redirect`)
      const sameOrigin = next.origin === url.origin
      if (!sameOrigin && init.body !== undefined) {
        throw new RegistryError(
          'UNAUTHORIZED',
          `${registry}: the token service at ${url.origin} redirected a request carrying a refresh token to ${next.origin}; not followed, so the token stays with its service`,
          res.status,
        )
      }
      const headers = sameOrigin ? init.headers : undefined
      init = res.status === 307 || res.status === 308 ? { ...init, headers } : { method: 'GET', headers, signal: init.signal }
      url = next
    }
  }

  /** A cached token for a key, if still valid. */
  get(key: string): string | undefined {
    const c = this.#tokens.get(key)
    if (c && c.expires > Date.now()) return c.token
    this.#tokens.delete(key)
    return undefined
  }

  /** Forgets a token (after a 401 with it). */
  drop(key: string): void {
    this.#tokens.delete(key)
  }

  /** Obtains a token for `scopes` from a bearer challenge, caching it under `key` (see {@link TokenRequest}). */
  async fetch(r: TokenRequest): Promise<string> {
    const { key, params, scopes, creds, registry, signal } = r
    if (!params.realm) throw new RegistryError('UNAUTHORIZED', `${registry}: bearer challenge without a realm`, 401)
    const realm = serverUrl(params.realm, undefined, `${registry}: the token realm of its bearer challenge`)
    const secret = creds?.identityToken !== undefined || creds?.username !== undefined
    if (secret && realm.protocol === 'http:' && !r.plainRealmAllowed(realm.host)) {
      throw new RegistryError(
        'INSECURE_TRANSPORT',
        `${registry}: the registry was reached over HTTPS, but its token realm ${realm.origin}${realm.pathname} is plain HTTP; the credentials are not sent there in clear text (pass --insecure ${realm.host} to allow it)`,
        401,
      )
    }
    let res: HttpResponse
    try {
      if (creds?.identityToken) {
        const form = new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: creds.identityToken,
          client_id: 'ocikit',
          service: params.service ?? '',
        })
        if (scopes.length) form.set('scope', scopes.join(' '))
        res = await this.#send(
          realm,
          {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: form.toString(),
            signal,
          },
          registry,
        )
      } else {
        const url = new URL(realm)
        if (params.service) url.searchParams.set('service', params.service)
        for (const s of scopes) url.searchParams.append('scope', s)
        const headers: Record<string, string> = {}
        if (creds?.username !== undefined) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`
        res = await this.#send(url, { headers, signal }, registry)
      }
    } catch (cause) {
      if (cause instanceof OcikitError) throw cause
      throw new RegistryError('NETWORK_ERROR', `${registry}: cannot reach the token service at ${realm.host}: ${(cause as Error).message}`, 0, [], {
        cause,
      })
    }
    if (res.status < 200 || res.status > 299) await res.body.cancel() // its text is not shown, so it is not read
    if (res.status === 401 || res.status === 403) {
      const who = creds?.username ? ` as '${creds.username}'` : ' anonymously'
      throw new RegistryError(
        'UNAUTHORIZED',
        `${registry}: the token service refused access${who} (status ${res.status}); check the credentials (ocikit login ${registry})`,
        res.status,
      )
    }
    if (res.status < 200 || res.status > 299)
      throw new RegistryError('REGISTRY_ERROR', `${registry}: the token service answered status ${res.status}`, res.status)
    const text = (await readBody(res, MAX_TOKEN_RESPONSE, `${registry}: the token service's answer`)).toString('utf8')
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown }
    try {
      body = JSON.parse(text)
    } catch {
      throw new OcikitError('REGISTRY_ERROR', `${registry}: the token service answered with something other than JSON`)
    }
    const token = typeof body === 'object' && body !== null ? (body.token ?? body.access_token) : undefined
    if (typeof token !== 'string' || !token) throw new OcikitError('REGISTRY_ERROR', `${registry}: the token service answered without a token`)
    const lifetime = Math.max(60, typeof body.expires_in === 'number' && Number.isFinite(body.expires_in) ? body.expires_in : 60) * 1000
    this.#tokens.set(key, { token, expires: Date.now() + lifetime - 10_000 })
    return token
  }
}
