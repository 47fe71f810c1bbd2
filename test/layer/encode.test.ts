import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import zlib from 'node:zlib'
import { resolveTimestamp } from '../../src/documents/time.ts'
import { isOcikitError } from '../../src/errors.ts'
import { layerFromDiff, layerFromDirectory, layerFromFiles, writeLayerFile } from '../../src/layer/encode.ts'
import { listLayerFile } from '../../src/layer/read.ts'
import { directoryEntries } from '../../src/layer/source-directory.ts'
import { tempDir, treePaths } from '../helpers/tmp.ts'
import { edgeTree, genTree } from '../helpers/tree.ts'

async function listing(file: string) {
  const out = []
  for await (const e of listLayerFile(file)) out.push(e)
  return out
}

test('one pass gives digest, diffID and sizes that match the bytes written', async (t) => {
  const dir = await tempDir(t)
  await edgeTree(path.join(dir, 'tree'))
  const file = path.join(dir, 'layer.tgz')
  const info = await writeLayerFile(directoryEntries(path.join(dir, 'tree')), file)
  const blob = await fs.readFile(file)
  const tar = zlib.gunzipSync(blob)
  assert.equal(info.digest, `sha256:${createHash('sha256').update(blob).digest('hex')}`)
  assert.equal(info.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`)
  assert.equal(info.size, blob.length)
  assert.equal(info.uncompressedSize, tar.length)
  assert.equal(info.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip')
  assert.equal(info.empty, false)
})

test('two copies of a tree with other atimes and mtimes give the same digest', async (t) => {
  const dir = await tempDir(t)
  await genTree(path.join(dir, 'a'), 1)
  await genTree(path.join(dir, 'b'), 1)
  // gen-tree pins mtimes, so give every entry of b other atimes and mtimes (symlinks themselves too).
  for (const n of (await treePaths(path.join(dir, 'b'))).reverse()) {
    await fs.lutimes(path.join(dir, 'b', n), new Date(1e12), new Date(1.2e12))
  }
  const a = await layerFromDirectory(path.join(dir, 'a')).info()
  const b = await layerFromDirectory(path.join(dir, 'b')).info()
  assert.ok(a.entries > 100)
  assert.equal(a.digest, b.digest)
  assert.equal(a.diffId, b.diffId)
  assert.equal((await layerFromDirectory(path.join(dir, 'a')).info()).digest, a.digest, 'and the same tree twice')
})

test('timestamps: fixed epoch by default, SOURCE_DATE_EPOCH, or an explicit value', async (t) => {
  const dir = await tempDir(t)
  const files = { 'a.txt': 'a' }
  const file = path.join(dir, 'l.tar')
  await writeLayerFile(layerFromFilesEntries(files), file, { compression: 'none' })
  const tar = await fs.readFile(file)
  assert.equal(tar.subarray(136, 147).toString(), '00000000000')
  const old = process.env.SOURCE_DATE_EPOCH
  process.env.SOURCE_DATE_EPOCH = '1700000000'
  t.after(() => {
    if (old === undefined) delete process.env.SOURCE_DATE_EPOCH
    else process.env.SOURCE_DATE_EPOCH = old
  })
  assert.equal(resolveTimestamp(undefined), 1700000000)
  assert.equal(resolveTimestamp('2020-01-01T00:00:00Z'), 1577836800)
  assert.equal(resolveTimestamp(5), 5)
  const d1 = await layerFromFiles(files).digest()
  const d2 = await layerFromFiles(files, { timestamp: 0 }).digest()
  assert.notEqual(d1, d2)
  process.env.SOURCE_DATE_EPOCH = 'yesterday'
  assert.throws(
    () => resolveTimestamp(undefined),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /SOURCE_DATE_EPOCH/.test(e.message),
  )
  assert.throws(
    () => resolveTimestamp('not a date'),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT'),
  )
})

function layerFromFilesEntries(files: Record<string, string>) {
  return Object.entries(files).map(([p, c]) => ({
    path: p,
    type: 'file' as const,
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: c.length,
    read: async () => Buffer.from(c),
    open: undefined,
  }))
}

test('entries: sorted, prefix directories, hardlinks as links, symlinks kept, modes kept', async (t) => {
  const dir = await tempDir(t)
  await edgeTree(path.join(dir, 'tree'))
  const file = path.join(dir, 'l.tgz')
  await writeLayerFile(directoryEntries(path.join(dir, 'tree'), { prefix: '/opt/app' }), file)
  const entries = await listing(file)
  const byPath = Object.fromEntries(entries.map((e) => [e.path, e]))
  assert.deepEqual(
    entries.slice(0, 2).map((e) => [e.path, e.type, e.mode]),
    [
      ['opt', 'directory', 0o755],
      ['opt/app', 'directory', 0o755],
    ],
  )
  assert.equal(byPath['opt/app/exec.sh']?.mode, 0o755)
  assert.equal(byPath['opt/app/private']?.mode, 0o600)
  assert.equal(byPath['opt/app/setuid']?.mode, 0o4755)
  assert.equal(byPath['opt/app/rel-link']?.type, 'symlink')
  assert.equal(byPath['opt/app/abs-link']?.linkname, '/etc/hostname')
  assert.equal(byPath['opt/app/hard-a']?.type, 'file')
  assert.equal(byPath['opt/app/hard-c']?.type, 'link')
  assert.equal(byPath['opt/app/hard-c']?.linkname, 'opt/app/hard-a')
  assert.equal(byPath['opt/app/sub/hard-b']?.linkname, 'opt/app/hard-a')
  assert.equal(byPath['opt/app/a-fifo']?.type, 'fifo')
  assert.equal(byPath['opt/app/empty-dir']?.type, 'directory')
  assert.ok(byPath['opt/app/ünïcødé-名前.txt'])
  const long = 'l'.repeat(120)
  assert.ok(byPath[`opt/app/${long}/${long}/${long}.txt`], 'a path over 255 bytes survives (PAX)')
  const paths = entries.map((e) => e.path)
  for (const e of entries) assert.equal(e.uid, 0)
  // A directory always precedes its children.
  for (const [i, p] of paths.entries()) if (p.includes('/')) assert.ok(paths.indexOf(p.slice(0, p.lastIndexOf('/'))) < i, p)
})

test('ownership: --chown and ids too large for ustar (PAX)', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'l.tar')
  await writeLayerFile(
    layerFromFilesEntries({ x: 'y' }).map((e) => ({ ...e, uid: 3_000_000, gid: 70_000 })),
    file,
    { compression: 'none' },
  )
  const [e] = await listing(file)
  assert.equal(e?.uid, 3_000_000)
  assert.equal(e?.gid, 70_000)
})

test('ignore rules: .dockerignore by default, .ociignore first, explicit file, none', async (t) => {
  const dir = await tempDir(t)
  const tree = path.join(dir, 'tree')
  await fs.mkdir(path.join(tree, 'node_modules', 'x'), { recursive: true })
  await fs.writeFile(path.join(tree, 'node_modules', 'x', 'i.js'), '')
  await fs.writeFile(path.join(tree, 'a.log'), '')
  await fs.writeFile(path.join(tree, 'keep.log'), '')
  await fs.writeFile(path.join(tree, 'main.js'), '')
  await fs.writeFile(path.join(tree, '.dockerignore'), 'node_modules\n*.log\n!keep.log\n')
  const names = async (o = {}) => (await Array.fromAsync(directoryEntries(tree, o))).map((e) => e.path)
  const notices: string[] = []
  assert.deepEqual(await names({ onNotice: (m: string) => notices.push(m) }), ['.dockerignore', 'keep.log', 'main.js'])
  assert.match(notices[0] ?? '', /\.dockerignore/)
  await fs.writeFile(path.join(tree, '.ociignore'), 'main.js\n')
  assert.deepEqual(await names(), ['.dockerignore', '.ociignore', 'a.log', 'keep.log', 'node_modules', 'node_modules/x', 'node_modules/x/i.js'])
  assert.equal((await names({ ignoreFile: false })).length, 8)
})

test('file maps: content, modes, symlinks, implicit parents; bad maps refused', async () => {
  const l = layerFromFiles({
    '/etc/app.conf': 'x=1\n',
    'bin/run': { content: '#!/bin/sh\n', mode: 0o755 },
    'bin/sh': { symlink: '/bin/busybox' },
    var: { directory: true, mode: 0o1777 },
  })
  const entries = []
  const extract = (await import('tar-stream')).default.extract()
  ;(await l.uncompressed()).pipe(extract as unknown as NodeJS.WritableStream)
  for await (const e of extract) {
    entries.push([e.header.name, e.header.type, e.header.mode])
    e.resume()
  }
  assert.deepEqual(entries, [
    ['bin/', 'directory', 0o755],
    ['bin/run', 'file', 0o755],
    ['bin/sh', 'symlink', 0o777],
    ['etc/', 'directory', 0o755],
    ['etc/app.conf', 'file', 0o644],
    ['var/', 'directory', 0o1777],
  ])
  assert.throws(
    () => layerFromFiles({ '../x': 'a' }),
    (e) => isOcikitError(e, 'UNSAFE_PATH'),
  )
  assert.throws(
    () => layerFromFiles({ a: 'x', 'a/b': 'y' }),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /not a directory/.test(e.message),
  )
  assert.throws(
    () => layerFromFiles({ a: 'x', '/a': 'y' }),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /twice/.test(e.message),
  )
})

test('an empty diff is reported as an empty layer', async (t) => {
  const dir = await tempDir(t)
  await edgeTree(path.join(dir, 'a'))
  const info = await layerFromDiff(path.join(dir, 'a'), path.join(dir, 'a')).info()
  assert.equal(info.empty, true)
  assert.equal(info.entries, 0)
})

test('zstd and uncompressed layers carry the right media types and the same diffID', async () => {
  const files = { 'a/b.txt': 'hello'.repeat(1000) }
  const gz = await layerFromFiles(files).info()
  const zs = await layerFromFiles(files, { compression: 'zstd' }).info()
  const none = await layerFromFiles(files, { compression: 'none' }).info()
  assert.equal(zs.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd')
  assert.equal(none.mediaType, 'application/vnd.oci.image.layer.v1.tar')
  assert.equal(gz.diffId, zs.diffId)
  assert.equal(none.digest, none.diffId)
})

test('a missing or non-directory source is a clear error', async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'f'), '')
  await assert.rejects(
    layerFromDirectory(path.join(dir, 'nope')).digest(),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /cannot read directory/.test(e.message),
  )
  await assert.rejects(layerFromDirectory(path.join(dir, 'f')).digest(), (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /not a directory/.test(e.message))
})

test('a layer write that fails at once leaves no temp file behind (the race seen in CI)', async (t) => {
  const dir = await tempDir(t)
  for (let i = 0; i < 20; i++) {
    await assert.rejects(writeLayerFile(layerFromFilesEntries({ a: 'a' }), path.join(dir, 'x.tgz'), { level: 12 }), (e) => isOcikitError(e, 'INVALID_ARGUMENT'))
    await assert.rejects(writeLayerFile(layerFromFilesEntries({ a: 'a' }), path.join(dir, 'y.tgz'), { timestamp: 'soon' }), (e) =>
      isOcikitError(e, 'INVALID_ARGUMENT'),
    )
  }
  await new Promise((r) => setTimeout(r, 50))
  assert.deepEqual(await fs.readdir(dir), [])
})
