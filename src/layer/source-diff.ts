/**
 * Layer entries for the difference between two directory trees: what was added or changed
 * in the new tree, and OCI whiteouts for what was deleted from the old one.
 */

import type { Stats } from 'node:fs'
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { OcikitError } from '../errors.ts'
import { cleanPrefix, compareNames, type LayerEntry, OPAQUE_WHITEOUT, prefixEntries, WHITEOUT_PREFIX } from './entry.ts'
import { entryFor, sortedNames, walkContext, walkTree } from './source-directory.ts'
import { readXattrs, type XattrApi } from './xattr.ts'

/** Options for a tree-diff layer source. */
export interface DiffSourceOptions {
  /** Where both trees sit in the image (default: the root). */
  prefix?: string | undefined
  uid?: number | undefined
  gid?: number | undefined
  /** Keep each file's own numeric owner, and count a change of owner as a change (see `DirectorySourceOptions.keepOwners`). */
  keepOwners?: boolean | undefined
  onNotice?: ((message: string) => void) | undefined
  /** Keep extended attributes, and count a change of them as a change (needs the optional fs-xattr module). */
  xattrs?: boolean | undefined
}

function kind(s: Stats): string {
  return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : s.isSymbolicLink() ? 'symlink' : 'other'
}

async function sameContent(a: string, b: string): Promise<boolean> {
  const ra = createReadStream(a, { highWaterMark: 1 << 20 })[Symbol.asyncIterator]()
  const rb = createReadStream(b, { highWaterMark: 1 << 20 })
  let pending: Buffer = Buffer.alloc(0)
  try {
    for await (const chunk of rb) {
      let buf = chunk as Buffer
      while (buf.length > 0) {
        if (pending.length === 0) {
          const n = await ra.next()
          if (n.done) return false
          pending = n.value as Buffer
        }
        const k = Math.min(pending.length, buf.length)
        if (!pending.subarray(0, k).equals(buf.subarray(0, k))) return false
        pending = pending.subarray(k)
        buf = buf.subarray(k)
      }
    }
    return pending.length === 0 && (await ra.next()).done === true
  } finally {
    await ra.return?.()
  }
}

function sameXattrs(a: Record<string, Buffer> = {}, b: Record<string, Buffer> = {}): boolean {
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && Buffer.compare(a[k] as Buffer, b[k] as Buffer) === 0)
}

/** True when an object present in both trees with the same kind has changed. */
async function changed(oldFull: string, newFull: string, o: Stats, n: Stats, xattrs: XattrApi | undefined, owners = false): Promise<boolean> {
  if ((o.mode & 0o7777) !== (n.mode & 0o7777)) return true
  if (owners && (o.uid !== n.uid || o.gid !== n.gid)) return true
  if (xattrs && !o.isSymbolicLink() && !sameXattrs(readXattrs(xattrs, oldFull), readXattrs(xattrs, newFull))) return true
  if (o.isDirectory()) return false
  if (o.isSymbolicLink()) return (await fs.readlink(oldFull)) !== (await fs.readlink(newFull))
  if (o.isFile()) {
    // It joined or left a group of hardlinks: the new group must be written out.
    if (o.nlink !== n.nlink) return true
    if (o.size !== n.size) return true
    if (o.mtimeMs === n.mtimeMs) return false
    return !(await sameContent(oldFull, newFull)) // the metadata cannot decide: compare bytes
  }
  return o.rdev !== n.rdev
}

/**
 * The entries that turn the old tree into the new one: changed and added objects from the new
 * tree; `.wh.NAME` for each deleted NAME (once, at the top of a deleted subtree); and an opaque
 * whiteout for a directory none of whose old children survive (a replaced directory). A directory
 * whose children changed is emitted before them so its metadata is kept. Hardlink groups come out
 * as in the new tree: a file whose link count changed counts as changed, and unchanged files that
 * share an inode with a written path follow at the end, as links to it. Yields nothing when the
 * trees are the same.
 */
