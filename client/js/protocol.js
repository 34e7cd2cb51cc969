// The wire, for Switchboard's JavaScript client: the error kinds and codes,
// and the checks and encodings of JSON-RPC 2.0 messages and of topic-stream
// positions, kept apart from the connection logic in switchboard.js (which
// imports this module and re-exports its public names). No dependencies.

/** The error kinds a call can end with; the same set as the Rust client's `Error`. */
export const ErrorKind = Object.freeze({
  /** No reply within the call's timeout; a late reply is counted and dropped. */
  Timeout: 'Timeout',
  /** The socket ended while the call was pending. It is never resent. */
  Disconnected: 'Disconnected',
  /** There was no open socket when the call was made (and it did not wait). */
  Offline: 'Offline',
  /** The server answered with an error object: see `code`, `message`, `data`. */
  Rpc: 'Rpc',
  /** The reply broke the spec (both result and error, neither, a malformed error). */
  InvalidResponse: 'InvalidResponse',
  /** The call's `decode` function refused the result. */
  Decode: 'Decode',
  /** The params could not be encoded (not an array or object, not JSON-serializable). */
  Encode: 'Encode',
  /** The connection failed (refused, unreachable, no heartbeat, closed by the client). */
  Transport: 'Transport',
});

/** The JSON-RPC 2.0 error codes of the spec, and Switchboard's own (-32000 to -32005, -32800). */
export const ErrorCode = Object.freeze({
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Switchboard's: the server is shutting down and takes no new requests; reconnect (to another hub). */
  ShuttingDown: -32000,
  /** Switchboard's: the server refused a subscription (`rpc.subscribe`) to this topic. */
  SubscriptionDenied: -32001,
  /**
   * Switchboard's: the connection already has as many requests running and
   * parked as the server's limits allow (`data` names the limit); retry once
   * some of your calls are answered.
   */
  ServerBusy: -32002,
  /**
   * Switchboard's: the server's broker (Redis, for several hubs acting as
   * one) is unreachable, so a publish, subscribe or history call was not
   * done (`data` says why); retry later, the server reconnects by itself.
   */
  BrokerUnavailable: -32003,
  /**
   * Switchboard's: the call came over HTTP POST but needs a persistent
   * connection (a subscription, or a handler that calls its caller back);
   * use a WebSocket.
   */
  PersistentConnectionRequired: -32004,
  /**
   * Switchboard's: the connection called faster than the server's rate
   * limit allows; `data` is `{retry_after_ms}`, the wait before a call is
   * admitted again.
   */
  RateLimited: -32005,
  /** LSP's code for a request the caller cancelled (`$/cancelRequest`). */
  RequestCancelled: -32800,
});

/** The method a server calls when the credentials it accepted expire; the answer is a fresh token. */
export const REFRESH = 'rpc.refresh';

/** The close code of a connection whose credentials expired and were not refreshed in time. */
export const CREDENTIALS_EXPIRED = 4401;

/** Query parameters whose values are secrets (compared without regard to case). */
const SECRET_PARAMS = ['token', 'access_token'];

/**
 * `url` (a string) with the values of secret query parameters (`token`,
 * `access_token`) and any password replaced by `[redacted]`, for messages.
 */
export function redactUrl(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  let changed = false;
  if (parsed.password) {
    parsed.password = 'redacted';
    changed = true;
  }
  const query = parsed.search.slice(1);
  if (query !== '') {
    const pairs = query.split('&').map((pair) => {
      const at = pair.indexOf('=');
      if (at < 0) return pair;
      let key = pair.slice(0, at);
      try {
        key = decodeURIComponent(key.replace(/\+/g, ' '));
      } catch {
        // an invalid escape: compared as it is
      }
      if (!SECRET_PARAMS.includes(key.toLowerCase())) return pair;
      changed = true;
      return `${pair.slice(0, at)}=[redacted]`;
    });
    parsed.search = pairs.join('&');
  }
  return changed ? parsed.href.replace(/%5Bredacted%5D/g, '[redacted]') : url;
}

/** `url` with its `token` query parameter set to `token` (replacing any). */
export function withToken(url, token) {
  const parsed = new URL(url);
  parsed.searchParams.set('token', token);
  return parsed.href;
}

/** The connection states; the `state` event reports each change. */
export const State = Object.freeze({
  /** An attempt to open the socket is under way. Calls fail with Offline unless they wait. */
  Connecting: 'connecting',
  /** The socket is open: calls go out. */
  Ready: 'ready',
  /** Not connected, waiting out a reconnect delay. Calls fail with Offline unless they wait. */
  Offline: 'offline',
  /** Closed for good: `close()` was called or the reconnect policy gave up. */
  Closed: 'closed',
});

