/**
 * Validation of documents read from outside: size caps, JSON parsing, schema checks
 * and media type detection. Errors name the document, the field and the value.
 */
import * as v from 'valibot'
import { InvalidDocumentError, NotSupportedError, OcikitError } from '../errors.ts'
import { isIndexType, isManifestType, MediaType } from './media-types.ts'
import { type ImageConfig, type Index, imageConfigSchema, indexSchema, type Manifest, manifestSchema } from './schemas.ts'

/** How deep indexes may nest inside indexes (the top one is depth 0); deeper is INVALID_MANIFEST everywhere. */
export const MAX_INDEX_DEPTH = 8

/** Largest manifest, index or config ocikit accepts (4 MiB). */
export const MAX_DOCUMENT_SIZE = 4 * 1024 * 1024

type DocCode = 'INVALID_MANIFEST' | 'INVALID_CONFIG' | 'INVALID_LAYOUT'

/** Parses JSON bytes with the size cap; throws TOO_LARGE or the given code. `source` names where the bytes came from. */
export function parseJsonBytes(bytes: Uint8Array, source: string, code: DocCode, max = MAX_DOCUMENT_SIZE): unknown {
  if (bytes.length > max) {
    throw new OcikitError('TOO_LARGE', `${source}: document is ${bytes.length} bytes, over the ${max}-byte limit`)
  }
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch (cause) {
    throw new InvalidDocumentError(code, source, ['not UTF-8 text'], { cause })
  }
  try {
    return JSON.parse(text)
  } catch (cause) {
    const head = text.slice(0, 40).replace(/\s+/g, ' ')
    throw new InvalidDocumentError(code, source, [`not JSON (${(cause as Error).message}); starts with '${head}'`], { cause })
  }
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'missing'
  const s = JSON.stringify(v)
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s
}

function formatPath(root: string, path: readonly PropertyKey[]): string {
  let out = root
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : /^[A-Za-z_][\w]*$/.test(String(k)) ? `.${String(k)}` : `[${JSON.stringify(String(k))}]`
  return out
}

/** Checks `value` against a schema; throws InvalidDocumentError listing each problem by field path. */
export function checkSchema<T>(schema: v.GenericSchema<unknown, T>, value: unknown, root: string, source: string, code: DocCode): T {
  const r = v.safeParse(schema, value)
  if (r.success) return r.output
  const problems = r.issues.map((iss) => {
    const at = formatPath(
      root,
      (iss.path ?? []).map((p) => p.key as PropertyKey),
    )
    if (iss.kind !== 'schema') return `${at}: ${iss.message}`
    // A wrong type or value: valibot names object and array types capitalised.
    const expected = String(iss.expected ?? 'a value').replace(/^(Object|Array)$/, (t) => t.toLowerCase())
    return iss.input === undefined ? `${at}: required field is missing` : `${at}: expected ${expected}, got ${describeValue(iss.input)}`
  })
  throw new InvalidDocumentError(code, source, problems)
}

/** What kind of document a manifest-like blob is. */
export type DocumentKind = 'image' | 'index'

/**
 * Decides the media type of a manifest-like document: its own `mediaType`, else the
 * given content type or descriptor media type, else its shape (`manifests` → index,
 * `config` and `layers` → image manifest).
 */
export function detectManifestType(doc: unknown, source: string, hint?: string): string {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new InvalidDocumentError('INVALID_MANIFEST', source, [`expected a JSON object, got ${describeValue(doc)}`])
  }
  const o = doc as Record<string, unknown>
  if (o.schemaVersion === 1 || hint === MediaType.dockerManifestV1 || hint === MediaType.dockerManifestV1Signed) {
    throw new NotSupportedError(`${source}: Docker image manifest schema 1 is not supported (deprecated since 2017); convert it with a newer registry or tool`)
  }
  const own = typeof o.mediaType === 'string' ? o.mediaType : undefined
  if (own !== undefined && (isManifestType(own) || isIndexType(own))) {
    if (hint !== undefined && (isManifestType(hint) || isIndexType(hint)) && hint !== own) {
      throw new InvalidDocumentError('INVALID_MANIFEST', source, [`mediaType: document says '${own}' but it was served or referenced as '${hint}'`])
    }
    return own
  }
  if (own !== undefined) {
    throw new InvalidDocumentError('INVALID_MANIFEST', source, [`mediaType: not a manifest or index type: '${own}'`])
  }
  if (hint !== undefined && (isManifestType(hint) || isIndexType(hint))) return hint
  if (Array.isArray(o.manifests)) return MediaType.ociIndex
  if ('config' in o && Array.isArray(o.layers)) return MediaType.ociManifest
  throw new InvalidDocumentError('INVALID_MANIFEST', source, ['neither an image manifest (config, layers) nor an index (manifests)'])
}

/** A parsed and validated manifest-like document. */
export type ParsedManifest = { kind: 'image'; mediaType: string; manifest: Manifest } | { kind: 'index'; mediaType: string; index: Index }

/**
 * Parses and validates a manifest or index. `hint` is the Content-Type or the media type of
 * the descriptor that named it, used when the document has no `mediaType` of its own.
 */
export function parseManifestOrIndex(bytes: Uint8Array, source: string, hint?: string): ParsedManifest {
  const doc = parseJsonBytes(bytes, source, 'INVALID_MANIFEST')
  const mediaType = detectManifestType(doc, source, hint)
  if (isIndexType(mediaType)) {
    return { kind: 'index', mediaType, index: checkSchema(indexSchema, doc, 'index', source, 'INVALID_MANIFEST') }
  }
  return { kind: 'image', mediaType, manifest: checkSchema(manifestSchema, doc, 'manifest', source, 'INVALID_MANIFEST') }
}

/** Parses and validates an image manifest; an index is an INVALID_MANIFEST error here. */
export function parseManifest(bytes: Uint8Array, source: string, hint?: string): { mediaType: string; manifest: Manifest } {
  const p = parseManifestOrIndex(bytes, source, hint)
  if (p.kind !== 'image') throw new InvalidDocumentError('INVALID_MANIFEST', source, [`expected an image manifest, got an index (${p.mediaType})`])
  return p
}

/** Parses and validates an index; an image manifest is an INVALID_MANIFEST error here. */
export function parseIndex(bytes: Uint8Array, source: string, hint?: string): { mediaType: string; index: Index } {
  const p = parseManifestOrIndex(bytes, source, hint)
  if (p.kind !== 'index') throw new InvalidDocumentError('INVALID_MANIFEST', source, [`expected an index, got an image manifest (${p.mediaType})`])
  return p
}

/** Parses and validates an image config. */
export function parseImageConfig(bytes: Uint8Array, source: string): ImageConfig {
  const doc = parseJsonBytes(bytes, source, 'INVALID_CONFIG')
  return checkSchema(imageConfigSchema, doc, 'config', source, 'INVALID_CONFIG')
}

/** Checks that a manifest and its config agree: one diff ID per layer. */
export function checkManifestAgainstConfig(manifest: Manifest, config: ImageConfig, source: string): void {
  const n = config.rootfs.diff_ids.length
  if (n !== manifest.layers.length) {
    throw new InvalidDocumentError('INVALID_CONFIG', source, [`config.rootfs.diff_ids: has ${n} entries but the manifest has ${manifest.layers.length} layers`])
  }
}
