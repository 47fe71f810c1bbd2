/**
 * `rebase`: an image moved from one base to another. Its own layers and config stay; the old
 * base's layers (which must be its bottom layers) become the new base's; what its config took
 * from the old base's config is taken from the new base's instead. Lazy: layers are not read, so
 * a rebase within one registry moves no layer (the write mounts or finds them).
 */
import type { Digest } from '../digest.ts'
import type { ContainerConfig, ImageConfig } from '../documents/schemas.ts'
import { isoTime, resolveTimestamp, type Timestamp } from '../documents/time.ts'
import { OcikitError } from '../errors.ts'
import { assembleImage, layersFor } from '../image/mutate.ts'
import { formatPlatform } from '../image/platform.ts'
import type { Image } from '../image/types.ts'

/** The annotations that record an image's base (image-spec annotations.md). */
export const BASE_NAME = 'org.opencontainers.image.base.name'
export const BASE_DIGEST = 'org.opencontainers.image.base.digest'

/** Options of {@link rebase}. */
export interface RebaseOptions {
  /** The new base's name, recorded in `org.opencontainers.image.base.name`. */
  newBaseName?: string | undefined
  /** The time of the change (the history entry), by the layer rules. */
  timestamp?: Timestamp | undefined
  /** Names for messages. */
  names?: { image?: string; oldBase?: string } | undefined
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)

/** `KEY=VALUE` entries by key. */
function envMap(env: readonly string[] | null | undefined): Map<string, string> {
  return new Map((env ?? []).map((kv) => [kv.slice(0, Math.max(kv.indexOf('='), 0)) || kv, kv]))
}

/**
 * The image's container config with what came from the old base taken from the new one: a
 * field equal to the old base's becomes the new base's; env variables and labels the image has
 * as the old base had them become the new base's (or go, when it lacks them), and the new base's
 * others are added; what the image set itself stays.
 */
export function rebaseConfig(own: ContainerConfig, oldBase: ContainerConfig, newBase: ContainerConfig): ContainerConfig {
  const out: ContainerConfig = { ...own }
  const set = <K extends keyof ContainerConfig>(k: K, v: ContainerConfig[K] | undefined) => {
    if (v === undefined) delete out[k]
    else out[k] = v
  }
  for (const k of ['Entrypoint', 'Cmd', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'StopSignal'] as const) {
    if (same(own[k], oldBase[k])) set(k, newBase[k])
  }
  const mine = envMap(own.Env)
  const oldEnv = envMap(oldBase.Env)
  const newEnv = envMap(newBase.Env)
  const env: string[] = []
  for (const [k, kv] of mine) {
    if (oldEnv.get(k) === kv) {
      const n = newEnv.get(k)
      if (n !== undefined) env.push(n)
    } else env.push(kv)
  }
  for (const [k, kv] of newEnv) if (!mine.has(k)) env.unshift(kv)
  set('Env', env.length > 0 ? env : undefined)
  const labels: Record<string, string> = {}
  for (const [k, v] of Object.entries(own.Labels ?? {})) {
    if (oldBase.Labels?.[k] === v) {
      if (newBase.Labels?.[k] !== undefined) labels[k] = newBase.Labels[k]
    } else labels[k] = v
  }
  for (const [k, v] of Object.entries(newBase.Labels ?? {})) if (!(k in (own.Labels ?? {}))) labels[k] = v
  set('Labels', Object.keys(labels).length > 0 ? labels : undefined)
  return out
}

/**
 * `img` with `oldBase`'s layers (its bottom ones) replaced by `newBase`'s. INVALID_ARGUMENT,
 * naming the first layer that differs, when `oldBase` is not `img`'s base; PLATFORM_NOT_FOUND
 * when the new base is for another platform. The result records the new base in
 * `org.opencontainers.image.base.name` (when given) and `.digest`.
 */
export async function rebase(img: Image, oldBase: Image, newBase: Image, o: RebaseOptions = {}): Promise<Image> {
  const name = o.names?.image ?? `image ${await img.digest()}`
  const oldName = o.names?.oldBase ?? `image ${await oldBase.digest()}`
  const [mine, old] = await Promise.all([img.manifest(), oldBase.manifest(), newBase.manifest()])
  if (old.layers.length > mine.layers.length) {
    throw new OcikitError('INVALID_ARGUMENT', `${oldName} has ${old.layers.length} layers, more than ${name} (${mine.layers.length}): it is not its base`)
  }
  for (const [i, l] of old.layers.entries()) {
    const m = mine.layers[i]
    if (m?.digest !== l.digest) {
      throw new OcikitError('INVALID_ARGUMENT', `${oldName} is not the base of ${name}: layer ${i} of ${name} is ${m?.digest}, the old base's is ${l.digest}`)
    }
  }
  const [config, oldConfig, newConfig] = await Promise.all([img.config(), oldBase.config(), newBase.config()])
  const platform = (c: ImageConfig) => formatPlatform({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) })
  if (platform(newConfig) !== platform(config)) {
    throw new OcikitError(
      'PLATFORM_NOT_FOUND',
      `the new base is for ${platform(newConfig)}, ${name} for ${platform(config)}; pick the new base's platform with --platform`,
    )
  }
  const ownLayers = (await img.layers()).slice(old.layers.length)
  const ownHistory = (config.history ?? []).slice((oldConfig.history ?? []).length)
  const created = isoTime(resolveTimestamp(o.timestamp))
  const out: ImageConfig = {
    ...config,
    created,
    config: rebaseConfig(config.config ?? {}, oldConfig.config ?? {}, newConfig.config ?? {}),
    history: [...(newConfig.history ?? []), ...ownHistory, { created, created_by: 'ocikit rebase', empty_layer: true }],
  }
  const annotations: Record<string, string> = { ...mine.annotations, [BASE_DIGEST]: (await newBase.digest()) as Digest }
  if (o.newBaseName) annotations[BASE_NAME] = o.newBaseName
  else delete annotations[BASE_NAME]
  const mediaType = await img.mediaType()
  return assembleImage(mediaType, out, layersFor(mediaType, [...(await newBase.layers()), ...ownLayers]), annotations)
}
