/**
 * Build benchmark (issue 15): the bench tree as a Node.js app, built onto a small base in a
 * local docker-registry and pushed back to it, gzip, by
 * - ocikit: `ocikit build TREE --from REG/base:1 --to REG/app:v1` with an empty layer cache (cold),
 *   then again after three application files change (`touchTree(TREE, 3, { under: 'src' })`, the
 *   same as `gen-tree.mjs OUT --touch 3 --under src`) with the cache the cold build left (rebuild);
 * - the peers: `umoci insert` of the tree into a layout holding the base, then `skopeo copy` of it
 *   to the registry (the base pulled into the layout beforehand, not timed: the strictest reading);
 * - containerify (an npm dev dependency of the bench), from the registry to the registry.
 * Each round runs every variant once, in a rotating order, each against registries of its own
 * started for the round, timed from outside with peak memory from /usr/bin/time. ocikit runs as
 * installed (bin/ocikit.js and the built dist/).
 *
 * Usage: node bench/build.ts [--runs 5] [--mb 120] [--sizes 30,120,480]
 * (--sizes adds ocikit's cold build and rebuild at each tree size, for how time and memory grow.)
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { startRegistry } from '../test/helpers/registry.ts'
import { cli, has, hasTime, median, root, work } from './common.ts'
import { generateTree, touchTree } from './gen-tree.ts'

const run = promisify(execFile)
const args = process.argv.slice(2)
const opt = (name: string, dflt: string) => (args.includes(`--${name}`) ? (args[args.indexOf(`--${name}`) + 1] as string) : dflt)
const runs = Number(opt('runs', '5'))
const mb = Number(opt('mb', '120'))
const sizes = args.includes('--sizes') ? opt('sizes', '30,120,480').split(',').map(Number) : []
const containerify = path.join(root, 'node_modules', 'containerify', 'lib', 'cli.js')
if (!has('docker-registry')) {
  process.stdout.write('docker-registry not installed: no build benchmark\n')
  process.exit(0)
}
const peers = has('umoci') && has('skopeo')
const hasContainerify = fs.existsSync(containerify)

const cleanups: (() => unknown)[] = []
const ctx = { after: (f: () => unknown) => cleanups.push(f) } as unknown as import('node:test').TestContext

interface Sample {
  seconds: number
  peakMb: number
}

/** Runs commands one after another as one timed job; peak memory is the largest of them. */
async function timed(...cmds: [string, string[]][]): Promise<Sample> {
  let seconds = 0
  let peakMb = 0
  for (const [cmd, argv] of cmds) {
    const start = performance.now()
    const r = hasTime ? await run('/usr/bin/time', ['-f', '%M', cmd, ...argv], { maxBuffer: 1 << 26 }) : await run(cmd, argv, { maxBuffer: 1 << 26 })
    seconds += (performance.now() - start) / 1000
    const kb = hasTime ? Number(r.stderr.trim().split('\n').pop()) : Number.NaN
    if (Number.isFinite(kb)) peakMb = Math.max(peakMb, kb / 1024)
  }
  return { seconds, peakMb }
}

/** A fresh copy of the generated tree for a round (rebuilds change it). */
function treeCopy(size: number): string {
  const master = path.join(work, `build-tree-${size}`)
  if (!fs.existsSync(path.join(master, '.done'))) {
    fs.rmSync(master, { recursive: true, force: true })
    process.stdout.write(`generating the ${size} MiB bench tree in ${master} ...\n`)
    generateTree(master, { mb: size })
    fs.writeFileSync(path.join(master, '.done'), '')
  }
  const copy = path.join(work, `build-app-${size}`)
  fs.rmSync(copy, { recursive: true, force: true })
  fs.cpSync(master, copy, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true })
  fs.rmSync(path.join(copy, '.done'))
  return copy
}

/** The small base: a few files in one layer, in a layout, pushed to each registry before it is used. */
async function baseLayout(): Promise<string> {
  const layout = path.join(work, 'build-base')
  if (fs.existsSync(path.join(layout, 'index.json'))) return layout
  const src = fs.mkdtempSync(path.join(work, 'base-src-'))
  for (const d of ['etc', 'usr/bin', 'usr/lib']) fs.mkdirSync(path.join(src, d), { recursive: true })
  fs.writeFileSync(path.join(src, 'etc/os-release'), 'ID=bench\nNAME="bench base"\n')
  fs.writeFileSync(path.join(src, 'usr/lib/libbench.so'), Buffer.alloc(2 << 20, 7))
  await run(process.execPath, [cli, 'append', 'scratch', `oci:${layout}:1`, '--dir', src, '--platform', 'linux/amd64', '-q'])
  fs.rmSync(src, { recursive: true, force: true })
  return layout
}

async function registryWithBase(base: string): Promise<string> {
  const reg = await startRegistry(ctx)
  await run(process.execPath, [cli, 'copy', '-q', `oci:${base}:1`, `${reg.host}/base:1`])
  return reg.host
}

const ocikitBuild = (tree: string, host: string, tag: string, cache: string): [string, string[]] => [
  process.execPath,
  [cli, 'build', tree, '--from', `${host}/base:1`, '--to', `${host}/app:${tag}`, '--cache-dir', cache, '-q'],
]

