// The reconnect policy is the Rust client's (client/src/reconnect.rs): the
// same vectors as its unit tests.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { backoffDelay, defaultBackoff } from '../switchboard.js';

test('the defaults are the Rust client`s', () => {
  assert.deepEqual(
    { ...defaultBackoff },
    { immediateFirst: true, initial: 100, factor: 1.5, max: 10_000, jitter: 0.2, maxRetries: null, stableAfter: 1_000 },
  );
});

test('the first retry is immediate, then delays grow one and a half times', () => {
  const delays = [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(defaultBackoff, n, 0));
  assert.deepEqual(delays, [0, 100, 150, 225, 337.5, 506.25]);
});

test('delays are capped at ten seconds', () => {
  assert.equal(backoffDelay(defaultBackoff, 14, 0), 10_000);
  assert.equal(backoffDelay(defaultBackoff, 2 ** 32 - 1, 0), 10_000);
});

test('jitter only shortens a delay, by at most its fraction', () => {
  for (const unit of [0, 0.25, 0.5, 0.999]) {
    const d = backoffDelay(defaultBackoff, 2, unit);
    assert.ok(d <= 100 && d >= 80, `${d} for ${unit}`);
  }
  assert.equal(backoffDelay(defaultBackoff, 2, 0.5), 90);
  const capped = backoffDelay(defaultBackoff, 100, 0.999);
  assert.ok(capped <= 10_000 && capped >= 8_000);
});

test('without an immediate first retry the first waits the initial delay', () => {
  const policy = { ...defaultBackoff, immediateFirst: false };
  assert.equal(backoffDelay(policy, 1, 0), 100);
  assert.equal(backoffDelay(policy, 2, 0), 150);
});

test('nonsense settings are clamped, not thrown on', () => {
  const nan = { ...defaultBackoff, factor: NaN, jitter: 7 };
  assert.equal(backoffDelay(nan, 5, 0), 100);
  assert.equal(backoffDelay(nan, 5, 1), 0);
  assert.equal(backoffDelay({ ...defaultBackoff, factor: 0.1 }, 9, 0), 100);
  assert.equal(backoffDelay({}, 3, 0), 150);
});
