/**
 * Error classes. Every error ocikit throws on purpose is an {@link OcikitError}
 * with a stable `code`; callers branch on `code`, never on the message text.
 */

/** Every stable error code ocikit uses. */
export type ErrorCode =
  | 'ABORTED'
  | 'AMBIGUOUS_REFERENCE'
  | 'BLOB_UNKNOWN'
  | 'DECRYPTION_FAILED'
  | 'DIGEST_MISMATCH'
  | 'INVALID_BFC'
  | 'INVALID_CONFIG'
  | 'INVALID_DIGEST'
  | 'INVALID_LAYER'
  | 'INVALID_LAYOUT'
  | 'INVALID_MANIFEST'
  | 'INVALID_NAME'
  | 'INVALID_ARGUMENT'
  | 'INSECURE_TRANSPORT'
  | 'KEY_REQUIRED'
  | 'LOCKFILE_MISMATCH'
  | 'NATIVE_CODE'
  | 'MANIFEST_UNKNOWN'
  | 'NETWORK_ERROR'
  | 'NOT_SUPPORTED'
  | 'PLATFORM_NOT_FOUND'
  | 'REGISTRY_ERROR'
  | 'SIZE_MISMATCH'
  | 'TOO_LARGE'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSAFE_PATH'
  | 'UNSUPPORTED_DIGEST_ALGORITHM'
  | 'UNSUPPORTED_MEDIA_TYPE'

/** Options shared by every error constructor. */
export interface OcikitErrorOptions {
  cause?: unknown
}

/** The base of every error ocikit throws on purpose. `code` is stable across versions. */
export class OcikitError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options: OcikitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
  }
}

/** Bytes did not hash to the digest they were expected to have. */
export class DigestMismatchError extends OcikitError {
  readonly expected: string
  readonly actual: string
  constructor(what: string, expected: string, actual: string, options?: OcikitErrorOptions) {
    super('DIGEST_MISMATCH', `${what}: digest mismatch: expected ${expected}, got ${actual}`, options)
    this.expected = expected
    this.actual = actual
  }
}

/** Bytes did not have the size they were expected to have (truncated or too long). */
export class SizeMismatchError extends OcikitError {
  readonly expected: number
  readonly actual: number
  constructor(what: string, expected: number, actual: number, options?: OcikitErrorOptions) {
    const how = actual < expected ? 'truncated' : 'too long'
    super('SIZE_MISMATCH', `${what}: ${how}: expected ${expected} bytes, got ${actual}`, options)
    this.expected = expected
    this.actual = actual
  }
}

/** A document (manifest, index, config, layout file) failed validation. */
export class InvalidDocumentError extends OcikitError {
  /** Each problem found, as "path: message". */
  readonly problems: readonly string[]
  constructor(code: 'INVALID_MANIFEST' | 'INVALID_CONFIG' | 'INVALID_LAYOUT', what: string, problems: readonly string[], options?: OcikitErrorOptions) {
    const shown = problems.slice(0, 5).join('; ')
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''
    super(code, `${what}: ${shown}${more}`, options)
    this.problems = problems
  }
}

/** One entry of a registry's JSON error body. */
export interface RegistryErrorDetail {
  code: string
  message?: string | undefined
  detail?: unknown
}

/** A registry answered with an error status. `errors` holds its JSON error entries, if it sent any. */
export class RegistryError extends OcikitError {
  readonly status: number
  readonly errors: readonly RegistryErrorDetail[]
  constructor(
    code: 'REGISTRY_ERROR' | 'UNAUTHORIZED' | 'DENIED' | 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN' | 'TOO_LARGE' | 'NETWORK_ERROR' | 'INSECURE_TRANSPORT',
    message: string,
    status: number,
    errors: readonly RegistryErrorDetail[] = [],
    options?: OcikitErrorOptions,
  ) {
    super(code, message, options)
    this.status = status
    this.errors = errors
  }
}

/** A thing that was asked for is not there (manifest, tag, blob). */
export class NotFoundError extends OcikitError {
  constructor(code: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN', message: string, options?: OcikitErrorOptions) {
    super(code, message, options)
  }
}

/** A capability that ocikit does not offer (yet), or a store that cannot do what was asked. */
export class NotSupportedError extends OcikitError {
  constructor(message: string, options?: OcikitErrorOptions) {
    super('NOT_SUPPORTED', message, options)
  }
}

/** No image in an index matches the requested platform. */
export class PlatformNotFoundError extends OcikitError {
  readonly requested: string
  readonly available: readonly string[]
  constructor(where: string, requested: string, available: readonly string[]) {
    const list = available.length > 0 ? available.join(', ') : 'none'
    super('PLATFORM_NOT_FOUND', `${where}: no image for platform ${requested}; available: ${list}`)
    this.requested = requested
    this.available = available
  }
}

/** A path inside an archive, a layer or a digest would escape its root. */
export class UnsafePathError extends OcikitError {
  readonly path: string
  constructor(path: string, reason: string, options?: OcikitErrorOptions) {
    super('UNSAFE_PATH', `unsafe path '${path}': ${reason}`, options)
    this.path = path
  }
}

/** Wraps an abort so that callers see a coded error with the abort reason as cause. */
export class AbortedError extends OcikitError {
  constructor(what: string, options?: OcikitErrorOptions) {
    super('ABORTED', `${what}: aborted`, options)
  }
}

/** True when `e` is an OcikitError with the given code. */
export function isOcikitError(e: unknown, code?: ErrorCode): e is OcikitError {
  return e instanceof OcikitError && (code === undefined || e.code === code)
}

/** True when `e` is a Node.js system error with the given errno code (ENOENT, EEXIST...). */
export function isErrno(e: unknown, code: string): e is NodeJS.ErrnoException {
  return typeof e === 'object' && e !== null && (e as NodeJS.ErrnoException).code === code
}
