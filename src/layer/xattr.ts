/**
 * Extended attributes, through the optional native module `fs-xattr` (Node.js has no API for
 * them). It is an optional dependency: where it could not be built (no C compiler, or not
 * Linux/macOS), asking for xattrs is a clear NOT_SUPPORTED error, and applying a layer that
 * carries them restores none, with a notice. In tars they travel as PAX records
 * `SCHILY.xattr.NAME=VALUE`, as GNU tar, Go's archive/tar (containerd, umoci, BuildKit) write them.
 */
import { NotSupportedError } from '../errors.ts'

/** The part of fs-xattr used here. */
export interface XattrApi {
  listAttributesSync(path: string): string[]
  getAttributeSync(path: string, attr: string): Buffer
  setAttribute(path: string, attr: string, value: Buffer | string): Promise<void>
  removeAttributeSync(path: string, attr: string): void
}

/** Prefix of the PAX records that hold extended attributes. */
export const XATTR_PAX_PREFIX = 'SCHILY.xattr.'

let loaded: Promise<XattrApi | undefined> | undefined

/** The xattr module, or undefined when it is not installed. */
export function xattrApi(): Promise<XattrApi | undefined> {
  loaded ??= import('fs-xattr').then(
    (m) => m as unknown as XattrApi,
    () => undefined,
  )
  return loaded
}

/** The xattr module; NOT_SUPPORTED when it is not installed. */
export async function requireXattrApi(): Promise<XattrApi> {
  const api = await xattrApi()
  if (!api) {
    throw new NotSupportedError(
      'extended attributes need the optional native module fs-xattr, which is not installed here (it is built at install time and needs a C compiler; run npm install again with one)',
    )
  }
  return api
}

/**
 * The extended attributes of a file (not following symlinks: callers skip symlinks), names
 * sorted so that layers are reproducible; undefined when there are none or the filesystem
 * has no xattr support.
 */
export function readXattrs(api: XattrApi, file: string): Record<string, Buffer> | undefined {
  let names: string[]
  try {
    names = api.listAttributesSync(file)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return undefined
    throw e
  }
  if (names.length === 0) return undefined
  const out: Record<string, Buffer> = {}
  for (const name of [...names].sort()) out[name] = api.getAttributeSync(file, name)
  return out
}

/** The extended attributes in a tar entry's PAX records, as tar-stream decoded them (UTF-8 text). */
export function xattrsOfPax(pax: Record<string, string> | undefined): [string, string][] {
  if (!pax) return []
  return Object.entries(pax)
    .filter(([k]) => k.startsWith(XATTR_PAX_PREFIX) && k.length > XATTR_PAX_PREFIX.length)
    .map(([k, v]) => [k.slice(XATTR_PAX_PREFIX.length), v])
}
