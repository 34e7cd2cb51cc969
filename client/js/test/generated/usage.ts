// Type-checked (tsc -p test/generated), never run: the wrappers `switchboard
// codegen ts` generates (the dashboard's `examples/dashboard/api.d.ts`, and
// the generator's fixture `src/codegen/fixtures/shop.d.ts`) compile, and are
// used the way a page uses them. `test/generated-wrong` must not compile.

import { connect, type StreamPosition, type Subscription, type Unsubscribe } from '../../switchboard.js';
import {
  clientMethods,
  methods,
  topics,
  type BrowserInfo,
  type BrowsersReport,
  type Metrics,
} from '../../../../examples/dashboard/api.js';
import * as shop from '../../../../src/codegen/fixtures/shop.js';

async function dashboard(): Promise<void> {
  const client = connect('ws://127.0.0.1:8080/rpc', {
    methods: clientMethods({
      browser: {
        info: (askedAt: number, context): BrowserInfo => ({
          page_id: context.method,
          user_agent: 'test',
          language: 'en',
          viewport: '1×1',
          answered: askedAt,
          pushes: 0,
          open_for_ms: 0,
        }),
      },
    }),
  });
  const api = methods(client);
  const sum: number = await api.add(2, 3);
  const difference: number = await api.subtract(5, 3, { timeout: 1_000 });
  const total: number = await api.sum([1, 2, 3]);
  const [hello, five]: ['hello', number] = await api.get_data();
  const report: BrowsersReport = await api.dashboard.ask_browsers();
  const position: StreamPosition = await api.publish('news', 'headline', { text: 'hi' });
  for (const answer of report.answers) console.log(answer.connection, answer.info?.user_agent, answer.rtt_ms);
  const echoed = await api.echo({ any: ['json'] });
  await api.update([1, 2]);

  const feeds = topics(client);
  const off: Unsubscribe = await feeds.browsers.subscribe((latest: BrowsersReport) => console.log(latest.at));
  const metrics: Subscription = await feeds.metrics.subscribe(
    (publication) => {
      const m: Metrics = publication.params;
      console.log(publication.offset, m.calls_per_sec, m.signal);
    },
    { positioned: true, onLost: (detail) => console.log(detail.reason) },
  );
  console.log(sum, difference, total, hello, five, position.offset, echoed, feeds.metrics.name, metrics.position);
  await off();
}

async function generatorFixture(): Promise<void> {
  const client = connect('ws://127.0.0.1:9000/');
  const api = shop.methods(client);
  const receipt: shop.Receipt = await api.shop.order({ sku: 'b-1', kind: 'book' }, undefined, 2);
  const withNote = await api.shop.order({ sku: 't-9' }, 'gift', 1, { timeout: 500 });
  await api.log('a line');
  const added: number = await api.add(1, 2);
  const summed: number = await api.sum([1, 2]);
  await shop.topics(client).shop.orders.subscribe((item: shop.Item) => console.log(item.sku, item.kind));
  await shop.topics(client).clock.subscribe((anything) => console.log(anything));
  connect('ws://127.0.0.1:9000/', {
    methods: shop.clientMethods({
      echo: (value) => value,
      page: {
        confirm: async (question: string, timeoutMs: number | undefined) => question.length > (timeoutMs ?? 0),
        reload: () => undefined,
      },
    }),
  });
  console.log(receipt.id, receipt.total, withNote.id, added, summed);
}

void dashboard;
void generatorFixture;
