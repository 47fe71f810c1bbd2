/**
 * `build()`: an image from a base (or scratch) and content — a directory, a Node.js project in
 * layers, added files and directories, a file map, tree diffs, prebuilt layer files — with its
 * config set, for one platform or every platform of the base, written to one or more stores.
 * Reproducible (entry times, `created` and history from one timestamp; entries sorted; JSON
 * canonical) and incremental (the layer cache returns a layer whose inputs are unchanged).
 */
import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { writeTo } from '../copy.ts'
import type { Digest } from '../digest.ts'
import { isIndexType, MediaType } from '../documents/media-types.ts'
import type { Descriptor, ImageConfig, Platform } from '../documents/schemas.ts'
import { isoTime, resolveTimestamp, type Timestamp } from '../documents/time.ts'
import { NotSupportedError, OcikitError } from '../errors.ts'
import { assembleIndex, type IndexChild } from '../image/derived-index.ts'
import { applyConfigEdit, assembleImage, type ConfigEdit, layersFor, parseKeyValues, scratch } from '../image/mutate.ts'
import { currentPlatform, formatPlatform, imageForPlatform, platformMatches, selectPlatform } from '../image/platform.ts'
import type { Image, ImageOrIndex, Layer, Progress } from '../image/types.ts'
import type { LayerEntry } from '../layer/entry.ts'
import { layerFromTarFile } from '../layer/file-layer.ts'
import { diffEntries } from '../layer/source-diff.ts'
import { directoryEntries } from '../layer/source-directory.ts'
import { type FileSpec, fileMapEntries } from '../layer/source-files.ts'
import { parseName } from '../name/parse.ts'
import type { BfcOptions } from '../stores/bfc/store.ts'
import { storeFor } from '../stores/open.ts'
import type { RegistryOptions } from '../stores/registry/transport.ts'
import type { BlobEvent, ImageSink } from '../stores/types.ts'
import { LayerCache } from './cache.ts'
import { BuildLayer, type CacheHit, type LayerOrigin } from './cached-layer.ts'
import { EarlyUploadSink } from './early-upload.ts'
import { gitInfo, OCI, sourceLabels } from './metadata.ts'
import { type NodeProject, nativePackages, readNodeProject } from './node-project.ts'

/** What to build. Paths are relative to the working directory. */
export interface BuildSpec {
  /** The directory whose content goes to `dest`; a Node.js project when it holds a `package.json`. */
  context?: string | undefined
  /** Where the context goes in the image, and the working directory (default `/app`). */
  dest?: string | undefined
  /** The base image name, or 'scratch' / undefined for none. */
  from?: string | undefined
  /** Where to write the result (any store name); at least one for {@link build}. */
  to?: readonly string[] | undefined
  /** The platform to build (from a base index), or 'all' for every platform of the base. Default: this machine's. */
  platform?: Platform | 'all' | undefined
  /** More content: a file or directory `src` placed at `dest` (a `dest` ending in '/' takes the file's name). */
  add?: readonly { src: string; dest: string }[] | undefined
  /** A file-map layer: image path → content, a local file, a symlink or a directory, with mode and owner. */
  files?: Readonly<Record<string, FileSpec>> | undefined
  /** Tree-difference layers: what turns `old` into `new` (whiteouts for deletions), placed at `dest` (default `/`). */
  diff?: readonly { old: string; new: string; dest?: string | undefined }[] | undefined
  /** Prebuilt layer files (tar, gzip or zstd), added as they are. */
  layers?: readonly string[] | undefined
  /** Runtime config changes (over the base's and the Node.js defaults). */
  config?: ConfigEdit | undefined
  /** Annotations of the manifest (and the index of a multi-platform result). */
  annotations?: Readonly<Record<string, string>> | undefined
  /** Owner of the added files and of the directories the layers create (default 0:0). */
  chown?: { uid: number; gid: number } | undefined
  /** Read the context as a Node.js project (default: when it holds a package.json). */
  node?: boolean | undefined
  /** Leave out the packages npm's lockfile marks dev-only. */
  omitDev?: boolean | undefined
  /** A native package for another platform is a notice, not NATIVE_CODE. */
  allowForeignNative?: boolean | undefined
  /**
   * The time of the build: entry times, `created`, history. Default: `$SOURCE_DATE_EPOCH`, else
   * 1970-01-01 for entries and, for `created`, the last commit's time when the context is in a
   * git work tree (so that a new commit does not change the layers that did not change).
   */
  timestamp?: Timestamp | undefined
  compression?: 'gzip' | 'zstd' | 'none' | undefined
  level?: number | undefined
  /** The manifest format: default the base's (OCI for scratch). */
  format?: 'oci' | 'docker' | undefined
  /** Ignore rules for the application layer: a file, or false for none (default: the context's .ociignore, else .dockerignore). */
  ignoreFile?: string | false | undefined
  /** Add the labels and annotations from package.json and git (default true). */
  sourceMetadata?: boolean | undefined
}

