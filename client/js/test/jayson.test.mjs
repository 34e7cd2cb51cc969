// jayson (a JSON-RPC 1.0 and 2.0 client and server for Node) as an old
// client uses it, against `switchboard serve --jsonrpc1` (the demo hub:
// the benchmark contract's methods): jayson's HTTP and TCP clients with
// `version: 1` get a result, an error answer carrying both `result` and
// `error` as JSON-RPC 1.0 wants (jayson hands the error to the caller), and
// their notifications (`"id": null`) run without an answer; jayson's 2.0
// client on the same hub is still answered in 2.0.
//
// A notification's effect is seen from outside: it is a `publish` to a
// topic that Switchboard's own client subscribes to. Every wait is on an
// answer or a publication; the timeouts are only hang guards.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';

import jayson from 'jayson';

import { connect } from '../switchboard.js';
import { startServe, channel, HANG_GUARD, withTimeout } from '../testing/support.mjs';

let hub;
let http;
let tcp;
let subscriber;

before(async () => {
  hub = await startServe(['--jsonrpc1', '--listen', 'tcp://127.0.0.1:0']);
  const [ws, raw] = hub.urls;
  assert.match(ws, /^ws:\/\/127\.0\.0\.1:\d+\/$/);
  assert.match(raw, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  http = new URL(ws);
  tcp = new URL(raw);
  subscriber = connect(ws, { reconnect: false });
  await subscriber.ready({ timeout: HANG_GUARD });
});

after(async () => {
  await subscriber?.close();
  await hub?.stop();
});

/** jayson's request as a promise of the raw answer (undefined when there is none). */
function request(client, method, params, id) {
  return withTimeout(
    new Promise((resolve, reject) => {
      client.request(method, params, id, (err, response) => {
        if (err) reject(err);
        else resolve(response);
      });
    }),
    HANG_GUARD,
    `jayson ${method}`,
  );
}

/** jayson's split of an answer: `(err, error, result)`, the form its README shows for error handling. */
function split(client, method, params, id) {
  return withTimeout(
    new Promise((resolve, reject) => {
      client.request(method, params, id, (err, error, result) => {
        if (err) reject(err);
        else resolve({ error, result });
      });
    }),
    HANG_GUARD,
    `jayson ${method}`,
  );
}

/** Subscribes Switchboard's client to a fresh topic; resolves with a channel of its publications' params. */
async function watch(topic) {
  const seen = channel();
  await subscriber.subscribe(topic, (params) => seen.push(params));
  return seen;
}

const interfaces = {
  http: (options) => jayson.client.http({ host: http.hostname, port: Number(http.port), ...options }),
  tcp: (options) => jayson.client.tcp({ host: tcp.hostname, port: Number(tcp.port), ...options }),
};

for (const [name, client] of Object.entries(interfaces)) {
  describe(`jayson's ${name} client`, () => {
    test('with version 1 gets a result in a 1.0 answer', async () => {
      const answer = await request(client({ version: 1 }), 'subtract', [42, 23], 1);
      assert.deepEqual(answer, { result: 19, error: null, id: 1 });
    });

    test('with version 1 gets an error answer with both result and error, and jayson surfaces the error', async () => {
      const old = client({ version: 1 });
      const answer = await request(old, 'foobar', [], 'missing');
      assert.deepEqual(answer, {
        result: null,
        error: { code: -32601, message: 'Method not found', data: 'no method named "foobar"' },
        id: 'missing',
      });
      const { error, result } = await split(old, 'subtract', ['forty-two', 23], 2);
      assert.equal(error.code, -32602);
      assert.equal(error.message, 'Invalid params');
      assert.equal(result, null);
    });

    test('with version 1 sends a notification (id null) that runs and gets no answer', async () => {
      const topic = `jayson.${name}.v1`;
      const seen = await watch(topic);
      // The contract's publish is [topic, method, params]; a plain subscriber hears method = topic.
      const answer = await request(client({ version: 1 }), 'publish', [topic, topic, { via: name }], null);
      assert.equal(answer, undefined, 'no answer to a notification');
      assert.deepEqual(await seen.take(), { via: name });
    });

    test('with version 2 on the same hub is answered in 2.0', async () => {
      const answer = await request(client({ version: 2 }), 'add', [2, 3], 'two');
      assert.deepEqual(answer, { jsonrpc: '2.0', result: 5, id: 'two' });
      const { error } = await split(client({ version: 2 }), 'foobar', [], 3);
      assert.equal(error.code, -32601);
    });
  });
}
