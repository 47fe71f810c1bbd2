/**
 * A Node.js project as layers: what of its tree is registry dependencies, what is local packages
 * (workspaces, `file:` links) and what is the application; which packages are dev-only; the
 * command that starts it; which packages hold native code. Nothing is installed or run: the
 * tree is read as npm, pnpm or yarn left it.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import { OcikitError } from '../errors.ts'
import type { Selection } from '../layer/source-directory.ts'

/** What `package.json` says that a build uses. */
export interface PackageJson {
  name?: string
  version?: string
  main?: string
  license?: string
  description?: string
  homepage?: string
  repository?: string | { url?: string }
  scripts?: Record<string, string>
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  engines?: Record<string, string>
}

/** Which package manager left `node_modules`. */
export type PackageManager = 'npm' | 'pnpm' | 'yarn' | 'none'

/** One part of the project tree, as a layer takes it. */
export type TreeSelect = (relPath: string, isDirectory: boolean) => Selection

/** A Node.js project read from its directory. */
export interface NodeProject {
  readonly dir: string
  readonly packageJson: PackageJson
  readonly manager: PackageManager
  /** The registry dependencies: `node_modules` (nested ones too), less local links and omitted dev packages. */
  readonly dependencies: TreeSelect
  /** Local packages: the symlinks in `node_modules` that point into the project, and what they point at (less their own `node_modules`). */
  readonly localPackages: TreeSelect
  /** Everything else: the application. */
  readonly application: TreeSelect
  /** Relative paths of the local packages' directories. */
  readonly localDirs: readonly string[]
  /** Relative paths (`node_modules/x`) of the packages left out by `omitDev`. */
  readonly omitted: readonly string[]
  /** `["node", FILE]` from `main` or a `start` script that is just `node FILE`; undefined when neither says. FILE is relative. */
  readonly start: string | undefined
}

/** Options of {@link readNodeProject}. */
export interface NodeProjectOptions {
  /** Leave out dev-only packages: those npm's lockfile marks dev, else (pnpm, yarn) those no production dependency reaches in `node_modules`. */
  omitDev?: boolean | undefined
}

interface LockPackage {
  version?: string
  link?: boolean
  resolved?: string
  dev?: boolean
  optional?: boolean
  devOptional?: boolean
}

function readJson<T>(file: string, what: string): T {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new OcikitError('INVALID_ARGUMENT', `cannot read ${what} ${file}: ${(e as Error).message}`, { cause: e })
  }
  try {
    return JSON.parse(text) as T
  } catch (e) {
    throw new OcikitError('INVALID_ARGUMENT', `${what} ${file} is not valid JSON: ${(e as Error).message}`, { cause: e })
  }
}

/** True when `rel` is a `node_modules` directory or inside one. */
export function inNodeModules(rel: string): boolean {
  return rel === 'node_modules' || rel.startsWith('node_modules/') || rel.includes('/node_modules/') || rel.endsWith('/node_modules')
}

/** `rel` and each of its ancestors ('a/b/c' → a, a/b, a/b/c). */
function withAncestors(rel: string, into: Set<string>): void {
  const parts = rel.split('/')
  for (let i = 1; i <= parts.length; i++) into.add(parts.slice(0, i).join('/'))
}

/** The package directories directly in a `node_modules` (scoped ones too), as relative paths. */
function packagesIn(root: string, nm: string): string[] {
  const out: string[] = []
  let names: string[]
  try {
    names = readdirSync(path.join(root, nm))
  } catch {
    return out
  }
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue
    if (name.startsWith('@')) {
      for (const s of readdirSync(path.join(root, nm, name)).sort()) out.push(`${nm}/${name}/${s}`)
    } else out.push(`${nm}/${name}`)
  }
  return out
}

/** The project-relative target of a symlink at `rel`, or undefined when it leads out of `root` or into a `node_modules`. */
function localTarget(root: string, rel: string): string | { outside: string } | undefined {
  const link = readlinkSync(path.join(root, rel))
  const target = path.resolve(path.dirname(path.join(root, rel)), link)
  const r = path.relative(root, target).split(path.sep).join('/')
  if (r.startsWith('..') || path.isAbsolute(r)) return { outside: target }
  return inNodeModules(r) ? undefined : r
}

