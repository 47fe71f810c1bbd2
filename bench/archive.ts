/**
 * Archive benchmark: `ocikit copy` and `skopeo copy` of the bench image (the 120 MiB tree as one
 * gzip layer) from an oci: layout to a docker-archive and an oci-archive and back, taking turns,
 * median of N runs, with peak memory from /usr/bin/time; and the bytes read to copy one image out
 * of a docker-archive of ten.
 * Usage: node bench/archive.ts [--runs 5]
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { cli, has, hasTime, median, root, work } from './common.ts'
import { generateTree } from './gen-tree.ts'

const run = promisify(execFile)
const args = process.argv.slice(2)
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 5

/** Runs a command; its wall time and (with /usr/bin/time) peak memory in MB. */
async function measure(cmd: string, argv: string[]): Promise<{ s: number; mb?: number }> {
  const t = performance.now()
  if (!hasTime) {
    await run(cmd, argv, { maxBuffer: 1 << 24 })
    return { s: (performance.now() - t) / 1000 }
  }
  const { stderr } = await run('/usr/bin/time', ['-f', '%M', cmd, ...argv], { maxBuffer: 1 << 24 })
  return { s: (performance.now() - t) / 1000, mb: Number(stderr.trim().split('\n').at(-1)) / 1024 }
}

fs.mkdirSync(work, { recursive: true })
const tree = path.join(work, 'tree-120')
if (!fs.existsSync(path.join(tree, '.done'))) {
  fs.rmSync(tree, { recursive: true, force: true })
  generateTree(tree, { mb: 120 })
  fs.writeFileSync(path.join(tree, '.done'), '')
}
const layout = path.join(work, 'image-120')
if (!fs.existsSync(path.join(layout, 'index.json'))) {
  await run(process.execPath, [cli, 'append', 'scratch', `oci:${layout}:v1`, '--dir', tree, '--platform', 'linux/amd64', '-q'])
}

const conversions: [string, (dir: string) => [string, string]][] = [
  ['layout -> docker-archive', (d) => [`oci:${layout}:v1`, `docker-archive:${d}/d.tar:bench/app:1`]],
  ['layout -> oci-archive', (d) => [`oci:${layout}:v1`, `oci-archive:${d}/o.tar:v1`]],
  ['docker-archive -> layout', (d) => [`docker-archive:${d}/d.tar`, `oci:${d}/from-d:v1`]],
  ['oci-archive -> layout', (d) => [`oci-archive:${d}/o.tar:v1`, `oci:${d}/from-o:v1`]],
]
const series: Record<string, { s: number[]; mb: number[] }> = {}
const add = (k: string, m: { s: number; mb?: number }) => {
  series[k] ??= { s: [], mb: [] }
  series[k].s.push(m.s)
  if (m.mb !== undefined) series[k].mb.push(m.mb)
}
for (let i = 0; i < runs; i++) {
  const tools = has('skopeo') ? (i % 2 === 0 ? ['ocikit', 'skopeo'] : ['skopeo', 'ocikit']) : ['ocikit']
  for (const tool of tools) {
    const dir = fs.mkdtempSync(path.join(work, `archive-${tool}-`))
    for (const [what, names] of conversions) {
      const [src, dst] = names(dir)
      if (tool === 'ocikit') add(`ocikit ${what}`, await measure(process.execPath, [cli, 'copy', '-q', src, dst]))
      else add(`skopeo ${what}`, await measure('skopeo', ['copy', '-q', src, dst]))
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
process.stdout.write(`archive benchmark: 120 MiB image (one gzip layer), ${runs} runs (median; tools take turns)\n`)
for (const [what] of conversions) {
  const o = series[`ocikit ${what}`]
  const s = series[`skopeo ${what}`]
  if (!o) continue
  const mem = o.mb.length ? `, peak ${median(o.mb).toFixed(0)} MB` : ''
  const vs = s
    ? `  skopeo ${median(s.s).toFixed(2)} s  ratio ${(median(o.s) / median(s.s)).toFixed(2)} (target <= 0.9: ${median(o.s) / median(s.s) <= 0.9 ? 'met' : 'MISSED'})`
    : ''
  process.stdout.write(`${what.padEnd(26)} ocikit ${median(o.s).toFixed(2)} s${mem}${vs}\n`)
}

// One image out of a docker-archive of ten: what the copy reads, against the file's size.
const { copy, write, randomImage } = await import(path.join(root, 'dist/index.js'))
const ten = path.join(work, 'ten.tar')
if (!fs.existsSync(ten)) {
  for (let i = 0; i < 10; i++) await write(`docker-archive:${ten}:app:${i}`, await randomImage({ seed: 100 + i, layers: 2, layerSize: 2 << 20 }))
}
const rchar = () => Number(/rchar: (\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'))?.[1] ?? 0)
const out = fs.mkdtempSync(path.join(work, 'one-of-ten-'))
await copy(`docker-archive:${ten}:app:0`, `oci:${out}/warm:v1`) // loads what the first copy loads
const before = rchar()
await copy(`docker-archive:${ten}:@5`, `oci:${out}/five:v1`)
const read = rchar() - before
fs.rmSync(out, { recursive: true, force: true })
const size = fs.statSync(ten).size
process.stdout.write(
  `one image of a 10-image docker-archive: read ${(read / 2 ** 20).toFixed(1)} MiB of the file's ${(size / 2 ** 20).toFixed(1)} MiB (${((100 * read) / size).toFixed(0)}%)\n`,
)
