// Type declarations for switchboard.js, Switchboard's browser client.

/** The error kinds a call can end with; the same set as the Rust client's `Error`. */
export declare const ErrorKind: Readonly<{
  Timeout: 'Timeout';
  Disconnected: 'Disconnected';
  Offline: 'Offline';
  Rpc: 'Rpc';
  InvalidResponse: 'InvalidResponse';
  Decode: 'Decode';
  Encode: 'Encode';
  Transport: 'Transport';
}>;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

/** The JSON-RPC 2.0 error codes of the spec, and Switchboard's own (-32000 to -32005, -32800). */
export declare const ErrorCode: Readonly<{
  ParseError: -32700;
  InvalidRequest: -32600;
  MethodNotFound: -32601;
  InvalidParams: -32602;
  InternalError: -32603;
  /** Switchboard's: the server is shutting down and takes no new requests; reconnect. */
  ShuttingDown: -32000;
  /** Switchboard's: the server refused a subscription to this topic. */
  SubscriptionDenied: -32001;
  /** Switchboard's: too many requests running and parked on this connection; `data` names the limit. */
  ServerBusy: -32002;
  /** Switchboard's: the server's broker (Redis) is unreachable; retry later. */
  BrokerUnavailable: -32003;
  /** Switchboard's: the call came over HTTP POST but needs a persistent connection; use a WebSocket. */
  PersistentConnectionRequired: -32004;
  /** Switchboard's: calls over the server's rate limit; `data` is `{retry_after_ms}`. */
  RateLimited: -32005;
  /** LSP's code for a cancelled request: the client answers a call the server cancels with it. */
  RequestCancelled: -32800;
}>;

/** The method a server calls when the credentials it accepted expire: `'rpc.refresh'`. */
export declare const REFRESH: 'rpc.refresh';
/** The close code of a connection whose credentials expired and were not refreshed in time: 4401. */
export declare const CREDENTIALS_EXPIRED: 4401;

/** A token, or what gives a fresh one: before every connection attempt, and for `rpc.refresh`. */
export type TokenOption = string | (() => string | Promise<string>);

/** The connection states. */
export declare const State: Readonly<{
  Connecting: 'connecting';
  Ready: 'ready';
  Offline: 'offline';
  Closed: 'closed';
}>;
export type State = (typeof State)[keyof typeof State];

/** JSON values, as params and results are. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** Params: positional (an array) or named (an object); `undefined` or `null` for none. */
export type Params = readonly unknown[] | { readonly [key: string]: unknown } | null | undefined;

/** Why a call (or batch entry, or readiness wait) failed. */
export declare class RpcClientError extends Error {
  constructor(kind: ErrorKind, message: string, extra?: { code?: number; data?: unknown; cause?: unknown });
  readonly name: 'RpcClientError';
  /** What went wrong. */
  readonly kind: ErrorKind;
  /** For `Rpc`: the server's error code. */
  readonly code?: number;
  /** For `Rpc`: the server's error data, if any. */
  readonly data?: unknown;
}

/** Thrown by a method the server calls, to answer with this error object. */
export declare class RpcError extends Error {
  constructor(code: number, message: string, data?: unknown);
  readonly name: 'RpcError';
  readonly code: number;
  readonly data: unknown;
}

/** The reconnect policy (milliseconds). */
export interface Backoff {
  /** The first retry happens at once (default true). */
  immediateFirst: boolean;
  /** The first non-zero delay (default 100). */
  initial: number;
  /** Growth per retry (default 1.5). */
  factor: number;
  /** The longest delay (default 10 000). */
  max: number;
  /** Random shortening of each delay, 0..1 (default 0.2). */
  jitter: number;
  /** Give up after this many retries in a row; null never gives up (the default). */
  maxRetries: number | null;
  /** A connection up this long resets the retry count (default 1 000). */
  stableAfter: number;
}

/** The Rust client's `Backoff::default()`. */
export declare const defaultBackoff: Readonly<Backoff>;

/** The delay in ms before retry `retry` (1 for the first), `unit` in [0, 1) picking the jitter. */
export declare function backoffDelay(policy: Partial<Backoff>, retry: number, unit?: number): number;

