/**
 * Archives (oci-archive:, docker-archive:) in ocikit alone: several images and tags per file,
 * round trips, compressed archives, and bad input that must give clear errors and write nothing.
 * What the peers make of them is in test/integration/archive-interop.test.ts.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import tarStream from 'tar-stream'
import { copy, fsck, list, read, readImage, write } from '../../../src/api.ts'
import { digestOf } from '../../../src/digest.ts'
import { type ErrorCode, isOcikitError } from '../../../src/errors.ts'
import { randomImage, randomIndex } from '../../../src/image/random.ts'
import { snapshot, tempDir } from '../../helpers/tmp.ts'

const run = promisify(execFile)

/** A tar of the given entries (name → content), written with raw names. */
async function tarOf(file: string, entries: [string, string | Buffer][]): Promise<void> {
  const pack = tarStream.pack()
  const chunks: Buffer[] = []
  pack.on('data', (c) => chunks.push(c as Buffer))
  const done = new Promise<void>((r) => pack.on('end', () => r()))
  for (const [name, body] of entries) pack.entry({ name }, Buffer.from(body))
  pack.finalize()
  await done
  await fs.writeFile(file, Buffer.concat(chunks))
}

test('a docker-archive holds several images and tags: pick one by tag or @N, all of them as an index; a tag moves', async (t) => {
  const dir = await tempDir(t)
  const file = `docker-archive:${dir}/images.tar`
  const [a, b] = await Promise.all([randomImage({ seed: 61, layers: 2 }), randomImage({ seed: 62, layers: 1 })])
  await write(`${file}:app:1`, a)
  await write(`${file}:app:2`, b)
  await write(`${file}:app:latest`, a) // the same image: one more tag on it, no second copy
  const tags = (await list(file)).map((e) => e.tag)
  assert.deepEqual(tags, ['app:1', 'app:latest', 'app:2'])
  const cfg = async (name: string) => digestOf(await (await readImage(name)).rawConfig())
  assert.equal(await cfg(`${file}:app:1`), await cfg(`${file}:@0`))
  assert.equal(await cfg(`${file}:docker.io/library/app:2`), digestOf(await b.rawConfig()), 'tags match in their normal form')
  assert.equal(await cfg(`${file}:@1`), digestOf(await b.rawConfig()))
  const all = await read(file)
  assert.equal(all.kind, 'index')
  assert.deepEqual(
    (all.kind === 'index' ? (await all.manifest()).manifests : []).map((d) => d.annotations?.['org.opencontainers.image.ref.name']),
    ['app:1', 'app:2'],
  )
  // app:1 moves to b: a keeps latest.
  await write(`${file}:app:1`, b)
  assert.deepEqual(
    (await list(file)).map((e) => e.tag),
    ['app:latest', 'app:2', 'app:1'],
  )
  assert.equal(await cfg(`${file}:app:1`), digestOf(await b.rawConfig()))
  await assert.rejects(read(`${file}:app:9`), (e) => isOcikitError(e, 'MANIFEST_UNKNOWN') && /tags: app:latest, app:2, app:1/.test(e.message))
  await assert.rejects(read(`${file}:@7`), (e) => isOcikitError(e, 'MANIFEST_UNKNOWN') && /@0 to @1/.test(e.message))
  assert.equal((await fsck(file)).ok, true)
})

