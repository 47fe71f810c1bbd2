/**
 * `mutate`: an image's config and annotations changed, its layers (and their digests) kept.
 * Every name is checked first: an env or label with a bad name is INVALID_ARGUMENT naming it.
 */
import type { Timestamp } from '../documents/time.ts'
import { OcikitError } from '../errors.ts'
import { assembleImage, type ConfigEdit, editConfig, parseKeyValues } from '../image/mutate.ts'
import type { Image } from '../image/types.ts'

/** What `mutate` changes. Unset fields stay as they are. */
export interface MutateEdit extends ConfigEdit {
  /** Manifest annotations to set: a map or `KEY=VALUE` entries. */
  annotations?: Record<string, string> | readonly string[] | undefined
  /** Leave the config's history out (it then says nothing of how the image was made). */
  dropHistory?: boolean | undefined
  /** The time of the change (config `created`, the history entry), by the layer rules: else `$SOURCE_DATE_EPOCH`, else 1970-01-01. */
  timestamp?: Timestamp | undefined
}

const BAD_NAME = /[\s=]|^$/

function isList(x: Record<string, string> | readonly string[]): x is readonly string[] {
  return Array.isArray(x)
}

/** Throws INVALID_ARGUMENT for the first env, label or annotation whose name is empty or holds '=' or white space. */
export function checkNames(edit: MutateEdit): void {
  for (const kv of edit.env ?? []) {
    const eq = kv.indexOf('=')
    const key = eq < 0 ? kv : kv.slice(0, eq)
    if (eq <= 0 || BAD_NAME.test(key)) throw new OcikitError('INVALID_ARGUMENT', `env '${kv}': give NAME=VALUE with a NAME of no spaces (got '${key}')`)
  }
  for (const [what, list] of [
    ['label', edit.labels],
    ['annotation', edit.annotations],
  ] as const) {
    const map = list === undefined ? {} : isList(list) ? parseKeyValues(list, what) : list
    for (const key of Object.keys(map)) if (BAD_NAME.test(key)) throw new OcikitError('INVALID_ARGUMENT', `${what} name '${key}' is empty or holds a space`)
  }
}

/** The image with its config and annotations changed as `edit` says; the layers stay. */
export async function mutateImage(img: Image, edit: MutateEdit): Promise<Image> {
  checkNames(edit)
  const configEdit = Object.entries(edit).some(([k, v]) => v !== undefined && !['annotations', 'dropHistory', 'timestamp'].includes(k))
  let out = configEdit ? await editConfig(img, edit, { timestamp: edit.timestamp, history: { created_by: 'ocikit mutate' } }) : img
  if (edit.annotations !== undefined || edit.dropHistory) {
    const config = await out.config()
    if (edit.dropHistory) delete config.history
    const manifest = await out.manifest()
    const a = edit.annotations
    const added: Record<string, string> = a === undefined ? {} : isList(a) ? parseKeyValues(a, 'annotation') : a
    out = assembleImage(await out.mediaType(), config, await out.layers(), { ...manifest.annotations, ...added })
  }
  return out
}
