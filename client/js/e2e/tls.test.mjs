// End to end in a real browser over TLS: the test hub (examples/js_test_hub.rs
// with --tls-dir) serves wss:// and https:// on one port with a self-signed
// certificate it makes at start. Headless Chromium trusts exactly that
// certificate, by its public key (--ignore-certificate-errors-spki-list with
// the SHA-256 of the certificate's SubjectPublicKeyInfo): every other
// certificate is still verified. The page comes from the hub's own origin
// over https, connects with the JavaScript client over wss://, makes a call,
// subscribes to a topic and receives a publication, and POSTs a call over
// https with fetch.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { startExample } from '../testing/support.mjs';
import { launchChromium } from '../testing/chromium.mjs';

/** The page: connects to the hub, calls, subscribes, publishes to itself; results in window.tls. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>tls</title>
<link rel="icon" href="data:,">
<script type="module">
  import { connect } from '/switchboard.js';
  const tls = (window.tls = { state: 'connecting', sum: null, received: [], error: null });
  try {
    const client = connect(\`wss://\${location.host}/rpc\`);
    client.on('state', ({ state }) => (tls.state = state));
    await client.ready();
    tls.sum = await client.call('add', [2, 3]);
    await client.subscribe('secure-news', (params) => tls.received.push(params));
    tls.reached = await client.call('publish', ['secure-news', { headline: 'over wss' }]);
    const response = await fetch('/rpc', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'add', params: [20, 22], id: 1 }),
    });
    tls.post = { status: response.status, body: await response.json() };
  } catch (error) {
    tls.error = String(error);
  }
</script>`;

let dir;
let hub;
let chromium;

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'switchboard-tls-'));
  await fs.writeFile(path.join(dir, 'index.html'), PAGE);
  hub = await startExample('js_test_hub', { args: ['--tls-dir', dir, '--until-stdin-closes'] });
  const pem = await fs.readFile(path.join(dir, 'cert.pem'), 'utf8');
  const spki = new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  const pin = crypto.createHash('sha256').update(spki).digest('base64');
  chromium = await launchChromium({ args: [`--ignore-certificate-errors-spki-list=${pin}`] });
});

after(async () => {
  await chromium?.stop();
  await hub?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

test('the hub says wss:// for its TLS port', () => {
  assert.match(hub.url, /^wss:\/\/localhost:\d+\/rpc$/);
});

test('a page from the hub over https calls, subscribes and POSTs over TLS', async () => {
  const { page, pageErrors } = chromium;
  const origin = `https://${hub.host}`;
  const response = await page.goto(`${origin}/`);
  assert.equal(response.status(), 200);
  assert.equal(new URL(page.url()).protocol, 'https:');
  await page.waitForFunction(() => window.tls && (window.tls.error || window.tls.post));
  const tls = await page.evaluate(() => window.tls);
  assert.equal(tls.error, null, `the page failed: ${tls.error}`);
  assert.equal(tls.state, 'ready');
  assert.equal(tls.sum, 5);
  assert.equal(tls.reached, 1, 'the page itself is the subscriber');
  await page.waitForFunction(() => window.tls.received.length >= 1);
  assert.deepEqual(await page.evaluate(() => window.tls.received), [{ headline: 'over wss' }]);
  assert.deepEqual(tls.post, { status: 200, body: { jsonrpc: '2.0', result: 42, id: 1 } });
  assert.deepEqual(pageErrors, []);
});
