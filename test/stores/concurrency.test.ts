/**
 * Concurrency (issue 19): eight processes write different images into one layout while gc runs
 * beside them, with no grace period (the hardest case: gc may delete what a write has just put,
 * and the write must put it back before it records its tag). Every round: every tag names its
 * image, fsck is clean. Rounds: OCIKIT_ROUNDS (default 2 here; `npm run test:concurrency` runs 50).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { test } from 'node:test'
import { fsck, list, write } from '../../src/api.ts'
import { randomImage } from '../../src/image/random.ts'
import { tempDir } from '../helpers/tmp.ts'

const ROUNDS = Number(process.env.OCIKIT_ROUNDS ?? 2)
const WRITERS = 8
const CHILD = path.resolve(import.meta.dirname, '../helpers/kill-child.ts')
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts')

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })))
}

test(`${WRITERS} writers and gc (no grace) on one layout, ${ROUNDS} round(s): no tag lost, no blob a tag needs deleted, fsck clean`, {
  timeout: 900_000,
}, async (t) => {
  const dir = await tempDir(t)
  const layout = path.join(dir, 'layout')
  await write(`oci:${layout}:base`, await randomImage({ seed: 5, layers: 2 }))
  const want = new Map<string, string>([['base', (await list(`oci:${layout}`))[0]?.descriptor.digest as string]])
  for (let round = 0; round < ROUNDS; round++) {
    let writing = true
    const gcs = (async () => {
      let n = 0
      while (writing) {
        const r = await run([CLI, 'gc', `oci:${layout}`, '--grace', '0', '--json'])
        assert.equal(r.code, 0, r.stderr)
        n++
      }
      return n
    })()
    const writers = Array.from({ length: WRITERS }, (_, i) => {
      const seed = round * 100 + i
      return run([CHILD, 'layout', layout, `r${round}-w${i}`, String(seed)]).then(async (r) => {
        assert.equal(r.code, 0, `writer ${i} of round ${round}: ${r.stderr}`)
        want.set(`r${round}-w${i}`, await (await randomImage({ seed, layers: 4, layerSize: 600_000 })).digest())
      })
    })
    await Promise.all(writers)
    writing = false
    const gcRuns = await gcs
    const tags = new Map((await list(`oci:${layout}`)).map((e) => [e.tag as string, e.descriptor.digest]))
    for (const [k, v] of want) assert.equal(tags.get(k), v, `round ${round}: tag ${k}`)
    const report = await fsck(`oci:${layout}`)
    assert.equal(report.ok, true, `round ${round}: ${JSON.stringify(report.problems)}`)
    t.diagnostic(`round ${round}: ${WRITERS} writes beside ${gcRuns} gc run(s), ${report.reachable} blobs reachable, all present`)
  }
})
