// What the application's own code throws (event listeners, subscription
// handlers, the trace function) never escapes into the client: it is
// reported as an `error` event of kind `listener` or `handler`, and the
// client carries on. An `error` listener that throws is only logged.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { connect, State } from '../switchboard.js';
import { nextError, nextEvent, HANG_GUARD, channel, scriptedSessions } from '../testing/support.mjs';

const scripted = scriptedSessions();
const { session } = scripted;

/** Proves the client still works: a call the scripted server answers. */
async function stillWorks(client, peer) {
  const call = client.call('still', [], { timeout: HANG_GUARD });
  const { id } = await peer.next();
  peer.sendJson({ jsonrpc: '2.0', result: 'alive', id });
  assert.equal(await call, 'alive');
}

describe('listeners that throw', () => {
  test('a state listener that throws is reported as an error event and the client carries on', async () => {
    let reported;
    const { client, peer } = await session({}, (c) => {
      reported = nextError(c, (d) => d.kind === 'listener');
      const off = c.on('state', () => {
        off();
        throw new Error('state listener broke');
      });
    });
    const detail = await reported;
    assert.match(detail.error.message, /state listener broke/);
    assert.equal(detail.source, 'a state listener');
    assert.equal(client.state, State.Ready);
    await stillWorks(client, peer);
  });

  test('a notification listener that throws is reported and the listeners after it still run', async () => {
    const { client, peer } = await session();
    const reported = nextError(client, (d) => d.kind === 'listener');
    client.on('notification', () => {
      throw new Error('notification listener broke');
    });
    const after = nextEvent(client, 'notification');
    peer.sendJson({ jsonrpc: '2.0', method: 'news', params: [1] });
    assert.deepEqual(await after, { method: 'news', params: [1] });
    const detail = await reported;
    assert.match(detail.error.message, /notification listener broke/);
    assert.equal(detail.source, 'a notification listener');
    await stillWorks(client, peer);
  });

  test('an async listener whose promise rejects is reported', async () => {
    const { client, peer } = await session();
    const reported = nextError(client, (d) => d.kind === 'listener');
    client.on('notification', async () => {
      throw new Error('async listener broke');
    });
    peer.sendJson({ jsonrpc: '2.0', method: 'news' });
    assert.match((await reported).error.message, /async listener broke/);
  });

  test('addEventListener listeners, functions and handleEvent objects, are guarded too', async () => {
    const { client, peer } = await session();
    const errors = channel();
    client.on('error', (detail, event) => {
      event.preventDefault();
      errors.push(detail.error.message);
    });
    client.addEventListener('notification', () => {
      throw new Error('function broke');
    });
    client.addEventListener('notification', {
      handleEvent() {
        throw new Error('object broke');
      },
    });
    peer.sendJson({ jsonrpc: '2.0', method: 'news' });
    assert.deepEqual([await errors.take(), await errors.take()], ['function broke', 'object broke']);
  });

  test('a listener removed with removeEventListener or on()`s return value is not called again', async () => {
    const { client, peer } = await session();
    const calls = [];
    const direct = () => calls.push('direct');
    client.addEventListener('notification', direct);
    client.addEventListener('notification', direct); // twice is once, as with EventTarget
    const off = client.on('notification', () => calls.push('on'));
    const seen = nextEvent(client, 'notification');
    peer.sendJson({ jsonrpc: '2.0', method: 'first' });
    await seen;
    assert.deepEqual(calls, ['direct', 'on']);
    client.removeEventListener('notification', direct);
    off();
    const again = nextEvent(client, 'notification');
    peer.sendJson({ jsonrpc: '2.0', method: 'second' });
    await again;
    assert.deepEqual(calls, ['direct', 'on']);
  });

  test('a subscription handler that rejects is reported as a handler error', async () => {
    const { client, peer } = await session();
    const subscribed = client.subscribe('ticks', async () => {
      throw new Error('handler rejected');
    });
    const request = await peer.next();
    assert.equal(request.method, 'rpc.subscribe');
    peer.sendJson({ jsonrpc: '2.0', result: true, id: request.id });
    await subscribed;
    const reported = nextError(client, (d) => d.kind === 'handler');
    peer.sendJson({ jsonrpc: '2.0', method: 'ticks', params: [1] });
    const detail = await reported;
    assert.match(detail.error.message, /handler rejected/);
    assert.match(detail.source, /ticks/);
  });

  test('a trace function that throws is reported and the frame still goes out', async () => {
    let broken = false;
    const trace = (direction) => {
      if (direction === 'out' && !broken) {
        broken = true;
        throw new Error('trace broke');
      }
    };
    const { client, peer } = await session({ trace });
    const reported = nextError(client, (d) => d.kind === 'listener');
    const call = client.call('still', [], { timeout: HANG_GUARD });
    assert.match((await reported).error.message, /trace broke/);
    const { id } = await peer.next();
    peer.sendJson({ jsonrpc: '2.0', result: 'alive', id });
    assert.equal(await call, 'alive');
  });

  test('an error listener that throws is logged once and not reported again', async () => {
    const { client, peer } = await session();
    const logged = [];
    const original = console.error;
    console.error = (...args) => logged.push(args.map(String).join(' '));
    try {
      let calls = 0;
      client.on('error', () => {
        calls += 1;
        throw new Error('error listener broke');
      });
      const seen = nextEvent(client, 'error');
      peer.send('not json');
      await seen;
      // Frames are handled in order: once this call is answered, the garbage was handled.
      await stillWorks(client, peer);
      assert.equal(calls, 1);
      assert.equal(logged.filter((line) => /an error listener failed/.test(line)).length, 1);
      assert.ok(logged.some((line) => /error listener broke/.test(line)));
    } finally {
      console.error = original;
    }
  });
});
