/** An image of three layers for explore's tests: one overwrites a file of the first, one deletes another. */
import fs from 'node:fs/promises'
import path from 'node:path'
import { appendLayers, scratch } from '../../src/image/mutate.ts'
import type { Image } from '../../src/image/types.ts'
import { layerFromDiff, layerFromDirectory } from '../../src/layer/encode.ts'

const amd64 = { os: 'linux', architecture: 'amd64' }

/** v0: a.txt (100 B), b.bin (1000 B), dir/c (50 B); v1: a.txt rewritten (200 B); v2: b.bin deleted. */
export async function threeLayers(dir: string): Promise<{ one: Image; two: Image }> {
  const v = (n: number) => path.join(dir, `v${n}`)
  await fs.mkdir(path.join(v(0), 'dir'), { recursive: true })
  await fs.writeFile(path.join(v(0), 'a.txt'), 'a'.repeat(100))
  await fs.writeFile(path.join(v(0), 'b.bin'), Buffer.alloc(1000, 2))
  await fs.writeFile(path.join(v(0), 'dir', 'c'), 'c'.repeat(50))
  await fs.cp(v(0), v(1), { recursive: true })
  await fs.writeFile(path.join(v(1), 'a.txt'), 'A'.repeat(200))
  await fs.cp(v(1), v(2), { recursive: true })
  await fs.rm(path.join(v(2), 'b.bin'))
  const one = await appendLayers(scratch(amd64), [layerFromDirectory(v(0)), layerFromDiff(v(0), v(1)), layerFromDiff(v(1), v(2))])
  const two = await appendLayers(scratch(amd64), [layerFromDirectory(v(2))])
  return { one, two }
}
