/**
 * The BFC store: the vectors BFC's own tool wrote (plain, zstd, password, key file) read to the
 * bytes of the layout they came from; round trips; appending; encryption; a torn append; and bad
 * files (truncated, a damaged footer, index or object, a '..' name, an index past the end), each
 * a clear error, with nothing written by a write that fails.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { copy, fsck, list, read, write } from '../../../src/api.ts'
import { isOcikitError } from '../../../src/errors.ts'
import { randomImage, randomIndex } from '../../../src/image/random.ts'
import type { Image } from '../../../src/image/types.ts'
import { BfcFile } from '../../../src/stores/bfc/container.ts'
import { bfcCrc, bfcCrcJs } from '../../../src/stores/bfc/crc32c.ts'
import { argon2idKey, deriveKey } from '../../../src/stores/bfc/crypto.ts'
import { encodeFooter, encodeIndex, FOOTER_SIZE, isBfcPath } from '../../../src/stores/bfc/format.ts'
import { tempDir } from '../../helpers/tmp.ts'
import { delegatingImage } from '../../helpers/views.ts'

const VECTORS = path.resolve(import.meta.dirname, '../../fixtures/bfc')
const PASSWORD = 'bfc-vector-password'
const keys = {
  plain: undefined,
  zstd: undefined,
  password: { password: async () => PASSWORD },
  keyfile: { keyFile: path.join(VECTORS, 'key.bin') },
} as const

const code = (c: string, re?: RegExp) => (e: unknown) => isOcikitError(e) && e.code === c && (!re || re.test(e.message))

describe('bfc: the vectors written by BFC’s own tool', () => {
  test('the checksum is CRC32C with init 0 and no final XOR (native and JavaScript alike), streamed in pieces too', () => {
    const b = Buffer.from('123456789')
    assert.equal(bfcCrc(b), 0x58e3fa20)
    assert.equal(bfcCrcJs(b), 0x58e3fa20)
    assert.equal(bfcCrc(b.subarray(4), bfcCrc(b.subarray(0, 4))), 0x58e3fa20)
    assert.equal(bfcCrc(Buffer.alloc(0)), 0)
  })

  test('Argon2id with the first 16 salt bytes gives the vector’s key', async () => {
    const salt = Buffer.from('ded81978b940480c2d9e2c6b58de9667', 'hex')
    const want = 'b802d0d930e804be201dde318617389a26f3749c7f283e3e233358b001f49028'
    const key = await deriveKey({ password: async () => PASSWORD }, Buffer.concat([salt, Buffer.alloc(16, 0xee)]))
    assert.equal(key.toString('hex'), want)
    // hash-wasm's, used where Node has no crypto.argon2 (before 24.7), gives the same key.
    assert.equal((await argon2idKey(Buffer.from(PASSWORD), salt, { fallback: true })).toString('hex'), want)
  })

  for (const [name, key] of Object.entries(keys)) {
    test(`${name}.bfc: every entry as the reference listing has it, every file byte-equal to the layout it came from`, async () => {
      const listing = JSON.parse(await fs.readFile(path.join(VECTORS, `${name}.list.json`), 'utf8'))
      const f = await BfcFile.open(path.join(VECTORS, `${name}.bfc`), name, { key })
      assert.equal(f.entries.size, listing.entries.length)
      assert.equal(f.sorted, true)
      assert.equal(f.recovered, 0)
      assert.equal(f.footer.indexOffset, listing.footer.index_offset)
      for (const want of listing.entries) {
        const e = f.entries.get(want.path)
        assert.ok(e, want.path)
        assert.deepEqual(
          [e.mode, e.mtimeNs.toString(), e.origSize, e.crc, e.comp, e.enc, e.objOffset, e.objSize],
          [
            want.mode,
            want.mtime_ns,
            want.size,
            want.crc32c,
            want.compression === 'zstd' ? 1 : 0,
            want.encryption === 'none' ? 0 : 1,
            want.obj_offset,
            want.obj_size,
          ],
          want.path,
        )
        if (want.type !== 'file') continue
        const bytes = await f.read(e, 1 << 20)
        assert.deepEqual(bytes, await fs.readFile(path.join(VECTORS, 'layout', want.path)), want.path)
        assert.equal(createHash('sha256').update(bytes).digest('hex'), want.sha256)
      }
      const img = await read(`bfc:${path.join(VECTORS, `${name}.bfc`)}:v1`, { bfc: { key } })
      assert.equal(await img.digest(), 'sha256:30dfae4bfbf24cfcb85e99aeab43208cb4edf3d36886a2ba03df7674ce46fbf8')
      assert.equal((await fsck(`bfc:${path.join(VECTORS, `${name}.bfc`)}`, { bfc: { key } })).ok, true)
    })
  }

  test('an encrypted vector without its key is KEY_REQUIRED, with a wrong one DECRYPTION_FAILED; listing needs no key for the index', async () => {
    const file = path.join(VECTORS, 'password.bfc')
    await assert.rejects(read(`bfc:${file}:v1`), code('KEY_REQUIRED', /password|key file/))
    await assert.rejects(read(`bfc:${file}:v1`, { bfc: { key: { password: async () => 'wrong' } } }), code('DECRYPTION_FAILED', /password or key is wrong/))
    const f = await BfcFile.open(file, 'password.bfc')
    assert.equal(f.entries.size, 7, 'the index is in clear')
  })
})

describe('bfc: writing', () => {
  test('layout → bfc → layout keeps every digest; a second image appends; both tags read back; fsck is clean', async (t) => {
    const dir = await tempDir(t)
    const one = await randomImage({ seed: 1, layers: 2, layerSize: 100_000 })
    const multi = await randomIndex({ seed: 2, layers: 1 })
    await write(`oci:${dir}/src:one`, one)
    await copy(`oci:${dir}/src:one`, `bfc:${dir}/a.bfc:one`)
    const size1 = (await fs.stat(`${dir}/a.bfc`)).size
    await write(`bfc:${dir}/a.bfc:multi`, multi, { bfc: { compress: true } })
    assert.ok((await fs.stat(`${dir}/a.bfc`)).size > size1, 'appended')
    assert.deepEqual(
      (await list(`bfc:${dir}/a.bfc`)).map((e) => e.tag),
      ['one', 'multi'],
    )
    await copy(`bfc:${dir}/a.bfc:one`, `oci:${dir}/back:one`)
    await copy(`bfc:${dir}/a.bfc:multi`, `oci:${dir}/back:multi`)
    assert.equal(await (await read(`oci:${dir}/back:one`)).digest(), await one.digest())
    assert.equal(await (await read(`oci:${dir}/back:multi`)).digest(), await multi.digest())
    assert.equal((await fsck(`bfc:${dir}/a.bfc`)).ok, true)
    assert.equal((await fsck(`oci:${dir}/back`)).ok, true)
    // Documents were compressed where it helped; the layers stay as they are.
    const f = await BfcFile.open(`${dir}/a.bfc`, 'a')
    const m = await (multi as import('../../../src/image/types.ts').ImageIndex).manifest()
    assert.equal(f.entries.get(`blobs/sha256/${(await multi.digest()).slice(7)}`)?.comp, 1, 'the index document is zstd')
    assert.ok(m.manifests.length >= 2)
  })

  test('encrypted with a password or a key file: every file object encrypted, read back with the key, not without; tampering is DECRYPTION_FAILED', async (t) => {
    const dir = await tempDir(t)
    const img = await randomImage({ seed: 5, layers: 1, layerSize: 50_000 })
    const pw = { key: { password: async () => 'correct horse' }, encrypt: true }
    await write(`bfc:${dir}/p.bfc:1`, img, { bfc: pw })
    const f = await BfcFile.open(`${dir}/p.bfc`, 'p')
    assert.ok([...f.entries.values()].filter((e) => e.type === 1).every((e) => e.enc === 1))
    assert.notDeepEqual(f.header.salt.subarray(0, 16), Buffer.alloc(16), 'a random salt')
    assert.equal(await (await read(`bfc:${dir}/p.bfc:1`, { bfc: pw })).digest(), await img.digest())
    await assert.rejects(read(`bfc:${dir}/p.bfc:1`), code('KEY_REQUIRED'))
    // Appending to an encrypted file uses its key; appending without it is refused before anything is written.
    const before = await fs.readFile(`${dir}/p.bfc`)
    await assert.rejects(write(`bfc:${dir}/p.bfc:2`, await randomImage({ seed: 6 })), code('KEY_REQUIRED'))
    assert.deepEqual(await fs.readFile(`${dir}/p.bfc`), before, 'untouched')
    await write(`bfc:${dir}/p.bfc:2`, await randomImage({ seed: 6 }), { bfc: pw })
    // One byte of the layer's ciphertext changed.
    const layer = f.entries.get(`blobs/sha256/${(await img.manifest()).layers[0]?.digest.slice(7)}`)
    assert.ok(layer)
    const bytes = await fs.readFile(`${dir}/p.bfc`)
    const at = layer.objOffset + layer.objSize - 40
    bytes[at] = (bytes[at] as number) ^ 1
    await fs.writeFile(`${dir}/t.bfc`, bytes)
    const tampered = await read(`bfc:${dir}/t.bfc:1`, { bfc: pw })
    await assert.rejects(async () => {
      for await (const _ of await ((await (tampered as Image).layers())[0] as import('../../../src/image/types.ts').Layer).compressed());
    }, code('DECRYPTION_FAILED'))
    // A key file (32 bytes) instead.
    await fs.writeFile(`${dir}/k.bin`, Buffer.alloc(32, 7))
    const kf = { key: { keyFile: `${dir}/k.bin` }, encrypt: true }
    await write(`bfc:${dir}/k.bfc:1`, img, { bfc: kf })
    assert.deepEqual((await BfcFile.open(`${dir}/k.bfc`, 'k')).header.salt, Buffer.alloc(32), 'no salt in key-file mode')
    assert.equal(await (await read(`bfc:${dir}/k.bfc:1`, { bfc: kf })).digest(), await img.digest())
    await fs.writeFile(`${dir}/short.bin`, Buffer.alloc(16))
    await assert.rejects(read(`bfc:${dir}/k.bfc:1`, { bfc: { key: { keyFile: `${dir}/short.bin` } } }), code('INVALID_ARGUMENT', /16 bytes/))
    // An unencrypted file cannot take encrypted objects.
    await write(`bfc:${dir}/plain.bfc:1`, img)
    await assert.rejects(write(`bfc:${dir}/plain.bfc:2`, img, { bfc: kf }), code('NOT_SUPPORTED', /not encrypted/))
  })

  test('a write that fails part way leaves a new file absent and an existing file byte for byte as it was', async (t) => {
    const dir = await tempDir(t)
    const img = await randomImage({ seed: 7, layers: 2, layerSize: 300_000 })
    const broken = delegatingImage(img, {
      layers: async () =>
        (await img.layers()).map((l, i) =>
          i === 1
            ? {
                ...l,
                mediaType: l.mediaType,
                digest: () => l.digest(),
                diffId: () => l.diffId(),
                size: () => l.size(),
                uncompressed: (o?: import('../../../src/image/types.ts').IoOptions) => l.uncompressed(o),
                compressed: async () =>
                  Readable.from(
                    (async function* () {
                      yield Buffer.alloc(1000)
                      throw new Error('the source broke')
                    })(),
                  ),
              }
            : l,
        ),
    })
    await assert.rejects(write(`bfc:${dir}/new.bfc:1`, broken), /the source broke|DIGEST/)
    assert.deepEqual(
      (await fs.readdir(dir)).filter((f) => f.includes('new.bfc')),
      [],
      'no file, no temp file',
    )
    await write(`bfc:${dir}/old.bfc:1`, await randomImage({ seed: 8 }))
    const before = await fs.readFile(`${dir}/old.bfc`)
    await assert.rejects(write(`bfc:${dir}/old.bfc:2`, broken), /the source broke|DIGEST/)
    assert.deepEqual(await fs.readFile(`${dir}/old.bfc`), before)
  })

  test('a torn append (cut before its footer): read at the last valid footer, noted by fsck, cut off by the next write', async (t) => {
    const dir = await tempDir(t)
    const img = await randomImage({ seed: 9, layers: 1 })
    await write(`bfc:${dir}/a.bfc:1`, img)
    const good = await fs.readFile(`${dir}/a.bfc`)
    await fs.appendFile(`${dir}/a.bfc`, Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.alloc(300, 0x55)]))
    const f = await BfcFile.open(`${dir}/a.bfc`, 'a')
    assert.equal(f.recovered, 304)
    assert.equal(await (await read(`bfc:${dir}/a.bfc:1`)).digest(), await img.digest())
    const report = await fsck(`bfc:${dir}/a.bfc`)
    assert.equal(report.ok, true, 'harmless: the store is as before the cut-off write')
    assert.match(report.notes?.[0] ?? '', /304 bytes after the last valid footer/)
    await write(`bfc:${dir}/a.bfc:2`, await randomImage({ seed: 10 }))
    const after = await fs.readFile(`${dir}/a.bfc`)
    assert.deepEqual(after.subarray(0, good.length), good, 'the old part stays; the torn bytes are gone')
    assert.equal((await BfcFile.open(`${dir}/a.bfc`, 'a')).recovered, 0)
    assert.equal((await fsck(`bfc:${dir}/a.bfc`)).ok, true)
  })
})

describe('bfc: every tag at once', () => {
  test('copyTags copies every tag of a layout into a BFC file and back; a tagged or registry name is refused before anything is written', async (t) => {
    const dir = await tempDir(t)
    const a = await randomImage({ seed: 61 })
    const b = await randomIndex({ seed: 62 })
    await write(`oci:${dir}/l:a`, a)
    await write(`oci:${dir}/l:b`, b)
    const { copyTags } = await import('../../../src/copy.ts')
    const copied = await copyTags(`oci:${dir}/l`, `bfc:${dir}/all.bfc`, { bfc: { compress: true } })
    assert.deepEqual(
      copied.map((c) => [c.tag, c.descriptor.digest]),
      [
        ['a', await a.digest()],
        ['b', await b.digest()],
      ],
    )
    await copyTags(`bfc:${dir}/all.bfc`, `oci:${dir}/back`)
    assert.deepEqual(
      (await list(`oci:${dir}/back`)).map((e) => [e.tag, e.descriptor.digest]),
      copied.map((c) => [c.tag, c.descriptor.digest]),
    )
    await assert.rejects(copyTags(`oci:${dir}/l:a`, `bfc:${dir}/x.bfc`), code('INVALID_NAME', /without a tag/))
    await assert.rejects(copyTags('localhost:5000/app', `bfc:${dir}/x.bfc`), code('NOT_SUPPORTED'))
    await assert.rejects(fs.stat(`${dir}/x.bfc`), { code: 'ENOENT' })
  })
})

describe('bfc: gc', () => {
  test('gc drops what no tag reaches and the dead bytes, keeps every tagged image byte-identical, works on encrypted files without re-encrypting; --dry-run changes nothing', async (t) => {
    const dir = await tempDir(t)
    const bfc = { key: { key: Buffer.alloc(32, 3) }, encrypt: true, compress: true }
    const keep = await randomIndex({ seed: 51, layers: 1 })
    const drop = await randomImage({ seed: 52, layers: 2, layerSize: 50_000 })
    await write(`bfc:${dir}/g.bfc:keep`, keep, { bfc })
    await write(`bfc:${dir}/g.bfc:drop`, drop, { bfc })
    await write(`bfc:${dir}/g.bfc:keep`, keep, { bfc }) // index.json written a third time: two dead copies
    const { untag, gc } = await import('../../../src/api.ts')
    await untag(`bfc:${dir}/g.bfc:drop`, { bfc })
    const before = await fs.readFile(`${dir}/g.bfc`)
    const dry = await gc(`bfc:${dir}/g.bfc`, { dryRun: true, bfc })
    assert.equal(dry.removed.length, 4, 'the dropped image: manifest, config and two layers')
    assert.deepEqual(await fs.readFile(`${dir}/g.bfc`), before)
    const r = await gc(`bfc:${dir}/g.bfc`, { bfc })
    assert.deepEqual(
      r.removed.map((x) => x.digest).sort(),
      [await drop.digest(), (await drop.manifest()).config.digest, ...(await drop.manifest()).layers.map((l) => l.digest)].sort(),
    )
    assert.ok(r.bytes > 100_000, `saved ${r.bytes} bytes`)
    assert.ok((await fs.stat(`${dir}/g.bfc`)).size < before.length - 100_000)
    assert.equal(await (await read(`bfc:${dir}/g.bfc:keep`, { bfc })).digest(), await keep.digest())
    assert.equal((await fsck(`bfc:${dir}/g.bfc`, { bfc })).ok, true)
    await assert.rejects(read(`bfc:${dir}/g.bfc:drop`, { bfc }), code('MANIFEST_UNKNOWN'))
  })
})

describe('bfc: bad files are clear errors', () => {
  async function good(t: import('node:test').TestContext): Promise<{ dir: string; bytes: Buffer; f: BfcFile }> {
    const dir = await tempDir(t)
    await write(`bfc:${dir}/a.bfc:1`, await randomImage({ seed: 11, layers: 1, layerSize: 20_000 }))
    return { dir, bytes: await fs.readFile(`${dir}/a.bfc`), f: await BfcFile.open(`${dir}/a.bfc`, 'a') }
  }
  const invalid = (re: RegExp) => code('INVALID_BFC', re)

  test('truncated, or a damaged footer', async (t) => {
    const { dir, bytes } = await good(t)
    await fs.writeFile(`${dir}/cut.bfc`, bytes.subarray(0, bytes.length - 30))
    await assert.rejects(read(`bfc:${dir}/cut.bfc:1`), invalid(/no footer at its end, and no valid one before it/))
    await fs.writeFile(`${dir}/tiny.bfc`, bytes.subarray(0, 100))
    await assert.rejects(read(`bfc:${dir}/tiny.bfc:1`), invalid(/shorter than a header/))
    const footer = Buffer.from(bytes)
    footer.writeBigUInt64LE(BigInt(bytes.length * 2), bytes.length - FOOTER_SIZE + 20)
    await fs.writeFile(`${dir}/footer.bfc`, footer)
    await assert.rejects(read(`bfc:${dir}/footer.bfc:1`), invalid(/past the footer/))
  })

  test('an index whose CRC does not match; an index entry pointing past the end; a name with ..', async (t) => {
    const { dir, bytes, f } = await good(t)
    const idxAt = f.footer.indexOffset
    const crcBad = Buffer.from(bytes)
    crcBad[idxAt + 20] = (crcBad[idxAt + 20] as number) ^ 0xff
    await fs.writeFile(`${dir}/crc.bfc`, crcBad)
    await assert.rejects(read(`bfc:${dir}/crc.bfc:1`), invalid(/index CRC32C does not match/))
    // A rebuilt index (with a valid CRC) whose entries lie: past the data area, and a path with '..'.
    const rebuild = async (
      name: string,
      edit: (e: import('../../../src/stores/bfc/format.ts').BfcEntry) => import('../../../src/stores/bfc/format.ts').BfcEntry,
    ) => {
      const index = encodeIndex([...f.entries.values()].map(edit))
      await fs.writeFile(`${dir}/${name}`, Buffer.concat([bytes.subarray(0, idxAt), index, encodeFooter(idxAt, index)]))
    }
    await rebuild('past.bfc', (e) => (e.path === 'index.json' ? { ...e, objOffset: bytes.length + 10 } : e))
    await assert.rejects(read(`bfc:${dir}/past.bfc:1`), invalid(/outside the data area/))
    await rebuild('dotdot.bfc', (e) => (e.path === 'oci-layout' ? { ...e, path: 'blobs/../oci-layout' } : e))
    await assert.rejects(read(`bfc:${dir}/dotdot.bfc:1`), invalid(/not a path BFC stores/))
    for (const p of ['a/../b', 'a../b', 'file.', '/abs', 'a//b', 'a/./b', 'x/']) assert.equal(isBfcPath(p), false, p)
    for (const p of ['blobs/sha256/ab', 'index.json', 'a.b/c']) assert.equal(isBfcPath(p), true, p)
  })

  test('an object whose content no longer matches its CRC32C: the read fails, fsck names the entry; an object header that disagrees with the index', async (t) => {
    const { dir, bytes, f } = await good(t)
    const e = f.entries.get('index.json')
    assert.ok(e)
    const h = await f.head(e)
    const flipped = Buffer.from(bytes)
    flipped[h.contentAt + 5] = (flipped[h.contentAt + 5] as number) ^ 0x20
    await fs.writeFile(`${dir}/obj.bfc`, flipped)
    await assert.rejects(read(`bfc:${dir}/obj.bfc:1`), invalid(/CRC32C 0x[0-9a-f]+ where 0x[0-9a-f]+ was stored|JSON/))
    // A layer's byte: the image still opens; fsck names the object and its CRC, and the blob's digest.
    const layer = [...f.entries.values()].find((x) => x.origSize === 20_000 || (x.path.startsWith('blobs/') && x.origSize > 10_000))
    assert.ok(layer)
    const lh = await f.head(layer)
    const inLayer = Buffer.from(bytes)
    inLayer[lh.contentAt + 100] = (inLayer[lh.contentAt + 100] as number) ^ 0x20
    await fs.writeFile(`${dir}/layer.bfc`, inLayer)
    const report = await fsck(`bfc:${dir}/layer.bfc`)
    assert.equal(report.ok, false)
    assert.ok(
      report.problems.some((p) => p.via.includes(layer.path) && /CRC32C/.test(p.message)),
      JSON.stringify(report.problems),
    )
    assert.ok(report.problems.some((p) => p.kind === 'corrupt' || /CRC32C/.test(p.message)))
    const head = Buffer.from(bytes)
    head.writeUInt32LE(0o100600, e.objOffset + 8)
    await fs.writeFile(`${dir}/head.bfc`, head)
    await assert.rejects(read(`bfc:${dir}/head.bfc:1`), invalid(/disagree on mode/))
  })
})
