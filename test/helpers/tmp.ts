/** Temp directories for tests, removed when the test ends. */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'

/** A fresh temp directory, deleted after the test. */
export async function tempDir(t: TestContext, prefix = 'ocikit-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Every path under `dir`, relative and sorted, symlinks not followed. (A recursive readdir
 * without `withFileTypes` follows symlinks to directories: a link to `.` repeats the tree
 * 40 levels deep.)
 */
export async function treePaths(dir: string): Promise<string[]> {
  const all = await fs.readdir(dir, { recursive: true, withFileTypes: true })
  return all.map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort()
}

/** Every file and directory under `dir`, files with their bytes, to prove a failed command changed nothing. */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    const p = path.join(e.parentPath, e.name)
    if (e.isFile()) out.set(path.relative(dir, p), (await fs.readFile(p)).toString('base64'))
    else if (e.isDirectory()) out.set(`${path.relative(dir, p)}/`, '')
  }
  return out
}