/** How to build. */
export interface BuildOptions {
  /** The layer cache, or false for none (default: the cache in {@link defaultCacheDir}). */
  cache?: LayerCache | false | undefined
  registry?: RegistryOptions | undefined
  /** The key of encrypted `bfc:` bases and destinations, and whether new ones are encrypted or compressed. */
  bfc?: BfcOptions | undefined
  signal?: AbortSignal | undefined
  onNotice?: ((message: string) => void) | undefined
  onProgress?: ((p: Progress) => void) | undefined
  onBlob?: ((b: BlobEvent) => void) | undefined
  /** Blocks compressed at once (default: cores + 1). */
  concurrency?: number | undefined
  /**
   * Called for each layer encoded now (not reused) with a copy of its blob's bytes as they are
   * made ({@link BuildLayerOptions.onEncoding}); {@link build} uses it to upload while compressing.
   */
  onLayerEncoding?: ((bytes: Readable) => void) | undefined
}

/** One added layer, as the build had it. */
export interface BuiltLayer {
  label: string
  digest: Digest
  diffId: Digest
  size: number
  uncompressedSize: number
  /** 'cache': reused from the layer cache; 'built': encoded by this build; 'file': a prebuilt layer file. */
  origin: LayerOrigin | 'file'
  /** For a reuse: found by the files' metadata (none read) or by their content. */
  hit?: CacheHit | undefined
}

/** What {@link buildImage} made: the lazy result, before any store writes it. */
export interface BuildPlan {
  image: ImageOrIndex
  /** The added layers, bottom to top, shared by every platform. */
  layers: readonly Layer[]
  platforms: readonly Platform[]
  /** The command the image runs with (entrypoint + cmd), for the record. */
  command: readonly string[]
  /** The Node.js project, when the context is one. */
  project?: NodeProject | undefined
  /** Reports on the added layers (after the image has been written or its digest computed). */
  report(): Promise<BuiltLayer[]>
}

/** What {@link build} did. */
export interface BuildResult {
  digest: Digest
  mediaType: string
  /** One per `to`, in order. */
  written: { to: string; descriptor: Descriptor }[]
  platforms: Platform[]
  command: string[]
  layers: BuiltLayer[]
  /** Layers reused from the cache and layers encoded. */
  cache: { reused: number; built: number }
  /** Blobs sent to the destinations, and blobs they had already (or mounted), summed over every `to`. */
  blobs: { written: number; existed: number; mounted: number }
}

const SOURCE_DATE_EPOCH = () => process.env.SOURCE_DATE_EPOCH !== undefined && process.env.SOURCE_DATE_EPOCH !== ''

function bad(message: string): OcikitError {
  return new OcikitError('INVALID_ARGUMENT', message)
}

function requireDir(p: string, what: string): string {
  const abs = path.resolve(p)
  let st: import('node:fs').Stats
  try {
    st = statSync(abs)
  } catch {
    throw bad(`${what} ${p} does not exist`)
  }
  if (!st.isDirectory()) throw bad(`${what} ${p} is not a directory`)
  return abs
}

/** The platforms to build and the base image of each. */
async function baseImages(spec: BuildSpec, o: BuildOptions): Promise<{ base: Image; platform: Platform }[]> {
  const want = spec.platform
  if (!spec.from || spec.from === 'scratch') {
    if (want === 'all')
      throw bad('--platform all needs a multi-platform base image; scratch has no platforms of its own: name one (e.g. --platform linux/arm64)')
    const p = want ?? currentPlatform()
    return [{ base: scratch(p), platform: p }]
  }
  const x: ImageOrIndex = await storeFor(parseName(spec.from), { registry: o.registry, bfc: o.bfc }).read({ signal: o.signal })
  if (x.kind === 'image') {
    const img = want && want !== 'all' ? await imageForPlatform(x, want, spec.from) : x
    const c = await img.config()
    return [{ base: img, platform: { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) } }]
  }
  if (want !== 'all') {
    const p = want ?? currentPlatform()
    const img = await selectPlatform(x, p, spec.from)
    const c = await img.config()
    return [{ base: img, platform: { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) } }]
  }
  const out: { base: Image; platform: Platform }[] = []
  for (const d of (await x.manifest()).manifests) {
    if (!d.platform || d.platform.os === 'unknown' || d.platform.architecture === 'unknown') continue // attestations
    if (isIndexType(d.mediaType)) continue
    out.push({ base: await x.image(d.digest), platform: d.platform })
  }
  if (out.length === 0) throw new OcikitError('PLATFORM_NOT_FOUND', `${spec.from}: its index lists no platform images`)
  return out
}

