// Test support: build a Rust example (or the `switchboard` command), run it
// on a free loopback port, wait for events; a scripted WebSocket server for
// the misbehaving-server cases. Every wait is on an event; the timeouts are
// only hang guards.

import { spawn, execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { once } from 'node:events';
import assert from 'node:assert/strict';

import { WebSocketServer } from 'ws';

import { before, after, afterEach } from 'node:test';

import { connect, RpcClientError } from '../switchboard.js';

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Generous: a busy two-core machine may be slow, but never this slow. */
export const HANG_GUARD = 30_000;

const built = new Map();

/**
 * Builds a cargo target (`['--example', NAME]` or `['--bin', NAME]`; a no-op
 * when up to date) and returns the executable's path, wherever the target
 * directory is.
 */
function buildTarget(selector) {
  const [, name] = selector;
  const key = selector.join(' ');
  if (!built.has(key)) {
    built.set(
      key,
      new Promise((resolve, reject) => {
        execFile(
          'cargo',
          ['build', '--quiet', ...selector, '--message-format=json-render-diagnostics'],
          { cwd: repoRoot, maxBuffer: 64 << 20 },
          (error, stdout, stderr) => {
            if (error) {
              reject(new Error(`cargo build ${key} failed:\n${stderr}`));
              return;
            }
            for (const line of stdout.split('\n')) {
              if (!line.startsWith('{')) continue;
              const message = JSON.parse(line);
              if (message.reason === 'compiler-artifact' && message.target?.name === name && message.executable) {
                resolve(message.executable);
                return;
              }
            }
            reject(new Error(`cargo built no executable for ${key}`));
          },
        );
      }),
    );
  }
  return built.get(key);
}

/**
 * Builds `cargo build --example NAME` (a no-op when up to date) and returns
 * the executable's path, wherever the target directory is.
 */
export function buildExample(name) {
  return buildTarget(['--example', name]);
}

/**
 * Runs `switchboard serve --addr 127.0.0.1:0 ARGS...` (the demo hub) and
 * resolves once it has printed every `switchboard hub listening on URL`
 * line: `{urls, child, stop()}`, `urls` in the order of its listeners
 * (`--addr` first, then each `--listen`).
 */
export async function startServe(args = []) {
  const exe = await buildTarget(['--bin', 'switchboard']);
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' };
  const child = spawn(exe, ['serve', '--addr', '127.0.0.1:0', ...args], { stdio: ['pipe', 'pipe', 'inherit'], env });
  const exited = once(child, 'exit');
  const urls = await withTimeout(
    new Promise((resolve, reject) => {
      let buffered = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk) => {
        buffered += chunk;
        // Its listening lines come first, then the "try:" hints.
        if (/^try: /m.test(buffered)) {
          resolve([...buffered.matchAll(/^switchboard hub listening on (\S+)$/gm)].map((m) => m[1]));
        }
      });
      child.once('exit', (code, signal) => reject(new Error(`switchboard serve exited early (${code ?? signal})`)));
      child.once('error', reject);
    }),
    HANG_GUARD,
    'switchboard serve did not start',
  );
  return {
    urls,
    child,
    /** Ends it gracefully (Ctrl-C) and waits for it to exit. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGINT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/**
 * Runs an example that prints `... listening on URL` and resolves once it
 * does. `addr` defaults to a free port; `restart()` runs it again on the same one.
 */
export async function startExample(name, { addr = '127.0.0.1:0', args = [] } = {}) {
  const exe = await buildExample(name);
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' };
  const child = spawn(exe, ['--addr', addr, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env });
  const url = await withTimeout(
    new Promise((resolve, reject) => {
      let buffered = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk) => {
        buffered += chunk;
        const match = /listening on (\S+)/.exec(buffered);
        if (match) resolve(match[1]);
      });
      child.once('exit', (code, signal) => reject(new Error(`${name} exited early (${code ?? signal})`)));
      child.once('error', reject);
    }),
    HANG_GUARD,
    `${name} did not start`,
  );
  const exited = once(child, 'exit');
  const { host } = new URL(url);
  return {
    url,
    host,
    child,
    /** Ends it gracefully (Ctrl-C, and stdin closes) and waits for it to exit. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin.end();
      child.kill('SIGINT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
    /** Kills it at once, as a crash would, and waits for it to be gone. */
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    /** Starts it again on the same address. */
    restart(extra = {}) {
      return startExample(name, { addr: host, args, ...extra });
    },
  };
}

