/**
 * The fault campaign (issue 19): seeded push, pull and copy operations of images and indexes
 * through a fault-injecting proxy in front of the real docker-registry. Each operation either
 * completes with a correct image (digests equal, every blob there and verified, fsck clean at a
 * layout destination) or fails with a coded error; a tag never names an image with a missing
 * blob, a corrupt blob is never accepted, and every operation ends within a bound.
 *
 *   npm run test:faults -- --ops 300 --seed 7     (the suite runs 24 operations, seed 1)
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { copy, fsck, read, write } from '../../src/api.ts'
import { isOcikitError } from '../../src/errors.ts'
import { randomImage, randomIndex } from '../../src/image/random.ts'
import type { ImageOrIndex } from '../../src/image/types.ts'
import { FAULT_KINDS, seeded, startFaultProxy } from '../helpers/fault-proxy.ts'
import { needPeers } from '../helpers/peers.ts'
import { startRegistry } from '../helpers/registry.ts'
import { tempDir } from '../helpers/tmp.ts'

const arg = (name: string) => (process.argv.includes(`--${name}`) ? Number(process.argv[process.argv.indexOf(`--${name}`) + 1]) : undefined)
const OPS = arg('ops') ?? Number(process.env.OCIKIT_FAULT_OPS ?? 24)
const SEED = arg('seed') ?? Number(process.env.OCIKIT_FAULT_SEED ?? 1)
/** No operation may take longer than this, faults and retries included. */
const BOUND_MS = 60_000

describe('faults: a seeded campaign through a fault-injecting proxy', needPeers('docker-registry'), () => {
  test(`${OPS} operations, seed ${SEED}: each completes correctly or fails with a coded error; no tag names a partial image`, {
    timeout: 3_600_000,
  }, async (t) => {
    const r = await startRegistry(t)
    const proxy = await startFaultProxy(t, r.host, { seed: SEED, rate: 0.08 })
    const dir = await tempDir(t)
    const draw = seeded(SEED * 7919)
    const via = { registry: { backoffMs: 5, stallTimeoutMs: 5_000 } }
    const direct = { registry: { backoffMs: 5 } }
    const pushed: { ref: string; digest: string }[] = []
    const outcome = new Map<string, number>()
    const count = (k: string) => outcome.set(k, (outcome.get(k) ?? 0) + 1)

    /** The image a tag names, read around the proxy: every blob there and matching its digest. */
    const complete = async (ref: string, n: number): Promise<string | undefined> => {
      let x: ImageOrIndex
      try {
        x = await read(`${r.host}/${ref}`, direct)
      } catch (e) {
        if (isOcikitError(e, 'MANIFEST_UNKNOWN')) return undefined
        throw e
      }
      await copy(`${r.host}/${ref}`, `oci:${dir}/check-${n}:c`, direct)
      const report = await fsck(`oci:${dir}/check-${n}`)
      assert.equal(report.ok, true, `${ref}: ${JSON.stringify(report.problems)}`)
      return x.digest()
    }

    for (let i = 0; i < OPS; i++) {
      const kind = pushed.length === 0 ? 'push-image' : (['push-image', 'push-index', 'pull', 'copy'] as const)[Math.floor(draw() * 4)]
      const seed = SEED * 100_000 + i
      const started = Date.now()
      let expected: string | undefined
      let target: { ref?: string; layout?: string } = {}
      const op = async () => {
        if (kind === 'push-image' || kind === 'push-index') {
          const x =
            kind === 'push-image'
              ? await randomImage({ seed, layers: 1 + Math.floor(draw() * 3), layerSize: 20_000 + Math.floor(draw() * 200_000) })
              : await randomIndex({ seed, layers: 1 })
          expected = await x.digest()
          target = { ref: `${kind}-${i}:v1` }
          await write(`${proxy.host}/${target.ref}`, x, via)
        } else {
          const src = pushed[Math.floor(draw() * pushed.length)] as { ref: string; digest: string }
          expected = src.digest
          if (kind === 'pull') {
            target = { layout: `${dir}/pull-${i}` }
            await copy(`${proxy.host}/${src.ref}`, `oci:${target.layout}:v1`, via)
          } else {
            target = { ref: `copy-${i}:v1` }
            await copy(`${proxy.host}/${src.ref}`, `${proxy.host}/${target.ref}`, via)
          }
        }
      }
      let failed: unknown
      await op().catch((e: unknown) => {
        failed = e
      })
      const ms = Date.now() - started
      assert.ok(ms < BOUND_MS, `operation ${i} (${kind}) took ${ms} ms`)
      if (failed === undefined) {
        count(`${kind}: completed`)
        if (target.ref) {
          assert.equal(await complete(target.ref, i), expected, `operation ${i} (${kind}): the tag names the image`)
          pushed.push({ ref: target.ref, digest: expected as string })
        } else {
          assert.equal(await (await read(`oci:${target.layout}:v1`)).digest(), expected)
          const report = await fsck(`oci:${target.layout}`)
          assert.equal(report.ok, true, `operation ${i} (${kind}): ${JSON.stringify(report.problems)}`)
        }
        continue
      }
      assert.ok(isOcikitError(failed), `operation ${i} (${kind}) failed without a code: ${(failed as Error)?.stack ?? failed}`)
      count(`${kind}: failed, ${failed.code}`)
      // What a failed operation leaves: its tag absent, or naming the whole image.
      if (target.ref) {
        const named = await complete(target.ref, i)
        if (named !== undefined) assert.equal(named, expected, `operation ${i} (${kind}): a tag after a failure names the whole image`)
      } else if (target.layout) {
        const there = await read(`oci:${target.layout}:v1`).catch(() => undefined)
        if (there) {
          assert.equal(await there.digest(), expected)
          assert.equal((await fsck(`oci:${target.layout}`)).ok, true)
        }
      }
    }
    const injected = FAULT_KINDS.map((k) => `${k} ${proxy.injected.get(k) ?? 0}`).join(', ')
    const total = [...proxy.injected.values()].reduce((a, b) => a + b, 0)
    t.diagnostic(`${OPS} operations (seed ${SEED}), ${proxy.requests()} requests, ${total} faults injected: ${injected}`)
    for (const [k, v] of [...outcome].sort()) t.diagnostic(`${k}: ${v}`)
    assert.ok(total > 0, 'faults were injected')
  })
})
