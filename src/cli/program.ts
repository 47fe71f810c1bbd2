/** The ocikit command line: argument parsing only; every command is one call into the library. */
import { readFileSync } from 'node:fs'
import { Command, InvalidArgumentError, Option } from 'commander'
import { storeHelp } from '../stores/open.ts'
import { register as registerAppend } from './commands/append.ts'
import { register as registerBuild } from './commands/build.ts'
import { register as registerCheck } from './commands/check.ts'
import { register as registerCopy } from './commands/copy.ts'
import { register as registerDocuments } from './commands/documents.ts'
import { register as registerExplore } from './commands/explore.ts'
import { register as registerInspect } from './commands/inspect.ts'
import { register as registerLayer } from './commands/layer.ts'
import { register as registerOps } from './commands/ops.ts'
import { register as registerRegistry } from './commands/registry.ts'
import { register as registerTags } from './commands/tags.ts'
import { register as registerUnpack } from './commands/unpack.ts'

/** Set by the single executable's build, which has no package.json beside it. */
declare const OCIKIT_BUILD_VERSION: string | undefined

/** The package version: the build's, else read from package.json. */
export function packageVersion(): string {
  if (typeof OCIKIT_BUILD_VERSION === 'string') return OCIKIT_BUILD_VERSION
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

const NAMES = `
Image names:
${storeHelp()}

Examples:
  ocikit append scratch oci:./out:v1 --dir ./dist --prefix /app --cmd '["node","/app/index.js"]'
  ocikit inspect oci:./out:v1
  ocikit layer create ./dir -o layer.tar.gz && ocikit layer ls layer.tar.gz
  ocikit unpack oci:./out:v1 ./rootfs
  ocikit copy oci:./out:v1 localhost:5000/app:v1
  ocikit copy oci:./a:v1 oci:./b:v1
  ocikit fsck oci:./out && ocikit gc oci:./out --dry-run`

/** Every command, by the names it registers; the first group's order is the order of `--help`. */
const COMMANDS: readonly [names: readonly string[], register: (program: Command) => void][] = [
  [['build', 'cache'], registerBuild],
  [['inspect'], registerInspect],
  [['manifest', 'config', 'digest'], registerDocuments],
  [['ls', 'tags', 'tag', 'untag'], registerTags],
  [['copy'], registerCopy],
  [['fsck', 'gc'], registerCheck],
  [['append'], registerAppend],
  [['mutate', 'rebase', 'flatten', 'optimize'], registerOps],
  [['layer'], registerLayer],
  [['unpack', 'export'], registerUnpack],
  [['explore'], registerExplore],
  [['referrers', 'catalog', 'delete', 'login', 'logout'], registerRegistry],
]

/** A parser of a number of seconds greater than 0 (up to a day), for `flag`. */
function positiveSeconds(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v)
    if (!Number.isFinite(n) || n <= 0 || n > 86_400) throw new InvalidArgumentError(`${flag} takes a number of seconds above 0 (up to 86400), not '${v}'`)
    return n
  }
}

/** Global options that take a value in the next argument. */
const GLOBAL_WITH_VALUE = new Set(['--ca-file', '--insecure', '--timeout', '--key-file'])

/** The command named in `argv` (as in `process.argv`), or undefined when there is none. */
function commandIn(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i] as string
    if (GLOBAL_WITH_VALUE.has(a)) i++
    else if (a === '-h' || a === '--help')
      return undefined // the program's own help lists every command
    else if (a === '--') return argv[i + 1]
    else if (!a.startsWith('-')) return a
  }
  return undefined
}

/**
 * Builds the command tree. Given the arguments, only the command they name is built, with its
 * options (every run pays for building the tree, some 5 ms for all of them); without a known
 * command (help, a typo, none) every command is, so help and the suggestions see them all.
 */
export function buildProgram(argv?: readonly string[]): Command {
  const program = new Command('ocikit')
    .description('Build, change, store, move and check OCI container images, with no Docker daemon.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--debug', 'on error, print the stack and the chain of causes')
    .option('--ca-file <pem>', 'trust only these CA certificates for registry HTTPS (HTTPS is then used for every host, loopback too)')
    .option(
      '--insecure <host>',
      'reach this registry host over plain HTTP (repeatable; localhost, 127.0.0.1 and [::1] always are)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .addOption(
      new Option('--timeout <seconds>', 'give up on (and retry) a registry request that moves less than 1 KiB in this long while waiting on the network')
        .default(30)
        .argParser(positiveSeconds('--timeout')),
    )
    .option('--key-file <file>', 'the 32-byte key of encrypted bfc: files (else the password: $OCIKIT_BFC_PASSWORD, or asked for on a terminal)')
    .option('--bfc-password-stdin', 'read the password of encrypted bfc: files from the first line of standard input')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', NAMES)
    .configureOutput({ outputError: (s, write) => write(`ocikit: ${s.replace(/^error: /, 'error: ')}`) })
  const named = argv && commandIn(argv)
  const only = COMMANDS.find(([names]) => named !== undefined && names.includes(named))
  for (const [, register] of only ? [only] : COMMANDS) register(program)
  for (const c of program.commands) c.showHelpAfterError(`(run 'ocikit ${c.name()} --help' for usage)`)
  return program
}
