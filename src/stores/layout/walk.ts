/**
 * Walks a layout's graph: index.json → manifests and indexes → configs and layers,
 * visiting each blob once and recording each problem with the path it was reached by.
 * fsck walks with hashing on; gc walks to learn what is reachable.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import pLimit from 'p-limit'
import { type Digest, digestAlgorithm, digestOf } from '../../digest.ts'
import { isImageConfigType, isIndexType, isManifestType, isNondistributableType } from '../../documents/media-types.ts'
import type { Descriptor } from '../../documents/schemas.ts'
import { checkManifestAgainstConfig, MAX_DOCUMENT_SIZE, MAX_INDEX_DEPTH, parseImageConfig, parseManifestOrIndex } from '../../documents/validate.ts'
import { isErrno, isOcikitError } from '../../errors.ts'
import { tagOf } from '../oci-index.ts'
import type { BlobRole, FsckProblem, ProblemKind } from '../types.ts'
import type { OciLayout } from './layout.ts'

/** What a walk found. */
export interface WalkResult {
  /** Every digest reached from index.json, present or not. */
  readonly reachable: Set<string>
  readonly problems: FsckProblem[]
  /** Non-distributable layers absent from the layout (allowed by the spec). */
  readonly foreignMissing: { digest: Digest; via: string }[]
  /** Blobs whose bytes were hashed. */
  readonly hashed: number
}

/** Walks the layout from `index.json`. With `hashAll`, every layer blob is re-hashed (documents always are). */
export async function walkLayout(layout: OciLayout, opts: { hashAll: boolean; signal?: AbortSignal }): Promise<WalkResult> {
  const index = await layout.readIndex()
  const reachable = new Set<string>()
  const problems: FsckProblem[] = []
  const foreignMissing: { digest: Digest; via: string }[] = []
  const limit = pLimit(2)
  const pending: Promise<void>[] = []
  let hashed = 0
  const problem = (kind: ProblemKind, d: Descriptor, via: string, role: BlobRole, message: string) =>
    problems.push({ kind, digest: d.digest, via, role, message })

  /** Checks a blob's presence, size and (if asked) bytes; returns false when it is unusable. */
  const checkBlob = async (d: Descriptor, via: string, role: BlobRole, rehash: boolean): Promise<boolean> => {
    let size: number
    try {
      const st = await fs.stat(layout.blobPath(d.digest))
      if (!st.isFile()) {
        problem('corrupt', d, via, role, 'not a regular file')
        return false
      }
      size = st.size
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e
      if (isNondistributableType(d.mediaType)) foreignMissing.push({ digest: d.digest, via })
      else problem('missing', d, via, role, 'missing')
      return false
    }
    if (size < d.size) {
      problem('truncated', d, via, role, `truncated: ${size} of ${d.size} bytes`)
      return false
    }
    if (size > d.size) {
      problem('corrupt', d, via, role, `wrong size: ${size} bytes, descriptor says ${d.size}`)
      return false
    }
    if (!rehash) return true
    const hash = createHash(digestAlgorithm(d.digest))
    for await (const chunk of await layout.rawBlobStream(d.digest)) {
      opts.signal?.throwIfAborted()
      hash.update(chunk as Buffer)
    }
    hashed++
    const actual = `${digestAlgorithm(d.digest)}:${hash.digest('hex')}`
    if (actual !== d.digest) {
      problem('corrupt', d, via, role, `corrupt: content hashes to ${actual}`)
      return false
    }
    return true
  }

  const readDoc = async (d: Descriptor, via: string, role: BlobRole): Promise<Uint8Array | undefined> => {
    if (d.size > MAX_DOCUMENT_SIZE) {
      problem('too-large', d, via, role, `${d.size} bytes, over the ${MAX_DOCUMENT_SIZE}-byte document limit`)
      return undefined
    }
    if (!(await checkBlob(d, via, role, false))) return undefined
    const raw = Buffer.concat(await (await layout.rawBlobStream(d.digest)).toArray())
    hashed++
    const actual = digestOf(raw, digestAlgorithm(d.digest))
    if (actual !== d.digest) {
      problem('corrupt', d, via, role, `corrupt: content hashes to ${actual}`)
      return undefined
    }
    return raw
  }

  const visitManifest = async (d: Descriptor, via: string, depth: number): Promise<void> => {
    if (reachable.has(d.digest)) return
    reachable.add(d.digest)
    const raw = await readDoc(d, via, 'manifest')
    if (!raw) return
    let parsed: ReturnType<typeof parseManifestOrIndex>
    try {
      parsed = parseManifestOrIndex(raw, `manifest ${d.digest}`, d.mediaType)
    } catch (e) {
      if (!isOcikitError(e)) throw e
      problem('invalid', d, via, 'manifest', e.message)
      return
    }
    if (parsed.kind === 'index') {
      if (depth > MAX_INDEX_DEPTH) {
        problem('invalid', d, via, 'manifest', `indexes nested more than ${MAX_INDEX_DEPTH} deep`)
        return
      }
      for (const [k, e] of parsed.index.manifests.entries()) {
        const at = `${via} → manifests[${k}]`
        if (isManifestType(e.mediaType) || isIndexType(e.mediaType)) await visitManifest(e, at, depth + 1)
        else visitBlob(e, at, 'blob')
      }
      return
    }
    const m = parsed.manifest
    const cfg = m.config
    if (!reachable.has(cfg.digest)) {
      reachable.add(cfg.digest)
      const at = `${via} → config`
      const craw = await readDoc(cfg, at, 'config')
      if (craw && isImageConfigType(cfg.mediaType)) {
        try {
          checkManifestAgainstConfig(m, parseImageConfig(craw, `config ${cfg.digest}`), `manifest ${d.digest}`)
        } catch (e) {
          if (!isOcikitError(e)) throw e
          problem('invalid', cfg, at, 'config', e.message)
        }
      }
    }
    for (const [j, l] of m.layers.entries()) visitBlob(l, `${via} → layers[${j}]`, 'layer')
  }

  const visitBlob = (d: Descriptor, via: string, role: BlobRole): void => {
    if (reachable.has(d.digest)) return
    reachable.add(d.digest)
    pending.push(limit(async () => void (await checkBlob(d, via, role, opts.hashAll))))
  }

  for (const [i, d] of index.manifests.entries()) {
    const tag = tagOf(d)
    await visitManifest(d, `index.json manifests[${i}]${tag !== undefined ? ` (tag ${tag})` : ''}`, 0)
  }
  await Promise.all(pending)
  return { reachable, problems, foreignMissing, hashed }
}
