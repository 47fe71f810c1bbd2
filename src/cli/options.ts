/** Options shared by several commands. */
import { type Command, InvalidArgumentError, Option } from 'commander'
import type { Platform } from '../documents/schemas.ts'
import { OcikitError } from '../errors.ts'
import { parsePlatform } from '../image/platform.ts'
import type { BfcOptions } from '../stores/bfc/store.ts'
import type { RegistryOptions } from '../stores/registry/transport.ts'
import { printable, printNotice } from './output.ts'

/** `--platform os/arch[/variant]`, parsed. */
export function platformOption(what = 'pick this platform from a multi-platform index (default: this machine, linux/<arch>)'): Option {
  // A bad value is a usage error (exit 2), as for every other flag.
  return new Option('--platform <os/arch[/variant]>', what).argParser((v): Platform => {
    try {
      return parsePlatform(v)
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message)
    }
  })
}

/** `--json`. */
export function jsonOption(): Option {
  return new Option('--json', 'print machine-readable JSON')
}

/** Registry options from the global flags (`--insecure HOST`), with notices and retries shown on stderr. */
export function registryOptions(program: Command): RegistryOptions {
  const g = program.opts<{ insecure?: string[]; caFile?: string; timeout?: number }>()
  return {
    insecure: g.insecure ?? [],
    caFile: g.caFile,
    stallTimeoutMs: g.timeout === undefined ? undefined : g.timeout * 1000,
    onNotice: printNotice,
    onRetry: (r) =>
      process.stderr.write(`ocikit: ${printable(`${r.url}: ${r.reason}`)}; retrying in ${(r.delayMs / 1000).toFixed(1)} s (attempt ${r.attempt + 1})\n`),
  }
}

/** `--cmd '["node","x.js"]'` (a JSON array) or `--cmd /app/run` (one word), as an option. */
export function argvOption(flags: string, what: string): Option {
  return new Option(flags, what).argParser((v: string): string[] => {
    if (!v.trimStart().startsWith('[')) return [v]
    let parsed: unknown
    try {
      parsed = JSON.parse(v)
    } catch {
      throw new InvalidArgumentError(`'${v}' is not a JSON array of strings`)
    }
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) throw new InvalidArgumentError(`'${v}' is not a JSON array of strings`)
    return parsed
  })
}

/** A repeatable option's collector. */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

/**
 * The BFC password: `$OCIKIT_BFC_PASSWORD`, else asked for on the terminal (not echoed); never
 * from the command line. KEY_REQUIRED when neither is there.
 */
export async function bfcPassword(): Promise<string> {
  const env = process.env.OCIKIT_BFC_PASSWORD
  if (env !== undefined && env !== '') return env
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new OcikitError('KEY_REQUIRED', 'this BFC file is encrypted: set OCIKIT_BFC_PASSWORD, run on a terminal to be asked, or give --key-file FILE')
  }
  process.stderr.write('BFC password: ')
  const stdin = process.stdin
  stdin.setRawMode(true)
  stdin.resume()
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = ''
      const onData = (b: Buffer) => {
        for (const ch of b.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData)
            process.stderr.write('\n')
            resolve(typed)
            return
          }
          if (ch === '\u0003') {
            stdin.off('data', onData)
            process.stderr.write('\n')
            reject(new OcikitError('ABORTED', 'no password given'))
            return
          }
          if (ch === '\u007f') typed = typed.slice(0, -1)
          else typed += ch
        }
      }
      stdin.on('data', onData)
    })
  } finally {
    stdin.setRawMode(false)
    stdin.pause()
  }
}

/** Store options from the global flags: registries (`--insecure`, `--ca-file`, `--timeout`) and BFC files (`--key-file`, the password). */
export function storeOptions(program: Command, o: { encrypt?: boolean; compress?: boolean } = {}): { registry: RegistryOptions; bfc: BfcOptions } {
  const g = program.opts<{ keyFile?: string; bfcPasswordStdin?: boolean }>()
  const password = g.bfcPasswordStdin ? passwordFromStdin : bfcPassword
  return {
    registry: registryOptions(program),
    bfc: { key: g.keyFile ? { keyFile: g.keyFile } : { password }, encrypt: o.encrypt, compress: o.compress },
  }
}

let stdinPassword: Promise<string> | undefined
/** The BFC password as the first line of standard input (`--bfc-password-stdin`), read once. */
function passwordFromStdin(): Promise<string> {
  stdinPassword ??= (async () => {
    const chunks: Buffer[] = []
    for await (const c of process.stdin) {
      chunks.push(c as Buffer)
      if (Buffer.concat(chunks).length > 4096) throw new OcikitError('INVALID_ARGUMENT', 'the BFC password on standard input is over 4 KiB')
    }
    const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? ''
    if (line === '') throw new OcikitError('KEY_REQUIRED', '--bfc-password-stdin: standard input held no password')
    return line
  })()
  return stdinPassword
}

/** A size such as `2G`, `500M`, `10MB`, `64KiB` or a number of bytes, for an option's parser. */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]i?B?)?$/i.exec(v)
  if (!m) throw new InvalidArgumentError(`takes a size such as 2G or 500M, got '${v}'`)
  const unit = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[(m[2]?.[0] ?? '').toUpperCase() as 'K'] ?? 1
  return Math.floor(Number(m[1]) * unit)
}
