/**
 * The build file (`ocikit.yaml`, or JSON): the same settings as `ocikit build`'s flags, read,
 * checked (an unknown key or a value of the wrong kind is INVALID_ARGUMENT naming it) and
 * turned into a {@link BuildSpec}. Paths in it are relative to the file's directory.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import * as v from 'valibot'
import { parse as parseYaml } from 'yaml'
import { OcikitError } from '../errors.ts'
import { parseKeyValues } from '../image/mutate.ts'
import { parsePlatform } from '../image/platform.ts'
import type { FileSpec } from '../layer/source-files.ts'
import type { BuildSpec } from './build.ts'

const MAX_BUILD_FILE = 1 << 20

const str = v.string()
const strings = v.array(v.string())
const stringOrList = v.union([v.string(), strings])
const map = v.record(v.string(), v.union([v.string(), v.number(), v.boolean()]))
const kvs = v.union([strings, map])
const mode = v.union([v.pipe(v.string(), v.regex(/^0?[0-7]{1,4}$/, 'an octal mode such as "0755"')), v.number()])
const owner = { uid: v.optional(v.number()), gid: v.optional(v.number()) }
const fileSpec = v.union([
  v.string(),
  v.strictObject({ content: v.string(), mode: v.optional(mode), ...owner }),
  v.strictObject({ file: v.string(), mode: v.optional(mode), ...owner }),
  v.strictObject({ symlink: v.string(), ...owner }),
  v.strictObject({ directory: v.literal(true), mode: v.optional(mode), ...owner }),
])
const fileMap = v.record(v.string(), fileSpec)

const buildFileSchema = v.strictObject({
  context: v.optional(str),
  dest: v.optional(str),
  from: v.optional(str),
  to: v.optional(stringOrList),
  platform: v.optional(str),
  add: v.optional(v.array(v.union([str, v.strictObject({ src: str, dest: str })]))),
  files: v.optional(v.union([str, fileMap])),
  diff: v.optional(v.array(v.union([str, v.strictObject({ old: str, new: str, dest: v.optional(str) })]))),
  layers: v.optional(strings),
  env: v.optional(kvs),
  entrypoint: v.optional(v.nullable(stringOrList)),
  cmd: v.optional(v.nullable(stringOrList)),
  workdir: v.optional(str),
  user: v.optional(str),
  expose: v.optional(v.array(v.union([str, v.number()]))),
  labels: v.optional(kvs),
  annotations: v.optional(kvs),
  volumes: v.optional(strings),
  stopSignal: v.optional(str),
  healthcheck: v.optional(
    v.strictObject({
      test: stringOrList,
      interval: v.optional(v.number()),
      timeout: v.optional(v.number()),
      startPeriod: v.optional(v.number()),
      retries: v.optional(v.number()),
    }),
  ),
  chown: v.optional(str),
  omitDev: v.optional(v.boolean()),
  allowForeignNative: v.optional(v.boolean()),
  timestamp: v.optional(v.union([str, v.number()])),
  compression: v.optional(v.picklist(['gzip', 'zstd', 'none'])),
  level: v.optional(v.number()),
  format: v.optional(v.picklist(['oci', 'docker'])),
  ignoreFile: v.optional(v.union([str, v.literal(false)])),
  sourceMetadata: v.optional(v.boolean()),
})

/** A build file's settings as written. */
export type BuildFile = v.InferOutput<typeof buildFileSchema>
/** One path of a file map as a build file or `--files` map gives it. */
export type FileMapInput = v.InferOutput<typeof fileSpec>

function modeOf(m: string | number | undefined): number | undefined {
  return typeof m === 'string' ? Number.parseInt(m, 8) : m
}

/** `KEY=VALUE` entries from a list or a map. */
export function keyValues(x: readonly string[] | Record<string, string | number | boolean> | undefined): string[] | undefined {
  if (x === undefined) return undefined
  return Array.isArray(x) ? [...x] : Object.entries(x).map(([k, val]) => `${k}=${val}`)
}

/** `UID:GID` (numeric) parsed; INVALID_ARGUMENT otherwise. */
export function parseOwner(s: string, what = '--chown'): { uid: number; gid: number } {
  const m = /^(\d+):(\d+)$/.exec(s)
  if (!m) throw new OcikitError('INVALID_ARGUMENT', `${what} takes numeric UID:GID, got '${s}'`)
  return { uid: Number(m[1]), gid: Number(m[2]) }
}

/** `SRC:DEST` split at the last ':' that is followed by '/' (so `C:\x` style paths are not split). */
export function splitAdd(s: string, what = '--add'): { src: string; dest: string } {
  const i = s.lastIndexOf(':/')
  if (i <= 0) throw new OcikitError('INVALID_ARGUMENT', `${what} takes SRC:DEST with DEST an absolute image path (e.g. ./conf:/etc/app), got '${s}'`)
  return { src: s.slice(0, i), dest: s.slice(i + 1) }
}

/** `OLD:NEW[:DEST]`. */
export function splitDiff(s: string, what = '--diff'): { old: string; new: string; dest?: string } {
  const parts = s.split(':')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === ''))
    throw new OcikitError('INVALID_ARGUMENT', `${what} takes OLD:NEW[:DEST] (two directories), got '${s}'`)
  const [oldDir, newDir, dest] = parts as [string, string, string | undefined]
  return { old: oldDir, new: newDir, ...(dest ? { dest } : {}) }
}

