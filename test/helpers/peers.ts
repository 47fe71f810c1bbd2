/**
 * Real peer tools (skopeo, umoci, oci-image-tool, podman, docker-registry). A suite that needs
 * one skips with a printed reason when it is absent, except under CI=true, where it fails.
 */
import { execFile } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The path of a binary on PATH, or undefined. */
export function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, bin)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {}
  }
  return undefined
}

/**
 * `{ skip: reason }` when a peer is missing and CI is not set; throws under CI so that a
 * missing install step fails the run instead of hiding it. A skipped suite counts none of its
 * tests in node's summary, so a skipped placeholder test carrying the reason is registered
 * beside it: the summary's `skipped` says that something was, and the report says why.
 */
export function needPeers(...bins: string[]): { skip?: string } {
  const missing = bins.filter((b) => !which(b))
  if (missing.length === 0) return {}
  const reason = `peer tool(s) not installed: ${missing.join(', ')} (apt-get install them; .ci/run does)`
  if (process.env.CI === 'true') throw new Error(`CI=true but ${reason}`)
  console.log(`# skipping: ${reason}`)
  test(`the tests that need ${missing.join(', ')}`, { skip: reason }, () => {})
  return { skip: reason }
}

/** Runs a peer tool; rejects with its stderr on failure. */
export async function peer(bin: string, args: string[], opts: { cwd?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  try {
    // A UTF-8 locale when none is set: bsdtar refuses non-ASCII names in the C locale.
    const env = { ...process.env, LC_ALL: process.env.LC_ALL || process.env.LANG || 'C.UTF-8' }
    return await run(bin, args, { cwd: opts.cwd, maxBuffer: 64 << 20, env })
  } catch (e) {
    const err = e as Error & { stderr?: string; stdout?: string }
    throw new Error(`${bin} ${args.join(' ')} failed: ${err.stderr || err.message}`)
  }
}

/**
 * Pulls `name` with podman (its own storage under `dir`, vfs, plain HTTP), creates a container
 * of it (never started: `podman run` does not work here) and exports its filesystem; returns the
 * path of the exported tar.
 */
export async function podmanExport(dir: string, name: string): Promise<string> {
  const root = path.join(dir, 'podman')
  const pod = ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs']
  await peer('podman', [...pod, 'pull', '-q', '--tls-verify=false', name])
  const id = (await peer('podman', [...pod, 'create', name, '/nothing'])).stdout.trim()
  const out = path.join(dir, `fs-${Date.now()}-${Math.random().toString(36).slice(2)}.tar`)
  await peer('podman', [...pod, 'export', '-o', out, id])
  return out
}
