/**
 * The store table: from a parsed name's transport to the store that serves it. A new store is one
 * folder under `src/stores/` and one row here; `ocikit --help` and the "not supported yet"
 * answer come from the rows.
 */
import { NotSupportedError } from '../errors.ts'
import { formatName, type ImageName } from '../name/parse.ts'
import { dockerArchiveStore } from './archive/docker-archive.ts'
import { ociArchiveStore } from './archive/oci-archive.ts'
import { type BfcOptions, bfcStore } from './bfc/store.ts'
import { layoutStore } from './layout/store.ts'
import { registryStore } from './registry/store.ts'
import type { RegistryOptions } from './registry/transport.ts'
import type { Store } from './types.ts'

/** What opening a store may need besides the name. */
export interface StoreOptions {
  /** How to reach registries (insecure hosts, credentials, retries, timeouts). */
  registry?: RegistryOptions | undefined
  /** How to open BFC files: the key of encrypted ones, and whether new ones are encrypted or compressed. */
  bfc?: BfcOptions | undefined
}

type NameOf<T extends ImageName['transport']> = Extract<ImageName, { transport: T }>

/** One row of the table: how names of the transport are written, what they name, and (once built) how to open one. */
export interface StoreRow<T extends ImageName['transport']> {
  /** How a name is written, e.g. `oci:DIR[:TAG]`. */
  readonly syntax: string
  /** What it names, for help. */
  readonly about: string
  /** Opens the store for a name; absent while the store is not built yet. */
  readonly open?: ((n: NameOf<T>, o: StoreOptions) => Store) | undefined
}

/** Every transport, in the order help lists them. */
export const STORES: { readonly [T in ImageName['transport']]: StoreRow<T> } = {
  oci: { syntax: 'oci:DIR[:TAG]', about: 'OCI image layout directory (created on write); oci:DIR@sha256:HEX names one by digest', open: layoutStore },
  'oci-archive': { syntax: 'oci-archive:FILE[:TAG]', about: 'OCI layout in a tar file (skopeo, podman save --format oci-archive)', open: ociArchiveStore },
  'docker-archive': {
    syntax: 'docker-archive:FILE[:REF]',
    about: 'docker save / podman save tar file; REF is REPO:TAG, or @N for the Nth image (from 0)',
    open: dockerArchiveStore,
  },
  bfc: {
    syntax: 'bfc:FILE[:TAG]',
    about: 'BFC single-file container: an OCI layout in one file, read by seeking (encrypted and compressed ones too)',
    open: (n, o) => bfcStore(n, o.bfc),
  },
  registry: {
    syntax: 'HOST[:PORT]/REPO[:TAG]',
    about: "registry; also @sha256:..., docker://...; 'alpine' is docker.io/library/alpine:latest",
    open: (n, o) => registryStore(n, o.registry ?? {}),
  },
}

/** A store whose every verb answers NOT_SUPPORTED, naming the store that is not built yet. */
function notBuilt(n: ImageName): Store {
  const name = formatName(n)
  const no = async (): Promise<never> => {
    throw new NotSupportedError(`${name}: the ${n.transport} store is not supported yet (supported: ${supportedSyntax().join(', ')})`)
  }
  return { name, read: no, sink: no, list: no, tag: no, untag: no, fsck: no, gc: no }
}

/** The store behind a parsed name. */
export function storeFor(n: ImageName, o: StoreOptions = {}): Store {
  // The row of n's own transport, so its name has the type the row's opener takes.
  const row = STORES[n.transport] as StoreRow<typeof n.transport> & { open?: (n: ImageName, o: StoreOptions) => Store }
  return row.open ? row.open(n, o) : notBuilt(n)
}

/** The syntax of every store that is built. */
function supportedSyntax(): string[] {
  return Object.values(STORES)
    .filter((r) => r.open)
    .map((r) => r.syntax)
}

/** The "Image names" part of help: one line per store, those not built yet marked so. */
export function storeHelp(): string {
  const rows = Object.values(STORES) as StoreRow<ImageName['transport']>[]
  const width = Math.max(...rows.map((r) => r.syntax.length)) + 2
  return rows.map((r) => `  ${r.syntax.padEnd(width)}${r.about}${r.open ? '' : ' (not supported yet)'}`).join('\n')
}
