/**
 * The store lock (src/stores/file-lock.ts): a dead holder of this host is taken over at once,
 * wherever it died (before or after its lock directory existed, while others waited); a live
 * holder, or one that left no claim, is waited for.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import { hostname } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { lockFile } from '../../src/stores/file-lock.ts'
import { tempDir } from '../helpers/tmp.ts'

const LOCK_MODULE = path.resolve(import.meta.dirname, '../../src/stores/file-lock.ts')

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await new Promise((r) => child.on('exit', r))
  return child.pid as number
}

/** A child that takes the lock of `file`, says so on stdout, and holds it until killed. */
async function holder(file: string) {
  const code = `const { lockFile } = await import(${JSON.stringify(LOCK_MODULE)}); await lockFile(${JSON.stringify(file)}); console.log('held'); setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => resolve())
    child.on('exit', (c) => reject(new Error(`holder exited with ${c}`)))
  })
  return child
}

/** Whether `p` settles within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const r = await Promise.race([p.then(() => true), new Promise<boolean>((res) => (timer = setTimeout(() => res(false), ms)))])
  clearTimeout(timer)
  return r
}

test('a holder killed right after making its lock directory (no time to do more) is taken over at once', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'index.json')
  // What such a kill leaves: the claim written first, then the lock directory, fresh.
  await fs.writeFile(path.join(dir, `index.json.lock-claim.${hostname()}.${await deadPid()}.abcd1234`), '')
  await fs.mkdir(`${file}.lock`)
  const started = Date.now()
  const release = await lockFile(file)
  assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`)
  assert.deepEqual(
    (await fs.readdir(dir)).filter((n) => n.includes('abcd1234')),
    [],
    "the dead holder's claim is cleared",
  )
  await release()
  assert.deepEqual(await fs.readdir(dir), [], 'the lock and its claim are gone after release')
})

test('a holder that dies while another process waits for its lock is not waited out', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'images.bfc')
  const child = await holder(file)
  t.after(() => child.kill('SIGKILL'))
  const waiting = lockFile(file)
  assert.equal(await settlesWithin(waiting, 1_000), false, 'a live holder is waited for')
  child.kill('SIGKILL')
  const started = Date.now()
  const release = await waiting
  assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms after the kill`)
  await release()
})

test('a lock directory with no claim beside it (another tool, an older ocikit) is not taken over early', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'index.json')
  await fs.mkdir(`${file}.lock`)
  const waiting = lockFile(file)
  waiting.catch(() => {})
  assert.equal(await settlesWithin(waiting, 1_500), false)
  // Once stale by proper-lockfile's own rule (30 s unrenewed), it is taken over.
  await fs.utimes(`${file}.lock`, 0, 0)
  const release = await waiting
  await release()
})

test('two writers in one process take the lock in turn', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'index.json')
  const order: string[] = []
  const run = async (name: string) => {
    const release = await lockFile(file)
    order.push(`${name} in`)
    await new Promise((r) => setTimeout(r, 50))
    order.push(`${name} out`)
    await release()
  }
  await Promise.all([run('a'), run('b')])
  assert.ok(order.join() === 'a in,a out,b in,b out' || order.join() === 'b in,b out,a in,a out', order.join())
})