/** Why a call (or batch entry, or readiness wait) failed. */
export class RpcClientError extends Error {
  /**
   * @param {string} kind one of ErrorKind
   * @param {string} message for Rpc: the server's message
   * @param {{code?: number, data?: unknown, cause?: unknown}} [extra]
   */
  constructor(kind, message, extra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'RpcClientError';
    /** @type {string} */
    this.kind = kind;
    if (kind === ErrorKind.Rpc) {
      /** @type {number|undefined} */
      this.code = extra.code;
      /** @type {unknown} */
      this.data = extra.data;
    }
  }
}

/**
 * What a method the server calls on this client throws to answer with a
 * specific error object. Anything else thrown answers -32603 "Internal
 * error" with the thrown message as data.
 */
export class RpcError extends Error {
  /**
   * @param {number} code
   * @param {string} message
   * @param {unknown} [data]
   */
  constructor(code, message, data) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.data = data;
  }
}

/**
 * Encodes a notification (no id); throws an Encode error.
 * @returns {string}
 */
export function encodeMessage(method, params) {
  if (typeof method !== 'string') {
    throw new RpcClientError(ErrorKind.Encode, `the method name must be a string, got ${typeof method}`);
  }
  if (params !== undefined && params !== null && typeof params !== 'object') {
    throw new RpcClientError(
      ErrorKind.Encode,
      `params must be an array or an object (or nothing), got ${typeof params}: pass [x] for one value`,
    );
  }
  const message = { jsonrpc: '2.0', method };
  if (params != null) message.params = params;
  let text;
  try {
    text = JSON.stringify(message);
  } catch (e) {
    throw new RpcClientError(ErrorKind.Encode, `the params could not be encoded: ${e.message}`, { cause: e });
  }
  if (message.params !== undefined && !text.includes('"params":')) {
    // toJSON() turned them into nothing
    throw new RpcClientError(ErrorKind.Encode, 'the params could not be encoded');
  }
  return text;
}

/** A request: an encoded notification with the id added last. */
export function withId(notification, id) {
  return `${notification.slice(0, -1)},"id":${id}}`;
}

/** The size of `text` in UTF-8 bytes, as it goes on the wire. */
export function utf8Length(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4; // a surrogate pair: one code point
      i += 1;
    } else bytes += 3; // a lone surrogate goes out as U+FFFD
  }
  return bytes;
}

/** The size in bytes of `text` when it is over `limit` (null: no limit), else 0. */
export function bytesOver(text, limit) {
  // Every UTF-16 unit takes one to three bytes: count only when it matters.
  if (limit === null || text.length * 3 <= limit) return 0;
  const bytes = utf8Length(text);
  return bytes > limit ? bytes : 0;
}

/**
 * The key that matches a reply to its call, the rule the Rust client follows
 * too: numeric ids match by numeric value (a reply id `1.0` or `1e0` matches
 * the call `1`), string ids match exactly, and a number never matches a
 * string (`"1"` is not `1`). JSON.parse has already turned every way of
 * writing a number into its value, so the key is the id itself when it is a
 * number or a string; any other id (null, an array...) matches nothing.
 */
export function replyKey(id) {
  return typeof id === 'number' || typeof id === 'string' ? id : undefined;
}

/** A reply to a call: has no method, and has a result, an error or an id. */
export function isResponse(m) {
  return m !== null && typeof m === 'object' && !Array.isArray(m) && !('method' in m) && ('result' in m || 'error' in m || 'id' in m);
}

/**
 * What a reply fails its call with, or null when it carries a result: an
 * Rpc error for a well-formed error object, InvalidResponse when the reply
 * breaks the spec.
 */
export function replyError(m) {
  const hasResult = 'result' in m;
  const hasError = 'error' in m;
  if (m.jsonrpc !== '2.0') {
    return new RpcClientError(ErrorKind.InvalidResponse, 'the reply is not JSON-RPC 2.0 ("jsonrpc" is not "2.0")');
  }
  if (hasResult === hasError) {
    const what = hasResult ? 'both a result and an error' : 'neither a result nor an error';
    return new RpcClientError(ErrorKind.InvalidResponse, `the reply has ${what}`);
  }
  if (!hasError) return null;
  const e = m.error;
  if (e === null || typeof e !== 'object' || !Number.isInteger(e.code) || typeof e.message !== 'string') {
    return new RpcClientError(ErrorKind.InvalidResponse, 'the reply has a malformed error object');
  }
  return new RpcClientError(ErrorKind.Rpc, e.message, { code: e.code, data: e.data });
}

/** How much of an offending frame an `error` event carries. */
const FRAME_EXCERPT = 1_000;

