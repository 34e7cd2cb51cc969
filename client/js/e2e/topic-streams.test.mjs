// End to end in a real browser: a page with a positioned subscription
// (issue 11) that loses its connection gets back what was published
// meanwhile, a reloaded page resumes from the position it saved in
// localStorage, and a hub restart (a new epoch) tells the page to reload.
//
// The hub (examples/js_test_hub.rs) keeps an in-memory history of every
// topic, which a restart starts afresh under a new epoch, and offers the
// contract's `publish [topic, method, params]` as `publish_positioned`,
// which returns the position it got, `{"epoch": E, "offset": N}`.
// SWITCHBOARD_TOPIC_STREAMS_HUB_ARGS adds command-line arguments to the hub.
//
// The page is served by this test on its own port (an origin the hub is
// told to allow, with --allow-origin) and reaches the hub through a TCP
// proxy the test can cut and restore: the page loses its connection, and
// cannot get it back, exactly while the test publishes.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { connect } from '../switchboard.js';
import { startExample, HANG_GUARD } from '../testing/support.mjs';
import { launchChromium } from '../testing/chromium.mjs';

const HUB_ARGS = (process.env.SWITCHBOARD_TOPIC_STREAMS_HUB_ARGS ?? '').split(/\s+/).filter(Boolean);
/** The hub's method that publishes and returns the position. */
const PUBLISH = 'publish_positioned';
const TOPIC = 'feed';
const CLIENT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../switchboard.js');

/** The page: subscribes to TOPIC with positions, keeps its position in localStorage, records everything in window.feed. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>topic streams</title>
<link rel="icon" href="data:,">
<p>state: <span id="state">connecting</span></p>
<script type="module">
  import { connect } from '/switchboard.js';
  const KEY = ${JSON.stringify(`${TOPIC}.position`)};
  const feed = (window.feed = { state: 'connecting', received: [], lost: [], recovered: [], subscribed: null });
  const client = connect(new URLSearchParams(location.search).get('hub'), {
    reconnect: { initial: 20, max: 200, jitter: 0 },
  });
  client.on('state', ({ state }) => {
    feed.state = state;
    document.getElementById('state').textContent = state;
  });
  const save = (position) => localStorage.setItem(KEY, JSON.stringify(position));
  const subscription = await client.subscribe(
    ${JSON.stringify(TOPIC)},
    ({ epoch, offset, params }) => {
      feed.received.push({ epoch, offset, params });
      save({ epoch, offset });
    },
    {
      positioned: true,
      since: JSON.parse(localStorage.getItem(KEY) ?? 'null'),
      onLost: ({ reason, position, previous, missed }) => {
        feed.lost.push({ reason, position, previous, missed });
        save(position);
      },
      onRecovered: (detail) => feed.recovered.push(detail),
    },
  );
  feed.subscribed = subscription.position;
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
      response.end(await fs.readFile(path.join(path.dirname(CLIENT), pathname.slice(1))));
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

/**
 * A TCP proxy to `upstream` (ws://host:port/path) on a free loopback port:
 * `cut()` drops every connection through it and refuses new ones until
 * `restore()`.
 */
