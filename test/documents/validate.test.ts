import assert from 'node:assert/strict'
import { test } from 'node:test'
import { digestOf } from '../../src/digest.ts'
import { canonicalJson, canonicalJsonString } from '../../src/documents/canonical.ts'
import { MediaType } from '../../src/documents/media-types.ts'
import { MAX_DOCUMENT_SIZE, parseImageConfig, parseIndex, parseManifest, parseManifestOrIndex } from '../../src/documents/validate.ts'
import { InvalidDocumentError, isOcikitError } from '../../src/errors.ts'

const d = (s: string) => digestOf(s)
const enc = (v: unknown) => Buffer.from(JSON.stringify(v))
const layer = (s: string) => ({ mediaType: MediaType.ociLayerGzip, digest: d(s), size: 10 })
const manifest = {
  schemaVersion: 2,
  mediaType: MediaType.ociManifest,
  config: { mediaType: MediaType.ociConfig, digest: d('c'), size: 2 },
  layers: [layer('a'), layer('b'), layer('c')],
}

test('a valid OCI manifest parses, keeping unknown fields', () => {
  const p = parseManifest(enc({ ...manifest, extra: 1 }), 'src')
  assert.equal(p.mediaType, MediaType.ociManifest)
  assert.equal(p.manifest.layers.length, 3)
  assert.equal((p.manifest as Record<string, unknown>).extra, 1)
})

test('image-spec 1.1 fields: artifactType, subject, annotations, zstd and non-distributable layers', () => {
  const m = {
    ...manifest,
    artifactType: 'application/vnd.example+json',
    subject: { mediaType: MediaType.ociManifest, digest: d('s'), size: 1 },
    annotations: { a: 'b' },
    layers: [
      { ...layer('z'), mediaType: MediaType.ociLayerZstd },
      { ...layer('n'), mediaType: MediaType.ociLayerNondistributableGzip, urls: ['https://x/y'] },
    ],
  }
  const p = parseManifest(enc(m), 'src')
  assert.equal(p.manifest.subject?.digest, d('s'))
  assert.equal(p.manifest.artifactType, 'application/vnd.example+json')
})

test('errors name the field and the value', () => {
  const bad = structuredClone(manifest) as typeof manifest
  ;(bad.layers[2] as { digest: string }).digest = 'sha256:xyz'
  assert.throws(
    () => parseManifest(enc(bad), 'oci:x'),
    (e) => e instanceof InvalidDocumentError && e.code === 'INVALID_MANIFEST' && e.message.includes("manifest.layers[2].digest: not a digest: 'sha256:xyz'"),
  )
  assert.throws(
    () => parseManifest(enc({ ...manifest, layers: [{ ...layer('a'), size: -1 }] }), 'oci:x'),
    (e) => isOcikitError(e, 'INVALID_MANIFEST') && e.message.includes('manifest.layers[0].size'),
  )
  assert.throws(
    () => parseManifest(enc({ ...manifest, config: undefined }), 'oci:x'),
    (e) => isOcikitError(e) && /neither an image manifest|manifest.config/.test(e.message),
  )
  assert.throws(
    () => parseManifest(enc({ ...manifest, config: undefined, mediaType: 'application/vnd.oci.image.manifest.v1+json' }), 'oci:x'),
    (e) => isOcikitError(e, 'INVALID_MANIFEST') && e.message.includes('manifest.config: required field is missing'),
  )
  assert.throws(
    () => parseManifest(enc({ ...manifest, layers: [{ ...layer('a'), size: 1.5, mediaType: 'nope' }] }), 'oci:x'),
    (e) =>
      isOcikitError(e) &&
      e.message.includes('manifest.layers[0].size: expected an integer') &&
      e.message.includes("layers[0].mediaType: not a media type: 'nope'"),
  )
  assert.throws(
    () => parseManifest(enc({ ...manifest, schemaVersion: 3 }), 'oci:x'),
    (e) => isOcikitError(e, 'INVALID_MANIFEST') && e.message.includes('manifest.schemaVersion: expected 2, got 3'),
  )
})

