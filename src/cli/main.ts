/** Entry point of the `ocikit` command. Exit status: 0 success, 1 failure, 2 usage error. */
import { CommanderError } from 'commander'
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

process.exitCode = await run(process.argv)
