/**
 * Schemas of the OCI and Docker v2 documents. Unknown fields are kept (the specs
 * require readers to ignore them); known fields are checked for type and form.
 * Types are derived from the schemas so the two can never disagree.
 */
import { z } from 'zod'
import { type Digest, digestProblem } from '../digest.ts'

const digest = z.string().superRefine((v, ctx) => {
  const p = digestProblem(v)
  if (p) ctx.addIssue({ code: 'custom', message: p.message })
}) as unknown as z.ZodType<Digest>

// RFC 6838 type/subtype, as image-spec descriptor.md restricts it.
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/
const mediaType = z.string().superRefine((v, ctx) => {
  if (!MEDIA_TYPE.test(v)) ctx.addIssue({ code: 'custom', message: `not a media type: '${v}'` })
})
const annotations = z.record(z.string(), z.string())
const size = z.int().nonnegative()

export const platformSchema = z
  .object({
    architecture: z.string(),
    os: z.string(),
    'os.version': z.string().optional(),
    'os.features': z.array(z.string()).optional(),
    variant: z.string().optional(),
    features: z.array(z.string()).optional(),
  })
  .loose()

export const descriptorSchema = z
  .object({
    mediaType,
    digest,
    size,
    urls: z.array(z.string()).optional(),
    annotations: annotations.optional(),
    data: z.base64().optional(),
    artifactType: mediaType.optional(),
    platform: platformSchema.optional(),
  })
  .loose()

export const manifestSchema = z
  .object({
    schemaVersion: z.literal(2),
    mediaType: mediaType.optional(),
    artifactType: mediaType.optional(),
    config: descriptorSchema,
    layers: z.array(descriptorSchema),
    subject: descriptorSchema.optional(),
    annotations: annotations.optional(),
  })
  .loose()

export const indexSchema = z
  .object({
    schemaVersion: z.literal(2),
    mediaType: mediaType.optional(),
    artifactType: mediaType.optional(),
    manifests: z.array(descriptorSchema),
    subject: descriptorSchema.optional(),
    annotations: annotations.optional(),
  })
  .loose()

const stringList = z.array(z.string()).nullable().optional()

export const containerConfigSchema = z
  .object({
    User: z.string().optional(),
    ExposedPorts: z.record(z.string(), z.object({}).loose()).nullable().optional(),
    Env: stringList,
    Entrypoint: stringList,
    Cmd: stringList,
    Volumes: z.record(z.string(), z.object({}).loose()).nullable().optional(),
    WorkingDir: z.string().optional(),
    Labels: z.record(z.string(), z.string()).nullable().optional(),
    StopSignal: z.string().optional(),
    ArgsEscaped: z.boolean().optional(),
  })
  .loose()

export const historySchema = z
  .object({
    created: z.string().optional(),
    author: z.string().optional(),
    created_by: z.string().optional(),
    comment: z.string().optional(),
    empty_layer: z.boolean().optional(),
  })
  .loose()

export const imageConfigSchema = z
  .object({
    created: z.string().optional(),
    author: z.string().optional(),
    architecture: z.string(),
    os: z.string(),
    'os.version': z.string().optional(),
    'os.features': z.array(z.string()).optional(),
    variant: z.string().optional(),
    config: containerConfigSchema.nullable().optional(),
    rootfs: z.object({ type: z.literal('layers'), diff_ids: z.array(digest) }).loose(),
    history: z.array(historySchema).nullable().optional(),
  })
  .loose()

export const ociLayoutSchema = z.object({ imageLayoutVersion: z.string() }).loose()

/** A platform: os, architecture and optional variant and OS details. */
export type Platform = z.infer<typeof platformSchema>
/** A content descriptor: what a blob is, its digest and size. */
export type Descriptor = z.infer<typeof descriptorSchema>
/** An image manifest (OCI or Docker v2 schema 2). */
export type Manifest = z.infer<typeof manifestSchema>
/** An image index (OCI) or manifest list (Docker v2). */
export type Index = z.infer<typeof indexSchema>
/** The runtime part of an image config (`config` field). */
export type ContainerConfig = z.infer<typeof containerConfigSchema>
/** One history entry of an image config. */
export type History = z.infer<typeof historySchema>
/** An image config (OCI or Docker). */
export type ImageConfig = z.infer<typeof imageConfigSchema>
