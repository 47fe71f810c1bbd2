/** The build file: YAML or JSON, paths relative to it, the same settings as the flags; a typo is an error naming it. */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { readBuildFile, readFileMap, splitAdd, splitDiff } from '../../src/build/build-file.ts'
import { isOcikitError } from '../../src/errors.ts'
import { tempDir } from '../helpers/tmp.ts'

test('a YAML build file: paths resolved against its directory, maps and lists accepted, the healthcheck in seconds', async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'tool.sh'), '#!/bin/sh\n', { mode: 0o755 })
  await fs.writeFile(
    path.join(dir, 'ocikit.yaml'),
    `context: ./app
from: node:22-slim
to: [oci:out:dev, localhost:5000/app:1]
platform: linux/arm64
add: ["conf:/etc/app"]
files:
  /usr/local/bin/tool: { file: tool.sh, mode: "0750", uid: 1000 }
  /etc/motd: hello
env: { NODE_OPTIONS: --max-old-space-size=512 }
cmd: [node, server.js]
expose: [8080, 53/udp]
labels: [team=core]
annotations: { com.example.ticket: "42" }
healthcheck: { test: curl -f http://localhost/, interval: 30 }
chown: "1000:1000"
omitDev: true
`,
  )
  const s = readBuildFile(path.join(dir, 'ocikit.yaml'))
  assert.equal(s.context, path.join(dir, 'app'))
  assert.deepEqual(s.to, [`oci:${dir}/out:dev`, 'localhost:5000/app:1'])
  assert.deepEqual(s.platform, { os: 'linux', architecture: 'arm64' })
  assert.deepEqual(s.add, [{ src: path.join(dir, 'conf'), dest: '/etc/app' }])
  assert.deepEqual(s.files?.['/usr/local/bin/tool'], { file: path.join(dir, 'tool.sh'), mode: 0o750, uid: 1000 })
  assert.equal(s.files?.['/etc/motd'], 'hello')
  assert.deepEqual(s.config?.env, ['NODE_OPTIONS=--max-old-space-size=512'])
  assert.deepEqual(s.config?.exposedPorts, ['8080', '53/udp'])
  assert.deepEqual(s.config?.healthcheck, {
    test: ['CMD-SHELL', 'curl -f http://localhost/'],
    intervalSeconds: 30,
    timeoutSeconds: undefined,
    startPeriodSeconds: undefined,
    retries: undefined,
  })
  assert.deepEqual(s.annotations, { 'com.example.ticket': '42' })
  assert.deepEqual(s.chown, { uid: 1000, gid: 1000 })
  assert.equal(s.omitDev, true)
})

test('a JSON build file is read as JSON', async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'b.json'), JSON.stringify({ context: '.', to: 'oci:o' }))
  assert.deepEqual(readBuildFile(path.join(dir, 'b.json')).to, [`oci:${dir}/o`])
})

test('a misspelt key, a wrong kind of value or bad YAML is INVALID_ARGUMENT naming the key', async (t) => {
  const dir = await tempDir(t)
  const f = path.join(dir, 'ocikit.yaml')
  await fs.writeFile(f, 'contxt: .\n')
  assert.throws(
    () => readBuildFile(f),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /contxt/.test(e.message),
  )
  await fs.writeFile(f, 'expose: {a: 1}\n')
  assert.throws(
    () => readBuildFile(f),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /expose/.test(e.message),
  )
  await fs.writeFile(f, 'to: [a\n')
  assert.throws(
    () => readBuildFile(f),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /not valid YAML/.test(e.message),
  )
  assert.throws(
    () => readBuildFile(path.join(dir, 'missing.yaml')),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /cannot read/.test(e.message),
  )
})

test('--files maps: octal modes, local files relative to the map; --add and --diff forms', async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'x'), 'x')
  await fs.writeFile(path.join(dir, 'map.json'), JSON.stringify({ '/bin/x': { file: 'x', mode: '755' }, '/etc/l': { symlink: '/bin/x' } }))
  assert.deepEqual(readFileMap(path.join(dir, 'map.json')), { '/bin/x': { file: path.join(dir, 'x'), mode: 0o755 }, '/etc/l': { symlink: '/bin/x' } })
  await fs.writeFile(path.join(dir, 'bad.json'), JSON.stringify({ '/bin/x': { file: 'x', mode: '999' } }))
  assert.throws(
    () => readFileMap(path.join(dir, 'bad.json')),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT') && /bin\/x/.test(e.message),
  )
  assert.deepEqual(splitAdd('./conf:/etc/app'), { src: './conf', dest: '/etc/app' })
  assert.throws(
    () => splitAdd('./conf'),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT'),
  )
  assert.deepEqual(splitDiff('a:b:/opt'), { old: 'a', new: 'b', dest: '/opt' })
  assert.throws(
    () => splitDiff('a'),
    (e) => isOcikitError(e, 'INVALID_ARGUMENT'),
  )
})
