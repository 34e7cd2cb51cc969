// Connection life: state events, reconnect with backoff, re-subscribe after a
// server restart, pending calls failing with Disconnected, Offline and
// waitReady, connection failures (Transport), close().

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { connect, ErrorKind, State } from '../switchboard.js';
import { startExample, nextEvent, channel, untilState, HANG_GUARD, rejectsWith } from '../testing/support.mjs';


/** A TCP server that accepts and drops every connection, counting them. */
async function dropper() {
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted += 1;
    socket.destroy();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${server.address().port}/`,
    get accepted() {
      return accepted;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('a server restart', () => {
  let hub;
  let client;
  after(async () => {
    await client?.close();
    await hub?.stop();
  });

  test('drops pending calls, goes offline, reconnects and re-subscribes', async () => {
    hub = await startExample('js_test_hub', { args: ['--until-stdin-closes'] });
    client = connect(hub.url);
    const states = [];
    client.on('state', ({ state }) => states.push(state));
    await client.ready({ timeout: HANG_GUARD });
    assert.deepEqual(states, [State.Ready]);

    const clock = channel();
    const unsubscribe = await client.subscribe('clock', (params) => clock.push(params));
    await client.call('publish', ['clock', { tick: 1 }]);
    assert.deepEqual(await clock.take(), { tick: 1 });

    // The server dies with a call pending: it fails at once, and is not resent.
    const pending = rejectsWith(client.call('sleep', [60_000], { timeout: HANG_GUARD }), ErrorKind.Disconnected);
    const down = nextEvent(client, 'state', (d) => d.previous === State.Ready);
    await hub.kill();
    await pending;
    const { error } = await down;
    assert.equal(error.kind, ErrorKind.Transport);

    // While it is down: calls fail fast with Offline, or wait when asked to.
    await untilState(client, State.Offline);
    await rejectsWith(client.call('add', [1, 2]), ErrorKind.Offline);
    await rejectsWith(client.notify('remember', ['x']), ErrorKind.Offline);
    await rejectsWith(client.call('add', [1, 2], { waitReady: true, timeout: 20 }), ErrorKind.Timeout);
    const waiting = client.call('add', [1, 2], { waitReady: true, timeout: HANG_GUARD });
    const lateNews = channel();
    const lateSubscription = client.subscribe('late', (params) => lateNews.push(params));

    hub = await hub.restart();
    await untilState(client, State.Ready);
    assert.equal(await waiting, 3);
    await lateSubscription;
    // Both topics were subscribed again on the new connection, before anything else.
    assert.equal(await client.call('subscribers', ['clock']), 1);
    assert.equal(await client.call('subscribers', ['late']), 1);
    await client.call('publish', ['clock', { tick: 2 }]);
    assert.deepEqual(await clock.take(), { tick: 2 });
    await client.call('publish', ['late', ['news']]);
    assert.deepEqual(await lateNews.take(), ['news']);
    assert.equal(client.connections, 2);

    // The states went ready -> connecting (the immediate retry) -> offline/connecting ... -> ready.
    assert.equal(states[0], State.Ready);
    assert.equal(states[1], State.Connecting);
    assert.equal(states.at(-1), State.Ready);
    assert.ok(states.includes(State.Offline));
    assert.ok(states.slice(1, -1).every((s) => s === State.Connecting || s === State.Offline), states.join());

    await unsubscribe();
    assert.equal(await client.call('subscribers', ['clock']), 0);
  });
});

describe('connection life', () => {
  let hub;
  after(async () => {
    await hub?.stop();
  });

  test('a connection the server closes fails its pending calls with Disconnected and comes back', async () => {
    hub = await startExample('js_test_hub', { args: ['--until-stdin-closes'] });
    const client = connect(hub.url);
    try {
      await client.ready({ timeout: HANG_GUARD });
      const pending = rejectsWith(client.call('sleep', [60_000], { timeout: HANG_GUARD }), ErrorKind.Disconnected);
      const down = nextEvent(client, 'state', (d) => d.previous === State.Ready);
      await client.notify('kick');
      const error = await pending;
      assert.match(error.message, /sleep/);
      const { state, error: why } = await down;
      // The first retry is immediate.
      assert.equal(state, State.Connecting);
      assert.match(why.message, /4001: kicked/);
      await untilState(client, State.Ready);
      assert.equal(await client.call('add', [2, 2]), 4);
    } finally {
      await client.close();
    }
  });

  test('close() fails pending calls with Disconnected, then everything with Offline', async () => {
    const client = connect(hub.url);
    await client.ready({ timeout: HANG_GUARD });
    const pending = rejectsWith(client.call('sleep', [60_000], { timeout: HANG_GUARD }), ErrorKind.Disconnected);
    const closed = nextEvent(client, 'state', (d) => d.state === State.Closed);
    await client.close();
    await pending;
    assert.equal((await closed).error, null);
    assert.equal(client.state, State.Closed);
    await rejectsWith(client.call('add', [1, 1]), ErrorKind.Offline);
    await rejectsWith(client.call('add', [1, 1], { waitReady: true }), ErrorKind.Offline);
    await rejectsWith(client.ready(), ErrorKind.Offline);
    await assert.rejects(client.subscribe('x', () => {}), (e) => e.kind === ErrorKind.Offline);
  });

  test('a client-wide waitReady lets the first calls wait for the connection', async () => {
    const client = connect(hub.url, { waitReady: true });
    try {
      assert.equal(client.state, State.Connecting);
      assert.equal(await client.call('add', [20, 22]), 42);
    } finally {
      await client.close();
    }
  });

  test('an upgrade the server refuses is a Transport error', async () => {
    const wrongPath = hub.url.replace(/\/rpc$/, '/not-the-hub');
    const client = connect(wrongPath, { reconnect: false });
    const error = await rejectsWith(client.ready(), ErrorKind.Transport);
    assert.match(error.message, /cannot connect/);
    assert.equal(client.state, State.Closed);
    await rejectsWith(client.call('add', [1, 1]), ErrorKind.Offline);
  });
});

describe('the reconnect policy', () => {
  test('retries at once, then after delays, and gives up after maxRetries', async () => {
    const server = await dropper();
    try {
      const client = connect(server.url, { reconnect: { maxRetries: 3, initial: 20, jitter: 0 } });
      const states = [];
      client.on('state', ({ state }) => states.push(state));
      const error = await rejectsWith(client.ready(), ErrorKind.Transport);
      assert.match(error.message, /cannot connect/);
      // The first attempt and three retries.
      assert.equal(server.accepted, 4);
      // Retry 1 is immediate (no offline in between); retries 2 and 3 wait (offline, then connecting).
      assert.deepEqual(states, [State.Offline, State.Connecting, State.Offline, State.Connecting, State.Closed]);
    } finally {
      await server.close();
    }
  });

  test('reconnect: false makes one attempt', async () => {
    const server = await dropper();
    try {
      const client = connect(server.url, { reconnect: false });
      await rejectsWith(client.ready(), ErrorKind.Transport);
      assert.equal(server.accepted, 1);
    } finally {
      await server.close();
    }
  });

  test('nothing listening is a Transport error, and close() stops the retries', async () => {
    const server = await dropper();
    const url = server.url;
    await server.close(); // now nothing listens on that port
    const client = connect(url);
    const offline = await nextEvent(client, 'state', (d) => d.state === State.Offline);
    assert.equal(offline.error.kind, ErrorKind.Transport);
    await rejectsWith(client.call('add', [1, 1]), ErrorKind.Offline);
    await client.close();
    assert.equal(client.state, State.Closed);
    await rejectsWith(client.ready(), ErrorKind.Offline);
  });
});
