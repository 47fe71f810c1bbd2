/**
 * The project's bench and test tree: a deterministic synthetic Node.js application with its
 * dependencies (many small compressible text files, a few large binaries, symlinks, hardlinks,
 * executables, empty directories, long and non-ASCII names). The same seed and size give the
 * same tree, byte for byte and time for time, as the reference generator the project's figures
 * were first taken with (gen-tree.mjs, kept beside the project's design), so figures stay
 * comparable.
 *
 *   node bench/gen-tree.ts OUT_DIR [--mb 120] [--seed 1] [--touch N [--under REL]]
 *
 * --touch rewrites N existing small files (seeded) to model an edit between two builds;
 * --under limits it to one subdirectory (e.g. src, the application's own code).
 */
import fs from 'node:fs'
import path from 'node:path'

/** The seeded random source (mulberry32) and what the generator draws from it. */
class Draw {
  #state: number
  constructor(seed: number) {
    this.#state = seed >>> 0
  }
  /** A number in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let t = this.#state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)] as T
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }
}

const WORDS = [
  'function', 'return', 'const', 'let', 'var', 'if', 'else', 'for', 'while', 'import', 'export', 'default', 'class', 'extends',
  'this', 'new', 'await', 'async', 'typeof', 'null', 'undefined', 'true', 'false', 'module', 'exports', 'require', 'value', 'options',
  'callback', 'error', 'result', 'buffer', 'length', 'index', 'object', 'string', 'number', 'Promise', 'resolve', 'reject', 'prototype',
  'handler', 'stream', 'config', 'parse', 'format', 'encode', 'decode', 'push', 'map', 'filter', 'reduce', 'keys', 'entries', 'state',
] // biome-ignore format: a word list
const PUNCT = [' = ', '(', ')', '{\n', '}\n', ';\n', ', ', '.', ' => ', '[', ']', ' + ', ' === ', ' && ', ' || ', '  ', '\n']
/** Every file, directory and link of the tree carries this time. */
const FIXED_TIME = new Date('2024-01-02T03:04:05Z')

/** Code-like text of `bytes` bytes. */
function text(r: Draw, bytes: number): Buffer {
  const parts: string[] = []
  let n = 0
  while (n < bytes) {
    const w = r.next() < 0.6 ? r.pick(WORDS) : r.pick(PUNCT)
    const x = r.next() < 0.05 ? w + r.int(0, 9999) : w
    parts.push(x)
    n += x.length
  }
  return Buffer.from(parts.join('')).subarray(0, bytes)
}

/** Incompressible bytes (native code, media). */
function binary(r: Draw, bytes: number): Buffer {
  const b = Buffer.allocUnsafe(bytes)
  for (let i = 0; i < bytes; i += 4) b.writeUInt32LE((r.next() * 4294967296) >>> 0, Math.min(i, bytes - 4))
  return b
}

/** What a generated tree holds. */
export interface TreeStats {
  files: number
  links: number
  bytes: number
}

/** Makes the tree in `out`, which must be missing or empty: about `mb` MiB of file content. */
export function generateTree(out: string, o: { mb?: number; seed?: number } = {}): TreeStats {
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) throw new Error(`${out} exists and is not empty`)
  const r = new Draw(o.seed ?? 1)
  const budget = (o.mb ?? 120) * 1024 * 1024
  const binBudget = budget * 0.12 // real dependency trees are mostly text; about a tenth is native code and media
  const stats: TreeStats = { files: 0, links: 0, bytes: 0 }
  let binBytes = 0
  const pkgNames = Array.from({ length: 400 }, (_, i) => `${i % 7 === 0 ? `@scope${i % 13}/` : ''}${r.pick(WORDS)}-${r.pick(WORDS)}${i}`)
  const write = (p: string, data: Buffer, mode = 0o644) => {
    fs.mkdirSync(path.dirname(p), { recursive: true })
    fs.writeFileSync(p, data)
    fs.chmodSync(p, mode)
    fs.utimesSync(p, FIXED_TIME, FIXED_TIME)
    stats.bytes += data.length
    stats.files++
  }

  // The application's own code.
  for (let i = 0; i < 40; i++) write(path.join(out, 'src', r.pick(['lib', 'routes', 'models', 'util']), `${r.pick(WORDS)}-${i}.js`), text(r, r.int(300, 12000)))
  const deps = Object.fromEntries(pkgNames.slice(0, 30).map((n) => [n, '^1.0.0']))
  write(path.join(out, 'package.json'), Buffer.from(JSON.stringify({ name: 'bench-app', version: '1.0.0', main: 'src/index.js', dependencies: deps }, null, 2)))
  write(path.join(out, 'src', 'index.js'), text(r, 2000))
  write(path.join(out, 'bin', 'start.sh'), Buffer.from('#!/bin/sh\nexec node /app/src/index.js "$@"\n'), 0o755)
  fs.mkdirSync(path.join(out, 'tmp', 'empty', 'dir'), { recursive: true })
  // Awkward names: a long component, a very long path, non-ASCII, spaces and a tab.
  write(path.join(out, 'assets', `${'x'.repeat(120)}.txt`), text(r, 500))
  const deep = Array.from({ length: 12 }, (_, i) => `deeply-nested-directory-${i}`)
  write(path.join(out, 'assets', ...deep, 'file-at-the-bottom-of-a-long-path.json'), text(r, 300))
  write(path.join(out, 'assets', 'données', 'überschrift – 表.md'), text(r, 800))
  write(path.join(out, 'assets', 'with space', 'and\ttab.txt'), text(r, 100))

