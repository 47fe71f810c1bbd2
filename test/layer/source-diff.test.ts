import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { layerFromDiff } from '../../src/layer/encode.ts'
import { listTar } from '../../src/layer/read.ts'
import { tempDir } from '../helpers/tmp.ts'

test('a diff writes every path once: a directory replaced with an opaque whiteout is not listed twice (issue 21.7)', async (t) => {
  const dir = await tempDir(t)
  const cases: [string, (root: string, side: 'old' | 'new') => Promise<void>][] = [
    // var/cache/x: a directory whose every old child is gone, with a new child
    [
      'replaced directory',
      async (root, side) => {
        await fs.mkdir(path.join(root, 'var/cache/x'), { recursive: true })
        await fs.writeFile(path.join(root, 'var/cache/x', side === 'old' ? 'inner' : 'other'), side)
      },
    ],
    // var/cache: every old child replaced by one of another kind
    [
      'children of another kind',
      async (root, side) => {
        await fs.mkdir(path.join(root, 'var/cache'), { recursive: true })
        if (side === 'old') {
          await fs.mkdir(path.join(root, 'var/cache/x'))
          await fs.writeFile(path.join(root, 'var/cache/x/inner'), 'a')
        } else await fs.writeFile(path.join(root, 'var/cache/x'), 'file')
      },
    ],
  ]
  for (const [name, make] of cases) {
    const old = path.join(dir, name, 'old')
    const neu = path.join(dir, name, 'new')
    await make(old, 'old')
    await make(neu, 'new')
    const layer = layerFromDiff(old, neu, { compression: 'gzip' })
    const paths: string[] = []
    for await (const e of listTar(await layer.uncompressed())) paths.push(e.path)
    assert.deepEqual(
      paths.filter((p, i) => paths.indexOf(p) !== i),
      [],
      `${name}: ${paths.join(', ')}`,
    )
    assert.ok(
      paths.some((p) => p.endsWith('.wh..wh..opq')),
      `${name}: an opaque whiteout`,
    )
    await layer.dispose()
  }
})
