/**
 * Start-up benchmark: `--version` and `inspect oci:DIR:TAG` of a small layout, for the CLI as
 * installed (bin/ocikit.js on the built dist/) and the single executable (dist/sea/, built when
 * missing), with skopeo's `--version` as the Go tools' figure, taking turns, median of N runs.
 * Usage: node bench/startup.ts [--runs 20]
 */
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { has, median, root, work } from './common.ts'

const run = promisify(execFile)
const args = process.argv.slice(2)
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 20
const exe = path.join(root, 'dist', 'sea', `ocikit-linux-${process.arch}`)
if (!fs.existsSync(exe)) execFileSync(process.execPath, [path.join(root, 'scripts', 'build-sea.ts')], { stdio: 'inherit' })
const layout = path.join(work, 'startup-layout')
if (!fs.existsSync(path.join(layout, 'index.json'))) {
  fs.mkdirSync(work, { recursive: true })
  await run(process.execPath, [path.join(root, 'bin/ocikit.js'), 'append', 'scratch', `oci:${layout}:v1`, '--dir', path.join(root, 'docs'), '-q'])
}
const cases: [string, string, string[]][] = [
  ['installed CLI --version', process.execPath, [path.join(root, 'bin/ocikit.js'), '--version']],
  ['single executable --version', exe, ['--version']],
  ['installed CLI inspect', process.execPath, [path.join(root, 'bin/ocikit.js'), 'inspect', `oci:${layout}:v1`]],
  ['single executable inspect', exe, ['inspect', `oci:${layout}:v1`]],
  ...(has('skopeo') ? [['skopeo --version', 'skopeo', ['--version']] as [string, string, string[]]] : []),
]
const times = new Map<string, number[]>()
for (let i = 0; i < runs; i++) {
  for (const [name, cmd, argv] of i % 2 === 0 ? cases : [...cases].reverse()) {
    const t = performance.now()
    await run(cmd, argv)
    times.set(name, [...(times.get(name) ?? []), performance.now() - t])
  }
}
const target: Record<string, number> = { 'installed CLI --version': 90, 'single executable --version': 60 }
process.stdout.write(`start-up benchmark: median of ${runs} runs, taking turns\n`)
for (const [name] of cases) {
  const m = median(times.get(name) ?? [])
  const goal = target[name]
  process.stdout.write(`${name.padEnd(30)} ${m.toFixed(0)} ms${goal ? `  (target <= ${goal} ms: ${m <= goal ? 'met' : 'MISSED'})` : ''}\n`)
}
