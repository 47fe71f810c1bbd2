import { writeFileSync } from 'node:fs'
import { type Command, Option } from 'commander'
import { type BuildSpec, build } from '../../build/build.ts'
import { keyValues, parseOwner, readBuildFile, readFileMap, splitAdd, splitDiff } from '../../build/build-file.ts'
import { LayerCache } from '../../build/cache.ts'
import type { Platform } from '../../documents/schemas.ts'
import { OcikitError } from '../../errors.ts'
import { parsePlatform } from '../../image/platform.ts'
import { argvOption, collect, jsonOption, parseSize, storeOptions } from '../options.ts'
import { humanSize, printable, printJson, printNotice } from '../output.ts'
import { transferDisplay } from '../progress.ts'

interface BuildCli {
  encrypt?: boolean
  compress?: boolean
  file?: string
  from?: string
  to?: string[]
  dest?: string
  add?: string[]
  files?: string
  diff?: string[]
  layer?: string[]
  platform?: string
  env?: string[]
  entrypoint?: string[]
  cmd?: string[]
  workdir?: string
  user?: string
  expose?: string[]
  label?: string[]
  annotation?: string[]
  volume?: string[]
  stopSignal?: string
  healthcheck?: string[]
  healthcheckInterval?: number
  healthcheckTimeout?: number
  healthcheckStartPeriod?: number
  healthcheckRetries?: number
  chown?: string
  omitDev?: boolean
  allowForeignNative?: boolean
  timestamp?: string
  compression?: 'gzip' | 'zstd' | 'none'
  level?: number
  threads?: number
  format?: 'oci' | 'docker'
  cache: boolean
  cacheDir?: string
  ignoreFile?: string | false
  sourceMetadata: boolean
  digestFile?: string
  json?: boolean
  quiet?: boolean
}

const seconds = (flag: string) => (v: string) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v)
  if (!m) throw new OcikitError('INVALID_ARGUMENT', `${flag} takes a duration such as 30s, 1m or 500ms, got '${v}'`)
  const n = Number(m[1])
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : m[2] === 'h' ? n * 3600 : n
}

/** The spec the flags say, over the build file's when there is one (lists add to it, single values replace it). */
function specOf(context: string | undefined, o: BuildCli): BuildSpec {
  const f: BuildSpec = o.file ? readBuildFile(o.file) : {}
  const cfg = f.config ?? {}
  const platform: Platform | 'all' | undefined = o.platform === undefined ? f.platform : o.platform === 'all' ? 'all' : parsePlatform(o.platform)
  const hc = o.healthcheck
  return {
    ...f,
    context: context ?? f.context,
    dest: o.dest ?? f.dest,
    from: o.from ?? f.from,
    to: o.to ?? f.to,
    platform,
    add: [...(f.add ?? []), ...(o.add ?? []).map((a) => splitAdd(a))],
    files: o.files ? readFileMap(o.files) : f.files,
    diff: [...(f.diff ?? []), ...(o.diff ?? []).map((d) => splitDiff(d))],
    layers: [...(f.layers ?? []), ...(o.layer ?? [])],
    config: {
      ...cfg,
      env: o.env ? [...(cfg.env ?? []), ...o.env] : cfg.env,
      entrypoint: o.entrypoint ?? cfg.entrypoint,
      cmd: o.cmd ?? cfg.cmd,
      workingDir: o.workdir ?? cfg.workingDir,
      user: o.user ?? cfg.user,
      exposedPorts: o.expose ? [...(cfg.exposedPorts ?? []), ...o.expose] : cfg.exposedPorts,
      labels: o.label ? [...(keyValues(cfg.labels as string[] | undefined) ?? []), ...o.label] : cfg.labels,
      volumes: o.volume ? [...(cfg.volumes ?? []), ...o.volume] : cfg.volumes,
      stopSignal: o.stopSignal ?? cfg.stopSignal,
      healthcheck: hc
        ? {
            test: hc.length === 1 && hc[0] === 'none' ? ['NONE'] : hc.length === 1 ? ['CMD-SHELL', hc[0] as string] : ['CMD', ...hc],
            intervalSeconds: o.healthcheckInterval,
            timeoutSeconds: o.healthcheckTimeout,
            startPeriodSeconds: o.healthcheckStartPeriod,
            retries: o.healthcheckRetries,
          }
        : cfg.healthcheck,
    },
    annotations: o.annotation
      ? {
          ...f.annotations,
          ...Object.fromEntries(o.annotation.map((kv) => (kv.includes('=') ? [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] : [kv, '']))),
        }
      : f.annotations,
    chown: o.chown ? parseOwner(o.chown) : f.chown,
    omitDev: o.omitDev ?? f.omitDev,
    allowForeignNative: o.allowForeignNative ?? f.allowForeignNative,
    timestamp: o.timestamp ?? f.timestamp,
    compression: o.compression ?? f.compression,
    level: o.level ?? f.level,
    format: o.format ?? f.format,
    ignoreFile: o.ignoreFile ?? f.ignoreFile,
    sourceMetadata: o.sourceMetadata === false ? false : f.sourceMetadata,
  }
}

