/**
 * Schemas of the OCI and Docker v2 documents. Unknown fields are kept (the specs
 * require readers to ignore them); known fields are checked for type and form.
 * Types are derived from the schemas so the two can never disagree.
 *
 * valibot rather than zod: building zod's schemas took some 25 ms of every CLI run's
 * start-up (measured by bundling each, docs/performance.md); valibot's are plain objects.
 */
import * as v from 'valibot'
import { type Digest, digestProblem } from '../digest.ts'

const digest = v.pipe(
  v.string(),
  v.rawCheck(({ dataset, addIssue }) => {
    const p = dataset.typed ? digestProblem(dataset.value) : undefined
    if (p) addIssue({ message: p.message })
  }),
) as unknown as v.GenericSchema<unknown, Digest>

// RFC 6838 type/subtype, as image-spec descriptor.md restricts it.
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/
const mediaType = v.pipe(
  v.string(),
  v.check(
    (s) => MEDIA_TYPE.test(s),
    (issue) => `not a media type: '${String(issue.input)}'`,
  ),
)
const annotations = v.record(v.string(), v.string())
const size = v.pipe(v.number(), v.integer('expected an integer'), v.minValue(0, 'must not be negative'))
const strings = v.array(v.string())

/** The platform fields an index descriptor's `platform` and an image config share. */
const platformFields = {
  architecture: v.string(),
  os: v.string(),
  'os.version': v.optional(v.string()),
  'os.features': v.optional(strings),
  variant: v.optional(v.string()),
}

export const platformSchema = v.looseObject({ ...platformFields, features: v.optional(strings) })

export const descriptorSchema = v.looseObject({
  mediaType,
  digest,
  size,
  urls: v.optional(strings),
  annotations: v.optional(annotations),
  data: v.optional(v.pipe(v.string(), v.base64('not base64'))),
  artifactType: v.optional(mediaType),
  platform: v.optional(platformSchema),
})

export const manifestSchema = v.looseObject({
  schemaVersion: v.literal(2),
  mediaType: v.optional(mediaType),
  artifactType: v.optional(mediaType),
  config: descriptorSchema,
  layers: v.array(descriptorSchema),
  subject: v.optional(descriptorSchema),
  annotations: v.optional(annotations),
})

export const indexSchema = v.looseObject({
  schemaVersion: v.literal(2),
  mediaType: v.optional(mediaType),
  artifactType: v.optional(mediaType),
  manifests: v.array(descriptorSchema),
  subject: v.optional(descriptorSchema),
  annotations: v.optional(annotations),
})

const stringList = v.nullish(strings)
const emptyObjects = v.nullish(v.record(v.string(), v.looseObject({})))

export const containerConfigSchema = v.looseObject({
  User: v.optional(v.string()),
  ExposedPorts: emptyObjects,
  Env: stringList,
  Entrypoint: stringList,
  Cmd: stringList,
  Volumes: emptyObjects,
  WorkingDir: v.optional(v.string()),
  Labels: v.nullish(v.record(v.string(), v.string())),
  StopSignal: v.optional(v.string()),
  /** Docker's extension: how the engine checks the container is healthy (durations in nanoseconds). */
  Healthcheck: v.optional(
    v.looseObject({
      Test: v.optional(strings),
      Interval: v.optional(v.number()),
      Timeout: v.optional(v.number()),
      StartPeriod: v.optional(v.number()),
      Retries: v.optional(v.number()),
    }),
  ),
  ArgsEscaped: v.optional(v.boolean()),
})

export const historySchema = v.looseObject({
  created: v.optional(v.string()),
  author: v.optional(v.string()),
  created_by: v.optional(v.string()),
  comment: v.optional(v.string()),
  empty_layer: v.optional(v.boolean()),
})

export const imageConfigSchema = v.looseObject({
  created: v.optional(v.string()),
  author: v.optional(v.string()),
  ...platformFields,
  config: v.nullish(containerConfigSchema),
  rootfs: v.looseObject({ type: v.literal('layers'), diff_ids: v.array(digest) }),
  history: v.nullish(v.array(historySchema)),
})

export const ociLayoutSchema = v.looseObject({ imageLayoutVersion: v.string() })

/** A platform: os, architecture and optional variant and OS details. */
export type Platform = v.InferOutput<typeof platformSchema>
/** A content descriptor: what a blob is, its digest and size. */
export type Descriptor = v.InferOutput<typeof descriptorSchema>
/** An image manifest (OCI or Docker v2 schema 2). */
export type Manifest = v.InferOutput<typeof manifestSchema>
/** An image index (OCI) or manifest list (Docker v2). */
export type Index = v.InferOutput<typeof indexSchema>
/** The runtime part of an image config (`config` field). */
export type ContainerConfig = v.InferOutput<typeof containerConfigSchema>
/** One history entry of an image config. */
export type History = v.InferOutput<typeof historySchema>
/** An image config (OCI or Docker). */
export type ImageConfig = v.InferOutput<typeof imageConfigSchema>
