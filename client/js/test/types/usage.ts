// Type-checked (tsc -p test/types), never run: the declarations describe the
// API the way an application uses it.

import {
  connect,
  backoffDelay,
  defaultBackoff,
  ErrorCode,
  ErrorKind,
  RpcClientError,
  RpcError,
  State,
  CREDENTIALS_EXPIRED,
  REFRESH,
  type BatchOutcome,
  type Client,
  type ErrorDetail,
  type LostDetail,
  type Publication,
  type RecoveredDetail,
  type StateDetail,
  type StreamPosition,
  type Subscription,
} from '../../switchboard.js';

async function main(): Promise<void> {
  const client: Client = connect('ws://127.0.0.1:9000/rpc', {
    timeout: 5_000,
    reconnect: { max: 2_000, jitter: 0 },
    heartbeatTimeout: 30_000,
    maxMessageSize: 1 << 20,
    cancelRequests: true,
    token: async () => 'a fresh token',
    methods: {
      'browser.info': () => ({ userAgent: 'test' }),
      'browser.fail': () => {
        throw new RpcError(-32000, 'no', { why: 1 });
      },
      'browser.wait': async (_params, { signal }) => {
        await new Promise((resolve) => signal?.addEventListener('abort', resolve));
        return signal?.aborted ?? false;
      },
    },
  });
  connect('ws://127.0.0.1:9000/rpc', { maxMessageSize: null, cancelRequests: false });
  const offError = client.on('error', (detail: ErrorDetail, event) => {
    event.preventDefault();
    if (detail.kind === 'nullIdError') console.log(detail.error.code, detail.serverError, detail.failed, detail.frame);
    else if (detail.kind === 'invalidFrame') console.log(detail.error.kind, detail.frame);
    else if (detail.kind === 'invalidPublication') console.log(detail.error.kind, detail.params);
    else console.log(detail.kind, detail.source, detail.error);
  });
  offError();
  const cancelled: -32800 = ErrorCode.RequestCancelled;
  const limited: -32005 = ErrorCode.RateLimited;
  const expired: 4401 = CREDENTIALS_EXPIRED;
  const refresh: 'rpc.refresh' = REFRESH;
  void [limited, expired, refresh];
  const offState: () => void = client.on('state', (detail: StateDetail) => {
    const s: State = detail.state;
    if (s === State.Offline && detail.error) console.log(detail.error.kind);
  });
  offState();
  await client.ready({ timeout: 1_000 });
  const sum = await client.call<number>('add', [2, 3], { timeout: 100, decode: (v) => Number(v) });
  const n: number = sum + 1;
  const controller = new AbortController();
  const aborted = client.call('sleep', [1_000], { signal: controller.signal });
  controller.abort();
  await aborted.catch(() => undefined);
  await client.batch().call('add', [1, 2]).send({ signal: AbortSignal.timeout(100) });
  await client.notify('log', { text: 'hi' });
  const outcomes: BatchOutcome[] = await client.batch().call('add', [1, 2]).notify('x').send({ timeout: 50 });
  for (const o of outcomes) {
    if (o.status === 'rejected') console.log(o.reason.kind, o.reason.code);
    else console.log(o.value);
  }
  const unsubscribe = await client.subscribe('clock', (params, info) => console.log(params, info.topic));
  const was: boolean = await unsubscribe();

  // Positioned: each publication with its place in the stream; resumes after a saved position.
  const saved = JSON.parse(localStorage.getItem('prices') ?? 'null') as StreamPosition | null;
  const prices: Subscription = await client.subscribe<{ p: number }>(
    'prices',
    (publication: Publication<{ p: number }>) => {
      const at: StreamPosition = { epoch: publication.epoch, offset: publication.offset };
      console.log(publication.topic, publication.method, publication.params.p, at);
    },
    {
      positioned: true,
      since: saved,
      onLost: (detail: LostDetail) => console.log(detail.reason, detail.missed, detail.previous, detail.position.offset),
      onRecovered: (detail: RecoveredDetail) => console.log(detail.count, detail.since, detail.position),
    },
  );
  const position: StreamPosition | null = prices.position;
  localStorage.setItem('prices', JSON.stringify(position));
  const left: boolean = await prices.unsubscribe();
  const resumed = await client.subscribe('ticks', (publication) => console.log(publication.offset + 1), {
    since: { epoch: 'e1', offset: 41 },
  });
  console.log(resumed.topic, left);
  const offLost = client.on('lost', (detail) => {
    const reason: 'epoch' | 'gone' | 'failed' = detail.reason;
    console.log(reason, detail.topic, detail.error);
  });
  const offRecovered = client.on('recovered', (detail) => console.log(detail.count + 1));
  offLost();
  offRecovered();
  // @ts-expect-error: a positioned subscription takes every method: no method option
  void client.subscribe('x', () => {}, { positioned: true, method: 'tick' });
  // @ts-expect-error: a since that may be null needs positioned: true
  void client.subscribe('x', () => {}, { since: saved });

  const off = client.register('browser.echo', async (params) => params);
  off();
  try {
    await client.discover();
  } catch (e) {
    if (e instanceof RpcClientError && e.kind === ErrorKind.Rpc) console.log(e.code, e.message, e.data);
  }
  const delay: number = backoffDelay(defaultBackoff, 3);
  console.log(n, was, delay, client.state, client.rtt, client.pending, client.topics, cancelled);
  const counters: number[] = [client.unknownReplies, client.nullIdErrors, client.invalidFrames];
  console.log(counters);
  await client.close();
}

void main;
