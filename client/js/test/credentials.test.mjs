// Expiring credentials against the real hub: tokens valid for one second
// (js_test_hub --token-ttl-ms 1000), refreshed through the client's token
// provider when the server calls `rpc.refresh`, fetched afresh on every
// reconnect, never shown in messages or to `trace`; a client with a static
// token (no provider) is closed with 4401 once the grace period is over.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { connect, ErrorKind, State, CREDENTIALS_EXPIRED } from '../switchboard.js';
import { startExample, channel, untilState, HANG_GUARD } from '../testing/support.mjs';

const TTL = 1_000;
const GRACE = 500;

describe('expiring tokens', () => {
  let hub;
  const clients = [];
  before(async () => {
    hub = await startExample('js_test_hub', {
      args: ['--until-stdin-closes', '--token-ttl-ms', String(TTL), '--refresh-grace-ms', String(GRACE)],
    });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await hub?.stop();
  });

  /** A provider of `valid-1`, `valid-2`, ...; each token it gives is pushed on `issued`. */
  function provider() {
    const issued = channel();
    let n = 0;
    const give = async () => {
      n += 1;
      const token = `valid-${n}`;
      issued.push(token);
      return token;
    };
    return { give, issued };
  }

  test('a token provider keeps the connection alive across expiries, without a reconnect', async () => {
    const { give, issued } = provider();
    const traced = [];
    const client = connect(hub.url, { token: give, reconnect: false, trace: (direction, text) => traced.push(text) });
    clients.push(client);
    const states = [];
    client.on('state', ({ state }) => states.push(state));
    await client.ready({ timeout: HANG_GUARD });
    assert.equal(await issued.take(), 'valid-1');
    // Each second the server asks for a fresh token; the provider gives it.
    assert.equal(await issued.take(), 'valid-2');
    assert.equal(await issued.take(), 'valid-3');
    // The server accepted them (it counts the refreshes of this connection)...
    while ((await client.call('refreshes')) < 2) await issued.take();
    // ...on the first and only connection, which never left `ready`.
    assert.equal(client.connections, 1);
    assert.deepEqual(states, [State.Ready]);
    // `trace` saw the refresh answers, without the tokens.
    assert.ok(traced.some((t) => t.includes('"result":"[redacted]"')), traced.join('\n'));
    assert.ok(!traced.some((t) => t.includes('valid-')), traced.filter((t) => t.includes('valid-')).join('\n'));
  });

  test('the client asks its provider for a fresh token on every reconnect', async () => {
    const { give, issued } = provider();
    const client = connect(hub.url, { token: give, reconnect: { initial: 10, jitter: 0 } });
    clients.push(client);
    await client.ready({ timeout: HANG_GUARD });
    assert.equal(await issued.take(), 'valid-1');
    // The server drops the connection; the reconnect brings a fresh token.
    await client.call('kick').catch(() => {});
    assert.equal(await issued.take(), 'valid-2');
    await untilState(client, State.Ready);
    assert.equal(client.connections, 2);
    assert.equal(await client.call('add', [2, 3]), 5);
  });

  test('a client without a provider is closed with 4401 after the grace period', async () => {
    const started = performance.now();
    const client = connect(hub.url, { token: 'valid-static', reconnect: false });
    clients.push(client);
    await client.ready({ timeout: HANG_GUARD });
    await untilState(client, State.Closed);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= TTL + GRACE, `closed after ${elapsed} ms`);
    assert.equal(CREDENTIALS_EXPIRED, 4401);
    assert.match(client.lastError.message, /closed with 4401: credentials expired/);
  });

  test('a refused token shows in no message', async () => {
    const client = connect(hub.url, { token: async () => 'nope-secret', reconnect: false });
    clients.push(client);
    await untilState(client, State.Closed);
    assert.equal(client.lastError.kind, ErrorKind.Transport);
    assert.ok(!client.lastError.message.includes('nope-secret'), client.lastError.message);
  });

  test('a failing provider fails the attempt with its own message', async () => {
    const client = connect(hub.url, {
      token: async () => {
        throw new Error('the vault is unreachable');
      },
      reconnect: false,
    });
    clients.push(client);
    await untilState(client, State.Closed);
    assert.equal(client.lastError.message, 'the token provider failed: the vault is unreachable');
  });

  test('a token in the URL is redacted from messages', async () => {
    const client = connect(`${hub.url}?token=in-the-url-secret`, { reconnect: false });
    clients.push(client);
    await untilState(client, State.Closed);
    assert.ok(!client.lastError.message.includes('in-the-url-secret'), client.lastError.message);
    assert.match(client.lastError.message, /token=\[redacted\]/);
  });
});
