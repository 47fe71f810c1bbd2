/**
 * Registry credentials from the files and helpers docker and podman use:
 * `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`, `$DOCKER_CONFIG/config.json`
 * (default `~/.docker/config.json`), with `credHelpers` and `credsStore` run as
 * `docker-credential-NAME get`. Secrets never appear in errors or notices.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { isErrno, OcikitError } from '../errors.ts'

/** Credentials for one registry: a user and password, or an identity (refresh) token. */
export interface Credentials {
  username?: string | undefined
  password?: string | undefined
  /** An OAuth2 refresh token, as `docker login` stores for some registries. */
  identityToken?: string | undefined
}

/** Finds credentials for a registry host; undefined for anonymous access. */
export type CredentialProvider = (registry: string) => Promise<Credentials | undefined>

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>
  credHelpers?: Record<string, string>
  credsStore?: string
}

/** The path of docker's config file: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
export function dockerConfigPath(): string {
  return path.join(process.env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker'), 'config.json')
}

/** Auth files in the order they are searched. */
export function authFilePaths(): string[] {
  const out: string[] = []
  if (process.env.REGISTRY_AUTH_FILE) out.push(process.env.REGISTRY_AUTH_FILE)
  if (process.env.XDG_RUNTIME_DIR) out.push(path.join(process.env.XDG_RUNTIME_DIR, 'containers', 'auth.json'))
  out.push(dockerConfigPath())
  return out
}

async function readAuthFile(file: string): Promise<AuthFile | undefined> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined
    throw e
  }
  try {
    return JSON.parse(text) as AuthFile
  } catch (e) {
    // The parser's own message quotes the text around the fault, which may be part of an `auth`
    // secret: only the place is reported, and the parser's error is not attached as the cause.
    throw new OcikitError('INVALID_ARGUMENT', `${file} is not valid JSON${jsonErrorPlace(e, text)}; fix or remove it`)
  }
}

/** ` (line L, column C)` of a JSON.parse error, from the position its message gives; empty when it gives none. */
function jsonErrorPlace(e: unknown, text: string): string {
  const m = /at position (\d+)/.exec((e as Error)?.message ?? '')
  if (!m) return ''
  const before = text.slice(0, Number(m[1]))
  const line = before.split('\n').length
  return ` (line ${line}, column ${before.length - before.lastIndexOf('\n')})`
}

/** The keys an auth file may use for a host: `host`, `https://host`, and docker.io's historical key. */
function keysFor(registry: string): string[] {
  const keys = [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`]
  if (registry === 'docker.io') keys.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io')
  return keys
}

function decodeAuth(entry: NonNullable<AuthFile['auths']>[string], file: string, registry: string): Credentials | undefined {
  if (entry.identitytoken) return { identityToken: entry.identitytoken, username: entry.username }
  if (entry.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8')
    const colon = text.indexOf(':')
    if (colon < 0) throw new OcikitError('INVALID_ARGUMENT', `${file}: the auth entry for ${registry} is not base64 of user:password`)
    return { username: text.slice(0, colon), password: text.slice(colon + 1) }
  }
  if (entry.username !== undefined) return { username: entry.username, password: entry.password }
  return undefined
}

/** Runs `docker-credential-NAME get` for a host. Undefined when the helper has nothing; throws when it is missing. */
export function runCredentialHelper(helper: string, registry: string): Promise<Credentials | undefined> {
  return new Promise((resolve, reject) => {
    // node:child_process is loaded only when a helper is configured (it costs every start some 10 ms).
    const { execFile } = process.getBuiltinModule('node:child_process')
    const child = execFile(`docker-credential-${helper}`, ['get'], { timeout: 30_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(new OcikitError('NOT_SUPPORTED', `credential helper docker-credential-${helper} is not installed`))
          return
        }
        // Helpers exit non-zero with "credentials not found" when they hold nothing for the host.
        resolve(undefined)
        return
      }
      try {
        const r = JSON.parse(stdout) as { Username?: string; Secret?: string }
        if (!r.Secret) return resolve(undefined)
        resolve(r.Username === '<token>' ? { identityToken: r.Secret } : { username: r.Username, password: r.Secret })
      } catch {
        reject(new OcikitError('INVALID_ARGUMENT', `credential helper docker-credential-${helper} printed something other than JSON`))
      }
    })
    child.stdin?.end(registry)
  })
}

/**
 * The default credential provider: the first auth file with an entry (or helper) for the host.
 * A configured helper that is not installed falls back to anonymous access with a notice.
 */
export function defaultCredentials(onNotice?: (m: string) => void): CredentialProvider {
  return async (registry) => {
    for (const file of authFilePaths()) {
      const f = await readAuthFile(file)
      if (!f) continue
      const helper = f.credHelpers?.[registry]
      if (helper) {
        try {
          const c = await runCredentialHelper(helper, registry)
          if (c) return c
        } catch (e) {
          onNotice?.(`${(e as Error).message}; using anonymous access to ${registry}`)
          return undefined
        }
      }
      for (const key of keysFor(registry)) {
        const entry = f.auths?.[key]
        if (entry) {
          const c = decodeAuth(entry, file, registry)
          if (c) return c
        }
      }
      if (f.credsStore && f.auths && keysFor(registry).some((k) => k in (f.auths ?? {}))) {
        try {
          const c = await runCredentialHelper(f.credsStore, registry)
          if (c) return c
        } catch (e) {
          onNotice?.(`${(e as Error).message}; using anonymous access to ${registry}`)
          return undefined
        }
      }
    }
    return undefined
  }
}

/** Stores credentials for a host in docker's config file (replaced atomically, mode 0600). */
export async function saveCredentials(registry: string, c: { username: string; password: string }, file = dockerConfigPath()): Promise<void> {
  await updateAuthFile(file, (f) => {
    f.auths = { ...(f.auths ?? {}), [registry]: { auth: Buffer.from(`${c.username}:${c.password}`).toString('base64') } }
  })
}

/** Removes a host's credentials from docker's config file; returns false when it had none. */
export async function removeCredentials(registry: string, file = dockerConfigPath()): Promise<boolean> {
  let removed = false
  await updateAuthFile(file, (f) => {
    for (const k of keysFor(registry)) {
      if (f.auths && k in f.auths) {
        delete f.auths[k]
        removed = true
      }
    }
  })
  return removed
}

async function updateAuthFile(file: string, change: (f: AuthFile & Record<string, unknown>) => void): Promise<void> {
  const f = ((await readAuthFile(file)) ?? {}) as AuthFile & Record<string, unknown>
  change(f)
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`
  try {
    await fs.writeFile(tmp, `${JSON.stringify(f, null, '\t')}\n`, { mode: 0o600, flush: true })
    await fs.rename(tmp, file)
  } finally {
    await fs.rm(tmp, { force: true })
  }
}
