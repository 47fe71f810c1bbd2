#!/usr/bin/env node
// ocikit command-line entry. Checks the Node.js version before loading anything that needs it.
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 15)) {
  process.stderr.write(
    `ocikit: needs Node.js 22.15 or newer, and this is ${process.versions.node}: install a newer Node (https://nodejs.org, or 'nvm install 24')\n`,
  )
  process.exit(1)
}
// Node's on-disk compile cache (in the OS temp dir) roughly halves module loading on later runs.
process.getBuiltinModule('node:module').enableCompileCache?.()
// The CLI is bundled into one file (scripts/bundle-cli.ts): one module loads much faster than hundreds.
await import('../dist/cli/ocikit.mjs')
