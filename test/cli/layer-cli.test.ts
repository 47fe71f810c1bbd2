import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { ocikit } from '../helpers/cli.ts'
import { snapshot, tempDir } from '../helpers/tmp.ts'
import { describeTree, edgeTree } from '../helpers/tree.ts'

const run = promisify(execFile)

async function trees(t: import('node:test').TestContext) {
  const dir = await tempDir(t)
  const a = path.join(dir, 'a')
  const b = path.join(dir, 'b')
  await edgeTree(a)
  await edgeTree(b)
  await fs.rm(path.join(b, 'sub'), { recursive: true })
  await fs.writeFile(path.join(b, 'new.txt'), 'new')
  return { dir, a, b }
}

test('layer create prints digest, diffID and size that match the file; layer ls lists it', async (t) => {
  const { dir, a } = await trees(t)
  const out = path.join(dir, 'l.tgz')
  const r = await ocikit(['layer', 'create', a, '-o', out, '--prefix', '/app', '--json'])
  assert.equal(r.code, 0, r.stderr)
  const info = JSON.parse(r.stdout)
  const bytes = await fs.readFile(out)
  assert.equal(info.digest, `sha256:${createHash('sha256').update(bytes).digest('hex')}`)
  assert.equal(info.size, bytes.length)
  assert.match(info.diffId, /^sha256:/)
  const human = await ocikit(['layer', 'create', a, '-o', out, '--prefix', '/app'])
  assert.match(human.stdout, new RegExp(`digest:\\s+${info.digest}`), 'the same input gives the same digest')
  const one = await ocikit(['layer', 'create', a, '-o', `${out}.1`, '--prefix', '/app', '--threads', '1', '--json'])
  assert.equal(JSON.parse(one.stdout).digest, info.digest, 'one compression thread gives the same bytes')
  const ls = await ocikit(['layer', 'ls', out])
  assert.match(ls.stdout, /^directory 0755 0:0 .* app$/m)
  assert.match(ls.stdout, /link .* app\/hard-c -> app\/hard-a/)
  const zst = await ocikit(['layer', 'create', a, '-o', `${out}.zst`, '--compression', 'zstd', '--json'])
  assert.equal(JSON.parse(zst.stdout).mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd')
})

test('layer diff marks whiteouts; --skip-empty writes nothing when nothing changed', async (t) => {
  const { dir, a, b } = await trees(t)
  const out = path.join(dir, 'd.tar')
  assert.equal((await ocikit(['layer', 'diff', a, b, '-o', out, '--compression', 'none'])).code, 0)
  const ls = await ocikit(['layer', 'ls', out])
  assert.match(ls.stdout, /\.wh\.sub\s+\[whiteout: deletes sub\]/)
  assert.match(ls.stdout, /new\.txt/)
  const empty = path.join(dir, 'e.tar')
  const r = await ocikit(['layer', 'diff', a, a, '-o', empty, '--skip-empty'])
  assert.equal(r.code, 0)
  assert.match(r.stdout, /no changes/)
  await assert.rejects(fs.stat(empty))
})

test('bad input to layer commands: one clear error, nothing written', async (t) => {
  const { dir, a } = await trees(t)
  const before = await snapshot(dir)
  for (const [args, re] of [
    [['layer', 'create', path.join(dir, 'missing'), '-o', path.join(dir, 'x.tgz')], /cannot read directory/],
    [['layer', 'create', a, '-o', path.join(dir, 'x.tgz'), '--level', '12'], /1 to 9/],
    [['layer', 'create', a, '-o', path.join(dir, 'x.tgz'), '--timestamp', 'soon'], /invalid timestamp/],
    [['layer', 'create', a, '-o', path.join(dir, 'x.tgz'), '--chown', 'root'], /numeric UID:GID/],
    [['layer', 'create', a, '-o', path.join(dir, 'x.tgz'), '--threads', '0'], /--threads takes a whole number/],
  ] as const) {
    const r = await ocikit([...args])
    assert.notEqual(r.code, 0, args.join(' '))
    assert.match(r.stderr, re)
  }
  assert.deepEqual(await snapshot(dir), before)
})

test('append, unpack and export: the image holds the tree; unpack refuses a non-empty directory', async (t) => {
  const { dir, a, b } = await trees(t)
  const layout = path.join(dir, 'layout')
  const r = await ocikit([
    'append',
    'scratch',
    `oci:${layout}:v1`,
    '--dir',
    a,
    '--prefix',
    '/app',
    '--cmd',
    '["node","/app/index.js"]',
    '--env',
    'A=1',
    '--port',
    '8080',
    '--label',
    'x=y',
  ])
  assert.equal(r.code, 0, r.stderr)
  const cfg = JSON.parse((await ocikit(['config', `oci:${layout}:v1`])).stdout)
  assert.deepEqual(cfg.config.Cmd, ['node', '/app/index.js'])
  assert.ok(cfg.config.Env.includes('A=1'))
  assert.deepEqual(cfg.config.ExposedPorts, { '8080/tcp': {} })
  assert.equal(cfg.config.Labels.x, 'y')
  assert.equal(cfg.history.length, 2)
  // a second layer on top of the first image
  assert.equal((await ocikit(['append', `oci:${layout}:v1`, `oci:${layout}:v2`, '--dir', b, '--prefix', '/more'])).code, 0)
  const rootfs = path.join(dir, 'rootfs')
  const u = await ocikit(['unpack', `oci:${layout}:v2`, rootfs])
  assert.equal(u.code, 0, u.stderr)
  assert.deepEqual(await describeTree(path.join(rootfs, 'app')), await describeTree(a))
  assert.deepEqual(await describeTree(path.join(rootfs, 'more')), await describeTree(b))
  const again = await ocikit(['unpack', `oci:${layout}:v2`, rootfs])
  assert.equal(again.code, 1)
  assert.match(again.stderr, /not empty/)
  const tar = path.join(dir, 'merged.tar')
  assert.equal((await ocikit(['export', `oci:${layout}:v2`, '-o', tar])).code, 0)
  const x = path.join(dir, 'x')
  await fs.mkdir(x)
  await run('tar', ['-xpf', tar, '-C', x])
  assert.deepEqual(await describeTree(x), await describeTree(rootfs))
  const bad = await ocikit(['append', 'scratch', `oci:${layout}:v3`, '--dir', a, '--env', 'NOEQUALS'])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /not KEY=VALUE/)
  assert.doesNotMatch((await ocikit(['ls', `oci:${layout}`])).stdout, /^v3/m)
})

