/** Runs the ocikit CLI from source in a child process, as a user would. */
import { execFile } from 'node:child_process'
import path from 'node:path'

/** The CLI's entry, run from source. */
export const CLI_MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts')

/** Result of one CLI run. */
export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs `ocikit ...args`, with `input` on its standard input (else none); never rejects on a non-zero exit. */
export function ocikit(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI_MAIN, ...args],
      { cwd: opts.cwd, env: { ...process.env, ...opts.env }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        resolve({ code, stdout, stderr })
      },
    )
    child.stdin?.end(opts.input)
  })
}
