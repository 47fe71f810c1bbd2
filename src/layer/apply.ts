/**
 * Applying layers onto a directory, safely. No entry is written outside the target: absolute
 * names and `..` are refused, a path that goes through a symlink pointing outside the root (or
 * to an absolute target) is refused, hardlinks must point at entries inside the root, and files
 * are created with O_EXCL so an existing symlink is never followed. Whiteouts delete what lower
 * layers put there; entries of the same layer are never deleted by its own whiteouts.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { type Readable, Transform } from 'node:stream'
import { promisify } from 'node:util'
import type tarStream from 'tar-stream'
import { compressionOf, decompressor } from '../compress.ts'
import { verifyingStream } from '../digest.ts'
import { isErrno, OcikitError, UnsafePathError } from '../errors.ts'
import type { Image, Layer } from '../image/types.ts'
import { chain } from '../streams.ts'
import { cleanEntryPath, OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './entry.ts'
import { entryOwner, readTar } from './read.ts'
import { xattrApi } from './xattr.ts'

/** Runs a tool (mkfifo, mknod); node:child_process is loaded only then. */
const run = (cmd: string, args: string[]) => promisify(process.getBuiltinModule('node:child_process').execFile)(cmd, args)

/** Options of {@link applyLayer} and {@link applyTar}. */
export interface ApplyOptions {
  signal?: AbortSignal | undefined
  /** Told about what was skipped or could not be restored (device nodes, ownership). */
  onNotice?: ((message: string) => void) | undefined
  /** Stop when the uncompressed stream exceeds this many times the compressed bytes (default 250), once past 64 MiB. */
  maxRatio?: number | undefined
  /** Stop when the uncompressed stream exceeds this many bytes (default 64 GiB). */
  maxSize?: number | undefined
  /** Restore file owners (default: when running as root). */
  restoreOwnership?: boolean | undefined
  /**
   * Restore extended attributes from `SCHILY.xattr.` PAX records (default true; needs the
   * optional fs-xattr module, else they are skipped with a notice).
   */
  xattrs?: boolean | undefined
}

/** What applying a layer did. */
export interface ApplyStats {
  entries: number
  whiteouts: number
  /** Entries skipped (device nodes when not root). */
  skipped: number
  /** Bytes of file content written. */
  bytes: number
}

const RATIO_GRACE = 64 << 20

/** Counts bytes; used to compare the compressed and uncompressed sides of a layer. */
class Counter extends Transform {
  count = 0
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    this.count += chunk.length
    cb(null, chunk)
  }
}

/** Fails the stream when the bytes passing exceed a size, or a ratio of the bytes `input` counted. */
function expansionGuard(input: Counter | undefined, o: ApplyOptions, what: string): Transform {
  const maxRatio = o.maxRatio ?? 250
  const maxSize = o.maxSize ?? 64 * 2 ** 30
  let out = 0
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      out += chunk.length
      if (out > maxSize)
        return cb(new OcikitError('TOO_LARGE', `${what}: uncompressed content exceeds ${maxSize} bytes; stopped (raise maxSize if this is expected)`))
      if (input && out > RATIO_GRACE && out > maxRatio * input.count) {
        return cb(
          new OcikitError(
            'TOO_LARGE',
            `${what}: expands more than ${maxRatio}× (a compression bomb?); stopped after ${out} bytes (raise maxRatio if this is expected)`,
          ),
        )
      }
      cb(null, chunk)
    },
  })
}

class Applier {
  readonly root: string
  readonly o: ApplyOptions
  readonly stats: ApplyStats = { entries: 0, whiteouts: 0, skipped: 0, bytes: 0 }
  /** Paths (relative) this layer wrote, which its own whiteouts must not delete. */
  readonly created = new Set<string>()
  /** Directories (relative) under which this layer wrote something. */
  readonly holdsCreated = new Set<string>()
  /**
   * Each directory's time, to set once the layer is done: one record per directory however many
   * entries name it (a layer of a million `d/` entries keeps one), the last entry's time winning.
   * Kept in the order of their last entry, so that reversed it is deepest first.
   */
  readonly dirTimes = new Map<string, number>()
  readonly isRoot = process.getuid?.() === 0
  readonly restoreOwnership: boolean
  #noticed = new Set<string>()
  constructor(root: string, o: ApplyOptions) {
    this.root = root
    this.o = o
    this.restoreOwnership = o.restoreOwnership ?? this.isRoot
  }

