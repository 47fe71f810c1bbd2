import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import v8 from 'node:v8'
import vm from 'node:vm'
import zlib from 'node:zlib'
import tarStream from 'tar-stream'
import { digestOf } from '../../src/digest.ts'
import { isOcikitError } from '../../src/errors.ts'
import { MemoryBlobSource } from '../../src/image/random.ts'
import { BlobLayer } from '../../src/image/view.ts'
import { applyLayer, applyTar } from '../../src/layer/apply.ts'
import { layerFromDiff, layerFromDirectory } from '../../src/layer/encode.ts'
import { type RawEntry, rawTar } from '../helpers/tar.ts'
import { snapshot, tempDir, treePaths } from '../helpers/tmp.ts'
import { describeTree, edgeTree, genTree } from '../helpers/tree.ts'

test('directory → layer → apply gives the same tree (edge cases and the bench tree)', async (t) => {
  const dir = await tempDir(t)
  for (const [name, make] of [
    ['edge', (d: string) => edgeTree(d)],
    ['bench', (d: string) => genTree(d, 2)],
  ] as const) {
    const src = path.join(dir, `${name}-src`)
    const out = path.join(dir, `${name}-out`)
    await make(src)
    for (const compression of ['gzip', 'zstd'] as const) {
      const target = `${out}-${compression}`
      await applyLayer(layerFromDirectory(src, { compression }), target)
      assert.deepEqual(await describeTree(target), await describeTree(src), `${name} ${compression}`)
    }
  }
})

async function makeOldNew(dir: string) {
  const old = path.join(dir, 'old')
  const neu = path.join(dir, 'new')
  for (const root of [old, neu]) {
    await fs.mkdir(path.join(root, 'keep', 'inner'), { recursive: true })
    await fs.writeFile(path.join(root, 'keep', 'same.txt'), 'same')
    await fs.writeFile(path.join(root, 'keep', 'inner', 'x'), 'x')
  }
  // deletions
  await fs.writeFile(path.join(old, 'deleted.txt'), 'gone')
  await fs.mkdir(path.join(old, 'deleted-dir', 'sub'), { recursive: true })
  await fs.writeFile(path.join(old, 'deleted-dir', 'sub', 'f'), 'f')
  // a replaced directory: none of its old children survive
  await fs.mkdir(path.join(old, 'replaced'))
  await fs.writeFile(path.join(old, 'replaced', 'a'), 'a')
  await fs.writeFile(path.join(old, 'replaced', 'b'), 'b')
  await fs.mkdir(path.join(neu, 'replaced'))
  await fs.writeFile(path.join(neu, 'replaced', 'c'), 'c')
  // a file that became a directory, and a directory that became a file
  await fs.writeFile(path.join(old, 'was-file'), 'file')
  await fs.mkdir(path.join(neu, 'was-file'))
  await fs.writeFile(path.join(neu, 'was-file', 'now'), 'inside')
  await fs.mkdir(path.join(old, 'was-dir'))
  await fs.writeFile(path.join(old, 'was-dir', 'child'), 'c')
  await fs.writeFile(path.join(neu, 'was-dir'), 'now a file')
  // changed content with the same size, changed mode, changed link target, additions
  await fs.writeFile(path.join(old, 'keep', 'changed.txt'), 'aaaa')
  await fs.writeFile(path.join(neu, 'keep', 'changed.txt'), 'bbbb')
  await fs.utimes(path.join(neu, 'keep', 'changed.txt'), new Date(5e11), new Date(5e11))
  await fs.writeFile(path.join(old, 'mode'), 'm', { mode: 0o644 })
  await fs.writeFile(path.join(neu, 'mode'), 'm')
  await fs.chmod(path.join(neu, 'mode'), 0o755)
  await fs.symlink('a', path.join(old, 'link'))
  await fs.symlink('b', path.join(neu, 'link'))
  await fs.writeFile(path.join(neu, 'keep', 'inner', 'added'), 'new')
  // same size and content, other mtime: unchanged after the content check
  await fs.writeFile(path.join(old, 'touched'), 'same bytes')
  await fs.writeFile(path.join(neu, 'touched'), 'same bytes')
  await fs.utimes(path.join(neu, 'touched'), new Date(1e12), new Date(1e12))
  return { old, neu }
}

