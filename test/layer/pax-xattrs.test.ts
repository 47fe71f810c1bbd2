import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { PassThrough, Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { test } from 'node:test'
import tarStream from 'tar-stream'
import { isOcikitError } from '../../src/errors.ts'
import { applyTar } from '../../src/layer/apply.ts'
import type { LayerEntry } from '../../src/layer/entry.ts'
import { PaxXattrTap } from '../../src/layer/pax-xattrs.ts'
import { listTar } from '../../src/layer/read.ts'
import { tarEntries } from '../../src/layer/tar-write.ts'
import { rawTar } from '../helpers/tar.ts'
import { tempDir } from '../helpers/tmp.ts'

/** Entries of every shape the tap must step over, each file with a binary xattr of its own. */
function entries(): LayerEntry[] {
  const out: LayerEntry[] = []
  for (let i = 0; i < 40; i++) {
    const size = [0, 1, 511, 512, 513, 4096, 70_000][i % 7] as number
    const content = randomBytes(size)
    const name = i % 3 === 0 ? `long/${'n'.repeat(150 + i)}/f${i}` : i % 5 === 0 ? `ünïcode-${i}` : `f${i}`
    out.push({
      path: name,
      type: 'file',
      mode: 0o644,
      uid: i % 4 === 0 ? 3_000_000 : 0, // too large for ustar: a PAX uid record
      gid: 0,
      size,
      xattrs: i % 2 === 0 ? { [`user.x${i}`]: Uint8Array.from([0xff, i, 0x00, 0x80, 0x0a]) } : undefined,
      read: async () => content,
    })
    if (i % 6 === 0) out.push({ path: `d${i}`, type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, xattrs: { 'user.dir': Uint8Array.from([1, 2, 3]) } })
    if (i % 7 === 0) out.push({ path: `l${i}`, type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkname: 't'.repeat(200) })
  }
  return out
}

test("the tap finds every entry's xattr bytes however the tar is cut into chunks", async () => {
  const list = entries()
  const chunks: Buffer[] = []
  for await (const c of tarEntries(list, 0).stream) chunks.push(c as Buffer)
  const tar = Buffer.concat(chunks)
  const want = list.filter((e) => e.xattrs).map((e) => [e.path, e.xattrs] as const)
  for (const cut of [1, 7, 511, 512, 513, 100_003, tar.length]) {
    const pieces = []
    for (let i = 0; i < tar.length; i += cut) pieces.push(tar.subarray(i, i + cut))
    const tap = new PaxXattrTap()
    const extract = tarStream.extract()
    const done = pipeline(Readable.from(pieces), tap, extract as unknown as NodeJS.WritableStream)
    const got: (readonly [string, Record<string, Uint8Array>])[] = []
    for await (const e of extract) {
      // tar-stream's own reading of these values is lossy: only the tap's bytes can match.
      const attrs = tap.xattrsOf(e.header)
      if (attrs.length) got.push([e.header.name.replace(/\/$/, ''), Object.fromEntries(attrs.map(([k, v]) => [k, Uint8Array.from(v)]))])
      e.resume()
    }
    await done
    assert.deepEqual(got, want, `cut every ${cut} bytes`)
  }
})

for (const [what, field] of [
  ['not octal', Buffer.from('zz')],
  ['base-256 with a first byte other than 0x80 (tar-stream reads a null size and waits forever)', Buffer.from([0xd7, 0x30, 0x30])],
  ['negative base-256', Buffer.alloc(12, 0xff)],
] as const) {
  test(`a header whose size field is ${what} fails the stream`, async () => {
    const bad = Buffer.alloc(2048)
    bad.write('name', 0)
    field.copy(bad, 124)
    bad[156] = 0x32 // a symlink
    await assert.rejects(pipeline(Readable.from([bad]), new PaxXattrTap(), new PassThrough().resume()), /invalid size field in the tar header at byte 0/)
  })
}

test('listing and applying a tar whose header size tar-stream would misread end with INVALID_LAYER, not a hang', { timeout: 20_000 }, async (t) => {
  const tar = await rawTar([
    { name: 'a', content: 'a' },
    { name: 'l', type: 'symlink', linkname: 'a' },
  ])
  tar.writeUInt8(0xd7, 1024 + 124) // the symlink's size field
  const entries = []
  await assert.rejects(
    (async () => {
      for await (const e of listTar(Readable.from([tar]))) entries.push(e.path)
    })(),
    (e) => isOcikitError(e, 'INVALID_LAYER') && /layer is not a valid tar: invalid size field in the tar header at byte 1024/.test(e.message),
  )
  const dir = await tempDir(t)
  await assert.rejects(applyTar(Readable.from([tar]), dir), (e) => isOcikitError(e, 'INVALID_LAYER'))
})