export function register(program: Command): void {
  program
    .command('build')
    .description(
      'build an image from a directory or a Node.js project on a base image (or scratch), reproducibly and incrementally, and write it to one or more stores',
    )
    .argument('[context]', 'directory whose content goes to --dest; a Node.js project when it holds a package.json')
    .option('-f, --file <file>', 'read the build from a YAML (or .json) file; flags given too add to its lists and replace its values')
    .option('--from <image>', 'base image, any store name (default: scratch, an empty image)')
    .addOption(new Option('--to <name>', 'where to write the image, any store name (repeatable: built once, written to each)').argParser(collect))
    .option('--dest <path>', 'where the context goes in the image; also the working directory (default: /app)')
    .addOption(new Option('--add <src:dest>', 'add a file or directory at an image path, as its own layer (repeatable)').argParser(collect))
    .option('--files <map.json>', 'a file-map layer: image path → inline content or {"file"|"content"|"symlink"|"directory", "mode", "uid", "gid"}')
    .addOption(
      new Option('--diff <old:new[:dest]>', 'a layer that turns directory OLD into NEW (whiteouts for deletions), at DEST (default /) (repeatable)').argParser(
        collect,
      ),
    )
    .addOption(new Option('--layer <file>', 'a prebuilt layer file (tar, tar.gz or tar.zst), its digests computed and checked (repeatable)').argParser(collect))
    .option(
      '--platform <os/arch[/variant]|all>',
      "platform to build, picked from a multi-platform base; 'all' builds every platform of the base under a new index (default: this machine's)",
    )
    .addOption(
      new Option('--env <KEY=VALUE>', 'environment variable (repeatable); NODE_ENV=production is set for a Node.js project unless given').argParser(collect),
    )
    .addOption(argvOption('--entrypoint <argv>', 'entrypoint: one word, or a JSON array (then the base command is dropped unless --cmd is given)'))
    .addOption(argvOption('--cmd <argv>', 'command: one word, or a JSON array (default for a Node.js project: ["node", MAIN] from package.json)'))
    .option('--workdir <dir>', 'working directory (default: --dest)')
    .option('--user <user>', "user[:group] the container runs as (default: the base's)")
    .addOption(new Option('--expose <port>', 'exposed port: PORT or PORT/tcp|udp|sctp (repeatable)').argParser(collect))
    .addOption(new Option('--label <KEY=VALUE>', 'config label (repeatable)').argParser(collect))
    .addOption(new Option('--annotation <KEY=VALUE>', 'manifest annotation (repeatable)').argParser(collect))
    .addOption(new Option('--volume <path>', 'mark an absolute path as a volume (repeatable)').argParser(collect))
    .option('--stop-signal <signal>', 'signal that stops the container, e.g. SIGTERM')
    .addOption(
      new Option('--healthcheck <cmd>', "health check: one shell command, or repeat for CMD and its arguments; 'none' turns off the base's").argParser(collect),
    )
    .addOption(new Option('--healthcheck-interval <duration>', 'time between checks, e.g. 30s').argParser(seconds('--healthcheck-interval')))
    .addOption(new Option('--healthcheck-timeout <duration>', 'time a check may take').argParser(seconds('--healthcheck-timeout')))
    .addOption(new Option('--healthcheck-start-period <duration>', 'grace time after start').argParser(seconds('--healthcheck-start-period')))
    .addOption(new Option('--healthcheck-retries <n>', 'failures before unhealthy').argParser((v) => Number(v)))
    .option('--chown <uid:gid>', 'numeric owner of the added files and of the directories the layers create (default 0:0)')
    .option(
      '--omit-dev',
      'leave out dev-only packages: those package-lock.json marks dev, or (pnpm, yarn) that no production dependency reaches in node_modules; nothing is reinstalled',
    )
    .option('--allow-foreign-native', 'build for another platform although packages hold native code (a warning, not an error)')
    .option(
      '--timestamp <time>',
      'time of the build, seconds since the epoch or ISO 8601 (default: $SOURCE_DATE_EPOCH; else entry times 1970-01-01 and created the last commit time in a git work tree)',
    )
    .addOption(new Option('--compression <kind>', 'layer compression (default gzip)').choices(['gzip', 'zstd', 'none']))
    .addOption(new Option('--level <n>', 'compression level (gzip 1-9, default 4; zstd 1-19, default 3)').argParser((v) => Number(v)))
    .addOption(new Option('--threads <n>', 'blocks compressed at once (default: cores + 1)').argParser((v) => Number(v)))
    .addOption(new Option('--format <format>', "manifest format (default: the base's; OCI for scratch)").choices(['oci', 'docker']))
    .option('--encrypt', 'a new bfc: destination is encrypted (password from $OCIKIT_BFC_PASSWORD or a prompt, or the global --key-file)')
    .option('--compress', 'zstd-compress the documents written into a bfc: destination')
    .option('--no-cache', 'neither use nor fill the layer cache')
    .option('--cache-dir <dir>', 'layer cache directory (default: $OCIKIT_CACHE_DIR, else $XDG_CACHE_HOME/ocikit, else ~/.cache/ocikit)')
    .option('--ignore-file <file>', 'ignore rules for the application layer, .dockerignore syntax (default: CONTEXT/.ociignore, else CONTEXT/.dockerignore)')
    .option('--no-ignore-file', 'use no ignore rules')
    .option('--no-source-metadata', 'no org.opencontainers.image.* labels from package.json and git')
    .option('--digest-file <file>', 'write the image digest to this file')
    .addOption(jsonOption())
    .option('-q, --quiet', 'no progress display and no summary')
    .addHelpText(
      'after',
      `
A Node.js project (a package.json in the context) becomes three layers, bottom to top:
registry dependencies (node_modules as installed), local packages (workspaces and file:
links) and the application, so a code change leaves the dependency layer as it was. npm,
pnpm and yarn trees work; nothing is installed or run. The ignore file applies to the
application layer; .git and destinations inside the context are always left out.

Same inputs give the same digest on any machine, path or day. Unchanged layers come from
the layer cache (see 'ocikit cache'); a registry destination gets only the blobs it lacks,
and a base in the same registry is mounted, never downloaded.

Examples:
  ocikit build ./my-app --from node:22-slim --to registry.example.com/team/my-app:1.4.0
  ocikit build ./my-app --to oci:./out:dev
  ocikit build -f ocikit.yaml
  ocikit build . --from localhost:5000/node:22 --platform all --to localhost:5000/app:1`,
    )
    .action(async (context: string | undefined, o: BuildCli) => {
      const spec = specOf(context, o)
      if (o.threads !== undefined && (!Number.isInteger(o.threads) || o.threads < 1))
        throw new OcikitError('INVALID_ARGUMENT', `--threads takes a whole number of at least 1, got '${o.threads}'`)
      const display = transferDisplay(!o.quiet && !o.json && process.stderr.isTTY === true)
      const ac = new AbortController()
      const interrupt = () => {
        process.stderr.write('\nocikit: interrupted; stopping (no tag is written for a partial write)\n')
        ac.abort()
      }
      process.once('SIGINT', interrupt)
      try {
        const r = await build(spec, {
          cache: o.cache === false ? false : new LayerCache(o.cacheDir),
          ...storeOptions(program, { encrypt: o.encrypt, compress: o.compress }),
          signal: ac.signal,
          concurrency: o.threads,
          onNotice: printNotice,
          onProgress: display.onProgress,
          onBlob: display.onBlob,
        })
        display.stop()
        if (o.digestFile) writeFileSync(o.digestFile, `${r.digest}\n`)
        if (o.json) {
          printJson(r)
          return
        }
        if (o.quiet) return
        const lines = [
          `command: ${printable(JSON.stringify(r.command))}`,
          ...r.layers.map(
            (l) =>
              `layer ${printable(l.label)}: ${l.digest} ${humanSize(l.size)} (${l.origin === 'cache' ? 'reused from the cache' : l.origin === 'file' ? 'from a file' : 'built'})`,
          ),
          ...r.written.map((w) => `${printable(w.to)} ${w.descriptor.digest}`),
          `${r.blobs.written} blob(s) written, ${r.blobs.existed} already there${r.blobs.mounted ? ` (${r.blobs.mounted} mounted)` : ''}; ${r.cache.reused} layer(s) reused from the cache`,
        ]
        process.stdout.write(`${lines.join('\n')}\n`)
      } finally {
        display.stop()
        process.off('SIGINT', interrupt)
      }
    })

  const cache = program.command('cache').description('the layer cache that build uses')
  cache
    .command('ls')
    .description('list the cached layers, most recently used first')
    .option('--cache-dir <dir>', 'layer cache directory')
    .addOption(jsonOption())
    .action(async (o: { cacheDir?: string; json?: boolean }) => {
      const c = new LayerCache(o.cacheDir)
      const list = await c.list()
      if (o.json) {
        printJson({ dir: c.dir, layers: list })
        return
      }
      const total = list.reduce((n, r) => n + r.size, 0)
      const lines = list.map((r) => `${r.digest}  ${humanSize(r.size).padStart(9)}  ${new Date(r.lastUsed).toISOString()}`)
      process.stdout.write(`${[...lines, `${list.length} layer(s), ${humanSize(total)} in ${printable(c.dir)}`].join('\n')}\n`)
    })
  cache
    .command('prune')
    .description('remove the least recently used layers beyond a size (default 5 GiB), or all of them')
    .option('--cache-dir <dir>', 'layer cache directory')
    .addOption(new Option('--max-size <bytes>', 'keep at most this much, e.g. 2G or 500M').argParser(parseSize))
    .option('--all', 'remove everything')
    .action(async (o: { cacheDir?: string; maxSize?: number; all?: boolean }) => {
      const c = new LayerCache(o.cacheDir)
      const r = await c.prune(o.all ? 0 : o.maxSize)
      process.stdout.write(`removed ${r.layers} layer(s), ${humanSize(r.bytes)} from ${printable(c.dir)}\n`)
    })
}
