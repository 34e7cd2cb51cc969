// Positioned topic subscriptions (issue 11): `rpc.subscribe {topic, since |
// positioned}`, `rpc.publication` notifications with epoch and offset, resume
// after a reconnect, gaps filled from `rpc.history`, and `lost` when the
// stream cannot be recovered. Against the scripted server: every frame the
// "server" sends is written here, and every request the client sends is
// checked as the server would receive it.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { connect, ErrorKind } from '../switchboard.js';
import { nextError, nextEvent, HANG_GUARD, channel, scriptedSessions } from '../testing/support.mjs';

const scripted = scriptedSessions();
const { session } = scripted;

/** A client that reconnects at once when its connection drops. */
function reconnecting() {
  return session({ reconnect: { jitter: 0 } });
}

/** The `rpc.publication` notification of `topic` at `epoch`:`offset` (method: the topic). */
function publication(topic, epoch, offset, params = { n: offset }) {
  return { jsonrpc: '2.0', method: 'rpc.publication', params: { topic, epoch, offset, method: topic, params } };
}

/** A publication as the handler receives it. */
function delivered(topic, epoch, offset, params = { n: offset }) {
  return publication(topic, epoch, offset, params).params;
}

/** Reads the client's next frame: it must be a call of `method`. */
async function nextCall(peer, method) {
  const request = await peer.next();
  assert.equal(request.method, method, JSON.stringify(request));
  assert.ok(request.id !== undefined, `${method} must be a call`);
  return request;
}

function answer(peer, request, result) {
  peer.sendJson({ jsonrpc: '2.0', result, id: request.id });
}

/**
 * Subscribes with `options` and answers the `rpc.subscribe` with `result`
 * (topic and recovered: false unless given). Resolves once subscribed, with
 * the subscription, the request the server got, and a channel of what the
 * handler receives.
 */
async function subscribed(client, peer, topic, options, result) {
  const received = channel();
  const subscribing = client.subscribe(topic, (p) => received.push(p), options);
  const request = await nextCall(peer, 'rpc.subscribe');
  answer(peer, request, { topic, recovered: false, ...result });
  return { subscription: await subscribing, request, received };
}

/** Every value of a channel pushed so far, without waiting. */
function drain(ch) {
  const out = [];
  while (ch.size > 0) out.push(ch.take());
  return Promise.all(out);
}

