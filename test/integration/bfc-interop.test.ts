/**
 * BFC files with real peers: registry → bfc → registry through the real docker-registry (the
 * digests kept; skopeo reads the result), the command line (encrypt with the password from the
 * environment, inspect, fsck, unpack), and, where BFC's own C tool is on PATH (`bfc`; it is not
 * packaged by Debian, so CI has none), `bfc verify` and `bfc extract -k` of what ocikit wrote to a
 * layout skopeo reads.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'
import { copy, read, write } from '../../src/api.ts'
import { randomImage, randomIndex } from '../../src/image/random.ts'
import { ocikit } from '../helpers/cli.ts'
import { needPeers, which } from '../helpers/peers.ts'
import { startRegistry } from '../helpers/registry.ts'
import { tempDir } from '../helpers/tmp.ts'

const run = promisify(execFile)
const fast = { backoffMs: 10 }

describe('bfc: real registry and skopeo', needPeers('docker-registry', 'skopeo'), () => {
  test('registry → bfc → registry keeps the digests of an image and an index; skopeo reads what came back', async (t) => {
    const r = await startRegistry(t)
    const dir = await tempDir(t)
    const img = await randomImage({ seed: 31, layers: 2, layerSize: 200_000 })
    const idx = await randomIndex({ seed: 32, layers: 1 })
    await write(`${r.host}/src:img`, img, { registry: fast })
    await write(`${r.host}/src:idx`, idx, { registry: fast })
    await copy(`${r.host}/src:img`, `bfc:${dir}/all.bfc:img`, { registry: fast })
    await copy(`${r.host}/src:idx`, `bfc:${dir}/all.bfc:idx`, { registry: fast, bfc: { compress: true } })
    await copy(`bfc:${dir}/all.bfc:img`, `${r.host}/back:img`, { registry: fast })
    await copy(`bfc:${dir}/all.bfc:idx`, `${r.host}/back:idx`, { registry: fast })
    assert.equal(await (await read(`${r.host}/back:img`, { registry: fast })).digest(), await img.digest())
    assert.equal(await (await read(`${r.host}/back:idx`, { registry: fast })).digest(), await idx.digest())
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${r.host}/back:img`])
    assert.equal(JSON.parse(stdout).layers.length, 2)
  })

  test('the command line: build into an encrypted bfc (password from the environment), inspect, fsck, unpack; no password is a clear error', async (t) => {
    const dir = await tempDir(t)
    await fs.mkdir(path.join(dir, 'app'))
    await fs.writeFile(path.join(dir, 'app', 'hello.txt'), 'hello\n')
    const env = { OCIKIT_BFC_PASSWORD: 'pw for the test', OCIKIT_CACHE_DIR: path.join(dir, 'cache') }
    const built = await ocikit(['build', path.join(dir, 'app'), '--to', `bfc:${dir}/app.bfc:dev`, '--encrypt', '--compress', '-q'], { env })
    assert.equal(built.code, 0, built.stderr)
    const inspect = await ocikit(['inspect', `bfc:${dir}/app.bfc:dev`], { env })
    assert.equal(inspect.code, 0, inspect.stderr)
    assert.match(inspect.stdout, /WorkingDir:\s+\/app/)
    assert.equal((await ocikit(['fsck', `bfc:${dir}/app.bfc`], { env })).code, 0)
    const unpack = await ocikit(['unpack', `bfc:${dir}/app.bfc:dev`, path.join(dir, 'rootfs')], { env })
    assert.equal(unpack.code, 0, unpack.stderr)
    assert.equal(await fs.readFile(path.join(dir, 'rootfs', 'app', 'hello.txt'), 'utf8'), 'hello\n')
    const none = await ocikit(['inspect', `bfc:${dir}/app.bfc:dev`], { env: { OCIKIT_BFC_PASSWORD: '' } })
    assert.notEqual(none.code, 0)
    assert.match(none.stderr, /encrypted: set OCIKIT_BFC_PASSWORD/)
    const wrong = await ocikit(['inspect', `bfc:${dir}/app.bfc:dev`], { env: { OCIKIT_BFC_PASSWORD: 'wrong' } })
    assert.notEqual(wrong.code, 0)
    assert.match(wrong.stderr, /password or key is wrong/)
    assert.ok(!wrong.stderr.includes('pw for the test'))
    // The password on standard input instead.
    const piped = await ocikit(['--bfc-password-stdin', 'inspect', `bfc:${dir}/app.bfc:dev`], { env: { OCIKIT_BFC_PASSWORD: '' }, input: 'pw for the test\n' })
    assert.equal(piped.code, 0, piped.stderr)
    assert.match(piped.stdout, /WorkingDir:\s+\/app/)
  })
})

const bfcTool = which('bfc')
describe("bfc: BFC's own tool reads what ocikit writes", { skip: bfcTool ? false : "BFC's C tool (bfc) is not on PATH: it is not packaged by Debian" }, () => {
  test(
    'bfc verify passes, bfc extract -k (with -p for an encrypted file) gives a layout skopeo reads, for plain, appended, zstd and encrypted files',
    needPeers('skopeo'),
    async (t) => {
      const dir = await tempDir(t)
      const img = await randomImage({ seed: 41, layers: 2 })
      await write(`bfc:${dir}/plain.bfc:v1`, img)
      await write(`bfc:${dir}/plain.bfc:v2`, await randomImage({ seed: 42 }), { bfc: { compress: true } })
      await write(`bfc:${dir}/enc.bfc:v1`, img, { bfc: { encrypt: true, compress: true, key: { password: async () => 'tool-pw' } } })
      for (const [name, extra] of [
        ['plain', []],
        ['enc', ['-p', 'tool-pw']],
      ] as const) {
        await run(bfcTool as string, ['verify', path.join(dir, `${name}.bfc`)])
        const out = path.join(dir, `out-${name}`)
        await fs.mkdir(out)
        await run(bfcTool as string, ['extract', '-k', '-C', out, ...extra, path.join(dir, `${name}.bfc`)])
        const { stdout } = await run('skopeo', ['inspect', `oci:${out}:v1`])
        assert.equal(JSON.parse(stdout).Digest, await img.digest())
      }
    },
  )
})
