/** fsck of an OCI layout: every reachable blob present, of the right size, hashing to its name, and valid. */

import type { Digest } from '../../digest.ts'
import type { OciLayout } from './layout.ts'
import { type WalkProblem, walkLayout } from './walk.ts'

/** What fsck found. `ok` is true when there is no problem. */
export interface FsckReport {
  readonly ok: boolean
  /** Distinct blobs reached from index.json. */
  readonly reachable: number
  /** Blobs whose bytes were re-hashed (each once). */
  readonly hashed: number
  readonly problems: readonly WalkProblem[]
  /** Non-distributable layers that are absent, which the spec allows. */
  readonly foreignMissing: readonly { digest: Digest; via: string }[]
}

/**
 * Walks index.json → manifests → configs → layers and re-hashes every reachable blob once,
 * reporting each missing, truncated, corrupt or invalid blob with the path it was reached by.
 * Read-only: nothing in the layout changes.
 */
export async function fsckLayout(layout: OciLayout, o: { signal?: AbortSignal } = {}): Promise<FsckReport> {
  const r = await walkLayout(layout, { hashAll: true, signal: o.signal })
  return { ok: r.problems.length === 0, reachable: r.reachable.size, hashed: r.hashed, problems: r.problems, foreignMissing: r.foreignMissing }
}
