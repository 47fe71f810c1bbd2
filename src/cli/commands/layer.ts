import { type Command, Option } from 'commander'
import { OcikitError } from '../../errors.ts'
import { type EncodeOptions, type LayerInfo, writeLayerFile } from '../../layer/encode.ts'
import { listLayerFile } from '../../layer/read.ts'
import { diffEntries } from '../../layer/source-diff.ts'
import { directoryEntries } from '../../layer/source-directory.ts'
import { jsonOption } from '../options.ts'
import { humanSize, printable, printJson, printNotice } from '../output.ts'
import { progressLine } from '../progress.ts'

/** Options shared by the commands that make layers. */
export interface LayerCliOptions {
  prefix?: string
  compression: 'gzip' | 'zstd' | 'none'
  level?: number
  threads?: number
  timestamp?: string
  chown?: { uid: number; gid: number }
  keepOwners?: boolean
  ignoreFile?: string | false
  xattrs?: boolean
  quiet?: boolean
}

function parseChown(v: string): { uid: number; gid: number } {
  const m = /^(\d+):(\d+)$/.exec(v)
  if (!m) throw new OcikitError('INVALID_ARGUMENT', `--chown takes numeric UID:GID, got '${v}'`)
  return { uid: Number(m[1]), gid: Number(m[2]) }
}

/** Adds the options that say how a layer is made. */
export function addLayerOptions(c: Command): Command {
  return c
    .option('--prefix <path>', 'where the content goes in the image, e.g. /app (default: /)')
    .addOption(new Option('--compression <kind>', 'layer compression').choices(['gzip', 'zstd', 'none']).default('gzip'))
    .addOption(new Option('--level <n>', 'compression level (gzip 1-9, default 4; zstd 1-19, default 3)').argParser((v) => Number(v)))
    .addOption(
      new Option('--threads <n>', 'blocks compressed at once (default: cores + 1); the output is the same for any number').argParser((v) => {
        const n = Number(v)
        if (!Number.isInteger(n) || n < 1) throw new OcikitError('INVALID_ARGUMENT', `--threads takes a whole number of at least 1, got '${v}'`)
        return n
      }),
    )
    .option('--timestamp <time>', 'time stamped on every entry: seconds since the epoch or ISO 8601 (default: $SOURCE_DATE_EPOCH, else 1970-01-01)')
    .addOption(new Option('--chown <uid:gid>', 'owner of every entry (default 0:0)').argParser(parseChown).conflicts('keepOwners'))
    .option('--keep-owners', "keep each file's own numeric owner (for a root filesystem; default: 0:0, for application layers)")
    .option('--ignore-file <file>', 'ignore rules in .dockerignore syntax (default: DIR/.ociignore, else DIR/.dockerignore)')
    .option('--no-ignore-file', 'use no ignore rules')
    .option('--xattrs', 'keep extended attributes (as SCHILY.xattr PAX records; needs the optional fs-xattr module)')
    .option('-q, --quiet', 'no progress display')
}

/** The encode options a layer command's flags say. */
export function encodeOptions(o: LayerCliOptions): EncodeOptions {
  return { compression: o.compression, level: o.level, timestamp: o.timestamp, concurrency: o.threads }
}

function printInfo(info: LayerInfo, file: string, json: boolean | undefined): void {
  if (json) {
    printJson({ file, ...info })
    return
  }
  process.stdout.write(
    [
      `file:         ${file}`,
      `media type:   ${info.mediaType}`,
      `digest:       ${info.digest}`,
      `diffID:       ${info.diffId}`,
      `size:         ${info.size} (${humanSize(info.size)}); uncompressed ${info.uncompressedSize} (${humanSize(info.uncompressedSize)})`,
      `entries:      ${info.entries}`,
      '',
    ].join('\n'),
  )
}

const notice = printNotice

export function register(program: Command): void {
  const layer = program.command('layer').description('make and list layer files (deterministic tar, gzip/zstd/none)')
  addLayerOptions(
    layer
      .command('create')
      .description('pack a directory as a layer file; prints digest, diffID and size')
      .argument('<dir>', 'directory to pack')
      .requiredOption('-o, --output <file>', 'layer file to write'),
  )
    .addOption(jsonOption())
    .action(async (dir: string, o: LayerCliOptions & { output: string; json?: boolean }) => {
      const p = progressLine('packing', o.quiet)
      let info: LayerInfo
      try {
        const entries = directoryEntries(dir, {
          prefix: o.prefix,
          uid: o.chown?.uid,
          gid: o.chown?.gid,
          keepOwners: o.keepOwners,
          ignoreFile: o.ignoreFile === false ? false : o.ignoreFile,
          xattrs: o.xattrs,
          onNotice: notice,
        })
        info = await writeLayerFile(entries, o.output, { ...encodeOptions(o), onProgress: p.onProgress })
      } finally {
        p.stop() // before the result: stopping clears the progress line
      }
      printInfo(info, o.output, o.json)
    })
  addLayerOptions(
    layer
      .command('diff')
      .description('pack what changed from OLD to NEW as a layer file, with whiteouts for deletions')
      .argument('<old>', 'the tree before')
      .argument('<new>', 'the tree after')
      .requiredOption('-o, --output <file>', 'layer file to write'),
  )
    .option('--skip-empty', 'write no file when nothing changed')
    .addOption(jsonOption())
    .action(async (oldDir: string, newDir: string, o: LayerCliOptions & { output: string; json?: boolean; skipEmpty?: boolean }) => {
      const p = progressLine('diffing', o.quiet)
      let info: LayerInfo
      try {
        const entries = diffEntries(oldDir, newDir, {
          prefix: o.prefix,
          uid: o.chown?.uid,
          gid: o.chown?.gid,
          keepOwners: o.keepOwners,
          xattrs: o.xattrs,
          onNotice: notice,
        })
        const collected = []
        for await (const e of entries) collected.push(e)
        if (collected.length === 0 && o.skipEmpty) {
          process.stdout.write(o.json ? `${JSON.stringify({ empty: true, written: false })}\n` : 'no changes: empty layer, nothing written\n')
          return
        }
        info = await writeLayerFile(collected, o.output, { ...encodeOptions(o), onProgress: p.onProgress })
      } finally {
        p.stop()
      }
      if (info.empty && !o.json) process.stderr.write('ocikit: no changes: the layer is empty\n')
      printInfo(info, o.output, o.json)
    })
  layer
    .command('ls')
    .description('list the entries of a layer file (any compression); whiteouts are marked')
    .argument('<file>', 'layer file')
    .addOption(jsonOption())
    .action(async (file: string, o: { json?: boolean }) => {
      const all = []
      for await (const e of listLayerFile(file)) {
        if (o.json) all.push(e)
        else {
          const mark = e.whiteout
            ? e.whiteout.kind === 'opaque'
              ? `  [opaque: hides ${e.whiteout.target}/ below]`
              : `  [whiteout: deletes ${e.whiteout.target}]`
            : ''
          const link = `${e.linkname ? ` -> ${e.linkname}` : ''}${e.xattrs ? `  [xattrs: ${e.xattrs.join(', ')}]` : ''}`
          const mode = e.mode.toString(8).padStart(4, '0')
          process.stdout.write(
            `${printable(`${e.type.padEnd(9)} ${mode} ${`${e.uid}:${e.gid}`.padEnd(9)} ${String(e.size).padStart(10)}  ${e.path}${link}${mark}`)}\n`,
          )
        }
      }
      if (o.json) printJson(all)
    })
}
