/** `ocikit explore`: what an image holds, layer by layer, where its bytes go and what it wastes. */
import path from 'node:path'
import { type Command, Option } from 'commander'
import { read, readImage } from '../../api.ts'
import { defaultCacheDir } from '../../build/cache.ts'
import type { Platform } from '../../documents/schemas.ts'
import { diffExplorations, type Exploration, exploreImage } from '../../explore/analyze.ts'
import { serveExploration } from '../../explore/server.ts'
import { formatPlatform, parsePlatform } from '../../image/platform.ts'
import { jsonOption, parseSize, platformOption, storeOptions } from '../options.ts'
import { humanSize, printable, printJson } from '../output.ts'

/** The report as JSON: everything but the per-layer file lists and the merged map (`--files` keeps them). */
function jsonOf(x: Exploration, files: boolean) {
  return {
    digest: x.digest,
    mediaType: x.mediaType,
    platform: x.platform,
    config: x.config,
    compressedSize: x.compressedSize,
    uncompressedSize: x.uncompressedSize,
    shippedBytes: x.shippedBytes,
    finalBytes: x.finalBytes,
    efficiency: x.efficiency,
    wastedBytes: x.wastedBytes,
    wasted: x.wasted,
    layers: x.layers.map(({ files: f, ...l }) => (files ? { ...l, files: f } : l)),
  }
}

function printReport(name: string, x: Exploration, top: number): void {
  const lines = [
    `${printable(name)} ${x.digest} (${x.platform})`,
    `${x.layers.length} layer(s), ${humanSize(x.compressedSize)} compressed, ${humanSize(x.uncompressedSize)} uncompressed`,
    `efficiency ${(x.efficiency * 100).toFixed(1)}%: ${humanSize(x.finalBytes)} of files in the final filesystem, ${humanSize(x.shippedBytes)} shipped`,
    `wasted ${humanSize(x.wastedBytes)} in ${x.wasted.length} file(s) a later layer overwrites or deletes`,
    '',
    'layer  compressed  uncompressed  added  changed  deleted  created by',
    ...x.layers.map(
      (l) =>
        `${String(l.index).padStart(5)}  ${humanSize(l.size).padStart(10)}  ${humanSize(l.uncompressedSize).padStart(12)}  ${String(l.added.count).padStart(5)}  ${String(l.changed.count).padStart(7)}  ${String(l.deleted.count).padStart(7)}  ${printable((l.createdBy ?? '').slice(0, 60))}`,
    ),
  ]
  if (x.wasted.length > 0) {
    lines.push('', `most wasted (of ${x.wasted.length}):`)
    for (const w of x.wasted.slice(0, top))
      lines.push(`  ${humanSize(w.bytes).padStart(10)}  ${printable(w.path)}  (layer ${w.layer}, ${w.how} by layer ${w.by})`)
  }
  process.stdout.write(`${lines.join('\n')}\n`)
}

/** Opens `url` with the desktop's opener, when there is one; says so when not. */
function openBrowser(url: string): void {
  const child = process.getBuiltinModule('node:child_process').spawn('xdg-open', [url], { stdio: 'ignore', detached: true })
  child.on('error', () => process.stderr.write('ocikit: no xdg-open here; open the URL above yourself\n'))
  child.unref()
}

export function register(program: Command): void {
  program
    .command('explore')
    .description(
      'show what an image holds, layer by layer: sizes, what each layer adds, changes and deletes, wasted space, and the difference to another image',
    )
    .argument('<name>', 'the image, any store name')
    .addOption(platformOption('explore this platform of an index'))
    .option('--report', 'print the analysis in the terminal instead of serving the page')
    .addOption(new Option('--port <n>', 'serve the page on this port of 127.0.0.1 (default: a free one)').argParser((v) => Number(v)))
    .option('--open', 'open the page in the system browser (xdg-open)')
    .option('--no-cache', 'read every layer again instead of using the layer indexes kept from earlier runs (in the cache directory)')
    .option('--diff <other>', 'also list the files added, removed and changed from OTHER to NAME')
    .addOption(new Option('--max-wasted <size>', 'exit 1 when the wasted space is over this, e.g. 10MB (for CI)').argParser(parseSize))
    .option('--files', 'with --json: include every layer’s file list')
    .addOption(new Option('--top <n>', 'how many of the most wasted files to list').default(10).argParser((v) => Number(v)))
    .addOption(jsonOption())
    .addHelpText(
      'after',
      "\nWithout --report it serves a page on 127.0.0.1 (a random token in its URL; any other Host is refused): the overview, the layers, each layer's files, the files merged up to any layer, the wasted space, and the diff. Each layer is read once, as a stream; a registry image is never written to disk. Exit status: 0, or 1 over --max-wasted.",
    )
    .action(
      async (
        name: string,
        o: {
          platform?: Platform
          report?: boolean
          port?: number
          open?: boolean
          cache?: boolean
          diff?: string
          maxWasted?: number
          files?: boolean
          top: number
          json?: boolean
        },
      ) => {
        const so = storeOptions(program)
        const cacheDir = o.cache === false ? undefined : path.join(defaultCacheDir(), 'explore')
        const x = await exploreImage(await readImage(name, { platform: o.platform, ...so }), { cacheDir })
        const diff = o.diff ? diffExplorations(await exploreImage(await readImage(o.diff, { platform: o.platform, ...so }), { cacheDir }), x) : undefined
        if (!o.report && !o.json && o.maxWasted === undefined) {
          // An index: the page offers its other platforms, each explored on first visit.
          const top = await read(name, so)
          const list = top.kind === 'index' ? (await top.manifest()).manifests.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : [])) : []
          const platforms =
            list.length > 1
              ? { list, explore: async (p: string) => exploreImage(await readImage(name, { platform: parsePlatform(p), ...so }), { cacheDir }) }
              : undefined
          const served = await serveExploration(x, { port: o.port, diff: diff && o.diff ? { against: o.diff, changes: diff } : undefined, platforms })
          process.stdout.write(`${served.url}\n(the page answers only to this URL, on this machine; Ctrl-C stops it)\n`)
          if (o.open) openBrowser(served.url)
          await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()))
          await served.close()
          return
        }
        if (o.json) printJson({ ...jsonOf(x, o.files === true), ...(diff ? { diff } : {}) })
        else {
          printReport(name, x, o.top)
          if (diff) {
            process.stdout.write(`\nfrom ${printable(o.diff as string)}: ${diff.length} path(s) differ\n`)
            for (const c of diff)
              process.stdout.write(`  ${c.change.padEnd(8)} ${printable(c.path)}${c.after !== undefined ? `  ${humanSize(c.after)}` : ''}\n`)
          }
        }
        if (o.maxWasted !== undefined && x.wastedBytes > o.maxWasted) {
          process.stderr.write(`ocikit: ${humanSize(x.wastedBytes)} wasted, over the ${humanSize(o.maxWasted)} allowed\n`)
          process.exitCode = 1
        }
      },
    )
}
