/**
 * `ocikit build` from the command line onto a base in a real registry, read back by podman
 * (pull, create, export) and skopeo (inspect --config): the base's files and the app's, modes
 * and owners, node_modules/.bin links; the base mounted, not downloaded; a rebuild after one
 * edit sends only the application layer and the config. Bad input pushes nothing.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { write } from '../../src/api.ts'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import { layerFromFiles } from '../../src/layer/encode.ts'
import { ocikit } from '../helpers/cli.ts'
import { NODE_APP, writeNodeApp } from '../helpers/node-app.ts'
import { needPeers, peer, podmanExport } from '../helpers/peers.ts'
import { startRegistry } from '../helpers/registry.ts'
import { tempDir } from '../helpers/tmp.ts'

const amd64 = { os: 'linux', architecture: 'amd64' }

/** podman's export of an image: `type mode owner path[ -> target]` per entry. */
async function exported(dir: string, name: string): Promise<Map<string, string>> {
  const out = await podmanExport(dir, name)
  const map = new Map<string, string>()
  for (const line of (await peer('tar', ['--numeric-owner', '-tvf', out])).stdout.split('\n')) {
    const f = line.split(/\s+/)
    if (f.length < 6) continue
    const p = f.slice(5).join(' ')
    const [name_, target] = p.split(' -> ')
    map.set((name_ as string).replace(/\/$/, ''), `${f[0]} ${f[1]}${target ? ` -> ${target}` : ''}`)
  }
  return map
}

