/** Entry point of the `ocikit` command. Exit status: 0 success, 1 failure, 2 usage error. */
import v8 from 'node:v8'
import vm from 'node:vm'
import { CommanderError } from 'commander'
import { setGarbageCollector } from '../memory.ts'
import { reportError } from './output.ts'
import { buildProgram } from './program.ts'

async function run(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride()
  for (const c of program.commands) c.exitOverride()
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

// Full collections every few megabytes streamed keep dead buffers from piling up (src/memory.ts):
// building the bench tree's layer peaks at about 115 MB instead of 150. The flag makes `gc`
// exist in contexts created after it; the one made here only hands the function out.
v8.setFlagsFromString('--expose-gc')
setGarbageCollector(vm.runInNewContext('gc') as () => void)

process.exitCode = await run(process.argv)
