/**
 * A Node.js project as npm leaves it, written by hand (no npm, no network): package.json,
 * package-lock.json (v3), node_modules with a prod package, a dev package with a nested dev
 * dependency and a .bin link, a workspace package linked from node_modules, and the app's files.
 */
import fs from 'node:fs/promises'
import path from 'node:path'

/** The paths the project's parts hold, relative to its root. */
export const NODE_APP = {
  prod: 'node_modules/left-pad',
  dev: ['node_modules/mocha-ish', 'node_modules/mocha-ish/node_modules/debug-ish'],
  devBin: 'node_modules/.bin/mocha-ish',
  prodBin: 'node_modules/.bin/left-pad',
  link: 'node_modules/@app/util',
  workspace: 'packages/util',
  app: ['server.js', 'lib/routes.js'],
} as const

async function put(root: string, rel: string, content: string, mode = 0o644): Promise<void> {
  const p = path.join(root, rel)
  await fs.mkdir(path.dirname(p), { recursive: true })
  await fs.writeFile(p, content, { mode })
}

/** Writes the project into `root` (which may exist). */
export async function writeNodeApp(root: string, o: { start?: 'main' | 'script' | 'none'; lockVersion?: string } = {}): Promise<void> {
  const start = o.start ?? 'main'
  const pkg = {
    name: 'demo-app',
    version: '2.1.0',
    license: 'Apache-2.0',
    description: 'a demo',
    ...(start === 'main' ? { main: 'server.js' } : {}),
    scripts: start === 'script' ? { start: 'node server.js' } : { test: 'mocha-ish' },
    workspaces: ['packages/util'],
    dependencies: { 'left-pad': '1.3.0', '@app/util': '*' },
    devDependencies: { 'mocha-ish': '9.0.0' },
  }
  await put(root, 'package.json', `${JSON.stringify(pkg, null, 2)}\n`)
  await put(root, 'server.js', "require('left-pad')\nrequire('@app/util')\n")
  await put(root, 'lib/routes.js', 'module.exports = []\n')
  await put(root, 'packages/util/package.json', '{"name":"@app/util","version":"0.1.0"}\n')
  await put(root, 'packages/util/index.js', 'module.exports = {}\n')
  await put(root, 'node_modules/left-pad/package.json', `{"name":"left-pad","version":"${o.lockVersion ?? '1.3.0'}","bin":"cli.js"}\n`)
  await put(root, 'node_modules/left-pad/index.js', 'module.exports = (s) => s\n')
  await put(root, 'node_modules/left-pad/cli.js', '#!/usr/bin/env node\n', 0o755)
  await put(root, 'node_modules/mocha-ish/package.json', '{"name":"mocha-ish","version":"9.0.0","bin":"bin/mocha"}\n')
  await put(root, 'node_modules/mocha-ish/bin/mocha', '#!/usr/bin/env node\n', 0o755)
  await put(root, 'node_modules/mocha-ish/node_modules/debug-ish/package.json', '{"name":"debug-ish","version":"1.0.0"}\n')
  await fs.mkdir(path.join(root, 'node_modules/.bin'), { recursive: true })
  await fs.symlink('../mocha-ish/bin/mocha', path.join(root, NODE_APP.devBin))
  await fs.symlink('../left-pad/cli.js', path.join(root, NODE_APP.prodBin))
  await fs.mkdir(path.join(root, 'node_modules/@app'), { recursive: true })
  await fs.symlink('../../packages/util', path.join(root, NODE_APP.link))
  const lock = {
    name: 'demo-app',
    version: '2.1.0',
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: 'demo-app', version: '2.1.0', workspaces: ['packages/util'] },
      'node_modules/@app/util': { resolved: 'packages/util', link: true },
      'node_modules/left-pad': { version: '1.3.0', bin: { 'left-pad': 'cli.js' } },
      'node_modules/mocha-ish': { version: '9.0.0', dev: true, bin: { mocha: 'bin/mocha' } },
      'node_modules/mocha-ish/node_modules/debug-ish': { version: '1.0.0', dev: true },
      'packages/util': { name: '@app/util', version: '0.1.0' },
    },
  }
  await put(root, 'package-lock.json', `${JSON.stringify(lock, null, 2)}\n`)
}
