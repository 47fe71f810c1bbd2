import { type Command, Option } from 'commander'
import { fsck, gc } from '../../api.ts'
import { OcikitError } from '../../errors.ts'
import { jsonOption, storeOptions } from '../options.ts'
import { humanSize, printable, printJson } from '../output.ts'

/** Parses `90s`, `10m`, `2h`, `0` into milliseconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v)
  if (!m) throw new OcikitError('INVALID_ARGUMENT', `invalid duration '${v}': use e.g. 0, 90s, 10m, 2h`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms']
  return Number(m[1]) * unit
}

export function register(program: Command): void {
  program
    .command('fsck')
    .description('check a store: walk index → manifests → configs → layers, re-hash every reachable blob once')
    .argument('<store>', 'e.g. oci:./layout (or oci:./layout:TAG to check one image... all of the layout is checked)')
    .addOption(jsonOption())
    .addHelpText('after', '\nExit status: 0 when clean, 1 when a problem was found or the check could not run.')
    .action(async (store: string, o: { json?: boolean }) => {
      const r = await fsck(store, storeOptions(program))
      if (o.json) printJson(r)
      else {
        for (const p of r.problems) process.stdout.write(`${printable(`${p.kind.toUpperCase()}: ${p.via}: ${p.digest}: ${p.message}`)}\n`)
        for (const f of r.foreignMissing) process.stdout.write(`note: non-distributable layer not stored (allowed): ${printable(f.via)}: ${f.digest}\n`)
        for (const n of r.notes ?? []) process.stdout.write(`note: ${printable(n)}\n`)
        const verdict = r.ok ? 'clean' : `${r.problems.length} problem(s)`
        process.stdout.write(`${store}: ${verdict}; ${r.reachable} blobs reachable, ${r.hashed} re-hashed\n`)
      }
      if (!r.ok) process.exitCode = 1
    })
  program
    .command('gc')
    .description('delete blobs that no tag or index entry reaches')
    .argument('<store>', 'an OCI layout, oci:DIR, or a BFC file, bfc:FILE (rewritten without unreachable blobs and dead bytes)')
    .option('--dry-run', 'list what would be deleted, delete nothing')
    .addOption(
      new Option('--grace <duration>', 'keep unreferenced blobs younger than this: another process may still be writing them (0 to delete all)')
        .default(600_000, '10m')
        .argParser(parseDuration),
    )
    .addOption(jsonOption())
    .action(async (layout: string, o: { dryRun?: boolean; grace: number; json?: boolean }) => {
      const r = await gc(layout, { dryRun: o.dryRun, graceMs: o.grace, ...storeOptions(program) })
      if (o.json) {
        printJson(r)
        return
      }
      const verb = r.dryRun ? 'would delete' : 'deleted'
      for (const b of r.removed) process.stdout.write(`${verb} ${b.digest} (${humanSize(b.size)})\n`)
      process.stdout.write(`${verb} ${r.removed.length} blob(s), ${humanSize(r.bytes)}`)
      if (r.tempsRemoved) process.stdout.write(`, ${r.tempsRemoved} abandoned temp file(s)`)
      process.stdout.write('\n')
      if (r.keptRecent) {
        process.stdout.write(
          `kept ${r.keptRecent} unreferenced blob(s): younger than the grace period, which protects writes running beside gc; --grace 0 to delete them now\n`,
        )
      }
    })
}
