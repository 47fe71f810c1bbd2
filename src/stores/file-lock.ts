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

/** Takes the lock of `file` (which need not exist); returns its release. */
export async function lockFile(file: string): Promise<() => Promise<void>> {
  const lockfile = await loadLockfile()
  return lockfile.lock(file, {
    realpath: false,
    stale: 30_000,
    update: 5_000,
    retries: { retries: 200, factor: 1.3, minTimeout: 10, maxTimeout: 500, randomize: true },
  })
}
