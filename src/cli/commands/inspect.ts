import type { Command } from 'commander'
import { read } from '../../api.ts'
import type { Platform } from '../../documents/schemas.ts'
import { type ImageFacts, type IndexFacts, inspectView } from '../../inspect.ts'
import { jsonOption, platformOption, storeOptions } from '../options.ts'
import { humanSize, printable, printJson } from '../output.ts'

function printFacts(name: string, f: ImageFacts | IndexFacts): void {
  const out: string[] = []
  // A row without a key continues the one above it (more Env entries, more Labels).
  const row = (k: string, v: string | undefined) => v !== undefined && v !== '' && out.push(`${(k ? `${k}:` : '').padEnd(13)}${v}`)
  row('Name', name)
  row('Media type', f.mediaType)
  row('Digest', f.digest)
  if (f.kind === 'index') {
    out.push(`Manifests (${f.manifests.length}):`)
    for (const m of f.manifests) out.push(`  ${(m.platform ?? m.artifactType ?? '-').padEnd(18)} ${m.digest}  ${humanSize(m.size).padStart(9)}`)
  } else {
    const c = f.config
    row('Platform', f.platform)
    row('Artifact', f.artifactType)
    row('Created', f.created)
    row('Author', f.author)
    row('User', c.user)
    row('WorkingDir', c.workingDir)
    row('Entrypoint', c.entrypoint ? JSON.stringify(c.entrypoint) : undefined)
    row('Cmd', c.cmd ? JSON.stringify(c.cmd) : undefined)
    row('Ports', c.exposedPorts.join(', '))
    for (const [i, e] of c.env.entries()) row(i === 0 ? 'Env' : '', e)
    for (const [i, [k, v]] of Object.entries(c.labels).entries()) row(i === 0 ? 'Labels' : '', `${k}=${v}`)
    out.push(`Layers (${f.layers.length}, ${humanSize(f.layersSize)}):`)
    for (const l of f.layers) out.push(`  ${l.digest}  ${humanSize(l.size).padStart(9)}  ${l.mediaType}`)
  }
  process.stdout.write(`${out.map(printable).join('\n')}\n`)
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description('summarise an image, artifact or index: media type, digest, platform(s) or artifact type, layers, config essentials')
    .argument('<name>', 'image name, e.g. oci:./out:v1')
    .addOption(platformOption('show the image for this platform when NAME is an index (default: show the index)'))
    .addOption(jsonOption())
    .action(async (name: string, o: { platform?: Platform; json?: boolean }) => {
      const facts = await inspectView(await read(name, { platform: o.platform, ...storeOptions(program) }))
      if (o.json) printJson({ name, ...facts })
      else printFacts(name, facts)
    })
}
