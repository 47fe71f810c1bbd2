import { pipeline } from 'node:stream/promises'
import type { Command } from 'commander'
import { readImage } from '../../api.ts'
import type { Platform } from '../../documents/schemas.ts'
import { unpackImage } from '../../layer/apply.ts'
import { exportImage } from '../../layer/export.ts'
import { writeFileVia } from '../../temp-file.ts'
import { platformOption, storeOptions } from '../options.ts'
import { humanSize, printNotice } from '../output.ts'

const notice = printNotice

export function register(program: Command): void {
  program
    .command('unpack')
    .description('apply every layer of an image, in order, into a root filesystem directory (new or empty)')
    .argument('<name>', 'image name, e.g. oci:./out:v1')
    .argument('<dir>', 'directory to unpack into')
    .addOption(platformOption())
    .option('--max-ratio <n>', 'stop a layer that expands more than N times its compressed size (default 250)', Number)
    .option('--keep-partial', 'when a layer fails, keep what was unpacked so far (default: remove it)')
    .action(async (name: string, dir: string, o: { platform?: Platform; maxRatio?: number; keepPartial?: boolean }) => {
      const img = await readImage(name, { platform: o.platform, ...storeOptions(program) })
      const s = await unpackImage(img, dir, { onNotice: notice, maxRatio: o.maxRatio, name, keepPartial: o.keepPartial })
      process.stdout.write(
        `unpacked ${s.entries} entries (${humanSize(s.bytes)}, ${s.whiteouts} whiteouts${s.skipped ? `, ${s.skipped} skipped` : ''}) into ${dir}\n`,
      )
    })
  program
    .command('export')
    .description("write an image's merged filesystem (all layers applied) as one uncompressed tar")
    .argument('<name>', 'image name')
    .requiredOption('-o, --output <file>', "tar file to write ('-' for standard output)")
    .addOption(platformOption())
    .action(async (name: string, o: { output: string; platform?: Platform }) => {
      const img = await readImage(name, { platform: o.platform, ...storeOptions(program) })
      if (o.output === '-') return pipeline(exportImage(img), process.stdout)
      await writeFileVia(o.output, (stream) => pipeline(exportImage(img), stream))
    })
}
