import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isOcikitError, PlatformNotFoundError } from '../../src/errors.ts'
import { currentPlatform, formatPlatform, parsePlatform, platformMatches, selectPlatform } from '../../src/image/platform.ts'
import { randomIndex } from '../../src/image/random.ts'

test('parsePlatform and formatPlatform', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' })
  assert.equal(formatPlatform(parsePlatform('linux/amd64')), 'linux/amd64')
  for (const bad of ['linux', 'linux/', 'a/b/c/d', 'linux/amd 64'])
    assert.throws(
      () => parsePlatform(bad),
      (e) => isOcikitError(e, 'INVALID_ARGUMENT'),
    )
})

test('this machine is a linux platform with a Go-style architecture name', () => {
  const p = currentPlatform()
  assert.equal(p.os, 'linux')
  assert.notEqual(p.architecture, 'x64')
})

test('arm64 without a variant matches v8', () => {
  assert.ok(platformMatches(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' }))
  assert.ok(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }))
  assert.ok(!platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' }))
})

test('selectPlatform picks the matching image and lists what exists otherwise', async () => {
  const idx = await randomIndex({ seed: 5, layers: 1 })
  const img = await selectPlatform(idx, parsePlatform('linux/arm64'), 'idx')
  assert.equal((await img.config()).architecture, 'arm64')
  await assert.rejects(
    selectPlatform(idx, parsePlatform('linux/s390x'), 'idx'),
    (e) => e instanceof PlatformNotFoundError && e.available.join() === 'linux/amd64,linux/arm64/v8' && /linux\/s390x/.test(e.message),
  )
})
