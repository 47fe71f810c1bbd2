import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import zlib from 'node:zlib'
import { isOcikitError } from '../../src/errors.ts'
import { applyTar } from '../../src/layer/apply.ts'
import { listLayerFile } from '../../src/layer/read.ts'
import { rawTar } from '../helpers/tar.ts'
import { tempDir } from '../helpers/tmp.ts'

async function list(file: string): Promise<string[]> {
  const out: string[] = []
  for await (const e of listLayerFile(file)) out.push(e.path)
  return out
}

test('a file that is not a tar is INVALID_LAYER naming the file, with the parser error as cause', async (t) => {
  const file = path.join(await tempDir(t), 'not-a-tar')
  await fs.writeFile(file, 'garbage '.repeat(200))
  await assert.rejects(
    list(file),
    (e) => isOcikitError(e, 'INVALID_LAYER') && e.message.startsWith(`${file} is not a valid tar: invalid size field`) && e.cause instanceof Error,
  )
})

test('a gzip layer cut short is INVALID_LAYER naming the file', async (t) => {
  const file = path.join(await tempDir(t), 'cut.tar.gz')
  const gz = zlib.gzipSync(await rawTar([{ name: 'a', content: 'x'.repeat(100_000) }]))
  await fs.writeFile(file, gz.subarray(0, gz.length - 20))
  await assert.rejects(list(file), (e) => isOcikitError(e, 'INVALID_LAYER') && e.message.startsWith(`${file} is not valid gzip data:`))
})

test('applying a tar with a corrupt header fails with INVALID_LAYER; the entries before it were applied', async (t) => {
  const dir = await tempDir(t)
  const tar = await rawTar([
    { name: 'first', content: 'ok' },
    { name: 'second', content: 'ok' },
  ])
  tar.writeUInt8(tar.readUInt8(1034) ^ 0xff, 1034) // the second header's name: its checksum no longer matches
  await assert.rejects(
    applyTar(Readable.from([tar]), path.join(dir, 't')),
    (e) => isOcikitError(e, 'INVALID_LAYER') && /layer is not a valid tar/.test(e.message),
  )
  assert.deepEqual(await fs.readdir(path.join(dir, 't')), ['first'])
})

test('an entry whose owner or time field is not a number is INVALID_LAYER naming it; nothing of it is written', async (t) => {
  for (const [field, at] of [
    ['owner', 116], // gid
    ['time', 136], // mtime: a base-256 value no Date can hold
  ] as const) {
    const dir = await tempDir(t)
    const tar = await rawTar([
      { name: 'first', content: 'ok' },
      { name: 'second', content: 'ok' },
    ])
    if (field === 'owner') tar.write('zzzzzzz', 1024 + at, 'latin1')
    else Buffer.from([0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).copy(tar, 1024 + at)
    // Fix the header checksum, so that only the field is wrong.
    tar.fill(0x20, 1024 + 148, 1024 + 156)
    let sum = 0
    for (let i = 1024; i < 1536; i++) sum += tar[i] as number
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 1024 + 148, 'latin1')
    await assert.rejects(
      applyTar(Readable.from([tar]), path.join(dir, 't')),
      (e) => isOcikitError(e, 'INVALID_LAYER') && e.message === `layer: entry second has an invalid ${field} in its tar header`,
    )
    assert.deepEqual(await fs.readdir(path.join(dir, 't')), ['first'])
  }
})

test('a file cut short inside its content is INVALID_LAYER for the cut, not a destroyed stream', async (t) => {
  const dir = await tempDir(t)
  const tar = await rawTar([
    { name: 'a', content: 'a' },
    { name: 'big', content: 'x'.repeat(100_000) },
  ])
  await assert.rejects(
    applyTar(Readable.from([tar.subarray(0, 3000)]), path.join(dir, 't')),
    (e) => isOcikitError(e, 'INVALID_LAYER') && /layer is not a valid tar: Unexpected end of data/.test(e.message),
  )
})

test('applying stops when its signal is aborted, before writing anything', async (t) => {
  const dir = path.join(await tempDir(t), 't')
  const tar = await rawTar([{ name: 'a', content: 'a' }])
  await assert.rejects(applyTar(Readable.from([tar]), dir, { signal: AbortSignal.abort() }), (e) => (e as Error).name === 'AbortError')
  assert.deepEqual(await fs.readdir(dir), [])
})