/** A WebSocket class: the browser's, Node 22's global, or the `ws` package's. */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[]): WebSocketLike;
}

/** What the client uses of a WebSocket. */
export interface WebSocketLike {
  binaryType: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}

/** What a method the server calls gets besides its params. */
export interface MethodContext {
  client: Client;
  method: string;
  /** The request id; `undefined` for a notification. */
  id: string | number | null | undefined;
  /**
   * For a request: aborts when the server cancels it (`$/cancelRequest`;
   * the client has then answered -32800 and drops the handler's answer) or
   * the connection closes. `undefined` for a notification.
   */
  signal?: AbortSignal;
}

/** A method the server may call on this client. */
export type MethodHandler = (params: any, context: MethodContext) => unknown;

export interface ConnectOptions {
  /** The WebSocket class (default: the global one). */
  WebSocket?: WebSocketConstructor;
  /** WebSocket subprotocols. */
  protocols?: string | string[];
  /** Default call timeout in ms (10 000); null or 0 for none. */
  timeout?: number | null;
  /** Calls wait for a connection instead of failing with Offline (false). */
  waitReady?: boolean;
  /** The reconnect policy, or false / 'never' for a single attempt. */
  reconnect?: false | 'never' | Partial<Backoff>;
  /** How long one attempt to open the socket may take, ms (10 000). */
  connectTimeout?: number;
  /**
   * Once the server sends `rpc.heartbeat`, the silence in ms after which the
   * client drops the connection and reconnects (default: three intervals).
   */
  heartbeatTimeout?: number;
  /** Methods the server may call. */
  methods?: Record<string, MethodHandler>;
  /** Sees every frame, in and out. What it throws is reported as an `error` event. */
  trace?: (direction: 'in' | 'out', text: string) => void;
  /**
   * The largest frame in UTF-8 bytes, both ways (default 10 MiB, the
   * server's default; null for none). A larger request fails with Encode
   * before it is sent; a larger frame from the server closes the connection
   * (1009, or 4009 where the WebSocket refuses 1009) and pending calls fail
   * with Disconnected.
   */
  maxMessageSize?: number | null;
  /**
   * Send `$/cancelRequest` with the id of a call the client stops waiting
   * for (timeout or abort), so the server may stop working on it (default true).
   */
  cancelRequests?: boolean;
  /**
   * A token sent as the `token` query parameter of every connection attempt
   * (browsers cannot set an Authorization header on a WebSocket), or a
   * provider (a function, maybe async) asked for a fresh one before every
   * attempt and whenever the server calls `rpc.refresh` because the
   * credentials it accepted expired. Never shown in messages or to `trace`.
   */
  token?: TokenOption;
}

export interface CallOptions<T = any> {
  /** ms; null or 0 for none (default: the client's). */
  timeout?: number | null;
  /** Wait for a connection instead of failing with Offline. */
  waitReady?: boolean;
  /** Checks or converts the result; what it throws fails the call with Decode. */
  decode?: (result: any) => T;
  /**
   * Aborting rejects the call with the signal's reason (as fetch does), and
   * cancels it on the server unless `cancelRequests` is false.
   */
  signal?: AbortSignal;
}

export interface NotifyOptions {
  timeout?: number | null;
  waitReady?: boolean;
  /** Aborting stops a wait for the connection; for a batch, also its calls (each then rejected with the reason). */
  signal?: AbortSignal;
}

/** One call's outcome in a batch, shaped as Promise.allSettled's. */
export type BatchOutcome<T = any> =
  | { status: 'fulfilled'; value: T }
  | { status: 'rejected'; reason: RpcClientError /* or, when the batch's signal aborted, its reason */ };

export declare class Batch {
  /** Adds a call; its outcome takes the next place in the results. */
  call(method: string, params?: Params, options?: { decode?: (result: any) => unknown }): this;
  /** Adds a notification (no place in the results). */
  notify(method: string, params?: Params): this;
  /** Entries added so far. */
  readonly length: number;
  /** Sends every entry in one frame; one outcome per call, in the order added. */
  send(options?: NotifyOptions): Promise<BatchOutcome[]>;
}

export interface StateDetail {
  state: State;
  previous: State;
  /** Why the client is offline or closed, when a connection failed. */
  error: RpcClientError | null;
}