/** A frame cut down to what an error report carries. */
export function excerpt(text) {
  return text.length <= FRAME_EXCERPT ? text : `${text.slice(0, FRAME_EXCERPT)}…`;
}

/** What addEventListener keys a listener by, besides the listener: its type and capture flag. */
export function listenerKey(type, options) {
  const capture = typeof options === 'boolean' ? options : Boolean(options?.capture);
  return `${capture}:${type}`;
}

/**
 * Closes `ws` with `code` and `reason` (cut to fit a close frame). Browsers
 * (and Node's global WebSocket) only let a page send 1000 and 3000-4999, so
 * a protocol code 1xxx they refuse goes out as 4xxx (1009 as 4009); the ws
 * package sends it as is.
 */
export function closeSocket(ws, code, text) {
  const reason = text.slice(0, 120);
  try {
    ws.close(code, reason);
  } catch {
    try {
      if (code > 1000 && code < 2000) ws.close(code + 3000, reason);
    } catch {
      // closing already
    }
  }
}

/** Resolves a URL for the socket: relative URLs against the page, http(s) to ws(s). */
export function socketUrl(url) {
  const base = globalThis.location?.href;
  const resolved = new URL(String(url), base);
  if (resolved.protocol === 'http:') resolved.protocol = 'ws:';
  if (resolved.protocol === 'https:') resolved.protocol = 'wss:';
  if (resolved.protocol !== 'ws:' && resolved.protocol !== 'wss:') {
    throw new TypeError(`a Switchboard URL must be ws:// or wss:// (or http(s):// or relative in a page), got ${url}`);
  }
  return resolved.href;
}

/** Whether `id` can be a request id: null, a string or a finite number. */
export function isId(id) {
  return id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
}

/** An error response object. */
export function errorResponse(id, code, message, data) {
  const error = { code, message };
  if (data !== undefined) error.data = data;
  return { jsonrpc: '2.0', error, id };
}

/** The error object for whatever a method threw. */
export function errorObjectOf(thrown) {
  if (thrown instanceof RpcError || (thrown && Number.isInteger(thrown.code) && typeof thrown.message === 'string')) {
    const error = { code: thrown.code, message: thrown.message };
    if (thrown.data !== undefined) error.data = thrown.data;
    return error;
  }
  const detail = thrown instanceof Error ? thrown.message : String(thrown);
  return { code: ErrorCode.InternalError, message: 'Internal error', data: detail };
}

/** One reply, encoded; an unencodable result answers -32603. */
export function encodeReply(reply) {
  try {
    return JSON.stringify(reply);
  } catch (e) {
    return JSON.stringify(errorResponse(reply.id, ErrorCode.InternalError, 'Internal error', `result not encodable: ${e.message}`));
  }
}

// ---- stream positions ----------------------------------------------------

/** Whether `p` is a stream position: `{epoch: string, offset: whole number >= 0}`. */
export function isPosition(p) {
  return p !== null && typeof p === 'object' && typeof p.epoch === 'string' && Number.isSafeInteger(p.offset) && p.offset >= 0;
}

/** A copy of a position the application gave; throws TypeError when it is not one. */
export function positionOf(p, what) {
  if (!isPosition(p)) {
    let shown;
    try {
      shown = JSON.stringify(p);
    } catch {
      shown = String(p);
    }
    throw new TypeError(`${what} must be a stream position {epoch: string, offset: a whole number >= 0}, got ${shown}`);
  }
  return { epoch: p.epoch, offset: p.offset };
}

/** `EPOCH:OFFSET`, as the Rust side writes a position. */
export function showPosition(p) {
  return p === null ? 'the start' : `${p.epoch}:${p.offset}`;
}

/** Whether two positions are the same (neither null). */
export function samePosition(a, b) {
  return a !== null && b !== null && a.epoch === b.epoch && a.offset === b.offset;
}

/** Whether `p` is a publication: the params of `rpc.publication`, an entry of `rpc.history`. */
export function isPublication(p) {
  return isPosition(p) && typeof p.topic === 'string' && typeof p.method === 'string';
}

/** The result of a positioned `rpc.subscribe`, checked (the `decode` of its call). */
export function decodeSubscribed(result) {
  if (!isPosition(result) || typeof result.recovered !== 'boolean') {
    throw new TypeError('a positioned rpc.subscribe must answer {topic, epoch, offset, recovered}: does the server support topic streams?');
  }
  return result;
}

/** The result of `rpc.history`, checked (the `decode` of its call). */
export function decodeHistory(result) {
  if (!isPosition(result) || !Array.isArray(result.publications) || !result.publications.every(isPublication)) {
    throw new TypeError('rpc.history must answer {epoch, offset, publications: [{topic, epoch, offset, method, params}...]}');
  }
  return result;
}