test('unsupported digest algorithms in documents are clear errors', () => {
  const bad = { ...manifest, config: { ...manifest.config, digest: 'md5:d41d8cd98f00b204e9800998ecf8427e' } }
  assert.throws(
    () => parseManifest(enc(bad), 'x'),
    (e) => isOcikitError(e, 'INVALID_MANIFEST') && /unsupported digest algorithm 'md5'/.test(e.message),
  )
})

test('a document without mediaType is recognised by its content type hint or by its shape', () => {
  const { mediaType: _, ...bare } = manifest
  assert.equal(parseManifestOrIndex(enc(bare), 'x').mediaType, MediaType.ociManifest)
  assert.equal(parseManifestOrIndex(enc(bare), 'x', MediaType.dockerManifest).mediaType, MediaType.dockerManifest)
  const idx = { schemaVersion: 2, manifests: [] }
  const p = parseManifestOrIndex(enc(idx), 'x')
  assert.equal(p.kind, 'index')
  assert.equal(parseIndex(enc(idx), 'x', MediaType.dockerManifestList).mediaType, MediaType.dockerManifestList)
})

test('a media type that contradicts the content type, schema 1, and non-JSON are refused', () => {
  assert.throws(
    () => parseManifestOrIndex(enc(manifest), 'x', MediaType.ociIndex),
    (e) => isOcikitError(e, 'INVALID_MANIFEST') && /served or referenced/.test(e.message),
  )
  assert.throws(
    () => parseManifestOrIndex(enc({ schemaVersion: 1, fsLayers: [] }), 'x'),
    (e) => isOcikitError(e, 'NOT_SUPPORTED') && /schema 1/.test(e.message),
  )
  assert.throws(
    () => parseManifestOrIndex(Buffer.from('<html>502 Bad Gateway</html>'), 'x'),
    (e) => isOcikitError(e, 'INVALID_MANIFEST') && /not JSON/.test(e.message),
  )
  assert.throws(
    () => parseManifestOrIndex(Buffer.from([0xff, 0xfe]), 'x'),
    (e) => isOcikitError(e, 'INVALID_MANIFEST') && /UTF-8/.test(e.message),
  )
})

test('documents over 4 MiB are refused before parsing', () => {
  const big = Buffer.alloc(MAX_DOCUMENT_SIZE + 1, 0x20)
  assert.throws(
    () => parseManifestOrIndex(big, 'x'),
    (e) => isOcikitError(e, 'TOO_LARGE'),
  )
})

test('Docker v2 schema 2 manifests and lists validate', () => {
  const m = { ...manifest, mediaType: MediaType.dockerManifest, config: { ...manifest.config, mediaType: MediaType.dockerConfig } }
  assert.equal(parseManifest(enc(m), 'x').mediaType, MediaType.dockerManifest)
  const list = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifestList,
    manifests: [{ mediaType: MediaType.dockerManifest, digest: d('m'), size: 5, platform: { os: 'linux', architecture: 'amd64' } }],
  }
  assert.equal(parseIndex(enc(list), 'x').index.manifests[0]?.platform?.architecture, 'amd64')
})

test('image configs validate, with Docker nulls accepted', () => {
  const c = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: null, Cmd: null, Entrypoint: ['/x'] },
    rootfs: { type: 'layers', diff_ids: [d('a')] },
    history: [{ created_by: 'x', empty_layer: true }],
  }
  assert.deepEqual(parseImageConfig(enc(c), 'x').config?.Entrypoint, ['/x'])
  assert.throws(
    () => parseImageConfig(enc({ ...c, rootfs: { type: 'layers', diff_ids: ['nope'] } }), 'cfg'),
    (e) => isOcikitError(e, 'INVALID_CONFIG') && e.message.includes("config.rootfs.diff_ids[0]: not a digest: 'nope'"),
  )
  assert.throws(
    () => parseImageConfig(enc({ ...c, os: 3 }), 'cfg'),
    (e) => isOcikitError(e, 'INVALID_CONFIG') && e.message.includes('config.os: expected string, got 3'),
  )
})

test('canonical JSON sorts keys and drops undefined, so key order cannot change a digest', () => {
  assert.equal(canonicalJsonString({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}')
  assert.equal(digestOf(canonicalJson({ x: 1, y: 2 })), digestOf(canonicalJson({ y: 2, x: 1 })))
})
