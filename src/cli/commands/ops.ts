/** The image operations: mutate, rebase, flatten, optimize. Each reads NAME, changes it (every image of an index, or the one --platform names) and writes --to. */
import { type Command, Option } from 'commander'
import { read, readImage, write } from '../../api.ts'
import type { Digest } from '../../digest.ts'
import type { Platform } from '../../documents/schemas.ts'
import { OcikitError } from '../../errors.ts'
import type { Image, ImageOrIndex } from '../../image/types.ts'
import { formatName, parseName } from '../../name/parse.ts'
import { forEachImage } from '../../ops/each.ts'
import { type MutateEdit, mutateImage } from '../../ops/edit.ts'
import { flatten } from '../../ops/flatten.ts'
import { optimize, type RemovedLayer } from '../../ops/optimize.ts'
import { BASE_DIGEST, BASE_NAME, rebase } from '../../ops/rebase.ts'
import { argvOption, collect, jsonOption, platformOption, storeOptions } from '../options.ts'
import { printable } from '../output.ts'
import { runTransfer } from '../transfer.ts'

interface Common {
  to: string
  platform?: Platform
  timestamp?: string
  json?: boolean
}

const toOption = () => new Option('--to <dest>', 'where to write the result, e.g. oci:./out:v2 or localhost:5000/app:v2').makeOptionMandatory()
const timestampOption = () =>
  new Option('--timestamp <time>', 'time of the change: seconds since the epoch or ISO 8601 (default: $SOURCE_DATE_EPOCH, else 1970-01-01)')
const onlyPlatform = () => platformOption('change only the image for this platform of an index (default: every image)')

async function finish(program: Command, o: Common, x: ImageOrIndex, extra: string[] = []): Promise<void> {
  await runTransfer(`writing ${o.to}`, o.to, o, async (io) => ({
    descriptor: await write(o.to, x, { ...storeOptions(program), signal: io.signal, onBlob: io.onBlob, onProgress: io.onProgress }),
    extra: extra.map(printable),
  }))
}

