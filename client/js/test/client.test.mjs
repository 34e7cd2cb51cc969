// The JavaScript client against a live hub (examples/js_test_hub.rs): calls,
// notifications, batches, timeouts, error kinds, calls from the server,
// discovery and the application-level heartbeat.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';

import { connect, ErrorKind, ErrorCode, RpcError, State } from '../switchboard.js';
import { startExample, nextEvent, channel, HANG_GUARD, withTimeout, rejectsWith } from '../testing/support.mjs';

let hub;
let client;

before(async () => {
  hub = await startExample('js_test_hub', { args: ['--until-stdin-closes'] });
  client = connect(hub.url, {
    methods: {
      'browser.double': ([x]) => x * 2,
      'browser.slow': async ([ms, value]) => {
        await new Promise((r) => setTimeout(r, ms));
        return value;
      },
      'browser.refuse': () => {
        throw new RpcError(4242, 'refused on purpose', { why: 'test' });
      },
      'browser.crash': () => {
        throw new Error('boom');
      },
      'browser.nothing': () => undefined,
    },
  });
  await client.ready({ timeout: HANG_GUARD });
});

after(async () => {
  await client?.close();
  await hub?.stop();
});


describe('calls', () => {
  test('a call resolves with the result', async () => {
    assert.equal(client.state, State.Ready);
    assert.equal(await client.call('add', [2, 3]), 5);
    assert.deepEqual(await client.call('get_data'), ['hello', 5]);
    assert.equal(await client.call('subtract', { minuend: 42, subtrahend: 23 }), 19);
    assert.deepEqual(await client.call('echo', { nested: [1, 'two', null] }), { nested: [1, 'two', null] });
  });

  test('many calls in flight at once each get their own result', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => client.call('add', [i, 1])));
    assert.deepEqual(results, Array.from({ length: 200 }, (_, i) => i + 1));
    assert.equal(client.pending, 0);
  });

  test('a server error object rejects with Rpc, code, message and data', async () => {
    const error = await rejectsWith(client.call('fail', [-32001, 'no such account', { account: 7 }]), ErrorKind.Rpc);
    assert.equal(error.code, -32001);
    assert.equal(error.message, 'no such account');
    assert.deepEqual(error.data, { account: 7 });
    const missing = await rejectsWith(client.call('no_such_method'), ErrorKind.Rpc);
    assert.equal(missing.code, ErrorCode.MethodNotFound);
    const bad = await rejectsWith(client.call('add', ['x', 'y']), ErrorKind.Rpc);
    assert.equal(bad.code, ErrorCode.InvalidParams);
  });

  test('a call without a reply in time rejects with Timeout and its late reply is dropped', async () => {
    const before = client.unknownReplies;
    const error = await rejectsWith(client.call('sleep', [400], { timeout: 50 }), ErrorKind.Timeout);
    assert.match(error.message, /50 ms/);
    assert.equal(client.pending, 0);
    // The late reply arrives later and is counted, not delivered: wait for it with a call behind it.
    await client.call('sleep', [800]);
    assert.equal(client.unknownReplies, before + 1);
  });

  test('params that are not an array or object, or not JSON, reject with Encode', async () => {
    await rejectsWith(client.call('echo', 5), ErrorKind.Encode);
    await rejectsWith(client.call('echo', [10n]), ErrorKind.Encode);
    const cyclic = [];
    cyclic.push(cyclic);
    await rejectsWith(client.notify('echo', cyclic), ErrorKind.Encode);
  });

  test('a decode function that throws rejects with Decode', async () => {
    const asNumber = (value) => {
      if (typeof value !== 'number') throw new TypeError(`not a number: ${JSON.stringify(value)}`);
      return value;
    };
    assert.equal(await client.call('add', [1, 1], { decode: asNumber }), 2);
    const error = await rejectsWith(client.call('get_data', undefined, { decode: asNumber }), ErrorKind.Decode);
    assert.match(error.message, /not a number/);
  });

  test('a reply that breaks the spec rejects with InvalidResponse', async () => {
    const sent = channel();
    const spy = connect(hub.url, { trace: (direction, text) => direction === 'out' && sent.push(text) });
    try {
      await spy.ready({ timeout: HANG_GUARD });
      const victim = spy.call('sleep', [60_000], { timeout: HANG_GUARD });
      const { id } = JSON.parse(await sent.take());
      // The server sends a reply to the pending call with both a result and an error.
      const forged = JSON.stringify({ jsonrpc: '2.0', result: 1, error: { code: 1, message: 'x' }, id });
      assert.equal(await spy.call('raw', [forged]), true);
      await rejectsWith(victim, ErrorKind.InvalidResponse);
      const second = spy.call('sleep', [60_000], { timeout: HANG_GUARD });
      await sent.take(); // the `raw` call
      const { id: id2 } = JSON.parse(await sent.take());
      await spy.call('raw', [JSON.stringify({ jsonrpc: '2.0', error: { code: 'nope' }, id: id2 })]);
      await rejectsWith(second, ErrorKind.InvalidResponse);
    } finally {
      await spy.close();
    }
  });
});