test('a diff layer applied onto the old tree gives the new tree', async (t) => {
  const dir = await tempDir(t)
  const { old, neu } = await makeOldNew(dir)
  const layer = layerFromDiff(old, neu, { compression: 'none' })
  const names: string[] = []
  const extract = tarStream.extract()
  ;(await layer.uncompressed()).pipe(extract as unknown as NodeJS.WritableStream)
  for await (const e of extract) {
    names.push(e.header.name)
    e.resume()
  }
  assert.ok(names.includes('.wh.deleted.txt'))
  assert.ok(names.includes('.wh.deleted-dir'))
  assert.ok(!names.some((n) => n.startsWith('deleted-dir/')), 'one whiteout for a whole deleted subtree')
  assert.ok(names.includes('replaced/.wh..wh..opq'))
  assert.ok(!names.includes('touched'), 'same content with another mtime is not a change')
  assert.ok(!names.includes('keep/same.txt'))
  assert.ok(names.includes('keep/changed.txt'))
  assert.ok(names.includes('keep/'), 'the parent of a changed file is kept')
  // Apply onto a copy of old.
  const target = path.join(dir, 'target')
  await applyLayer(layerFromDirectory(old), target)
  await applyLayer(layer, target)
  const want = await describeTree(neu)
  const got = await describeTree(target)
  // mtimes are normalised by layers, so compare everything describeTree records (no times).
  assert.deepEqual(got, want)
})

/** Applies the diff of old → new onto a copy of old (made by a layer, which keeps hardlinks) and returns the layer's entry names. */
async function diffOnto(dir: string, old: string, neu: string): Promise<string[]> {
  const target = path.join(dir, 'target')
  await applyLayer(layerFromDirectory(old), target)
  const layer = layerFromDiff(old, neu, { compression: 'none' })
  const names: string[] = []
  const extract = tarStream.extract()
  ;(await layer.uncompressed()).pipe(extract as unknown as NodeJS.WritableStream)
  for await (const e of extract) {
    names.push(`${e.header.name}${e.header.type === 'link' ? ` -> ${e.header.linkname}` : ''}`)
    e.resume()
  }
  await applyLayer(layer, target)
  assert.deepEqual(await describeTree(target), await describeTree(neu))
  return names
}

test('diff: a new path linked to an unchanged file keeps the link', async (t) => {
  const dir = await tempDir(t)
  const [old, neu] = [path.join(dir, 'old'), path.join(dir, 'new')]
  for (const root of [old, neu]) {
    await fs.mkdir(root)
    await fs.writeFile(path.join(root, 'b'), 'shared')
    await fs.utimes(path.join(root, 'b'), new Date(1e12), new Date(1e12))
  }
  await fs.link(path.join(neu, 'b'), path.join(neu, 'a'))
  assert.deepEqual(await diffOnto(dir, old, neu), ['a', 'b -> a'])
})

test('diff: a hardlink group that swaps a member keeps its unchanged member linked', async (t) => {
  const dir = await tempDir(t)
  const [old, neu] = [path.join(dir, 'old'), path.join(dir, 'new')]
  const when = new Date(1e12)
  for (const root of [old, neu]) {
    await fs.mkdir(root)
    await fs.mkdir(path.join(root, 'd'))
    await fs.writeFile(path.join(root, 'd', 'b'), 'shared')
    await fs.utimes(path.join(root, 'd', 'b'), when, when)
    await fs.utimes(path.join(root, 'd'), when, when)
  }
  // old: d/b and q are one file; new: d/b and r are, and q is a file of its own with the same bytes and times.
  await fs.link(path.join(old, 'd', 'b'), path.join(old, 'q'))
  await fs.link(path.join(neu, 'd', 'b'), path.join(neu, 'r'))
  await fs.writeFile(path.join(neu, 'q'), 'shared')
  await fs.utimes(path.join(neu, 'q'), when, when)
  // d/b itself is unchanged (same size, time, and link count), but it must follow r.
  assert.deepEqual(await diffOnto(dir, old, neu), ['q', 'r', 'd/', 'd/b -> r'])
})

