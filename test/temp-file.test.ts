import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { writeFileVia } from '../src/temp-file.ts'
import { tempDir } from './helpers/tmp.ts'

test('writeFileVia replaces the file only when the write completes, and leaves no temp file either way', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'out.tar')
  await fs.writeFile(file, 'old')
  const written = await writeFileVia(file, async (stream) => {
    await new Promise<void>((resolve, reject) => stream.end('new', (e?: Error | null) => (e ? reject(e) : resolve())))
    return 42
  })
  assert.equal(written, 42)
  assert.equal(await fs.readFile(file, 'utf8'), 'new')
  await assert.rejects(
    writeFileVia(file, async (stream) => {
      stream.write('half of it')
      throw new Error('source failed')
    }),
    /source failed/,
  )
  assert.equal(await fs.readFile(file, 'utf8'), 'new', 'the old file is kept')
  assert.deepEqual(await fs.readdir(dir), ['out.tar'])
})
