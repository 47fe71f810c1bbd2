/**
 * The image operations as one namespace, as the design names it: each returns a new lazy view
 * and leaves its input as it was; nothing is copied until a store writes the result.
 */
import { appendLayers, editConfig } from '../image/mutate.ts'
import { mutateImage } from './edit.ts'
import { flatten } from './flatten.ts'
import { optimize } from './optimize.ts'
import { rebase } from './rebase.ts'

/**
 * `mutate.appendLayers(base, layers)`, `mutate.config(base, edit)`, `mutate.image(img, edit)`
 * (config and annotations), `mutate.rebase(img, oldBase, newBase)`, `mutate.flatten(img)`,
 * `mutate.optimize(img)`; `forEachImage` applies any of them to an index.
 */
export const mutate = Object.freeze({ appendLayers, config: editConfig, image: mutateImage, rebase, flatten, optimize })
