import type { Command } from 'commander'
import { catalog, deleteImage, login, logout, referrers } from '../../api.ts'
import { OcikitError } from '../../errors.ts'
import { jsonOption, storeOptions } from '../options.ts'
import { printList } from '../output.ts'

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
}

export function register(program: Command): void {
  program
    .command('referrers')
    .description('list the artifacts (signatures, SBOMs...) that refer to an image in a registry')
    .argument('<name>', 'e.g. localhost:5000/app:v1')
    .option('--artifact-type <type>', 'only this artifact type')
    .addOption(jsonOption())
    .action(async (name: string, o: { artifactType?: string; json?: boolean }) => {
      const list = await referrers(name, { artifactType: o.artifactType, ...storeOptions(program) })
      printList(list, o.json, (d) => `${d.digest}  ${d.artifactType ?? d.mediaType}`)
    })
  program
    .command('catalog')
    .description('list the repositories of a registry (if it allows listing)')
    .argument('<host>', 'e.g. localhost:5000')
    .addOption(jsonOption())
    .action(async (host: string, o: { json?: boolean }) => {
      printList(await catalog(host, { ...storeOptions(program) }), o.json, (r) => r)
    })
  program
    .command('delete')
    .description('delete a manifest from a registry (a tag is resolved to its digest; every tag on it goes)')
    .argument('<name>', 'e.g. localhost:5000/app:old or localhost:5000/app@sha256:...')
    .action(async (name: string) => {
      const d = await deleteImage(name, { ...storeOptions(program) })
      process.stdout.write(`deleted ${d}\n`)
    })
  program
    .command('login')
    .description('check credentials against a registry and save them in the docker config file')
    .argument('<host>', 'registry host, e.g. ghcr.io or localhost:5000')
    .requiredOption('-u, --username <user>', 'user name')
    .option('--password-stdin', 'read the password (or token) from standard input')
    .action(async (host: string, o: { username: string; passwordStdin?: boolean }) => {
      if (!o.passwordStdin)
        throw new OcikitError('INVALID_ARGUMENT', 'give the password on standard input with --password-stdin (it never goes on the command line)')
      const password = await readStdin()
      if (!password) throw new OcikitError('INVALID_ARGUMENT', 'no password on standard input')
      const registry = await login(host, { username: o.username, password }, { ...storeOptions(program) })
      process.stdout.write(`login succeeded for ${o.username} at ${registry}\n`)
    })
  program
    .command('logout')
    .description('remove saved credentials for a registry from the docker config file')
    .argument('<host>', 'registry host')
    .action(async (host: string) => {
      const removed = await logout(host)
      process.stdout.write(removed ? `removed credentials for ${host}\n` : `no saved credentials for ${host}\n`)
    })
}
