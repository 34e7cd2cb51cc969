// The client against a server that breaks the protocol, scripted frame by
// frame (testing/support.mjs, scriptedServer): errors with id null, frames
// that are not JSON, empty batches, reply ids written in other ways, and
// frames larger than maxMessageSize. Every case ends on an event.

import { readFileSync } from 'node:fs';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { WebSocket as WsWebSocket } from 'ws';

import { connect, ErrorKind, ErrorCode, State } from '../switchboard.js';
import { nextError, nextEvent, HANG_GUARD, rejectsWith, scriptedSessions } from '../testing/support.mjs';

const scripted = scriptedSessions();
const { session } = scripted;

/** A reply frame to `id` (written as given: `1.0` is sent as 1.0). */
const replyText = (idText, result) => `{"jsonrpc":"2.0","result":${JSON.stringify(result)},"id":${idText}}`;

const NULL_ID_ERROR = '{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request","data":"bad id"},"id":null}';

describe('an error with id null', () => {
  test('a null-id error fails the only outstanding call at once', async () => {
    const { client, peer } = await session();
    const reported = nextError(client, (d) => d.kind === 'nullIdError');
    const call = client.call('anything', [1], { timeout: HANG_GUARD });
    await peer.next();
    peer.send(NULL_ID_ERROR);
    const error = await rejectsWith(call, ErrorKind.Rpc);
    assert.deepEqual([error.code, error.message, error.data], [-32600, 'Invalid Request', 'bad id']);
    const detail = await reported;
    assert.equal(detail.error.kind, ErrorKind.Rpc);
    assert.equal(detail.error.code, -32600);
    assert.deepEqual(detail.serverError, { code: -32600, message: 'Invalid Request', data: 'bad id' });
    assert.equal(detail.failed, 1);
    assert.equal(client.nullIdErrors, 1);
    assert.equal(client.unknownReplies, 0);
    assert.equal(client.pending, 0);
  });

  test('a null-id error fails the only outstanding batch at once', async () => {
    const { client, peer } = await session();
    const reported = nextError(client, (d) => d.kind === 'nullIdError');
    const outcomes = client.batch().call('a').notify('n').call('b').send({ timeout: HANG_GUARD });
    await peer.next();
    peer.send(NULL_ID_ERROR);
    const settled = await outcomes;
    assert.deepEqual(
      settled.map((o) => [o.status, o.reason?.kind, o.reason?.code]),
      [
        ['rejected', ErrorKind.Rpc, -32600],
        ['rejected', ErrorKind.Rpc, -32600],
      ],
    );
    assert.equal((await reported).failed, 2);
    assert.equal(client.nullIdErrors, 1);
  });

  test('a null-id error in a batch reply fails the calls of the batch left unanswered', async () => {
    const { client, peer } = await session();
    const reported = nextError(client, (d) => d.kind === 'nullIdError');
    const outcomes = client.batch().call('a').call('b').send({ timeout: HANG_GUARD });
    const [first] = await peer.next();
    // The error comes first in the array; the answered call still gets its result.
    peer.send(`[${NULL_ID_ERROR},${replyText(first.id, 'one')}]`);
    const settled = await outcomes;
    assert.deepEqual(settled[0], { status: 'fulfilled', value: 'one' });
    assert.equal(settled[1].reason.code, -32600);
    assert.equal((await reported).failed, 1);
    assert.equal(client.nullIdErrors, 1);
  });

  test('with several calls outstanding a null-id error is reported and they keep waiting', async () => {
    const { client, peer } = await session();
    const reported = nextError(client, (d) => d.kind === 'nullIdError');
    const one = client.call('one', [], { timeout: HANG_GUARD });
    const two = client.call('two', [], { timeout: HANG_GUARD });
    const a = await peer.next();
    const b = await peer.next();
    peer.send(NULL_ID_ERROR);
    const detail = await reported;
    assert.equal(detail.failed, 0);
    assert.equal(client.pending, 2);
    peer.send(replyText(a.id, 'a'));
    peer.send(replyText(b.id, 'b'));
    assert.deepEqual(await Promise.all([one, two]), ['a', 'b']);
  });

  test('a reply with id null that is not an error is reported as invalid', async () => {
    const { client, peer } = await session();
    const reported = nextError(client, (d) => d.kind === 'nullIdError');
    const call = client.call('anything', [], { timeout: HANG_GUARD });
    await peer.next();
    peer.send('{"jsonrpc":"2.0","result":5,"id":null}');
    const error = await rejectsWith(call, ErrorKind.InvalidResponse);
    assert.match(error.message, /id null/);
    assert.equal((await reported).error, error);
    assert.equal(client.nullIdErrors, 1);
  });
});

