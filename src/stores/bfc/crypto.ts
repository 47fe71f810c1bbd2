/**
 * BFC's encryption: ChaCha20-Poly1305 (IETF, RFC 8439) per object, a fresh 12-byte nonce in front
 * of the ciphertext and the 16-byte tag after it, the entry's path as associated data; one key per
 * file, from a password through Argon2id (v1.3, t=3, 64 MiB, p=1, the first 16 bytes of the
 * header's salt, as libsodium's crypto_pwhash reads them) or the first 32 bytes of a key file.
 * Argon2id is Node's own from 24.7; on older Nodes (ocikit runs on 22.15) hash-wasm's
 * (WebAssembly), an external module of the bundled CLI, loaded only then.
 */
import { createCipheriv, createDecipheriv, type DecipherChaCha20Poly1305, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { Transform, type TransformCallback } from 'node:stream'
import { OcikitError } from '../../errors.ts'

export const NONCE_SIZE = 12
export const TAG_SIZE = 16
export const KEY_SIZE = 32

/** Where the key of an encrypted BFC file comes from. */
export type BfcKeySource = { readonly password: () => Promise<string | Uint8Array> } | { readonly keyFile: string } | { readonly key: Uint8Array }

/** The 32-byte key for a file whose header holds `salt`. */
export async function deriveKey(source: BfcKeySource, salt: Buffer): Promise<Buffer> {
  if ('key' in source) {
    if (source.key.length < KEY_SIZE) throw new OcikitError('INVALID_ARGUMENT', `a BFC key is ${KEY_SIZE} bytes, got ${source.key.length}`)
    return Buffer.from(source.key.subarray(0, KEY_SIZE))
  }
  if ('keyFile' in source) {
    const bytes = await readFile(source.keyFile).catch((e: NodeJS.ErrnoException) => {
      throw new OcikitError('INVALID_ARGUMENT', `cannot read the key file ${source.keyFile}: ${e.code ?? e.message}`, { cause: e })
    })
    if (bytes.length < KEY_SIZE)
      throw new OcikitError('INVALID_ARGUMENT', `the key file ${source.keyFile} holds ${bytes.length} bytes; a BFC key is ${KEY_SIZE}`)
    return Buffer.from(bytes.subarray(0, KEY_SIZE))
  }
  const password = await source.password()
  if (password.length === 0) throw new OcikitError('INVALID_ARGUMENT', 'the BFC password is empty')
  return argon2idKey(typeof password === 'string' ? Buffer.from(password) : Buffer.from(password), salt.subarray(0, 16))
}

/**
 * Argon2id as libsodium's crypto_pwhash computes it for BFC (v1.3, 3 passes, 64 MiB, one lane,
 * 32 bytes): Node's own where it has one (24.7 and later, the pinned Node and the single
 * executable), else hash-wasm's, loaded only then (`fallback` forces it, for tests).
 */
export async function argon2idKey(password: Buffer, salt: Buffer, o: { fallback?: boolean } = {}): Promise<Buffer> {
  const c = process.getBuiltinModule('node:crypto') as { argon2?: (alg: string, p: object, cb: (e: Error | null, k: Buffer) => void) => void }
  if (c.argon2 && !o.fallback) {
    const argon2 = c.argon2
    return new Promise((resolve, reject) =>
      argon2('argon2id', { message: password, nonce: salt, parallelism: 1, tagLength: KEY_SIZE, memory: 65536, passes: 3 }, (e, k) =>
        e ? reject(e) : resolve(k),
      ),
    )
  }
  const { argon2id } = await import('hash-wasm')
  const hex = await argon2id({ password, salt, parallelism: 1, iterations: 3, memorySize: 65536, hashLength: KEY_SIZE, outputType: 'hex' })
  return Buffer.from(hex, 'hex')
}

/** Encrypts a stream: the nonce, the ciphertext, the tag. */
export class EncryptStream extends Transform {
  readonly #cipher
  #started = false
  readonly #nonce = randomBytes(NONCE_SIZE)
  constructor(key: Buffer, path: string) {
    super()
    this.#cipher = createCipheriv('chacha20-poly1305', key, this.#nonce, { authTagLength: TAG_SIZE })
    this.#cipher.setAAD(Buffer.from(path), { plaintextLength: 0 })
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.#started) {
      this.#started = true
      this.push(this.#nonce)
    }
    cb(null, this.#cipher.update(chunk))
  }
  override _flush(cb: TransformCallback): void {
    if (!this.#started) this.push(this.#nonce)
    const last = this.#cipher.final()
    if (last.length) this.push(last)
    cb(null, this.#cipher.getAuthTag())
  }
}

/**
 * Decrypts a stored object of `storedSize` bytes: takes the nonce, releases plaintext as it
 * comes, and fails at the end unless the tag is right (a wrong key or a changed byte:
 * DECRYPTION_FAILED). Like a registry download, the bytes are untrusted until the stream has
 * ended without an error; every reader in ocikit holds them back until then (a temp file, a
 * digest check).
 */
export class DecryptStream extends Transform {
  readonly #key: Buffer
  readonly #path: string
  readonly #what: string
  #decipher: DecipherChaCha20Poly1305 | undefined
  #head = Buffer.alloc(0)
  #tail = Buffer.alloc(0)
  constructor(key: Buffer, path: string, what: string) {
    super()
    this.#key = key
    this.#path = path
    this.#what = what
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let c = chunk
    if (!this.#decipher) {
      this.#head = Buffer.concat([this.#head, c])
      if (this.#head.length < NONCE_SIZE) {
        cb()
        return
      }
      this.#decipher = createDecipheriv('chacha20-poly1305', this.#key, this.#head.subarray(0, NONCE_SIZE), { authTagLength: TAG_SIZE })
      this.#decipher.setAAD(Buffer.from(this.#path), { plaintextLength: 0 })
      c = this.#head.subarray(NONCE_SIZE)
    }
    // The last 16 bytes are the tag: hold them back until the end.
    const all = this.#tail.length ? Buffer.concat([this.#tail, c]) : c
    const cut = Math.max(0, all.length - TAG_SIZE)
    this.#tail = Buffer.from(all.subarray(cut))
    cb(null, cut > 0 ? this.#decipher.update(all.subarray(0, cut)) : undefined)
  }
  override _flush(cb: TransformCallback): void {
    if (!this.#decipher || this.#tail.length < TAG_SIZE) {
      cb(new OcikitError('INVALID_BFC', `${this.#what}: the encrypted object is shorter than its nonce and tag`))
      return
    }
    this.#decipher.setAuthTag(this.#tail)
    try {
      const last = this.#decipher.final()
      cb(null, last.length ? last : undefined)
    } catch (e) {
      cb(new OcikitError('DECRYPTION_FAILED', `${this.#what}: cannot be decrypted: the password or key is wrong, or the file was changed`, { cause: e }))
    }
  }
}