test('docker-archive to a layout and back keeps every digest (the layers stay the same plain tars); config and diffIDs survive from gzip', async (t) => {
  const dir = await tempDir(t)
  const img = await randomImage({ seed: 63, layers: 3 })
  await write(`docker-archive:${dir}/a.tar:app:1`, img)
  const first = await readImage(`docker-archive:${dir}/a.tar:app:1`)
  assert.equal(digestOf(await first.rawConfig()), digestOf(await img.rawConfig()), 'the config is kept byte for byte')
  assert.deepEqual((await first.config()).rootfs.diff_ids, (await img.config()).rootfs.diff_ids)
  assert.ok((await first.manifest()).layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar'))
  await copy(`docker-archive:${dir}/a.tar:app:1`, `oci:${dir}/l:x`)
  await copy(`oci:${dir}/l:x`, `docker-archive:${dir}/b.tar:app:1`)
  assert.equal(await (await readImage(`docker-archive:${dir}/b.tar:app:1`)).digest(), await first.digest())
  const ab = await fs.readFile(`${dir}/a.tar`)
  assert.ok(ab.equals(await fs.readFile(`${dir}/b.tar`)), 'the same image makes the same archive')
})

test('oci-archive: several tags per file, digests kept both ways, an index too; a gzip-compressed archive reads the same', async (t) => {
  const dir = await tempDir(t)
  const img = await randomImage({ seed: 64, layers: 2 })
  const idx = await randomIndex({ seed: 65, layers: 1 })
  await write(`oci-archive:${dir}/a.tar:v1`, img)
  await write(`oci-archive:${dir}/a.tar:multi`, idx)
  assert.deepEqual(
    (await list(`oci-archive:${dir}/a.tar`)).map((e) => e.tag),
    ['v1', 'multi'],
  )
  await copy(`oci-archive:${dir}/a.tar:multi`, `oci:${dir}/l:multi`)
  assert.equal(await (await read(`oci:${dir}/l:multi`)).digest(), await idx.digest())
  await run('gzip', ['-k', `${dir}/a.tar`])
  assert.equal(await (await read(`oci-archive:${dir}/a.tar.gz:v1`)).digest(), await img.digest())
  assert.equal((await fsck(`oci-archive:${dir}/a.tar.gz`)).ok, true)
  await assert.rejects(read(`oci-archive:${dir}/a.tar`), (e) => isOcikitError(e, 'AMBIGUOUS_REFERENCE') && /tags: v1, multi/.test(e.message))
})

test('bad archives are clear errors, and nothing is written at the destination', async (t) => {
  const dir = await tempDir(t)
  const img = await randomImage({ seed: 66, layers: 1 })
  await write(`docker-archive:${dir}/good.tar:app:1`, img)
  const good = await fs.readFile(`${dir}/good.tar`)
  const manifest = JSON.parse((await run('tar', ['-xOf', `${dir}/good.tar`, 'manifest.json'])).stdout)[0]
  const layerName: string = manifest.Layers[0]
  const cases: [string, () => Promise<void>, ErrorCode, RegExp][] = [
    ['truncated', () => fs.writeFile(`${dir}/bad.tar`, good.subarray(0, 1000)), 'INVALID_LAYOUT', /truncated/],
    ['not a tar', () => fs.writeFile(`${dir}/bad.tar`, Buffer.alloc(2048, 7)), 'INVALID_LAYOUT', /fails its checksum/],
    ['no manifest.json', () => tarOf(`${dir}/bad.tar`, [['repositories', '{}']]), 'INVALID_LAYOUT', /manifest.json is missing/],
    [
      'manifest.json naming a missing file',
      () => tarOf(`${dir}/bad.tar`, [['manifest.json', JSON.stringify([{ Config: 'c.json', RepoTags: ['app:1'], Layers: ['x/layer.tar'] }])]]),
      'INVALID_LAYOUT',
      /c.json is missing \(named by manifest.json \[0\]\)/,
    ],
    [
      'a layer that does not match its diffID',
      async () => {
        const entries: [string, string | Buffer][] = [['manifest.json', JSON.stringify([manifest])]]
        entries.push([manifest.Config, Buffer.from(await img.rawConfig())])
        entries.push([layerName, Buffer.alloc(1024, 1)])
        await tarOf(`${dir}/bad.tar`, entries)
      },
      'DIGEST_MISMATCH',
      /digest mismatch/,
    ],
    [
      'an entry with ../ in its name',
      () =>
        tarOf(`${dir}/bad.tar`, [
          ['../escape', 'x'],
          ['manifest.json', '[]'],
        ]),
      'UNSAFE_PATH',
      /'\.\.' component/,
    ],
  ]
  for (const [what, make, code, message] of cases) {
    await make()
    const out = path.join(dir, `out-${what.replaceAll(' ', '-')}`)
    await assert.rejects(
      copy(`docker-archive:${dir}/bad.tar:app:1`, `oci:${out}:v1`),
      (e) => isOcikitError(e, code) && message.test((e as Error).message),
      what,
    )
    await assert.rejects(fs.stat(out), { code: 'ENOENT' }, `${what}: nothing written`)
  }
  // A failed write into an existing archive leaves it as it was.
  const before = await snapshot(dir)
  await assert.rejects(copy(`docker-archive:${dir}/bad.tar:app:1`, `docker-archive:${dir}/good.tar:app:2`))
  assert.deepEqual(await snapshot(dir), before)
  await assert.rejects(
    write(`docker-archive:${dir}/x.tar`, await randomIndex({ seed: 67 })),
    (e) => isOcikitError(e, 'NOT_SUPPORTED') && /--platform/.test((e as Error).message),
  )
  await assert.rejects(fs.stat(`${dir}/x.tar`), { code: 'ENOENT' })
})
