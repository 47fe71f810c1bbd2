/**
 * explore's local web page: a server on 127.0.0.1 that renders an explored image as plain HTML
 * (no script, no CDN: it works offline, and every name from the image is escaped on the server,
 * since an image is untrusted input). Every request must carry the random token the URL was
 * printed with, and a `Host` of the loopback address and port (a page elsewhere cannot reach it
 * through DNS rebinding).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { type Exploration, type ExploredFile, type FileChange, removedBy } from './analyze.ts'

/** HTML-escapes text from the image (names, link targets, history). */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)
}

function size(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`
}

const STYLE = `body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}
td.n{text-align:right;font-variant-numeric:tabular-nums}.bar{background:#4a90d9;height:10px;display:inline-block}nav a{margin-right:1em}code{font-size:13px}`

/** The merged filesystem after layer `upto` (whiteouts applied), by path. */
function mergedUpTo(x: Exploration, upto: number): Map<string, ExploredFile & { layer: number }> {
  const m = new Map<string, ExploredFile & { layer: number }>()
  for (const l of x.layers.slice(0, upto + 1)) {
    for (const f of l.files) {
      if (f.type === 'whiteout' || f.type === 'opaque') {
        for (const p of removedBy(m, f)) m.delete(p)
        continue
      }
      m.set(f.path, { ...f, layer: l.index })
    }
  }
  return m
}

/** Rows of files with sizes summed per directory and a bar for where the space goes. */
function fileTable(files: Iterable<ExploredFile & { layer?: number }>, filter: string): string {
  const all = [...files].filter((f) => f.path.includes(filter)).sort((a, b) => (a.path < b.path ? -1 : 1))
  const dirs = new Map<string, number>()
  for (const f of all) {
    if (f.type !== 'file') continue
    const parts = f.path.split('/')
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/')
      dirs.set(d, (dirs.get(d) ?? 0) + f.size)
    }
  }
  const max = Math.max(1, ...all.map((f) => (f.type === 'directory' ? (dirs.get(f.path) ?? 0) : f.size)))
  const rows = all.slice(0, 5000).map((f) => {
    const bytes = f.type === 'directory' ? (dirs.get(f.path) ?? 0) : f.size
    const link = f.linkname ? ` → ${esc(f.linkname)}` : ''
    return `<tr><td><code>${esc(f.path)}${link}</code></td><td>${esc(f.type)}</td><td class="n">${size(bytes)}</td><td><span class="bar" style="width:${Math.round((200 * bytes) / max)}px"></span></td><td>${(f.mode & 0o7777).toString(8).padStart(4, '0')}</td><td>${f.uid}:${f.gid}</td>${f.layer === undefined ? '' : `<td class="n">${f.layer}</td>`}</tr>`
  })
  const more = all.length > 5000 ? `<p>${all.length - 5000} more; filter to see them.</p>` : ''
  return `<table><tr><th>path</th><th>type</th><th>size</th><th></th><th>mode</th><th>owner</th></tr>${rows.join('')}</table>${more}`
}

