/**
 * The verbs of the public API. Each takes an image name in the one naming scheme
 * (`oci:DIR:TAG`, registry references, …) and does one job; the CLI is a thin shell over these.
 */

import { removeCredentials, saveCredentials } from './auth/credentials.ts'
import { writeTo } from './copy.ts'
import type { Digest } from './digest.ts'
import type { Descriptor, Platform } from './documents/schemas.ts'
import { OcikitError } from './errors.ts'
import { currentPlatform, imageForPlatform, selectPlatform } from './image/platform.ts'
import type { Image, ImageOrIndex, IoOptions } from './image/types.ts'
import { isLayoutTag, parseName } from './name/parse.ts'
import { parseRegistryHost } from './name/reference.ts'
import type { BfcOptions } from './stores/bfc/store.ts'
import { storeFor } from './stores/open.ts'
import { RegistryClient } from './stores/registry/client.ts'
import { type RegistryOptions, RegistryTransport } from './stores/registry/transport.ts'
import type { FsckReport, GcOptions, GcReport, ListedEntry, WriteOptions as StoreWriteOptions } from './stores/types.ts'

export { type CopyOptions, copy } from './copy.ts'

/** Options of {@link read}. */
export interface ReadOptions extends IoOptions {
  /** When the name resolves to an index, return the image for this platform instead. */
  platform?: Platform | undefined
  /** How to reach registries (insecure hosts, credentials, retries). */
  registry?: RegistryOptions | undefined
  /** The key of encrypted `bfc:` files (see {@link BfcOptions}). */
  bfc?: BfcOptions | undefined
}

/**
 * A lazy view of the image or index a name refers to. With `platform`, always the image for it:
 * chosen from an index, or a single image only when it is for that platform (else
 * PLATFORM_NOT_FOUND).
 */
export async function read(name: string, o: ReadOptions = {}): Promise<ImageOrIndex> {
  const store = storeFor(parseName(name), o)
  const x = await store.read(o)
  return o.platform ? imageForPlatform(x, o.platform, store.name) : x
}

/**
 * The image a name refers to: from an index, the one for `platform` (default: this machine's); a
 * single image as it is, unless `platform` was given and it is for another (PLATFORM_NOT_FOUND).
 */
export async function readImage(name: string, o: ReadOptions = {}): Promise<Image> {
  const store = storeFor(parseName(name), o)
  const x = await store.read(o)
  if (x.kind === 'index') return selectPlatform(x, o.platform ?? currentPlatform(), store.name)
  return o.platform ? imageForPlatform(x, o.platform, store.name) : x
}

/** Options of {@link write}. */
export interface WriteOptions extends StoreWriteOptions {
  /** How to reach registries (insecure hosts, credentials, retries). */
  registry?: RegistryOptions | undefined
  /** The key of encrypted `bfc:` files, and whether new ones are encrypted or compressed. */
  bfc?: BfcOptions | undefined
}

/**
 * Writes an image or index to the store a name refers to, tagging it as the name says, through
 * the one write engine (`writeTo` in copy.ts). Returns its descriptor.
 */
export async function write(name: string, x: ImageOrIndex, o: WriteOptions = {}): Promise<Descriptor> {
  return writeTo(await storeFor(parseName(name), o).sink(), x, o)
}

/** The entries (tags and digests) of a store. */
export async function list(name: string, o: { bfc?: BfcOptions | undefined } = {}): Promise<ListedEntry[]> {
  return storeFor(parseName(name), o).list()
}

function registryClient(name: string, o: RegistryOptions): RegistryClient {
  const n = parseName(name)
  if (n.transport !== 'registry') throw new OcikitError('NOT_SUPPORTED', `${name}: not a registry name (HOST/REPO)`)
  return new RegistryClient(n.reference.registry, n.reference.repository, o)
}

/** Every tag of a registry repository (`HOST/REPO`), following pagination. */
export async function listTags(repository: string, o: { registry?: RegistryOptions; signal?: AbortSignal } = {}): Promise<string[]> {
  return registryClient(repository, o.registry ?? {}).tags(o)
}

/** Every repository of a registry (its catalog). `host` is `HOST[:PORT]` (see {@link parseRegistryHost}). */
export async function catalog(host: string, o: { registry?: RegistryOptions; signal?: AbortSignal } = {}): Promise<string[]> {
  return new RegistryClient(parseRegistryHost(host), '', o.registry ?? {}).catalog(o)
}