async function cuttableProxy(upstream) {
  const target = new URL(upstream);
  let blocked = false;
  const pairs = new Set();
  const drop = (pair) => {
    for (const socket of pair) socket.destroy();
    pairs.delete(pair);
  };
  const server = net.createServer((inbound) => {
    if (blocked) {
      inbound.destroy();
      return;
    }
    const outbound = net.connect(Number(target.port), target.hostname);
    const pair = [inbound, outbound];
    pairs.add(pair);
    for (const socket of pair) {
      socket.on('error', () => drop(pair));
      socket.on('close', () => drop(pair));
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${server.address().port}${target.pathname}`,
    cut() {
      blocked = true;
      for (const pair of [...pairs]) drop(pair);
    },
    restore() {
      blocked = false;
    },
    close() {
      this.cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Offsets in order, each once, one after the other. */
function assertConsecutive(received) {
  for (let i = 1; i < received.length; i += 1) {
    assert.equal(received[i].epoch, received[i - 1].epoch, JSON.stringify(received));
    assert.equal(received[i].offset, received[i - 1].offset + 1, JSON.stringify(received));
  }
}

describe('topic streams in a browser', () => {
  let hub;
  let proxy;
  let site;
  let chromium;
  let page;
  let pageUrl;
  let publisher;
  /** Every position PUBLISH returned, in order. */
  const published = [];

  async function startPublisher() {
    publisher = connect(hub.url);
    await publisher.ready({ timeout: HANG_GUARD });
  }

  /** Publishes `count` publications {n} through the hub; returns their positions. */
  async function publish(count) {
    const positions = [];
    for (let i = 0; i < count; i += 1) {
      const position = await publisher.call(PUBLISH, [TOPIC, TOPIC, { n: published.length + 1 }]);
      assert.equal(typeof position?.epoch, 'string', `${PUBLISH} must return {epoch, offset}: ${JSON.stringify(position)}`);
      assert.ok(Number.isInteger(position.offset), JSON.stringify(position));
      published.push({ ...position, params: { n: published.length + 1 } });
      positions.push(position);
    }
    return positions;
  }

  /** What the page has received, lost and recovered so far. */
  const feed = () => page.evaluate(() => window.feed);

  before(async () => {
    site = await pageServer();
    // The page is on another origin than the hub: allowed explicitly (the
    // hub refuses cross-origin pages by default).
    hub = await startExample('js_test_hub', { args: ['--until-stdin-closes', '--allow-origin', site.url, ...HUB_ARGS] });
    proxy = await cuttableProxy(hub.url);
    pageUrl = `${site.url}/?hub=${encodeURIComponent(proxy.url)}`;
    chromium = await launchChromium({ width: 800, height: 600 });
    page = chromium.page;
    await startPublisher();
  });

  after(async () => {
    await publisher?.close();
    await chromium?.stop();
    await site?.close();
    await proxy?.close();
    await hub?.stop();
  });

  test('the page subscribes with positions and receives each publication with its own', async () => {
    await page.goto(pageUrl);
    await page.waitForFunction(() => window.feed?.subscribed !== null && window.feed?.subscribed !== undefined);
    const positions = await publish(3);
    await page.waitForFunction((n) => window.feed.received.length >= n, 3);
    const { received, lost, recovered } = await feed();
    assert.deepEqual(
      received.map(({ epoch, offset }) => ({ epoch, offset })),
      positions,
    );
    assert.deepEqual(received, published);
    assertConsecutive(received);
    assert.deepEqual(lost, []);
    assert.deepEqual(recovered, []);
  });

  test('a page that loses its connection gets back what was published meanwhile, once and in order', async () => {
    const last = (await feed()).received.at(-1);
    proxy.cut();
    await page.waitForFunction(() => window.feed.state !== 'ready');
    const missed = await publish(5);
    proxy.restore();
    await page.waitForFunction(() => window.feed.recovered.length >= 1);
    await page.waitForFunction((n) => window.feed.received.length >= n, 8);
    const { received, lost, recovered, state } = await feed();
    assert.equal(state, 'ready');
    assert.deepEqual(received, published);
    assertConsecutive(received);
    assert.deepEqual(lost, []);
    assert.deepEqual(recovered, [
      { topic: TOPIC, count: 5, since: { epoch: last.epoch, offset: last.offset }, position: missed.at(-1) },
    ]);
    // Live ones follow the recovered ones.
    await publish(1);
    await page.waitForFunction((n) => window.feed.received.length >= n, 9);
    assert.deepEqual((await feed()).received, published);
  });

  test('a reloaded page resumes after the position it saved', async () => {
    const saved = published.at(-1);
    await page.goto('about:blank');
    const missed = await publish(2);
    await page.goto(pageUrl);
    await page.waitForFunction(() => window.feed?.recovered.length >= 1);
    await page.waitForFunction(() => window.feed.received.length >= 2);
    const { received, lost, recovered, subscribed } = await feed();
    assert.deepEqual(received, published.slice(-2));
    assert.deepEqual(
      received.map(({ epoch, offset }) => ({ epoch, offset })),
      missed,
    );
    assert.deepEqual(recovered, [{ topic: TOPIC, count: 2, since: { epoch: saved.epoch, offset: saved.offset }, position: missed.at(-1) }]);
    assert.deepEqual(subscribed, { epoch: saved.epoch, offset: saved.offset });
    assert.deepEqual(lost, []);
  });

  test('a hub restart starts a new epoch: the page is told it lost its state, and goes on', async () => {
    const last = published.at(-1);
    await publisher.close();
    await hub.kill();
    hub = await hub.restart();
    await startPublisher();
    await page.waitForFunction(() => window.feed.lost.length >= 1);
    const { lost } = await feed();
    assert.equal(lost.length, 1);
    assert.equal(lost[0].reason, 'epoch');
    assert.equal(lost[0].missed, null);
    assert.deepEqual(lost[0].previous, { epoch: last.epoch, offset: last.offset });
    assert.notEqual(lost[0].position.epoch, last.epoch);
    const seen = (await feed()).received.length;
    const [next] = await publish(1);
    assert.equal(next.epoch, lost[0].position.epoch);
    await page.waitForFunction((n) => window.feed.received.length >= n, seen + 1);
    const { received, state } = await feed();
    assert.equal(state, 'ready');
    assert.deepEqual(received.at(-1), published.at(-1));
  });

  test('no errors in the page', () => {
    // Chromium logs each refused WebSocket connection as a console error: those are the test's doing.
    const errors = chromium.pageErrors.filter((e) => !/WebSocket connection to .* failed/.test(e));
    assert.deepEqual(errors, []);
  });
});