export interface NotificationDetail {
  method: string;
  params: any;
}

export interface HeartbeatDetail {
  /** The server's clock, echoed back. */
  t: number;
  /** The server's heartbeat interval, ms. */
  interval: number;
  /** The round trip the server last measured, ms. */
  rtt: number | null;
}

/** What an `error` event reports: `kind` tells which, `source` says where, in words. */
export type ErrorDetail =
  | {
      /**
       * `listener`: an event listener or the `trace` function threw (or
       * rejected); `handler`: a subscription handler (or `onLost`,
       * `onRecovered`) or a method called by notification did;
       * `resubscribe`: subscribing again after a reconnect was refused;
       * `history`: `rpc.history` failed to fill a gap in a positioned
       * subscription (a `lost` event follows).
       */
      kind: 'listener' | 'handler' | 'resubscribe' | 'history';
      error: unknown;
      source: string;
    }
  | {
      /** The server sent an `rpc.publication` without topic, epoch, offset and method. */
      kind: 'invalidPublication';
      /** InvalidResponse. */
      error: RpcClientError;
      source: string;
      /** Its params, as JSON (the first 1,000 characters). */
      params: string;
    }
  | {
      /** The server sent a reply with id null (an error about a request it could not read). */
      kind: 'nullIdError';
      /** Rpc with the server's code, message and data; InvalidResponse if it was not a proper error. */
      error: RpcClientError;
      source: string;
      /** The server's error object, as sent. */
      serverError: unknown;
      /** How many calls it failed: all of the only call or batch outstanding, else 0. */
      failed: number;
      /** The frame (its first 1,000 characters). */
      frame: string;
    }
  | {
      /** The server sent a frame that is not JSON, or an empty batch. */
      kind: 'invalidFrame';
      /** InvalidResponse, saying which. */
      error: RpcClientError;
      source: string;
      /** The frame (its first 1,000 characters). */
      frame: string;
    };

export interface EventDetails {
  state: StateDetail;
  notification: NotificationDetail;
  heartbeat: HeartbeatDetail;
  error: ErrorDetail;
  lost: LostDetail;
  recovered: RecoveredDetail;
}

/**
 * A place in a topic's stream: the last publication seen. Offsets count
 * from 1 within an epoch (an opaque string; a new one starts whenever the
 * topic's history starts afresh); offset 0 is "before the first". Plain
 * JSON: save it (e.g. in localStorage) and pass it back as `since`.
 */
export interface StreamPosition {
  epoch: string;
  offset: number;
}

/** One publication of a positioned subscription: the params of `rpc.publication`. */
export interface Publication<P = any> {
  topic: string;
  epoch: string;
  offset: number;
  /** The method it was published as. */
  method: string;
  params: P;
}

/**
 * A positioned subscription lost publications it could not get back: the
 * application must reload its state. The subscription goes on after `position`.
 */
export interface LostDetail {
  topic: string;
  /** Where the stream goes on from: the server's latest position (already part of the state to reload). */
  position: StreamPosition;
  /** The last position delivered before. */
  previous: StreamPosition;
  /**
   * `epoch`: the stream started afresh (a server restart, a wiped history);
   * `gone`: the missed publications are no longer in the history;
   * `failed`: `rpc.history` failed (see `error`).
   */
  reason: 'epoch' | 'gone' | 'failed';
  /** How many offsets were skipped; null across epochs. */
  missed: number | null;
  /** For `failed`: why `rpc.history` failed. */
  error?: unknown;
}

/** A positioned subscription resumed and its missed publications were delivered. */
export interface RecoveredDetail {
  topic: string;
  /** How many it missed and got back (0: none missed). */
  count: number;
  /** Where it resumed from. */
  since: StreamPosition;
  /** The last of the recovered publications (the server's latest when it resumed). */
  position: StreamPosition;
}

/** A positioned subscription, as `subscribe` resolves with it. */
export interface Subscription {
  readonly topic: string;
  /**
   * The position of the last publication delivered (or where the
   * subscription started, or was moved to by `lost`): a copy, to save and
   * pass back as `since`.
   */
  readonly position: StreamPosition | null;
  /** Stops this handler; the last one of the topic sends `rpc.unsubscribe`. Resolves with false if done already. */
  unsubscribe(): Promise<boolean>;
}

