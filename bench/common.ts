/** What every benchmark shares: where things are, whether a peer is installed, the median. */
import fs from 'node:fs'
import path from 'node:path'

/** The project's root, its scratch directory for benchmarks (ignored by git), and the installed CLI. */
export const root = path.resolve(import.meta.dirname, '..')
export const work = path.join(root, '.bench')
export const cli = path.join(root, 'bin/ocikit.js')

/** Whether `bin` is on PATH. */
export const has = (bin: string): boolean => (process.env.PATH ?? '').split(':').some((d) => fs.existsSync(path.join(d, bin)))

/** Whether /usr/bin/time is there, for peak memory. */
export const hasTime = fs.existsSync('/usr/bin/time')

/** The median (the upper one of an even count). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
