/** Image names: registry references and `transport:reference` names. */
export * from './parse.ts'
export * from './reference.ts'
