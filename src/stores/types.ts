/**
 * The store seam: what every store is, whatever the medium. A store reads a name into lazy views
 * ({@link Store.read}) and hands out a {@link ImageSink} that the one write engine (`src/copy.ts`)
 * walks an image or index into; the sink owns only where the bytes go and what its medium can do
 * more (a registry mounts and HEADs; a layout renews, locks and renames).
 */
import type { Readable } from 'node:stream'
import type { LimitFunction } from 'p-limit'
import type { Digest } from '../digest.ts'
import type { Descriptor } from '../documents/schemas.ts'
import type { BlobSource, ImageOrIndex, IoOptions } from '../image/types.ts'

/** One blob a write handled: written, or skipped because the destination had it (or mounted it). */
export interface BlobEvent {
  readonly digest: Digest
  readonly size: number
  /** True when nothing was sent: the destination had it, or mounted it. */
  readonly existed: boolean
  /** True when a registry mounted it from another repository. */
  readonly mounted?: boolean | undefined
}

/** Options of every write, whatever the store. */
export interface WriteOptions extends IoOptions {
  /** Blobs written at once (default: the sink's, else 4). */
  concurrency?: number | undefined
  /** Called once per config and layer blob: written, or skipped because present (or mounted). */
  onBlob?: ((e: BlobEvent) => void) | undefined
  /** Told what the write decided on its own: a blob read again after it arrived corrupt; for `copy`, a docker-save archive's layers compressed for a registry. */
  onNotice?: ((message: string) => void) | undefined
}

/** One image or index a store lists, under a tag or by digest alone. */
export interface ListedEntry {
  readonly tag?: string | undefined
  readonly descriptor: Descriptor
}

/** What is wrong with a blob. */
export type ProblemKind = 'missing' | 'truncated' | 'corrupt' | 'invalid' | 'too-large'

/** What a blob is to the document that names it. */
export type BlobRole = 'manifest' | 'config' | 'layer' | 'blob'

/** One problem a check found. */
export interface FsckProblem {
  readonly kind: ProblemKind
  readonly digest: Digest
  /** How the blob was reached, e.g. `index.json manifests[0] (tag v1) → layers[2]`. */
  readonly via: string
  readonly role: BlobRole
  readonly message: string
}

/** What fsck found. `ok` is true when there is no problem. */
export interface FsckReport {
  readonly ok: boolean
  /** Distinct blobs reached from the store's tags and entries. */
  readonly reachable: number
  /** Blobs whose bytes were re-hashed (each once). */
  readonly hashed: number
  readonly problems: readonly FsckProblem[]
  /** Non-distributable layers that are absent, which the spec allows. */
  readonly foreignMissing: readonly { digest: Digest; via: string }[]
  /** What is worth knowing but harms nothing (a BFC file's bytes after its last footer, left by a write cut off). */
  readonly notes?: readonly string[] | undefined
}

/** Options of gc. */
export interface GcOptions {
  /** List what would be removed, remove nothing. */
  dryRun?: boolean | undefined
  /**
   * Keep unreferenced blobs (and temp files) modified less than this many milliseconds ago
   * (default 10 minutes): another process may be writing an image whose tag is not recorded yet.
   */
  graceMs?: number | undefined
  signal?: AbortSignal | undefined
}

/** What gc removed (or, in a dry run, would remove). */
export interface GcReport {
  readonly removed: readonly { digest: Digest; size: number }[]
  readonly bytes: number
  /** Unreferenced blobs kept because they are younger than the grace period. */
  readonly keptRecent: number
  /** Abandoned temp files removed. */
  readonly tempsRemoved: number
  readonly dryRun: boolean
}

/** How a sink is asked to put one blob. */
export interface PutBlobOptions extends IoOptions {
  /** Pass-through streams the bytes go through on their way (progress taps). */
  readonly taps?: readonly NodeJS.ReadWriteStream[] | undefined
  /**
   * A check that must pass before the blob is named (an image's config against its manifest):
   * the sink may move the bytes meanwhile, but names the blob only once this resolves, and fails
   * with its error if it rejects.
   */
  readonly commitAfter?: Promise<unknown> | undefined
  /** Where the bytes come from, when known: a sink beside it can mount or skip them. */
  readonly origin?: BlobSource | undefined
}

