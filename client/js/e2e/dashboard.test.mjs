// End to end in a real browser: the dashboard example (examples/dashboard.rs)
// serves its page and the hub on one port; headless Chromium (Debian's
// `chromium`, driven over the DevTools protocol by playwright-core) opens it.
// Checks that the page connected, received pushes, completed a call from its
// form, and answered a call the server made to it; then takes a screenshot
// (DASHBOARD_SCREENSHOT, default target/e2e/dashboard.png; DASHBOARD_SCREENSHOT_ROUNDS
// bursts of calls before it, default 2).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';

import { connect } from '../switchboard.js';
import { startExample, repoRoot, HANG_GUARD } from '../testing/support.mjs';
import { launchChromium } from '../testing/chromium.mjs';

const SCREENSHOT = process.env.DASHBOARD_SCREENSHOT ?? path.join(repoRoot, 'target/e2e/dashboard.png');

let dashboard;
let chromium;
let page;
let pageErrors;

before(async () => {
  // The server asks the browsers only when told to, so the test decides when.
  dashboard = await startExample('dashboard', { args: ['--ask-every', '0', '--heartbeat', '1'] });
  chromium = await launchChromium({ width: 1280, height: 940 });
  ({ page, pageErrors } = chromium);
});

after(async () => {
  await chromium?.stop();
  await dashboard?.stop();
});

test('the page loads its files from the same port and connects to the hub', async () => {
  const response = await page.goto(dashboard.url);
  assert.equal(response.status(), 200);
  await page.waitForSelector('#status[data-state="ready"]');
  assert.equal(await page.textContent('#status'), 'ready');
  // The round trip of the application-level heartbeat shows up.
  await page.waitForFunction(() => /\d+ ms/.test(document.getElementById('rtt').textContent));
});

test('the page receives pushed metrics and draws them', async () => {
  await page.waitForFunction(() => Number(document.getElementById('pushes').textContent) >= 3);
  const clients = Number(await page.textContent('#clients'));
  assert.ok(clients >= 1, `connected clients: ${clients}`);
  const points = await page.getAttribute('#line-signal', 'points');
  assert.ok(points.trim().split(' ').length >= 3, `chart points: ${points}`);
});

test('a call from the form shows its result, and an error shows as one', async () => {
  await page.fill('#method', 'add');
  await page.fill('#params', '[2, 3]');
  await page.click('#call-button');
  await page.waitForSelector('#call-result[data-outcome="ok"]');
  assert.equal(await page.textContent('#call-result'), '5');

  await page.fill('#method', 'no_such_method');
  await page.fill('#params', '[]');
  await page.click('#call-button');
  await page.waitForSelector('#call-result[data-outcome="error"]');
  assert.match(await page.textContent('#call-result'), /Rpc error -32601: Method not found/);

  await page.fill('#method', 'echo');
  await page.fill('#params', '{"hello": "browser"}');
  await page.click('#call-button');
  await page.waitForSelector('#call-result[data-outcome="ok"]');
  assert.deepEqual(JSON.parse(await page.textContent('#call-result')), { hello: 'browser' });
});

test('the page answers the server`s call to browser.info', async () => {
  const pageId = await page.evaluate(() => window.dashboard.pageId);
  // From the page's button: the server calls every dashboard, the page shows the answers.
  await page.click('#ask');
  await page.waitForSelector('#browsers tr.me');
  assert.ok(Number(await page.textContent('#answered')) >= 1);
  assert.match(await page.textContent('#browsers tr.me'), /HeadlessChrome|Chrome/);

  // From another client: the server's call_many reaches the page, which answers.
  const client = connect(dashboard.url.replace(/^http/, 'ws') + 'rpc');
  try {
    await client.ready({ timeout: HANG_GUARD });
    const report = await client.call('dashboard.ask_browsers');
    const mine = report.answers.find((a) => a.info?.page_id === pageId);
    assert.ok(mine, JSON.stringify(report));
    assert.match(mine.info.user_agent, /Chrome/);
    assert.ok(mine.info.answered >= 2);
  } finally {
    await client.close();
  }
});

test('the page lists the hub`s own per-method figures, which /metrics on the same port exports', async () => {
  // The form's calls earlier: `add` was called, and `no_such_method` counts as `other`.
  await page.waitForSelector('#method-stats tr[data-method="add"]');
  const cells = await page.$$eval('#method-stats tr[data-method="add"] td', (tds) => tds.map((td) => td.textContent));
  assert.ok(Number(cells[1]) >= 1, `add: ${cells}`);
  assert.match(cells[4], /^[\d.]+ ms$/, `p99 of add: ${cells}`);
  await page.waitForSelector('#method-stats tr[data-method="other"].failed');

  const metrics = await fetch(new URL('/metrics', dashboard.url));
  assert.equal(metrics.status, 200);
  const text = await metrics.text();
  const line = text.split('\n').find((l) => l.startsWith('switchboard_calls_total{direction="incoming",method="add",outcome="ok"}'));
  assert.ok(line && Number(line.split(' ').pop()) >= 1, line);
  assert.equal((await fetch(new URL('/readyz', dashboard.url))).status, 200);
});

test('a screenshot of the working dashboard', async () => {
  // Some traffic for the chart: bursts of calls, a few pushes apart.
  const rounds = Number(process.env.DASHBOARD_SCREENSHOT_ROUNDS ?? 2);
  for (let round = 0; round < rounds; round += 1) {
    await page.evaluate(() => {
      document.getElementById('call-result').textContent = '';
    });
    await page.click('#burst');
    await page.waitForFunction(() => /500 of 500 calls answered/.test(document.getElementById('call-result').textContent));
    const seen = Number(await page.textContent('#pushes'));
    await page.waitForFunction((n) => Number(document.getElementById('pushes').textContent) >= n, seen + 3);
  }
  await page.fill('#method', 'add');
  await page.fill('#params', '[2, 3]');
  await page.click('#call-button');
  await page.waitForFunction(() => document.getElementById('call-result').textContent === '5');
  await fs.mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  const { size } = await fs.stat(SCREENSHOT);
  assert.ok(size > 10_000, `screenshot of ${size} bytes`);
});

test('no errors in the page', () => {
  assert.deepEqual(pageErrors, []);
});
