/** Platforms: parsing `os/arch[/variant]`, this machine's platform, and picking an image from an index. */
import { isDigest } from '../digest.ts'
import { isImageConfigType, isIndexType, isManifestType } from '../documents/media-types.ts'
import type { Platform } from '../documents/schemas.ts'
import { MAX_INDEX_DEPTH } from '../documents/validate.ts'
import { OcikitError, PlatformNotFoundError } from '../errors.ts'
import type { Image, ImageIndex } from './types.ts'

/** The operating systems images name (Go's GOOS values, as the image spec says), and `unknown` (attestation manifests). */
const KNOWN_OS = new Set('aix android darwin dragonfly freebsd hurd illumos ios js linux netbsd openbsd plan9 solaris wasip1 windows zos unknown'.split(' '))
/** The architectures images name (Go's GOARCH values), and `unknown`. */
const KNOWN_ARCH = new Set('386 amd64 arm arm64 loong64 mips mipsle mips64 mips64le ppc64 ppc64le riscv64 s390x wasm unknown'.split(' '))

/**
 * Parses `os/arch[/variant]` (e.g. `linux/arm64/v8`). An OS or architecture that images do not
 * use (not one of Go's GOOS/GOARCH values, as the image spec asks) is INVALID_ARGUMENT, naming
 * the known ones: `linux/bogusarch` is refused, not silently accepted.
 */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/i.test(p))) {
    throw new OcikitError('INVALID_ARGUMENT', `invalid platform '${s}': expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`)
  }
  const [os = '', architecture = '', variant] = parts
  if (!KNOWN_OS.has(os)) throw new OcikitError('INVALID_ARGUMENT', `invalid platform '${s}': unknown OS '${os}' (known: ${[...KNOWN_OS].join(', ')})`)
  if (!KNOWN_ARCH.has(architecture)) {
    throw new OcikitError('INVALID_ARGUMENT', `invalid platform '${s}': unknown architecture '${architecture}' (known: ${[...KNOWN_ARCH].join(', ')})`)
  }
  return variant === undefined ? { os, architecture } : { os, architecture, variant }
}

/** `os/arch[/variant]` text of a platform. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`
}

const ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
}

/** The platform of this machine, as images name it. The OS is always `linux`: containers run on Linux. */
export function currentPlatform(): Platform {
  const architecture = ARCH[process.arch] ?? process.arch
  if (architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>).arm_version
    return { os: 'linux', architecture, variant: `v${typeof v === 'string' || typeof v === 'number' ? v : '7'}` }
  }
  return { os: 'linux', architecture }
}

function normalVariant(p: Platform): string | undefined {
  if (p.variant) return p.variant
  if (p.architecture === 'arm64') return 'v8'
  if (p.architecture === 'arm') return 'v7'
  return undefined
}

/** True when `have` satisfies `want`: same os and architecture, and the same variant if `want` names one. */
export function platformMatches(want: Platform, have: Platform): boolean {
  if (want.os !== have.os || want.architecture !== have.architecture) return false
  if (want.variant && normalVariant(want) !== normalVariant(have)) return false
  if (want['os.version'] && want['os.version'] !== have['os.version']) return false
  return true
}

/**
 * The image for `want` in an index, searching nested indexes depth-first in order.
 * Throws PLATFORM_NOT_FOUND listing the platforms the index offers. `where` names the index.
 */
export async function selectPlatform(index: ImageIndex, want: Platform, where: string, depth = 0): Promise<Image> {
  if (depth > MAX_INDEX_DEPTH) throw new OcikitError('INVALID_MANIFEST', `${where}: indexes nested more than ${MAX_INDEX_DEPTH} deep`)
  const m = await index.manifest()
  const available: string[] = []
  for (const d of m.manifests) {
    if (!isDigest(d.digest)) continue
    if (isManifestType(d.mediaType) && d.platform) {
      available.push(formatPlatform(d.platform))
      if (platformMatches(want, d.platform)) return index.image(d.digest)
    } else if (isIndexType(d.mediaType)) {
      try {
        return await selectPlatform(await index.index(d.digest), want, where, depth + 1)
      } catch (e) {
        if (!(e instanceof PlatformNotFoundError)) throw e
        available.push(...e.available)
      }
    }
  }
  // An index entry without a platform field: fall back to the config's platform.
  for (const d of m.manifests) {
    if (isManifestType(d.mediaType) && !d.platform) {
      const img = await index.image(d.digest)
      const c = await img.config()
      const p = { os: c.os, architecture: c.architecture, variant: c.variant }
      available.push(formatPlatform(p))
      if (platformMatches(want, p)) return img
    }
  }
  throw new PlatformNotFoundError(where, formatPlatform(want), [...new Set(available)])
}

/**
 * The image for `want`: from an index, the one {@link selectPlatform} picks; a single image only
 * when it is for `want` (else PLATFORM_NOT_FOUND naming the one platform it has: a platform asked
 * for is never silently ignored). An artifact, which has no platform, is returned as it is.
 */
export async function imageForPlatform(x: Image | ImageIndex, want: Platform, where: string): Promise<Image> {
  if (x.kind === 'index') return selectPlatform(x, want, where)
  if (!isImageConfigType((await x.manifest()).config.mediaType)) return x
  const c = await x.config()
  const have = { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) }
  if (!platformMatches(want, have)) throw new PlatformNotFoundError(`${where} (a single-platform image)`, formatPlatform(want), [formatPlatform(have)])
  return x
}