describe('a positioned subscription', () => {
  test('sends the named params, starts at the result`s position and delivers publications with theirs', async () => {
    const { client, peer } = await session();
    const { subscription, request, received } = await subscribed(client, peer, 'prices', { positioned: true }, { epoch: 'E', offset: 5 });
    assert.deepEqual(request.params, { topic: 'prices', positioned: true });
    assert.equal(subscription.topic, 'prices');
    assert.deepEqual(subscription.position, { epoch: 'E', offset: 5 });
    assert.deepEqual(client.topics, ['prices']);

    peer.sendJson(publication('prices', 'E', 6, { p: 101.5 }));
    peer.sendJson(publication('prices', 'E', 7, { p: 101.7 }));
    assert.deepEqual(await received.take(), delivered('prices', 'E', 6, { p: 101.5 }));
    assert.deepEqual(await received.take(), delivered('prices', 'E', 7, { p: 101.7 }));
    assert.deepEqual(subscription.position, { epoch: 'E', offset: 7 });

    // A plain notification named like the topic, and another topic's publication, are not its.
    peer.sendJson({ jsonrpc: '2.0', method: 'prices', params: { p: 1 } });
    peer.sendJson(publication('other', 'E', 8));
    peer.sendJson(publication('prices', 'E', 8));
    assert.deepEqual(await received.take(), delivered('prices', 'E', 8));

    const unsubscribing = subscription.unsubscribe();
    const unsubscribe = await nextCall(peer, 'rpc.unsubscribe');
    assert.deepEqual(unsubscribe.params, ['prices']);
    answer(peer, unsubscribe, true);
    assert.equal(await unsubscribing, true);
    assert.equal(await subscription.unsubscribe(), false);
    assert.deepEqual(client.topics, []);
  });

  test('with since, resumes: the replay comes first, offsets already seen are dropped, then recovered says how many', async () => {
    const { client, peer } = await session();
    const log = [];
    const received = channel();
    const recovered = nextEvent(client, 'recovered');
    const subscribing = client.subscribe(
      'prices',
      (p) => {
        log.push(p.offset);
        received.push(p);
      },
      { since: { epoch: 'E', offset: 3 }, onRecovered: (d) => log.push(`recovered ${d.count}`) },
    );
    const request = await nextCall(peer, 'rpc.subscribe');
    assert.deepEqual(request.params, { topic: 'prices', since: { epoch: 'E', offset: 3 } });
    answer(peer, request, { topic: 'prices', epoch: 'E', offset: 5, recovered: true });
    for (const offset of [3, 4, 5, 6]) peer.sendJson(publication('prices', 'E', offset));
    const subscription = await subscribing;
    for (const offset of [4, 5, 6]) assert.deepEqual(await received.take(), delivered('prices', 'E', offset));
    assert.deepEqual(log, [4, 5, 'recovered 2', 6]);
    assert.deepEqual(await recovered, {
      topic: 'prices',
      count: 2,
      since: { epoch: 'E', offset: 3 },
      position: { epoch: 'E', offset: 5 },
    });
    assert.deepEqual(subscription.position, { epoch: 'E', offset: 6 });
  });

  test('with a since the server no longer has, fires lost before it resolves, and goes on from the new position', async () => {
    const { client, peer } = await session();
    const log = [];
    const lost = nextEvent(client, 'lost');
    const received = channel();
    const subscribing = client.subscribe('prices', (p) => received.push(p), {
      positioned: true,
      since: { epoch: 'old', offset: 40 },
      onLost: (d) => log.push(d),
    });
    const request = await nextCall(peer, 'rpc.subscribe');
    assert.deepEqual(request.params, { topic: 'prices', since: { epoch: 'old', offset: 40 } });
    answer(peer, request, { topic: 'prices', epoch: 'new', offset: 2, recovered: false });
    const subscription = await subscribing;
    const expected = {
      topic: 'prices',
      position: { epoch: 'new', offset: 2 },
      previous: { epoch: 'old', offset: 40 },
      reason: 'epoch',
      missed: null,
    };
    assert.deepEqual(log, [expected]);
    assert.deepEqual(await lost, expected);
    assert.deepEqual(subscription.position, { epoch: 'new', offset: 2 });
    peer.sendJson(publication('prices', 'new', 2)); // already part of the state to reload
    peer.sendJson(publication('prices', 'new', 3));
    assert.deepEqual(await received.take(), delivered('prices', 'new', 3));
  });

  test('refuses what it cannot honour: a bad since, a method option, mixing with a plain subscription', async () => {
    const { client, peer } = await session();
    const noop = () => {};
    await assert.rejects(client.subscribe('t', noop, { since: { epoch: 'E' } }), TypeError);
    await assert.rejects(client.subscribe('t', noop, { since: { epoch: 'E', offset: -1 } }), TypeError);
    await assert.rejects(client.subscribe('t', noop, { since: 'E:4' }), TypeError);
    await assert.rejects(client.subscribe('t', noop, { positioned: true, method: 'tick' }), TypeError);

    const plain = client.subscribe('plain', noop);
    answer(peer, await nextCall(peer, 'rpc.subscribe'), true);
    await plain;
    await assert.rejects(client.subscribe('plain', noop, { positioned: true }), /already subscribed without positions/);

    // A second positioned handler joins the first (one server subscription, one position)...
    const { subscription: first, received: one } = await subscribed(client, peer, 'feed', { positioned: true }, { epoch: 'E', offset: 1 });
    const two = channel();
    const second = await client.subscribe('feed', (p) => two.push(p), { positioned: true });
    await assert.rejects(client.subscribe('feed', noop), /positioned/);
    // ...and may not ask for another starting point.
    await assert.rejects(client.subscribe('feed', noop, { since: { epoch: 'E', offset: 0 } }), /cannot start from E:0/);
    peer.sendJson(publication('feed', 'E', 2));
    assert.deepEqual(await one.take(), delivered('feed', 'E', 2));
    assert.deepEqual(await two.take(), delivered('feed', 'E', 2));
    assert.deepEqual(second.position, first.position);
    // The last of them leaving unsubscribes.
    assert.equal(await first.unsubscribe(), true);
    const unsubscribing = second.unsubscribe();
    answer(peer, await nextCall(peer, 'rpc.unsubscribe'), true);
    assert.equal(await unsubscribing, true);
  });

  test('a result that is not a position rejects the subscription with Decode', async () => {
    const { client, peer } = await session();
    const subscribing = client.subscribe('t', () => {}, { positioned: true });
    answer(peer, await nextCall(peer, 'rpc.subscribe'), true);
    await assert.rejects(subscribing, (e) => e.kind === ErrorKind.Decode);
    assert.deepEqual(client.topics, []);
  });
});

