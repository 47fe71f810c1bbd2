/**
 * Bundles the command-line program (dist/cli/main.js and every package it imports) into one
 * file, dist/cli/ocikit.mjs, which bin/ocikit.js loads. Node loads one file much faster than
 * the few hundred small modules behind it: `ocikit --version` takes about 0.08 s instead of
 * 0.16 s on the project machine, and every CLI run pays that. The library (dist/index.js)
 * stays unbundled for programs that import it.
 */
import { writeFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { build, type Plugin } from 'esbuild'

/**
 * commander requires node:child_process when it loads, for executable subcommands, which
 * ocikit has none of; loading it (with net and dgram behind it) costs every start some 10 ms.
 * Inside commander it becomes a stand-in that loads the real module on first use.
 */
const lazyChildProcess: Plugin = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      args.importer.includes('node_modules/commander/') ? { path: 'lazy-child-process', namespace: 'ocikit-lazy' } : undefined,
    )
    b.onLoad({ filter: /.*/, namespace: 'ocikit-lazy' }, () => ({
      contents: "module.exports = new Proxy({}, { get: (_, key) => process.getBuiltinModule('node:child_process')[key] })",
      loader: 'js',
    }))
  },
}

/**
 * Node's own modules, imported the ESM way, get a module namespace made from every export, and
 * making it runs every lazy getter: `import http from 'node:http'` alone loads undici for
 * `http.WebSocket`. In the bundle each of Node's modules becomes a CommonJS module around
 * `process.getBuiltinModule()`.
 */
const builtinsByGetter: Plugin = {
  name: 'builtins-by-getter',
  setup(b) {
    const names = new Set(builtinModules)
    b.onResolve({ filter: /^[a-z_/:]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, '')
      if (!names.has(name) || (name === 'child_process' && args.importer.includes('node_modules/commander/'))) return undefined
      return { path: `node:${name}`, namespace: 'ocikit-builtin' }
    })
    b.onLoad({ filter: /.*/, namespace: 'ocikit-builtin' }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)})`,
      loader: 'js',
    }))
  },
}

/**
 * esbuild hands a CommonJS module to an ESM importer through `__toESM`, which copies the
 * descriptor of every property; on `node:util` that alone loads a dozen of Node's internal
 * modules (parseArgs, diff, worker_threads...), some 7 ms of every start. For Node's modules a
 * wrapper that inherits from the module does the same job: named imports are read through it
 * when used. The bundle fails to build if esbuild's output no longer has the expected shape.
 */
function importBuiltinsByPrototype(code: string): string {
  const call = /__toESM\((require_node_[a-z_]+)\(\), ?1\)/g
  if (!call.test(code)) throw new Error('bundle-cli: no __toESM(require_node_*(), 1) in the bundle; esbuild changed its output')
  const helper = 'var __builtinESM = (m) => ({ __proto__: m, default: m });\n'
  return helper + code.replace(call, '__builtinESM($1())')
}

const result = await build({
  entryPoints: ['dist/cli/main.js'],
  outfile: 'dist/cli/ocikit.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  sourcemap: 'linked',
  logLevel: 'warning',
  write: false,
  // Native addons, loaded from node_modules when present (fs-xattr is optional; @node-rs/crc32 has a JavaScript fallback) and hash-wasm, large and needed only on a Node without crypto.argon2.
  external: ['fs-xattr', '@node-rs/crc32', 'hash-wasm'],
  plugins: [lazyChildProcess, builtinsByGetter],
  // For a require() the plugins do not resolve at build time (an external package).
  banner: { js: "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);" },
})
for (const f of result.outputFiles) {
  // The helper goes on its own first line, so the source map only needs its lines shifted by one.
  const text = f.path.endsWith('.mjs')
    ? importBuiltinsByPrototype(f.text)
    : f.path.endsWith('.map')
      ? f.text.replace('"mappings": "', '"mappings": ";')
      : f.text
  writeFileSync(f.path, text)
}
