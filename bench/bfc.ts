/**
 * BFC benchmark (issue 18):
 * - packing the bench image (the 120 MiB tree as one gzip layer) into a BFC file against writing
 *   the same image as an `oci:` layout, both with `ocikit copy` from a layout, as installed, in
 *   rounds that alternate the order, median of N, peak memory from /usr/bin/time;
 * - opening a 1 GiB BFC file (1,000 blobs of 1 MiB and a 1 KiB one) and reading the 1 KiB blob,
 *   in this process (the figure is the store's, not Node's start-up), median of N.
 * Usage: node bench/bfc.ts [--runs 5]
 */
import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { BfcFile } from '../src/stores/bfc/container.ts'
import { BfcWriter } from '../src/stores/bfc/writer.ts'
import { cli, hasTime, median, root, work } from './common.ts'

const run = promisify(execFile)
const args = process.argv.slice(2)
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 5

async function timed(argv: string[]): Promise<{ seconds: number; peakMb: number }> {
  const start = performance.now()
  const r = hasTime ? await run('/usr/bin/time', ['-f', '%M', process.execPath, ...argv]) : await run(process.execPath, argv)
  const seconds = (performance.now() - start) / 1000
  const kb = hasTime ? Number(r.stderr.trim().split('\n').pop()) : Number.NaN
  return { seconds, peakMb: Number.isFinite(kb) ? kb / 1024 : Number.NaN }
}

fs.mkdirSync(work, { recursive: true })
const tree = path.join(work, 'tree-120')
if (!fs.existsSync(path.join(tree, '.done'))) execFileSync(process.execPath, [path.join(root, 'bench/layer.ts'), '--runs', '1'], { stdio: 'inherit' })
const image = path.join(work, 'image-120')
if (!fs.existsSync(path.join(image, 'index.json'))) {
  await run(process.execPath, [cli, 'append', 'scratch', `oci:${image}:v1`, '--dir', tree, '--platform', 'linux/amd64', '-q'])
}

const series: Record<string, { seconds: number; peakMb: number }[]> = { 'copy to bfc:': [], 'copy to oci:': [] }
for (let i = 0; i < runs; i++) {
  const out = fs.mkdtempSync(path.join(work, 'bfc-'))
  const toBfc = async () => series['copy to bfc:']?.push(await timed([cli, 'copy', '-q', `oci:${image}:v1`, `bfc:${out}/image.bfc:v1`]))
  const toOci = async () => series['copy to oci:']?.push(await timed([cli, 'copy', '-q', `oci:${image}:v1`, `oci:${out}/layout:v1`]))
  for (const f of i % 2 === 0 ? [toBfc, toOci] : [toOci, toBfc]) await f()
  fs.rmSync(out, { recursive: true, force: true })
}
process.stdout.write(`bfc benchmark: the 120 MiB bench image (one gzip layer), ${runs} rounds (median)\n`)
for (const [k, v] of Object.entries(series)) {
  process.stdout.write(
    `${k.padEnd(16)} ${median(v.map((s) => s.seconds)).toFixed(2)} s  peak ${median(v.map((s) => s.peakMb)).toFixed(0)} MiB  (runs: ${v.map((s) => s.seconds.toFixed(2)).join(' ')})\n`,
  )
}
const ratio = median(series['copy to bfc:']?.map((s) => s.seconds) ?? []) / median(series['copy to oci:']?.map((s) => s.seconds) ?? [])
const perRound = median(
  Array.from({ length: runs }, (_, i) => (series['copy to bfc:']?.[i]?.seconds as number) / (series['copy to oci:']?.[i]?.seconds as number)),
)
process.stdout.write(
  `packing into bfc: / writing a layout    ${ratio.toFixed(2)}  (target <= 1.0: ${ratio <= 1 ? 'met' : 'MISSED'}; the rounds' own ratios ${perRound.toFixed(2)})\n`,
)

// A 1 GiB file, made once.
const big = path.join(work, 'big-1g.bfc')
if (!fs.existsSync(big)) {
  process.stdout.write(`writing a 1 GiB BFC file in ${big} ...\n`)
  const w = await BfcWriter.begin(big, 'big')
  const mib = randomBytes(1 << 20)
  for (let i = 0; i < 1000; i++) await w.addStream(`blobs/sha256/${i.toString(16).padStart(64, '0')}`, Readable.from([mib]))
  await w.addBytes(`blobs/sha256/${'f'.repeat(64)}`, randomBytes(1024))
  await w.finish()
}
const opens: number[] = []
for (let i = 0; i < Math.max(runs, 10); i++) {
  const start = performance.now()
  const f = await BfcFile.open(big, 'big')
  const e = f.entries.get(`blobs/sha256/${'f'.repeat(64)}`)
  if (!e || (await f.read(e, 4096)).length !== 1024) throw new Error('bench: the 1 KiB blob did not read back')
  opens.push(performance.now() - start)
}
const ms = median(opens)
process.stdout.write(
  `open a ${(fs.statSync(big).size / 2 ** 30).toFixed(2)} GiB bfc: file and read a 1 KiB blob   ${ms.toFixed(1)} ms  (target <= 20 ms: ${ms <= 20 ? 'met' : 'MISSED'}; runs: ${opens.map((x) => x.toFixed(1)).join(' ')})\n`,
)