function managerOf(dir: string): PackageManager {
  if (existsSync(path.join(dir, 'package-lock.json')) || existsSync(path.join(dir, 'npm-shrinkwrap.json'))) return 'npm'
  if (existsSync(path.join(dir, 'pnpm-lock.yaml')) || existsSync(path.join(dir, 'node_modules', '.pnpm'))) return 'pnpm'
  if (existsSync(path.join(dir, 'yarn.lock'))) return 'yarn'
  return existsSync(path.join(dir, 'node_modules')) ? 'npm' : 'none'
}

/** The start file a `start` script names when it is just `node FILE`. */
function startScript(script: string | undefined): string | undefined {
  const m = script === undefined ? null : /^\s*node\s+([^\s;&|<>`$'"]+)\s*$/.exec(script)
  return m?.[1]
}

/** npm's lockfile checked against `node_modules`: LOCKFILE_MISMATCH naming what differs. Returns its packages. */
function npmLock(dir: string): Record<string, LockPackage> | undefined {
  const file = ['npm-shrinkwrap.json', 'package-lock.json'].map((f) => path.join(dir, f)).find((f) => existsSync(f))
  if (!file) return undefined
  const lock = readJson<{ lockfileVersion?: number; packages?: Record<string, LockPackage> }>(file, 'lockfile')
  if (!lock.packages) {
    throw new OcikitError('INVALID_ARGUMENT', `${file} is lockfile version ${lock.lockfileVersion ?? 1}; run npm 7 or later once (npm install) to update it`)
  }
  const problems: string[] = []
  for (const [key, p] of Object.entries(lock.packages)) {
    if (!key.includes('node_modules/')) continue
    const at = path.join(dir, key)
    let st: import('node:fs').Stats | undefined
    try {
      st = lstatSync(at)
    } catch {
      st = undefined
    }
    if (!st) {
      if (!p.optional && !p.devOptional && !p.dev) problems.push(`${key} is in the lockfile but not installed`)
      continue
    }
    if (p.link || st.isSymbolicLink() || p.version === undefined) continue
    const have = existsSync(path.join(at, 'package.json')) ? readJson<PackageJson>(path.join(at, 'package.json'), 'package file').version : undefined
    if (have !== p.version) problems.push(`${key} is ${have ?? 'not a package'} on disk, ${p.version} in the lockfile`)
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 5).join('; ')
    const more = problems.length > 5 ? `; and ${problems.length - 5} more` : ''
    throw new OcikitError('LOCKFILE_MISMATCH', `node_modules does not match ${path.basename(file)}: ${shown}${more}; run npm ci`)
  }
  return lock.packages
}

/** The package a `require(name)` from the package at `fromRel` finds, as Node resolves it: the nearest `node_modules/name` up the tree. */
function resolveFrom(root: string, fromRel: string, name: string): string | undefined {
  for (let d = fromRel; ; d = path.posix.dirname(d)) {
    const at = d === '.' || d === '' ? `node_modules/${name}` : `${d}/node_modules/${name}`
    if (existsSync(path.join(root, at, 'package.json'))) return at
    if (d === '.' || d === '') return undefined
  }
}

/** `rel`'s real location, relative to `root` (pnpm's node_modules are links into node_modules/.pnpm). */
function realRel(root: string, rel: string): string {
  return path
    .relative(root, realpathSync(path.join(root, rel)))
    .split(path.sep)
    .join('/')
}

/**
 * The installed packages no production dependency reaches: starting from the project's (and the
 * local packages') `dependencies`, `optionalDependencies` and `peerDependencies`, each resolved
 * as Node would from where it really lies, and so on through theirs. Works for any
 * `node_modules` layout (npm and yarn hoist, pnpm links into `.pnpm`). Returns the entries to
 * leave out: top-level and nested package paths, and pnpm's `.pnpm/<id>` directories.
 */
function unreachedPackages(root: string, pkg: PackageJson, localDirs: readonly string[]): string[] {
  const deps = (p: PackageJson & { peerDependencies?: Record<string, string> }) =>
    Object.keys({ ...p.dependencies, ...p.optionalDependencies, ...p.peerDependencies })
  const reached = new Set<string>()
  const queue: { from: string; names: string[] }[] = [{ from: '.', names: deps(pkg) }]
  for (const d of localDirs) queue.push({ from: d, names: deps(readJson<PackageJson>(path.join(root, d, 'package.json'), 'package file')) })
  for (let item = queue.shift(); item; item = queue.shift()) {
    for (const name of item.names) {
      const at = resolveFrom(root, item.from, name)
      if (!at) continue // an optional or peer dependency that is not installed
      const real = realRel(root, at)
      if (reached.has(real)) continue
      reached.add(real)
      queue.push({ from: real, names: deps(readJson<PackageJson>(path.join(root, real, 'package.json'), 'package file')) })
    }
  }
  const out: string[] = []
  const visit = (nm: string) => {
    for (const rel of packagesIn(root, nm)) {
      let real: string
      try {
        real = realRel(root, rel)
      } catch {
        continue // a dangling link: left as it is
      }
      if (!inNodeModules(real)) continue // a local package
      if (!reached.has(real)) out.push(rel)
      else if (!lstatSync(path.join(root, rel)).isSymbolicLink()) visit(`${rel}/node_modules`)
    }
  }
  visit('node_modules')
  // pnpm's store: a `.pnpm/<id>` whose package nothing reaches goes whole.
  const store = 'node_modules/.pnpm'
  let ids: string[] = []
  try {
    ids = readdirSync(path.join(root, store))
  } catch {}
  for (const id of ids.sort()) {
    if (id.startsWith('.') || id === 'node_modules' || id === 'lock.yaml') continue
    const inner = packagesIn(root, `${store}/${id}/node_modules`).filter((rel) => !lstatSync(path.join(root, rel)).isSymbolicLink())
    if (inner.length > 0 && inner.every((rel) => !reached.has(rel))) out.push(`${store}/${id}`)
  }
  return out
}

/**
 * Reads the Node.js project in `dir` (it must hold a `package.json`). npm's lockfile, when there
 * is one, is checked against `node_modules` (LOCKFILE_MISMATCH naming the packages that differ)
 * and says which packages are dev-only; without it (pnpm, yarn) `omitDev` leaves out what no
 * production dependency reaches in the installed tree (NOT_SUPPORTED with no node_modules). A local
 * package linked from outside the project is NOT_SUPPORTED, naming it: its link would dangle in
 * the image.
 */
export function readNodeProject(dir: string, o: NodeProjectOptions = {}): NodeProject {
  const root = path.resolve(dir)
  const packageJson = readJson<PackageJson>(path.join(root, 'package.json'), 'package file')
  const manager = managerOf(root)
  const lock = manager === 'npm' ? npmLock(root) : undefined
  if (o.omitDev && !lock && (manager === 'none' || !existsSync(path.join(root, 'node_modules')))) {
    throw new OcikitError('NOT_SUPPORTED', `--omit-dev leaves dev packages out of node_modules, and ${root} has none; install the dependencies first`)
  }

  // Local packages: symlinks in the top node_modules (and in the local packages' own) that lead into the project.
  const links = new Set<string>()
  const localDirs = new Set<string>()
  const outside: string[] = []
  const queue = ['node_modules']
  for (let nm = queue.shift(); nm !== undefined; nm = queue.shift()) {
    for (const rel of packagesIn(root, nm)) {
      if (!lstatSync(path.join(root, rel)).isSymbolicLink()) continue
      const t = localTarget(root, rel)
      if (t === undefined) continue
      if (typeof t === 'object') {
        outside.push(`${rel} → ${t.outside}`)
        continue
      }
      if (!existsSync(path.join(root, t))) continue // dangling: the layer keeps the link as it is
      links.add(rel)
      if (!localDirs.has(t) && t !== '') {
        localDirs.add(t)
        queue.push(`${t}/node_modules`)
      }
    }
  }
  if (outside.length > 0) {
    throw new OcikitError(
      'NOT_SUPPORTED',
      `local package(s) linked from outside ${root}: ${outside.join(', ')}; their links would dangle in the image (move them into the project, or pack them: npm pack, then install the tarball)`,
    )
  }

  // Dev packages the lockfile names (npm), or that nothing but a dev dependency reaches in the
  // installed tree (pnpm, yarn), and the .bin links that lead into them.
  const omitted = new Set<string>()
  if (o.omitDev && !lock) for (const k of unreachedPackages(root, packageJson, [...localDirs])) omitted.add(k)
  if (o.omitDev && lock) {
    for (const [key, p] of Object.entries(lock)) if (key.includes('node_modules/') && p.dev && !p.link) omitted.add(key)
  }
  if (o.omitDev) {
    for (const key of [...omitted]) {
      const bin = path.posix.join(key.slice(0, key.lastIndexOf('node_modules/') + 'node_modules'.length), '.bin')
      let names: string[] = []
      try {
        names = readdirSync(path.join(root, bin))
      } catch {}
      for (const n of names) {
        const rel = `${bin}/${n}`
        try {
          const to = path.posix.normalize(path.posix.join(bin, readlinkSync(path.join(root, rel)).split(path.sep).join('/')))
          if (to === key || to.startsWith(`${key}/`)) omitted.add(rel)
        } catch {}
      }
    }
  }

  const localAncestors = new Set<string>()
  for (const d of localDirs) withAncestors(d, localAncestors)
  const omittedAncestors = new Set<string>()
  for (const k of omitted) withAncestors(path.posix.dirname(k), omittedAncestors)
  const localLinkAncestors = new Set<string>()
  for (const l of links) withAncestors(path.posix.dirname(l), localLinkAncestors)
  const isLocalDir = (rel: string) => localDirs.has(rel)
  const underLocalDir = (rel: string) => {
    for (const d of localDirs) if (rel.startsWith(`${d}/`)) return true
    return false
  }

  const dependencies: TreeSelect = (rel) => {
    if (links.has(rel) || omitted.has(rel)) return 'none'
    if (inNodeModules(rel)) return omittedAncestors.has(rel) || localLinkAncestors.has(rel) ? 'some' : 'all'
    return localAncestors.has(rel) ? 'some' : 'none'
  }
  const localPackages: TreeSelect = (rel) => {
    if (links.has(rel)) return 'all'
    if (inNodeModules(rel)) return localLinkAncestors.has(rel) ? 'some' : 'none'
    if (isLocalDir(rel)) return 'some'
    if (underLocalDir(rel)) return 'all'
    return localAncestors.has(rel) ? 'some' : 'none'
  }
  const application: TreeSelect = (rel) => {
    if (inNodeModules(rel) || isLocalDir(rel)) return 'none'
    return localAncestors.has(rel) ? 'some' : 'all'
  }

  const main = packageJson.main ?? startScript(packageJson.scripts?.start)
  const start = main === undefined ? undefined : path.posix.normalize(main.replace(/^\.\//, ''))
  return {
    dir: root,
    packageJson,
    manager,
    dependencies,
    localPackages,
    application,
    localDirs: [...localDirs].sort(),
    omitted: [...omitted].filter((k) => !k.includes('/.bin/')).sort(),
    start,
  }
}

/**
 * The packages under `dir`'s `node_modules` (and the local packages) that hold native code: a
 * `binding.gyp`, or a compiled `*.node` file. Returns their names, sorted.
 */
export function nativePackages(project: NodeProject): string[] {
  const found = new Set<string>()
  const roots = ['node_modules', ...project.localDirs]
  for (const r of roots) {
    let all: string[]
    try {
      all = readdirSync(path.join(project.dir, r), { recursive: true }) as string[]
    } catch {
      continue
    }
    for (const p of all) {
      const rel = p.split(path.sep).join('/')
      const base = rel.slice(rel.lastIndexOf('/') + 1)
      if (base !== 'binding.gyp' && !base.endsWith('.node')) continue
      if (base.endsWith('.node')) {
        try {
          if (!statSync(path.join(project.dir, r, p)).isFile()) continue
        } catch {
          continue
        }
      }
      const full = `${r}/${rel}`
      const i = full.lastIndexOf('node_modules/')
      if (i < 0) {
        found.add(project.localDirs.find((d) => full.startsWith(`${d}/`)) ?? r)
        continue
      }
      const after = full.slice(i + 'node_modules/'.length).split('/')
      const name = after[0]?.startsWith('@') ? `${after[0]}/${after[1]}` : after[0]
      if (name && name !== '.bin' && name !== '.pnpm') found.add(name)
    }
  }
  return [...found].sort()
}
