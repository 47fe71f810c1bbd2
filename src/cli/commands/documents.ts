import type { Command } from 'commander'
import { read, readImage } from '../../api.ts'
import type { Platform } from '../../documents/schemas.ts'
import { platformOption, storeOptions } from '../options.ts'

export function register(program: Command): void {
  program
    .command('manifest')
    .description('print the manifest (or index) exactly as stored')
    .argument('<name>', 'image name')
    .addOption(platformOption("print the manifest of this platform's image when NAME is an index (default: the index itself)"))
    .action(async (name: string, o: { platform?: Platform }) => {
      const x = await read(name, { platform: o.platform, ...storeOptions(program) })
      process.stdout.write(await x.rawManifest())
      process.stdout.write('\n')
    })
  program
    .command('config')
    .description('print the image config exactly as stored')
    .argument('<name>', 'image name')
    .addOption(platformOption())
    .action(async (name: string, o: { platform?: Platform }) => {
      process.stdout.write(await (await readImage(name, { platform: o.platform, ...storeOptions(program) })).rawConfig())
      process.stdout.write('\n')
    })
  program
    .command('digest')
    .description('print the digest of the manifest (or index) a name refers to')
    .argument('<name>', 'image name')
    .addOption(platformOption("print the digest of this platform's image when NAME is an index (default: the index digest)"))
    .action(async (name: string, o: { platform?: Platform }) => {
      process.stdout.write(`${await (await read(name, { platform: o.platform, ...storeOptions(program) })).digest()}\n`)
    })
}
