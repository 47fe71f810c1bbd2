import assert from 'node:assert/strict'
import { test } from 'node:test'
import { digestOf } from '../../src/digest.ts'
import { isOcikitError } from '../../src/errors.ts'
import { formatName, parseName } from '../../src/name/parse.ts'
import { parseReference, parseRegistryHost } from '../../src/name/reference.ts'

const D = digestOf('x')

test('docker-style normalisation of registry references', () => {
  const cases: [string, string][] = [
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['user/app', 'docker.io/user/app:latest'],
    ['index.docker.io/library/alpine', 'docker.io/library/alpine:latest'],
    ['localhost:5000/app:v1', 'localhost:5000/app:v1'],
    ['localhost/app', 'localhost/app:latest'],
    ['127.0.0.1:5000/a/b/c:v2', '127.0.0.1:5000/a/b/c:v2'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
    [`ghcr.io/org/app@${D}`, `ghcr.io/org/app@${D}`],
    [`ghcr.io/org/app:v1@${D}`, `ghcr.io/org/app:v1@${D}`],
  ]
  for (const [input, want] of cases) assert.equal(formatName(parseName(input)), want, input)
  assert.equal(formatName(parseName('docker://alpine')), 'docker.io/library/alpine:latest')
  assert.deepEqual(parseReference('quay.io/a/b:c'), { registry: 'quay.io', repository: 'a/b', tag: 'c', digest: undefined })
})

test('bad registry references are INVALID_NAME with the reason', () => {
  for (const [bad, why] of [
    ['Alpine', /lowercase|bad registry/],
    ['alpine:', /bad tag/],
    ['alpine:-x', /bad tag/],
    ['alpine@sha256:xyz', /not a digest/],
    ['a//b', /path component/],
    ['docker:alpine', /docker:\/\//],
  ] as const) {
    assert.throws(
      () => parseName(bad),
      (e) => isOcikitError(e, 'INVALID_NAME') && why.test(e.message),
      bad,
    )
  }
})

test('transport names: oci, oci-archive, docker-archive, bfc', () => {
  assert.deepEqual(parseName('oci:./out:v1'), { transport: 'oci', path: './out', tag: 'v1' })
  assert.deepEqual(parseName('oci:/abs/dir'), { transport: 'oci', path: '/abs/dir', tag: undefined })
  assert.deepEqual(parseName(`oci:out@${D}`), { transport: 'oci', path: 'out', digest: D })
  assert.deepEqual(parseName('oci-archive:img.tar:v2'), { transport: 'oci-archive', path: 'img.tar', ref: 'v2' })
  assert.deepEqual(parseName('docker-archive:img.tar:app:v1'), { transport: 'docker-archive', path: 'img.tar', ref: 'app:v1' })
  assert.deepEqual(parseName('bfc:img.bfc'), { transport: 'bfc', path: 'img.bfc', ref: undefined })
  for (const s of ['oci:./out:v1', `oci:out@${D}`, 'oci-archive:a.tar:t', 'docker-archive:a.tar:app:v1', 'bfc:x.bfc:t'])
    assert.equal(formatName(parseName(s)), s)
})

test('bad transport names are INVALID_NAME', () => {
  for (const bad of ['oci:', 'oci::tag', 'oci:dir:bad tag', `oci:dir@md5:d41d8cd98f00b204e9800998ecf8427e`, 'dir:/tmp/x', '', ' oci:x']) {
    assert.throws(
      () => parseName(bad),
      (e) => isOcikitError(e, 'INVALID_NAME'),
      bad,
    )
  }
  assert.throws(
    () => parseName('dir:/tmp/x'),
    (e) => isOcikitError(e) && /unknown transport 'dir'/.test(e.message),
  )
})

test('a password in a docker:// name never appears in the error (issue 13.5)', () => {
  for (const input of [
    'docker://alice:s3cret-pw@registry.example/app:v1',
    'alice:s3cret-pw@registry.example/app',
    'docker://alice:s3/cret@host/app',
    'docker://alice:s3cret@localhost:5000/app',
  ]) {
    assert.throws(
      () => parseName(input),
      (e) => isOcikitError(e, 'INVALID_NAME') && !e.message.includes('s3cret') && !e.message.includes('cret@') && /login/.test(e.message),
      input,
    )
  }
  // A digest after '@' is no password, and stays in the name.
  assert.equal(formatName(parseName(`localhost:5000/app@${D}`)), `localhost:5000/app@${D}`)
})

test('ports outside 1-65535 are INVALID_NAME errors naming the port (issue 13.6)', () => {
  for (const port of ['0', '65536', '99999999999', '00']) {
    assert.throws(
      () => parseName(`localhost:${port}/app:v1`),
      (e) => isOcikitError(e, 'INVALID_NAME') && e.message.includes(`port ${port} is outside 1-65535`),
      port,
    )
  }
  assert.equal(parseReference('localhost:65535/app').registry, 'localhost:65535')
  assert.equal(parseReference('localhost:1/app').registry, 'localhost:1')
})

test('registry hosts for login and catalog: HOST[:PORT], no path, query, fragment, user or bad port (issue 13.6)', () => {
  assert.equal(parseRegistryHost('ghcr.io'), 'ghcr.io')
  assert.equal(parseRegistryHost('https://localhost:5000/'), 'localhost:5000')
  assert.equal(parseRegistryHost('docker://index.docker.io'), 'docker.io')
  assert.equal(parseRegistryHost('[::1]:5000'), '[::1]:5000')
  const bad: [string, RegExp][] = [
    ['ghcr.io/v2/evil', /no path/],
    ['ghcr.io?x=1', /no path, query/],
    ['ghcr.io#frag', /fragment/],
    ['localhost:0', /port 0/],
    ['localhost:70000', /port 70000/],
    ['ftp://ghcr.io', /scheme/],
    ['alice:pw@ghcr.io', /credentials/],
    ['', /not a host/],
  ]
  for (const [input, why] of bad) {
    assert.throws(
      () => parseRegistryHost(input),
      (e) => isOcikitError(e, 'INVALID_NAME') && why.test(e.message) && !e.message.includes(':pw'),
      input,
    )
  }
})
