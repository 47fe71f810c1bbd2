/**
 * Image operations over an image or every image of an index: the one `--platform` names, or
 * all of them, under a new index that keeps the old one's entries and annotations.
 */
import type { Platform } from '../documents/schemas.ts'
import { mapIndex } from '../image/derived-index.ts'
import { imageForPlatform, platformMatches, selectPlatform } from '../image/platform.ts'
import type { Image, ImageOrIndex } from '../image/types.ts'

/**
 * `op` applied to `x`: to the image, or to each image of the index (only the one for `platform`,
 * when given: the others stay). PLATFORM_NOT_FOUND, listing what there is, when `platform` names
 * none of them. `where` names `x` for messages.
 */
export async function forEachImage(
  x: ImageOrIndex,
  op: (img: Image) => Promise<Image>,
  o: { platform?: Platform | undefined; where: string },
): Promise<ImageOrIndex> {
  if (x.kind === 'image') return op(o.platform ? await imageForPlatform(x, o.platform, o.where) : x)
  const want = o.platform
  if (want) await selectPlatform(x, want, o.where) // there is one, or the error lists them
  return mapIndex(x, async (img, d) => {
    if (want) {
      const c = d.platform ? undefined : await img.config()
      const have = d.platform ?? { os: c?.os ?? '', architecture: c?.architecture ?? '', ...(c?.variant ? { variant: c.variant } : {}) }
      if (!platformMatches(want, have)) return undefined
    }
    return op(img)
  })
}
