/** Entry point of the `ocikit` command. Exit status: 0 success, 1 failure, 2 usage error. */
import v8 from 'node:v8'
import vm from 'node:vm'
import { type Command, CommanderError } from 'commander'
import { setGarbageCollector } from '../collector.ts'
import { reportError } from './output.ts'
import { buildProgram } from './program.ts'

async function run(argv: string[]): Promise<number> {
  const program = buildProgram(argv)
  // Every level (`layer create` is two deep): commander exits by itself where this is not set.
  const override = (c: Command): void => {
    c.exitOverride()
    for (const sub of c.commands) override(sub)
  }
  override(program)
  try {
    await program.parseAsync(argv)
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are "errors" to commander; they exit 0.
      return e.exitCode === 0 ? 0 : 2
    }
    return reportError(e, argv.includes('--debug'))
  }
}

// Memory, measured with bench/layer.ts (docs/performance.md):
// - a full collection every 32 MiB hashed keeps dead buffers from piling up (src/memory.ts):
//   the bench tree's gzip layer peaks at about 113 MiB instead of 139, at no measurable cost
//   (every 16 MiB gives 105 MiB but costs some 0.1 s in collections). `--expose-gc` makes `gc`
//   exist in contexts created after it; the one made on first use only hands the function out.
// - a young generation that does not grow: on the 2 GiB tree V8 otherwise grows it to 64 MiB
//   (peak 146 -> 117 MiB, and no slower). Both flags are safe to set after start-up.
v8.setFlagsFromString('--expose-gc')
v8.setFlagsFromString('--semi-space-growth-factor=1')
let gc: (() => void) | undefined
setGarbageCollector(() => {
  gc ??= vm.runInNewContext('gc') as () => void
  gc()
})

// A reader that goes away early (`ocikit manifest X | head -c 100`) ends the command quietly,
// as it would a C tool killed by SIGPIPE, instead of with an EPIPE stack trace.
for (const out of [process.stdout, process.stderr]) {
  out.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
    throw e
  })
}

// Not a top-level await: the single executable's bundle is CommonJS.
void run(process.argv).then((code) => {
  process.exitCode = code
})
