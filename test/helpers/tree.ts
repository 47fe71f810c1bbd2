/** Describing and comparing directory trees, for round-trip tests. */

import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { generateTree } from '../../bench/gen-tree.ts'
import { treePaths } from './tmp.ts'

/** What a test compares of one path: type, mode, content, link target, hardlink group. */
export interface NodeFacts {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'other'
  mode: number
  size?: number
  sha256?: string
  target?: string
  /** The smallest path sharing this file's inode, when it has other links in the tree. */
  linkGroup?: string
}

/** Every path under `dir` (relative) with its facts. */
export async function describeTree(dir: string): Promise<Record<string, NodeFacts>> {
  const out: Record<string, NodeFacts> = {}
  const inodes = new Map<number, string[]>()
  for (const rel of await treePaths(dir)) {
    const full = path.join(dir, rel)
    const s = await fs.lstat(full)
    const mode = s.mode & 0o7777
    if (s.isDirectory()) out[rel] = { type: 'dir', mode }
    else if (s.isSymbolicLink()) out[rel] = { type: 'symlink', mode: 0, target: await fs.readlink(full) }
    else if (s.isFIFO()) out[rel] = { type: 'fifo', mode }
    else if (s.isFile()) {
      out[rel] = {
        type: 'file',
        mode,
        size: s.size,
        sha256: createHash('sha256')
          .update(await fs.readFile(full))
          .digest('hex'),
      }
      if (s.nlink > 1) inodes.set(s.ino, [...(inodes.get(s.ino) ?? []), rel])
    } else out[rel] = { type: 'other', mode }
  }
  for (const group of inodes.values()) {
    if (group.length < 2) continue
    const first = [...group].sort()[0] as string
    for (const p of group) (out[p] as NodeFacts).linkGroup = first
  }
  return out
}

const run = promisify(execFile)

/** The project's bench tree (bench/gen-tree.ts) in `dir`, small by default. */
export async function genTree(dir: string, mb = 2, seed = 1): Promise<void> {
  generateTree(dir, { mb, seed })
}

/** A tree of hand-made edge cases: empty dirs, modes, symlinks, hardlinks, long and non-ASCII names, a FIFO. */
export async function edgeTree(dir: string): Promise<void> {
  const p = (...x: string[]) => path.join(dir, ...x)
  await fs.mkdir(p('empty-dir'), { recursive: true })
  await fs.mkdir(p('sub', 'deeper'), { recursive: true })
  await fs.writeFile(p('sub', 'deeper', 'file.txt'), 'deep\n')
  await fs.writeFile(p('exec.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 })
  await fs.chmod(p('exec.sh'), 0o755)
  await fs.writeFile(p('private'), 'secret', { mode: 0o600 })
  await fs.chmod(p('private'), 0o600)
  await fs.writeFile(p('setuid'), 'x')
  await fs.chmod(p('setuid'), 0o4755)
  await fs.writeFile(p('empty-file'), '')
  await fs.symlink('sub/deeper/file.txt', p('rel-link'))
  await fs.symlink('/etc/hostname', p('abs-link'))
  await fs.symlink('does-not-exist', p('dangling'))
  await fs.writeFile(p('hard-a'), 'linked content')
  await fs.link(p('hard-a'), p('sub', 'hard-b'))
  await fs.link(p('hard-a'), p('hard-c'))
  const long = 'l'.repeat(120)
  await fs.mkdir(p(long, long), { recursive: true })
  await fs.writeFile(p(long, long, `${long}.txt`), 'long path over 255 bytes')
  await fs.writeFile(p('ünïcødé-名前.txt'), 'non-ascii name')
  await fs.mkdir(p('dir-700'))
  await fs.chmod(p('dir-700'), 0o700)
  await run('mkfifo', [p('a-fifo')])
}
