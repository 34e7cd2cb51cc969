// Switchboard's browser client: JSON-RPC 2.0 over one long-lived WebSocket,
// with many calls in flight, calls from the server, topic subscriptions that
// survive reconnects, and the same reconnect policy and error kinds as the
// Rust client (switchboard-client). No dependencies: an ES module for
// browsers, and for Node when given a WebSocket (Node 22's global, Node 20's
// `--experimental-websocket`, or the `ws` package through `options.WebSocket`).
//
//   import { connect } from './switchboard.js';
//   const client = connect('ws://127.0.0.1:9000/');
//   await client.ready();
//   const sum = await client.call('add', [2, 3]);

import {
  ErrorKind,
  ErrorCode,
  State,
  RpcClientError,
  RpcError,
  encodeMessage,
  withId,
  utf8Length,
  bytesOver,
  replyKey,
  isResponse,
  replyError,
  excerpt,
  listenerKey,
  closeSocket,
  socketUrl,
  isId,
  errorResponse,
  errorObjectOf,
  encodeReply,
  isPosition,
  positionOf,
  showPosition,
  samePosition,
  isPublication,
  decodeSubscribed,
  decodeHistory,
  REFRESH,
  redactUrl,
  withToken,
} from './protocol.js';

export { ErrorKind, ErrorCode, State, RpcClientError, RpcError, CREDENTIALS_EXPIRED, REFRESH } from './protocol.js';

/** The reconnect policy's defaults: the Rust client's `Backoff::default()`. */
export const defaultBackoff = Object.freeze({
  /** The first retry happens at once. */
  immediateFirst: true,
  /** The first non-zero delay, ms. */
  initial: 100,
  /** Each delay grows by this factor. */
  factor: 1.5,
  /** The longest delay, ms. */
  max: 10_000,
  /** Each delay is shortened by a random fraction up to this. */
  jitter: 0.2,
  /** Give up after this many retries in a row (null: never). */
  maxRetries: null,
  /** A connection up this long (ms) resets the retry count. */
  stableAfter: 1_000,
});

/**
 * The delay in ms before retry `retry` (1 for the first), given `unit`, a
 * random number in [0, 1) (0 gives the delay without jitter). The same
 * function as the Rust client's `Backoff::delay`.
 *
 * @param {Partial<typeof defaultBackoff>} policy
 * @param {number} retry
 * @param {number} [unit]
 * @returns {number}
 */
export function backoffDelay(policy, retry, unit = 0) {
  const p = { ...defaultBackoff, ...policy };
  let steps;
  if (retry <= 0) return 0;
  if (p.immediateFirst) {
    if (retry === 1) return 0;
    steps = retry - 2;
  } else {
    steps = retry - 1;
  }
  const max = Number.isFinite(p.max) ? Math.max(p.max, 0) : defaultBackoff.max;
  const factor = Number.isFinite(p.factor) ? Math.max(p.factor, 1) : 1;
  const base = Math.min(p.initial * factor ** steps, max);
  const jitter = Number.isFinite(p.jitter) ? clamp(p.jitter, 0, 1) : 0;
  const u = Number.isFinite(unit) ? clamp(unit, 0, 1) : 0;
  const ms = clamp(base * (1 - jitter * u), 0, max);
  // Whole microseconds, as the Rust client rounds.
  return Math.round(ms * 1000) / 1000;
}

function clamp(x, lo, hi) {
  return Math.min(Math.max(x, lo), hi);
}

/** The retry counter of the connection, as the Rust client's `Schedule`. */
class Schedule {
  constructor(policy) {
    this.policy = policy;
    this.retries = 0;
  }

  /** The delay before the next attempt, or null to give up. */
  next() {
    if (this.policy === null) return null;
    if (this.policy.maxRetries != null && this.retries >= this.policy.maxRetries) return null;
    this.retries += 1;
    return backoffDelay(this.policy, this.retries, Math.random());
  }

  /** A connection ended after `uptime` ms. */
  ended(uptime) {
    if (this.policy !== null && uptime >= this.policy.stableAfter) this.retries = 0;
  }
}

/** The event every client event is: `detail` carries the payload. */
export class SwitchboardEvent extends Event {
  constructor(type, detail, init = undefined) {
    super(type, init);
    this.detail = detail;
  }
}

/** Marks a reply that carries a credential (see #sendSecret). */
const SECRET_REPLY = Symbol('secretReply');

/** `reply`, marked as carrying a credential. */
function markSecret(reply) {
  Object.defineProperty(reply, SECRET_REPLY, { value: true });
  return reply;
}

/** The client's method behind Batch#send, kept off its public face. */
const sendBatch = Symbol('sendBatch');
const DEFAULT_TIMEOUT = 10_000;
const DEFAULT_CONNECT_TIMEOUT = 10_000;
/** The server's default (`ServerBuilder::max_message_size`): 10 MiB. */
const DEFAULT_MAX_MESSAGE_SIZE = 10 << 20;
const HEARTBEAT = 'rpc.heartbeat';
const HEARTBEAT_ACK = 'rpc.heartbeat_ack';
/** The notification that cancels a request, both ways (the LSP convention). */
const CANCEL_REQUEST = '$/cancelRequest';
/** The notification that carries a positioned publication (`shared/src/stream.rs`). */
const PUBLICATION = 'rpc.publication';
/** The built-in method that reads a topic's history. */
const HISTORY = 'rpc.history';
const textDecoder = new TextDecoder();
const now = () => (globalThis.performance ? globalThis.performance.now() : Date.now());

/** A timeout option as ms, or null for none (null, 0, Infinity, negative). */
function limitOf(timeout) {
  if (timeout == null || !Number.isFinite(timeout) || timeout <= 0) return null;
  return timeout;
}

/**
 * A positioned subscription, as `Client#subscribe` resolves with it: the
 * topic, the position of the last publication delivered (what to persist
 * and pass back as `since`), and the way out.
 */
class Subscription {
  #entry;
  #unsubscribe;

  constructor(entry, unsubscribe) {
    this.#entry = entry;
    this.#unsubscribe = unsubscribe;
  }

  /** The topic's name. */
  get topic() {
    return this.#entry.topic;
  }

  /**
   * `{epoch, offset}` of the last publication delivered (or the position
   * the subscription started at, or was moved to by `lost`): a copy.
   */
  get position() {
    const p = this.#entry.position;
    return p === null ? null : { epoch: p.epoch, offset: p.offset };
  }

  /** Stops this handler; the last one of the topic leaving sends `rpc.unsubscribe`. False if done already. */
  unsubscribe() {
    return this.#unsubscribe();
  }
}

/**
 * A JSON-RPC client over one WebSocket that reconnects. Make one with
 * {@link connect}. It is an EventTarget; `on(type, fn)` is a shorthand.
 *
 * Events (each a SwitchboardEvent whose `detail` is shown):
 * - `state`: `{state, previous, error}` on every state change;
 * - `notification`: `{method, params}` for every notification from the server;
 * - `heartbeat`: `{t, interval, rtt}` for every `rpc.heartbeat` from the server;
 * - `lost`: `{topic, position, previous, reason, missed, error?}` when a
 *   positioned subscription could not get back publications it missed (the
 *   application must reload its state; see #lost);
 * - `recovered`: `{topic, count, since, position}` when a positioned
 *   subscription resumed and the `count` publications it missed were delivered;
 * - `error`: `{error, source, kind, ...}` for what fails with nobody to
 *   await it; `kind` says what:
 *   - `listener`: an event listener (or `trace`) threw or rejected;
 *   - `handler`: a subscription handler or a method called by notification;
 *   - `resubscribe`: subscribing again after a reconnect was refused;
 *   - `history`: `rpc.history` failed to fill a gap (a `lost` follows);
 *   - `invalidPublication`: an `rpc.publication` without topic, epoch,
 *     offset and method (`params`);
 *   - `nullIdError`: the server sent an error with id null (`serverError`,
 *     `frame`; `failed`: the calls it failed, see #onNullIdReply);
 *   - `invalidFrame`: the server sent a frame that is not JSON, or an empty
 *     batch (`frame`).
 *   Logged to the console unless a listener calls `event.preventDefault()`.
 *   An `error` listener that throws is only logged, never reported again.
 */
