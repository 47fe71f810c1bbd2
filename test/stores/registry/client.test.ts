/** The repository client on an in-process fake network: listing limits. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isOcikitError } from '../../../src/errors.ts'
import { MAX_LISTED_NAMES, RegistryClient } from '../../../src/stores/registry/client.ts'
import { fakeNet } from '../../helpers/fake-net.ts'

const names = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

test('one large page of tags (400,000 in one answer) is collected without overflowing the stack (issue 13.10)', async () => {
  const tags = names(400_000, 't')
  const net = fakeNet({ 'https://r.example': () => ({ status: 200, body: JSON.stringify({ name: 'app', tags }) }) })
  const got = await new RegistryClient('r.example', 'app', { http: net.send }).tags()
  assert.equal(got.length, tags.length)
  assert.equal(got.at(-1), 't399999')
})

test('the total over all pages is capped, not only each page (issue 13.10)', async () => {
  const per = Math.ceil(MAX_LISTED_NAMES / 2) + 1
  const net = fakeNet({
    'https://r.example': (r) => {
      const page = Number(r.url.searchParams.get('last') ?? 0)
      return { status: 200, headers: { link: `</v2/app/tags/list?last=${page + 1}>; rel="next"` }, body: JSON.stringify({ tags: names(per, `p${page}-`) }) }
    },
  })
  await assert.rejects(
    new RegistryClient('r.example', 'app', { http: net.send }).tags(),
    (e) => isOcikitError(e, 'TOO_LARGE') && e.message.includes(`more than ${MAX_LISTED_NAMES} names`),
  )
  assert.equal(net.log.length, 2, 'stopped at the page that went over')
})
