/**
 * The lock a store takes while it changes a file (a layout's `index.json`, a BFC file): a
 * `FILE.lock` directory beside it (proper-lockfile), renewed while held, taken over when a
 * crashed holder left it stale (30 s), waited for up to about a minute and a half.
 *
 * A lock left by a process of this host that is gone (killed, crashed) is taken over at once.
 * For that, every process that wants the lock first writes a claim beside it,
 * `FILE.lock-claim.HOST.PID.N`, and removes it only after releasing the lock; so whoever holds
 * the lock has a claim on disk for the whole time it holds it, from before the lock directory
 * exists until after it is gone. When every claim but one's own names a dead process of this
 * host, the holder is dead.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { hostname } from 'node:os'
import path from 'node:path'

let lockfileModule: Promise<typeof import('proper-lockfile')> | undefined
/**
 * proper-lockfile, loaded when first needed: it pulls in signal-exit and node:assert, which
 * would cost every start of the command-line program some milliseconds. `preloadLock` starts
 * loading it early, beside other work.
 */
function loadLockfile(): Promise<typeof import('proper-lockfile')> {
  lockfileModule ??= import('proper-lockfile').then((m) => m.default)
  return lockfileModule
}

/** Starts loading the lock module (a write that will need it soon); never throws. */
export function preloadLock(): void {
  loadLockfile().catch(() => {})
}

const CLAIM = '.lock-claim.'

/** Whether process `pid` of this host is gone. */
function isDead(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/**
 * Whether the lock of `file`, if held, can only be held by a dead process of this host: there are
 * claims, and each one except `mine` names such a process. The claims of the dead are removed on
 * the way. A claim of another host, or one that cannot be read as ours, counts as alive.
 */
async function heldByTheDead(file: string, mine: string): Promise<boolean> {
  const dir = path.dirname(file)
  const prefix = path.basename(file) + CLAIM
  const host = hostname()
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(prefix) && n !== mine)
  if (names.length === 0) return false
  let allDead = true
  for (const name of names) {
    const m = /^(.+)\.(\d+)\.[0-9a-f]+$/.exec(name.slice(prefix.length))
    const dead = !!m && m[1] === host && Number(m[2]) !== process.pid && isDead(Number(m[2]))
    if (dead) await fs.rm(path.join(dir, name), { force: true }).catch(() => {})
    else allDead = false
  }
  return allDead
}

/** How long a lock held by a live process is waited for before the write fails (ELOCKED). */
const WAIT_MS = 90_000

/**
 * Tries for the lock until it is taken or WAIT_MS have passed, with a growing, randomized pause
 * between tries. Before each try, a lock whose holder has died is made stale (its directory's
 * time set back), so that proper-lockfile takes it over by its own rules, atomically: a holder
 * that dies while others wait is not waited out either.
 */
async function acquire(lockfile: typeof import('proper-lockfile'), file: string, mine: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + WAIT_MS
  let pause = 10
  for (;;) {
    if (await heldByTheDead(file, mine)) await fs.utimes(`${file}.lock`, 0, 0).catch(() => {})
    try {
      return await lockfile.lock(file, { realpath: false, stale: 30_000, update: 5_000, retries: 0 })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() > deadline) throw e
    }
    await new Promise((r) => setTimeout(r, pause * (0.5 + Math.random())))
    pause = Math.min(500, pause * 1.3)
  }
}

/**
 * Takes the lock of `file` (which need not exist); returns its release. Waits for a live holder
 * (up to WAIT_MS, then ELOCKED), takes over at once from a dead one of this host, and after 30 s
 * from one of another host that stopped renewing its lock.
 */
export async function lockFile(file: string): Promise<() => Promise<void>> {
  // Writers of this process queue here, in turn, instead of polling the lock directory against
  // each other (fifty writes at once into one layout spent seconds in pauses between tries).
  const key = path.resolve(file)
  const before = queues.get(key) ?? Promise.resolve()
  let leave = () => {}
  const mine = new Promise<void>((r) => {
    leave = r
  })
  const tail = before.then(() => mine)
  queues.set(key, tail)
  const done = () => {
    leave()
    if (queues.get(key) === tail) queues.delete(key)
  }
  await before
  try {
    const release = await lockAcrossProcesses(file)
    return async () => {
      try {
        await release()
      } finally {
        done()
      }
    }
  } catch (e) {
    done()
    throw e
  }
}

/** The tail of the queue of this process's writers for each file, by absolute path. */
const queues = new Map<string, Promise<void>>()

/** Takes the lock of `file` against other processes (see the module comment). */
async function lockAcrossProcesses(file: string): Promise<() => Promise<void>> {
  const lockfile = await loadLockfile()
  // A host name never holds a slash, but keep the claim a plain file name whatever it holds.
  const mine = `${path.basename(file)}${CLAIM}${hostname().replaceAll('/', '_')}.${process.pid}.${randomBytes(4).toString('hex')}`
  const claim = path.join(path.dirname(file), mine)
  await fs.writeFile(claim, '')
  try {
    const release = await acquire(lockfile, file, mine)
    return async () => {
      try {
        await release()
      } finally {
        await fs.rm(claim, { force: true }).catch(() => {})
      }
    }
  } catch (e) {
    await fs.rm(claim, { force: true }).catch(() => {})
    throw e
  }
}