export class Client extends EventTarget {
  #url;
  /** #url as messages show it: secret query parameters redacted. */
  #shownUrl;
  /** null, a static token, or the token provider (a function). */
  #token;
  #WebSocket;
  #protocols;
  #timeout;
  #waitReady;
  #connectTimeout;
  #heartbeatTimeout;
  #trace;
  #maxMessageSize;
  #cancelRequests;
  #schedule;

  #state = State.Connecting;
  #lastError = null;
  /** The open connection: {ws, upSince, watchdog, silenceLimit} or null. */
  #conn = null;
  /** The socket being opened, so close() can abandon it. */
  #opening = null;
  #closed = false;
  #wake = null;
  #closeWaiters = [];

  #nextId = 1;
  /** id -> {method, decode, group, conn, timer, succeed, fail}; see #expect */
  #pending = new Map();
  /** callbacks waiting for the state to be ready or closed */
  #readyWaiters = new Set();
  /** name -> function */
  #methods = new Map();
  /** topic -> {topic, method, handlers: Set, waiters: [{resolve, reject}]} */
  #topics = new Map();

  /** listener -> (type and capture -> the guarded listener registered for it) */
  #guarded = new WeakMap();

  #unknownReplies = 0;
  #nullIdErrors = 0;
  #invalidFrames = 0;
  #connections = 0;
  #rtt = null;