  notice(key: string, msg: string): void {
    if (this.#noticed.has(key)) return
    this.#noticed.add(key)
    this.o.onNotice?.(msg)
  }

  /**
   * The real directory for a relative directory path, resolving symlinks inside the root and
   * creating missing directories (0755) when `create`. Throws UNSAFE_PATH for anything that
   * would leave the root.
   */
  async dir(rel: string, entry: string, create: boolean): Promise<string> {
    let cur = this.root
    const queue = rel ? rel.split('/') : []
    let hops = 0
    while (queue.length > 0) {
      const part = queue.shift() as string
      if (part === '' || part === '.') continue
      if (part === '..') {
        if (cur === this.root) throw new UnsafePathError(entry, 'resolves outside the root through a symlink')
        cur = path.dirname(cur)
        continue
      }
      const next = path.join(cur, part)
      const st = await fs.lstat(next).catch((e) => {
        if (isErrno(e, 'ENOENT')) return undefined
        throw e
      })
      if (!st) {
        if (!create) throw new OcikitError('INVALID_LAYER', `${entry}: ${path.relative(this.root, next)} does not exist`)
        await fs.mkdir(next, { mode: 0o755 })
        this.markCreated(path.relative(this.root, next))
        cur = next
      } else if (st.isSymbolicLink()) {
        if (++hops > 40) throw new UnsafePathError(entry, 'too many levels of symlinks')
        const target = await fs.readlink(next)
        if (path.isAbsolute(target)) {
          throw new UnsafePathError(
            entry,
            `would be written through symlink ${path.relative(this.root, next)} -> ${target}, an absolute target outside the extraction root`,
          )
        }
        queue.unshift(...target.split('/'))
      } else if (st.isDirectory()) {
        cur = next
      } else {
        throw new UnsafePathError(entry, `${path.relative(this.root, next)} is not a directory`)
      }
    }
    return cur
  }

  markCreated(rel: string): void {
    this.created.add(rel)
    for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) {
      const dir = rel.slice(0, i)
      if (this.holdsCreated.has(dir)) break
      this.holdsCreated.add(dir)
    }
  }

  async remove(p: string): Promise<void> {
    await fs.rm(p, { recursive: true, force: true })
  }

  /**
   * Deletes what lower layers put at `rel` for a whiteout: whiteouts apply only to lower layers,
   * so what this layer wrote there (or under it) stays, with the directories holding it.
   */
  async removeLower(full: string, rel: string): Promise<void> {
    if (this.created.has(rel)) return
    if (this.holdsCreated.has(rel) && (await fs.lstat(full).catch(() => undefined))?.isDirectory()) {
      for (const name of await fs.readdir(full)) await this.removeLower(path.join(full, name), `${rel}/${name}`)
      return
    }
    await this.remove(full)
  }

