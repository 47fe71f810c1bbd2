/** Layer entries from a map of files held in memory (path → content, mode, or symlink target). */
import { createReadStream, readFileSync, statSync } from 'node:fs'
import { Readable } from 'node:stream'
import { OcikitError } from '../errors.ts'
import { cleanEntryPath, cleanPrefix, compareNames, type LayerEntry, prefixEntries } from './entry.ts'

/** The owner of one path of a file map, when not the map's. */
export interface FileOwner {
  uid?: number | undefined
  gid?: number | undefined
}

/**
 * What one path of a file map holds: content (file, mode 0644), a file on disk (read when the
 * layer is made; its mode unless given), or an explicit kind; each may name its own owner.
 */
export type FileSpec =
  | string
  | Uint8Array
  | ({ content: string | Uint8Array; mode?: number | undefined } & FileOwner)
  | ({ file: string; mode?: number | undefined } & FileOwner)
  | ({ symlink: string } & FileOwner)
  | ({ directory: true; mode?: number | undefined } & FileOwner)

/** Options for a file-map layer source. */
export interface FileMapOptions {
  /** Where the files go in the image (default: the root). */
  prefix?: string | undefined
  uid?: number | undefined
  gid?: number | undefined
}

interface Node {
  entry?: LayerEntry
  children: Map<string, Node>
}

function toEntry(at: string, spec: FileSpec, uid: number, gid: number): LayerEntry {
  if (typeof spec === 'string' || spec instanceof Uint8Array) spec = { content: spec }
  for (const k of ['uid', 'gid'] as const) {
    const id = spec[k]
    if (id !== undefined && (!Number.isInteger(id) || id < 0 || id > 0x7fffffff))
      throw new OcikitError('INVALID_ARGUMENT', `file map: '${at}' has ${k} ${id}; give a whole number`)
  }
  if ('mode' in spec && spec.mode !== undefined && (!Number.isInteger(spec.mode) || spec.mode < 0 || spec.mode > 0o7777)) {
    throw new OcikitError('INVALID_ARGUMENT', `file map: '${at}' has mode ${spec.mode}; give permission bits (0 to 0o7777)`)
  }
  const base = { path: at, uid: spec.uid ?? uid, gid: spec.gid ?? gid, size: 0 }
  if ('file' in spec) {
    let st: import('node:fs').Stats
    try {
      st = statSync(spec.file)
    } catch (e) {
      throw new OcikitError('INVALID_ARGUMENT', `file map: '${at}' names ${spec.file}, which cannot be read: ${(e as Error).message}`, { cause: e })
    }
    if (!st.isFile()) throw new OcikitError('INVALID_ARGUMENT', `file map: '${at}' names ${spec.file}, which is not a regular file`)
    const file = spec.file
    const size = st.size
    const read = async () => {
      const b = readFileSync(file)
      if (b.length !== size) throw new OcikitError('INVALID_ARGUMENT', `${file} changed size while being read; layer aborted`)
      return b
    }
    return { ...base, type: 'file', mode: spec.mode ?? st.mode & 0o7777, size, file, read, open: () => createReadStream(file) }
  }
  if ('symlink' in spec) return { ...base, type: 'symlink', mode: 0o777, linkname: spec.symlink }
  if ('directory' in spec) return { ...base, type: 'directory', mode: spec.mode ?? 0o755 }
  const bytes = typeof spec.content === 'string' ? Buffer.from(spec.content, 'utf8') : Buffer.from(spec.content)
  return { ...base, type: 'file', mode: spec.mode ?? 0o644, size: bytes.length, open: () => Readable.from([bytes]), read: async () => bytes }
}

/**
 * The entries of a file map in layer order: parents before children (missing parents are
 * added as 0755 directories), siblings sorted by name. Paths are image paths (`/etc/app.conf`
 * or `etc/app.conf`); `..` is refused. A path given twice, or a file under a non-directory, is an error.
 */
export function fileMapEntries(files: Readonly<Record<string, FileSpec>>, o: FileMapOptions = {}): LayerEntry[] {
  const uid = o.uid ?? 0
  const gid = o.gid ?? 0
  const prefix = cleanPrefix(o.prefix)
  const root: Node = { children: new Map() }
  for (const [raw, spec] of Object.entries(files)) {
    const rel = cleanEntryPath(raw.replace(/^\/+/, ''))
    if (rel === '') throw new OcikitError('INVALID_ARGUMENT', `file map: '${raw}' names the root`)
    const at = prefix ? `${prefix}/${rel}` : rel
    const parts = rel.split('/')
    let node = root
    for (const [i, part] of parts.entries()) {
      let next = node.children.get(part)
      if (!next) {
        next = { children: new Map() }
        node.children.set(part, next)
      }
      if (i < parts.length - 1 && next.entry && next.entry.type !== 'directory') {
        throw new OcikitError('INVALID_ARGUMENT', `file map: '${raw}' is under '${next.entry.path}', which is not a directory`)
      }
      node = next
    }
    if (node.entry) throw new OcikitError('INVALID_ARGUMENT', `file map: '${raw}' is given twice`)
    node.entry = toEntry(at, spec, uid, gid)
    if (node.entry.type !== 'directory' && node.children.size > 0) {
      throw new OcikitError('INVALID_ARGUMENT', `file map: '${raw}' has entries under it but is not a directory`)
    }
  }
  const out: LayerEntry[] = prefixEntries(prefix, uid, gid)
  const visit = (node: Node, rel: string) => {
    for (const name of [...node.children.keys()].sort(compareNames)) {
      const child = node.children.get(name) as Node
      const childRel = rel ? `${rel}/${name}` : name
      const at = prefix ? `${prefix}/${childRel}` : childRel
      out.push(child.entry ?? { path: at, type: 'directory', mode: 0o755, uid, gid, size: 0 })
      visit(child, childRel)
    }
  }
  visit(root, '')
  return out
}
