/**
 * The checksum BFC uses everywhere: CRC32C (Castagnoli) with initial value 0 and no final XOR,
 * which is what BFC's C code computes with the CPU's CRC32C instructions (x86-64 SSE4.2, arm64).
 * It is not the standard CRC-32C (init and final XOR 0xFFFFFFFF); from a library that computes
 * the standard one with a seed, `raw(data, prev) = std(data, seed = prev ^ 0xFFFFFFFF) ^ 0xFFFFFFFF`.
 *
 * @node-rs/crc32 uses those instructions (some 4 GB/s here), so checksumming a layer costs little
 * beside writing it. It is a native addon, loaded on first use: where it cannot load (the single
 * executable, which holds no addons, or a platform without a prebuilt binary) a table-driven
 * CRC in JavaScript does the same sums, some ten times slower. That fallback is the only
 * hand-written CRC here, and only because no pure-JavaScript package offers a seeded CRC32C.
 */
import { createRequire } from 'node:module'

type Native = (input: Buffer, initialState?: number) => number
let native: Native | null | undefined
let table: Uint32Array | undefined

function nativeCrc(): Native | null {
  if (native === undefined) {
    try {
      native = (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: Native }).crc32c
    } catch {
      native = null
    }
  }
  return native
}

/** The reflected CRC32C table (polynomial 0x82F63B78). */
function crcTable(): Uint32Array {
  if (!table) {
    table = new Uint32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1
      table[n] = c >>> 0
    }
  }
  return table
}

/** BFC's CRC32C in JavaScript, for where the native addon is missing. */
export function bfcCrcJs(data: Uint8Array, prev = 0): number {
  const t = crcTable()
  let c = prev >>> 0
  for (let i = 0; i < data.length; i++) c = (t[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return c >>> 0
}

/** BFC's CRC32C of `data`, continuing from `prev` (the value of what came before; 0 to start). */
export function bfcCrc(data: Uint8Array, prev = 0): number {
  const f = nativeCrc()
  if (!f) return bfcCrcJs(data, prev)
  return (f(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength), (prev ^ 0xffffffff) >>> 0) ^ 0xffffffff) >>> 0
}
