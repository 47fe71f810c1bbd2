import path from 'node:path'
import pLimit, { type LimitFunction } from 'p-limit'

/**
 * The transfers of one write (into a layout, or a push to a registry), stopped together: the
 * first failure stops the others, and the write reports it only once they have all settled, so
 * that nothing is still running, or left half-written, when the caller hears of the failure.
 */
export class TransferGroup {
  /** Fires when the caller's signal does, or when the group is stopped; pass it to every transfer. */
  readonly signal: AbortSignal
  readonly #stop = new AbortController()
  readonly #running = new Set<Promise<unknown>>()

  constructor(outer?: AbortSignal) {
    this.signal = outer ? AbortSignal.any([outer, this.#stop.signal]) : this.#stop.signal
  }

  /** Runs `work` as one transfer of the group; once the group is stopped, none starts. */
  run<T>(work: () => Promise<T>): Promise<T> {
    if (this.signal.aborted) return Promise.reject(this.signal.reason)
    const p = work()
    this.#running.add(p)
    const done = () => this.#running.delete(p)
    p.then(done, done)
    return p
  }

  /** Stops every transfer of the group with `reason`, unless it was stopped before. */
  stop(reason: unknown): void {
    if (!this.#stop.signal.aborted) this.#stop.abort(reason)
  }

  /**
   * After the write failed with `e`: stops the group, waits until every transfer has settled,
   * and returns the failure that stopped it (the first one, which may be an earlier one than `e`:
   * a config that failed its check, say, rather than the transfers that check cut short).
   */
  async failed(e: unknown): Promise<unknown> {
    this.stop(e)
    while (this.#running.size > 0) await Promise.allSettled([...this.#running])
    return this.#stop.signal.reason
  }
}

const placeLimits = new Map<string, LimitFunction>()

/**
 * The limit on blob transfers to one place (a registry host, a layout directory) shared by every
 * write of this process: `n` at once, the rest queued. Writes at once each have their own limit
 * too (4 by default); without this one, a hundred writes would hold four hundred sources open,
 * each with its read buffer full, while they waited for connections or the disk (over 700 MiB in
 * the load run of docs/reliability.md). `key` names the place (`registry HOST`, `layout DIR`).
 */
export function placeLimit(key: string, n: number): LimitFunction {
  const known = placeLimits.get(key)
  if (known) return known
  const l = pLimit(n)
  placeLimits.set(key, l)
  return l
}

/** The {@link placeLimit} key of a directory on disk: its absolute path. */
export const directoryKey = (kind: string, dir: string): string => `${kind} ${path.resolve(dir)}`