  /**
   * @param {string|URL} url
   * @param {object} [options] see {@link connect}
   */
  constructor(url, options = {}) {
    super();
    this.#url = socketUrl(url);
    this.#shownUrl = redactUrl(this.#url);
    const token = options.token ?? null;
    if (token !== null && typeof token !== 'string' && typeof token !== 'function') {
      throw new TypeError('options.token must be a string or a function returning one (or a promise of one)');
    }
    this.#token = token;
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== 'function') {
      throw new TypeError(
        'no WebSocket implementation: pass options.WebSocket (Node 20: run with --experimental-websocket, or use the ws package)',
      );
    }
    this.#protocols = options.protocols;
    this.#timeout = options.timeout === undefined ? DEFAULT_TIMEOUT : options.timeout;
    this.#waitReady = Boolean(options.waitReady);
    this.#connectTimeout = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
    this.#heartbeatTimeout = options.heartbeatTimeout ?? null;
    this.#trace = typeof options.trace === 'function' ? options.trace : null;
    this.#maxMessageSize = options.maxMessageSize === undefined ? DEFAULT_MAX_MESSAGE_SIZE : limitOf(options.maxMessageSize);
    this.#cancelRequests = options.cancelRequests ?? true;
    const reconnect = options.reconnect;
    const policy =
      reconnect === false || reconnect === 'never'
        ? null
        : { ...defaultBackoff, ...(typeof reconnect === 'object' && reconnect !== null ? reconnect : {}) };
    this.#schedule = new Schedule(policy);
    for (const [name, fn] of Object.entries(options.methods ?? {})) this.register(name, fn);
    this.#run();
  }

  // ---- state ------------------------------------------------------------

  /** The URL the client connects to. */
  get url() {
    return this.#url;
  }

  /** 'connecting' | 'ready' | 'offline' | 'closed'. */
  get state() {
    return this.#state;
  }

  /** Why the last connection attempt failed or the last connection ended, or null. */
  get lastError() {
    return this.#lastError;
  }

  /** The round trip in ms that the server last measured with its heartbeat, or null. */
  get rtt() {
    return this.#rtt;
  }

  /** Calls waiting for their reply. */
  get pending() {
    return this.#pending.size;
  }

  /** Replies that matched no pending call (late replies after a timeout). */
  get unknownReplies() {
    return this.#unknownReplies;
  }

  /** Replies with id null the server sent (errors about a request it could not read). */
  get nullIdErrors() {
    return this.#nullIdErrors;
  }

  /** Frames from the server that were not JSON, or were an empty batch. */
  get invalidFrames() {
    return this.#invalidFrames;
  }

  /** Sockets opened so far. */
  get connections() {
    return this.#connections;
  }

  /**
   * Adds a listener; returns the function that removes it. The listener gets
   * the event's detail, then the event.
   * @param {string} type
   * @param {(detail: any, event: SwitchboardEvent) => void} listener
   */
  on(type, listener) {
    const wrapped = (event) => listener(event.detail, event);
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  /**
   * EventTarget's, with the listener guarded: what it throws (or the
   * promise it returns rejects with) is reported as an `error` event
   * instead of escaping into the client (in Node: killing the process).
   */
  addEventListener(type, listener, options) {
    if (listener === null || (typeof listener !== 'function' && typeof listener !== 'object')) {
      super.addEventListener(type, listener, options);
      return;
    }
    let byKey = this.#guarded.get(listener);
    if (byKey === undefined) {
      byKey = new Map();
      this.#guarded.set(listener, byKey);
    }
    const key = listenerKey(type, options);
    // The same listener twice is one registration, as with EventTarget.
    if (!byKey.has(key)) byKey.set(key, this.#guard(type, listener));
    super.addEventListener(type, byKey.get(key), options);
  }

  /** EventTarget's, finding the guarded listener `addEventListener` registered. */
  removeEventListener(type, listener, options) {
    const guarded = listener === null || listener === undefined ? undefined : this.#guarded.get(listener)?.get(listenerKey(type, options));
    super.removeEventListener(type, guarded ?? listener, options);
  }

  /** `listener` (a function or an object with handleEvent), with its failures reported. */
  #guard(type, listener) {
    return (event) => {
      let out;
      try {
        out = typeof listener === 'function' ? listener.call(this, event) : listener.handleEvent(event);
      } catch (error) {
        this.#listenerFailed(type, error);
        return;
      }
      if (out && typeof out.then === 'function') out.then(undefined, (error) => this.#listenerFailed(type, error));
    };
  }

  /** A listener of `type` failed: an `error` event, except for an `error` listener (no loop). */
  #listenerFailed(type, error) {
    if (type === 'error') console.error('switchboard: an error listener failed:', error);
    else this.#report(error, `a ${type} listener`, 'listener');
  }

  /**
   * Resolves once the client is ready (at once if it is). Rejects with the
   * last connection error (Transport) when the reconnect policy gives up,
   * with Offline when the client is closed, and with Timeout after
   * `options.timeout` ms if given.
   */
  ready(options = {}) {
    return this.#whenReady(true, limitOf(options.timeout), now()).catch((error) => {
      // Say why the policy gave up rather than only that the client is closed.
      if (this.#state === State.Closed && !this.#closed && this.#lastError) throw this.#lastError;
      throw error;
    });
  }

  #setState(state, error = null) {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    for (const waiter of [...this.#readyWaiters]) waiter();
    this.dispatchEvent(new SwitchboardEvent('state', { state, previous, error }));
  }

  /** Waits (or not) until ready; throws Offline / Transport / Timeout, or `signal`'s reason. */
  async #whenReady(wait, limit, started, signal = null) {
    if (this.#isUp()) return;
    if (this.#state === State.Closed || !wait) throw this.#offlineError();
    const left = limit === null ? null : limit - (now() - started);
    if (left !== null && left <= 0) throw new RpcClientError(ErrorKind.Timeout, `not ready within ${limit} ms`);
    await new Promise((resolve, reject) => {
      let timer = null;
      const waiter = () => {
        if (this.#isUp()) done(resolve);
        else if (this.#state === State.Closed) done(() => reject(this.#offlineError()));
      };
      const aborted = () => done(() => reject(signal.reason));
      const done = (settle) => {
        this.#readyWaiters.delete(waiter);
        if (timer !== null) clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        settle();
      };
      signal?.addEventListener('abort', aborted, { once: true });
      if (left !== null) {
        timer = setTimeout(
          () => done(() => reject(new RpcClientError(ErrorKind.Timeout, `not ready within ${limit} ms`))),
          left,
        );
      }
      this.#readyWaiters.add(waiter);
    });
  }

  /** Ready with an open connection (the state lags a dropped socket by a moment). */
  #isUp() {
    return this.#state === State.Ready && this.#conn !== null && !this.#conn.over;
  }

  #offlineError() {
    const why =
      this.#state !== State.Closed
        ? `the client is ${this.#state}`
        : this.#closed
          ? 'the client is closed'
          : 'the client is closed: the reconnect policy gave up';
    return new RpcClientError(ErrorKind.Offline, `not connected: ${why}`, { cause: this.#lastError ?? undefined });
  }

  // ---- the connection loop ----------------------------------------------

  async #run() {
    while (!this.#closed) {
      this.#setState(State.Connecting, this.#lastError);
      let conn = null;
      try {
        conn = await this.#open();
      } catch (error) {
        this.#lastError = error;
      }
      if (conn !== null) {
        await conn.ended;
        this.#schedule.ended(now() - conn.upSince);
      }
      if (this.#closed) break;
      const delay = this.#schedule.next();
      if (delay === null) break;
      if (delay > 0) {
        this.#setState(State.Offline, this.#lastError);
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = null;
      }
    }
    this.#setState(State.Closed, this.#closed ? null : this.#lastError);
    for (const entry of this.#topics.values()) {
      for (const waiter of entry.waiters.splice(0)) waiter.reject(this.#offlineError());
    }
    for (const resolve of this.#closeWaiters.splice(0)) resolve();
  }

  /** Opens a socket (with a fresh token, if any); resolves with the connection once open, rejects with a Transport error. */
  async #open() {
    let url = this.#url;
    if (this.#token !== null) {
      const token = await this.#freshToken();
      if (this.#closed) throw new RpcClientError(ErrorKind.Transport, 'the client was closed while connecting');
      url = withToken(url, token);
    }
    return this.#openSocket(url);
  }

  /**
   * The static token, or a fresh one from the provider (within the connect
   * timeout). Rejects with Transport, saying why but never the token.
   */
  async #freshToken() {
    if (typeof this.#token === 'string') return this.#token;
    const limit = limitOf(this.#connectTimeout);
    let timer = null;
    try {
      const asked = Promise.resolve().then(() => this.#token());
      const token = await (limit === null
        ? asked
        : Promise.race([
            asked,
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`no token within ${limit} ms (the connect timeout)`)), limit);
            }),
          ]));
      if (typeof token !== 'string' || token === '') throw new Error('it gave no token (a non-empty string)');
      return token;
    } catch (e) {
      throw new RpcClientError(ErrorKind.Transport, `the token provider failed: ${e?.message ?? e}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Opens a socket to `url`; resolves with the connection once open, rejects with a Transport error. */
  #openSocket(url) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = this.#protocols === undefined ? new this.#WebSocket(url) : new this.#WebSocket(url, this.#protocols);
      } catch (e) {
        reject(new RpcClientError(ErrorKind.Transport, `cannot open ${this.#shownUrl}: ${e.message}`, { cause: e }));
        return;
      }
      ws.binaryType = 'arraybuffer';
      let settled = false;
      const fail = (message) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#opening = null;
        try {
          ws.close();
        } catch {
          // already closing
        }
        reject(new RpcClientError(ErrorKind.Transport, message));
      };
      const timer =
        limitOf(this.#connectTimeout) === null
          ? null
          : setTimeout(() => fail(`connecting to ${this.#shownUrl} took longer than ${this.#connectTimeout} ms`), this.#connectTimeout);
      this.#opening = { abandon: () => fail('the client was closed while connecting') };
      ws.addEventListener('open', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#opening = null;
        resolve(this.#attach(ws));
      });
      // Browsers fire `error` then `close`; some implementations only one of them.
      ws.addEventListener('error', (event) => {
        const detail = event?.message || event?.error?.message;
        fail(`cannot connect to ${this.#shownUrl}${detail ? `: ${detail}` : ''}`);
      });
      ws.addEventListener('close', (event) => {
        const reason = event.reason ? `: ${event.reason}` : '';
        fail(`cannot connect to ${this.#shownUrl} (closed with ${event.code}${reason})`);
      });
    });
  }

  /** Makes an open socket the client's connection. */
  #attach(ws) {
    let end;
    const conn = {
      ws,
      upSince: now(),
      watchdog: null,
      silenceLimit: null,
      over: false,
      /** the server's calls a handler is still working on: id -> {cancel, abort} */
      serving: new Map(),
      ended: new Promise((r) => (end = r)),
    };
    conn.end = end;
    this.#conn = conn;
    this.#connections += 1;
    ws.addEventListener('message', (event) => this.#onFrame(conn, event.data));
    ws.addEventListener('close', (event) => {
      const reason = event.reason ? `: ${event.reason}` : '';
      this.#endConnection(conn, `the connection closed with ${event.code}${reason}`);
    });
    // Re-subscribe before anything a `ready` listener sends.
    for (const entry of this.#topics.values()) this.#sendSubscribe(entry);
    this.#lastError = null;
    this.#setState(State.Ready);
    return conn;
  }

  /**
   * Ends `conn` at once (idempotent): pending calls fail with Disconnected,
   * the handlers of the server's calls see their signal abort. `close`:
   * `[code, reason]` to close the socket with.
   */
  #endConnection(conn, why, close = null) {
    if (conn.over) return;
    conn.over = true;
    clearTimeout(conn.watchdog);
    if (this.#conn === conn) this.#conn = null;
    if (close !== null) closeSocket(conn.ws, close[0], close[1]);
    this.#lastError = new RpcClientError(ErrorKind.Transport, why);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const call of pending) {
      call.fail(new RpcClientError(ErrorKind.Disconnected, `the connection closed before the reply to ${call.method} arrived (${why})`));
    }
    const serving = [...conn.serving.values()];
    conn.serving.clear();
    for (const request of serving) request.abort(new RpcClientError(ErrorKind.Disconnected, `the connection closed (${why})`));
    conn.end();
  }

  /**
   * Closes the client for good: no more reconnects, pending calls fail with
   * Disconnected, the state becomes `closed`. Resolves once it is.
   */
  close() {
    if (!this.#closed) {
      this.#closed = true;
      this.#opening?.abandon();
      const conn = this.#conn;
      if (conn) {
        try {
          conn.ws.close(1000, 'client closing');
        } catch {
          // closing already
        }
        this.#endConnection(conn, 'the client closed the connection');
      }
      this.#wake?.();
    }
    if (this.#state === State.Closed) return Promise.resolve();
    return new Promise((resolve) => this.#closeWaiters.push(resolve));
  }

  #send(conn, text) {
    this.#traceFrame('out', text);
    conn.ws.send(text);
  }

  /** Sends a reply that carries a credential: `trace` sees it with the result redacted. */
  #sendSecret(conn, text, reply) {
    if (conn.over) return;
    this.#traceFrame('out', JSON.stringify({ ...reply, result: '[redacted]' }));
    conn.ws.send(text);
  }

  /** Throws Encode when `text` is larger than maxMessageSize: it is not sent. */
  #checkSize(text, what) {
    const bytes = bytesOver(text, this.#maxMessageSize);
    if (bytes > 0) {
      throw new RpcClientError(ErrorKind.Encode, `${what} is ${bytes} bytes, over maxMessageSize ${this.#maxMessageSize}: not sent`);
    }
  }

  // ---- calls ------------------------------------------------------------

  /**
   * Calls `method` with `params` (an array, an object, or nothing) and
   * resolves with the result.
   *
   * Options: `timeout` ms (default: the client's, 10 s; null or 0 for none),
   * `waitReady` (wait for a connection instead of failing with Offline; the
   * wait counts against the timeout), `decode` (a function applied to the
   * result; what it throws fails the call with Decode), `signal` (an
   * AbortSignal: aborting rejects with its reason, as fetch does). A call
   * given up on (timeout, abort) is cancelled on the server, see
   * #sendCancel.
   */
  call(method, params, options = {}) {
    return this.#whenUp(options, [{ method, params, call: true, decode: options.decode }], (texts, limit, started) => {
      const id = this.#nextId++;
      const text = withId(texts[0], id);
      this.#checkSize(text, `the request to ${method}`);
      const left = limit === null ? null : Math.max(limit - (now() - started), 0);
      const reply = this.#expect(id, method, { left, limit, decode: options.decode, signal: options.signal });
      this.#send(this.#conn, text);
      return reply;
    });
  }

  /**
   * Encodes `entries` (bad params fail before any wait), waits for a
   * connection if asked to, then runs `send` with the texts. Sends at once,
   * in program order, when the client is up.
   */
  #whenUp(options, entries, send) {
    const started = now();
    const limit = limitOf(options.timeout === undefined ? this.#timeout : options.timeout);
    const signal = options.signal ?? null;
    let texts;
    try {
      if (signal?.aborted) throw signal.reason;
      texts = entries.map((entry) => encodeMessage(entry.method, entry.params));
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#isUp()) {
      try {
        return Promise.resolve(send(texts, limit, started));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#whenReady(options.waitReady ?? this.#waitReady, limit, started, signal).then(() => {
      // Ready a moment ago; the socket may have dropped, or the signal aborted, since.
      if (signal?.aborted) throw signal.reason;
      if (!this.#isUp()) throw this.#offlineError();
      return send(texts, limit, started);
    });
  }

  /**
   * Registers the pending call `id` on the current connection; resolves
   * with its result. `left`: ms until it times out (null: never), `limit`:
   * the timeout as the caller gave it, `group`: what a batch's calls share
   * (a call alone is its own), `signal`: an AbortSignal.
   */
  #expect(id, method, { left = null, limit = null, decode, group = null, signal = null }) {
    return new Promise((resolve, reject) => {
      let unlisten = null;
      const finish = () => {
        clearTimeout(call.timer);
        unlisten?.();
      };
      const call = {
        method,
        decode,
        group,
        conn: this.#conn,
        timer: null,
        /** Ends the call with `value`; it has left the table. */
        succeed: (value) => {
          finish();
          resolve(value);
        },
        /** Ends the call with `error`; it has left the table. */
        fail: (error) => {
          finish();
          reject(error);
        },
      };
      call.group ??= call;
      if (left !== null) {
        const timeout = () => new RpcClientError(ErrorKind.Timeout, `no reply to ${method} within ${limit} ms`);
        call.timer = setTimeout(() => this.#giveUp(id, call, timeout()), left);
      }
      if (signal !== null) {
        const aborted = () => this.#giveUp(id, call, signal.reason);
        signal.addEventListener('abort', aborted, { once: true });
        unlisten = () => signal.removeEventListener('abort', aborted);
      }
      this.#pending.set(id, call);
    });
  }

  /** Stops waiting for the call `id` (timeout, abort): it fails with `error` and is cancelled. */
  #giveUp(id, call, error) {
    if (this.#pending.get(id) !== call) return;
    this.#pending.delete(id);
    call.fail(error);
    this.#sendCancel(call.conn, id);
  }

  /**
   * Tells the server the client no longer waits for the call `id`:
   * `$/cancelRequest` with `{id}` (the LSP convention), on the connection
   * that carried the call if it is still up, unless `cancelRequests` is
   * false. A server that does not know the method ignores it, as JSON-RPC
   * servers ignore unknown notifications; its reply, if it comes, is
   * counted as unknown.
   */
  #sendCancel(conn, id) {
    if (!this.#cancelRequests || conn === null || conn.over) return;
    try {
      this.#send(conn, encodeMessage(CANCEL_REQUEST, { id }));
    } catch {
      // The socket is closing: the server forgets the call with it.
    }
  }

  /**
   * Sends a notification (no reply). Resolves once it is handed to the
   * socket; fails with Offline unless `options.waitReady`.
   */
  notify(method, params, options = {}) {
    return this.#whenUp(options, [{ method, params }], (texts) => {
      this.#checkSize(texts[0], `the notification ${method}`);
      this.#send(this.#conn, texts[0]);
    });
  }

  /**
   * A batch: `.call(method, params)` and `.notify(method, params)` add
   * entries, `.send(options)` sends them in one frame and resolves with one
   * outcome per call, in the order added, shaped as Promise.allSettled's:
   * `{status: 'fulfilled', value}` or `{status: 'rejected', reason}`.
   */
  batch() {
    return new Batch(this);
  }

  /** Sends a batch built by {@link Batch}. */
  [sendBatch](entries, options) {
    if (entries.length === 0) return Promise.resolve([]);
    return this.#whenUp(options, entries, (texts, limit, started) => this.#sendBatchNow(entries, texts, limit, started, options.signal));
  }

  #sendBatchNow(entries, texts, limit, started, signal) {
    const parts = [];
    const calls = [];
    entries.forEach((entry, i) => {
      if (entry.call) {
        const id = this.#nextId++;
        parts.push(withId(texts[i], id));
        calls.push({ id, entry });
      } else {
        parts.push(texts[i]);
      }
    });
    const text = `[${parts.join(',')}]`;
    this.#checkSize(text, 'the batch');
    const left = limit === null ? null : Math.max(limit - (now() - started), 0);
    const group = {};
    const replies = calls.map(({ id, entry }) => this.#expect(id, entry.method, { left, limit, decode: entry.decode, group, signal }));
    this.#send(this.#conn, text);
    return Promise.allSettled(replies);
  }

  /** Calls `rpc.discover`: the server's OpenRPC document. */
  discover(options = {}) {
    return this.call('rpc.discover', undefined, options);
  }

  // ---- methods the server calls -----------------------------------------

  /**
   * Registers a method the server may call (or notify) on this client. The
   * function gets `(params, context)` and returns the result or a promise of
   * it; throwing an RpcError answers with that error object, anything else
   * with -32603. Returns the function that unregisters it.
   */
  register(name, fn) {
    if (typeof name !== 'string' || typeof fn !== 'function') throw new TypeError('register(name: string, fn: function)');
    this.#methods.set(name, fn);
    return () => {
      if (this.#methods.get(name) === fn) this.#methods.delete(name);
    };
  }

  /** Removes a method; true when there was one. */
  unregister(name) {
    return this.#methods.delete(name);
  }

  // ---- subscriptions ----------------------------------------------------

  /**
   * Subscribes to `topic` and calls `handler` for what is published to it.
   * After every reconnect the client subscribes again by itself.
   *
   * **Plain** (the default): `rpc.subscribe` with `[topic]`;
   * `handler(params, {topic, method})` for each notification whose method
   * is the topic's name (`options.method` for another name). Resolves with
   * the unsubscribe function.
   *
   * **Positioned** (`options.positioned: true`, or `options.since`):
   * `rpc.subscribe` with `{topic, positioned: true}` or `{topic, since}`;
   * `handler(publication)` for each `rpc.publication`, with `{topic, epoch,
   * offset, method, params}`, in offset order and never twice. Resolves with
   * a Subscription whose `position` is the last one delivered. `since`
   * resumes after a position (e.g. one saved before a page reload); after a
   * reconnect the client resumes after the last position delivered. When
   * the server cannot replay everything missed (a new epoch, history gone),
   * or a gap in the offsets cannot be filled from `rpc.history`, the
   * subscription moves to the server's latest position and fires `lost`
   * (`options.onLost` and the client's `lost` event): the application must
   * reload its state. A resume that could replay everything fires
   * `recovered` once the replayed publications are delivered. See
   * #onSubscribed, #drain.
   *
   * Resolves once a server has confirmed the subscription (waiting for a
   * connection if there is none); rejects with Rpc when the server denies
   * it. A topic is either plain or positioned in a client; positioned
   * handlers of a topic share its one position.
   */
  subscribe(topic, handler, options = {}) {
    if (typeof topic !== 'string' || topic === '') return Promise.reject(new TypeError('the topic must be a non-empty string'));
    if (typeof handler !== 'function') return Promise.reject(new TypeError('the handler must be a function'));
    const positioned = options.positioned === true || options.since != null;
    let since = null;
    try {
      if (options.since != null) since = positionOf(options.since, 'options.since');
      if (positioned && options.method !== undefined) {
        throw new TypeError('options.method is for plain subscriptions: a positioned one gets every publication of its topic, with its method');
      }
      for (const name of ['onLost', 'onRecovered']) {
        if (options[name] != null && typeof options[name] !== 'function') throw new TypeError(`options.${name} must be a function`);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#state === State.Closed || this.#closed) return Promise.reject(this.#offlineError());
    let entry = this.#topics.get(topic);
    const fresh = entry === undefined;
    if (!fresh && entry.positioned !== positioned) {
      const why = entry.positioned
        ? `topic ${topic} is already subscribed with positions: subscribe with positioned: true to join it`
        : `topic ${topic} is already subscribed without positions: unsubscribe it first`;
      return Promise.reject(new TypeError(why));
    }
    if (!fresh && since !== null && !samePosition(since, entry.position)) {
      const why = `topic ${topic} already has a positioned subscription, at ${showPosition(entry.position)}: another one joins it and cannot start from ${showPosition(since)}`;
      return Promise.reject(new TypeError(why));
    }
    if (fresh) {
      entry = { topic, positioned, method: options.method ?? topic, handlers: new Set(), waiters: [], confirmed: false };
      if (positioned) {
        Object.assign(entry, {
          /** the last position delivered (or started at) */
          position: since,
          /** subscribing (publications wait in `buffer`) | live | fetching (rpc.history) | refused */
          phase: 'subscribing',
          buffer: [],
          /** bumped by each rpc.subscribe: older answers are stale */
          generation: 0,
          /** {since, target, count} while a resume's replay is being delivered */
          recovering: null,
        });
      }
      this.#topics.set(topic, entry);
    }
    // The same function twice is two subscriptions.
    const subscription = { handler, onLost: options.onLost ?? null, onRecovered: options.onRecovered ?? null };
    entry.handlers.add(subscription);
    const unsubscribe = () => this.#unsubscribe(entry, subscription);
    const value = positioned ? new Subscription(entry, unsubscribe) : unsubscribe;
    return new Promise((resolve, reject) => {
      if (!fresh && entry.confirmed) {
        resolve(value);
        return;
      }
      entry.waiters.push({
        resolve: () => resolve(value),
        reject: (error) => {
          entry.handlers.delete(subscription);
          reject(error);
        },
      });
      if (fresh && this.#isUp()) this.#sendSubscribe(entry);
    });
  }

  /**
   * Sends `rpc.subscribe` for `entry` on the current connection: `[topic]`,
   * or for a positioned one `{topic, since}` (its last position) or `{topic,
   * positioned: true}` (none yet).
   */
  #sendSubscribe(entry) {
    const conn = this.#conn;
    const id = this.#nextId++;
    const limit = limitOf(this.#timeout);
    let params = [entry.topic];
    let generation;
    let sent = null;
    if (entry.positioned) {
      // Whatever was waiting is replayed after the result: start afresh.
      entry.phase = 'subscribing';
      entry.buffer = [];
      entry.recovering = null;
      generation = ++entry.generation;
      sent = entry.position;
      params = sent === null ? { topic: entry.topic, positioned: true } : { topic: entry.topic, since: sent };
    }
    const decode = entry.positioned ? decodeSubscribed : undefined;
    const reply = this.#expect(id, 'rpc.subscribe', { left: limit, limit, decode });
    this.#send(conn, withId(encodeMessage('rpc.subscribe', params), id));
    reply.then(
      (result) => {
        if (this.#topics.get(entry.topic) !== entry) return;
        if (entry.positioned && generation !== entry.generation) return;
        entry.confirmed = true;
        // A positioned one has its position (and has fired lost, if it lost) by the time it resolves.
        if (entry.positioned) this.#onSubscribed(entry, sent, result);
        for (const waiter of entry.waiters.splice(0)) waiter.resolve();
      },
      (error) => {
        if (this.#topics.get(entry.topic) !== entry) return;
        if (entry.positioned && generation !== entry.generation) return;
        if (error.kind === ErrorKind.Disconnected) return; // again after the reconnect
        if (entry.positioned) {
          entry.phase = 'refused';
          entry.buffer = [];
        }
        if (entry.confirmed || entry.waiters.length === 0) {
          this.#report(error, `re-subscribing to ${entry.topic}`, 'resubscribe');
          return;
        }
        this.#topics.delete(entry.topic);
        for (const waiter of entry.waiters.splice(0)) waiter.reject(error);
      },
    );
  }

  /**
   * The result of a positioned `rpc.subscribe` that asked from `sent` (null:
   * from now). Without `sent` the stream starts at the result's position.
   * With it, `recovered: true` means the publications after `sent` follow
   * (duplicates are dropped, `recovered` fires once they are delivered);
   * `recovered: false` means none do: `lost`, and on from the result's
   * position (so too, whatever it says, when the server's stream is behind
   * `sent`: its later publications would otherwise be dropped as seen).
   * Then whatever waited is delivered.
   */
  #onSubscribed(entry, sent, result) {
    const latest = { epoch: result.epoch, offset: result.offset };
    entry.phase = 'live';
    if (sent === null) {
      entry.position = latest;
    } else if (result.recovered && result.epoch === sent.epoch && result.offset >= sent.offset) {
      const count = Math.max(latest.offset - sent.offset, 0);
      entry.recovering = { since: sent, target: latest, count };
      this.#checkRecovered(entry);
    } else {
      this.#lost(entry, latest, result.epoch === sent.epoch ? 'gone' : 'epoch');
    }
    this.#drain(entry);
  }

  /** A `rpc.publication` from the server: to its topic's positioned subscription, in order. */
  #onPublication(params) {
    if (!isPublication(params)) {
      const error = new RpcClientError(ErrorKind.InvalidResponse, 'the server sent an rpc.publication that is not {topic, epoch, offset, method, params}');
      let shown;
      try {
        shown = excerpt(JSON.stringify(params) ?? String(params));
      } catch {
        shown = String(params);
      }
      this.#report(error, 'a publication from the server', 'invalidPublication', { params: shown });
      return;
    }
    const entry = this.#topics.get(params.topic);
    if (entry === undefined || !entry.positioned || entry.phase === 'refused') return;
    entry.buffer.push(params);
    if (entry.phase === 'live') this.#drain(entry);
  }

  /**
   * Delivers what waits in `entry.buffer` while the stream is live: an
   * offset already delivered is dropped, the next one is delivered, and a
   * jump (or another epoch) stops it: the missing ones are asked of
   * `rpc.history` (#fetchMissing).
   */
  #drain(entry) {
    while (entry.phase === 'live' && entry.buffer.length > 0 && this.#topics.get(entry.topic) === entry) {
      const p = entry.buffer[0];
      const at = entry.position;
      if (p.epoch === at.epoch && p.offset <= at.offset) {
        entry.buffer.shift();
      } else if (p.epoch === at.epoch && p.offset === at.offset + 1) {
        entry.buffer.shift();
        this.#deliver(entry, p);
      } else {
        this.#fetchMissing(entry);
        return;
      }
    }
  }

  /** Hands `p`, the next publication, to the topic's handlers; the position moves to it. */
  #deliver(entry, p) {
    entry.position = { epoch: p.epoch, offset: p.offset };
    for (const { handler } of [...entry.handlers]) {
      this.#runHandler(() => handler(p), `the handler of topic ${entry.topic}`);
    }
    this.#checkRecovered(entry);
  }

  /** Fires `recovered` once a resume's replay has been delivered. */
  #checkRecovered(entry) {
    const r = entry.recovering;
    if (r === null || entry.position.epoch !== r.target.epoch || entry.position.offset < r.target.offset) return;
    entry.recovering = null;
    const detail = { topic: entry.topic, count: r.count, since: { ...r.since }, position: { ...r.target } };
    for (const { onRecovered } of [...entry.handlers]) {
      if (onRecovered !== null) this.#runHandler(() => onRecovered(detail), `the onRecovered callback of topic ${entry.topic}`);
    }
    this.dispatchEvent(new SwitchboardEvent('recovered', detail));
  }

  /**
   * The stream lost publications it cannot get back: the position moves to
   * `position`, and `lost` fires with `{topic, position, previous, reason,
   * missed}` (`missed`: how many offsets were skipped, null across epochs;
   * `error` when `reason` is `failed`).
   */
  #lost(entry, position, reason, error = undefined) {
    const previous = entry.position;
    entry.recovering = null;
    entry.position = { epoch: position.epoch, offset: position.offset };
    const missed = previous.epoch === position.epoch ? Math.max(position.offset - previous.offset, 0) : null;
    const detail = { topic: entry.topic, position: { ...position }, previous: { ...previous }, reason, missed };
    if (error !== undefined) detail.error = error;
    for (const { onLost } of [...entry.handlers]) {
      if (onLost !== null) this.#runHandler(() => onLost(detail), `the onLost callback of topic ${entry.topic}`);
    }
    this.dispatchEvent(new SwitchboardEvent('lost', detail));
  }

  /**
   * A gap before `entry.buffer[0]`: asks `rpc.history` for what came after
   * the last position. Publications keep waiting in the buffer meanwhile.
   * What the history has in order is delivered; when it made no progress
   * (gone, another epoch) or failed, the stream is lost (#lostAfterGap). A
   * history that returned only part is asked again by #drain. A reconnect
   * meanwhile makes the answer stale: the resubscribe resumes instead.
   */
  #fetchMissing(entry) {
    entry.phase = 'fetching';
    const generation = entry.generation;
    const since = entry.position;
    const stale = () => this.#topics.get(entry.topic) !== entry || entry.generation !== generation || entry.phase !== 'fetching';
    this.call(HISTORY, { topic: entry.topic, since }, { decode: decodeHistory }).then(
      (history) => {
        if (stale()) return;
        entry.phase = 'live';
        if (history.epoch !== since.epoch) {
          this.#lostAfterGap(entry, history, 'epoch');
          return;
        }
        for (const p of history.publications) {
          if (this.#topics.get(entry.topic) !== entry) return;
          if (p.topic !== entry.topic || p.epoch !== since.epoch || p.offset <= entry.position.offset) continue;
          if (p.offset !== entry.position.offset + 1) break;
          this.#deliver(entry, p);
        }
        if (samePosition(entry.position, since)) this.#lostAfterGap(entry, history, 'gone');
        else this.#drain(entry);
      },
      (error) => {
        if (stale()) return;
        // Disconnected or Offline: the resubscribe after the reconnect resumes from the position.
        if (error?.kind === ErrorKind.Disconnected || error?.kind === ErrorKind.Offline) return;
        entry.phase = 'live';
        this.#report(error, `the history of topic ${entry.topic}`, 'history');
        const first = entry.buffer[0];
        this.#lost(entry, { epoch: first.epoch, offset: first.offset - 1 }, 'failed', error);
        this.#drain(entry);
      },
    );
  }

  /**
   * The missing publications are gone: on from the history's latest
   * position (what waits of another epoch is dropped with the old stream),
   * or from just before what waits, should that be further on.
   */
  #lostAfterGap(entry, history, reason) {
    const position = { epoch: history.epoch, offset: history.offset };
    entry.buffer = entry.buffer.filter((p) => p.epoch === position.epoch);
    const first = entry.buffer[0];
    if (first !== undefined && first.offset > position.offset + 1) position.offset = first.offset - 1;
    this.#lost(entry, position, reason);
    this.#drain(entry);
  }

  async #unsubscribe(entry, subscription) {
    if (!entry.handlers.delete(subscription)) return false;
    if (entry.handlers.size > 0 || this.#topics.get(entry.topic) !== entry) return true;
    this.#topics.delete(entry.topic);
    if (!this.#isUp()) return true;
    try {
      await this.call('rpc.unsubscribe', [entry.topic]);
    } catch {
      // The connection went away: the server forgot the subscription with it.
    }
    return true;
  }

  /** The topics subscribed to. */
  get topics() {
    return [...this.#topics.keys()];
  }

  // ---- inbound ----------------------------------------------------------
  //
  // Only what could be a request is ever answered with an error: a response,
  // however broken, never is (two peers would otherwise answer each other's
  // errors for ever). What the client cannot use is reported (`error` event)
  // and counted instead.

  #onFrame(conn, data) {
    if (conn.over) return;
    this.#heard(conn);
    if (this.#refuseOversized(conn, data)) return;
    const text = typeof data === 'string' ? data : textDecoder.decode(data);
    this.#traceFrame('in', text);
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      this.#onUnparseable(conn, text);
      return;
    }
    if (Array.isArray(message)) {
      this.#onBatch(conn, message, text);
      return;
    }
    const reply = this.#onMessage(conn, message, text);
    if (reply !== undefined) Promise.resolve(reply).then((r) => this.#reply(conn, r));
  }

  /**
   * A frame over maxMessageSize ends the connection, as the Rust client's
   * does: closed with 1009 "message too big" (4009 where the WebSocket
   * refuses 1009, see closeSocket), pending calls fail with Disconnected,
   * and the client reconnects. True when it was refused.
   */
  #refuseOversized(conn, data) {
    const limit = this.#maxMessageSize;
    if (limit === null) return false;
    const bytes = typeof data === 'string' ? bytesOver(data, limit) : data.byteLength > limit ? data.byteLength : 0;
    if (bytes === 0) return false;
    this.#endConnection(conn, `a message from the server was ${bytes} bytes, over maxMessageSize ${limit}`, [1009, 'message too big']);
    return true;
  }

  /**
   * A frame that is not JSON: reported and counted. A peer cannot tell a
   * garbled request from a garbled reply, so it is answered (-32700, id
   * null, as the spec asks of the side receiving a request) only when it
   * names a method, i.e. could have been a request; anything else is not.
   */
  #onUnparseable(conn, text) {
    this.#invalidFrames += 1;
    if (/"method"\s*:/.test(text)) {
      this.#reply(conn, errorResponse(null, ErrorCode.ParseError, 'Parse error', 'the frame is not JSON'));
    }
    const error = new RpcClientError(ErrorKind.InvalidResponse, 'the server sent a frame that is not JSON');
    this.#report(error, 'a frame from the server', 'invalidFrame', { frame: excerpt(text) });
  }

  /**
   * A batch: requests are answered in one array, replies matched. An empty
   * batch is reported and counted, not answered (from a server it can only
   * be a broken reply). Replies with id null are looked at after the rest,
   * so that they only concern calls the batch left unanswered.
   */
  #onBatch(conn, messages, text) {
    if (messages.length === 0) {
      this.#invalidFrames += 1;
      const error = new RpcClientError(ErrorKind.InvalidResponse, 'the server sent an empty batch');
      this.#report(error, 'a frame from the server', 'invalidFrame', { frame: text });
      return;
    }
    const nullIds = new Set(messages.filter((m) => isResponse(m) && m.id === null));
    const replies = messages.map((m) => (nullIds.has(m) ? undefined : this.#onMessage(conn, m, text)));
    for (const m of nullIds) this.#onNullIdReply(m, text);
    if (replies.some((r) => r !== undefined)) {
      Promise.all(replies).then((all) => {
        const out = all.filter((r) => r !== undefined);
        if (out.length === 0 || conn.over) return;
        const text = `[${out.map((r) => this.#encodeReply(r)).join(',')}]`;
        if (!out.some((r) => r[SECRET_REPLY])) {
          this.#send(conn, text);
          return;
        }
        const shown = out.map((r) => (r[SECRET_REPLY] && 'result' in r ? { ...r, result: '[redacted]' } : r));
        this.#traceFrame('out', JSON.stringify(shown));
        conn.ws.send(text);
      });
    }
  }

  #reply(conn, reply) {
    if (reply?.[SECRET_REPLY] && 'result' in reply) this.#sendSecret(conn, this.#encodeReply(reply), reply);
    else this.#replyText(conn, this.#encodeReply(reply));
  }

  #replyText(conn, text) {
    if (!conn.over) this.#send(conn, text);
  }

  /** One reply, encoded; one that cannot be, or is over maxMessageSize, answers -32603. */
  #encodeReply(reply) {
    const text = encodeReply(reply);
    const bytes = bytesOver(text, this.#maxMessageSize);
    if (bytes === 0) return text;
    const why = `the reply is ${bytes} bytes, over maxMessageSize ${this.#maxMessageSize}`;
    return JSON.stringify(errorResponse(reply.id, ErrorCode.InternalError, 'Internal error', why));
  }

  /** Handles one message; returns the reply (or a promise of it) for a request. */
  #onMessage(conn, m, text) {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      return errorResponse(null, ErrorCode.InvalidRequest, 'Invalid Request', 'not a JSON-RPC message');
    }
    if ('method' in m) {
      const hasId = 'id' in m;
      const valid =
        m.jsonrpc === '2.0' &&
        typeof m.method === 'string' &&
        (!hasId || isId(m.id)) &&
        (m.params === undefined || (m.params !== null && typeof m.params === 'object'));
      if (!valid) {
        const id = hasId && isId(m.id) ? m.id : null;
        return errorResponse(id, ErrorCode.InvalidRequest, 'Invalid Request', 'not a valid JSON-RPC 2.0 request');
      }
      return hasId ? this.#onRequest(conn, m) : this.#onNotification(conn, m);
    }
    if (isResponse(m)) {
      if (m.id === null) this.#onNullIdReply(m, text);
      else this.#onResponse(m);
      return undefined;
    }
    return errorResponse(null, ErrorCode.InvalidRequest, 'Invalid Request', 'neither a request nor a response');
  }

  /** A reply: ends the call it matches (see replyKey), or is counted as unknown. */
  #onResponse(m) {
    const key = replyKey(m.id);
    const call = key === undefined ? undefined : this.#pending.get(key);
    if (call === undefined) {
      this.#unknownReplies += 1;
      return;
    }
    this.#pending.delete(key);
    const error = replyError(m);
    if (error !== null) {
      call.fail(error);
    } else if (typeof call.decode === 'function') {
      let value;
      try {
        value = call.decode(m.result);
      } catch (e) {
        call.fail(new RpcClientError(ErrorKind.Decode, `the result of ${call.method} did not decode: ${e?.message ?? e}`, { cause: e }));
        return;
      }
      call.succeed(value);
    } else {
      call.succeed(m.result);
    }
  }

  /**
   * A reply with id null: the server's error about a request it could not
   * read (invalid JSON, an invalid request), which names no call. It is
   * counted and reported at once; and when exactly one call or one batch
   * is outstanding, it can only be about that one, which fails with the
   * server's error (a batch: those of its calls still unanswered). With
   * several outstanding, they keep waiting (their own timeouts).
   */
  #onNullIdReply(m, text) {
    this.#nullIdErrors += 1;
    const error =
      replyError(m) ?? new RpcClientError(ErrorKind.InvalidResponse, 'the server sent a reply with id null that is not an error');
    const failed = this.#failOnlyOutstanding(error);
    this.#report(error, 'a reply with id null from the server', 'nullIdError', {
      serverError: m.error,
      failed,
      frame: excerpt(text),
    });
  }

  /** Fails the pending calls with `error` if they are one call or one batch; returns how many. */
  #failOnlyOutstanding(error) {
    const groups = new Set();
    for (const call of this.#pending.values()) groups.add(call.group);
    if (groups.size !== 1) return 0;
    const calls = [...this.#pending.values()];
    this.#pending.clear();
    for (const call of calls) call.fail(error);
    return calls.length;
  }

  /**
   * A call from the server: the reply, or a promise of it. The handler's
   * context carries an AbortSignal; `$/cancelRequest` for a call still in
   * progress answers it at once and aborts the signal (see #onCancel).
   */
  #onRequest(conn, m) {
    const fn = this.#methods.get(m.method) ?? (m.method === REFRESH ? this.#refreshMethod() : undefined);
    if (fn === undefined) return errorResponse(m.id, ErrorCode.MethodNotFound, 'Method not found', m.method);
    const answer = (result) => ({ jsonrpc: '2.0', result: result === undefined ? null : result, id: m.id });
    // A fresh credential is never shown to `trace`.
    const success = m.method === REFRESH ? (result) => markSecret(answer(result)) : answer;
    const failure = (thrown) => ({ jsonrpc: '2.0', error: errorObjectOf(thrown), id: m.id });
    const controller = new AbortController();
    let out;
    try {
      out = fn(m.params, { client: this, method: m.method, id: m.id, signal: controller.signal });
    } catch (thrown) {
      return failure(thrown);
    }
    if (!out || typeof out.then !== 'function') return success(out);
    return new Promise((resolve) => {
      // The first of the handler's answer and a cancellation is the reply.
      const key = replyKey(m.id);
      const request = {
        cancel: () => {
          resolve(errorResponse(m.id, ErrorCode.RequestCancelled, 'request cancelled'));
          request.abort(new RpcError(ErrorCode.RequestCancelled, 'request cancelled'));
        },
        abort: (reason) => controller.abort(reason),
      };
      if (key !== undefined) conn.serving.set(key, request);
      Promise.resolve(out)
        .then(success, failure)
        .then((reply) => {
          if (conn.serving.get(key) === request) conn.serving.delete(key);
          resolve(reply);
        });
    });
  }

  /**
   * The built-in `rpc.refresh` (unless a method of that name was
   * registered): with a token provider, a fresh token; without one,
   * undefined (the server gets -32601 and closes the connection once its
   * grace period is over; the client reconnects as usual).
   */
  #refreshMethod() {
    if (typeof this.#token !== 'function') return undefined;
    return async () => {
      const token = await this.#token();
      if (typeof token !== 'string' || token === '') throw new Error('the token provider gave no token');
      return token;
    };
  }

  /** `$/cancelRequest` from the server: the call `params.id` (matched as replies are) is answered -32800. */
  #onCancel(conn, params) {
    const key = replyKey(params?.id);
    const request = key === undefined ? undefined : conn.serving.get(key);
    if (request === undefined) return; // answered already, or never asked
    conn.serving.delete(key);
    request.cancel();
  }

  #onNotification(conn, m) {
    if (m.method === HEARTBEAT) {
      this.#onHeartbeat(conn, m.params);
      return undefined;
    }
    if (m.method === CANCEL_REQUEST) {
      this.#onCancel(conn, m.params);
      return undefined;
    }
    if (m.method === PUBLICATION) this.#onPublication(m.params);
    for (const entry of this.#topics.values()) {
      if (entry.positioned || entry.method !== m.method) continue;
      for (const { handler } of [...entry.handlers]) {
        this.#runHandler(() => handler(m.params, { topic: entry.topic, method: m.method }), `the handler of topic ${entry.topic}`);
      }
    }
    const fn = this.#methods.get(m.method);
    if (fn !== undefined) {
      this.#runHandler(() => fn(m.params, { client: this, method: m.method, id: undefined }), `method ${m.method}`);
    }
    this.dispatchEvent(new SwitchboardEvent('notification', { method: m.method, params: m.params }));
    return undefined;
  }

  /** Runs a handler nobody awaits: what it throws, or its promise rejects with, is reported. */
  #runHandler(run, source) {
    try {
      const out = run();
      if (out && typeof out.then === 'function') out.then(undefined, (error) => this.#report(error, source, 'handler'));
    } catch (error) {
      this.#report(error, source, 'handler');
    }
  }

  /** Answers the server's heartbeat and arms the silence watchdog. */
  #onHeartbeat(conn, params) {
    const p = params && typeof params === 'object' ? params : {};
    this.#replyText(conn, encodeMessage(HEARTBEAT_ACK, { t: p.t }));
    if (typeof p.rtt === 'number') this.#rtt = p.rtt;
    if (typeof p.interval === 'number' && p.interval > 0) {
      conn.silenceLimit = limitOf(this.#heartbeatTimeout) ?? 3 * p.interval;
      this.#heard(conn);
    }
    this.dispatchEvent(new SwitchboardEvent('heartbeat', { t: p.t, interval: p.interval, rtt: this.#rtt }));
  }

  /** Something arrived on `conn`: restart its silence watchdog. */
  #heard(conn) {
    if (conn.silenceLimit === null) return;
    clearTimeout(conn.watchdog);
    const limit = conn.silenceLimit;
    conn.watchdog = setTimeout(() => {
      const why = `no heartbeat from the server for ${limit} ms`;
      this.#endConnection(conn, why, [4000, why]);
    }, limit);
  }

  /**
   * Reports a failure nobody awaits: an `error` event with `{error, source,
   * kind, ...extra}`, and the console unless a listener handled it.
   */
  #report(error, source, kind, extra = {}) {
    const event = new SwitchboardEvent('error', { error, source, kind, ...extra }, { cancelable: true });
    // A listener that handles it calls event.preventDefault(); otherwise it is logged.
    if (this.dispatchEvent(event)) console.error(`switchboard: ${source} (${kind}):`, error);
  }

  /** Shows a frame to the `trace` function, if any; what it throws is reported. */
  #traceFrame(direction, text) {
    if (this.#trace === null) return;
    try {
      this.#trace(direction, text);
    } catch (error) {
      this.#report(error, 'the trace function', 'listener');
    }
  }
}

