/**
 * ocikit: build, change, store, move and check OCI container images, with no daemon.
 * This module only re-exports, by name: what is not listed here is internal. See each module
 * for the contracts.
 */
export {
  type CopyOptions,
  catalog,
  copy,
  deleteImage,
  fsck,
  gc,
  list,
  listTags,
  login,
  logout,
  type ReadOptions,
  read,
  readImage,
  referrers,
  tag,
  untag,
  type WriteOptions,
  write,
} from './api.ts'
export {
  type BuildOptions,
  type BuildPlan,
  type BuildResult,
  type BuildSpec,
  type BuiltLayer,
  build,
  buildImage,
} from './build/build.ts'
export { type BuildFile, readBuildFile } from './build/build-file.ts'
export { type CachedLayerRecord, DEFAULT_CACHE_MAX_BYTES, defaultCacheDir, LayerCache } from './build/cache.ts'
export { type NodeProject, type PackageManager, readNodeProject } from './build/node-project.ts'
export { GC_STEP, setGarbageCollector } from './collector.ts'
export { compressionOf, compressor, decompressor } from './compress.ts'
export { type ConvertOptions, convert, convertImage, convertIndex } from './convert.ts'
export { copyTags, writeTo } from './copy.ts'
export { type Digest, type DigestAlgorithm, DigestingStream, digestOf, isDigest, parseDigest, verifyingStream } from './digest.ts'
export { canonicalJson } from './documents/canonical.ts'
export {
  type Compression,
  isImageConfigType,
  isIndexType,
  isLayerType,
  isManifestType,
  isNondistributableType,
  MediaType,
} from './documents/media-types.ts'
export type { ContainerConfig, Descriptor, History, ImageConfig, Index, Manifest, Platform } from './documents/schemas.ts'
export { EPOCH_ISO, isoTime, resolveTimestamp, type Timestamp } from './documents/time.ts'
export { MAX_DOCUMENT_SIZE, MAX_INDEX_DEPTH, parseImageConfig, parseIndex, parseManifest, parseManifestOrIndex } from './documents/validate.ts'
export {
  AbortedError,
  DigestMismatchError,
  type ErrorCode,
  InvalidDocumentError,
  isOcikitError,
  NotFoundError,
  NotSupportedError,
  OcikitError,
  PlatformNotFoundError,
  RegistryError,
  type RegistryErrorDetail,
  SizeMismatchError,
  UnsafePathError,
} from './errors.ts'
export {
  diffExplorations,
  type Exploration,
  type ExploredFile,
  type ExploredLayer,
  exploreImage,
  type FileChange,
  type WastedFile,
} from './explore/analyze.ts'
export {
  type AppendOptions,
  appendLayers,
  assembleImage,
  type ConfigEdit,
  editConfig,
  layersFor,
  parseKeyValues,
  scratch,
} from './image/mutate.ts'
export { type DescribedLayer, isDescribedLayer, sourceOf, type WithSource } from './image/partial.ts'
export { currentPlatform, formatPlatform, parsePlatform, platformMatches, selectPlatform } from './image/platform.ts'
export { MemoryBlobSource, type RandomImageOptions, randomImage, randomIndex } from './image/random.ts'
export type { BlobSource, Image, ImageIndex, ImageOrIndex, IoOptions, Layer, Progress } from './image/types.ts'
export { BlobLayer, openView, SourceImage, SourceIndex } from './image/view.ts'
export { type ApplyOptions, type ApplyStats, applyLayer, applyTar, unpackImage } from './layer/apply.ts'
export {
  type EncodeOptions,
  EntriesLayer,
  encodeLayer,
  encodeTar,
  type LayerInfo,
  type LayerOptions,
  layerFromDiff,
  layerFromDirectory,
  layerFromFiles,
  recompressLayer,
  writeLayerFile,
} from './layer/encode.ts'
export { type EntryType, type LayerEntry, OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './layer/entry.ts'
export { exportImage } from './layer/export.ts'
export { listLayerFile, listTar, type TarEntryListing } from './layer/read.ts'
export { type DiffSourceOptions, diffEntries } from './layer/source-diff.ts'
export { type DirectorySourceOptions, directoryEntries } from './layer/source-directory.ts'
export { type FileMapOptions, type FileSpec, fileMapEntries } from './layer/source-files.ts'
export { formatName, type ImageName, isLayoutTag, parseName } from './name/parse.ts'
export { formatReference, parseReference, parseRegistryHost, type RegistryReference } from './name/reference.ts'
export { forEachImage } from './ops/each.ts'
export { checkNames, type MutateEdit, mutateImage } from './ops/edit.ts'
export { type FlattenOptions, flatten } from './ops/flatten.ts'
export { mutate } from './ops/index.ts'
export { type Optimized, optimize, type RemovedLayer } from './ops/optimize.ts'
export { BASE_DIGEST, BASE_NAME, type RebaseOptions, rebase, rebaseConfig } from './ops/rebase.ts'
export { BfcFile } from './stores/bfc/container.ts'
export type { BfcKeySource } from './stores/bfc/crypto.ts'
export { type BfcOptions, bfcStore } from './stores/bfc/store.ts'
export { DEFAULT_GC_GRACE_MS } from './stores/layout/gc.ts'
export { OciLayout } from './stores/layout/layout.ts'
export { LayoutSink } from './stores/layout/store.ts'
export { MemoryStore } from './stores/memory/store.ts'
export { REF_NAME } from './stores/oci-index.ts'
export { STORES, storeFor } from './stores/open.ts'
export type { RegistryOptions } from './stores/registry/transport.ts'
export type {
  BlobEvent,
  CommitResult,
  FsckProblem,
  FsckReport,
  GcOptions,
  GcReport,
  ImageSink,
  ListedEntry,
  PutBlobOptions,
  PutOutcome,
  Store,
  WriteOptions as StoreWriteOptions,
} from './stores/types.ts'
