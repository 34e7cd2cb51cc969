// End to end in a real browser: a page served on one port opening the hub
// on another port is cross-origin. The hub (examples/js_test_hub.rs)
// refuses it by default (HTTP 403 before the upgrade: other web sites may
// not use a visitor's browser to reach the hub), and admits it once told to
// with `--allow-origin`. Programs that send no Origin are admitted either way.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import WebSocket from 'ws';

import { connect } from '../switchboard.js';
import { startExample, withTimeout, HANG_GUARD } from '../testing/support.mjs';
import { launchChromium } from '../testing/chromium.mjs';

const CLIENT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The page: connects to the hub named in its query, calls `add`, records what happened in window.result. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>origin</title>
<link rel="icon" href="data:,">
<script type="module">
  import { connect } from '/switchboard.js';
  const result = (window.result = { state: 'connecting', origin: location.origin });
  const client = connect(new URLSearchParams(location.search).get('hub'), { reconnect: false });
  client.on('state', ({ state }) => {
    if (state === 'closed') result.error = client.lastError ? client.lastError.message : null;
    result.state = state;
  });
  try {
    await client.ready();
    result.sum = await client.call('add', [2, 3]);
    result.done = true;
  } catch (e) {
    result.failure = e.message;
  }
</script>
`;

/** Serves PAGE at / and the client's modules beside it, on a free loopback port. */
async function pageServer() {
  const server = http.createServer(async (request, response) => {
    const { pathname } = new URL(request.url, 'http://localhost');
    if (pathname === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      response.end(PAGE);
    } else if (pathname === '/switchboard.js' || pathname === '/protocol.js') {
      response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      response.end(await fs.readFile(path.join(CLIENT_DIR, pathname.slice(1))));
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** What the hub answers an upgrade from `origin`: `{status, body}` (101 when admitted). */
function upgradeFrom(url, origin) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { origin });
      ws.on('open', () => {
        ws.close();
        resolve({ status: 101, body: '' });
      });
      ws.on('unexpected-response', (_request, response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode, body }));
      });
      ws.on('error', (error) => reject(error));
    }),
    HANG_GUARD,
    `no answer to an upgrade from ${origin}`,
  );
}

describe('a page on another port than the hub', () => {
  let site;
  let strict;
  let allowing;
  let chromium;
  let page;

  before(async () => {
    site = await pageServer();
    strict = await startExample('js_test_hub', { args: ['--until-stdin-closes'] });
    allowing = await startExample('js_test_hub', { args: ['--until-stdin-closes', '--allow-origin', site.url] });
    chromium = await launchChromium({ width: 800, height: 600 });
    page = chromium.page;
  });

  after(async () => {
    // Every one is stopped even when another fails to (a stuck hub would keep the run alive).
    const stopped = await Promise.allSettled([chromium?.stop(), site?.close(), strict?.stop(), allowing?.stop()]);
    const failed = stopped.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
  });

  /** Opens the page against `hub` and waits until it has connected and called, or given up. */
  async function openPage(hub) {
    await page.goto(`${site.url}/?hub=${encodeURIComponent(hub.url)}`);
    await page.waitForFunction(() => window.result && (window.result.done || window.result.state === 'closed'));
    return page.evaluate(() => window.result);
  }

  test('is refused by default: the browser cannot open the hub', async () => {
    const result = await openPage(strict);
    assert.equal(result.origin, site.url);
    assert.equal(result.state, 'closed', JSON.stringify(result));
    assert.equal(result.sum, undefined, JSON.stringify(result));
    // What the browser was answered (it hides the status from the page): 403 for this origin.
    const refused = await upgradeFrom(strict.url, site.url);
    assert.equal(refused.status, 403);
    assert.equal(refused.body, `origin "${site.url}" is not allowed to connect to this hub`);
    // A program without an Origin is still admitted.
    const program = connect(strict.url, { reconnect: false });
    try {
      await program.ready({ timeout: HANG_GUARD });
      assert.equal(await program.call('add', [1, 1]), 2);
    } finally {
      await program.close();
    }
  });

  test('is admitted when the hub allows its origin', async () => {
    const result = await openPage(allowing);
    assert.equal(result.sum, 5, JSON.stringify(result));
    assert.equal((await upgradeFrom(allowing.url, site.url)).status, 101);
    // Other origins are still refused.
    assert.equal((await upgradeFrom(allowing.url, 'http://evil.example')).status, 403);
  });
});
