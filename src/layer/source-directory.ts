/** Layer entries from a directory on disk, in a deterministic order, with ignore rules. */
// Metadata and small files are read with synchronous calls: on a tree of 10,000 small files the
// promise-based calls cost about 0.1 ms each in bookkeeping, which made the tar writer (on the
// main thread) the bottleneck (bench/layer.ts: 2.1 s → see docs/performance.md). Large files
// are still streamed.
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Transform } from 'node:stream'
import dockerignore from '@balena/dockerignore'
import { OcikitError } from '../errors.ts'
import { chain } from '../streams.ts'
import { cleanPrefix, compareNames, type LayerEntry, prefixEntries } from './entry.ts'
import { readXattrs, requireXattrApi, type XattrApi } from './xattr.ts'

/** Options for reading a directory into layer entries. */
export interface DirectorySourceOptions {
  /** Where the directory's content goes in the image, e.g. `/app` (default: the root). */
  prefix?: string | undefined
  /** Owner of every entry (default 0:0). */
  uid?: number | undefined
  gid?: number | undefined
  /**
   * Keep each file's own numeric owner (uid and gid from the filesystem), as umoci does: for
   * layers of a root filesystem, whose `/etc/shadow` is group shadow. Excludes `uid`/`gid`
   * (INVALID_ARGUMENT); the default, 0:0 for every entry, suits application layers.
   */
  keepOwners?: boolean | undefined
  /**
   * Ignore rules in `.dockerignore` syntax: a file path, or false for none. Default: the
   * directory's own `.ociignore`, else its `.dockerignore`, if present.
   */
  ignoreFile?: string | false | undefined
  /** Extra ignore patterns, added after the file's. */
  ignore?: readonly string[] | undefined
  /** Told about things skipped or assumed (sockets, the ignore file in use). */
  onNotice?: ((message: string) => void) | undefined
  /** Keep extended attributes (needs the optional fs-xattr module; default false). */
  xattrs?: boolean | undefined
  /**
   * Which parts of the tree the layer holds, asked of each path (relative to the directory, '/'
   * between names) before the ignore rules: 'all' takes it and everything under it, 'none'
   * leaves it and everything under it out, 'some' (directories) asks again of each child and
   * takes the directory only when one of them is taken. Default: all.
   */
  select?: ((relPath: string, isDirectory: boolean) => Selection) | undefined
}

/** What a layer takes of one path of a tree: see {@link DirectorySourceOptions.select}. */
export type Selection = 'all' | 'none' | 'some'

async function loadIgnore(dir: string, o: DirectorySourceOptions): Promise<{ ignores: (p: string) => boolean; negations: boolean } | undefined> {
  const patterns: string[] = []
  let file = o.ignoreFile
  if (file === undefined) {
    for (const name of ['.ociignore', '.dockerignore']) {
      const p = path.join(dir, name)
      if (
        await fs.stat(p).then(
          (s) => s.isFile(),
          () => false,
        )
      ) {
        file = p
        break
      }
    }
  }
  if (file) {
    const text = await fs.readFile(file, 'utf8').catch((e) => {
      throw new OcikitError('INVALID_ARGUMENT', `cannot read ignore file ${file}: ${(e as Error).message}`, { cause: e })
    })
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('#'))
    patterns.push(...lines)
    o.onNotice?.(`using ignore rules from ${path.relative(process.cwd(), file) || file} (${lines.length} pattern(s))`)
  }
  patterns.push(...(o.ignore ?? []))
  if (patterns.length === 0) return undefined
  // A CommonJS module: its export is the factory, also reachable as `.default`, which is what its types describe.
  const ig = dockerignore.default({ ignorecase: false }).add(patterns)
  return { ignores: (p) => ig.ignores(p), negations: patterns.some((p) => p.trim().startsWith('!')) }
}

/** A stream that fails if a file yields other than `size` bytes (it changed while being read). */
function exactly(size: number, file: string): Transform {
  let seen = 0
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      seen += chunk.length
      if (seen > size) return cb(new OcikitError('INVALID_ARGUMENT', `${file} grew while being read; layer aborted`))
      cb(null, chunk)
    },
    flush(cb) {
      cb(seen === size ? null : new OcikitError('INVALID_ARGUMENT', `${file} shrank while being read; layer aborted`))
    },
  })
}

/** State shared while walking one tree: owner, hardlink groups, notices. */
export interface WalkContext {
  readonly uid: number
  readonly gid: number
  /** Take each entry's owner from the filesystem instead of `uid`/`gid`. */
  readonly keepOwners?: boolean | undefined
  /** First layer path seen for each multiply-linked inode (`dev:ino`). */
  readonly inodes: Map<string, string>
  readonly onNotice?: ((message: string) => void) | undefined
  /** Set when extended attributes are kept. */
  readonly xattrs?: XattrApi | undefined
}

/** The walk context for a source's owner options; `keepOwners` with `uid` or `gid` is INVALID_ARGUMENT. */
export async function walkContext(o: {
  uid?: number | undefined
  gid?: number | undefined
  keepOwners?: boolean | undefined
  onNotice?: ((message: string) => void) | undefined
  xattrs?: boolean | undefined
}): Promise<WalkContext> {
  if (o.keepOwners && (o.uid !== undefined || o.gid !== undefined)) {
    throw new OcikitError('INVALID_ARGUMENT', "keep the files' own owners (--keep-owners) or set one owner for all (--chown), not both")
  }
  return { uid: o.uid ?? 0, gid: o.gid ?? 0, keepOwners: o.keepOwners, inodes: new Map(), onNotice: o.onNotice, xattrs: await xattrsFor(o.xattrs) }
}

