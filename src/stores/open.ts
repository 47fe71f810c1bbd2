/**
 * From a parsed name to the store that serves it. Each store exposes the same verbs;
 * stores not built yet answer NOT_SUPPORTED with the name.
 */

import type { Descriptor } from '../documents/schemas.ts'
import { NotSupportedError, OcikitError } from '../errors.ts'
import type { ImageOrIndex, IoOptions } from '../image/types.ts'
import type { RegistryName } from '../name/parse.ts'
import { formatName, type ImageName, type LayoutName } from '../name/parse.ts'
import { type FsckReport, fsckLayout } from './layout/fsck.ts'
import { OciLayout } from './layout/layout.ts'
import { type LayoutEntry, type LayoutWriteOptions, listLayout, readFromLayout, tagInLayout, untagInLayout, writeToLayout } from './layout/store.ts'
import { RegistryClient } from './registry/client.ts'
import { readFromRegistry, writeToRegistry } from './registry/store.ts'
import type { RegistryOptions } from './registry/transport.ts'

/** The verbs every store offers for one name. */
export interface StoreRef {
  /** The name as given, for messages. */
  readonly name: string
  read(o?: IoOptions): Promise<ImageOrIndex>
  write(x: ImageOrIndex, o?: LayoutWriteOptions): Promise<Descriptor>
  list(): Promise<LayoutEntry[]>
  tag(newTag: string): Promise<Descriptor>
  untag(): Promise<Descriptor>
  fsck(o?: { signal?: AbortSignal }): Promise<FsckReport>
}

function layoutRef(n: LayoutName): StoreRef {
  const name = formatName(n)
  const ref = { tag: n.tag, digest: n.digest }
  return {
    name,
    read: async (o) => readFromLayout(await OciLayout.open(n.path), ref, o),
    write: async (x, o) => {
      if (n.digest) throw new OcikitError('INVALID_NAME', `${name}: cannot write to a digest; name a tag (oci:DIR:TAG) or none`)
      return writeToLayout(await OciLayout.create(n.path), x, n.tag, o)
    },
    list: async () => listLayout(await OciLayout.open(n.path)),
    tag: async (newTag) => tagInLayout(await OciLayout.open(n.path), ref, newTag),
    untag: async () => {
      if (n.tag === undefined) throw new OcikitError('INVALID_NAME', `${name}: name the tag to remove (oci:DIR:TAG)`)
      return untagInLayout(await OciLayout.open(n.path), n.tag)
    },
    fsck: async (o) => fsckLayout(await OciLayout.open(n.path), o),
  }
}

function registryRef(n: RegistryName, o: RegistryOptions): StoreRef {
  const name = formatName(n)
  const r = n.reference
  const client = () => new RegistryClient(r.registry, r.repository, o)
  const ref = r.digest ?? r.tag ?? 'latest'
  return {
    name,
    read: (io) => readFromRegistry(client(), ref, io),
    write: (x, wo) => {
      if (r.digest && !r.tag) return writeToRegistry(client(), x, undefined, wo)
      return writeToRegistry(client(), x, r.tag, wo)
    },
    list: async () => {
      throw new NotSupportedError(`${name}: ls lists OCI layouts; for a registry repository use 'ocikit tags ${r.registry}/${r.repository}'`)
    },
    tag: async (newTag) => {
      const c = client()
      const m = await c.manifest(ref)
      await c.putManifest(newTag, m.bytes, m.mediaType)
      return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length, annotations: { 'org.opencontainers.image.ref.name': newTag } }
    },
    untag: async () => {
      throw new NotSupportedError(`${name}: registries cannot remove a tag alone; 'ocikit delete' removes the manifest (and every tag on it)`)
    },
    fsck: async () => {
      throw new NotSupportedError(`${name}: fsck works on OCI layouts (oci:DIR); copy the image to one to check it`)
    },
  }
}

/** The store behind a parsed name. `registry` options apply to registry names. */
export function storeFor(n: ImageName, registry: RegistryOptions = {}): StoreRef {
  if (n.transport === 'oci') return layoutRef(n)
  if (n.transport === 'registry') return registryRef(n, registry)
  const name = formatName(n)
  const store = n.transport
  const unsupported = async (): Promise<never> => {
    throw new NotSupportedError(`${name}: the ${store} store is not supported yet`)
  }
  return { name, read: unsupported, write: unsupported, list: unsupported, tag: unsupported, untag: unsupported, fsck: unsupported }
}