describe('notifications and batches', () => {
  test('a notification reaches the server', async () => {
    await client.notify('remember', ['a note']);
    // Frames are handled in order, so the call after it sees it.
    assert.equal(await client.call('recall'), 'a note');
  });

  test('a batch resolves with one outcome per call, in the order added', async () => {
    const outcomes = await client
      .batch()
      .call('add', [1, 2])
      .notify('remember', ['from a batch'])
      .call('no_such_method', [])
      .call('fail', [7, 'seven'])
      .call('echo', ['last'])
      .send();
    assert.equal(outcomes.length, 4);
    assert.deepEqual(outcomes[0], { status: 'fulfilled', value: 3 });
    assert.equal(outcomes[1].status, 'rejected');
    assert.equal(outcomes[1].reason.kind, ErrorKind.Rpc);
    assert.equal(outcomes[1].reason.code, ErrorCode.MethodNotFound);
    assert.equal(outcomes[2].reason.code, 7);
    assert.deepEqual(outcomes[3], { status: 'fulfilled', value: ['last'] });
    assert.equal(await client.call('recall'), 'from a batch');
  });

  test('an empty batch sends nothing, a batch of notifications resolves empty', async () => {
    assert.deepEqual(await client.batch().send(), []);
    assert.deepEqual(await client.batch().notify('remember', ['n']).send(), []);
    assert.equal(await client.call('recall'), 'n');
  });

  test('a batch not answered in time rejects each of its calls with Timeout', async () => {
    // The server answers a batch as one array, once its slowest call is done.
    const outcomes = await client.batch().call('sleep', [500]).call('add', [1, 1]).send({ timeout: 100 });
    assert.deepEqual(
      outcomes.map((o) => o.reason?.kind),
      [ErrorKind.Timeout, ErrorKind.Timeout],
    );
  });
});

describe('calls from the server', () => {
  test('the server calls a registered method and gets its result', async () => {
    assert.deepEqual(await client.call('ask', ['browser.double', [21]]), { result: 42 });
    assert.deepEqual(await client.call('ask', ['browser.slow', [20, 'late']]), { result: 'late' });
    assert.deepEqual(await client.call('ask', ['browser.nothing', []]), { result: null });
  });

  test('errors thrown by a method become error objects; unknown methods answer -32601', async () => {
    assert.deepEqual(await client.call('ask', ['browser.refuse', []]), {
      error: { code: 4242, message: 'refused on purpose', data: { why: 'test' } },
    });
    const crash = await client.call('ask', ['browser.crash', []]);
    assert.equal(crash.error.code, ErrorCode.InternalError);
    assert.equal(crash.error.data, 'boom');
    const unknown = await client.call('ask', ['browser.unknown', []]);
    assert.equal(unknown.error.code, ErrorCode.MethodNotFound);
  });

  test('register() adds a method at run time and its return value removes it', async () => {
    const off = client.register('browser.hello', ([name]) => `hello ${name}`);
    assert.deepEqual(await client.call('ask', ['browser.hello', ['ada']]), { result: 'hello ada' });
    off();
    assert.equal((await client.call('ask', ['browser.hello', ['ada']])).error.code, ErrorCode.MethodNotFound);
  });

  test('many server calls at once are all answered', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => client.call('ask', ['browser.double', [i]])));
    assert.deepEqual(
      answers.map((a) => a.result),
      Array.from({ length: 50 }, (_, i) => i * 2),
    );
  });
});

