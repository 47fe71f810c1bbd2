import { type Command, Option } from 'commander'
import { readImage, write } from '../../api.ts'
import type { Platform } from '../../documents/schemas.ts'
import { AbortedError } from '../../errors.ts'
import { appendLayers, type ConfigEdit, editConfig, scratch } from '../../image/mutate.ts'
import { currentPlatform } from '../../image/platform.ts'
import { layerFromDirectory } from '../../layer/encode.ts'
import { argvOption, collect, jsonOption, platformOption, registryOptions } from '../options.ts'
import { printJson } from '../output.ts'
import { transferDisplay } from '../progress.ts'
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
    const display = transferDisplay(!o.quiet && !o.json && process.stderr.isTTY === true)
    const ac = new AbortController()
    const interrupt = () => {
      process.stderr.write('\nocikit: interrupted; stopping (no tag is written for a partial write)\n')
      ac.abort()
    }
    process.once('SIGINT', interrupt)
    const start =
      base === 'scratch' ? scratch(o.platform ?? currentPlatform()) : await readImage(base, { platform: o.platform, registry: registryOptions(program) })
    const layers = o.dir.map((d) =>
      layerFromDirectory(d, {
        ...encodeOptions(o),
        prefix: o.prefix,
        uid: o.chown?.uid,
        gid: o.chown?.gid,
        keepOwners: o.keepOwners,
        ignoreFile: o.ignoreFile === false ? false : o.ignoreFile,
        xattrs: o.xattrs,
        onProgress: display.packing(d),
        signal: ac.signal,
      }),
    )
    let written = 0
    let skipped = 0
    try {
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
      const d = await write(dst, img, {
        registry: registryOptions(program),
        signal: ac.signal,
        onProgress: display.onProgress,
        onBlob: (b) => {
          display.onBlob(b)
          if (b.existed) skipped++
          else written++
        },
      })
      display.stop() // before the result, so that it stays the last line on screen
      if (o.json) printJson(d)
      else process.stdout.write(`${dst} ${d.digest} (${written} blob(s) written, ${skipped} already there)\n`)
    } catch (e) {
      if (ac.signal.aborted) throw new AbortedError(`append to ${dst}`, { cause: e })
      throw e
    } finally {
      display.stop()
      process.off('SIGINT', interrupt)
      await Promise.all(layers.map((l) => l.dispose()))
    }
  })
}
