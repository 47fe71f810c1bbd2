/**
 * `optimize`: an image without the layers that change nothing — empty layers, and layers that
 * repeat an earlier one byte for byte (the same diffID) when no layer between them touches any
 * path they hold — so the unpacked filesystem is exactly the same. Each layer's entries are
 * listed once to decide (paths only, never contents).
 */
import type { Digest } from '../digest.ts'
import type { History } from '../documents/schemas.ts'
import { assembleImage } from '../image/mutate.ts'
import type { Image, Layer } from '../image/types.ts'
import { listTar } from '../layer/read.ts'

/** A layer optimize left out, and why. */
export interface RemovedLayer {
  /** Its place in the original image (from 0). */
  readonly index: number
  readonly digest: Digest
  readonly reason: string
}

/** What {@link optimize} made. */
export interface Optimized {
  /** The image without the removed layers (the same view when nothing was removed). */
  readonly image: Image
  readonly removed: readonly RemovedLayer[]
}

/** The paths a layer touches: what it writes, and what its whiteouts delete or hide. */
async function touched(layer: Layer, signal: AbortSignal | undefined): Promise<string[]> {
  const out: string[] = []
  for await (const e of listTar(await layer.uncompressed({ signal }), `layer ${await layer.digest()}`)) out.push(e.whiteout ? e.whiteout.target : e.path)
  return out
}

/** True when two path sets meet: the same path, or one inside the other. */
function meet(a: readonly string[], b: ReadonlySet<string>): boolean {
  for (const p of a) {
    if (b.has(p)) return true
    for (let i = p.indexOf('/'); i > 0; i = p.indexOf('/', i + 1)) if (b.has(p.slice(0, i))) return true
  }
  for (const q of b) for (const p of a) if (q.startsWith(`${p}/`)) return true
  return false
}

/**
 * The image with its empty layers and harmless repeats left out, and what was removed. The
 * history entries of removed layers go with them; `rootfs.diff_ids` follows the layers kept.
 */
export async function optimize(img: Image, o: { signal?: AbortSignal | undefined } = {}): Promise<Optimized> {
  const layers = await img.layers()
  const paths = await Promise.all(layers.map((l) => touched(l, o.signal)))
  const diffIds = await Promise.all(layers.map((l) => l.diffId()))
  const removed: RemovedLayer[] = []
  const kept: number[] = []
  for (const [j, l] of layers.entries()) {
    const mine = paths[j] as string[]
    if (mine.length === 0) {
      removed.push({ index: j, digest: await l.digest(), reason: 'empty: it holds no entries' })
      continue
    }
    const i = kept.find((k) => diffIds[k] === diffIds[j])
    if (i !== undefined) {
      const between = new Set(kept.filter((k) => k > i).flatMap((k) => paths[k] as string[]))
      if (!meet(mine, between)) {
        removed.push({ index: j, digest: await l.digest(), reason: `repeats layer ${i} byte for byte, and nothing between them touches its paths` })
        continue
      }
    }
    kept.push(j)
  }
  if (removed.length === 0) return { image: img, removed }
  const config = await img.config()
  if (config.history) {
    // History entries map to layers in order, skipping the empty_layer ones.
    const gone = new Set(removed.map((r) => r.index))
    let n = 0
    const history: History[] = []
    for (const h of config.history) {
      if (h.empty_layer) history.push(h)
      else if (!gone.has(n++)) history.push(h)
    }
    config.history = history
  }
  const manifest = await img.manifest()
  return {
    image: assembleImage(
      await img.mediaType(),
      config,
      kept.map((k) => layers[k] as Layer),
      manifest.annotations,
    ),
    removed,
  }
}
