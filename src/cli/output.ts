/** Output helpers of the CLI: sizes, errors, JSON. The library never prints; only the CLI does. */
import { OcikitError } from '../errors.ts'

/** `1.2 MiB`-style size. */
export function humanSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

/** Prints a value as indented JSON on stdout. */
export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`)
}

/**
 * `s` with every control character (C0, DEL, C1: the escape sequences a terminal obeys) written
 * as `\xNN`, so that text from outside (a registry's error message, a tag in an index.json, a
 * file name in a layer) is shown, never executed, by the terminal.
 */
export function printable(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

/** Prints a notice from the library on stderr, as `ocikit: MESSAGE` (control characters escaped). */
export function printNotice(m: string): void {
  process.stderr.write(`ocikit: ${printable(m)}\n`)
}

/** Prints a list: as JSON with `json`, else one line per item (control characters escaped). */
export function printList<T>(items: readonly T[], json: boolean | undefined, line: (item: T) => string): void {
  if (json) printJson(items)
  else process.stdout.write(items.map((x) => `${printable(line(x))}\n`).join(''))
}

/** What to do next, by error code; appended to the one-line error. */
const HINTS: Partial<Record<string, string>> = {
  AMBIGUOUS_REFERENCE: "run 'ocikit ls' to see the tags",
  PLATFORM_NOT_FOUND: 'choose one with --platform os/arch[/variant]',
  DIGEST_MISMATCH: "the stored bytes are damaged; run 'ocikit fsck' on the store",
  SIZE_MISMATCH: "the stored bytes are damaged; run 'ocikit fsck' on the store",
  INVALID_NAME: "names look like oci:DIR[:TAG], oci:DIR@sha256:..., HOST/REPO:TAG; see 'ocikit --help'",
}

/** Prints an error as one clear line (plus its stack and causes with `debug`). Returns the exit code (130 after Ctrl-C). */
export function reportError(e: unknown, debug: boolean): number {
  const msg = e instanceof Error ? e.message : String(e)
  const code = e instanceof OcikitError ? e.code : undefined
  const hint = code ? HINTS[code] : undefined
  process.stderr.write(`ocikit: error: ${printable(msg)}${hint ? ` (${hint})` : ''}\n`)
  if (code === 'ABORTED') return 130
  if (debug) {
    let cur: unknown = e
    let depth = 0
    while (cur instanceof Error && depth < 8) {
      const text = (cur.stack ?? cur.message).split('\n').map(printable).join('\n')
      process.stderr.write(`${depth === 0 ? '' : 'caused by: '}${text}${cur instanceof OcikitError ? ` [code ${cur.code}]` : ''}\n`)
      cur = cur.cause
      depth++
    }
  } else if (!(e instanceof OcikitError)) {
    process.stderr.write('ocikit: run with --debug for details\n')
  }
  return 1
}
