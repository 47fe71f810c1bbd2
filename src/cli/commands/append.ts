import { type Command, Option } from 'commander'
import { readImage, write } from '../../api.ts'
import type { Platform } from '../../documents/schemas.ts'
import { appendLayers, type ConfigEdit, editConfig, scratch } from '../../image/mutate.ts'
import { currentPlatform } from '../../image/platform.ts'
import { type EntriesLayer, layerFromDirectory } from '../../layer/encode.ts'
import { argvOption, collect, jsonOption, platformOption, storeOptions } from '../options.ts'
import { runTransfer } from '../transfer.ts'
import { addLayerOptions, encodeOptions, type LayerCliOptions } from './layer.ts'

interface AppendCli extends LayerCliOptions {
  dir: string[]
  platform?: Platform
  entrypoint?: string[]
  cmd?: string[]
  env?: string[]
  workdir?: string
  user?: string
  port?: string[]
  label?: string[]
  json?: boolean
}

export function register(program: Command): void {
  addLayerOptions(
    program
      .command('append')
      .description('add directories as layers on top of a base image (or scratch), set the config, and write the result')
      .argument('<base>', "base image name, or 'scratch' for an empty image")
      .argument('<dst>', 'where to write the new image, e.g. oci:./out:v1')
      .addOption(new Option('--dir <dir>', 'directory to add as one layer (repeat for several layers)').argParser(collect).makeOptionMandatory())
      .addOption(platformOption('platform of a scratch image, or the one to pick from a multi-platform base (default: this machine)'))
      .addOption(argvOption('--entrypoint <argv>', 'entrypoint: one word, or a JSON array'))
      .addOption(argvOption('--cmd <argv>', 'command: one word, or a JSON array'))
      .addOption(new Option('--env <KEY=VALUE>', 'environment variable (repeatable)').argParser(collect))
      .option('--workdir <dir>', 'working directory')
      .option('--user <user>', 'user[:group] the container runs as')
      .addOption(new Option('--port <port>', 'exposed port, e.g. 8080 or 53/udp (repeatable)').argParser(collect))
      .addOption(new Option('--label <KEY=VALUE>', 'label (repeatable)').argParser(collect))
      .addOption(jsonOption()),
  ).action(async (base: string, dst: string, o: AppendCli) => {
    const start = base === 'scratch' ? scratch(o.platform ?? currentPlatform()) : await readImage(base, { platform: o.platform, ...storeOptions(program) })
    const layers: EntriesLayer[] = []
    try {
      // -q means no progress display here; the result line is printed all the same.
      await runTransfer(`append to ${dst}`, dst, { json: o.json, quiet: false }, async (io) => {
        for (const d of o.dir) {
          layers.push(
            layerFromDirectory(d, {
              ...encodeOptions(o),
              prefix: o.prefix,
              uid: o.chown?.uid,
              gid: o.chown?.gid,
              keepOwners: o.keepOwners,
              ignoreFile: o.ignoreFile === false ? false : o.ignoreFile,
              xattrs: o.xattrs,
              onProgress: o.quiet ? undefined : io.packing(d),
              signal: io.signal,
            }),
          )
        }
        let img = await appendLayers(start, layers, {
          timestamp: o.timestamp,
          history: { created_by: `ocikit append${o.prefix ? ` --prefix ${o.prefix}` : ''}` },
        })
        const edit: ConfigEdit = {
          entrypoint: o.entrypoint,
          cmd: o.cmd,
          env: o.env,
          workingDir: o.workdir,
          user: o.user,
          exposedPorts: o.port,
          labels: o.label,
        }
        if (Object.values(edit).some((v) => v !== undefined)) img = await editConfig(img, edit, { timestamp: o.timestamp })
        const write_ = { ...storeOptions(program), signal: io.signal, onBlob: io.onBlob, ...(o.quiet ? {} : { onProgress: io.onProgress }) }
        return { descriptor: await write(dst, img, write_) }
      })
    } finally {
      await Promise.all(layers.map((l) => l.dispose()))
    }
  })
}