describe('frames that are not JSON-RPC messages', () => {
  test('a frame that is not JSON is reported, counted and not answered', async () => {
    const { client, peer } = await session();
    const reported = nextError(client, (d) => d.kind === 'invalidFrame');
    const call = client.call('anything', [], { timeout: HANG_GUARD });
    const request = await peer.next();
    peer.send('not json');
    const detail = await reported;
    assert.equal(detail.frame, 'not json');
    assert.equal(detail.error.kind, ErrorKind.InvalidResponse);
    assert.match(detail.error.message, /not JSON/);
    assert.equal(client.invalidFrames, 1);
    // Not answered: the next frame the server gets answers its own request.
    peer.send('{"jsonrpc":"2.0","method":"probe","id":"p"}');
    const next = await peer.next();
    assert.deepEqual([next.id, next.error?.code], ['p', ErrorCode.MethodNotFound]);
    // The outstanding call was not disturbed.
    assert.equal(client.pending, 1);
    peer.send(replyText(request.id, 'fine'));
    assert.equal(await call, 'fine');
  });

  test('an empty batch is reported, counted and not answered', async () => {
    const { client, peer } = await session();
    const reported = nextError(client, (d) => d.kind === 'invalidFrame');
    peer.send('[]');
    const detail = await reported;
    assert.match(detail.error.message, /empty batch/);
    assert.equal(detail.frame, '[]');
    assert.equal(client.invalidFrames, 1);
    peer.send('{"jsonrpc":"2.0","method":"probe","id":"p"}');
    assert.equal((await peer.next()).id, 'p');
  });

  test('a reply to nothing is counted and not answered', async () => {
    const { client, peer } = await session();
    peer.send('{"jsonrpc":"2.0","result":1,"id":999}');
    peer.send('{"jsonrpc":"2.0","error":{"code":1,"message":"x"},"id":998}');
    peer.send('{"jsonrpc":"2.0","method":"probe","id":"p"}');
    assert.equal((await peer.next()).id, 'p');
    assert.equal(client.unknownReplies, 2);
  });

  test('a garbled request is reported and answered with a parse error', async () => {
    const { client, peer } = await session();
    const reported = nextError(client, (d) => d.kind === 'invalidFrame');
    peer.send('{"jsonrpc":"2.0","method":"probe","id":');
    const answer = await peer.next();
    assert.deepEqual([answer.id, answer.error.code], [null, ErrorCode.ParseError]);
    assert.match((await reported).error.message, /not JSON/);
    assert.equal(client.invalidFrames, 1);
  });
});

describe('matching a reply to its call', () => {
  // (the id the client sent, the reply's id as the server wrote it, does it match?)
  // Numbers match by numeric value, strings exactly, a number never a string.
  // The table every Switchboard client is tested against (the Rust engine reads it too).
  const vectors = JSON.parse(readFileSync(new URL('../../../shared/tests/vectors/reply_ids.json', import.meta.url), 'utf8'));
  const table = vectors.cases.map(({ sent, reply, matches }) => [sent, reply, matches]);

  for (const [sent, reply, matches] of table) {
    test(`a reply with id ${reply} ${matches ? 'matches' : 'does not match'} the call with id ${sent}`, async () => {
      const { client, peer } = await session();
      // The client numbers its calls 1, 2, ...: answer the ones before the probe plainly.
      for (let id = 1; id < sent; id += 1) {
        const warmup = client.call('warmup', [], { timeout: HANG_GUARD });
        peer.send(replyText((await peer.next()).id, 'warm'));
        await warmup;
      }
      const probe = client.call('probe', [], { timeout: HANG_GUARD });
      assert.equal((await peer.next()).id, sent);
      peer.send(replyText(reply, 'the candidate'));
      peer.send(replyText(String(sent), 'the plain reply'));
      assert.equal(await probe, matches ? 'the candidate' : 'the plain reply');
    });
  }
});

