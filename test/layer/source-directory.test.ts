/** The directory walk: the order of siblings, which every layer's bytes (and digest) follow. */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { directoryEntries } from '../../src/layer/source-directory.ts'
import { tempDir } from '../helpers/tmp.ts'

test('siblings come in one fixed order, whatever order the file system lists them in; a directory comes before what it holds (issue 19)', async (t) => {
  const dir = await tempDir(t)
  // Made in an order unlike the sorted one; names that sort differently by locale, case and punctuation.
  const names = ['b', 'a.txt', 'B', 'a-b', 'a', '_x', 'é', 'Z', 'a b', '10', '9']
  for (const n of names) await fs.writeFile(path.join(dir, n === 'a' ? 'a-dir-tmp' : n), n)
  await fs.rm(path.join(dir, 'a-dir-tmp'))
  await fs.mkdir(path.join(dir, 'a'))
  await fs.writeFile(path.join(dir, 'a', 'z'), 'z')
  await fs.writeFile(path.join(dir, 'a', 'y'), 'y')
  const got: string[] = []
  for await (const e of directoryEntries(dir, { ignoreFile: false })) got.push(e.path)
  // Code-unit order, the same on every machine (not the locale's: 'B' and 'Z' before 'a', '10' before '9').
  assert.deepEqual(got, ['10', '9', 'B', 'Z', '_x', 'a', 'a/y', 'a/z', 'a b', 'a-b', 'a.txt', 'b', 'é'])
})
