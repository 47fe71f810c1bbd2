/**
 * fsck of a store by reading its views: every manifest, config and layer each reachable entry
 * names is read through the store's verifying streams, once, and every failure recorded with
 * the path it was reached by. For stores without a cheaper walk of their own (archives).
 */
import type { Digest } from '../digest.ts'
import { isImageConfigType, isNondistributableType } from '../documents/media-types.ts'
import { isOcikitError } from '../errors.ts'
import type { ImageOrIndex } from '../image/types.ts'
import type { BlobRole, FsckProblem, FsckReport, ProblemKind } from './types.ts'

function kindOf(e: unknown): ProblemKind {
  if (isOcikitError(e, 'BLOB_UNKNOWN') || isOcikitError(e, 'MANIFEST_UNKNOWN')) return 'missing'
  if (isOcikitError(e, 'SIZE_MISMATCH')) return 'truncated'
  if (isOcikitError(e, 'DIGEST_MISMATCH')) return 'corrupt'
  if (isOcikitError(e, 'TOO_LARGE')) return 'too-large'
  return 'invalid'
}

/** Reads every blob the entries reach, verifying each once; the report says what failed and how it was reached. */
export async function fsckViews(
  entries: readonly { via: string; open: () => Promise<ImageOrIndex> }[],
  o: { signal?: AbortSignal | undefined } = {},
): Promise<FsckReport> {
  const seen = new Set<string>()
  const problems: FsckProblem[] = []
  const foreignMissing: { digest: Digest; via: string }[] = []
  let hashed = 0
  const check = async (digest: Digest, via: string, role: BlobRole, work: () => Promise<unknown>) => {
    if (seen.has(digest)) return
    seen.add(digest)
    try {
      o.signal?.throwIfAborted()
      await work()
      hashed++
    } catch (e) {
      if (!isOcikitError(e)) throw e
      problems.push({ kind: kindOf(e), digest, via, role, message: e.message })
    }
  }
  const visit = async (open: () => Promise<ImageOrIndex>, digest: Digest | undefined, via: string): Promise<void> => {
    let x: ImageOrIndex
    try {
      x = await open()
    } catch (e) {
      if (!isOcikitError(e)) throw e
      problems.push({ kind: kindOf(e), digest: digest ?? ('' as Digest), via, role: 'manifest', message: e.message })
      return
    }
    const d = await x.digest()
    if (seen.has(d)) return
    seen.add(d)
    hashed++
    if (x.kind === 'index') {
      for (const [i, c] of (await x.manifest()).manifests.entries()) {
        const at = `${via} → manifests[${i}]`
        await visit(() => (c.mediaType.includes('index') || c.mediaType.includes('list') ? x.index(c.digest) : x.image(c.digest)), c.digest, at)
      }
      return
    }
    const m = await x.manifest()
    await check(m.config.digest, `${via} → config`, 'config', () => (isImageConfigType(m.config.mediaType) ? x.config() : x.rawConfig()))
    for (const [i, layer] of (await x.layers()).entries()) {
      const l = m.layers[i] as (typeof m.layers)[number]
      await check(l.digest, `${via} → layers[${i}]`, 'layer', async () => {
        try {
          for await (const _ of await layer.compressed(o)) {
            // read to the end: the stream verifies itself there
          }
        } catch (e) {
          if (isOcikitError(e, 'BLOB_UNKNOWN') && isNondistributableType(l.mediaType)) {
            foreignMissing.push({ digest: l.digest, via: `${via} → layers[${i}]` })
            hashed--
            return
          }
          throw e
        }
      })
    }
  }
  for (const e of entries) await visit(e.open, undefined, e.via)
  return { ok: problems.length === 0, reachable: seen.size, hashed, problems, foreignMissing }
}