export async function* diffEntries(oldDir: string, newDir: string, o: DiffSourceOptions = {}): AsyncGenerator<LayerEntry> {
  for (const d of [oldDir, newDir]) {
    const st = await fs.stat(d).catch((e) => {
      throw new OcikitError('INVALID_ARGUMENT', `cannot read directory ${d}: ${(e as Error).message}`, { cause: e })
    })
    if (!st.isDirectory()) throw new OcikitError('INVALID_ARGUMENT', `${d} is not a directory`)
  }
  const oldRoot = path.resolve(oldDir)
  const newRoot = path.resolve(newDir)
  const ctx = await walkContext(o)
  const prefix = cleanPrefix(o.prefix)
  const at = (rel: string) => (prefix ? `${prefix}/${rel}` : rel)
  const dirEntry = async (rel: string): Promise<LayerEntry> => {
    const full = path.join(newRoot, rel)
    return entryFor(full, at(rel), await fs.lstat(full), ctx) as LayerEntry // a directory always has one
  }
  const whiteout = (rel: string, name: string): LayerEntry => ({
    path: at(rel ? `${rel}/${name}` : name),
    type: 'file',
    mode: 0o644,
    uid: ctx.uid,
    gid: ctx.gid,
    size: 0,
  })
  // Directory entries waiting to be emitted until something under them changes.
  const pendingDirs: LayerEntry[] = prefixEntries(prefix, ctx.uid, ctx.gid)
  function* flush(): Generator<LayerEntry> {
    yield* pendingDirs.splice(0)
  }

  // Unchanged files that share an inode with others, in walk order: when another path of the
  // inode is written (it is new, or it changed), these are written too, as links to it.
  // Otherwise the layer would make that path a file of its own and part the group.
  const unchangedLinks = new Map<string, { rel: string; stats: Stats }[]>()
  const emittedDirs = new Set<string>()
  async function* compareDir(rel: string): AsyncGenerator<LayerEntry> {
    const oldNames = sortedNames(path.join(oldRoot, rel))
    const newNames = sortedNames(path.join(newRoot, rel))
    const oldStats = new Map<string, Stats>()
    for (const n of oldNames) oldStats.set(n, await fs.lstat(path.join(oldRoot, rel, n)))
    const newSet = new Set(newNames)
    const survivors = await Promise.all(
      oldNames.filter((n) => newSet.has(n)).map(async (n) => kind(await fs.lstat(path.join(newRoot, rel, n))) === kind(oldStats.get(n) as Stats)),
    )
    if (oldNames.length > 0 && !survivors.some(Boolean)) {
      // Replaced directory: hide every old child at once, then add the new children. Its own
      // entry was yielded by the caller, or is pending and goes out with the flush.
      yield* flush()
      yield whiteout(rel, OPAQUE_WHITEOUT)
      yield* walkTree(newRoot, rel, prefix, ctx)
      return
    }
    const names = [...new Set([...oldNames, ...newNames])].sort(compareNames)
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name
      const oldFull = path.join(oldRoot, childRel)
      const newFull = path.join(newRoot, childRel)
      const os = oldStats.get(name)
      if (!newSet.has(name)) {
        yield* flush()
        yield whiteout(rel, `${WHITEOUT_PREFIX}${name}`)
        continue
      }
      const ns = await fs.lstat(newFull)
      if (os && kind(os) === kind(ns) && ns.isDirectory()) {
        const self = await dirEntry(childRel)
        if (await changed(oldFull, newFull, os, ns, ctx.xattrs, ctx.keepOwners)) {
          yield* flush()
          yield self
        } else pendingDirs.push(self)
        yield* compareDir(childRel)
        // Nothing under it changed: it was never flushed, so drop it.
        if (pendingDirs[pendingDirs.length - 1] === self) pendingDirs.pop()
        continue
      }
      if (os && kind(os) === kind(ns) && !(await changed(oldFull, newFull, os, ns, ctx.xattrs, ctx.keepOwners))) {
        if (ns.isFile() && ns.nlink > 1) {
          const key = `${ns.dev}:${ns.ino}`
          unchangedLinks.set(key, [...(unchangedLinks.get(key) ?? []), { rel: childRel, stats: ns }])
        }
        continue
      }
      // Added, changed, or of another kind than before: the new object replaces the old.
      const e = entryFor(newFull, at(childRel), ns, ctx)
      if (!e) continue
      yield* flush()
      yield e
      if (ns.isDirectory()) yield* walkTree(newRoot, childRel, prefix, ctx)
    }
  }
  for await (const e of compareDir('')) {
    if (e.type === 'directory') {
      // Every path once: a second entry for a directory would be a second tar entry of it.
      if (emittedDirs.has(e.path)) continue
      emittedDirs.add(e.path)
    }
    yield e
  }
  for (const [key, members] of unchangedLinks) {
    if (!ctx.inodes.has(key)) continue // no other path of this inode was written
    for (const { rel, stats } of members) {
      // The parent directories first, so that the link does not leave their times changed.
      const parts = rel.split('/').slice(0, -1)
      for (let i = 1; i <= parts.length; i++) {
        const dirRel = parts.slice(0, i).join('/')
        if (emittedDirs.has(at(dirRel))) continue
        emittedDirs.add(at(dirRel))
        yield await dirEntry(dirRel)
      }
      yield entryFor(path.join(newRoot, rel), at(rel), stats, ctx) as LayerEntry
    }
  }
}
