/** Progress display for long work: a live line on a terminal, nothing otherwise (or with --quiet). */
import { createRequire } from 'node:module'
import type CliProgress from 'cli-progress'
import type { Progress } from '../image/types.ts'
import { humanSize } from './output.ts'

/** cli-progress, loaded only when a terminal will show it (it costs start-up time otherwise). */
export function loadCliProgress(): typeof CliProgress {
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
