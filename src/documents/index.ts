/** OCI and Docker v2 documents: types, media types, validation and canonical JSON. No I/O. */
export * from './canonical.ts'
export * from './media-types.ts'
export * from './schemas.ts'
export * from './validate.ts'
