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

/** Every file under `dir` with its bytes, to prove a failed command changed nothing. */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    const p = path.join(e.parentPath, e.name)
    if (e.isFile()) out.set(path.relative(dir, p), (await fs.readFile(p)).toString('base64'))
    else if (e.isDirectory()) out.set(`${path.relative(dir, p)}/`, '')
  }
  return out
}