describe('subscriptions and discovery', () => {
  test('subscribe delivers the topic, and unsubscribe stops it', async () => {
    const got = channel();
    const unsubscribe = await client.subscribe('news', (params, info) => got.push({ params, info }));
    assert.deepEqual(client.topics, ['news']);
    assert.equal(await client.call('subscribers', ['news']), 1);
    assert.equal(await client.call('publish', ['news', { headline: 'one' }]), 1);
    assert.deepEqual(await got.take(), { params: { headline: 'one' }, info: { topic: 'news', method: 'news' } });
    assert.equal(await unsubscribe(), true);
    assert.equal(await client.call('subscribers', ['news']), 0);
    assert.equal(await client.call('publish', ['news', { headline: 'two' }]), 0);
    assert.equal(got.size, 0);
  });

  test('every notification is also an event', async () => {
    const seen = nextEvent(client, 'notification', (d) => d.method === 'alerts');
    await client.subscribe('alerts', () => {});
    await client.call('publish', ['alerts', ['fire']]);
    assert.deepEqual(await seen, { method: 'alerts', params: ['fire'] });
  });

  test('a handler that throws is reported as an error event', async () => {
    const unsubscribe = await client.subscribe('bad', () => {
      throw new Error('handler broke');
    });
    const reported = new Promise((resolve) => {
      const off = client.on('error', (detail, event) => {
        event.preventDefault();
        off();
        resolve(detail);
      });
    });
    await client.call('publish', ['bad', []]);
    const detail = await withTimeout(reported, HANG_GUARD, 'no error event');
    assert.match(detail.error.message, /handler broke/);
    assert.match(detail.source, /bad/);
    await unsubscribe();
  });

  test('discover returns the OpenRPC document', async () => {
    const document = await client.discover();
    assert.match(document.openrpc, /^1\./);
    const names = document.methods.map((m) => m.name);
    for (const name of ['add', 'ask', 'rpc.subscribe', 'rpc.discover']) assert.ok(names.includes(name), name);
  });
});

describe('the application-level heartbeat', () => {
  test('the client answers rpc.heartbeat and learns the round trip', async () => {
    const beating = await startExample('js_test_hub', { args: ['--until-stdin-closes', '--app-heartbeat-ms', '100'] });
    const c = connect(beating.url);
    try {
      const first = await nextEvent(c, 'heartbeat');
      assert.equal(first.interval, 100);
      // The server measured a round trip from our answer and sends it with a later beat.
      const measured = await nextEvent(c, 'heartbeat', (d) => typeof d.rtt === 'number');
      assert.ok(measured.rtt >= 0);
      assert.equal(c.rtt, measured.rtt);
      assert.equal(typeof (await c.call('heartbeat_rtt')), 'number');
    } finally {
      await c.close();
      await beating.stop();
    }
  });

  test('silence longer than the heartbeat timeout drops the connection and reconnects', async () => {
    // Beats every 300 ms but the client accepts only 100 ms of silence: after the
    // first beat the watchdog fires before the next one, as for a dead server.
    const beating = await startExample('js_test_hub', { args: ['--until-stdin-closes', '--app-heartbeat-ms', '300'] });
    const c = connect(beating.url, { heartbeatTimeout: 100 });
    try {
      await c.ready({ timeout: HANG_GUARD });
      const dropped = nextEvent(c, 'state', (d) => d.previous === State.Ready);
      const error = await rejectsWith(c.call('sleep', [60_000], { timeout: HANG_GUARD }), ErrorKind.Disconnected);
      assert.match(error.message, /sleep/);
      const { error: why } = await dropped;
      assert.equal(why.kind, ErrorKind.Transport);
      assert.match(why.message, /no heartbeat from the server for 100 ms/);
      await nextEvent(c, 'state', (d) => d.state === State.Ready);
      assert.equal(c.connections, 2);
    } finally {
      await c.close();
      await beating.stop();
    }
  });
});
