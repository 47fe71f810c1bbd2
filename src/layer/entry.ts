/**
 * The entries of a layer, independent of where they come from (a directory, a map of
 * files, a tree diff) and of how they are encoded (tar). Sources yield entries in the
 * layer's final order: a directory before its children, siblings sorted by name.
 */
import type { Readable } from 'node:stream'
import { UnsafePathError } from '../errors.ts'

/** The kind of a layer entry. */
export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'fifo' | 'char-device' | 'block-device'

/** One entry of a layer. Paths are relative, '/'-separated, with no leading '/' or trailing '/'. */
export interface LayerEntry {
  readonly path: string
  readonly type: EntryType
  /** Permission bits, including setuid, setgid and sticky (07777). */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** Bytes of content (files only; 0 otherwise). */
  readonly size: number
  /** Target of a symlink (as written), or the layer path a hardlink points to. */
  readonly linkname?: string | undefined
  /** Extended attributes (name → value), written as PAX `SCHILY.xattr.` records. */
  readonly xattrs?: Readonly<Record<string, Uint8Array>> | undefined
  readonly devmajor?: number | undefined
  readonly devminor?: number | undefined
  /**
   * Modification time, whole seconds since the epoch. Layers that ocikit makes leave it unset,
   * so that every entry gets the layer's one timestamp; `export` keeps each entry's own.
   */
  readonly mtime?: number | undefined
  /**
   * The file on disk that holds the content of a file entry, when there is one: a packer may
   * read it directly instead of calling `open` or `read` (it must still hold `size` bytes).
   */
  readonly file?: string | undefined
  /**
   * What the walk saw of that file (device, inode, and modification and change times in ms,
   * with their fractions), when it came from a directory walk: a cache keys on it without a
   * second stat.
   */
  readonly fileStat?: FileStat | undefined
  /** Opens the content of a file entry. */
  readonly open?: (() => Readable) | undefined
  /** Reads the whole content of a file entry; packers use it for small files (up to 1 MiB) and `open` for larger ones. */
  readonly read?: (() => Promise<Uint8Array>) | undefined
}

/** A file's identity and times as `lstat` gave them (see {@link LayerEntry.fileStat}). */
export interface FileStat {
  readonly dev: number
  readonly ino: number
  readonly mtimeMs: number
  readonly ctimeMs: number
}

/** Prefix of whiteout entries; `.wh.NAME` deletes NAME from lower layers. */
export const WHITEOUT_PREFIX = '.wh.'
/** Name of the opaque whiteout: hides every lower-layer entry of its directory. */
export const OPAQUE_WHITEOUT = '.wh..wh..opq'

/**
 * Normalises a path inside a layer: `./a//b/` becomes `a/b`; absolute paths and `..`
 * components are refused (UNSAFE_PATH). Returns '' for the root.
 */
export function cleanEntryPath(raw: string): string {
  if (raw.startsWith('/')) throw new UnsafePathError(raw, 'absolute path')
  if (raw.includes('\0')) throw new UnsafePathError(raw, 'NUL byte in path')
  const parts: string[] = []
  for (const p of raw.split('/')) {
    if (p === '' || p === '.') continue
    if (p === '..') throw new UnsafePathError(raw, "'..' component")
    parts.push(p)
  }
  return parts.join('/')
}

/** Normalises an image path prefix such as `/app` or `app/` to `app` ('' for the root). */
export function cleanPrefix(prefix: string | undefined): string {
  if (!prefix) return ''
  return cleanEntryPath(prefix.replace(/^\/+/, ''))
}

/** Compares names the same way on every machine (UTF-16 code units, no locale). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Directory entries for each ancestor of `prefix` and the prefix itself (`opt`, `opt/app`), mode 0755 owned by uid:gid. */
export function prefixEntries(prefix: string, uid: number, gid: number): LayerEntry[] {
  if (!prefix) return []
  const parts = prefix.split('/')
  return parts.map((_, i) => ({ path: parts.slice(0, i + 1).join('/'), type: 'directory' as const, mode: 0o755, uid, gid, size: 0 }))
}
