/**
 * ocikit: build, change, store, move and check OCI container images, with no daemon.
 * This module only re-exports; see each module for the contracts.
 */
export * from './api.ts'
export { GC_STEP, setGarbageCollector } from './collector.ts'
export { type ConvertOptions, convert, convertImage, convertIndex } from './convert.ts'
export * from './digest.ts'
export * from './documents/index.ts'
export * from './errors.ts'
export { type AppendOptions, appendLayers, assembleImage, type ConfigEdit, editConfig, scratch } from './image/mutate.ts'
export { currentPlatform, formatPlatform, parsePlatform, platformMatches, selectPlatform } from './image/platform.ts'
export { MemoryBlobSource, type RandomImageOptions, randomImage, randomIndex } from './image/random.ts'
export * from './image/types.ts'
export { BlobLayer, type BlobSource, openView, SourceImage, SourceIndex } from './image/view.ts'
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
export { type ListedEntry, listLayerFile, listTar } from './layer/read.ts'
export { type DiffSourceOptions, diffEntries } from './layer/source-diff.ts'
export { type DirectorySourceOptions, directoryEntries } from './layer/source-directory.ts'
export { type FileMapOptions, type FileSpec, fileMapEntries } from './layer/source-files.ts'
export * from './name/index.ts'
export type { FsckReport } from './stores/layout/fsck.ts'
export { DEFAULT_GC_GRACE_MS, type GcOptions, type GcReport } from './stores/layout/gc.ts'
export { OciLayout, REF_NAME } from './stores/layout/layout.ts'
export type { LayoutEntry, LayoutRef, LayoutWriteOptions } from './stores/layout/store.ts'
export type { WalkProblem } from './stores/layout/walk.ts'
