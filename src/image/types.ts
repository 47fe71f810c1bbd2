/**
 * The Image, Layer and ImageIndex interfaces: immutable, lazy views that every store
 * hands out and accepts. Nothing is read until a method asks for it.
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../digest.ts'
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from '../documents/schemas.ts'
import type { Progress } from '../streams.ts'

/** Where views get their bytes. Implementations verify what they return against the descriptor. */
export interface BlobSource {
  /** Names the source in messages, e.g. `oci:./out`. */
  readonly name: string
  /** A stream of the blob, failing at its end if the bytes do not match `d`. */
  openBlob(d: Descriptor, o?: IoOptions): Promise<Readable>
  /** The whole blob, verified, for small documents (capped at 4 MiB). */
  readBlob(d: Descriptor, o?: IoOptions): Promise<Uint8Array>
}

/** Options every I/O call takes. */
export interface IoOptions {
  readonly signal?: AbortSignal | undefined
  readonly onProgress?: ((p: Progress) => void) | undefined
}

/**
 * A layer. Re-openable: each call to `compressed()` or `uncompressed()` returns a fresh
 * stream, verified against the layer's digest (or diff ID) as it is read.
 */
export interface Layer {
  readonly mediaType: string
  /** Digest of the blob as stored (compressed). */
  digest(): Promise<Digest>
  /** Digest of the uncompressed tar. */
  diffId(): Promise<Digest>
  /** Size in bytes of the blob as stored. */
  size(): Promise<number>
  /** The blob as stored. */
  compressed(o?: IoOptions): Promise<Readable>
  /** The uncompressed tar stream. */
  uncompressed(o?: IoOptions): Promise<Readable>
}

/** An image: a manifest, a config and layers. */
export interface Image {
  readonly kind: 'image'
  /** The manifest's media type (OCI or Docker v2). */
  mediaType(): Promise<string>
  /** A fresh copy of the parsed manifest. */
  manifest(): Promise<Manifest>
  /** The manifest bytes exactly as stored; their digest is the image digest. */
  rawManifest(): Promise<Uint8Array>
  digest(): Promise<Digest>
  /** A fresh copy of the parsed config. */
  config(): Promise<ImageConfig>
  rawConfig(): Promise<Uint8Array>
  /** The layers, in manifest order. */
  layers(): Promise<Layer[]>
}

/** An image index (or Docker manifest list): a list of images and nested indexes. */
export interface ImageIndex {
  readonly kind: 'index'
  mediaType(): Promise<string>
  /** A fresh copy of the parsed index. */
  manifest(): Promise<Index>
  rawManifest(): Promise<Uint8Array>
  digest(): Promise<Digest>
  /** The image an entry of this index names. */
  image(d: Digest): Promise<Image>
  /** The nested index an entry of this index names. */
  index(d: Digest): Promise<ImageIndex>
}

/** Either view a store can hand out. */
export type ImageOrIndex = Image | ImageIndex

/** The descriptor of an image or index: media type, digest and size of its manifest. */
export async function descriptorOf(x: ImageOrIndex, extra: Partial<Descriptor> = {}): Promise<Descriptor> {
  const raw = await x.rawManifest()
  return { mediaType: await x.mediaType(), digest: await x.digest(), size: raw.length, ...extra }
}

export type { Descriptor, ImageConfig, Index, Manifest, Platform, Progress }
