/**
 * Times in documents and layers, reproducibly: from an explicit timestamp, else
 * `$SOURCE_DATE_EPOCH`, else the epoch. Whole seconds, written in ISO 8601 without fractions.
 */
import { OcikitError } from '../errors.ts'

/** A time as callers give it: seconds since the epoch, a Date, or an ISO 8601 string (or digits). */
export type Timestamp = number | Date | string

/** The epoch in ISO 8601: the `created` of images made with no timestamp and no `$SOURCE_DATE_EPOCH`. */
export const EPOCH_ISO = '1970-01-01T00:00:00Z'

/**
 * Whole seconds since the epoch for `t`; for no `t`, `$SOURCE_DATE_EPOCH` when set, else 0.
 * INVALID_ARGUMENT for a bad value or one outside 1970-2038 (what a tar header holds).
 */
export function resolveTimestamp(t: Timestamp | undefined): number {
  if (t === undefined) {
    const env = process.env.SOURCE_DATE_EPOCH
    if (env === undefined || env === '') return 0
    if (!/^\d+$/.test(env)) throw new OcikitError('INVALID_ARGUMENT', `SOURCE_DATE_EPOCH must be whole seconds since the epoch, got '${env}'`)
    return Number(env)
  }
  const secs = typeof t === 'number' ? t : t instanceof Date ? t.getTime() / 1000 : /^\d+$/.test(t) ? Number(t) : Date.parse(t) / 1000
  if (!Number.isFinite(secs) || secs < 0 || secs >= 2 ** 31) {
    throw new OcikitError('INVALID_ARGUMENT', `invalid timestamp '${String(t)}': use seconds since the epoch or an ISO 8601 date between 1970 and 2038`)
  }
  return Math.floor(secs)
}

/** `seconds` since the epoch as ISO 8601 without fractions, e.g. `2024-05-01T12:00:00Z`. */
export function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
}
