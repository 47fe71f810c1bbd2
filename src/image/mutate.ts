/**
 * Changing images: each function returns a new lazy view over the old one; the old image's
 * objects are never modified, and nothing is copied until a store writes the result.
 */
import type { Readable } from 'node:stream'
import { type Digest, digestOf } from '../digest.ts'
import { canonicalJson } from '../documents/canonical.ts'
import { layerCompression, MediaType } from '../documents/media-types.ts'
import type { ContainerConfig, Descriptor, History, ImageConfig, Manifest, Platform } from '../documents/schemas.ts'
import { isoTime, resolveTimestamp, type Timestamp } from '../documents/time.ts'
import { NotSupportedError, OcikitError } from '../errors.ts'
import { isDescribedLayer } from './partial.ts'
import { currentPlatform } from './platform.ts'
import type { Image, IoOptions, Layer } from './types.ts'

/** A layer seen under another media type with the same bytes (e.g. OCI gzip as Docker gzip). */
export class RetypedLayer implements Layer {
  readonly mediaType: string
  readonly #inner: Layer
  constructor(inner: Layer, mediaType: string) {
    this.#inner = inner
    this.mediaType = mediaType
  }
  digest() {
    return this.#inner.digest()
  }
  diffId() {
    return this.#inner.diffId()
  }
  size() {
    return this.#inner.size()
  }
  compressed(o?: IoOptions): Promise<Readable> {
    return this.#inner.compressed(o)
  }
  uncompressed(o?: IoOptions): Promise<Readable> {
    return this.#inner.uncompressed(o)
  }
}

const DOCKER_LAYER = { gzip: MediaType.dockerLayerGzip, none: 'application/vnd.docker.image.rootfs.diff.tar', zstd: undefined } as const

/**
 * `layers` as a manifest of `mediaType` lists them: in a Docker v2 manifest, gzip and plain-tar
 * layers under Docker's media types (same bytes); a zstd layer there is NOT_SUPPORTED.
 */
export function layersFor(mediaType: string, layers: readonly Layer[]): Layer[] {
  if (mediaType !== MediaType.dockerManifest) return [...layers]
  return layers.map((l) => {
    if (l.mediaType.startsWith('application/vnd.docker.')) return l
    const c = layerCompression(l.mediaType)
    const t = c === undefined ? undefined : DOCKER_LAYER[c]
    if (!t) throw new NotSupportedError(`a ${l.mediaType} layer cannot go into a Docker v2 image; use an OCI base image`)
    return new RetypedLayer(l, t)
  })
}

