import { type Command, Option } from 'commander'
import { copy } from '../../api.ts'
import type { Platform } from '../../documents/schemas.ts'
import { AbortedError, OcikitError } from '../../errors.ts'
import { jsonOption, platformOption, registryOptions } from '../options.ts'
import { printJson, printNotice } from '../output.ts'
import { transferDisplay } from '../progress.ts'

export function register(program: Command): void {
  program
    .command('copy')
    .description('copy an image or a whole index from one store to another; digests stay identical')
    .argument('<src>', 'source name, e.g. oci:./a:v1 or localhost:5000/app:v1')
    .argument('<dst>', 'destination name, e.g. oci:./b:v1 or ghcr.io/me/app:v1')
    .addOption(platformOption('copy only the image for this platform out of an index'))
    .option('--all-platforms', 'copy every platform of an index (the default when --platform is not given)')
    .addOption(new Option('--format <format>', 'convert the manifest format (default: keep)').choices(['oci', 'docker']))
    .addOption(new Option('--compression <kind>', 'recompress layers (default: keep; same diffIDs)').choices(['gzip', 'zstd']))
    .option('-q, --quiet', 'print nothing but errors')
    .addOption(jsonOption())
    .addHelpText('after', '\nCtrl-C stops cleanly: the destination tag is written last, so it never names an image whose blobs are not all there.')
    .action(
      async (
        src: string,
        dst: string,
        o: { platform?: Platform; allPlatforms?: boolean; quiet?: boolean; json?: boolean; format?: 'oci' | 'docker'; compression?: 'gzip' | 'zstd' },
      ) => {
        if (o.platform && o.allPlatforms) throw new OcikitError('INVALID_ARGUMENT', '--platform and --all-platforms exclude each other')
        let written = 0
        let skipped = 0
        const ac = new AbortController()
        const stop = () => {
          process.stderr.write('\nocikit: interrupted; stopping (no tag is written for a partial copy)\n')
          ac.abort()
        }
        process.once('SIGINT', stop)
        const bars = transferDisplay(!o.quiet && !o.json && process.stderr.isTTY === true)
        try {
          const d = await copy(src, dst, {
            platform: o.platform,
            format: o.format,
            compression: o.compression,
            registry: registryOptions(program),
            onNotice: printNotice,
            signal: ac.signal,
            onProgress: bars.onProgress,
            onBlob: (b) => {
              bars.onBlob(b)
              if (b.existed) skipped++
              else written++
            },
          })
          bars.stop()
          if (o.json) printJson(d)
          else if (!o.quiet) process.stdout.write(`${dst} ${d.digest} (${written} blob(s) written, ${skipped} already there)\n`)
        } catch (e) {
          if (ac.signal.aborted) throw new AbortedError(`copy ${src} to ${dst}`, { cause: e })
          throw e
        } finally {
          bars.stop()
          process.off('SIGINT', stop)
        }
      },
    )
}