/** The entry for one filesystem object at layer path `at`, or undefined for what a layer cannot hold. */
export function entryFor(full: string, at: string, s: import('node:fs').Stats, ctx: WalkContext): LayerEntry | undefined {
  const xattrs = ctx.xattrs && !s.isSymbolicLink() ? readXattrs(ctx.xattrs, full) : undefined
  const owner = ctx.keepOwners ? { uid: s.uid, gid: s.gid } : { uid: ctx.uid, gid: ctx.gid }
  const base = { path: at, mode: s.mode & 0o7777, ...owner, size: 0, ...(xattrs ? { xattrs } : {}) }
  if (s.isDirectory()) return { ...base, type: 'directory' }
  if (s.isFile()) {
    const key = `${s.dev}:${s.ino}`
    const first = s.nlink > 1 ? ctx.inodes.get(key) : undefined
    if (first !== undefined) return { ...base, type: 'hardlink', linkname: first }
    if (s.nlink > 1) ctx.inodes.set(key, at)
    return {
      ...base,
      type: 'file',
      size: s.size,
      file: full,
      fileStat: { dev: s.dev, ino: s.ino, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs },
      // chain(), not pipe(): a read error (the file vanished) must reach the reader.
      open: () => chain(createReadStream(full, { highWaterMark: 256 << 10 }), exactly(s.size, full)),
      read: async () => {
        const b = readFileSync(full)
        if (b.length !== s.size) throw new OcikitError('INVALID_ARGUMENT', `${full} changed size while being read; layer aborted`)
        return b
      },
    }
  }
  if (s.isSymbolicLink()) return { ...base, type: 'symlink', linkname: readlinkSync(full) }
  if (s.isFIFO()) return { ...base, type: 'fifo' }
  if (s.isCharacterDevice() || s.isBlockDevice()) {
    const rdev = Number(s.rdev)
    // Linux's encoding of dev_t (major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31).
    const devmajor = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff)
    const devminor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00)
    return { ...base, type: s.isCharacterDevice() ? 'char-device' : 'block-device', devmajor, devminor }
  }
  ctx.onNotice?.(`skipped ${full}: sockets cannot be stored in a layer`)
  return undefined
}

/** The xattr module when `wanted`; NOT_SUPPORTED when wanted but not installed. */
export async function xattrsFor(wanted: boolean | undefined): Promise<XattrApi | undefined> {
  return wanted ? requireXattrApi() : undefined
}

/** Sorted names of a directory's children. */
export function sortedNames(dir: string): string[] {
  return readdirSync(dir).sort(compareNames)
}

/**
 * Every entry under `rel` (not `rel` itself) of the tree at `root`, placed under `prefix`.
 * Synchronous: nested async generators cost a promise per entry per level of depth.
 */
export function* walkTree(
  root: string,
  rel: string,
  prefix: string,
  ctx: WalkContext,
  ig?: { ignores: (p: string) => boolean; negations: boolean },
  select?: (relPath: string, isDirectory: boolean) => Selection,
): Generator<LayerEntry> {
  for (const name of sortedNames(path.join(root, rel))) {
    const relPath = rel ? `${rel}/${name}` : name
    const full = path.join(root, relPath)
    const s = lstatSync(full)
    const taken = select?.(relPath, s.isDirectory()) ?? 'all'
    if (taken === 'none') continue
    const ignored = ig?.ignores(relPath) ?? false
    if (ignored && !(s.isDirectory() && ig?.negations)) continue
    const e = ignored ? undefined : entryFor(full, prefix ? `${prefix}/${relPath}` : relPath, s, ctx)
    if (taken === 'some' && s.isDirectory()) {
      // The directory goes in just before its first child that does.
      let first = true
      for (const child of walkTree(root, relPath, prefix, ctx, ig, select)) {
        if (first && e) yield e
        first = false
        yield child
      }
      continue
    }
    if (e) yield e
    if (s.isDirectory()) yield* walkTree(root, relPath, prefix, ctx, ig, taken === 'all' ? undefined : select)
  }
}

/**
 * The entries of a directory tree, a directory before its children and siblings sorted by
 * name, so the same tree always gives the same order whatever readdir returns. Files that
 * share an inode become hardlink entries to the first path met. The directory itself is not an
 * entry unless a prefix is given (then the prefix and its ancestors are, as 0755 directories).
 */
export async function* directoryEntries(dir: string, o: DirectorySourceOptions = {}): AsyncGenerator<LayerEntry> {
  const root = path.resolve(dir)
  const st = await fs.stat(root).catch((e) => {
    throw new OcikitError('INVALID_ARGUMENT', `cannot read directory ${dir}: ${(e as Error).message}`, { cause: e })
  })
  if (!st.isDirectory()) throw new OcikitError('INVALID_ARGUMENT', `${dir} is not a directory`)
  const ctx = await walkContext(o)
  const prefix = cleanPrefix(o.prefix)
  const ig = await loadIgnore(root, o)
  yield* prefixEntries(prefix, ctx.uid, ctx.gid)
  yield* walkTree(root, '', prefix, ctx, ig, o.select)
}