  /** `xattrs`: the entry's extended attributes with their exact bytes (from the tar reader's tap). */
  async entry(header: tarStream.Header, body: Readable, xattrs: [string, Buffer][] = []): Promise<void> {
    const raw = header.name
    const rel = cleanEntryPath(raw)
    if (rel === '') {
      body.resume()
      return // the root itself: its metadata is the target's business
    }
    const slash = rel.lastIndexOf('/')
    const parentRel = slash < 0 ? '' : rel.slice(0, slash)
    const base = rel.slice(slash + 1)
    this.stats.entries++

    if (base.startsWith(WHITEOUT_PREFIX)) {
      body.resume()
      this.stats.whiteouts++
      const dir = await this.dir(parentRel, raw, true)
      if (base === OPAQUE_WHITEOUT) {
        for (const name of await fs.readdir(dir)) await this.removeLower(path.join(dir, name), parentRel ? `${parentRel}/${name}` : name)
      } else {
        const name = base.slice(WHITEOUT_PREFIX.length)
        if (name === '' || name === '.' || name === '..') throw new UnsafePathError(raw, 'whiteout of nothing')
        await this.removeLower(path.join(dir, name), parentRel ? `${parentRel}/${name}` : name)
      }
      return
    }

    const dir = await this.dir(parentRel, raw, true)
    const target = path.join(dir, base)
    const existing = await fs.lstat(target).catch((e) => {
      if (isErrno(e, 'ENOENT')) return undefined
      throw e
    })
    const mode = (header.mode ?? 0o644) & 0o7777
    const mtime = header.mtime ?? new Date(0)
    this.markCreated(rel)

    switch (header.type) {
      case 'directory': {
        if (existing && !existing.isDirectory()) await this.remove(target)
        if (!existing?.isDirectory()) await fs.mkdir(target, { mode })
        body.resume()
        await this.owner(target, header) // before chmod: chown clears setuid and setgid
        await this.xattrs(target, rel, xattrs)
        await fs.chmod(target, mode)
        this.dirTimes.delete(target) // re-added at the end: its last entry's place in the order
        this.dirTimes.set(target, mtime.getTime())
        return
      }
      case 'file':
      case 'contiguous-file': {
        if (existing) await this.remove(target)
        // O_EXCL: never follow whatever might be at the path.
        const fh = await fs.open(target, 'wx', mode)
        try {
          for await (const chunk of body) await fh.write(chunk as Buffer)
        } finally {
          await fh.close()
        }
        this.stats.bytes += header.size ?? 0
        await this.owner(target, header) // before chmod: chown clears setuid and setgid
        await this.xattrs(target, rel, xattrs)
        await fs.chmod(target, mode)
        await fs.utimes(target, mtime, mtime)
        return
      }
      case 'symlink': {
        body.resume()
        if (existing) await this.remove(target)
        await fs.symlink(header.linkname ?? '', target)
        await this.owner(target, header)
        await fs.lutimes(target, mtime, mtime)
        return
      }
      case 'link': {
        body.resume()
        let linkRel: string
        try {
          linkRel = cleanEntryPath(header.linkname ?? '')
        } catch (e) {
          throw new UnsafePathError(raw, `hardlink to '${header.linkname}', outside the root`, { cause: e })
        }
        const ls = linkRel.lastIndexOf('/')
        const linkDir = await this.dir(ls < 0 ? '' : linkRel.slice(0, ls), raw, false)
        const source = path.join(linkDir, linkRel.slice(ls + 1))
        const st = await fs.lstat(source).catch(() => undefined)
        if (!st) throw new OcikitError('INVALID_LAYER', `${raw}: hardlink to '${header.linkname}', which does not exist`)
        if (st.isDirectory()) throw new UnsafePathError(raw, `hardlink to directory '${header.linkname}'`)
        // Both are real paths: removing what is at the target must not take the link's source with it.
        if (source === target || source.startsWith(`${target}/`)) {
          throw new OcikitError('INVALID_LAYER', `${raw}: hardlink to '${header.linkname}', which is the entry itself or inside it`)
        }
        if (existing) await this.remove(target)
        await fs.link(source, target)
        return
      }
      case 'fifo':
      case 'character-device':
      case 'block-device': {
        body.resume()
        if (existing) await this.remove(target)
        if (header.type === 'fifo') await run('mkfifo', ['-m', mode.toString(8), target])
        else if (this.isRoot) {
          await run('mknod', [
            '-m',
            mode.toString(8),
            target,
            header.type === 'block-device' ? 'b' : 'c',
            String(header.devmajor ?? 0),
            String(header.devminor ?? 0),
          ])
        } else {
          this.stats.skipped++
          this.created.delete(rel)
          this.notice('device', `skipped device node ${rel} (and any others): creating device nodes needs root`)
          return
        }
        await this.owner(target, header)
        return
      }
      default:
        body.resume()
        this.stats.skipped++
        this.notice(`type-${header.type}`, `skipped ${rel}: tar entry type '${header.type}' is not supported`)
    }
  }

  /** Sets the entry's extended attributes, after its owner (a chown drops file capabilities). */
  async xattrs(target: string, rel: string, attrs: [string, Buffer][]): Promise<void> {
    if (attrs.length === 0 || this.o.xattrs === false) return
    const api = await xattrApi()
    if (!api) {
      this.notice('xattr-module', `extended attributes not restored (${rel} and others): the optional fs-xattr module is not installed`)
      return
    }
    for (const [name, value] of attrs) {
      try {
        await api.setAttribute(target, name, value)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'error'
        this.notice(`xattr-${code}-${name.split('.')[0]}`, `extended attribute ${name} of ${rel} (and others like it) not restored: ${code}`)
      }
    }
  }

  async owner(target: string, header: tarStream.Header): Promise<void> {
    const { uid, gid } = entryOwner(header)
    if (!this.restoreOwnership) {
      if (uid !== process.getuid?.() || gid !== process.getgid?.()) {
        this.notice('owner', 'file owners not restored (not running as root); files belong to the current user')
      }
      return
    }
    await fs.lchown(target, uid, gid)
  }

  async finish(): Promise<void> {
    // Directory times last, deepest first: writing into a directory changes its mtime. A later
    // entry of the layer may have replaced the directory, or one above it, with a symlink: the
    // recorded path (a real path inside the root when recorded) is used only while it still
    // resolves to itself, so the times never land outside the root.
    for (const [dir, ms] of [...this.dirTimes].reverse()) {
      const real = await fs.realpath(dir).catch(() => undefined)
      const mtime = new Date(ms)
      if (real === dir) await fs.lutimes(dir, mtime, mtime).catch(() => {})
    }
  }
}