describe('build: real registry, podman and skopeo', needPeers('docker-registry', 'skopeo', 'podman'), () => {
  test('a Node.js app onto a base in the registry: podman sees the files, owners and links; skopeo the config; a rebuild sends one layer', async (t) => {
    const r = await startRegistry(t)
    const dir = await tempDir(t)
    const reg = (n: string) => `${r.host}/${n}`
    const base = await appendLayers(scratch(amd64), [layerFromFiles({ 'etc/os-release': 'ID=base\n', 'usr/bin/node': { content: 'ELF', mode: 0o755 } })])
    await write(reg('base:1'), base)
    const app = path.join(dir, 'app')
    await writeNodeApp(app)
    const env = { OCIKIT_CACHE_DIR: path.join(dir, 'cache') }
    const args = ['build', app, '--from', reg('base:1'), '--to', reg('team/app:1'), '--chown', '1000:1000', '--env', 'PORT=8080', '--expose', '8080']
    const b = await ocikit([...args, '--label', 'team=core', '--json'], { env })
    assert.equal(b.code, 0, b.stderr)
    const first = JSON.parse(b.stdout)
    assert.equal(first.blobs.mounted, 1, 'the base layer was mounted from base, not downloaded')
    assert.equal(first.blobs.written, 4, 'three added layers and the config')

    const files = await exported(dir, reg('team/app:1'))
    assert.match(files.get('etc/os-release') ?? '', /^-rw-r--r-- 0\/0/, "the base's files")
    assert.match(files.get('app/server.js') ?? '', /^-rw-r--r-- 1000\/1000/)
    assert.match(files.get('app') ?? '', /^drwxr-xr-x 1000\/1000/, 'the directories the layers create are owned as --chown says')
    assert.match(files.get(`app/${NODE_APP.prod}/cli.js`) ?? '', /^-rwxr-xr-x 1000\/1000/)
    assert.equal(files.get(`app/${NODE_APP.prodBin}`)?.endsWith('-> ../left-pad/cli.js'), true, 'node_modules/.bin links intact')
    assert.equal(files.get(`app/${NODE_APP.link}`)?.endsWith('-> ../../packages/util'), true)
    assert.ok(files.has('app/packages/util/index.js'))

    const cfg = JSON.parse((await peer('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${reg('team/app:1')}`])).stdout)
    assert.deepEqual(cfg.config.Cmd, ['node', '/app/server.js'])
    assert.equal(cfg.config.WorkingDir, '/app')
    assert.ok(cfg.config.Env.includes('PORT=8080') && cfg.config.Env.includes('NODE_ENV=production'))
    assert.deepEqual(cfg.config.ExposedPorts, { '8080/tcp': {} })
    assert.equal(cfg.config.Labels.team, 'core')
    assert.equal(cfg.config.Labels['org.opencontainers.image.base.name'], reg('base:1'))

    await fs.writeFile(path.join(app, 'lib/routes.js'), 'module.exports = ["/health"]\n')
    const again = await ocikit([...args, '--label', 'team=core', '--json'], { env })
    assert.equal(again.code, 0, again.stderr)
    const second = JSON.parse(again.stdout)
    assert.deepEqual(
      second.layers.map((l: { origin: string }) => l.origin),
      ['cache', 'cache', 'built'],
    )
    assert.equal(second.blobs.written, 2, 'only the application layer and the config are sent')
    const after = await exported(dir, reg('team/app:1'))
    assert.ok(after.has('app/lib/routes.js'))
  })

  test('--diff deletes what it should in podman export; --platform all gives two children sharing the added layers', async (t) => {
    const r = await startRegistry(t)
    const dir = await tempDir(t)
    const reg = (n: string) => `${r.host}/${n}`
    await fs.mkdir(path.join(dir, 'old/srv'), { recursive: true })
    await fs.writeFile(path.join(dir, 'old/srv/keep'), 'k')
    await fs.writeFile(path.join(dir, 'old/srv/drop'), 'd')
    const base = await appendLayers(scratch(amd64), [layerFromFiles({ 'srv/keep': 'k', 'srv/drop': 'd' })])
    await write(reg('base:1'), base)
    await fs.cp(path.join(dir, 'old'), path.join(dir, 'new'), { recursive: true })
    await fs.rm(path.join(dir, 'new/srv/drop'))
    const d = await ocikit(['build', '--from', reg('base:1'), '--diff', `${dir}/old:${dir}/new`, '--to', reg('diffed:1'), '--no-cache'])
    assert.equal(d.code, 0, d.stderr)
    const files = await exported(dir, reg('diffed:1'))
    assert.ok(files.has('srv/keep'))
    assert.ok(!files.has('srv/drop'), 'the whiteout deleted it')

    const idx = await ocikit(['copy', `oci:${dir}/none`, reg('x')]) // a name that does not exist: a clear error
    assert.notEqual(idx.code, 0)
    const { randomIndex } = await import('../../src/image/random.ts')
    await write(reg('multi:1'), await randomIndex({ layers: 1, seed: 3 }))
    await fs.mkdir(path.join(dir, 'ctx'))
    await fs.writeFile(path.join(dir, 'ctx/a.txt'), 'a')
    const m = await ocikit(['build', path.join(dir, 'ctx'), '--from', reg('multi:1'), '--platform', 'all', '--to', reg('multi-app:1'), '--no-cache'])
    assert.equal(m.code, 0, m.stderr)
    const raw = JSON.parse((await peer('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg('multi-app:1')}`])).stdout)
    assert.equal(raw.manifests.length, 2)
    const tops = []
    for (const c of raw.manifests) {
      const man = JSON.parse((await peer('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg(`multi-app@${c.digest}`)}`])).stdout)
      tops.push(man.layers.at(-1).digest)
    }
    assert.equal(tops[0], tops[1])
  })

  test('bad input: a missing base names it and the registry answer; a bad --env or port; nothing pushed, no tag', async (t) => {
    const r = await startRegistry(t)
    const dir = await tempDir(t)
    const reg = (n: string) => `${r.host}/${n}`
    await fs.mkdir(path.join(dir, 'ctx'))
    await fs.writeFile(path.join(dir, 'ctx/a'), 'a')
    const missing = await ocikit(['build', path.join(dir, 'ctx'), '--from', reg('nope:1'), '--to', reg('out:1'), '--no-cache'])
    assert.notEqual(missing.code, 0)
    assert.match(missing.stderr, /nope/)
    const badEnv = await ocikit(['build', path.join(dir, 'ctx'), '--env', '=1', '--to', reg('out:1'), '--no-cache'])
    assert.notEqual(badEnv.code, 0)
    assert.match(badEnv.stderr, /env '=1'/)
    const badPort = await ocikit(['build', path.join(dir, 'ctx'), '--expose', 'http', '--to', reg('out:1'), '--no-cache'])
    assert.notEqual(badPort.code, 0)
    assert.match(badPort.stderr, /port 'http'/)
    const tags = await peer('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg('out')}`]).catch((e: Error) => ({ stdout: '', stderr: e.message }))
    assert.ok(!tags.stdout.includes('"1"'), 'no tag was written')
  })
})