describe('resuming after a reconnect', () => {
  /** A reconnecting client subscribed to `prices` at E:5 that has received 6 and 7, and the server's second connection. */
  async function deliveredUpTo7(options = {}) {
    const { client, peer } = await reconnecting();
    const lost = channel();
    const recovered = channel();
    const sub = await subscribed(
      client,
      peer,
      'prices',
      { positioned: true, onLost: (d) => lost.push(d), onRecovered: (d) => recovered.push(d), ...options },
      { epoch: 'E', offset: 5 },
    );
    peer.sendJson(publication('prices', 'E', 6));
    peer.sendJson(publication('prices', 'E', 7));
    assert.equal((await sub.received.take()).offset, 6);
    assert.equal((await sub.received.take()).offset, 7);
    peer.socket.terminate();
    const again = await scripted.server.accept();
    const request = await nextCall(again, 'rpc.subscribe');
    return { ...sub, client, peer: again, request, lost, recovered };
  }

  test('subscribes again with since = the last position delivered; the replay continues the stream without duplicates', async () => {
    const { client, peer, request, received, recovered, lost, subscription } = await deliveredUpTo7();
    // The exact params the server receives.
    assert.deepEqual(request.params, { topic: 'prices', since: { epoch: 'E', offset: 7 } });
    const event = nextEvent(client, 'recovered');
    answer(peer, request, { topic: 'prices', epoch: 'E', offset: 10, recovered: true });
    // The server replays from an older offset than asked: 6 and 7 were delivered already.
    for (const offset of [6, 7, 8, 9, 10, 11]) peer.sendJson(publication('prices', 'E', offset));
    for (const offset of [8, 9, 10, 11]) assert.deepEqual(await received.take(), delivered('prices', 'E', offset));
    const expected = { topic: 'prices', count: 3, since: { epoch: 'E', offset: 7 }, position: { epoch: 'E', offset: 10 } };
    assert.deepEqual(await recovered.take(), expected);
    assert.deepEqual(await event, expected);
    assert.deepEqual(subscription.position, { epoch: 'E', offset: 11 });
    assert.equal(received.size, 0);
    assert.equal(lost.size, 0);
  });

  test('recovered: false fires lost with the new position, and the stream goes on from there', async () => {
    const { client, peer, request, received, lost, subscription } = await deliveredUpTo7();
    const event = nextEvent(client, 'lost');
    answer(peer, request, { topic: 'prices', epoch: 'E', offset: 20, recovered: false });
    const expected = {
      topic: 'prices',
      position: { epoch: 'E', offset: 20 },
      previous: { epoch: 'E', offset: 7 },
      reason: 'gone',
      missed: 13,
    };
    assert.deepEqual(await lost.take(), expected);
    assert.deepEqual(await event, expected);
    assert.deepEqual(subscription.position, { epoch: 'E', offset: 20 });
    peer.sendJson(publication('prices', 'E', 21));
    assert.deepEqual(await received.take(), delivered('prices', 'E', 21));
    assert.equal(received.size, 0);
  });

  test('a new epoch on resubscribing is lost too, with missed unknown', async () => {
    const { peer, request, lost, received } = await deliveredUpTo7();
    answer(peer, request, { topic: 'prices', epoch: 'F', offset: 0, recovered: false });
    const detail = await lost.take();
    assert.equal(detail.reason, 'epoch');
    assert.equal(detail.missed, null);
    assert.deepEqual(detail.position, { epoch: 'F', offset: 0 });
    peer.sendJson(publication('prices', 'F', 1));
    assert.deepEqual(await received.take(), delivered('prices', 'F', 1));
  });

  test('a server whose stream is behind the position is lost, whatever it says, so that its publications are not dropped', async () => {
    const { peer, request, lost, received } = await deliveredUpTo7();
    answer(peer, request, { topic: 'prices', epoch: 'E', offset: 3, recovered: true });
    const detail = await lost.take();
    assert.deepEqual(detail.position, { epoch: 'E', offset: 3 });
    assert.equal(detail.missed, 0);
    peer.sendJson(publication('prices', 'E', 4));
    assert.deepEqual(await received.take(), delivered('prices', 'E', 4));
  });

  test('publications that arrive before the subscribe result wait for it', async () => {
    const { peer, request, received } = await deliveredUpTo7();
    // Out of the wire's order: the replay overtakes the result. Nothing is lost or doubled.
    for (const offset of [7, 8]) peer.sendJson(publication('prices', 'E', offset));
    answer(peer, request, { topic: 'prices', epoch: 'E', offset: 8, recovered: true });
    peer.sendJson(publication('prices', 'E', 9));
    for (const offset of [8, 9]) assert.deepEqual(await received.take(), delivered('prices', 'E', offset));
  });
});