/** Rejects with `message` after `ms` unless `promise` settles first. */
export function withTimeout(promise, ms, message) {
  let timer;
  const guard = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} (hang guard: ${ms} ms)`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/** Resolves with the detail of the next `type` event of `target` that satisfies `predicate`. */
export function nextEvent(target, type, predicate = () => true, ms = HANG_GUARD) {
  let off;
  const seen = new Promise((resolve) => {
    off = target.on(type, (detail) => {
      if (predicate(detail)) {
        off();
        resolve(detail);
      }
    });
  });
  return withTimeout(seen, ms, `no ${type} event`).finally(() => off());
}

/** A promise with its resolve function outside, for handlers to signal. */
export function signal() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** A queue of values pushed by a handler, taken one at a time by the test. */
export function channel() {
  const values = [];
  const takers = [];
  return {
    push(value) {
      const taker = takers.shift();
      if (taker) taker(value);
      else values.push(value);
    },
    take(ms = HANG_GUARD) {
      if (values.length > 0) return Promise.resolve(values.shift());
      return withTimeout(new Promise((resolve) => takers.push(resolve)), ms, 'nothing arrived');
    },
    get size() {
      return values.length;
    },
  };
}

/** Resolves once `client.state` is `state`: at once if it is, else at the event that makes it so. */
export function untilState(client, state, ms = HANG_GUARD) {
  if (client.state === state) return Promise.resolve();
  return nextEvent(client, 'state', (d) => d.state === state, ms).then(() => undefined);
}

/** Rejects unless `promise` rejects with an RpcClientError of `kind`; returns the error. */
export async function rejectsWith(promise, kind) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RpcClientError, `expected an RpcClientError, got ${error}`);
    assert.equal(error.kind, kind, `expected ${kind}, got ${error.kind}: ${error.message}`);
    return error;
  }
  assert.fail(`expected a ${kind} error, the promise resolved`);
}

/**
 * A WebSocket server on a free loopback port whose every frame a test
 * writes by hand, for the cases the real hub never produces (a null-id
 * error, garbage, an empty batch, odd ids, an oversized frame).
 * `accept()` resolves with the next connection a client opened.
 */
export async function scriptedServer() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const peers = channel();
  wss.on('connection', (socket) => peers.push(scriptedPeer(socket)));
  return {
    url: `ws://127.0.0.1:${wss.address().port}/`,
    /** The next connection: resolves once a client opened one. */
    accept: (ms = HANG_GUARD) => peers.take(ms),
    /** Drops every connection and stops listening. */
    close() {
      for (const socket of wss.clients) socket.terminate();
      return new Promise((resolve) => wss.close(() => resolve()));
    },
  };
}

/** One connection of a scripted server: what the client sent, in order, and a way to answer. */
function scriptedPeer(socket) {
  const frames = channel();
  socket.on('message', (data) => frames.push(data.toString()));
  const closed = new Promise((resolve) => {
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  return {
    socket,
    /** The next frame the client sent, as text. */
    nextText: (ms = HANG_GUARD) => frames.take(ms),
    /** The next frame the client sent, parsed. */
    async next(ms = HANG_GUARD) {
      return JSON.parse(await frames.take(ms));
    },
    /** Sends `text` exactly as given, as one text frame. */
    send(text) {
      socket.send(text);
    },
    /** Sends `value` as JSON. */
    sendJson(value) {
      socket.send(JSON.stringify(value));
    },
    /** Resolves with `{code, reason}` once the connection closed. */
    closed: (ms = HANG_GUARD) => withTimeout(closed, ms, 'the connection did not close'),
  };
}

/**
 * Resolves with the detail of the next `error` event of `client` that
 * satisfies `predicate`, and marks that event handled (no console output).
 */
export function nextError(client, predicate = () => true, ms = HANG_GUARD) {
  let off;
  const seen = new Promise((resolve) => {
    off = client.on('error', (detail, event) => {
      if (predicate(detail)) {
        event.preventDefault();
        off();
        resolve(detail);
      }
    });
  });
  return withTimeout(seen, ms, 'no error event').finally(() => off());
}

/**
 * Sets up a file's tests against one scripted server: the server starts
 * before the tests, the clients a test made are closed after it, the server
 * stops after all. `session(options, setUp)` opens a client on it (no
 * reconnects; `setUp(client)` runs before the connection is accepted) and
 * waits until it is ready: `{client, peer}`, `peer` the server's side.
 */
export function scriptedSessions() {
  let server = null;
  const clients = [];
  before(async () => {
    server = await scriptedServer();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  after(async () => {
    await server?.close();
  });
  return {
    /** The scripted server (once the tests run). */
    get server() {
      return server;
    },
    /** Closes `client` after the current test. */
    track(client) {
      clients.push(client);
      return client;
    },
    async session(options = {}, setUp = () => {}) {
      const client = connect(server.url, { reconnect: false, ...options });
      clients.push(client);
      setUp(client);
      const peer = await server.accept();
      await client.ready({ timeout: HANG_GUARD });
      return { client, peer };
    },
  };
}