  // Dependencies until the budget is spent.
  const nm = path.join(out, 'node_modules')
  for (let k = 0; stats.bytes < budget; k++) {
    const name = (pkgNames[k % pkgNames.length] as string) + (k >= pkgNames.length ? `-v${Math.floor(k / pkgNames.length)}` : '')
    const dir = path.join(nm, name)
    write(
      path.join(dir, 'package.json'),
      Buffer.from(JSON.stringify({ name, version: `${r.int(0, 9)}.${r.int(0, 30)}.${r.int(0, 99)}`, main: 'index.js' }, null, 2)),
    )
    write(path.join(dir, 'README.md'), text(r, r.int(500, 6000)))
    write(path.join(dir, 'index.js'), text(r, r.int(200, 3000)))
    const nfiles = r.int(3, 40)
    for (let i = 0; i < nfiles && stats.bytes < budget; i++) {
      const sub = r.pick(['lib', 'dist', 'dist/esm', 'dist/cjs', 'src', 'types'])
      const x = r.next()
      if (x < 0.002 && binBytes < binBudget) {
        const b = binary(r, r.int(1, 4) * 1024 * 1024)
        binBytes += b.length
        write(path.join(dir, sub, `native-${i}.node`), b, 0o755)
      } else if (x < 0.02 && binBytes < binBudget) {
        const b = binary(r, r.int(4, 100) * 1024)
        binBytes += b.length
        write(path.join(dir, sub, `blob-${i}.bin`), b)
      } else {
        write(
          path.join(dir, sub, `${r.pick(WORDS)}-${i}${r.pick(['.js', '.mjs', '.d.ts', '.json', '.map'])}`),
          text(r, Math.floor(Math.exp(r.next() * 11.8)) + 100),
        )
      }
    }
    if (r.next() < 0.15) {
      // An executable and its .bin symlink.
      write(path.join(dir, 'bin', 'cli.js'), Buffer.from(`#!/usr/bin/env node\n${text(r, r.int(200, 2000)).toString()}`), 0o755)
      fs.mkdirSync(path.join(nm, '.bin'), { recursive: true })
      const link = path.join(nm, '.bin', name.replace('/', '-'))
      if (!fs.existsSync(link)) {
        fs.symlinkSync(path.relative(path.join(nm, '.bin'), path.join(dir, 'bin', 'cli.js')), link)
        stats.links++
      }
    }
    if (r.next() < 0.03) {
      // A hardlinked duplicate, as package managers with a store make.
      const dst = path.join(dir, 'index.cjs')
      if (!fs.existsSync(dst)) {
        fs.linkSync(path.join(dir, 'index.js'), dst)
        stats.links++
      }
    }
  }
  pinTimes(out)
  return stats
}

/** Sets every time under `dir` (deepest first) to the tree's fixed time, so two runs give identical trees. */
function pinTimes(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) pinTimes(p)
    else if (e.isSymbolicLink()) fs.lutimesSync(p, FIXED_TIME, FIXED_TIME)
  }
  fs.utimesSync(dir, FIXED_TIME, FIXED_TIME)
}

/** Rewrites `count` small files (under 8 KiB, not hardlinked) of a generated tree, under `under`: an edit between two builds. */
export function touchTree(out: string, count: number, o: { seed?: number; under?: string } = {}): string[] {
  const r = new Draw(o.seed ?? 1)
  const files: string[] = []
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) {
        const st = fs.statSync(p)
        if (st.size < 8192 && st.nlink === 1) files.push(p)
      }
    }
  }
  walk(path.join(out, o.under ?? ''))
  files.sort()
  const touched: string[] = []
  for (let i = 0; i < count && files.length > 0; i++) {
    const p = files[Math.floor(r.next() * files.length)] as string
    fs.writeFileSync(p, text(r, r.int(200, 4000)))
    touched.push(p)
  }
  return touched
}

if (import.meta.main) {
  const args = process.argv.slice(2)
  const opt = (name: string, dflt: number) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : dflt)
  const out = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'))
  if (!out) {
    process.stderr.write('usage: node bench/gen-tree.ts OUT_DIR [--mb 120] [--seed 1] [--touch N [--under REL]]\n')
    process.exit(2)
  }
  const touch = opt('touch', 0)
  if (touch > 0) {
    const under = args.includes('--under') ? args[args.indexOf('--under') + 1] : undefined
    const t = touchTree(out, touch, { seed: opt('seed', 1), under })
    process.stdout.write(`touched ${t.length} file(s) in ${path.join(out, under ?? '')}\n`)
  } else {
    process.stdout.write(`${JSON.stringify({ out, seed: opt('seed', 1), ...generateTree(out, { mb: opt('mb', 120), seed: opt('seed', 1) }) })}\n`)
  }
}
