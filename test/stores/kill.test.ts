/**
 * Kills (issue 19): SIGKILL at seeded random moments while a layout, an OCI archive, a BFC file
 * and the layer cache are written. Afterwards every store is as before or as after (the tags it
 * had still name the same images, a new tag only a whole image), fsck is clean, and the next write
 * succeeds with no clean-up by hand (a dead writer's lock is taken over at once). The number of
 * kills per store is OCIKIT_KILLS (default 6 here; `npm run test:kills` runs 100 each).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { fsck, gc, list, read, write } from '../../src/api.ts'
import { LayerCache } from '../../src/build/cache.ts'
import { randomImage } from '../../src/image/random.ts'
import { seeded } from '../helpers/fault-proxy.ts'
import { tempDir } from '../helpers/tmp.ts'

const KILLS = Number(process.env.OCIKIT_KILLS ?? 6)
const SEED = Number(process.env.OCIKIT_KILL_SEED ?? 1)
const CHILD = path.resolve(import.meta.dirname, '../helpers/kill-child.ts')

/** Runs the child; kills it after `killAfterMs` unless it ended first. Resolves with how it ended. */
function runChild(args: string[], killAfterMs: number | undefined): Promise<{ killed: boolean; code: number | null; ms: number; stderr: string }> {
  const started = Date.now()
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  let killed = false
  const timer =
    killAfterMs === undefined
      ? undefined
      : setTimeout(() => {
          killed = child.kill('SIGKILL')
        }, killAfterMs)
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ killed: killed && code === null, code, ms: Date.now() - started, stderr })
    }),
  )
}

const STORES = [
  { kind: 'layout', name: (dir: string) => `oci:${dir}/layout`, target: (dir: string) => `${dir}/layout` },
  { kind: 'oci-archive', name: (dir: string) => `oci-archive:${dir}/images.tar`, target: (dir: string) => `${dir}/images.tar` },
  { kind: 'bfc', name: (dir: string) => `bfc:${dir}/images.bfc`, target: (dir: string) => `${dir}/images.bfc` },
] as const

describe('kills: a store is as before or as after', () => {
  for (const s of STORES) {
    test(`${s.kind}: ${KILLS} kills at random moments of a write, then a write that is let finish`, { timeout: 600_000 }, async (t) => {
      const dir = await tempDir(t)
      const base = await randomImage({ seed: 1000 + SEED, layers: 2 })
      await write(`${s.name(dir)}:base`, base)
      // How long an unkilled write takes, to spread the kills over it.
      const probe = await runChild([s.kind, s.target(dir), 'probe', String(SEED)], undefined)
      assert.equal(probe.code, 0, probe.stderr)
      const rnd = seeded(SEED)
      const expected = new Map<string, string>([
        ['base', await base.digest()],
        ['probe', await (await randomImage({ seed: SEED, layers: 4, layerSize: 600_000 })).digest()],
      ])
      let killedCount = 0
      for (let i = 0; i < KILLS; i++) {
        const seed = SEED * 1000 + i
        const tag = `t${i}`
        const r = await runChild([s.kind, s.target(dir), tag, String(seed)], Math.floor(rnd() * probe.ms * 1.1))
        if (r.killed) killedCount++
        else assert.equal(r.code, 0, `write ${i} failed on its own: ${r.stderr}`)
        const digest = await (await randomImage({ seed, layers: 4, layerSize: 600_000 })).digest()
        const tags = new Map((await list(s.name(dir))).map((e) => [e.tag as string, e.descriptor.digest]))
        // As before, or as after: the old tags unchanged, the new one absent or naming the whole image.
        for (const [k, v] of expected) assert.equal(tags.get(k), v, `after kill ${i}: tag ${k}`)
        if (tags.has(tag)) {
          assert.equal(tags.get(tag), digest, `after kill ${i}: the new tag names the whole image`)
          expected.set(tag, digest)
        }
        assert.equal(tags.size, expected.size, `after kill ${i}: no other tag appeared (${[...tags.keys()].join(' ')})`)
        const report = await fsck(s.name(dir))
        assert.equal(report.ok, true, `after kill ${i}: ${JSON.stringify(report.problems)}`)
      }
      // The next write, let finish, succeeds with no clean-up by hand, and promptly.
      const started = Date.now()
      const last = await runChild([s.kind, s.target(dir), 'last', String(SEED * 1000 + 999)], undefined)
      assert.equal(last.code, 0, last.stderr)
      assert.ok(Date.now() - started < 15_000, `the last write took ${Date.now() - started} ms (a dead writer's lock waited out?)`)
      assert.equal(
        await (await read(`${s.name(dir)}:last`)).digest(),
        await (await randomImage({ seed: SEED * 1000 + 999, layers: 4, layerSize: 600_000 })).digest(),
      )
      assert.equal((await fsck(s.name(dir))).ok, true)
      // A layout's temp files are in blobs/, where live writers keep theirs too: gc removes those
      // over a minute old (whatever the grace), so they are aged here as time would. Archives and
      // BFC files: the next write removed them under the file's lock.
      if (s.kind === 'layout') {
        const sha = path.join(dir, 'layout', 'blobs', 'sha256')
        const old = new Date(Date.now() - 120_000)
        for (const f of await fs.readdir(sha)) if (f.startsWith('.tmp-')) await fs.utimes(path.join(sha, f), old, old)
        await gc(s.name(dir), { graceMs: 0 })
      }
      const temps = (await fs.readdir(dir, { recursive: true })).filter((f) => /\.tmp-/.test(f))
      assert.deepEqual(temps, [], 'what the killed writes left is gone')
      t.diagnostic(`${s.kind}: ${killedCount} of ${KILLS} writes killed part way; ${expected.size - 2} finished before their kill`)
    })
  }

  test(`the layer cache: ${KILLS} builds killed at random moments; every cached layer reads back whole, the next build succeeds`, {
    timeout: 600_000,
  }, async (t) => {
    const dir = await tempDir(t)
    const cacheDir = path.join(dir, 'cache')
    const probe = await runChild(['cache', cacheDir, 'probe', String(SEED)], undefined)
    assert.equal(probe.code, 0, probe.stderr)
    const rnd = seeded(SEED + 17)
    for (let i = 0; i < KILLS; i++) {
      await runChild(['cache', cacheDir, `t${i}`, String(SEED * 1000 + i)], Math.floor(rnd() * probe.ms * 1.1))
      const cache = new LayerCache(cacheDir)
      for (const rec of await cache.list()) {
        let n = 0
        for await (const c of await cache.layer(rec).compressed()) n += (c as Buffer).length
        assert.equal(n, rec.size, `after kill ${i}: ${rec.digest} reads back whole and verified`)
      }
    }
    const last = await runChild(['cache', cacheDir, 'last', String(SEED * 1000 + 999)], undefined)
    assert.equal(last.code, 0, last.stderr)
    const leftovers = (await fs.readdir(path.join(cacheDir, 'blobs', 'sha256')).catch(() => [] as string[])).filter((f) => f.startsWith('.tmp-'))
    t.diagnostic(`layer cache: ${leftovers.length} temp file(s) of killed builds left for prune to remove after an hour`)
  })
})