test('whiteouts do not delete entries of their own layer', async (t) => {
  const dir = await tempDir(t)
  await fs.mkdir(path.join(dir, 'd'))
  await fs.writeFile(path.join(dir, 'd', 'lower'), 'lower')
  const tar = await rawTar([
    { name: 'd/', type: 'directory' },
    { name: 'd/upper', content: 'upper' },
    { name: 'd/.wh..wh..opq' },
    { name: 'e', content: 'e' },
    { name: '.wh.e' },
  ])
  await applyTar(Readable.from([tar]), dir)
  assert.deepEqual((await fs.readdir(path.join(dir, 'd'))).sort(), ['upper'])
  assert.equal(await fs.readFile(path.join(dir, 'e'), 'utf8'), 'e')
})

test('whiteouts keep what their own layer wrote deeper inside the directory they delete', async (t) => {
  const dir = await tempDir(t)
  const lower = await rawTar([
    { name: 'd/', type: 'directory' },
    { name: 'd/a', content: 'lower' },
    { name: 'd/e/', type: 'directory' },
    { name: 'd/e/g', content: 'lower' },
    { name: 'o/', type: 'directory' },
    { name: 'o/x/', type: 'directory' },
    { name: 'o/x/old', content: 'lower' },
    { name: 'o/y', content: 'lower' },
  ])
  // The upper layer writes into lower directories without entries for them, then deletes them.
  const upper = await rawTar([{ name: 'd/e/f', content: 'upper' }, { name: '.wh.d' }, { name: 'o/x/new', content: 'upper' }, { name: 'o/.wh..wh..opq' }])
  for (const tar of [lower, upper]) await applyTar(Readable.from([tar]), dir)
  assert.deepEqual(await treePaths(dir), ['d', 'd/e', 'd/e/f', 'o', 'o/x', 'o/x/new'])
})

/** Applies a hostile tar into root/target and checks that nothing outside target changed. */
async function hostile(t: import('node:test').TestContext, entries: RawEntry[], code: string, re: RegExp) {
  const root = await tempDir(t)
  const target = path.join(root, 'target')
  await fs.mkdir(target)
  await fs.writeFile(path.join(root, 'victim'), 'untouched')
  const before = await snapshot(root)
  await assert.rejects(applyTar(Readable.from([await rawTar(entries)]), target), (e) => isOcikitError(e) && e.code === code && re.test(e.message))
  const after = await snapshot(root)
  for (const [k, v] of before) if (!k.startsWith('target')) assert.equal(after.get(k), v, k)
  for (const k of after.keys()) assert.ok(k.startsWith('target') || before.has(k), `nothing new outside: ${k}`)
}

test('hostile: ../ names are refused', (t) => hostile(t, [{ name: '../victim', content: 'pwned' }], 'UNSAFE_PATH', /\.\.\/victim/))
test('hostile: a ../ in the middle of a name is refused', (t) => hostile(t, [{ name: 'a/../../victim', content: 'pwned' }], 'UNSAFE_PATH', /'\.\.'/))
test('hostile: absolute names are refused', async (t) => {
  const root = await tempDir(t)
  await hostile(t, [{ name: `${root}/victim`, content: 'pwned' }], 'UNSAFE_PATH', /absolute/)
})
test('hostile: a symlink planted to outside and then written through is refused', (t) =>
  hostile(
    t,
    [
      { name: 'evil', type: 'symlink', linkname: '..' },
      { name: 'evil/victim', content: 'pwned' },
    ],
    'UNSAFE_PATH',
    /evil\/victim.*outside/,
  ))
test('hostile: a symlink to an absolute path written through is refused', (t) =>
  hostile(
    t,
    [
      { name: 'etc', type: 'symlink', linkname: '/tmp' },
      { name: 'etc/pwned', content: 'pwned' },
    ],
    'UNSAFE_PATH',
    /etc\/pwned.*absolute/,
  ))