/**
 * Checks a user name and password (or token) against a registry (`GET /v2/` with them) and, once
 * it accepts them, saves them for the host in docker's config file (`file`, default
 * `$DOCKER_CONFIG/config.json`). `host` is `HOST[:PORT]`; a path, query or bad port is INVALID_NAME,
 * and nothing is requested or saved then. Returns the host as saved.
 */
export async function login(
  host: string,
  creds: { username: string; password: string },
  o: { registry?: RegistryOptions; signal?: AbortSignal; file?: string } = {},
): Promise<string> {
  const registry = parseRegistryHost(host)
  const t = new RegistryTransport(registry, { ...o.registry, credentials: async () => creds })
  const res = await t.request({ method: 'GET', path: '', ok: [200], signal: o.signal })
  await res.body.cancel()
  await saveCredentials(registry, creds, o.file)
  return registry
}

/** Removes a host's saved credentials from docker's config file; false when it had none. */
export async function logout(host: string, o: { file?: string } = {}): Promise<boolean> {
  return removeCredentials(parseRegistryHost(host), o.file)
}

/** Deletes the manifest a registry name refers to (by digest; a tag is resolved first). Returns the digest deleted. */
export async function deleteImage(name: string, o: { registry?: RegistryOptions; signal?: AbortSignal } = {}): Promise<Digest> {
  const n = parseName(name)
  if (n.transport !== 'registry')
    throw new OcikitError('NOT_SUPPORTED', `${name}: delete works on registry names; for a layout use 'ocikit untag' then 'ocikit gc'`)
  const c = registryClient(name, o.registry ?? {})
  const tag = n.reference.tag ?? 'latest'
  let digest = n.reference.digest ?? (await c.headManifest(tag, o))?.digest
  // A registry that answers HEAD without Docker-Content-Digest: the digest of the bytes it serves.
  if (digest === '') digest = (await c.manifest(tag, o)).digest
  if (!digest) throw new OcikitError('MANIFEST_UNKNOWN', `${name}: no such manifest`)
  await c.deleteManifest(digest, o)
  return digest
}

/** The manifests that refer to the image a registry name names (OCI referrers, with the tag-schema fallback). */
export async function referrers(name: string, o: { artifactType?: string; registry?: RegistryOptions; signal?: AbortSignal } = {}): Promise<Descriptor[]> {
  const n = parseName(name)
  if (n.transport !== 'registry') throw new OcikitError('NOT_SUPPORTED', `${name}: referrers are looked up in registries (HOST/REPO:TAG)`)
  const c = registryClient(name, o.registry ?? {})
  const digest = n.reference.digest ?? (await c.manifest(n.reference.tag ?? 'latest', o)).digest
  return c.referrers(digest, o)
}

/** Gives the image a name refers to another tag in the same store. */
export async function tag(name: string, newTag: string, o: { registry?: RegistryOptions; bfc?: BfcOptions | undefined } = {}): Promise<Descriptor> {
  const n = parseName(name)
  const valid = n.transport === 'registry' ? /^[\w][\w.-]{0,127}$/.test(newTag) : isLayoutTag(newTag)
  if (!valid) {
    const rule =
      n.transport === 'registry'
        ? "letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-'"
        : 'letters, digits and - . _ : @ + / between them'
    throw new OcikitError('INVALID_NAME', `invalid tag '${newTag}' (${rule})`)
  }
  return storeFor(n, o).tag(newTag)
}

/** Removes the tag a name carries; the blobs stay until gc. */
export async function untag(name: string, o: { bfc?: BfcOptions | undefined } = {}): Promise<Descriptor> {
  return storeFor(parseName(name), o).untag()
}

/** Checks a store: every reachable blob present and hashing to its name, every document valid. */
export async function fsck(name: string, o: { signal?: AbortSignal; bfc?: BfcOptions | undefined } = {}): Promise<FsckReport> {
  return storeFor(parseName(name), o).fsck(o)
}

/** Removes unreachable blobs from a store that keeps its own (an OCI layout `oci:DIR`; a BFC file `bfc:FILE`, rewritten without them). */
export async function gc(name: string, o: GcOptions & { bfc?: BfcOptions | undefined } = {}): Promise<GcReport> {
  return storeFor(parseName(name), o).gc(o)
}
