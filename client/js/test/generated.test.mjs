// The typed wrapper `switchboard codegen ts` generates, run against a live hub
// (examples/js_test_hub.rs serves the benchmark contract's methods, as the
// dashboard does): the dashboard's examples/dashboard/api.js calls methods,
// subscribes to topics and answers the server's calls as its declarations
// (api.d.ts, type-checked by `tsc -p test/generated`) say.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { connect, ErrorKind } from '../switchboard.js';
import { startExample, channel, HANG_GUARD, rejectsWith } from '../testing/support.mjs';
import { clientMethods, methods, topics } from '../../../examples/dashboard/api.js';

let hub;
let client;
let api;

before(async () => {
  hub = await startExample('js_test_hub', { args: ['--until-stdin-closes'] });
  client = connect(hub.url, {
    methods: clientMethods({
      browser: {
        info: (askedAt, context) => ({
          page_id: context.method,
          user_agent: 'node',
          language: 'en',
          viewport: '0×0',
          answered: askedAt,
          pushes: 0,
          open_for_ms: 0,
        }),
      },
    }),
  });
  await client.ready({ timeout: HANG_GUARD });
  api = methods(client);
});

after(async () => {
  await client?.close();
  await hub?.stop();
});

test('the generated methods call the hub by name, with their params', async () => {
  assert.equal(await api.add(2, 3), 5);
  assert.equal(await api.subtract(42, 23), 19);
  assert.equal(await api.sum([1, 2, 3, 4]), 10, 'whole params: the list itself');
  assert.deepEqual(await api.get_data(), ['hello', 5]);
  assert.deepEqual(await api.echo({ nested: [1, 'two', null] }), { nested: [1, 'two', null] });
  assert.equal(await api.sleep(1, { timeout: HANG_GUARD }), 1);
  assert.equal(await api.update([1, 2]), null);
  // Sent by name: the server names the param that does not fit.
  const misfit = await rejectsWith(api.add('two', 3), ErrorKind.Rpc);
  assert.equal(misfit.code, -32602);
  assert.match(misfit.data, /^param `a`: invalid type: string "two"/);
});

test('a generated topic delivers each publication, plain or positioned', async () => {
  const feeds = topics(client);
  assert.equal(feeds.metrics.name, 'metrics');
  const metrics = channel();
  const unsubscribe = await feeds.metrics.subscribe((params, info) => metrics.push({ params, info }));
  const metric = { seq: 1, t: 2, clients: 1, calls_per_sec: 0.5, calls_total: 3, signal: 50 };
  assert.equal(await client.call('publish', ['metrics', metric]), 1, 'one subscriber reached');
  assert.deepEqual(await metrics.take(), { params: metric, info: { topic: 'metrics', method: 'metrics' } });
  assert.equal(await unsubscribe(), true);

  // A connection is in a topic one way: positioned on another client.
  const other = connect(hub.url);
  try {
    await other.ready({ timeout: HANG_GUARD });
    const browsers = channel();
    const subscription = await topics(other).browsers.subscribe((publication) => browsers.push(publication), {
      positioned: true,
    });
    const report = { at: 7, answers: [] };
    const position = await client.call('publish_positioned', ['browsers', 'browsers', report]);
    const publication = await browsers.take();
    assert.deepEqual(publication.params, report);
    assert.deepEqual({ epoch: publication.epoch, offset: publication.offset }, position);
    assert.equal(publication.method, 'browsers');
    assert.deepEqual(subscription.position, position);
  } finally {
    await other.close();
  }
});

test('the generated client methods answer the server, given params by position or by name', async () => {
  const byPosition = await client.call('ask', { method: 'browser.info', params: [1234] });
  assert.equal(byPosition.result.answered, 1234);
  assert.equal(byPosition.result.page_id, 'browser.info', 'the handler gets the call context');
  const byName = await client.call('ask', { method: 'browser.info', params: { asked_at: 99 } });
  assert.equal(byName.result.answered, 99);
});
