/**
 * Load run (issue 19): N images of 20 random layers each pushed at once from a layout to a local
 * docker-registry, then pulled back at once into one new layout; time and peak memory of each
 * phase (each in a process of its own), at each N; every pulled image checked against its source
 * and the layout fsck'd. Usage: node bench/load.ts [--images 10,50,200] [--layers 20] [--layer-bytes 100000]
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { fsck, list } from '../src/api.ts'
import { startRegistry } from '../test/helpers/registry.ts'
import { has, root, work } from './common.ts'

const run = promisify(execFile)
const args = process.argv.slice(2)
const arg = (name: string, dflt: string) => (args.includes(name) ? (args[args.indexOf(name) + 1] as string) : dflt)
const counts = arg('--images', '10,50,200').split(',').map(Number)
const layers = arg('--layers', '20')
const layerBytes = arg('--layer-bytes', '100000')
const CHILD = path.join(root, 'test/helpers/load-child.ts')
if (!has('docker-registry')) {
  process.stdout.write('docker-registry not installed: no load run\n')
  process.exit(0)
}

interface Phase {
  ms: number
  maxRssMiB: number
  failed: string[]
}
async function phase(...argv: string[]): Promise<Phase> {
  const { stdout } = await run(process.execPath, [CHILD, ...argv], { maxBuffer: 1 << 26 })
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as Phase
}

const cleanups: (() => unknown)[] = []
const ctx = { after: (f: () => unknown) => cleanups.push(f) } as unknown as import('node:test').TestContext
try {
  process.stdout.write(`load run: images of ${layers} random layers of ${layerBytes} bytes, local docker-registry\n`)
  process.stdout.write('images  push s  push peak MiB  pull s  pull peak MiB  failures  pulled images checked\n')
  for (const n of counts) {
    const dir = fs.mkdtempSync(path.join(work, `load-${n}-`))
    try {
      const src = path.join(dir, 'src')
      const dst = path.join(dir, 'dst')
      const made = await phase('make', '-', src, String(n), layers, layerBytes)
      if (made.failed.length) throw new Error(`making the images failed: ${made.failed[0]}`)
      const reg = await startRegistry(ctx)
      const push = await phase('push', src, `${reg.host}/load/app`, String(n))
      const pull = await phase('pull', `${reg.host}/load/app`, dst, String(n))
      // Every tag of the pulled layout names the image it was pushed from, and fsck is clean.
      const want = new Map((await list(`oci:${src}`)).map((e) => [e.tag, e.descriptor.digest]))
      const got = new Map((await list(`oci:${dst}`)).map((e) => [e.tag, e.descriptor.digest]))
      let same = 0
      for (const [tag, d] of want) if (got.get(tag) === d) same++
      const report = await fsck(`oci:${dst}`)
      const failures = push.failed.length + pull.failed.length + (report.ok ? 0 : 1)
      process.stdout.write(
        `${String(n).padStart(6)}  ${(push.ms / 1000).toFixed(1).padStart(6)}  ${String(push.maxRssMiB).padStart(13)}  ${(pull.ms / 1000).toFixed(1).padStart(6)}  ${String(pull.maxRssMiB).padStart(13)}  ${String(failures).padStart(8)}  ${same} of ${n}${report.ok ? ', fsck clean' : ', FSCK FAILED'}\n`,
      )
      for (const f of [...push.failed, ...pull.failed].slice(0, 5)) process.stdout.write(`        failure: ${f}\n`)
    } finally {
      for (const f of cleanups.splice(0).reverse()) await f()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
} finally {
  for (const f of cleanups.reverse()) await f()
}
