import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { fsck, list } from '../../../src/api.ts'
import { tempDir } from '../../helpers/tmp.ts'

const run = promisify(execFile)
const WRITER = `
import { randomImage, write } from ${JSON.stringify(path.resolve('src/index.ts'))}
const [dir, id] = process.argv.slice(1) // node -e: arguments start at argv[1]
for (let i = 0; i < 6; i++) {
  await write('oci:' + dir + ':p' + id + '-' + i, await randomImage({ layers: 2, layerSize: 256 }))
}
`

test('separate processes writing one layout at once lose no tag', async (t) => {
  const dir = path.join(await tempDir(t), 'shared')
  const procs = [0, 1, 2, 3].map((id) => run(process.execPath, ['--input-type=module', '-e', WRITER, dir, String(id)]))
  await Promise.all(procs)
  const tags = (await list(`oci:${dir}`)).map((e) => e.tag).sort()
  const want = [0, 1, 2, 3].flatMap((id) => [0, 1, 2, 3, 4, 5].map((i) => `p${id}-${i}`)).sort()
  assert.deepEqual(tags, want)
  assert.equal((await fsck(`oci:${dir}`)).ok, true)
})
