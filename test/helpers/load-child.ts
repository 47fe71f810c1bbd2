/**
 * One phase of the load run (issue 19), in a process of its own so that its peak memory is its
 * own: `make` writes N seeded images of L random layers into a layout; `push` copies all N from
 * that layout to a registry at once; `pull` copies all N back from the registry into one layout,
 * at once. Prints one JSON line: { ms, maxRssMiB, failed: [messages] }.
 * Usage: node load-child.ts MODE FROM TO IMAGES [LAYERS LAYER_BYTES], where MODE FROM TO is
 * `make - LAYOUT`, `push LAYOUT HOST/REPO` or `pull HOST/REPO LAYOUT`; image K is tagged `iK`.
 */
import { copy, write } from '../../src/api.ts'
import { randomImage } from '../../src/image/random.ts'

const [mode, from = '', to = '', images = '0', layers = '20', layerBytes = '100000'] = process.argv.slice(2)
const tags = Array.from({ length: Number(images) }, (_, i) => `i${i}`)
const registry = { backoffMs: 50 }
const started = performance.now()
let results: PromiseSettledResult<unknown>[]
if (mode === 'make') {
  // One at a time: each random image lives in memory until it is written.
  results = []
  for (const [i, tag] of tags.entries()) {
    const img = await randomImage({ seed: 5000 + i, layers: Number(layers), layerSize: Number(layerBytes), compression: 'none' })
    results.push(...(await Promise.allSettled([write(`oci:${to}:${tag}`, img)])))
  }
} else if (mode === 'push') {
  results = await Promise.allSettled(tags.map((tag) => copy(`oci:${from}:${tag}`, `${to}:${tag}`, { registry })))
} else if (mode === 'pull') {
  results = await Promise.allSettled(tags.map((tag) => copy(`${from}:${tag}`, `oci:${to}:${tag}`, { registry })))
} else throw new Error(`unknown mode ${mode}`)
const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason?.message ?? r))
process.stdout.write(
  `${JSON.stringify({ ms: Math.round(performance.now() - started), maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), failed })}\n`,
)