test('hostile: a hardlink to outside is refused', (t) => hostile(t, [{ name: 'link', type: 'link', linkname: '../victim' }], 'UNSAFE_PATH', /link/))
test('hostile: a hardlink through a planted symlink is refused', (t) =>
  hostile(
    t,
    [
      { name: 'up', type: 'symlink', linkname: '../' },
      { name: 'link', type: 'link', linkname: 'up/victim' },
    ],
    'UNSAFE_PATH',
    /outside/,
  ))
test('hostile: a file written onto a planted symlink replaces the link, never follows it', async (t) => {
  const root = await tempDir(t)
  const target = path.join(root, 'target')
  await fs.mkdir(target)
  await fs.writeFile(path.join(root, 'victim'), 'untouched')
  await applyTar(
    Readable.from([
      await rawTar([
        { name: 'x', type: 'symlink', linkname: '../victim' },
        { name: 'x', content: 'new' },
      ]),
    ]),
    target,
  )
  assert.equal(await fs.readFile(path.join(root, 'victim'), 'utf8'), 'untouched')
  assert.equal((await fs.lstat(path.join(target, 'x'))).isFile(), true)
})

test('modes and times are restored: files, symlinks, and directories after what was written into them', async (t) => {
  const target = path.join(await tempDir(t), 'target')
  const when = new Date('2021-05-06T07:08:09Z')
  await applyTar(
    Readable.from([
      await rawTar([
        { name: 'd/', type: 'directory', mode: 0o750, mtime: when },
        { name: 'd/e/', type: 'directory', mode: 0o700, mtime: when },
        { name: 'd/e/f', content: 'f', mode: 0o640, mtime: when },
        { name: 'd/l', type: 'symlink', linkname: 'e/f', mtime: when },
      ]),
    ]),
    target,
  )
  for (const [name, mode] of [
    ['d', 0o750],
    ['d/e', 0o700],
    ['d/e/f', 0o640],
  ] as const) {
    const st = await fs.stat(path.join(target, name))
    assert.equal(st.mode & 0o7777, mode, name)
    assert.equal(st.mtime.toISOString(), when.toISOString(), name)
  }
  assert.equal((await fs.lstat(path.join(target, 'd/l'))).mtime.toISOString(), when.toISOString(), 'symlink')
})

for (const [how, linkname] of [
  ['an absolute', (outside: string) => outside],
  ['a relative', () => '../outside'],
] as const) {
  test(`hostile: a directory replaced by ${how} symlink later in the layer does not take the directory's mtime outside`, async (t) => {
    const root = await tempDir(t)
    const target = path.join(root, 'target')
    const outside = path.join(root, 'outside')
    await fs.mkdir(path.join(outside, 'b'), { recursive: true })
    const kept = new Date('2020-01-02T03:04:05Z')
    for (const d of [outside, path.join(outside, 'b')]) await fs.utimes(d, kept, kept)
    const stats = await applyTar(
      Readable.from([
        await rawTar([
          { name: 'a/', type: 'directory', mtime: new Date(1000_000) },
          { name: 'a/b/', type: 'directory', mtime: new Date(1000_000) },
          { name: 'a', type: 'symlink', linkname: linkname(outside) },
        ]),
      ]),
      target,
    )
    assert.equal(stats.entries, 3)
    assert.equal((await fs.lstat(path.join(target, 'a'))).isSymbolicLink(), true)
    for (const d of [outside, path.join(outside, 'b')]) assert.equal((await fs.stat(d)).mtime.toISOString(), kept.toISOString(), d)
  })
}

for (const [what, name, linkname] of [
  ['itself', 'f', 'f'],
  ['a file inside it', 'd', 'd/keep'],
] as const) {
  test(`a hardlink to ${what} is refused before anything is removed`, async (t) => {
    const target = await tempDir(t)
    await fs.writeFile(path.join(target, 'f'), 'kept')
    await fs.mkdir(path.join(target, 'd'))
    await fs.writeFile(path.join(target, 'd', 'keep'), 'kept')
    const before = await snapshot(target)
    await assert.rejects(
      applyTar(Readable.from([await rawTar([{ name, type: 'link', linkname }])]), target),
      (e) => isOcikitError(e, 'INVALID_LAYER') && /itself or inside it/.test(e.message),
    )
    assert.deepEqual(await snapshot(target), before)
  })
}

