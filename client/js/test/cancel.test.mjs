// Cancellation both ways, with LSP's `$/cancelRequest` notification: the
// client cancels a call it stops waiting for (timeout, AbortSignal), and
// answers a call of the server's that the server cancels with -32800 at
// once, aborting the handler's signal. Against a scripted server that sees
// every frame; every wait is on a frame or an event.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { connect, ErrorKind, ErrorCode } from '../switchboard.js';
import { signal, HANG_GUARD, rejectsWith, scriptedSessions } from '../testing/support.mjs';

const scripted = scriptedSessions();
const { session } = scripted;

const cancelOf = (id) => ({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id } });

describe('the client cancels what it gives up on', () => {
  test('a call that times out is cancelled on the server with $/cancelRequest and its id', async () => {
    const { client, peer } = await session();
    const call = client.call('slow', [], { timeout: 50 });
    const request = await peer.next();
    await rejectsWith(call, ErrorKind.Timeout);
    assert.deepEqual(await peer.next(), cancelOf(request.id));
    // The server's late reply is counted and dropped, as before.
    peer.sendJson({ jsonrpc: '2.0', result: 'late', id: request.id });
    peer.send('{"jsonrpc":"2.0","method":"probe","id":"p"}');
    assert.equal((await peer.next()).id, 'p');
    assert.equal(client.unknownReplies, 1);
  });

  test('a batch that times out cancels each of its calls', async () => {
    const { client, peer } = await session();
    const outcomes = client.batch().call('a').notify('n').call('b').send({ timeout: 50 });
    const [a, , b] = await peer.next();
    const settled = await outcomes;
    assert.deepEqual(
      settled.map((o) => o.reason.kind),
      [ErrorKind.Timeout, ErrorKind.Timeout],
    );
    const cancelled = [await peer.next(), await peer.next()];
    assert.deepEqual(cancelled.map((m) => m.params.id).sort(), [a.id, b.id].sort());
  });

  test('an aborted call rejects with the signal`s reason and is cancelled on the server', async () => {
    const { client, peer } = await session();
    const controller = new AbortController();
    const call = client.call('slow', [], { timeout: HANG_GUARD, signal: controller.signal });
    const request = await peer.next();
    controller.abort(new Error('the user went away'));
    await assert.rejects(call, /the user went away/);
    assert.equal(client.pending, 0);
    assert.deepEqual(await peer.next(), cancelOf(request.id));
  });

  test('a call whose signal is already aborted is not sent', async () => {
    const { client, peer } = await session();
    await assert.rejects(client.call('never', [], { signal: AbortSignal.abort() }), { name: 'AbortError' });
    const call = client.call('first', [], { timeout: HANG_GUARD });
    const request = await peer.next();
    assert.equal(request.method, 'first');
    peer.sendJson({ jsonrpc: '2.0', result: 1, id: request.id });
    assert.equal(await call, 1);
  });

  test('a call waiting for the connection stops waiting when aborted', async () => {
    const client = connect(scripted.server.url, { reconnect: false });
    scripted.track(client);
    const accepted = scripted.server.accept();
    try {
      const controller = new AbortController();
      const call = client.call('wait', [], { waitReady: true, timeout: HANG_GUARD, signal: controller.signal });
      controller.abort(new Error('aborted while connecting'));
      await assert.rejects(call, /aborted while connecting/);
    } finally {
      await accepted; // the next test's connection is its own
    }
  });

  test('cancelRequests: false sends no cancellation', async () => {
    const { client, peer } = await session({ cancelRequests: false });
    const timedOut = client.call('slow', [], { timeout: 50 });
    await peer.next();
    await rejectsWith(timedOut, ErrorKind.Timeout);
    const next = client.call('next', [], { timeout: HANG_GUARD });
    // The frame after the timed-out call is the next call, not a cancellation.
    const request = await peer.next();
    assert.equal(request.method, 'next');
    peer.sendJson({ jsonrpc: '2.0', result: 2, id: request.id });
    assert.equal(await next, 2);
  });
});

describe('the server cancels a call of its own', () => {
  test('the client answers a call the server cancels with -32800 at once and aborts the handler`s signal', async () => {
    const started = signal();
    const release = signal();
    const { client, peer } = await session({
      methods: {
        slow: async (params, context) => {
          started.resolve(context.signal);
          await release.promise;
          return 'too late';
        },
        quick: () => 'quick',
      },
    });
    peer.sendJson({ jsonrpc: '2.0', method: 'slow', params: [], id: 7 });
    const handlerSignal = await started.promise;
    assert.equal(handlerSignal.aborted, false);
    // The id written another way still names the call: ids match by value.
    peer.send('{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":7.0}}');
    assert.deepEqual(await peer.next(), {
      jsonrpc: '2.0',
      error: { code: ErrorCode.RequestCancelled, message: 'request cancelled' },
      id: 7,
    });
    assert.equal(handlerSignal.aborted, true);
    assert.equal(handlerSignal.reason.code, ErrorCode.RequestCancelled);
    // The handler's own answer, when it comes, is dropped: one response per request.
    // (It would go out before the client reads the next frame: microtasks run first.)
    release.resolve();
    peer.sendJson({ jsonrpc: '2.0', method: 'quick', id: 8 });
    assert.deepEqual(await peer.next(), { jsonrpc: '2.0', result: 'quick', id: 8 });
    assert.equal(client.pending, 0);
  });

  test('a cancellation for a call already answered, or never made, is ignored', async () => {
    const { peer } = await session({ methods: { quick: async () => 'done' } });
    peer.sendJson({ jsonrpc: '2.0', method: 'quick', id: 'q' });
    assert.deepEqual(await peer.next(), { jsonrpc: '2.0', result: 'done', id: 'q' });
    peer.sendJson(cancelOf('q'));
    peer.sendJson(cancelOf(12345));
    peer.sendJson({ jsonrpc: '2.0', method: 'quick', id: 'r' });
    assert.deepEqual(await peer.next(), { jsonrpc: '2.0', result: 'done', id: 'r' });
  });

  test('a cancelled call in a batch is answered -32800 in the batch`s reply', async () => {
    const release = signal();
    const { peer } = await session({
      methods: {
        slow: async () => {
          await release.promise;
          return 'slow';
        },
        quick: async () => 'quick',
      },
    });
    peer.sendJson([
      { jsonrpc: '2.0', method: 'slow', id: 1 },
      { jsonrpc: '2.0', method: 'quick', id: 2 },
    ]);
    peer.sendJson(cancelOf(1));
    assert.deepEqual(await peer.next(), [
      { jsonrpc: '2.0', error: { code: ErrorCode.RequestCancelled, message: 'request cancelled' }, id: 1 },
      { jsonrpc: '2.0', result: 'quick', id: 2 },
    ]);
    release.resolve();
  });
});
