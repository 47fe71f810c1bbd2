/**
 * Registry benchmark: copy a 120 MiB image (the bench tree as one gzip layer) from an oci:
 * layout to a local docker-registry and back, with ocikit and with skopeo, median of N runs,
 * and a second push of the same image (every blob already there).
 * Usage: node bench/registry.ts [--runs 5]
 */
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { startRegistry } from '../test/helpers/registry.ts'
import { cli, has, median, root, work } from './common.ts'

const run = promisify(execFile)
const args = process.argv.slice(2)
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 5
// The single executable, when built (npm run build:sea): measured beside the installed CLI.
const sea = path.join(root, 'dist', 'sea', `ocikit-linux-${process.arch}`)
const hasSea = fs.existsSync(sea)
if (!has('docker-registry')) {
  process.stdout.write('docker-registry not installed: no registry benchmark\n')
  process.exit(0)
}

const cleanups: (() => unknown)[] = []
const ctx = { after: (f: () => unknown) => cleanups.push(f) } as unknown as import('node:test').TestContext
async function time(cmd: string, argv: string[]): Promise<number> {
  const t = performance.now()
  await run(cmd, argv, { maxBuffer: 1 << 24 })
  return (performance.now() - t) / 1000
}

try {
  const tree = path.join(work, 'tree-120')
  if (!fs.existsSync(path.join(tree, '.done'))) execFileSync(process.execPath, [path.join(root, 'bench/layer.ts'), '--runs', '1'], { stdio: 'inherit' })
  const layout = path.join(work, 'image-120')
  if (!fs.existsSync(path.join(layout, 'index.json'))) {
    await run(process.execPath, [cli, 'append', 'scratch', `oci:${layout}:v1`, '--dir', tree, '--platform', 'linux/amd64', '-q'])
  }
  const series: Record<string, number[]> = {
    'ocikit push': [],
    'skopeo push': [],
    'ocikit pull': [],
    'skopeo pull': [],
    'ocikit second push': [],
    ...(hasSea ? { 'executable push': [], 'executable pull': [] } : {}),
  }
  for (let i = 0; i < runs; i++) {
    // Fresh registries each run, one per tool: skopeo's blob-info cache would otherwise mount
    // blobs pushed earlier (by ocikit, or by its own previous run) instead of sending them.
    const reg = await startRegistry(ctx)
    const skReg = await startRegistry(ctx)
    const out = fs.mkdtempSync(path.join(work, 'pull-'))
    const ours = async () => {
      series['ocikit push']?.push(await time(process.execPath, [cli, 'copy', '-q', `oci:${layout}:v1`, `${reg.host}/o${i}:v1`]))
      series['ocikit second push']?.push(await time(process.execPath, [cli, 'copy', '-q', `oci:${layout}:v1`, `${reg.host}/o${i}:v1`]))
      series['ocikit pull']?.push(await time(process.execPath, [cli, 'copy', '-q', `${reg.host}/o${i}:v1`, `oci:${out}/o:v1`]))
    }
    const skopeo = async () => {
      if (!has('skopeo')) return
      series['skopeo push']?.push(await time('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${skReg.host}/s${i}:v1`]))
      series['skopeo pull']?.push(await time('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${skReg.host}/s${i}:v1`, `oci:${out}/s:v1`]))
    }
    const executable = async () => {
      if (!hasSea) return
      series['executable push']?.push(await time(sea, ['copy', '-q', `oci:${layout}:v1`, `${reg.host}/e${i}:v1`]))
      series['executable pull']?.push(await time(sea, ['copy', '-q', `${reg.host}/e${i}:v1`, `oci:${out}/e:v1`]))
    }
    // Whichever goes first meets registries that have only just started: take turns.
    for (const f of i % 2 === 0 ? [ours, skopeo, executable] : [executable, skopeo, ours]) await f()
    fs.rmSync(out, { recursive: true, force: true })
  }
  process.stdout.write(`registry benchmark: 120 MiB image (one gzip layer), local docker-registry, ${runs} runs (median, fresh registries each run)\n`)
  for (const [k, v] of Object.entries(series)) {
    if (v.length) process.stdout.write(`${k.padEnd(22)} ${median(v).toFixed(2)} s  (runs: ${v.map((x) => x.toFixed(2)).join(' ')})\n`)
  }
  const m = (k: string) => median(series[k] ?? [])
  if (series['skopeo push']?.length) {
    const ratio = (m('ocikit push') + m('ocikit pull')) / (m('skopeo push') + m('skopeo pull'))
    // Each run's own ratio: both tools ran back to back there, in the same phase of the machine.
    const at = (k: string, i: number) => series[k]?.[i] as number
    const perRun = median(Array.from({ length: runs }, (_, i) => (at('ocikit push', i) + at('ocikit pull', i)) / (at('skopeo push', i) + at('skopeo pull', i))))
    process.stdout.write(
      `push+pull time / skopeo's          ${ratio.toFixed(2)}  (target <= 1.0: ${ratio <= 1 ? 'met' : 'MISSED'}; median of the runs' own ratios ${perRun.toFixed(2)})\n`,
    )
  }
  if (hasSea && series['skopeo push']?.length) {
    const ratio = (m('executable push') + m('executable pull')) / (m('skopeo push') + m('skopeo pull'))
    process.stdout.write(`single executable push+pull / skopeo's ${ratio.toFixed(2)}  (target <= 1.0: ${ratio <= 1 ? 'met' : 'MISSED'})\n`)
  }
  const second = m('ocikit second push')
  process.stdout.write(`second push (all blobs there)      ${second.toFixed(2)} s  (target <= 0.3 s: ${second <= 0.3 ? 'met' : 'MISSED'})\n`)
} finally {
  for (const f of cleanups.reverse()) await f()
}