/** The page for one request (path and query), or undefined for a page that does not exist. */
export function renderPage(
  x: Exploration,
  url: URL,
  token: string,
  diff?: { against: string; changes: readonly FileChange[] },
  platforms: readonly string[] = [],
): string | undefined {
  // The platform chosen (of an index) stays in every link and form.
  const platform = url.searchParams.get('platform')
  const keep: Record<string, string> = platform ? { platform } : {}
  const q = (p: Record<string, string | number>) =>
    `?${new URLSearchParams({ token, ...keep, ...Object.fromEntries(Object.entries(p).map(([k, v]) => [k, String(v)])) })}`
  const nav = `<nav><a href="/${q({})}">overview</a><a href="/fs${q({ upto: x.layers.length - 1 })}">files</a><a href="/wasted${q({})}">wasted space</a>${diff ? `<a href="/diff${q({})}">diff</a>` : ''}</nav>`
  const filter = url.searchParams.get('filter') ?? ''
  const page = (title: string, body: string) =>
    `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>${STYLE}</style></head><body>${nav}<h1>${esc(title)}</h1>${body}</body></html>`
  const form = (path: string, extra: Record<string, string>) =>
    `<form action="${path}"><input type="hidden" name="token" value="${esc(token)}">${Object.entries({ ...keep, ...extra })
      .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
      .join('')}<input name="filter" placeholder="filter by path" value="${esc(filter)}"> <button>filter</button></form>`
  if (url.pathname === '/') {
    const c = x.config
    const facts = [
      ['digest', x.digest],
      ['media type', x.mediaType],
      ['platform', x.platform],
      ['entrypoint', JSON.stringify(c.entrypoint ?? null)],
      ['cmd', JSON.stringify(c.cmd ?? null)],
      ['user', c.user ?? ''],
      ['working dir', c.workingDir ?? ''],
      ['ports', (c.exposedPorts ?? []).join(', ')],
      ['env', (c.env ?? []).join('\n')],
      [
        'labels',
        Object.entries(c.labels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join('\n'),
      ],
      ['size', `${size(x.compressedSize)} compressed, ${size(x.uncompressedSize)} uncompressed, ${x.layers.length} layer(s)`],
      ['efficiency', `${(x.efficiency * 100).toFixed(1)}% (${size(x.finalBytes)} of ${size(x.shippedBytes)} shipped end up in the filesystem)`],
      ['wasted', `${size(x.wastedBytes)} in ${x.wasted.length} file(s)`],
    ]
    const layers = x.layers
      .map(
        (l) =>
          `<tr id="layer-${l.index}"><td><a href="/layer${q({ i: l.index })}">${l.index}</a></td><td class="n">${size(l.size)}</td><td class="n">${size(l.uncompressedSize)}</td><td class="n">${l.added.count} (${size(l.added.bytes)})</td><td class="n">${l.changed.count} (${size(l.changed.bytes)})</td><td class="n">${l.deleted.count} (${size(l.deleted.bytes)})</td><td><code>${esc(l.createdBy ?? '')}</code></td><td><a href="/fs${q({ upto: l.index })}">merged up to here</a></td></tr>`,
      )
      .join('')
    const picker =
      platforms.length > 1
        ? `<p>platforms of the index: ${platforms.map((p) => (p === x.platform ? `<b>${esc(p)}</b>` : `<a href="/${q({ platform: p })}">${esc(p)}</a>`)).join(' ')}</p>`
        : ''
    return page(
      'ocikit explore',
      `${picker}<table>${facts.map(([k, v]) => `<tr><th>${esc(k as string)}</th><td><pre>${esc(v as string)}</pre></td></tr>`).join('')}</table>
<h2>layers</h2><table><tr><th>#</th><th>compressed</th><th>uncompressed</th><th>added</th><th>changed</th><th>deleted</th><th>created by</th><th></th></tr>${layers}</table>`,
    )
  }
  if (url.pathname === '/layer') {
    const l = x.layers[Number(url.searchParams.get('i'))]
    if (!l) return undefined
    return page(`layer ${l.index}: ${l.digest}`, `${form('/layer', { i: String(l.index) })}${fileTable(l.files, filter)}`)
  }
  if (url.pathname === '/fs') {
    const upto = Math.min(x.layers.length - 1, Math.max(0, Number(url.searchParams.get('upto') ?? x.layers.length - 1)))
    return page(`files up to layer ${upto}`, `${form('/fs', { upto: String(upto) })}${fileTable(mergedUpTo(x, upto).values(), filter)}`)
  }
  if (url.pathname === '/wasted') {
    const rows = x.wasted.map(
      (w) => `<tr><td><code>${esc(w.path)}</code></td><td class="n">${size(w.bytes)}</td><td>layer ${w.layer}</td><td>${w.how} by layer ${w.by}</td></tr>`,
    )
    return page(`wasted space: ${size(x.wastedBytes)}`, `<table><tr><th>path</th><th>bytes</th><th>written by</th><th></th></tr>${rows.join('')}</table>`)
  }
  if (url.pathname === '/diff' && diff) {
    const rows = diff.changes.map(
      (c) =>
        `<tr><td>${c.change}</td><td><code>${esc(c.path)}</code></td><td class="n">${c.before === undefined ? '' : size(c.before)}</td><td class="n">${c.after === undefined ? '' : size(c.after)}</td></tr>`,
    )
    return page(`changes from ${diff.against}`, `<table><tr><th></th><th>path</th><th>before</th><th>after</th></tr>${rows.join('')}</table>`)
  }
  return undefined
}

/** Starts the page's server on 127.0.0.1 (`port`, default a free one); returns its URL (with the token) and how to stop it. */
export async function serveExploration(
  x: Exploration,
  o: {
    port?: number | undefined
    diff?: { against: string; changes: readonly FileChange[] } | undefined
    /** For an index: its platforms, and how to explore another one (on first visit, then kept). */
    platforms?: { list: readonly string[]; explore: (platform: string) => Promise<Exploration> } | undefined
  } = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const explored = new Map<string, Promise<Exploration>>([[x.platform, Promise.resolve(x)]])
  const pick = (p: string | null): Promise<Exploration> | undefined => {
    if (!p || p === x.platform) return explored.get(x.platform)
    if (!o.platforms?.list.includes(p)) return undefined
    let e = explored.get(p)
    if (!e) {
      e = o.platforms.explore(p)
      explored.set(p, e)
      e.catch(() => explored.delete(p))
    }
    return e
  }
  const token = randomBytes(16).toString('hex')
  let port = 0
  // node:http is loaded here, not when the CLI starts.
  const server = process.getBuiltinModule('node:http').createServer((req, res) => {
    const refuse = (why: string) => res.writeHead(403, { 'content-type': 'text/plain' }).end(`refused: ${why}\n`)
    const host = req.headers.host ?? ''
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) return refuse('this page answers only to 127.0.0.1')
    const url = new URL(req.url ?? '/', `http://${host}`)
    const given = Buffer.from(url.searchParams.get('token') ?? '')
    if (given.length !== token.length || !timingSafeEqual(given, Buffer.from(token))) return refuse('no valid token (use the URL ocikit printed)')
    if (req.method !== 'GET') return void res.writeHead(405).end()
    const chosen = pick(url.searchParams.get('platform'))
    if (!chosen) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('no such platform in this index\n')
    chosen.then(
      (e) => {
        const html = renderPage(e, url, token, e === x ? o.diff : undefined, o.platforms?.list)
        if (html === undefined) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('no such page\n')
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
          'x-content-type-options': 'nosniff',
          'referrer-policy': 'no-referrer',
        })
        res.end(html)
      },
      (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`could not explore that platform: ${esc(e.message)}\n`),
    )
  })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(o.port ?? 0, '127.0.0.1', () => resolve()))
  port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
