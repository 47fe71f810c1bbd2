/**
 * explore's page in a real headless browser (Debian's chromium, driven by playwright-core): the
 * layer list, the sizes, a chosen layer's files, the merged files, the wasted-space list show what
 * the image has; a file named like markup shows as text and runs nothing; a screenshot is written
 * beside the test output (test-results/explore.png).
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { exploreImage } from '../../src/explore/analyze.ts'
import { serveExploration } from '../../src/explore/server.ts'
import { appendLayers } from '../../src/image/mutate.ts'
import { layerFromFiles } from '../../src/layer/encode.ts'
import { threeLayers } from '../helpers/explore-image.ts'
import { needPeers, which } from '../helpers/peers.ts'
import { tempDir } from '../helpers/tmp.ts'

const SHOTS = path.resolve(import.meta.dirname, '../../test-results')

describe('explore in a headless browser', needPeers('chromium'), () => {
  test('the page shows the layers, sizes, a layer’s files, the merged files and the wasted space; markup in a name stays text', async (t) => {
    const { chromium } = await import('playwright-core')
    const { one } = await threeLayers(await tempDir(t))
    const evil = '<img src=x onerror=alert(1)>'
    const img = await appendLayers(one, [layerFromFiles({ [evil]: 'x' })])
    const s = await serveExploration(await exploreImage(img))
    t.after(() => s.close())
    const browser = await chromium.launch({ executablePath: which('chromium'), headless: true, args: ['--no-sandbox'] })
    t.after(() => browser.close())
    const page = await browser.newPage()
    const dialogs: string[] = []
    page.on('dialog', async (d) => {
      dialogs.push(d.message())
      await d.dismiss()
    })
    await page.goto(s.url)
    assert.equal(await page.locator('tr[id^="layer-"]').count(), 4)
    assert.match((await page.locator('body').textContent()) ?? '', /wasted\s*1\.1 KiB in 2 file\(s\)/)
    await fs.mkdir(SHOTS, { recursive: true })
    await page.screenshot({ path: path.join(SHOTS, 'explore.png'), fullPage: true })
    // A chosen layer: the first one's files.
    await page.locator('#layer-0 a').first().click()
    const layer0 = (await page.locator('table').textContent()) ?? ''
    assert.match(layer0, /b\.bin/)
    assert.match(layer0, /dir\/c/)
    // The merged files after the last layer: b.bin deleted, the markup-named file as text.
    await page.goto(s.url)
    await page.locator('#layer-3 a', { hasText: 'merged up to here' }).click()
    const merged = (await page.locator('table').textContent()) ?? ''
    assert.doesNotMatch(merged, /b\.bin/)
    assert.ok(merged.includes(evil), 'the name is shown as it is')
    assert.equal(await page.locator('img').count(), 0, 'and is no element')
    // The wasted space.
    await page.locator('nav a', { hasText: 'wasted space' }).click()
    const wasted = (await page.locator('table').textContent()) ?? ''
    assert.match(wasted, /b\.bin[\s\S]*deleted by layer 2/)
    assert.match(wasted, /a\.txt[\s\S]*overwritten by layer 1/)
    assert.deepEqual(dialogs, [], 'no script ran')
  })
})
