/** Parsing `WWW-Authenticate` challenges (RFC 7235) as registries send them. */

/** One challenge: a scheme (`basic`, `bearer`) and its parameters (`realm`, `service`, `scope`). */
export interface Challenge {
  scheme: string
  params: Record<string, string>
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]/

/** Parses a `WWW-Authenticate` header into its challenges, in order. */
export function parseChallenges(header: string | null): Challenge[] {
  if (!header) return []
  const out: Challenge[] = []
  let i = 0
  const skip = () => {
    while (i < header.length && (header[i] === ' ' || header[i] === '\t' || header[i] === ',')) i++
  }
  const token = () => {
    const start = i
    while (i < header.length && TOKEN.test(header[i] as string)) i++
    return header.slice(start, i)
  }
  while (i < header.length) {
    skip()
    const scheme = token()
    if (!scheme) break
    const params: Record<string, string> = {}
    out.push({ scheme: scheme.toLowerCase(), params })
    for (;;) {
      skip()
      const save = i
      const name = token()
      while (header[i] === ' ') i++
      if (!name || header[i] !== '=') {
        i = save // the next challenge's scheme
        break
      }
      i++
      while (header[i] === ' ') i++
      let value = ''
      if (header[i] === '"') {
        i++
        while (i < header.length && header[i] !== '"') {
          if (header[i] === '\\') i++
          value += header[i] ?? ''
          i++
        }
        i++
      } else value = token()
      params[name.toLowerCase()] = value
    }
  }
  return out
}
