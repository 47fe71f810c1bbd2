/**
 * Layer benchmark: `ocikit layer create` with gzip, zstd and single-threaded gzip against
 * `umoci insert` of the same tree, each in its own process, median of N runs taken in rounds
 * (every variant once per round, so all see the same drift of the machine's speed), with peak memory
 * from /usr/bin/time. ocikit runs as installed (bin/ocikit.js and the built dist/). Usage: node bench/layer.ts [--mb 120] [--runs 5] [--big]
 * (--big adds one ocikit run on a 2 GiB tree, for peak memory).
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { has, hasTime, median, root, work } from './common.ts'
import { generateTree } from './gen-tree.ts'

const run = promisify(execFile)
const args = process.argv.slice(2)
const opt = (name: string, dflt: number) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : dflt)
const mb = opt('mb', 120)
const runs = opt('runs', 5)

function tree(size: number): string {
  const dir = path.join(work, `tree-${size}`)
  if (!fs.existsSync(path.join(dir, '.done'))) {
    fs.rmSync(dir, { recursive: true, force: true })
    process.stdout.write(`generating the ${size} MiB bench tree in ${dir} ...\n`)
    generateTree(dir, { mb: size })
    fs.writeFileSync(path.join(dir, '.done'), '')
  }
  return dir
}

interface Sample {
  seconds: number
  peakMb?: number
  bytes?: number
}

/** Runs a command, timing it (and its peak RSS when /usr/bin/time exists). */
async function timed(cmd: string, argv: string[]): Promise<{ sample: Sample; stdout: string }> {
  const start = performance.now()
  const r = hasTime ? await run('/usr/bin/time', ['-f', '%M', cmd, ...argv], { maxBuffer: 1 << 26 }) : await run(cmd, argv, { maxBuffer: 1 << 26 })
  const seconds = (performance.now() - start) / 1000
  const peakKb = hasTime ? Number(r.stderr.trim().split('\n').pop()) : Number.NaN
  return { sample: { seconds, peakMb: Number.isFinite(peakKb) ? peakKb / 1024 : undefined }, stdout: r.stdout }
}

/** One `ocikit layer create` run, through the installed command (bin/ocikit.js and the built dist/). */
async function ocikitLayer(dir: string, compression: string, level = '', threads = ''): Promise<Sample> {
  const out = fs.mkdtempSync(path.join(work, 'out-'))
  try {
    const argv = [path.join(root, 'bin/ocikit.js'), 'layer', 'create', dir, '-o', path.join(out, 'layer'), '--compression', compression, '-q', '--json']
    if (level) argv.push('--level', level)
    if (threads) argv.push('--threads', threads)
    const { sample, stdout } = await timed(process.execPath, argv)
    return { ...sample, bytes: JSON.parse(stdout).size }
  } finally {
    fs.rmSync(out, { recursive: true, force: true })
  }
}

async function umociInsert(dir: string): Promise<Sample> {
  const parent = fs.mkdtempSync(path.join(work, 'umoci-'))
  const layout = path.join(parent, 'layout') // umoci init wants a path that does not exist yet
  try {
    await run('umoci', ['init', '--layout', layout])
    await run('umoci', ['new', '--image', `${layout}:base`])
    const before = new Set(fs.readdirSync(path.join(layout, 'blobs/sha256')))
    const { sample } = await timed('umoci', ['insert', '--rootless', '--image', `${layout}:base`, dir, '/'])
    const blobs = fs.readdirSync(path.join(layout, 'blobs/sha256')).filter((b) => !before.has(b))
    const bytes = Math.max(...blobs.map((b) => fs.statSync(path.join(layout, 'blobs/sha256', b)).size))
    return { ...sample, bytes }
  } finally {
    fs.rmSync(parent, { recursive: true, force: true })
  }
}

interface Variant {
  name: string
  run: () => Promise<Sample>
}

/**
 * Runs every variant `runs` times, in rounds: each round runs each variant once, starting one
 * further along each time. The machine's speed drifts by a fifth over minutes, so running one
 * variant's five runs back to back would credit or charge it with whatever phase it fell in;
 * in rounds, every variant sees the same phases.
 */
async function rounds(variants: Variant[]): Promise<{ name: string; seconds: number; peakMb?: number; bytes?: number; samples: number[] }[]> {
  const samples: Sample[][] = variants.map(() => [])
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < variants.length; k++) {
      const j = (i + k) % variants.length
      samples[j]?.push(await (variants[j] as Variant).run())
    }
  }
  return variants.map((v, j) => {
    const s = samples[j] as Sample[]
    const peaks = s.map((x) => x.peakMb).filter((x): x is number => x !== undefined)
    const seconds = s.map((x) => x.seconds)
    return { name: v.name, seconds: median(seconds), peakMb: peaks.length ? Math.max(...peaks) : undefined, bytes: s[0]?.bytes, samples: seconds }
  })
}

