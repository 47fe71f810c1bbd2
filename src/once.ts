/**
 * One run per key: the first caller for a key starts the work and every later caller for the
 * same key shares its promise. Used so that a blob that several images of an index hold is
 * transferred once when those images are written at the same time.
 */
export class OncePerKey<K, V> {
  readonly #runs = new Map<K, Promise<V>>()

  /** The result of `work` for `key`, started now unless a run for `key` was started before (then `work` is not called). */
  run(key: K, work: () => Promise<V>): Promise<V> {
    let p = this.#runs.get(key)
    if (!p) {
      p = work()
      this.#runs.set(key, p)
    }
    return p
  }
}