/** An image assembled from a config and layers; its manifest is computed on first use. */
class AssembledImage implements Image {
  readonly kind = 'image' as const
  readonly #mediaType: string
  readonly #config: ImageConfig
  readonly #layers: Layer[]
  readonly #annotations: Record<string, string> | undefined
  #built: Promise<{ raw: Uint8Array; manifest: Manifest; rawConfig: Uint8Array }> | undefined
  constructor(mediaType: string, config: ImageConfig, layers: Layer[], annotations?: Record<string, string>) {
    this.#mediaType = mediaType
    this.#config = config
    this.#layers = layers
    this.#annotations = annotations
  }
  #build() {
    this.#built ??= (async () => {
      const config = structuredClone(this.#config)
      config.rootfs = { type: 'layers', diff_ids: await Promise.all(this.#layers.map((l) => l.diffId())) }
      const rawConfig = canonicalJson(config)
      const docker = this.#mediaType === MediaType.dockerManifest
      const layers: Descriptor[] = await Promise.all(
        this.#layers.map(async (l) => {
          const d: Descriptor = { mediaType: l.mediaType, digest: await l.digest(), size: await l.size() }
          const urls = isDescribedLayer(l) ? l.descriptor().urls : undefined
          if (urls) d.urls = urls
          return d
        }),
      )
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: this.#mediaType,
        config: { mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: digestOf(rawConfig), size: rawConfig.length },
        layers,
        ...(this.#annotations && Object.keys(this.#annotations).length > 0 ? { annotations: this.#annotations } : {}),
      }
      return { raw: canonicalJson(manifest), manifest, rawConfig }
    })()
    this.#built.catch(() => {
      this.#built = undefined
    })
    return this.#built
  }
  async mediaType() {
    return this.#mediaType
  }
  async manifest() {
    return structuredClone((await this.#build()).manifest)
  }
  async rawManifest() {
    return new Uint8Array((await this.#build()).raw)
  }
  async digest(): Promise<Digest> {
    return digestOf((await this.#build()).raw)
  }
  async config() {
    return structuredClone(JSON.parse(Buffer.from((await this.#build()).rawConfig).toString()) as ImageConfig)
  }
  async rawConfig() {
    return new Uint8Array((await this.#build()).rawConfig)
  }
  async layers() {
    return [...this.#layers]
  }
}

/** An image made of a config and layers; its manifest (of `mediaType`) is computed on first use. */
export function assembleImage(mediaType: string, config: ImageConfig, layers: Layer[], annotations?: Record<string, string>): Image {
  return new AssembledImage(mediaType, config, layers, annotations)
}

/** The empty image every image starts from: no layers, an OCI manifest, this platform unless given. */
export function scratch(platform: Platform = currentPlatform()): Image {
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  }
  return new AssembledImage(MediaType.ociManifest, config, [])
}

/** One history entry per appended layer (default: `created_by: "ocikit"`). */
export interface AppendOptions {
  history?: Partial<History> | undefined
  /**
   * `created` of the config and of the history entries, by the same rules as layer entry times
   * (`resolveTimestamp`): this timestamp, else `$SOURCE_DATE_EPOCH`, else 1970-01-01. The base's
   * own `created` is not kept: the result is reproducible.
   */
  timestamp?: Timestamp | undefined
}

/** The `created` time of a change: see {@link AppendOptions.timestamp}. */
function createdOf(o: AppendOptions): string {
  return isoTime(resolveTimestamp(o.timestamp))
}

/**
 * The image with `layers` added on top. On a Docker v2 base, gzip and uncompressed layers are
 * listed under Docker media types (same bytes); zstd layers need an OCI base.
 */
export async function appendLayers(base: Image, layers: Layer[], o: AppendOptions = {}): Promise<Image> {
  const mediaType = await base.mediaType()
  const added = layersFor(mediaType, layers)
  const config = await base.config()
  const created = createdOf(o)
  config.created = created
  config.history = [...(config.history ?? []), ...layers.map(() => ({ created, created_by: 'ocikit', ...o.history }))]
  const manifest = await base.manifest()
  return new AssembledImage(mediaType, config, [...(await base.layers()), ...added], manifest.annotations)
}

function isStringList(x: Record<string, string> | readonly string[]): x is readonly string[] {
  return Array.isArray(x)
}

/** Changes to the runtime config of an image. Unset fields are left as they are. */
export interface ConfigEdit {
  entrypoint?: string[] | null | undefined
  cmd?: string[] | null | undefined
  /** `KEY=VALUE` entries; a KEY already set is replaced, order kept. */
  env?: string[] | undefined
  workingDir?: string | undefined
  user?: string | undefined
  /** `80`, `80/tcp`, `53/udp`. */
  exposedPorts?: string[] | undefined
  /** Labels to set: a map, or `KEY=VALUE` entries (a KEY with no `=` is INVALID_ARGUMENT). */
  labels?: Record<string, string> | readonly string[] | undefined
  /** Absolute paths to mark as volumes. */
  volumes?: readonly string[] | undefined
  /** The signal that stops the container: `SIGTERM`, `TERM` or a number. */
  stopSignal?: string | undefined
  /** Docker's health check: the test (`['NONE']` turns off the base's), durations in seconds. */
  healthcheck?: HealthcheckEdit | undefined
}

/** A health check as a config edit says it. */
export interface HealthcheckEdit {
  /** `['CMD', prog, ...args]`, `['CMD-SHELL', 'command']` or `['NONE']`. */
  test: string[]
  intervalSeconds?: number | undefined
  timeoutSeconds?: number | undefined
  startPeriodSeconds?: number | undefined
  retries?: number | undefined
}

const SIGNAL = /^(SIG)?[A-Z][A-Z0-9+-]*$|^\d{1,2}$/

function checkedHealthcheck(h: HealthcheckEdit): NonNullable<ContainerConfig['Healthcheck']> {
  const [kind, ...rest] = h.test
  const ok = (kind === 'NONE' && rest.length === 0) || (kind === 'CMD' && rest.length > 0) || (kind === 'CMD-SHELL' && rest.length === 1)
  if (!ok)
    throw new OcikitError('INVALID_ARGUMENT', `health check test ${JSON.stringify(h.test)} is not ["CMD", prog, ...], ["CMD-SHELL", command] or ["NONE"]`)
  const ns = (what: string, s: number | undefined) => {
    if (s === undefined) return undefined
    if (!Number.isFinite(s) || s < 0.001) throw new OcikitError('INVALID_ARGUMENT', `health check ${what} must be a positive duration, got ${s}`)
    return Math.round(s * 1e9)
  }
  if (h.retries !== undefined && (!Number.isInteger(h.retries) || h.retries < 0))
    throw new OcikitError('INVALID_ARGUMENT', `health check retries must be a whole number, got ${h.retries}`)
  const out: NonNullable<ContainerConfig['Healthcheck']> = { Test: h.test }
  const interval = ns('interval', h.intervalSeconds)
  const timeout = ns('timeout', h.timeoutSeconds)
  const start = ns('start period', h.startPeriodSeconds)
  if (interval !== undefined) out.Interval = interval
  if (timeout !== undefined) out.Timeout = timeout
  if (start !== undefined) out.StartPeriod = start
  if (h.retries !== undefined) out.Retries = h.retries
  return out
}

/** `KEY=VALUE` entries as a map; INVALID_ARGUMENT naming `what` and the entry for one without a key or `=`. */
export function parseKeyValues(entries: readonly string[], what: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const kv of entries) {
    const i = kv.indexOf('=')
    if (i <= 0) throw new OcikitError('INVALID_ARGUMENT', `${what} '${kv}' is not KEY=VALUE`)
    out[kv.slice(0, i)] = kv.slice(i + 1)
  }
  return out
}

/** The image with its runtime config edited (and an empty-layer history entry recording it). */
export async function editConfig(base: Image, edit: ConfigEdit, o: AppendOptions = {}): Promise<Image> {
  const config = await base.config()
  config.config = applyConfigEdit(config.config ?? {}, edit)
  const created = createdOf(o)
  config.created = created
  config.history = [...(config.history ?? []), { created, created_by: 'ocikit config', empty_layer: true, ...o.history }]
  const manifest = await base.manifest()
  return new AssembledImage(await base.mediaType(), config, await base.layers(), manifest.annotations)
}

/** A runtime config with `edit` applied (a new object; `old` is not changed). INVALID_ARGUMENT names a bad value. */
export function applyConfigEdit(old: ContainerConfig, edit: ConfigEdit): ContainerConfig {
  const c: ContainerConfig = structuredClone(old)
  if (edit.entrypoint !== undefined) c.Entrypoint = edit.entrypoint
  if (edit.cmd !== undefined) c.Cmd = edit.cmd
  if (edit.workingDir !== undefined) c.WorkingDir = edit.workingDir
  if (edit.user !== undefined) c.User = edit.user
  if (edit.env) {
    const env = [...(c.Env ?? [])]
    for (const kv of edit.env) {
      const eq = kv.indexOf('=')
      if (eq <= 0) throw new OcikitError('INVALID_ARGUMENT', `env '${kv}' is not KEY=VALUE`)
      const i = env.findIndex((e) => e.startsWith(`${kv.slice(0, eq)}=`))
      if (i >= 0) env[i] = kv
      else env.push(kv)
    }
    c.Env = env
  }
  if (edit.exposedPorts) {
    const ports = { ...(c.ExposedPorts ?? {}) }
    for (const p of edit.exposedPorts) {
      const n = Number(/^\d{1,5}/.exec(p)?.[0])
      if (!/^\d{1,5}(\/(tcp|udp|sctp))?$/.test(p) || n < 1 || n > 65535)
        throw new OcikitError('INVALID_ARGUMENT', `port '${p}' is not PORT[/tcp|udp|sctp] with PORT from 1 to 65535`)
      ports[p.includes('/') ? p : `${p}/tcp`] = {}
    }
    c.ExposedPorts = ports
  }
  if (edit.volumes) {
    const volumes = { ...(c.Volumes ?? {}) }
    for (const vol of edit.volumes) {
      if (!vol.startsWith('/') || vol.includes('\0')) throw new OcikitError('INVALID_ARGUMENT', `volume '${vol}' is not an absolute path`)
      volumes[vol] = {}
    }
    c.Volumes = volumes
  }
  if (edit.stopSignal !== undefined) {
    if (!SIGNAL.test(edit.stopSignal)) throw new OcikitError('INVALID_ARGUMENT', `stop signal '${edit.stopSignal}' is not a signal name (SIGTERM) or number`)
    c.StopSignal = edit.stopSignal
  }
  if (edit.healthcheck) c.Healthcheck = checkedHealthcheck(edit.healthcheck)
  if (edit.labels) c.Labels = { ...(c.Labels ?? {}), ...(isStringList(edit.labels) ? parseKeyValues(edit.labels, 'label') : edit.labels) }
  return c
}
