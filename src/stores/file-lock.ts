/**
 * The lock a store takes while it changes a file (a layout's `index.json`, a BFC file): a
 * `FILE.lock` directory beside it (proper-lockfile), renewed while held, taken over when a
 * crashed holder left it stale (30 s), waited for up to about a minute and a half.
 */

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

/** Where the holder of `file`'s lock is recorded: host and process id. */
const ownerFile = (file: string) => `${file}.lock.owner`

/**
 * Whether the lock of `file` was left by a process of this host that is gone (killed, crashed):
 * its lock is then taken over at once instead of after the 30 s of staleness.
 */
async function heldByTheDead(file: string): Promise<boolean> {
  const fs = process.getBuiltinModule('node:fs/promises')
  const owner = await fs.readFile(ownerFile(file), 'utf8').catch(() => undefined)
  const m = owner && /^(\S+) (\d+)\n?$/.exec(owner)
  if (!m || m[1] !== process.getBuiltinModule('node:os').hostname()) return false
  const pid = Number(m[2])
  if (pid === process.pid) return false
  try {
    process.kill(pid, 0)
    return false
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/**
 * Takes the lock of `file` (which need not exist); returns its release. A lock whose recorded
 * holder is a dead process of this host is made stale first (its directory's time set back), so
 * that proper-lockfile takes it over by its own rules, atomically, instead of waiting it out.
 */
export async function lockFile(file: string): Promise<() => Promise<void>> {
  const lockfile = await loadLockfile()
  const fs = process.getBuiltinModule('node:fs/promises')
  if (await heldByTheDead(file)) await fs.utimes(`${file}.lock`, 0, 0).catch(() => {})
  const release = await lockfile.lock(file, {
    realpath: false,
    stale: 30_000,
    update: 5_000,
    retries: { retries: 200, factor: 1.3, minTimeout: 10, maxTimeout: 500, randomize: true },
  })
  await fs.writeFile(ownerFile(file), `${process.getBuiltinModule('node:os').hostname()} ${process.pid}\n`).catch(() => {})
  return async () => {
    await fs.rm(ownerFile(file), { force: true }).catch(() => {})
    await release()
  }
}
