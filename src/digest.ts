/**
 * Content digests: parsing, formatting, hashing and verifying streams.
 *
 * Only `sha256` and `sha512` are accepted. A parsed digest has a lowercase hex
 * encoding of the exact length for its algorithm, so it can never name a path
 * outside `blobs/` (`sha256:../../x` is refused).
 */
import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { noteStreamed } from './collector.ts'
import { DigestMismatchError, OcikitError, SizeMismatchError } from './errors.ts'

/** A validated digest string such as `sha256:e3b0…`. Obtain one from {@link parseDigest}. */
export type Digest = string & { readonly __brand: 'Digest' }

/** The digest algorithms ocikit computes and verifies. */
export type DigestAlgorithm = 'sha256' | 'sha512'

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 }
// The grammar of image-spec descriptor.md: algorithm ":" encoded.
const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/

/** Why a string is not an acceptable digest, or undefined when it is one. */
export function digestProblem(value: string): { code: 'INVALID_DIGEST' | 'UNSUPPORTED_DIGEST_ALGORITHM'; message: string } | undefined {
  if (!GRAMMAR.test(value)) return { code: 'INVALID_DIGEST', message: `not a digest: '${value}'` }
  const [alg = '', hex = ''] = value.split(':')
  if (!(alg in HEX_LENGTH)) {
    return { code: 'UNSUPPORTED_DIGEST_ALGORITHM', message: `unsupported digest algorithm '${alg}' in '${value}' (only sha256 and sha512)` }
  }
  const want = HEX_LENGTH[alg as DigestAlgorithm]
  if (hex.length !== want || !/^[0-9a-f]+$/.test(hex)) {
    return { code: 'INVALID_DIGEST', message: `not a digest: '${value}' (${alg} needs ${want} lowercase hex digits)` }
  }
  return undefined
}

/** Parses and validates a digest; throws INVALID_DIGEST or UNSUPPORTED_DIGEST_ALGORITHM. */
export function parseDigest(value: string): Digest {
  const problem = digestProblem(value)
  if (problem) throw new OcikitError(problem.code, problem.message)
  return value as Digest
}

/** True when `value` is a valid sha256 or sha512 digest. */
export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && digestProblem(value) === undefined
}

/** The algorithm part of a digest. */
export function digestAlgorithm(d: Digest): DigestAlgorithm {
  return d.slice(0, d.indexOf(':')) as DigestAlgorithm
}

/** The hex part of a digest. */
export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1)
}

/** The digest of some bytes. */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest
}

/**
 * A pass-through stream that hashes and counts what flows through it.
 * After 'end' (or 'finish'), `digest` and `size` hold the result.
 */
export class DigestingStream extends Transform {
  readonly algorithm: DigestAlgorithm
  #hash: Hash
  #size = 0
  #digest: Digest | undefined
  constructor(algorithm: DigestAlgorithm = 'sha256') {
    super()
    this.algorithm = algorithm
    this.#hash = createHash(algorithm)
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk)
    this.#size += chunk.length
    noteStreamed(chunk.length)
    cb(null, chunk)
  }
  override _flush(cb: TransformCallback): void {
    this.#digest = `${this.algorithm}:${this.#hash.digest('hex')}` as Digest
    cb()
  }
  /** Bytes seen so far. */
  get size(): number {
    return this.#size
  }
  /** The digest; throws if the stream has not ended yet. */
  get digest(): Digest {
    if (!this.#digest) throw new Error('DigestingStream: digest read before the stream ended')
    return this.#digest
  }
}

/** What a verifying stream checks. `size` is optional; when given, going past it fails early. */
export interface Expected {
  digest: Digest
  size?: number | undefined
}

/**
 * A pass-through stream that fails with DIGEST_MISMATCH or SIZE_MISMATCH at its end
 * (or as soon as more bytes than `expected.size` arrive). `what` names the thing read
 * in the error message.
 */
export function verifyingStream(expected: Expected, what: string): Transform {
  const hash = createHash(digestAlgorithm(expected.digest))
  let size = 0
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length
      if (expected.size !== undefined && size > expected.size) {
        cb(new SizeMismatchError(what, expected.size, size))
        return
      }
      hash.update(chunk)
      cb(null, chunk)
    },
    flush(cb) {
      if (expected.size !== undefined && size !== expected.size) {
        cb(new SizeMismatchError(what, expected.size, size))
        return
      }
      const actual = `${digestAlgorithm(expected.digest)}:${hash.digest('hex')}`
      cb(actual === expected.digest ? null : new DigestMismatchError(what, expected.digest, actual))
    },
  })
  verifying.set(stream, { ...expected })
  return stream
}

const verifying = new WeakMap<object, Expected>()

/**
 * What a stream made by {@link verifyingStream} checks, or undefined for any other stream.
 * A reader that ends such a stream without an error has bytes that match; a writer can skip
 * hashing them a second time.
 */
export function verifiedAs(stream: object): Expected | undefined {
  return verifying.get(stream)
}

/** Checks bytes already in memory against an expected digest and size; throws on mismatch. */
export function verifyBytes(data: Uint8Array, expected: Expected, what: string): void {
  if (expected.size !== undefined && data.length !== expected.size) {
    throw new SizeMismatchError(what, expected.size, data.length)
  }
  const actual = digestOf(data, digestAlgorithm(expected.digest))
  if (actual !== expected.digest) throw new DigestMismatchError(what, expected.digest, actual)
}
