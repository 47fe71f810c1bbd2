/**
 * The CLI on a terminal: run under a pseudo-terminal with `script` (util-linux), as a user sees
 * it. What a command shows while it works, and that its result line is the last thing on screen
 * (the progress display's clean-up must not wipe it).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'
import { needPeers } from '../helpers/peers.ts'
import { tempDir } from '../helpers/tmp.ts'

const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts')
const run = promisify(execFile)

/** Runs `ocikit ...args` under a pseudo-terminal; returns what the terminal received. */
async function onTerminal(dir: string, args: string[]): Promise<string> {
  const log = path.join(dir, `typescript-${Date.now()}`)
  const cmd = [process.execPath, MAIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
  await run('script', ['-qec', cmd, log], { env: { ...process.env, TERM: 'xterm', COLUMNS: '160' } })
  return (await fs.readFile(log, 'utf8')).replace(/\nScript done.*\n?$/s, '')
}

/** Asserts that `line` is on screen last: nothing after it moves the cursor or erases. */
function lastOnScreen(screen: string, line: RegExp): void {
  const m = [...screen.matchAll(new RegExp(line.source, 'g'))].at(-1)
  assert.ok(m, `the result line is not there: ${JSON.stringify(screen.slice(-400))}`)
  const after = screen.slice((m.index ?? 0) + m[0].length)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the escape sequences are what is looked for
  assert.ok(!/\u001b\[[0-9;]*[A-HJKST]/.test(after), `something after the result line moves the cursor or erases: ${JSON.stringify(after)}`)
}

describe('the CLI on a terminal', needPeers('script'), () => {
  test('append shows what it packs and writes, and its result line stays on screen (issue 21.10)', async (t) => {
    const dir = await tempDir(t)
    const screen = await onTerminal(dir, [
      'append',
      'scratch',
      `oci:${dir}/out:v1`,
      '--dir',
      path.resolve(import.meta.dirname, '../../src'),
      '--prefix',
      '/app',
    ])
    assert.match(screen, /packing \S+src \d+(\.\d)? [KM]iB \(/, 'the packing line, with bytes and rate')
    assert.match(screen, /\] \d+(\.\d)? KiB \/ \d+(\.\d)? KiB done/, 'a bar per blob written')
    lastOnScreen(screen, /oci:\S+\/out:v1 sha256:[0-9a-f]{64} \(2 blob\(s\) written, 0 already there\)/)
  })

  test('copy shows a bar per blob, then its result line, kept on screen', async (t) => {
    const dir = await tempDir(t)
    await run(process.execPath, [MAIN, 'append', 'scratch', `oci:${dir}/a:v1`, '--dir', path.resolve(import.meta.dirname, '../../docs')])
    const screen = await onTerminal(dir, ['copy', `oci:${dir}/a:v1`, `oci:${dir}/b:v1`])
    assert.match(screen, /done|skipped/)
    lastOnScreen(screen, /oci:\S+\/b:v1 sha256:[0-9a-f]{64} \(2 blob\(s\) written, 0 already there\)/)
  })
})
