import type { Command } from 'commander'
import { copy } from '../../api.ts'
import { OcikitError } from '../../errors.ts'
import type { Platform } from '../../spec/schemas.ts'
import { jsonOption, platformOption, registryOptions } from '../options.ts'
import { printJson } from '../output.ts'

export function register(program: Command): void {
  program
    .command('copy')
    .description('copy an image or a whole index from one store to another; digests stay identical')
    .argument('<src>', 'source name, e.g. oci:./a:v1')
    .argument('<dst>', 'destination name, e.g. oci:./b:v1')
    .addOption(platformOption('copy only the image for this platform out of an index'))
    .option('--all-platforms', 'copy every platform of an index (the default when --platform is not given)')
    .option('-q, --quiet', 'print nothing but errors')
    .addOption(jsonOption())
    .action(async (src: string, dst: string, o: { platform?: Platform; allPlatforms?: boolean; quiet?: boolean; json?: boolean }) => {
      if (o.platform && o.allPlatforms) throw new OcikitError('INVALID_ARGUMENT', '--platform and --all-platforms exclude each other')
      let written = 0
      let skipped = 0
      const d = await copy(src, dst, { platform: o.platform, registry: registryOptions(program), onBlob: (b) => (b.existed ? skipped++ : written++) })
      if (o.json) printJson(d)
      else if (!o.quiet) process.stdout.write(`${dst} ${d.digest} (${written} blob(s) written, ${skipped} already there)\n`)
    })
}
