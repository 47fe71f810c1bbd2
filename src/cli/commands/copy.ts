import { type Command, Option } from 'commander'
import { copy } from '../../api.ts'
import { copyTags } from '../../copy.ts'
import type { Platform } from '../../documents/schemas.ts'
import { OcikitError } from '../../errors.ts'
import { jsonOption, platformOption, storeOptions } from '../options.ts'
import { printable, printNotice } from '../output.ts'
import { runTransfer } from '../transfer.ts'

export function register(program: Command): void {
  program
    .command('copy')
    .description('copy an image or a whole index from one store to another; digests stay identical')
    .argument('<src>', 'source name, e.g. oci:./a:v1 or localhost:5000/app:v1')
    .argument('<dst>', 'destination name, e.g. oci:./b:v1 or ghcr.io/me/app:v1')
    .addOption(platformOption('copy only the image for this platform out of an index'))
    .option('--all-platforms', 'copy every platform of an index (the default when --platform is not given)')
    .option('--all-tags', 'copy every tag of a store (oci:DIR, oci-archive:FILE, bfc:FILE, named without a tag) under the same tags')
    .addOption(new Option('--format <format>', 'convert the manifest format (default: keep)').choices(['oci', 'docker']))
    .addOption(new Option('--compression <kind>', 'recompress layers (default: keep; same diffIDs)').choices(['gzip', 'zstd']))
    .option('--encrypt', 'a new bfc: destination is encrypted (password from $OCIKIT_BFC_PASSWORD or a prompt, or the global --key-file)')
    .option('--compress', 'zstd-compress the documents (manifests, configs, index.json) written into a bfc: destination')
    .option('-q, --quiet', 'print nothing but errors')
    .addOption(jsonOption())
    .addHelpText('after', '\nCtrl-C stops cleanly: the destination tag is written last, so it never names an image whose blobs are not all there.')
    .action(
      async (
        src: string,
        dst: string,
        o: {
          platform?: Platform
          allPlatforms?: boolean
          quiet?: boolean
          json?: boolean
          format?: 'oci' | 'docker'
          compression?: 'gzip' | 'zstd'
          encrypt?: boolean
          compress?: boolean
          allTags?: boolean
        },
      ) => {
        if (o.platform && o.allPlatforms) throw new OcikitError('INVALID_ARGUMENT', '--platform and --all-platforms exclude each other')
        if (o.allTags) {
          const copied = await copyTags(src, dst, {
            platform: o.platform,
            format: o.format,
            compression: o.compression,
            ...storeOptions(program, o),
            onNotice: printNotice,
          })
          if (o.json) process.stdout.write(`${JSON.stringify(copied, null, 2)}\n`)
          else if (!o.quiet) for (const c of copied) process.stdout.write(`${printable(dst)}:${printable(c.tag)} ${c.descriptor.digest}\n`)
          return
        }
        await runTransfer(`copy ${src} to ${dst}`, dst, o, async (io) => ({
          descriptor: await copy(src, dst, {
            platform: o.platform,
            format: o.format,
            compression: o.compression,
            ...storeOptions(program, o),
            onNotice: printNotice,
            signal: io.signal,
            onProgress: io.onProgress,
            onBlob: io.onBlob,
          }),
        }))
      },
    )
}
