/** fsck of an OCI layout: every reachable blob present, of the right size, hashing to its name, and valid. */

import type { FsckReport } from '../types.ts'
import type { OciLayout } from './layout.ts'
import { walkLayout } from './walk.ts'

/**
 * Walks index.json → manifests → configs → layers and re-hashes every reachable blob once,
 * reporting each missing, truncated, corrupt or invalid blob with the path it was reached by.
 * Read-only: nothing in the layout changes.
 */
export async function fsckLayout(layout: OciLayout, o: { signal?: AbortSignal } = {}): Promise<FsckReport> {
  const r = await walkLayout(layout, { hashAll: true, signal: o.signal })
  return { ok: r.problems.length === 0, reachable: r.reachable.size, hashed: r.hashed, problems: r.problems, foreignMissing: r.foreignMissing }
}
