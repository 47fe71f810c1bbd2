/**
 * Optional abilities of views, each a named interface with a type guard (as go-containerregistry's
 * `partial` package): a writer asks a layer or image what more it can do, never casts it or tests
 * its class.
 */
import type { Descriptor } from '../documents/schemas.ts'
import type { BlobSource, Layer } from './types.ts'

/** A view that knows where its bytes are: a writer to the same place can mount or skip them. */
export interface WithSource {
  readonly source: BlobSource
}

/** The source a view's bytes come from, when it knows one. */
export function sourceOf(x: object): BlobSource | undefined {
  const s = (x as Partial<WithSource>).source
  return typeof s === 'object' && s !== null && typeof s.openBlob === 'function' ? s : undefined
}

/** A layer that knows the descriptor it was listed under, with its `urls` and annotations. */
export interface DescribedLayer extends Layer {
  /** A copy of the descriptor. */
  descriptor(): Descriptor
}

/** True when `l` is a {@link DescribedLayer}. */
export function isDescribedLayer(l: Layer): l is DescribedLayer {
  return typeof (l as Partial<DescribedLayer>).descriptor === 'function'
}