describe('maxMessageSize', () => {
  test('a request larger than maxMessageSize fails with Encode before anything is sent', async () => {
    const { client, peer } = await session({ maxMessageSize: 1024 });
    const error = await rejectsWith(client.call('echo', ['x'.repeat(2000)]), ErrorKind.Encode);
    assert.match(error.message, /bytes, over maxMessageSize 1024/);
    // Measured in UTF-8 bytes: 600 characters, 1,200 bytes.
    await rejectsWith(client.call('echo', ['é'.repeat(600)]), ErrorKind.Encode);
    await rejectsWith(client.notify('echo', ['é'.repeat(600)]), ErrorKind.Encode);
    await rejectsWith(client.batch().call('a', ['x'.repeat(600)]).call('b', ['x'.repeat(600)]).send(), ErrorKind.Encode);
    assert.equal(client.pending, 0);
    // None of them went out: the first frame the server gets is this one.
    const small = client.call('echo', ['é'.repeat(400)]);
    const request = await peer.next();
    assert.equal(request.params[0], 'é'.repeat(400));
    peer.send(replyText(request.id, 'ok'));
    assert.equal(await small, 'ok');
  });

  test('the default maxMessageSize is the server`s, 10 MiB', async () => {
    const { client } = await session();
    const error = await rejectsWith(client.call('echo', ['x'.repeat(10 << 20)]), ErrorKind.Encode);
    assert.match(error.message, /over maxMessageSize 10485760/);
  });

  test('a frame of exactly maxMessageSize is accepted', async () => {
    const { client, peer } = await session({ maxMessageSize: 1024 });
    const call = client.call('big', []);
    const { id } = await peer.next();
    const frame = replyText(id, 'é'.repeat(300) + 'x'.repeat(1024 - Buffer.byteLength(replyText(id, 'é'.repeat(300)))));
    assert.equal(Buffer.byteLength(frame), 1024);
    peer.send(frame);
    assert.match(await call, /^é+x+$/);
  });

  // Browsers and Node's global WebSocket only let a page close with 1000 or
  // 3000-4999, so there the client says 4009; the ws package sends 1009.
  const closers = [
    ['1009 (the ws package)', WsWebSocket, 1009],
    ['4009 (the global WebSocket)', undefined, 4009],
  ];
  for (const [code, WebSocket, expected] of closers) {
    test(`a frame from the server over maxMessageSize closes the connection with ${code} and fails the pending calls`, async () => {
      const { client, peer } = await session({ maxMessageSize: 1024, ...(WebSocket ? { WebSocket } : {}) });
      const call = client.call('anything', [], { timeout: HANG_GUARD });
      const down = nextEvent(client, 'state', (d) => d.previous === State.Ready);
      await peer.next();
      // 1,025 bytes in 536 characters.
      peer.send(`{"jsonrpc":"2.0","method":"big","params":["${'é'.repeat(489)}x"]}`);
      const error = await rejectsWith(call, ErrorKind.Disconnected);
      assert.match(error.message, /1025 bytes, over maxMessageSize 1024/);
      assert.deepEqual(await peer.closed(), { code: expected, reason: 'message too big' });
      const { error: why } = await down;
      assert.equal(why.kind, ErrorKind.Transport);
      assert.match(why.message, /over maxMessageSize/);
    });
  }
});