try {
  fs.mkdirSync(work, { recursive: true })
  const base = await baseLayout()
  const series: Record<string, Sample[]> = { 'ocikit cold': [], 'ocikit rebuild': [], 'umoci+skopeo cold': [], 'containerify cold': [] }
  for (let i = 0; i < runs; i++) {
    const tree = treeCopy(mb)
    const ours = async () => {
      const host = await registryWithBase(base)
      const cache = fs.mkdtempSync(path.join(work, 'cache-'))
      series['ocikit cold']?.push(await timed(ocikitBuild(tree, host, 'v1', cache)))
      touchTree(tree, 3, { under: 'src', seed: i + 1 })
      series['ocikit rebuild']?.push(await timed(ocikitBuild(tree, host, 'v2', cache)))
      fs.rmSync(cache, { recursive: true, force: true })
    }
    const umociSkopeo = async () => {
      if (!peers) return
      const host = await registryWithBase(base)
      const layout = fs.mkdtempSync(path.join(work, 'umoci-'))
      await run('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${host}/base:1`, `oci:${layout}:base`])
      series['umoci+skopeo cold']?.push(
        await timed(
          ['umoci', ['insert', '--image', `${layout}:base`, tree, '/app']],
          ['skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${host}/app:v1`]],
        ),
      )
      fs.rmSync(layout, { recursive: true, force: true })
    }
    const cfy = async () => {
      if (!hasContainerify) return
      const host = await registryWithBase(base)
      const buildFolder = fs.mkdtempSync(path.join(work, 'containerify-'))
      series['containerify cold']?.push(
        await timed([
          process.execPath,
          [
            containerify,
            '--fromRegistry',
            `http://${host}/v2/`,
            '--fromImage',
            'base:1',
            '--toRegistry',
            `http://${host}/v2/`,
            '--toImage',
            'app:v1',
            '--folder',
            tree,
            '--allowNoPushAuth',
            '--buildFolder',
            buildFolder,
          ],
        ]),
      )
      fs.rmSync(buildFolder, { recursive: true, force: true })
    }
    const order = [ours, umociSkopeo, cfy]
    for (let k = 0; k < order.length; k++) await (order[(i + k) % order.length] as () => Promise<void>)()
  }
  process.stdout.write(`build benchmark: ${mb} MiB bench tree as a Node.js app onto a small base, local docker-registry, gzip, ${runs} rounds (median)\n`)
  for (const [k, v] of Object.entries(series)) {
    if (!v.length) continue
    process.stdout.write(
      `${k.padEnd(20)} ${median(v.map((s) => s.seconds)).toFixed(2)} s  peak ${median(v.map((s) => s.peakMb)).toFixed(0)} MiB  (runs: ${v.map((s) => s.seconds.toFixed(2)).join(' ')})\n`,
    )
  }
  const m = (k: string) => median((series[k] ?? []).map((s) => s.seconds))
  const perRound = (a: string, b: string) =>
    median(Array.from({ length: runs }, (_, i) => (series[a]?.[i]?.seconds as number) / (series[b]?.[i]?.seconds as number)))
  const report = (what: string, a: string, b: string, target: number) => {
    if (!series[b]?.length) return
    const ratio = m(a) / m(b)
    process.stdout.write(
      `${what.padEnd(44)} ${ratio.toFixed(2)}  (target <= ${target}: ${ratio <= target ? 'met' : 'MISSED'}; the rounds' own ratios ${perRound(a, b).toFixed(2)})\n`,
    )
  }
  report('cold build+push / (umoci insert + skopeo)', 'ocikit cold', 'umoci+skopeo cold', 0.85)
  report('cold build+push / containerify', 'ocikit cold', 'containerify cold', 0.15)
  report('rebuild (3 files) / peers cold', 'ocikit rebuild', 'umoci+skopeo cold', 0.25)

  for (const size of sizes) {
    const cold: Sample[] = []
    const again: Sample[] = []
    const n = size >= 400 ? Math.min(runs, 3) : runs
    for (let i = 0; i < n; i++) {
      const tree = treeCopy(size)
      const host = await registryWithBase(base)
      const cache = fs.mkdtempSync(path.join(work, 'cache-'))
      cold.push(await timed(ocikitBuild(tree, host, 'v1', cache)))
      touchTree(tree, 3, { under: 'src', seed: i + 1 })
      again.push(await timed(ocikitBuild(tree, host, 'v2', cache)))
      fs.rmSync(cache, { recursive: true, force: true })
    }
    const s = (xs: Sample[]) => `${median(xs.map((x) => x.seconds)).toFixed(2)} s, peak ${median(xs.map((x) => x.peakMb)).toFixed(0)} MiB`
    process.stdout.write(`ocikit at ${String(size).padStart(3)} MiB (${n} runs): cold ${s(cold)}; rebuild ${s(again)}\n`)
  }
} finally {
  for (const f of cleanups.reverse()) await f()
  for (const d of fs.existsSync(work) ? fs.readdirSync(work) : [])
    if (d.startsWith('build-app-')) fs.rmSync(path.join(work, d), { recursive: true, force: true })
}
