/** Layer entries from a map of files held in memory (path → content, mode, or symlink target). */
import { Readable } from 'node:stream'
import { OcikitError } from '../errors.ts'
import { cleanEntryPath, cleanPrefix, compareNames, type LayerEntry, prefixEntries } from './entry.ts'

/** What one path of a file map holds: content (file, mode 0644), or an explicit kind. */
export type FileSpec = string | Uint8Array | { content: string | Uint8Array; mode?: number } | { symlink: string } | { directory: true; mode?: number }

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
  const base = { path: at, uid, gid, size: 0 }
  if (typeof spec === 'string' || spec instanceof Uint8Array) spec = { content: spec }
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
