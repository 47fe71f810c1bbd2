/** `npm run bench`: every benchmark, one after another. Arguments pass through (e.g. --mb 120 --runs 5 --big). */
import { execFileSync } from 'node:child_process'
import path from 'node:path'

// The benchmarks measure the built library, as users run it.
execFileSync('npm', ['run', '--silent', 'build'], { cwd: path.join(import.meta.dirname, '..'), stdio: 'inherit' })

for (const b of ['startup.ts', 'layer.ts', 'registry.ts', 'archive.ts', 'build.ts', 'bfc.ts']) {
  execFileSync(process.execPath, [path.join(import.meta.dirname, b), ...process.argv.slice(2)], { stdio: 'inherit' })
}