test("--keep-owners keeps each file's numeric owner (a root filesystem's), extracted the same by GNU tar; the default stays 0:0 (issue 21.11)", {
  skip: process.getuid?.() === 0 ? false : 'needs root to give files owners (CI runs as root)',
}, async (t) => {
  const dir = await tempDir(t)
  const root = path.join(dir, 'rootfs')
  await fs.mkdir(path.join(root, 'etc'), { recursive: true })
  await fs.mkdir(path.join(root, 'var/mail'), { recursive: true })
  await fs.writeFile(path.join(root, 'etc/shadow'), 'root:*:1::::::\n', { mode: 0o640 })
  await fs.writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n')
  await fs.writeFile(path.join(root, 'chage'), '#!/bin/sh\n', { mode: 0o755 })
  await fs.chown(path.join(root, 'etc/shadow'), 0, 42)
  await fs.chown(path.join(root, 'var/mail'), 0, 8)
  await fs.chown(path.join(root, 'chage'), 0, 42)
  await fs.chmod(path.join(root, 'chage'), 0o2755) // setgid, after the chown (which clears it)
  await fs.symlink('etc/passwd', path.join(root, 'link'))
  await fs.lchown(path.join(root, 'link'), 1000, 1000)
  const owners = async (d: string) => {
    const out: Record<string, string> = {}
    for (const p of ['etc/shadow', 'etc/passwd', 'chage', 'var/mail', 'link']) {
      const s = await fs.lstat(path.join(d, p))
      out[p] = `${s.uid}:${s.gid} ${(s.mode & 0o7777).toString(8)}`
    }
    return out
  }
  const kept = path.join(dir, 'kept.tar')
  assert.equal((await ocikit(['layer', 'create', root, '-o', kept, '--compression', 'none', '--keep-owners'])).code, 0)
  const plain = path.join(dir, 'plain.tar')
  assert.equal((await ocikit(['layer', 'create', root, '-o', plain, '--compression', 'none'])).code, 0)
  for (const [file, expected] of [
    [kept, await owners(root)],
    [plain, Object.fromEntries(Object.entries(await owners(root)).map(([p, o]) => [p, `0:0 ${o.split(' ')[1]}`]))],
  ] as const) {
    const out = path.join(dir, `x-${path.basename(file)}`)
    await fs.mkdir(out)
    await run('tar', ['-xpf', file, '--numeric-owner', '-C', out])
    assert.deepEqual(await owners(out), expected, path.basename(file))
  }
  // An owner change alone is a change to a --keep-owners diff.
  const before = path.join(dir, 'before')
  await fs.cp(root, before, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true })
  for (const p of ['etc/shadow', 'etc/passwd', 'chage', 'var/mail']) {
    const s = await fs.lstat(path.join(root, p))
    await fs.chown(path.join(before, p), s.uid, s.gid)
    await fs.chmod(path.join(before, p), s.mode & 0o7777)
  }
  await fs.chown(path.join(root, 'etc/passwd'), 0, 42)
  const diff = await ocikit(['layer', 'diff', before, root, '-o', path.join(dir, 'd.tar'), '--keep-owners', '--json'])
  assert.equal(diff.code, 0, diff.stderr)
  const listed = (await ocikit(['layer', 'ls', path.join(dir, 'd.tar')])).stdout
  assert.match(listed, /file\s+0644 0:42\s+\d+\s+etc\/passwd/)
  assert.doesNotMatch(listed, /etc\/shadow/)
  const both = await ocikit(['layer', 'create', root, '-o', path.join(dir, 'x.tar'), '--keep-owners', '--chown', '1:1'])
  assert.equal(both.code, 2)
  assert.match(both.stderr, /cannot be used with/)
})
