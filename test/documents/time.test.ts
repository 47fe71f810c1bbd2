import assert from 'node:assert/strict'
import { test } from 'node:test'
import { EPOCH_ISO, isoTime, resolveTimestamp } from '../../src/documents/time.ts'
import { isOcikitError } from '../../src/errors.ts'

test('timestamps: explicit, else $SOURCE_DATE_EPOCH, else the epoch; ISO 8601 without fractions', (t) => {
  const old = process.env.SOURCE_DATE_EPOCH
  t.after(() => {
    if (old === undefined) delete process.env.SOURCE_DATE_EPOCH
    else process.env.SOURCE_DATE_EPOCH = old
  })
  delete process.env.SOURCE_DATE_EPOCH
  assert.equal(isoTime(resolveTimestamp(undefined)), EPOCH_ISO)
  process.env.SOURCE_DATE_EPOCH = '1700000000'
  assert.equal(isoTime(resolveTimestamp(undefined)), '2023-11-14T22:13:20Z')
  assert.equal(resolveTimestamp(new Date(1500)), 1)
  assert.equal(resolveTimestamp('42'), 42)
  for (const bad of [-1, 2 ** 31, '2040-01-01T00:00:00Z', 'soon']) {
    assert.throws(
      () => resolveTimestamp(bad),
      (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /1970 and 2038/.test(e.message),
      String(bad),
    )
  }
})
