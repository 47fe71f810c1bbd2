import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TransferGroup } from '../src/transfers.ts'

test('a transfer group: the first failure stops the others, and failed() waits until they have settled', async () => {
  const g = new TransferGroup()
  let slowSettled = false
  const slow = g.run(
    () =>
      new Promise<void>((_, reject) =>
        g.signal.addEventListener('abort', () =>
          setTimeout(() => {
            slowSettled = true
            reject(new Error('cut short'))
          }, 30),
        ),
      ),
  )
  slow.catch(() => {})
  const first = new Error('the first failure')
  g.stop(first)
  g.stop(new Error('a later one'))
  assert.equal(await g.failed(new Error('what reached the top')), first, 'the failure that stopped the group')
  assert.ok(slowSettled, 'failed() returned only after the running transfer settled')
  let started = false
  await assert.rejects(
    g.run(async () => {
      started = true
    }),
    (e) => e === first,
  )
  assert.equal(started, false, 'nothing starts once the group is stopped')
})

test("a transfer group's signal fires with the caller's", () => {
  const outer = new AbortController()
  const g = new TransferGroup(outer.signal)
  assert.equal(g.signal.aborted, false)
  outer.abort(new Error('Ctrl-C'))
  assert.equal(g.signal.aborted, true)
})