test('hostile: a gzip bomb is stopped', async (t) => {
  const root = await tempDir(t)
  // One file of 300 MiB of zeros: about 300 KiB gzipped, a 1000× expansion.
  const size = 300 << 20
  const header = tarStream.pack()
  const out: Buffer[] = []
  header.on('data', (c) => out.push(c as Buffer))
  const ended = new Promise<void>((r) => header.on('end', () => r()))
  const sink = header.entry({ name: 'zeros', size, mode: 0o644, mtime: new Date(0) })
  const zero = Buffer.alloc(1 << 20)
  for (let i = 0; i < 300; i++) sink.write(zero)
  sink.end(Buffer.alloc(0))
  header.finalize()
  await ended
  const tar = Buffer.concat(out)
  const gz = zlib.gzipSync(tar, { level: 9 })
  const src = new MemoryBlobSource()
  const desc = src.put(gz, 'application/vnd.oci.image.layer.v1.tar+gzip')
  const layer = new BlobLayer(src, desc, async () => digestOf(tar))
  const target = path.join(root, 'target')
  await assert.rejects(applyLayer(layer, target), (e) => isOcikitError(e, 'TOO_LARGE') && /expands more than 250×/.test(e.message))
  const written = await fs.stat(path.join(target, 'zeros')).then(
    (s) => s.size,
    () => 0,
  )
  assert.ok(written < size, 'extraction stopped early')
})

test('a layer whose content does not match its diffID fails', async (t) => {
  const root = await tempDir(t)
  const tar = await rawTar([{ name: 'a', content: 'a' }])
  const src = new MemoryBlobSource()
  const desc = src.put(zlib.gzipSync(tar), 'application/vnd.oci.image.layer.v1.tar+gzip')
  const layer = new BlobLayer(src, desc, async () => digestOf('something else'))
  await assert.rejects(applyLayer(layer, path.join(root, 't')), (e) => isOcikitError(e, 'DIGEST_MISMATCH'))
})

test('a tar that ends right after its last file (as umoci 0.4.7 writes them) still applies', async (t) => {
  const root = await tempDir(t)
  const full = await rawTar([{ name: 'a', content: 'hello' }])
  // Drop the end-of-archive blocks and the padding after the last file's 5 bytes.
  const cut = full.subarray(0, 512 + 5)
  await applyTar(Readable.from([cut]), root)
  assert.equal(await fs.readFile(path.join(root, 'a'), 'utf8'), 'hello')
})

test('a layer of 60,000 entries for one directory keeps one record of it, not one per entry (issue 13.11)', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t)
  const one = await rawTar([{ name: 'd/', type: 'directory', mtime: new Date(1000_000) }])
  const header = one.subarray(0, 512) // the rest is the end-of-archive blocks
  v8.setFlagsFromString('--expose-gc')
  const collect = vm.runInNewContext('gc') as () => void
  const N = 60_000
  let before = 0
  let grown = 0
  async function* entries() {
    collect()
    before = process.memoryUsage().heapUsed
    for (let i = 0; i < N; i++) {
      yield header
      // Sampled just before the end: everything the applier kept per entry is still held.
      if (i === N - 1) {
        await new Promise((r) => setImmediate(r))
        collect()
        grown = process.memoryUsage().heapUsed - before
      }
    }
    yield one.subarray(512)
  }
  const stats = await applyTar(Readable.from(entries(), { objectMode: false }), dir)
  assert.equal(stats.entries, N)
  assert.equal((await fs.stat(path.join(dir, 'd'))).mtimeMs, 1000_000, 'the time is set, once')
  // One record per entry held about 6 MB here (a path and a Date each); one per directory, nothing.
  assert.ok(grown < 2_000_000, `the heap grew by ${grown} bytes over ${N} entries`)
})