/** A batch being built; see {@link Client#batch}. */
export class Batch {
  #client;
  #entries = [];

  constructor(client) {
    this.#client = client;
  }

  /** Adds a call; its outcome takes the next place in the results. `options.decode` as for call(). */
  call(method, params, options = {}) {
    this.#entries.push({ method, params, call: true, decode: options.decode });
    return this;
  }

  /** Adds a notification (it takes no place in the results). */
  notify(method, params) {
    this.#entries.push({ method, params, call: false });
    return this;
  }

  /** How many entries it holds. */
  get length() {
    return this.#entries.length;
  }

  /**
   * Sends every entry in one frame. Resolves with one allSettled-style
   * outcome per call, in the order added; rejects (Offline, Encode, Timeout
   * while waiting) only when nothing was sent. `timeout` applies to each call;
   * `signal` (an AbortSignal) aborting rejects each call still pending with
   * its reason and cancels it on the server.
   */
  send(options = {}) {
    return this.#client[sendBatch](this.#entries.slice(), options);
  }
}

/**
 * Connects to a Switchboard (or any JSON-RPC 2.0 over WebSocket) server and
 * returns the client at once; it connects, and reconnects, in the background.
 *
 * @param {string|URL} url `ws://` or `wss://`; in a page also `http(s)://` or relative (`/rpc`)
 * @param {object} [options]
 * @param {typeof WebSocket} [options.WebSocket] the WebSocket class (default: the global one)
 * @param {string|string[]} [options.protocols] WebSocket subprotocols
 * @param {number|null} [options.timeout] default call timeout, ms (10 000; null or 0: none)
 * @param {boolean} [options.waitReady] calls wait for a connection instead of failing with Offline (false)
 * @param {false|'never'|Partial<typeof defaultBackoff>} [options.reconnect] the backoff policy, or false for none
 * @param {number} [options.connectTimeout] how long one attempt to open the socket may take, ms (10 000)
 * @param {number} [options.heartbeatTimeout] silence after which the client reconnects, once the server
 *   sends heartbeats, ms (default: three heartbeat intervals as the server announces them)
 * @param {Record<string, Function>} [options.methods] methods the server may call
 * @param {(direction: 'in'|'out', text: string) => void} [options.trace] sees every frame
 * @param {number|null} [options.maxMessageSize] the largest frame in UTF-8 bytes, both ways
 *   (10 MiB, the server's default; null: none)
 * @param {boolean} [options.cancelRequests] send `$/cancelRequest` for calls given up on (true)
 * @param {string|(() => string|Promise<string>)} [options.token] a token sent as the `token` query
 *   parameter of every connection attempt, or a provider asked for a fresh one before every attempt
 *   and when the server's credentials expire (`rpc.refresh`); never shown in messages or to `trace`
 * @returns {Client}
 */
export function connect(url, options = {}) {
  return new Client(url, options);
}