/** Applies an uncompressed tar stream onto `dir` (created if missing). */
export async function applyTar(tar: Readable, dir: string, o: ApplyOptions = {}): Promise<ApplyStats> {
  await fs.mkdir(dir, { recursive: true })
  const applier = new Applier(await fs.realpath(dir), o)
  const reader = readTar(chain(tar, expansionGuard(undefined, o, 'layer')), 'layer', { signal: o.signal })
  try {
    for await (const entry of reader.entries) {
      await applier.entry(entry.header, entry as unknown as Readable, reader.tap.xattrsOf(entry.header))
    }
  } catch (e) {
    reader.destroy()
    throw reader.explain(e)
  }
  await applier.finish()
  return applier.stats
}

/**
 * Applies a layer onto `dir`, verifying its digest and diff ID, and stopping compression bombs.
 * Every failure is an OcikitError naming the layer: one from the decompressor (a corrupt gzip or
 * zstd stream) is INVALID_LAYER, with the decompressor's error as its cause.
 */
export async function applyLayer(layer: Layer, dir: string, o: ApplyOptions = {}): Promise<ApplyStats> {
  const what = `layer ${await layer.digest()}`
  const counter = new Counter()
  const guarded = chain(
    await layer.compressed(o),
    counter,
    decompressor(compressionOf(layer.mediaType)),
    expansionGuard(counter, o, what),
    verifyingStream({ digest: await layer.diffId() }, `${what} (uncompressed)`),
  )
  try {
    return await applyTar(guarded, dir, { ...o, maxSize: Number.POSITIVE_INFINITY })
  } catch (e) {
    if (e instanceof OcikitError) throw e
    throw new OcikitError('INVALID_LAYER', `${what}: cannot be read (${(e as Error)?.message}): the blob is corrupt`, { cause: e })
  }
}

/** Options of {@link unpackImage}. */
export interface UnpackOptions extends ApplyOptions {
  /** The image's name, for messages (default: its digest). */
  name?: string | undefined
  /** On a failure, leave what was unpacked so far in place (default: it is removed, so no half-made tree is left). */
  keepPartial?: boolean | undefined
}

/**
 * Unpacks an image (every layer, in order) into a root filesystem directory, which must be
 * missing or empty (else INVALID_ARGUMENT, and nothing is touched). Returns the summed stats.
 * A layer that fails is named in the error (which layer of how many, its digest, the image), and
 * what was unpacked so far is removed, unless `keepPartial` (the error then says it was kept).
 */
export async function unpackImage(img: Image, dir: string, o: UnpackOptions = {}): Promise<ApplyStats> {
  const st = await fs.stat(dir).catch((e) => {
    if (isErrno(e, 'ENOENT')) return undefined
    throw e
  })
  if (st && !st.isDirectory()) throw new OcikitError('INVALID_ARGUMENT', `${dir} is not a directory; unpack into a new or empty directory`)
  if (st && (await fs.readdir(dir)).length > 0) throw new OcikitError('INVALID_ARGUMENT', `${dir} is not empty; unpack into a new or empty directory`)
  await img.config() // an artifact, or a config that disagrees with the manifest, fails here, before anything is written
  const name = o.name ?? `image ${await img.digest()}`
  const total: ApplyStats = { entries: 0, whiteouts: 0, skipped: 0, bytes: 0 }
  const layers = await img.layers()
  for (const [i, layer] of layers.entries()) {
    let s: ApplyStats
    try {
      s = await applyLayer(layer, dir, o)
    } catch (e) {
      let left = `the partial tree in ${dir} was kept (keepPartial)`
      if (!o.keepPartial) {
        // The directory was new or empty: take it back to that.
        if (st) for (const entry of await fs.readdir(dir)) await fs.rm(path.join(dir, entry), { recursive: true, force: true })
        else await fs.rm(dir, { recursive: true, force: true })
        left = `nothing was left in ${dir}`
      }
      const code = e instanceof OcikitError ? e.code : 'INVALID_LAYER'
      throw new OcikitError(code, `${name}: layer ${i + 1} of ${layers.length} (${await layer.digest()}): ${(e as Error)?.message}; ${left}`, { cause: e })
    }
    total.entries += s.entries
    total.whiteouts += s.whiteouts
    total.skipped += s.skipped
    total.bytes += s.bytes
  }
  return total
}