export function register(program: Command): void {
  program
    .command('mutate')
    .description("change an image's config and annotations (every image of an index, or one); the layers stay as they are")
    .argument('<name>', 'the image or index, e.g. oci:./out:v1')
    .addOption(toOption())
    .addOption(new Option('--env <KEY=VALUE>', 'set an environment variable (repeatable)').argParser(collect))
    .addOption(argvOption('--entrypoint <argv>', 'entrypoint: one word, or a JSON array'))
    .addOption(argvOption('--cmd <argv>', 'command: one word, or a JSON array'))
    .option('--workdir <dir>', 'working directory')
    .option('--user <user>', 'user[:group] the container runs as')
    .addOption(new Option('--label <KEY=VALUE>', 'config label (repeatable)').argParser(collect))
    .addOption(new Option('--annotation <KEY=VALUE>', 'manifest annotation (repeatable)').argParser(collect))
    .addOption(new Option('--expose <port>', 'exposed port, e.g. 8080 or 53/udp (repeatable)').argParser(collect))
    .option('--drop-history', "leave the config's history out")
    .addOption(timestampOption())
    .addOption(onlyPlatform())
    .addOption(jsonOption())
    .action(
      async (
        name: string,
        o: Common & {
          env?: string[]
          entrypoint?: string[]
          cmd?: string[]
          workdir?: string
          user?: string
          label?: string[]
          annotation?: string[]
          expose?: string[]
          dropHistory?: boolean
        },
      ) => {
        const edit: MutateEdit = {
          env: o.env,
          entrypoint: o.entrypoint,
          cmd: o.cmd,
          workingDir: o.workdir,
          user: o.user,
          labels: o.label,
          annotations: o.annotation,
          exposedPorts: o.expose,
          dropHistory: o.dropHistory,
          timestamp: o.timestamp,
        }
        if (Object.values(edit).every((v) => v === undefined || v === o.timestamp))
          throw new OcikitError('INVALID_ARGUMENT', 'nothing to change: give --env, --cmd, --label, --annotation...')
        const x = await read(name, { ...storeOptions(program) })
        await finish(program, o, await forEachImage(x, (img) => mutateImage(img, edit), { platform: o.platform, where: name }))
      },
    )

  program
    .command('rebase')
    .description("move an image from its old base to a new one: OLD's layers (its bottom ones) become NEW's; its own layers and config stay")
    .argument('<name>', 'the image or index to rebase')
    .addOption(toOption())
    .option('--old-base <name>', 'the base NAME was built on (default: what its org.opencontainers.image.base.* annotations record)')
    .requiredOption('--new-base <name>', 'the base to move it to')
    .addOption(timestampOption())
    .addOption(onlyPlatform())
    .addOption(jsonOption())
    .action(async (name: string, o: Common & { oldBase?: string; newBase: string }) => {
      const so = storeOptions(program)
      const x = await read(name, so)
      const out = await forEachImage(
        x,
        async (img) => {
          const c = await img.config()
          const platform = { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) }
          const oldName = o.oldBase ?? (await recordedBase(img, name))
          const [oldBase, newBase] = await Promise.all([readImage(oldName, { platform, ...so }), readImage(o.newBase, { platform, ...so })])
          return rebase(img, oldBase, newBase, { newBaseName: o.newBase, timestamp: o.timestamp, names: { image: name, oldBase: oldName } })
        },
        { platform: o.platform, where: name },
      )
      await finish(program, o, out)
    })

  program
    .command('flatten')
    .description('merge every layer of an image into one: the tree unpacking gives, every whiteout applied, hardlinks, modes and owners kept')
    .argument('<name>', 'the image or index to flatten')
    .addOption(toOption())
    .addOption(new Option('--compression <kind>', 'of the one layer').choices(['gzip', 'zstd', 'none']).default('gzip'))
    .addOption(timestampOption())
    .addOption(onlyPlatform())
    .addOption(jsonOption())
    .action(async (name: string, o: Common & { compression: 'gzip' | 'zstd' | 'none' }) => {
      const x = await read(name, { ...storeOptions(program) })
      await finish(
        program,
        o,
        await forEachImage(x, (img) => flatten(img, { compression: o.compression, timestamp: o.timestamp }), { platform: o.platform, where: name }),
      )
    })

  program
    .command('optimize')
    .description(
      'leave out the layers that change nothing: empty ones, and byte-identical repeats that no layer between touches (the unpacked filesystem stays the same)',
    )
    .argument('<name>', 'the image or index to optimize')
    .addOption(toOption())
    .addOption(onlyPlatform())
    .addOption(jsonOption())
    .action(async (name: string, o: Common) => {
      const x = await read(name, { ...storeOptions(program) })
      const removed: { image: string; layer: RemovedLayer }[] = []
      const out = await forEachImage(
        x,
        async (img: Image) => {
          const r = await optimize(img)
          for (const layer of r.removed) removed.push({ image: await img.digest(), layer })
          return r.image
        },
        { platform: o.platform, where: name },
      )
      const lines =
        removed.length === 0 ? ['nothing to remove'] : removed.map((r) => `removed layer ${r.layer.index} (${r.layer.digest}) of ${r.image}: ${r.layer.reason}`)
      await finish(program, o, out, o.json ? [] : lines)
    })
}

/** The old base an image records in its annotations (`org.opencontainers.image.base.name` and `.digest`), as a name to read. */
async function recordedBase(img: Image, name: string): Promise<string> {
  const a = (await img.manifest()).annotations ?? {}
  const base = a[BASE_NAME]
  if (!base) throw new OcikitError('INVALID_ARGUMENT', `${name} records no base (no ${BASE_NAME} annotation); give --old-base`)
  const digest = a[BASE_DIGEST]
  if (!digest) return base
  // The exact manifest it was built on: the same name, by digest instead of tag.
  const n = parseName(base)
  if (n.transport === 'oci') return formatName({ transport: 'oci', path: n.path, digest: digest as Digest })
  if (n.transport === 'registry') return formatName({ transport: 'registry', reference: { ...n.reference, tag: undefined, digest: digest as Digest } })
  return base
}
