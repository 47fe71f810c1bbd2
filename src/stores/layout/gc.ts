/** Garbage collection of an OCI layout: removes blobs that nothing in index.json reaches. */
import fs from 'node:fs/promises'
import type { Digest } from '../../digest.ts'
import { OcikitError } from '../../errors.ts'
import type { GcOptions, GcReport } from '../types.ts'
import type { OciLayout } from './layout.ts'
import { walkLayout } from './walk.ts'

/** Default grace period of gc: 10 minutes. */
export const DEFAULT_GC_GRACE_MS = 10 * 60 * 1000

/**
 * Deletes every blob that no entry of index.json reaches (through indexes, manifests,
 * configs and layers). Refuses to run (INVALID_LAYOUT) when a reachable manifest is missing
 * or unreadable, since then it cannot know what that manifest would keep alive.
 */
export async function gcLayout(layout: OciLayout, o: GcOptions = {}): Promise<GcReport> {
  const grace = o.graceMs ?? DEFAULT_GC_GRACE_MS
  const release = await layout.lock()
  try {
    const start = Date.now()
    const walk = await walkLayout(layout, { hashAll: false, signal: o.signal })
    // A broken manifest hides what it references; a broken config or layer references nothing.
    const blocking = walk.problems.filter((p) => p.role === 'manifest')
    if (blocking.length > 0) {
      const first = blocking[0] as (typeof blocking)[number]
      throw new OcikitError(
        'INVALID_LAYOUT',
        `${layout.name}: gc refused: ${first.via}: ${first.digest}: ${first.message} (${blocking.length} problem(s); run 'ocikit fsck ${layout.name}')`,
      )
    }
    const { blobs, temps } = await layout.listBlobs()
    const removed: { digest: Digest; size: number }[] = []
    let keptRecent = 0
    let bytes = 0
    for (const b of blobs) {
      if (walk.reachable.has(b.digest)) continue
      if (start - b.mtimeMs < grace) {
        keptRecent++
        continue
      }
      removed.push({ digest: b.digest, size: b.size })
      bytes += b.size
      if (!o.dryRun) await fs.rm(layout.blobPath(b.digest), { force: true })
    }
    let tempsRemoved = 0
    for (const t of temps) {
      if (start - t.mtimeMs < Math.max(grace, 60_000)) continue
      tempsRemoved++
      if (!o.dryRun) await fs.rm(t.path, { force: true })
    }
    return { removed, bytes, keptRecent, tempsRemoved, dryRun: o.dryRun ?? false }
  } finally {
    await release()
  }
}
