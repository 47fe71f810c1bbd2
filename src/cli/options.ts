/** Options shared by several commands. */
import { Option } from 'commander'
import { parsePlatform } from '../image/platform.ts'
import type { Platform } from '../spec/schemas.ts'

/** `--platform os/arch[/variant]`, parsed. */
export function platformOption(what = 'pick this platform from a multi-platform index (default: this machine, linux/<arch>)'): Option {
  return new Option('--platform <os/arch[/variant]>', what).argParser((v): Platform => parsePlatform(v))
}

/** `--json`. */
export function jsonOption(): Option {
  return new Option('--json', 'print machine-readable JSON')
}
