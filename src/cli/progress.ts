/** Progress display for long work: a live line on a terminal, nothing otherwise (or with --quiet). */
import { createRequire } from 'node:module'
import type CliProgress from 'cli-progress'
import type { Progress } from '../image/types.ts'
import type { BlobEvent } from '../stores/types.ts'
import { humanSize } from './output.ts'

/**
 * cli-progress, loaded only when a terminal will show it (it costs start-up time otherwise). In a
 * bundle, `require` is defined and esbuild inlines the package (evaluated on this first call);
 * run from source as ES modules, there is no `require`, and one is made.
 */
export function loadCliProgress(): typeof CliProgress {
  if (typeof require === 'function') return require('cli-progress') as typeof CliProgress
  return createRequire(import.meta.url)('cli-progress') as typeof CliProgress
}

/** A progress callback that draws on stderr when it is a terminal; `stop()` clears it. */
export function progressLine(label: string, quiet = false): { onProgress?: (p: Progress) => void; stop: () => void } {
  if (quiet || !process.stderr.isTTY) return { stop: () => {} }
  const cliProgress = loadCliProgress()
  const bar = new cliProgress.SingleBar(
    { format: `${label} {done} {rate}`, stream: process.stderr, clearOnComplete: true, hideCursor: true, noTTYOutput: false },
    cliProgress.Presets.shades_classic,
  )
  const start = Date.now()
  bar.start(1, 0, { done: '', rate: '' })
  return {
    onProgress: (p) => {
      const secs = Math.max((Date.now() - start) / 1000, 0.001)
      bar.update(0, { done: humanSize(p.done) + (p.total ? ` of ${humanSize(p.total)}` : ''), rate: `${humanSize(p.done / secs)}/s` })
    },
    stop: () => bar.stop(),
  }
}

/**
 * What a write shows on a terminal (nothing when `enabled` is false): a bar per layer being
 * packed (bytes and rate), then a bar per blob moving (bytes, and how it ended: done, skipped
 * because already there, mounted). `stop()` ends the display and leaves its last state on screen;
 * call it before printing the result, so that the result line is the last thing shown.
 */
export function transferDisplay(enabled: boolean): {
  onProgress?: ((p: Progress) => void) | undefined
  onBlob: (b: BlobEvent) => void
  packing: (label: string) => ((p: Progress) => void) | undefined
  stop: () => void
} {
  if (!enabled) return { onProgress: undefined, onBlob: () => {}, packing: () => undefined, stop: () => {} }
  const cliProgress = loadCliProgress()
  const multi = new cliProgress.MultiBar(
    { format: '{id} [{bar}] {done} / {size} {state}', stream: process.stderr, hideCursor: true, clearOnComplete: false, barsize: 24 },
    cliProgress.Presets.shades_classic,
  )
  const bars = new Map<string, CliProgress.SingleBar>()
  const bar = (id: string, total: number) => {
    let b = bars.get(id)
    if (!b) {
      b = multi.create(Math.max(total, 1), 0, { id: id.slice(7, 19), done: '0 B', size: humanSize(total), state: '' })
      bars.set(id, b)
    }
    return b
  }
  let stopped = false
  return {
    onProgress: (p) => bar(p.id, p.total ?? 0).update(p.done, { done: humanSize(p.done) }),
    onBlob: (b) =>
      bar(b.digest, b.size).update(Math.max(b.size, 1), {
        done: humanSize(b.size),
        state: b.mounted ? 'mounted' : b.existed ? 'skipped (already there)' : 'done',
      }),
    packing: (label) => {
      const start = Date.now()
      const b = multi.create(1, 0, { id: `packing ${label}`, done: '', size: '', state: '' }, { format: '{id} {done} {state}' })
      return (p) => {
        const secs = Math.max((Date.now() - start) / 1000, 0.001)
        b.update(0, { done: humanSize(p.done), state: `(${humanSize(p.done / secs)}/s)` })
      }
    },
    stop: () => {
      if (stopped) return
      stopped = true
      multi.stop()
    },
  }
}
