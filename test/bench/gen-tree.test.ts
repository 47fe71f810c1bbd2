import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { generateTree, touchTree } from '../../bench/gen-tree.ts'
import { tempDir } from '../helpers/tmp.ts'
import { describeTree } from '../helpers/tree.ts'

test('the bench tree: the same seed and size give the same tree; it holds the awkward cases; --touch edits only under its folder', async (t) => {
  const dir = await tempDir(t)
  const [a, b, c] = ['a', 'b', 'c'].map((x) => path.join(dir, x)) as [string, string, string]
  const stats = generateTree(a, { mb: 5 })
  generateTree(b, { mb: 5 })
  generateTree(c, { mb: 5, seed: 2 })
  const ta = await describeTree(a)
  assert.deepEqual(await describeTree(b), ta)
  assert.notDeepEqual(await describeTree(c), ta)
  assert.ok(stats.bytes >= 5 * 1024 * 1024 && stats.links > 0, JSON.stringify(stats))
  const kinds = Object.values(ta)
  assert.ok(kinds.some((f) => f.type === 'symlink'))
  assert.ok(
    kinds.some((f) => f.type === 'file' && (f.mode & 0o111) !== 0),
    'an executable',
  )
  assert.ok(
    Object.keys(ta).some((p) => p.includes('表')),
    'a non-ASCII name',
  )
  assert.equal((await fs.stat(path.join(a, 'src'))).mtime.toISOString(), '2024-01-02T03:04:05.000Z')
  assert.throws(() => generateTree(a), /not empty/)
  const touched = touchTree(b, 3, { under: 'src' })
  assert.equal(touched.length, 3)
  assert.ok(touched.every((p) => p.startsWith(path.join(b, 'src'))))
  const after = await describeTree(b)
  const changed = Object.keys(ta).filter((p) => JSON.stringify(ta[p]) !== JSON.stringify(after[p]))
  assert.ok(changed.length >= 1 && changed.every((p) => touched.includes(path.join(b, p))), changed.join(', '))
})
