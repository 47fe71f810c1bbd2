/** Views for tests: an image that answers as another does, with some of its methods replaced. */
import type { Image } from '../../src/image/types.ts'

/** An image that delegates every method to `img` except those `overrides` replace. */
export function delegatingImage(img: Image, overrides: Partial<Omit<Image, 'kind'>> = {}): Image {
  return {
    kind: 'image',
    mediaType: () => img.mediaType(),
    manifest: () => img.manifest(),
    rawManifest: () => img.rawManifest(),
    digest: () => img.digest(),
    config: () => img.config(),
    rawConfig: () => img.rawConfig(),
    layers: () => img.layers(),
    ...overrides,
  }
}
