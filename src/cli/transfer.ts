/**
 * How the CLI runs a write: the progress display on a terminal, Ctrl-C stopping it cleanly
 * (the tag is written last, so none names a partial image), the blobs counted, and the result
 * line printed once the display has stopped, so that it is the last thing on screen.
 */
import type { Descriptor } from '../documents/schemas.ts'
import { AbortedError } from '../errors.ts'
import type { Progress } from '../image/types.ts'
import type { BlobEvent } from '../stores/types.ts'
import { printJson } from './output.ts'
import { transferDisplay } from './progress.ts'

/** What a write gets from {@link runTransfer}. */
export interface TransferIo {
  readonly signal: AbortSignal
  readonly onProgress?: ((p: Progress) => void) | undefined
  readonly onBlob: (b: BlobEvent) => void
  /** A progress callback for packing a layer, shown as `packing LABEL`. */
  readonly packing: (label: string) => ((p: Progress) => void) | undefined
}

/**
 * Runs `work` (which writes `dst` and returns its descriptor) and prints
 * `DST DIGEST (N blob(s) written, M already there)`, or the descriptor with `--json`; with
 * `quiet`, no display and no line. `what` names the work in the error after a Ctrl-C; `extra`
 * lines (what an operation did) go before the result line.
 */
export async function runTransfer(
  what: string,
  dst: string,
  o: { quiet?: boolean | undefined; json?: boolean | undefined },
  work: (io: TransferIo) => Promise<{ descriptor: Descriptor; extra?: readonly string[] }>,
): Promise<void> {
  const display = transferDisplay(!o.quiet && !o.json && process.stderr.isTTY === true)
  const ac = new AbortController()
  const interrupt = () => {
    process.stderr.write('\nocikit: interrupted; stopping (no tag is written for a partial write)\n')
    ac.abort()
  }
  process.once('SIGINT', interrupt)
  let written = 0
  let skipped = 0
  try {
    const { descriptor: d, extra = [] } = await work({
      signal: ac.signal,
      onProgress: display.onProgress,
      packing: display.packing,
      onBlob: (b) => {
        display.onBlob(b)
        if (b.existed) skipped++
        else written++
      },
    })
    display.stop() // before the result, so that it stays the last line on screen
    if (o.json) printJson({ ...d, written, skipped })
    else if (!o.quiet) process.stdout.write(`${[...extra, `${dst} ${d.digest} (${written} blob(s) written, ${skipped} already there)`].join('\n')}\n`)
  } catch (e) {
    if (ac.signal.aborted) throw new AbortedError(what, { cause: e })
    throw e
  } finally {
    display.stop()
    process.off('SIGINT', interrupt)
  }
}
