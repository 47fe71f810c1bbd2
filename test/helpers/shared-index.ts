/**
 * An index of three one-layer images, two of which share their layer, over a source that
 * records which blobs are opened and how many layer reads are under way at once. A layer read
 * waits (up to `gateMs`; 2 s leaves room for a loaded machine) until a second one has started,
 * so a writer that takes the images one after another shows a peak of 1.
 */
import type { Readable } from 'node:stream'
import { digestOf } from '../../src/digest.ts'
import { canonicalJson } from '../../src/documents/canonical.ts'
import { MediaType } from '../../src/documents/media-types.ts'
import type { Descriptor, Index, Manifest } from '../../src/documents/schemas.ts'
import { MemoryBlobSource } from '../../src/image/random.ts'
import type { IoOptions } from '../../src/image/types.ts'
import { SourceIndex } from '../../src/image/view.ts'

/** What the source saw. */
export interface SharedIndexProbe {
  /** Layer digests in the order they were opened. */
  opened: string[]
  /** The most layer reads under way at once. */
  peak: number
  /** The layer the first and third images share. */
  shared: string
}

class GatedSource extends MemoryBlobSource {
  readonly probe: SharedIndexProbe = { opened: [], peak: 0, shared: '' }
  readonly layers = new Set<string>()
  #running = 0
  #waiters: (() => void)[] = []
  readonly gateMs: number
  constructor(gateMs: number) {
    super('gated')
    this.gateMs = gateMs
  }
  override async openBlob(d: Descriptor, o?: IoOptions): Promise<Readable> {
    if (!this.layers.has(d.digest)) return super.openBlob(d, o)
    this.probe.opened.push(d.digest)
    this.#running++
    this.probe.peak = Math.max(this.probe.peak, this.#running)
    if (this.#running >= 2) for (const w of this.#waiters.splice(0)) w()
    else {
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve)
        setTimeout(resolve, this.gateMs)
      })
    }
    const s = await super.openBlob(d, o)
    s.once('close', () => this.#running--)
    return s
  }
}

/** The index and the probe of its source. */
export function sharedLayerIndex(gateMs = 2000): { index: SourceIndex; probe: SharedIndexProbe } {
  const src = new GatedSource(gateMs)
  const layer = (text: string) => {
    const d = src.put(Buffer.from(text), MediaType.ociLayerGzip)
    src.layers.add(d.digest)
    return d
  }
  const a = layer('layer a')
  const b = layer('layer b')
  src.probe.shared = a.digest
  const images = (
    [
      [a, 'amd64'],
      [b, 'arm64'],
      [a, 'riscv64'],
    ] as const
  ).map(([l, architecture]) => {
    const config = src.put(
      canonicalJson({ architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(`diff of ${l.digest}`)] } }),
      MediaType.ociConfig,
    )
    const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [l] }
    const raw = canonicalJson(manifest)
    return src.put(raw, MediaType.ociManifest, { platform: { os: 'linux', architecture } })
  })
  const index: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: images }
  const raw = canonicalJson(index)
  src.put(raw, MediaType.ociIndex)
  return { index: new SourceIndex(src, raw, digestOf(raw), MediaType.ociIndex, index), probe: src.probe }
}