describe('gaps in a live stream', () => {
  /** A client subscribed to `prices` at E:5 that has received 6. */
  async function at6() {
    const { client, peer } = await session();
    const lost = channel();
    const sub = await subscribed(client, peer, 'prices', { positioned: true, onLost: (d) => lost.push(d) }, { epoch: 'E', offset: 5 });
    peer.sendJson(publication('prices', 'E', 6));
    assert.equal((await sub.received.take()).offset, 6);
    return { ...sub, client, peer, lost };
  }

  test('an offset jump asks rpc.history since the last position and delivers the missing ones in order', async () => {
    const { peer, received, lost, subscription } = await at6();
    peer.sendJson(publication('prices', 'E', 9));
    const history = await nextCall(peer, 'rpc.history');
    assert.deepEqual(history.params, { topic: 'prices', since: { epoch: 'E', offset: 6 } });
    // Live ones keep coming while the history is on its way.
    peer.sendJson(publication('prices', 'E', 10));
    peer.sendJson(publication('prices', 'E', 11));
    answer(peer, history, {
      epoch: 'E',
      offset: 10,
      publications: [7, 8, 9, 10].map((offset) => delivered('prices', 'E', offset)),
    });
    for (const offset of [7, 8, 9, 10, 11]) assert.deepEqual(await received.take(), delivered('prices', 'E', offset));
    peer.sendJson(publication('prices', 'E', 12));
    assert.deepEqual(await received.take(), delivered('prices', 'E', 12));
    assert.deepEqual(subscription.position, { epoch: 'E', offset: 12 });
    assert.equal(received.size, 0);
    assert.equal(lost.size, 0);
  });

  test('a history that returns only part asks again from where it got to', async () => {
    const { peer, received, lost } = await at6();
    peer.sendJson(publication('prices', 'E', 10));
    const first = await nextCall(peer, 'rpc.history');
    answer(peer, first, { epoch: 'E', offset: 10, publications: [7, 8].map((o) => delivered('prices', 'E', o)) });
    const second = await nextCall(peer, 'rpc.history');
    assert.deepEqual(second.params, { topic: 'prices', since: { epoch: 'E', offset: 8 } });
    answer(peer, second, { epoch: 'E', offset: 10, publications: [9, 10].map((o) => delivered('prices', 'E', o)) });
    for (const offset of [7, 8, 9, 10]) assert.deepEqual(await received.take(), delivered('prices', 'E', offset));
    peer.sendJson(publication('prices', 'E', 11));
    assert.equal((await received.take()).offset, 11);
    assert.equal(lost.size, 0);
  });

  test('a gap whose history is gone fires lost, and the stream goes on after the latest offset', async () => {
    const { client, peer, received, lost, subscription } = await at6();
    const event = nextEvent(client, 'lost');
    peer.sendJson(publication('prices', 'E', 9));
    const history = await nextCall(peer, 'rpc.history');
    // 7 and 8 are no longer in history.
    answer(peer, history, { epoch: 'E', offset: 9, publications: [delivered('prices', 'E', 9)] });
    const expected = {
      topic: 'prices',
      position: { epoch: 'E', offset: 9 },
      previous: { epoch: 'E', offset: 6 },
      reason: 'gone',
      missed: 3,
    };
    assert.deepEqual(await lost.take(), expected);
    assert.deepEqual(await event, expected);
    assert.deepEqual(subscription.position, { epoch: 'E', offset: 9 });
    peer.sendJson(publication('prices', 'E', 10));
    assert.deepEqual(await received.take(), delivered('prices', 'E', 10));
    assert.equal(received.size, 0);
  });

  test('an epoch change in a live publication asks rpc.history, and is lost', async () => {
    const { peer, received, lost, subscription } = await at6();
    peer.sendJson(publication('prices', 'F', 1));
    const history = await nextCall(peer, 'rpc.history');
    assert.deepEqual(history.params, { topic: 'prices', since: { epoch: 'E', offset: 6 } });
    answer(peer, history, { epoch: 'F', offset: 2, publications: [1, 2].map((o) => delivered('prices', 'F', o)) });
    assert.deepEqual(await lost.take(), {
      topic: 'prices',
      position: { epoch: 'F', offset: 2 },
      previous: { epoch: 'E', offset: 6 },
      reason: 'epoch',
      missed: null,
    });
    peer.sendJson(publication('prices', 'F', 3));
    assert.deepEqual(await received.take(), delivered('prices', 'F', 3));
    assert.deepEqual(subscription.position, { epoch: 'F', offset: 3 });
    assert.equal(received.size, 0);
  });

  test('a history call that fails is reported and lost, and the stream goes on from the publication that showed the gap', async () => {
    const { client, peer, received, lost } = await at6();
    const reported = nextError(client, (d) => d.kind === 'history');
    peer.sendJson(publication('prices', 'E', 9));
    const history = await nextCall(peer, 'rpc.history');
    peer.sendJson({ jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id: history.id });
    const detail = await lost.take();
    assert.equal(detail.reason, 'failed');
    assert.deepEqual(detail.position, { epoch: 'E', offset: 8 });
    assert.equal(detail.missed, 2);
    assert.equal(detail.error.code, -32601);
    assert.equal((await reported).error.code, -32601);
    assert.deepEqual(await received.take(), delivered('prices', 'E', 9));
  });

  test('a disconnect while the history is on its way resumes from the last position delivered', async () => {
    const { client, peer } = await reconnecting();
    const { received, subscription } = await subscribed(client, peer, 'prices', { positioned: true }, { epoch: 'E', offset: 6 });
    peer.sendJson(publication('prices', 'E', 9));
    await nextCall(peer, 'rpc.history');
    peer.socket.terminate();
    const again = await scripted.server.accept();
    const request = await nextCall(again, 'rpc.subscribe');
    assert.deepEqual(request.params, { topic: 'prices', since: { epoch: 'E', offset: 6 } });
    answer(again, request, { topic: 'prices', epoch: 'E', offset: 9, recovered: true });
    for (const offset of [7, 8, 9]) again.sendJson(publication('prices', 'E', offset));
    for (const offset of [7, 8, 9]) assert.deepEqual(await received.take(), delivered('prices', 'E', offset));
    assert.deepEqual(subscription.position, { epoch: 'E', offset: 9 });
  });
});

