// Types for the built library as the benchmarks import it (dist/ is built before they run).
declare module '../dist/layer/build.js' {
  export * from '../src/layer/build.ts'
}
