// The dashboard page: live metrics pushed by the hub, a form that calls any
// method, and `browser.info`, which the server calls on every open page.
//
// The hub's own API is used through `api.js`, the typed wrapper generated
// from its discovery document (`switchboard codegen ts`; its types are in
// `api.d.ts`): `methods(client)`, `topics(client)` and `clientMethods(...)`.
// The form calls any method by name, so it uses the client as it is.

import { connect } from '/switchboard.js';
import { clientMethods, methods, topics } from './api.js';

const $ = (id) => document.getElementById(id);
const HISTORY = 60;
const pageId = Math.random().toString(36).slice(2, 10);
const openedAt = Date.now();

let pushes = 0;
let answered = 0;
const cps = [];
const signal = [];

function log(text) {
  const item = document.createElement('li');
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  item.append(time, text);
  $('log').prepend(item);
  while ($('log').children.length > 40) $('log').lastChild.remove();
}

const client = connect('/rpc', {
  methods: clientMethods({
    browser: {
      // The server calls this on every dashboard (call_many).
      info: (askedAt) => {
        answered += 1;
        $('answered').textContent = String(answered);
        log(`the server called browser.info (asked ${Math.max(0, Date.now() - askedAt)} ms ago)`);
        return {
          page_id: pageId,
          user_agent: navigator.userAgent,
          language: navigator.language,
          viewport: `${window.innerWidth}×${window.innerHeight}`,
          answered,
          pushes,
          open_for_ms: Date.now() - openedAt,
        };
      },
    },
  }),
});
const api = methods(client);
const feeds = topics(client);

// For the end-to-end test and the curious: the client, from the console.
window.switchboard = client;
window.dashboard = { pageId };

client.on('state', ({ state, error }) => {
  $('status').dataset.state = state;
  $('status').textContent = state;
  log(error && state !== 'ready' ? `${state}: ${error.message}` : state);
});
client.on('heartbeat', ({ rtt }) => {
  $('rtt').textContent = rtt == null ? '–' : `${rtt} ms`;
});

// ---- metrics ------------------------------------------------------------

function points(values, max) {
  const step = 600 / (HISTORY - 1);
  const offset = HISTORY - values.length;
  return values.map((v, i) => `${((offset + i) * step).toFixed(1)},${(156 - (v / max) * 148).toFixed(1)}`).join(' ');
}

function draw() {
  const cpsMax = Math.max(10, ...cps) * 1.1;
  $('line-cps').setAttribute('points', points(cps, cpsMax));
  $('line-signal').setAttribute('points', points(signal, 100));
  $('cps-max').textContent = `(scale 0–${Math.round(cpsMax)})`;
}

function onMetrics(m) {
  pushes += 1;
  $('pushes').textContent = String(pushes);
  $('clients').textContent = String(m.clients);
  $('cps').textContent = m.calls_per_sec.toLocaleString(undefined, { maximumFractionDigits: 1 });
  $('calls-total').textContent = m.calls_total.toLocaleString();
  for (const [series, value] of [[cps, m.calls_per_sec], [signal, m.signal]]) {
    series.push(value);
    if (series.length > HISTORY) series.shift();
  }
  draw();
  if (m.methods) renderMethods(m.methods);
}

// The hub's per-method figures: calls, errors and latency quantiles.
function renderMethods(rows) {
  if (rows.length === 0) return;
  const ms = (v) => (v == null ? '–' : `${v} ms`);
  const body = $('method-stats').tBodies[0];
  body.replaceChildren();
  for (const r of rows) {
    const row = document.createElement('tr');
    row.dataset.method = r.method;
    if (r.errors > 0) row.classList.add('failed');
    for (const text of [r.method, String(r.calls), String(r.errors), ms(r.p50_ms), ms(r.p99_ms)]) {
      const td = document.createElement('td');
      td.textContent = text;
      row.append(td);
    }
    body.append(row);
  }
}

// ---- server -> browser calls ---------------------------------------------

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
}

function renderBrowsers(report) {
  const body = $('browsers').tBodies[0];
  body.replaceChildren();
  for (const answer of report.answers) {
    const row = document.createElement('tr');
    const info = answer.info;
    if (info?.page_id === pageId) row.classList.add('me');
    if (answer.error) row.classList.add('failed');
    cell(row, answer.connection.slice(0, 8) + (info?.page_id === pageId ? ' (this page)' : ''));
    if (info) {
      cell(row, info.user_agent, 'ua');
      cell(row, info.viewport);
      cell(row, String(info.answered));
    } else {
      cell(row, answer.error, 'ua');
      cell(row, '–');
      cell(row, '–');
    }
    cell(row, answer.rtt_ms == null ? '–' : `${Math.round(answer.rtt_ms)} ms`);
    body.append(row);
  }
}

$('ask').addEventListener('click', async () => {
  $('ask').disabled = true;
  try {
    renderBrowsers(await api.dashboard.ask_browsers());
  } catch (error) {
    log(`asking the browsers failed: ${error.message}`);
  } finally {
    $('ask').disabled = false;
  }
});

// ---- the form -----------------------------------------------------------

function show(outcome, text) {
  $('call-result').dataset.outcome = outcome;
  $('call-result').textContent = text;
}

function describe(error) {
  if (error.kind === 'Rpc') {
    const data = error.data === undefined ? '' : `\ndata: ${JSON.stringify(error.data, null, 2)}`;
    return `Rpc error ${error.code}: ${error.message}${data}`;
  }
  return `${error.kind ?? 'Error'}: ${error.message}`;
}

$('call-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const method = $('method').value.trim();
  const text = $('params').value.trim();
  let params;
  try {
    params = text === '' ? undefined : JSON.parse(text);
  } catch (error) {
    show('error', `the params are not JSON: ${error.message}`);
    return;
  }
  show('pending', `calling ${method}…`);
  const started = performance.now();
  try {
    const result = await client.call(method, params, { timeout: 15_000 });
    show('ok', JSON.stringify(result, null, 2));
    log(`${method} answered in ${(performance.now() - started).toFixed(1)} ms`);
  } catch (error) {
    show('error', describe(error));
  }
});

$('burst').addEventListener('click', async () => {
  const batch = client.batch();
  for (let i = 0; i < 500; i += 1) batch.call('add', [i, 1]);
  const started = performance.now();
  try {
    const outcomes = await batch.send();
    const ok = outcomes.filter((o) => o.status === 'fulfilled').length;
    show('ok', `${ok} of 500 calls answered in one batch, ${(performance.now() - started).toFixed(1)} ms`);
  } catch (error) {
    show('error', describe(error));
  }
});

// ---- start ----------------------------------------------------------------

// Positioned: after a dropped connection the pushes published meanwhile are
// replayed (the chart has no hole), or the page is told they are gone.
feeds.metrics
  .subscribe((publication) => onMetrics(publication.params), {
    positioned: true,
    onRecovered: ({ count }) => log(`back online: recovered ${count} missed metrics pushes`),
    onLost: ({ reason }) => log(`back online: missed metrics pushes are gone (${reason})`),
  })
  .catch((error) => log(`subscribing to metrics failed: ${error.message}`));
feeds.browsers.subscribe(renderBrowsers).catch((error) => log(`subscribing to browsers failed: ${error.message}`));
client
  .ready()
  .then(() => client.discover())
  .then((doc) => {
    const list = $('methods');
    for (const m of doc.methods) {
      if (m.name.startsWith('rpc.')) continue;
      const option = document.createElement('option');
      option.value = m.name;
      option.label = m.summary ?? m.description ?? '';
      list.append(option);
    }
  })
  .catch((error) => log(`discovery failed: ${error.message}`));