/** The entries of `src` (a file or directory) placed at `dest`. */
function addEntries(src: string, dest: string, owner: { uid: number; gid: number }): () => AsyncIterable<LayerEntry> | Iterable<LayerEntry> {
  let st: import('node:fs').Stats
  try {
    st = statSync(src)
  } catch {
    throw bad(`--add ${src}:${dest}: ${src} does not exist`)
  }
  if (!dest.startsWith('/')) throw bad(`--add ${src}:${dest}: the destination must be an absolute path in the image`)
  if (st.isDirectory()) return () => directoryEntries(src, { prefix: dest, ...owner, ignoreFile: false })
  if (!st.isFile()) throw bad(`--add ${src}:${dest}: ${src} is neither a file nor a directory`)
  const at = dest.endsWith('/') ? `${dest}${path.basename(src)}` : dest
  const entries = fileMapEntries({ [at]: { file: path.resolve(src) } }, owner)
  return () => entries
}

function stripOciLabels(labels: Record<string, string> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(labels ?? {})) if (!k.startsWith('org.opencontainers.image.')) out[k] = v
  return out
}

/**
 * The build, as a lazy image (or index) and its layers: everything checked and the base read,
 * nothing encoded or written until a store writes it (or its digest is asked for).
 */
export async function buildImage(spec: BuildSpec, o: BuildOptions = {}): Promise<BuildPlan> {
  const dest = spec.dest ?? '/app'
  if (!dest.startsWith('/')) throw bad(`--dest ${dest}: give an absolute path in the image`)
  const context = spec.context === undefined ? undefined : requireDir(spec.context, 'context')
  if (!context && !spec.add?.length && !spec.files && !spec.diff?.length && !spec.layers?.length && !spec.from) {
    throw bad('nothing to build: give a context directory, or content (--add, --files, --diff, --layer), or a base (--from)')
  }
  for (const t of spec.to ?? []) parseName(t) // a bad destination fails before any work
  const owner = spec.chown ?? { uid: 0, gid: 0 }
  const entryTime = resolveTimestamp(spec.timestamp)
  const git = context ? gitInfo(context) : undefined
  const createdTime = spec.timestamp !== undefined || SOURCE_DATE_EPOCH() ? entryTime : (git?.commitTime ?? entryTime)
  const created = isoTime(createdTime)
  const cache = o.cache === false ? undefined : (o.cache ?? new LayerCache())
  const encode = {
    compression: spec.compression,
    level: spec.level,
    timestamp: entryTime,
    concurrency: o.concurrency,
    signal: o.signal,
    cache,
    onEncoding: o.onLayerEncoding,
  }

  // The layers, bottom to top, and a label for each.
  const layers: (BuildLayer | { label: string; layer: Layer })[] = []
  const isNode = context !== undefined && (spec.node ?? existsSync(path.join(context, 'package.json')))
  let project: NodeProject | undefined
  if (spec.node && context && !existsSync(path.join(context, 'package.json'))) throw bad(`${spec.context} has no package.json: it is not a Node.js project`)
  if (spec.omitDev && !isNode) throw bad('--omit-dev applies to a Node.js project (a context with a package.json)')
  // What must never go into the application layer: git's own files, and destinations inside the context.
  const ignore = ['.git']
  if (context) {
    for (const t of spec.to ?? []) {
      const n = parseName(t)
      if (n.transport === 'registry') continue
      const file = n.path
      const rel = path.relative(context, path.resolve(file))
      if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) ignore.push(rel.split(path.sep).join('/'))
    }
  }
  if (context && isNode) {
    project = readNodeProject(context, { omitDev: spec.omitDev })
    const p = project
    if (existsSync(path.join(context, 'node_modules'))) {
      layers.push(
        new BuildLayer(() => directoryEntries(context, { prefix: dest, ...owner, ignoreFile: false, select: p.dependencies }), {
          ...encode,
          label: 'dependencies',
        }),
      )
    } else if (Object.keys(p.packageJson.dependencies ?? {}).length > 0)
      o.onNotice?.(`${spec.context} has no node_modules: the image holds no dependencies (install them first: npm ci)`)
    if (p.localDirs.length > 0) {
      layers.push(
        new BuildLayer(() => directoryEntries(context, { prefix: dest, ...owner, ignoreFile: false, select: p.localPackages }), {
          ...encode,
          label: 'local packages',
        }),
      )
    }
    layers.push(
      new BuildLayer(() => directoryEntries(context, { prefix: dest, ...owner, ignoreFile: spec.ignoreFile, ignore, select: p.application }), {
        ...encode,
        label: 'application',
      }),
    )
  } else if (context) {
    layers.push(
      new BuildLayer(() => directoryEntries(context, { prefix: dest, ...owner, ignoreFile: spec.ignoreFile, ignore }), { ...encode, label: 'context' }),
    )
  }
  for (const a of spec.add ?? []) layers.push(new BuildLayer(addEntries(a.src, a.dest, owner), { ...encode, label: `add ${a.src}` }))
  if (spec.files) {
    const entries = fileMapEntries(spec.files, owner)
    layers.push(new BuildLayer(() => entries, { ...encode, label: 'files' }))
  }
  for (const d of spec.diff ?? []) {
    const oldDir = requireDir(d.old, '--diff old tree')
    const newDir = requireDir(d.new, '--diff new tree')
    layers.push(new BuildLayer(() => diffEntries(oldDir, newDir, { prefix: d.dest, ...owner }), { ...encode, label: `diff ${d.old} ${d.new}` }))
  }
  for (const f of spec.layers ?? []) layers.push({ label: `layer ${f}`, layer: await layerFromTarFile(f, { signal: o.signal }) })
  const added = layers.map((l) => (l instanceof BuildLayer ? l : l.layer))

  // The config edits, checked before the base is read.
  const edit: ConfigEdit = { ...spec.config }
  const userSetCommand = edit.cmd !== undefined || edit.entrypoint !== undefined
  if (edit.entrypoint !== undefined && edit.cmd === undefined) edit.cmd = null // as docker: a new entrypoint drops the base's command
  if (project && !userSetCommand) {
    if (project.start) edit.cmd = ['node', path.posix.join(dest, project.start)]
    else o.onNotice?.(`${spec.context}: package.json names no main file and no 'node FILE' start script; the base's command stays (set one with --cmd)`)
  }
  if (edit.workingDir === undefined && context) edit.workingDir = dest
  applyConfigEdit({}, edit) // INVALID_ARGUMENT for a bad value, before any work
  const userLabels =
    edit.labels === undefined ? {} : Array.isArray(edit.labels) ? parseKeyValues(edit.labels as string[], 'label') : (edit.labels as Record<string, string>)

  const targets = await baseImages(spec, o)
  const here = currentPlatform()
  if (project) {
    const foreign = targets.filter((t) => !platformMatches(t.platform, here) && !platformMatches(here, t.platform))
    if (foreign.length > 0) {
      const native = nativePackages(project)
      if (native.length > 0) {
        const msg = `package(s) with native code built for ${formatPlatform(here)} would go into an image for ${foreign.map((t) => formatPlatform(t.platform)).join(', ')}: ${native.join(', ')}`
        if (!spec.allowForeignNative) {
          throw new OcikitError(
            'NATIVE_CODE',
            `${msg}; install them for that platform (npm ci --cpu=… --os=…), or pass --allow-foreign-native if they hold prebuilt binaries for it`,
          )
        }
        o.onNotice?.(msg)
      }
    }
  }

  const meta = spec.sourceMetadata === false ? {} : sourceLabels(project?.packageJson, git)
  meta[OCI.created] = created
  const children: IndexChild[] = []
  let command: string[] = []
  for (const t of targets) {
    const config: ImageConfig = await t.base.config()
    const baseName = spec.from && spec.from !== 'scratch' ? spec.from : undefined
    const baseMeta: Record<string, string> = baseName ? { [OCI.baseName]: baseName, [OCI.baseDigest]: await t.base.digest() } : {}
    const env = edit.env ? [...edit.env] : []
    if (project && ![...(config.config?.Env ?? []), ...env].some((e) => e.startsWith('NODE_ENV='))) env.push('NODE_ENV=production')
    const c = applyConfigEdit(config.config ?? {}, { ...edit, env, labels: undefined })
    c.Labels = { ...stripOciLabels(c.Labels), ...meta, ...baseMeta, ...userLabels }
    config.config = c
    config.created = created
    config.history = [
      ...(config.history ?? []),
      ...layers.map((l) => ({ created, created_by: `ocikit build: ${l.label}` })),
      ...(layers.length === 0 ? [{ created, created_by: 'ocikit build: config', empty_layer: true }] : []),
    ]
    const baseType = await t.base.mediaType()
    const mediaType = spec.format === 'docker' ? MediaType.dockerManifest : spec.format === 'oci' ? MediaType.ociManifest : baseType
    const baseLayers = await t.base.layers()
    if (spec.format && mediaType !== baseType && baseLayers.length > 0) {
      throw new NotSupportedError(`--format ${spec.format}: the base ${spec.from} is ${baseType}; convert it first (ocikit copy --format ${spec.format})`)
    }
    const annotations = { ...meta, ...baseMeta, ...spec.annotations }
    const image = assembleImage(
      mediaType,
      config,
      [...baseLayers, ...layersFor(mediaType, added)],
      mediaType === MediaType.dockerManifest ? undefined : annotations,
    )
    children.push({ image, platform: t.platform })
    command = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])]
  }
  let image: ImageOrIndex = children[0]?.image as Image
  if (spec.platform === 'all') {
    const docker = (await image.mediaType()) === MediaType.dockerManifest
    image = await assembleIndex(children, {
      mediaType: docker ? MediaType.dockerManifestList : MediaType.ociIndex,
      annotations: docker ? undefined : { ...meta, ...(spec.from ? { [OCI.baseName]: spec.from } : {}), ...spec.annotations },
    })
  }
  return {
    image,
    layers: added,
    platforms: targets.map((t) => t.platform),
    command,
    project,
    report: async () =>
      Promise.all(
        layers.map(async (l): Promise<BuiltLayer> => {
          if (l instanceof BuildLayer) return l.report()
          const x = l.layer
          return { label: l.label, digest: await x.digest(), diffId: await x.diffId(), size: await x.size(), uncompressedSize: -1, origin: 'file' }
        }),
      ),
  }
}

