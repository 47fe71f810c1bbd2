/** The commands about tags and entries: `ls` (a store's entries), `tags` (a registry repository's tags), `tag`, `untag`. */
import type { Command } from 'commander'
import { list, listTags, tag, untag } from '../../api.ts'
import { jsonOption, storeOptions } from '../options.ts'
import { printList } from '../output.ts'

export function register(program: Command): void {
  program
    .command('ls')
    .description('list the images of a store: tag, digest, media type')
    .argument('<store>', 'e.g. oci:./layout')
    .addOption(jsonOption())
    .action(async (store: string, o: { json?: boolean }) => {
      printList(await list(store, storeOptions(program)), o.json, (e) => `${(e.tag ?? '<none>').padEnd(20)} ${e.descriptor.digest}  ${e.descriptor.mediaType}`)
    })
  program
    .command('tags')
    .description('list the tags of a registry repository')
    .argument('<repository>', 'e.g. localhost:5000/app')
    .addOption(jsonOption())
    .action(async (repo: string, o: { json?: boolean }) => {
      printList(await listTags(repo, { ...storeOptions(program) }), o.json, (t) => t)
    })
  program
    .command('tag')
    .description('give the image NAME refers to another tag in the same store (moves the tag if another image holds it)')
    .argument('<name>', 'existing image, e.g. oci:./layout:v1 or oci:./layout@sha256:...')
    .argument('<new-tag>', 'the new tag, e.g. latest')
    .action(async (name: string, newTag: string) => {
      const d = await tag(name, newTag, { ...storeOptions(program) })
      process.stdout.write(`${newTag} -> ${d.digest}\n`)
    })
  program
    .command('untag')
    .description('remove a tag from a store; the blobs stay until gc')
    .argument('<name>', 'tagged image, e.g. oci:./layout:old')
    .action(async (name: string) => {
      const d = await untag(name, storeOptions(program))
      process.stdout.write(`untagged ${name} (was ${d.digest})\n`)
    })
}
