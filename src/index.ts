/**
 * ocikit: build, change, store, move and check OCI container images, with no daemon.
 * This module only re-exports; see each module for the contracts.
 */
export * from './api.ts'
export * from './digest.ts'
export * from './errors.ts'
export { MemoryBlobSource, type RandomImageOptions, randomImage, randomIndex } from './image/memory.ts'
export { currentPlatform, formatPlatform, parsePlatform, platformMatches, selectPlatform } from './image/platform.ts'
export * from './image/types.ts'
export { BlobLayer, type BlobSource, openView, SourceImage, SourceIndex } from './image/view.ts'
export * from './name/index.ts'
export * from './spec/index.ts'
export type { FsckReport } from './stores/layout/fsck.ts'
export { DEFAULT_GC_GRACE_MS, type GcOptions, type GcReport } from './stores/layout/gc.ts'
export { OciLayout, REF_NAME } from './stores/layout/layout.ts'
export type { LayoutEntry, LayoutRef, LayoutWriteOptions } from './stores/layout/store.ts'
export type { WalkProblem } from './stores/layout/walk.ts'