/**
 * Builds as `spec` says and writes the result to every `spec.to` (at least one; a name that does
 * not parse is INVALID_NAME before any work). The layers are made once, whatever the number
 * of platforms and destinations. The cache is pruned to its bound afterwards.
 */
export async function build(spec: BuildSpec, o: BuildOptions = {}): Promise<BuildResult> {
  if (!spec.to || spec.to.length === 0) throw bad('say where the image goes: --to NAME (e.g. oci:./out:dev or registry.example.com/team/app:1.0)')
  const cache = o.cache === false ? undefined : (o.cache ?? new LayerCache())
  const sinks: ImageSink[] = []
  for (const to of spec.to) sinks.push(await storeFor(parseName(to), { registry: o.registry, bfc: o.bfc }).sink())
  // The first destination that takes streams (a registry) gets each new layer while it is compressed.
  const early = sinks.findIndex((s) => s.putStream)
  if (early >= 0) {
    sinks[early] = EarlyUploadSink.over(sinks[early] as ImageSink, {
      signal: o.signal,
      onFailure: (e) => o.onNotice?.(`${sinks[early]?.name}: uploading a layer while it was compressed failed (${e.message}); it is sent again`),
    }) as EarlyUploadSink
  }
  const taker = early >= 0 ? (sinks[early] as EarlyUploadSink) : undefined
  const plan = await buildImage(spec, { ...o, cache: cache ?? false, onLayerEncoding: taker && ((bytes) => taker.take(bytes)) })
  const written: BuildResult['written'] = []
  const blobs = { written: 0, existed: 0, mounted: 0 }
  const onBlob = (b: BlobEvent) => {
    if (b.mounted) blobs.mounted++
    if (b.existed) blobs.existed++
    else blobs.written++
    o.onBlob?.(b)
  }
  const mediaType = await plan.image.mediaType()
  for (const [i, to] of spec.to.entries()) {
    const t = parseName(to).transport
    if ((t === 'oci' || t === 'oci-archive') && (mediaType === MediaType.dockerManifest || mediaType === MediaType.dockerManifestList)) {
      o.onNotice?.(`${to}: the image is in Docker's manifest format, which skopeo and podman do not read from an OCI layout (--format oci makes it OCI)`)
    }
    written.push({ to, descriptor: await writeTo(sinks[i] as ImageSink, plan.image, { signal: o.signal, onProgress: o.onProgress, onBlob }) })
  }
  const layers = await plan.report()
  if (cache) await cache.prune().catch((e) => o.onNotice?.(`could not prune the layer cache ${cache.dir}: ${(e as Error).message}`))
  return {
    digest: await plan.image.digest(),
    mediaType,
    written,
    platforms: [...plan.platforms],
    command: [...plan.command],
    layers,
    cache: { reused: layers.filter((l) => l.origin === 'cache').length, built: layers.filter((l) => l.origin === 'built').length },
    blobs,
  }
}