/**
 * How much faster two cores do CPU-bound work than one, on this machine right now: the same
 * deflate job in one process, then in two at once (median of five; single samples swing widely on this machine). Parallel compression
 * cannot beat this ceiling, whatever the code does.
 */
async function twoCoreScaling(): Promise<number> {
  const job = `const z=require('node:zlib');const b=Buffer.alloc(1<<20);for(let i=0;i<b.length;i++)b[i]=97+((i*7+(i>>5))%23);const t=performance.now();for(let i=0;i<30;i++)z.deflateRawSync(b,{level:4});console.log(performance.now()-t)`
  const once = async () => Number((await run(process.execPath, ['-e', job])).stdout)
  const ratios: number[] = []
  for (let i = 0; i < 5; i++) {
    const one = await once()
    const two = await Promise.all([once(), once()])
    ratios.push((2 * one) / Math.max(...two))
  }
  return median(ratios)
}

fs.mkdirSync(work, { recursive: true })
const dir = tree(mb)
process.stdout.write(
  `layer benchmark: ${mb} MiB bench tree, ${runs} runs each in rounds (median), ${os.availableParallelism()} cores, node ${process.version}\n`,
)
const variants: Variant[] = [
  { name: 'ocikit gzip (default level 4, parallel)', run: () => ocikitLayer(dir, 'gzip') },
  { name: 'ocikit gzip level 4, one thread', run: () => ocikitLayer(dir, 'gzip', '4', '1') },
  { name: 'ocikit zstd (level 3, parallel)', run: () => ocikitLayer(dir, 'zstd') },
  { name: 'ocikit uncompressed', run: () => ocikitLayer(dir, 'none') },
]
if (has('umoci')) variants.push({ name: 'umoci insert (gzip)', run: () => umociInsert(dir) })
else process.stdout.write('umoci not installed: no peer figures\n')
const results = await rounds(variants)

for (const r of results) {
  process.stdout.write(
    `${r.name.padEnd(42)} ${r.seconds.toFixed(2).padStart(6)} s  ${r.bytes ? `${(r.bytes / 2 ** 20).toFixed(1).padStart(7)} MiB` : ''}  ${r.peakMb ? `peak ${r.peakMb.toFixed(0)} MiB` : ''}  (runs: ${r.samples.map((x) => x.toFixed(2)).join(' ')})\n`,
  )
}
const by = (n: string) => results.find((r) => r.name.startsWith(n))
const [gz, gz1, zs, um] = [by('ocikit gzip (default'), by('ocikit gzip level 4, one'), by('ocikit zstd'), by('umoci')]
/** The ratio of two variants' runs within each round (same machine phase), median over the rounds. */
const perRound = (a: { samples: number[] }, b: { samples: number[] }) => median(a.samples.map((x, i) => x / (b.samples[i] as number)))
const ratio = (label: string, value: number, limit: number, better: 'below' | 'above', rounds?: number) => {
  const ok = better === 'below' ? value <= limit : value >= limit
  const extra = rounds === undefined ? '' : `; median of the rounds' own ratios ${rounds.toFixed(2)}`
  process.stdout.write(`${label.padEnd(52)} ${value.toFixed(2)}  (target ${better === 'below' ? '<=' : '>='} ${limit}: ${ok ? 'met' : 'MISSED'}${extra})\n`)
}
if (gz && um?.bytes && gz.bytes) {
  ratio('gzip layer time / umoci insert time', gz.seconds / um.seconds, 0.8, 'below', perRound(gz, um))
  ratio('gzip layer size / umoci layer size', gz.bytes / um.bytes, 1.03, 'below')
}
if (gz && zs) ratio('speed-up of zstd over our gzip', gz.seconds / zs.seconds, 2, 'above', perRound(gz, zs))
if (gz && gz1) ratio('speed-up of parallel over one-thread gzip', gz1.seconds / gz.seconds, 1.7, 'above', perRound(gz1, gz))
if (gz?.peakMb) ratio('peak memory of the gzip layer (MiB)', gz.peakMb, 150, 'below')
process.stdout.write(`two cores against one on the same deflate job, now (the ceiling of any parallel speed-up): ${(await twoCoreScaling()).toFixed(2)}\n`)

if (args.includes('--big')) {
  const big = tree(2048)
  const s = await ocikitLayer(big, 'gzip')
  process.stdout.write(`2 GiB tree, gzip: ${s.seconds.toFixed(1)} s, peak ${s.peakMb?.toFixed(0)} MiB\n`)
  if (s.peakMb) ratio('peak memory on the 2 GiB tree (MiB)', s.peakMb, 150, 'below')
}