describe('what the application`s code throws', () => {
  test('a handler that throws is reported, its publication still counts, and the next one arrives', async () => {
    const { client, peer } = await session();
    const received = channel();
    const subscribing = client.subscribe(
      'prices',
      (p) => {
        if (p.offset === 1) throw new Error('handler broke');
        received.push(p);
      },
      { positioned: true },
    );
    answer(peer, await nextCall(peer, 'rpc.subscribe'), { topic: 'prices', epoch: 'E', offset: 0, recovered: false });
    const subscription = await subscribing;
    const reported = nextError(client, (d) => d.kind === 'handler');
    peer.sendJson(publication('prices', 'E', 1));
    peer.sendJson(publication('prices', 'E', 2));
    const detail = await reported;
    assert.match(detail.error.message, /handler broke/);
    assert.match(detail.source, /prices/);
    assert.deepEqual(await received.take(), delivered('prices', 'E', 2));
    assert.deepEqual(subscription.position, { epoch: 'E', offset: 2 });
  });

  test('an onLost callback and a lost listener that throw are reported as handler and listener', async () => {
    const { client, peer } = await session();
    const handler = nextError(client, (d) => d.kind === 'handler');
    const listener = nextError(client, (d) => d.kind === 'listener');
    client.on('lost', () => {
      throw new Error('lost listener broke');
    });
    const received = channel();
    const subscribing = client.subscribe('prices', (p) => received.push(p), {
      since: { epoch: 'E', offset: 1 },
      onLost: () => {
        throw new Error('onLost broke');
      },
    });
    answer(peer, await nextCall(peer, 'rpc.subscribe'), { topic: 'prices', epoch: 'E', offset: 9, recovered: false });
    await subscribing;
    assert.match((await handler).error.message, /onLost broke/);
    assert.match((await listener).error.message, /lost listener broke/);
    peer.sendJson(publication('prices', 'E', 10));
    assert.equal((await received.take()).offset, 10);
  });

  test('a publication that is not one is reported, not delivered', async () => {
    const { client, peer } = await session();
    const { received } = await subscribed(client, peer, 'prices', { positioned: true }, { epoch: 'E', offset: 0 });
    const reported = nextError(client, (d) => d.kind === 'invalidPublication');
    peer.sendJson({ jsonrpc: '2.0', method: 'rpc.publication', params: { topic: 'prices', epoch: 'E', offset: 'one' } });
    assert.match((await reported).error.message, /rpc.publication/);
    peer.sendJson(publication('prices', 'E', 1));
    assert.deepEqual(await received.take(), delivered('prices', 'E', 1));
    assert.deepEqual(await drain(received), []);
  });
});