/** A file map as given (inline or local files, octal or numeric modes), its local paths resolved against `base`. */
export function fileMapOf(input: Record<string, FileMapInput>, base: string): Record<string, FileSpec> {
  const out: Record<string, FileSpec> = {}
  for (const [at, spec] of Object.entries(input)) {
    if (typeof spec === 'string') out[at] = spec
    else if ('file' in spec) out[at] = { ...spec, file: path.resolve(base, spec.file), mode: modeOf(spec.mode) }
    else if ('content' in spec || 'directory' in spec) out[at] = { ...spec, mode: modeOf(spec.mode) } as FileSpec
    else out[at] = spec
  }
  return out
}

/** Reads a JSON file map (`--files MAP.json`): image path → inline content or `{file|content|symlink|directory, mode, uid, gid}`. */
export function readFileMap(file: string): Record<string, FileSpec> {
  const parsed = parseDocument(file, 'file map')
  const r = v.safeParse(fileMap, parsed)
  if (!r.success) throw new OcikitError('INVALID_ARGUMENT', `file map ${file}: ${issues(r.issues)}`)
  return fileMapOf(r.output, path.dirname(path.resolve(file)))
}

function issues(list: readonly v.BaseIssue<unknown>[]): string {
  return list
    .slice(0, 3)
    .map((i) => {
      const at = v.getDotPath(i)
      return at ? `${at}: ${i.message}` : i.message
    })
    .join('; ')
}

function parseDocument(file: string, what: string): unknown {
  let text: string
  try {
    const b = readFileSync(file)
    if (b.length > MAX_BUILD_FILE) throw new OcikitError('TOO_LARGE', `${what} ${file} is over ${MAX_BUILD_FILE} bytes`)
    text = b.toString('utf8')
  } catch (e) {
    if (e instanceof OcikitError) throw e
    throw new OcikitError('INVALID_ARGUMENT', `cannot read ${what} ${file}: ${(e as Error).message}`, { cause: e })
  }
  try {
    return /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 })
  } catch (e) {
    throw new OcikitError('INVALID_ARGUMENT', `${what} ${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(e as Error).message}`, { cause: e })
  }
}

function argv(x: string | string[] | null | undefined): string[] | null | undefined {
  return typeof x === 'string' ? [x] : x
}

/** The build a file describes (YAML, or JSON for a `.json` name). */
export function readBuildFile(file: string): BuildSpec {
  const parsed = parseDocument(file, 'build file')
  const r = v.safeParse(buildFileSchema, parsed ?? {})
  if (!r.success) throw new OcikitError('INVALID_ARGUMENT', `build file ${file}: ${issues(r.issues)}`)
  const f = r.output
  const base = path.dirname(path.resolve(file))
  const at = (p: string) => path.resolve(base, p)
  const localTo = (t: string) => t.replace(/^(oci|oci-archive|docker-archive|bfc):(?!\/)/, (m) => `${m}${base}/`)
  return {
    context: f.context === undefined ? undefined : at(f.context),
    dest: f.dest,
    from: f.from,
    to: f.to === undefined ? undefined : (typeof f.to === 'string' ? [f.to] : f.to).map(localTo),
    platform: f.platform === undefined ? undefined : f.platform === 'all' ? 'all' : parsePlatform(f.platform),
    add: f.add?.map((a) => {
      const x = typeof a === 'string' ? splitAdd(a, 'add') : a
      return { src: at(x.src), dest: x.dest }
    }),
    files: f.files === undefined ? undefined : typeof f.files === 'string' ? readFileMap(at(f.files)) : fileMapOf(f.files, base),
    diff: f.diff?.map((d) => {
      const x = typeof d === 'string' ? splitDiff(d, 'diff') : d
      return { old: at(x.old), new: at(x.new), dest: x.dest }
    }),
    layers: f.layers?.map(at),
    config: {
      env: keyValues(f.env),
      entrypoint: argv(f.entrypoint),
      cmd: argv(f.cmd),
      workingDir: f.workdir,
      user: f.user,
      exposedPorts: f.expose?.map(String),
      labels: keyValues(f.labels),
      volumes: f.volumes,
      stopSignal: f.stopSignal,
      healthcheck: f.healthcheck && {
        test: typeof f.healthcheck.test === 'string' ? ['CMD-SHELL', f.healthcheck.test] : f.healthcheck.test,
        intervalSeconds: f.healthcheck.interval,
        timeoutSeconds: f.healthcheck.timeout,
        startPeriodSeconds: f.healthcheck.startPeriod,
        retries: f.healthcheck.retries,
      },
    },
    annotations: f.annotations === undefined ? undefined : parseKeyValues(keyValues(f.annotations) ?? [], 'annotation'),
    chown: f.chown === undefined ? undefined : parseOwner(f.chown, 'chown'),
    omitDev: f.omitDev,
    allowForeignNative: f.allowForeignNative,
    timestamp: f.timestamp,
    compression: f.compression,
    level: f.level,
    format: f.format,
    ignoreFile: typeof f.ignoreFile === 'string' ? at(f.ignoreFile) : f.ignoreFile,
    sourceMetadata: f.sourceMetadata,
  }
}