/** What putting a blob came to. */
export type PutOutcome = 'written' | 'existed' | 'mounted'

/** What committing a write came to: its descriptor, or the blobs it needs that are gone (put them back and commit again). */
export type CommitResult = { readonly descriptor: Descriptor } | { readonly missing: readonly Digest[] }

/**
 * Where a write goes: one place in one store (a layout and a tag, a registry repository and a
 * tag). The write engine calls `putBlob` for every config and layer, `putManifest` for every
 * manifest below the top, then `commit` once, last.
 */
export interface ImageSink {
  /** The destination, for messages (`oci:./out:v1`, `localhost:5000/app:v1`). */
  readonly name: string
  /** Blobs this sink takes at once, when it has a preference (else 4). */
  readonly concurrency?: number | undefined
  /**
   * A limit on blob transfers shared by every write of this process to the same place, when
   * the place has one (a registry: its connections are shared). A write's own limit comes first,
   * then this one; so fifty writes at once hold fifty times four sources open only up to it.
   */
  readonly sharedLimit?: LimitFunction | undefined
  /** Whether non-distributable ("foreign") layers are copied when the source has them (registries leave them where their urls say). */
  readonly copiesForeignLayers: boolean
  /**
   * Called once before anything moves: a sink that cannot hold `x` (a docker-save archive and a
   * multi-platform index) says so here, with an error that says what to do, and nothing is read.
   */
  prepare?(x: ImageOrIndex): Promise<void>
  /** True for a destination where uncompressed layers waste space and time (a registry): a copy from a docker-save archive compresses them. */
  readonly prefersCompressedLayers?: boolean | undefined
  /**
   * Puts a blob unless the destination has it (a present blob counts as used now). `open` gives
   * its verified bytes and is called only when they are needed. On failure nothing is named.
   */
  putBlob(d: Descriptor, open: () => Promise<Readable>, o: PutBlobOptions): Promise<PutOutcome>
  /**
   * Optional: puts a blob whose digest is not known yet, as its bytes are made (a layer being
   * compressed now), and returns the digest and size the destination took. Not retried (the
   * stream is read once); on failure nothing is named, and `putBlob` puts the blob later.
   */
  putStream?(bytes: Readable, o: IoOptions): Promise<{ digest: Digest; size: number }>
  /** Puts a manifest or index below the top (a child of an index), by digest. */
  putManifest(d: Descriptor, bytes: Uint8Array, o: IoOptions): Promise<PutOutcome>
  /**
   * Records the top manifest, last: under the sink's tag, or by digest. `needed` is every blob
   * and manifest the write put or found; a sink whose medium lets another process delete blobs
   * meanwhile (a layout under gc) checks them and answers `missing` instead of recording.
   */
  commit(x: ImageOrIndex, d: Descriptor, bytes: Uint8Array, needed: readonly Descriptor[], o: IoOptions): Promise<CommitResult>
  /**
   * Called once when the write failed before its commit, after every transfer settled: undoes
   * what the sink made for this write alone (a layout it created and nothing else wrote into).
   * Never throws.
   */
  abort?(): Promise<void>
}

/** The verbs every store offers for one name. A verb a store cannot do is NOT_SUPPORTED, saying what to use instead. */
export interface Store {
  /** The name as given (formatted), for messages. */
  readonly name: string
  /** The image or index the name refers to, as a lazy, verified view. */
  read(o?: IoOptions): Promise<ImageOrIndex>
  /** Where a write of the name goes (creating the store when it is new). */
  sink(): Promise<ImageSink>
  /** Every entry of the store. */
  list(): Promise<ListedEntry[]>
  /** Gives the image the name refers to another tag in the same store. */
  tag(newTag: string): Promise<Descriptor>
  /** Removes the tag the name carries. */
  untag(): Promise<Descriptor>
  /** Checks every reachable blob: present, of its size, hashing to its name, valid. */
  fsck(o?: { signal?: AbortSignal | undefined }): Promise<FsckReport>
  /** Removes blobs nothing reaches. */
  gc(o?: GcOptions): Promise<GcReport>
}
