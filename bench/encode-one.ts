/**
 * Child process of bench/layer.ts: encodes one layer of a tree with the given options and prints
 * its info as JSON. It runs the built library (dist/), as users do: running the TypeScript
 * source would add Node's type-stripping transpiler to the memory figures.
 */
import { layerFromDirectory } from '../dist/layer/build.js'

const [dir = '', out = '', compression = 'gzip', level, concurrency] = process.argv.slice(2)
const l = layerFromDirectory(dir, {
  compression: compression as 'gzip' | 'zstd' | 'none',
  level: level ? Number(level) : undefined,
  concurrency: concurrency ? Number(concurrency) : undefined,
  stagingDir: out,
})
process.stdout.write(JSON.stringify(await l.info()))
await l.dispose()