interface PositionedOptionsBase {
  /**
   * The stream failed to recover: reload the state. Called (like the
   * client's `lost` event) before `subscribe` resolves when `since` could
   * not be resumed from.
   */
  onLost?: (detail: LostDetail) => void;
  /** A resume (`since`, or after a reconnect) delivered everything missed. */
  onRecovered?: (detail: RecoveredDetail) => void;
}

/** Options of a positioned subscription: `positioned: true`, or a `since` to resume after. */
export type PositionedSubscribeOptions = PositionedOptionsBase &
  (
    | {
        positioned: true;
        /** Resume after this position (null or absent: from now). */
        since?: StreamPosition | null;
      }
    | {
        positioned?: boolean;
        /** Resume after this position. */
        since: StreamPosition;
      }
  );

/** Options of a plain subscription. */
export interface PlainSubscribeOptions {
  /** The notifications' method, when it is not the topic's name. */
  method?: string;
  positioned?: false;
}

/** Every client event: its payload is `detail`. */
export declare class SwitchboardEvent<D = unknown> extends Event {
  constructor(type: string, detail: D, init?: EventInit);
  readonly detail: D;
}

/** Unsubscribes; resolves with false if it had already been done. */
export type Unsubscribe = () => Promise<boolean>;

export declare class Client extends EventTarget {
  constructor(url: string | URL, options?: ConnectOptions);
  /** The socket URL. */
  readonly url: string;
  readonly state: State;
  /** Why the last attempt failed or the last connection ended. */
  readonly lastError: RpcClientError | null;
  /** The round trip the server's heartbeat last measured, ms. */
  readonly rtt: number | null;
  /** Calls waiting for a reply. */
  readonly pending: number;
  /** Replies that matched no pending call. */
  readonly unknownReplies: number;
  /** Replies with id null the server sent. */
  readonly nullIdErrors: number;
  /** Frames from the server that were not JSON, or were an empty batch. */
  readonly invalidFrames: number;
  /** Sockets opened so far. */
  readonly connections: number;
  /** The topics subscribed to. */
  readonly topics: string[];

  /** Listens for an event; returns the function that stops listening. What the listener throws is reported as an `error` event. */
  on<K extends keyof EventDetails>(
    type: K,
    listener: (detail: EventDetails[K], event: SwitchboardEvent<EventDetails[K]>) => void,
  ): () => void;
  on(type: string, listener: (detail: any, event: SwitchboardEvent<any>) => void): () => void;

  /** Resolves once ready; rejects with Transport (gave up), Offline (closed) or Timeout. */
  ready(options?: { timeout?: number }): Promise<void>;
  /** Closes for good; pending calls fail with Disconnected. */
  close(): Promise<void>;

  call<T = any>(method: string, params?: Params, options?: CallOptions<T>): Promise<T>;
  notify(method: string, params?: Params, options?: NotifyOptions): Promise<void>;
  batch(): Batch;
  /** The server's OpenRPC document (`rpc.discover`). */
  discover(options?: CallOptions): Promise<any>;

  /** Registers a method the server may call; returns the function that removes it. */
  register(name: string, fn: MethodHandler): () => void;
  unregister(name: string): boolean;

  /**
   * Subscribes to a topic with positions (`rpc.publication`): the handler
   * gets each publication with its epoch and offset, in order and once.
   * Resumes after `since`, and after every reconnect after the last
   * position delivered; fires `lost` when what was missed cannot be got
   * back, `recovered` when it was. Resolves once a server confirmed it.
   */
  subscribe<P = any>(
    topic: string,
    handler: (publication: Publication<P>) => void,
    options: PositionedSubscribeOptions,
  ): Promise<Subscription>;
  /**
   * Subscribes to a topic; resolves with the unsubscribe function once a
   * server confirmed it. Re-subscribes after every reconnect.
   */
  subscribe(
    topic: string,
    handler: (params: any, info: { topic: string; method: string }) => void,
    options?: PlainSubscribeOptions,
  ): Promise<Unsubscribe>;
}

/** Connects (in the background) and returns the client at once. */
export declare function connect(url: string | URL, options?: ConnectOptions): Client;
