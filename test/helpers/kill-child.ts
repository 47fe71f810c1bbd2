/**
 * The process the kill campaign kills: writes one seeded image into a store, or builds one with
 * a layer cache, and exits. Usage: node kill-child.ts KIND TARGET TAG SEED
 * (KIND: layout | oci-archive | bfc | cache; for cache, TARGET is the cache directory.)
 */
import fs from 'node:fs'
import path from 'node:path'
import { write } from '../../src/api.ts'
import { build } from '../../src/build/build.ts'
import { LayerCache } from '../../src/build/cache.ts'
import { randomImage } from '../../src/image/random.ts'

const [kind, target, tag, seedText] = process.argv.slice(2) as [string, string, string, string]
const seed = Number(seedText)
if (kind === 'cache') {
  const ctx = path.join(path.dirname(target), `ctx-${seed}`)
  fs.mkdirSync(ctx, { recursive: true })
  for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(ctx, `f${i}`), Buffer.alloc(600_000, (seed * 7 + i) & 0xff))
  await build({ context: ctx, to: [`oci:${path.dirname(target)}/out-${seed}:${tag}`] }, { cache: new LayerCache(target) })
} else {
  const img = await randomImage({ seed, layers: 4, layerSize: 600_000 })
  const name = kind === 'layout' ? `oci:${target}:${tag}` : `${kind}:${target}:${tag}`
  await write(name, img)
}
