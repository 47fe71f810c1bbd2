/** The facts `ocikit inspect` shows, gathered from an image or index view. */

import { isImageConfigType } from './documents/media-types.ts'
import type { Descriptor } from './documents/schemas.ts'
import { formatPlatform } from './image/platform.ts'
import type { ImageOrIndex } from './image/types.ts'

/** Facts about an image. */
export interface ImageFacts {
  kind: 'image'
  mediaType: string
  digest: string
  size: number
  /** `os/arch[/variant]`; empty for an artifact. */
  platform: string
  /** For an artifact (a manifest whose config is not an image config): its type, from `artifactType` or the config media type. */
  artifactType?: string | undefined
  created?: string | undefined
  author?: string | undefined
  config: {
    user?: string | undefined
    env: string[]
    entrypoint: string[] | null
    cmd: string[] | null
    workingDir?: string | undefined
    exposedPorts: string[]
    labels: Record<string, string>
  }
  layers: { mediaType: string; digest: string; size: number }[]
  /** Sum of the layer blob sizes. */
  layersSize: number
  history: number
  annotations: Record<string, string>
}

/** Facts about an index. */
export interface IndexFacts {
  kind: 'index'
  mediaType: string
  digest: string
  size: number
  manifests: { mediaType: string; digest: string; size: number; platform?: string | undefined; artifactType?: string | undefined }[]
  annotations: Record<string, string>
}

/** Gathers the facts of an image (reading its manifest and config) or index (its manifest only). */
export async function inspectView(x: ImageOrIndex): Promise<ImageFacts | IndexFacts> {
  const raw = await x.rawManifest()
  const base = { mediaType: await x.mediaType(), digest: await x.digest(), size: raw.length }
  if (x.kind === 'index') {
    const m = await x.manifest()
    return {
      kind: 'index',
      ...base,
      manifests: m.manifests.map((d: Descriptor) => ({
        mediaType: d.mediaType,
        digest: d.digest,
        size: d.size,
        platform: d.platform ? formatPlatform(d.platform) : undefined,
        artifactType: d.artifactType,
      })),
      annotations: m.annotations ?? {},
    }
  }
  const m = await x.manifest()
  const layers = m.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }))
  const common = { kind: 'image' as const, ...base, layers, layersSize: layers.reduce((a, l) => a + l.size, 0), annotations: m.annotations ?? {} }
  if (!isImageConfigType(m.config.mediaType)) {
    // An artifact: no platform, no runtime config, no history.
    const config = { env: [], entrypoint: null, cmd: null, exposedPorts: [], labels: {} }
    return { ...common, platform: '', artifactType: m.artifactType ?? m.config.mediaType, config, history: 0 }
  }
  const c = await x.config()
  const cc = c.config ?? {}
  return {
    ...common,
    platform: formatPlatform({ os: c.os, architecture: c.architecture, variant: c.variant }),
    created: c.created,
    author: c.author,
    config: {
      user: cc.User || undefined,
      env: cc.Env ?? [],
      entrypoint: cc.Entrypoint ?? null,
      cmd: cc.Cmd ?? null,
      workingDir: cc.WorkingDir || undefined,
      exposedPorts: Object.keys(cc.ExposedPorts ?? {}),
      labels: cc.Labels ?? {},
    },
    history: c.history?.length ?? 0,
  }
}
