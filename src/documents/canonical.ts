/**
 * Canonical JSON: object keys sorted by code point, no insignificant whitespace,
 * `undefined` members dropped. The same document always gives the same bytes and
 * so the same digest, whatever order its members were added in.
 */

function sortValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : sortValue(x)))
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k]
      if (x !== undefined) out[k] = sortValue(x)
    }
    return out
  }
  if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError(`canonical JSON: cannot encode ${v}`)
  return v
}

/** The canonical JSON text of a value. */
export function canonicalJsonString(value: unknown): string {
  return JSON.stringify(sortValue(value))
}

/** The canonical JSON bytes (UTF-8) of a value. */
export function canonicalJson(value: unknown): Uint8Array {
  return Buffer.from(canonicalJsonString(value), 'utf8')
}
