//! Switchboard's load generator: `calls`, `flood`, `fanout` and `idle` modes against
//! any server that implements the benchmark method contract
//! (shared/CONTRACT.md) over `ws://` or `wss://`, and `http-calls` by HTTP POST
//! (`http://`, `https://`). `gen-cert` writes a throwaway CA and server
//! certificate for the TLS runs. Each run ends with exactly one line on stdout:
//! `RESULT {json}`. Progress and diagnostics go to stderr.
//!
//! It runs on one thread (pin it with `taskset -c 1`), one task per
//! connection; in each task the writing and the reading of the socket run
//! concurrently. A `fanout` subscriber handles all that one read brought in
//! one go (one clock reading for their latency) and records into one
//! histogram shared by all subscribers, so at 10,000 subscribers the
//! generator costs a fraction of the hub's CPU per delivery.

use std::{
    cell::RefCell,
    ops::ControlFlow,
    path::PathBuf,
    rc::Rc,
    sync::OnceLock,
    time::{Duration, Instant},
};

use clap::{Args, Parser, Subcommand};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::json;
use switchboard_loadgen::{
    scan::{self, Fields},
    sys::{self, CpuMeter, MachineMeter},
    target::{self, Target},
    tls::{self, Tls},
    wire::{self, Batch, Engine, Rx, Tx},
};
use tokio::{sync::Notify, task::LocalSet, time::sleep_until};

/// Receive buffer per connection for `calls` and `flood`.
const DEFAULT_READ_BUFFER: usize = 64 * 1024;

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "WebSocket and HTTP JSON-RPC load generator for Switchboard's benchmarks")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// C connections each keep K `echo` calls in flight for S seconds.
    Calls(CallsArgs),
    /// `calls` by HTTP POST (`--url http://...` or `https://...`): C
    /// keep-alive HTTP/1.1 connections, each with up to K POSTs pipelined.
    HttpCalls(CallsArgs),
    /// Each connection calls `flood [N, B]` and counts the pushed ticks.
    Flood(FloodArgs),
    /// Open C connections, prove each with one call, measure the server's RSS.
    Idle(IdleArgs),
    /// C connections subscribe to a topic (plain or positioned); one more
    /// publishes N publications with the contract's `publish`, K in flight;
    /// counts the deliveries.
    Fanout(FanoutArgs),
    /// Writes a throwaway CA (`ca.pem`, for `--ca`) and a server certificate
    /// and key for 127.0.0.1, ::1 and localhost (`cert.pem`, `key.pem`).
    GenCert(GenCertArgs),
}

#[derive(Args, Debug, Clone)]
struct GenCertArgs {
    /// Directory to write the three files to (created if missing).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Server URL (loopback only): ws:// or wss:// (http:// or https:// for http-calls).
    #[arg(long, default_value = "ws://127.0.0.1:9000/")]
    url: String,
    /// For wss:// and https://: the PEM file of the CA to trust (e.g. `gen-cert`'s
    /// ca.pem). Required for TLS: the server's certificate is always verified.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Client engine after the handshake.
    #[arg(long, value_enum, default_value_t = Engine::Lean)]
    engine: Engine,
    /// Receive buffer per connection, bytes (idle mode uses 4 KiB unless told).
    #[arg(long, default_value_t = DEFAULT_READ_BUFFER)]
    read_buffer: usize,
    /// Server PID: adds the server's CPU use (cores) to the result.
    #[arg(long)]
    pid: Option<u32>,
}

#[derive(Args, Debug, Clone)]
struct CallsArgs {
    #[command(flatten)]
    common: Common,
    /// Connections.
    #[arg(short = 'c', long = "connections", default_value_t = 1)]
    c: usize,
    /// Calls in flight per connection.
    #[arg(short = 'k', long = "in-flight", default_value_t = 1)]
    k: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Warm-up seconds (calls run but are not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Length of the string echoed: params are `["xxx…"]` with this many x.
    #[arg(long, default_value_t = 64)]
    bytes: usize,
    /// Seconds to wait for the last replies after the measured window.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Send the next requests after at most this many replies, even if more
    /// replies are already waiting (0: only after all ready replies).
    /// Default: min(K, max(1, C*K/8)), so about 8 groups of requests are in
    /// flight in all and the server has the next group while the generator
    /// handles the last; with many connections that is simply K.
    #[arg(long)]
    batch: Option<usize>,
}

#[derive(Args, Debug, Clone)]
struct FloodArgs {
    #[command(flatten)]
    common: Common,
    /// Connections, each running one flood.
    #[arg(short = 'c', long = "connections", default_value_t = 1)]
    c: usize,
    /// Notifications per connection.
    #[arg(short = 'n', long = "count", default_value_t = 100_000)]
    n: u64,
    /// Pad bytes per notification.
    #[arg(long, default_value_t = 64)]
    bytes: usize,
    /// Floods in a row on the same connections; the result is their median
    /// (one flood lasts milliseconds, so one alone is at the mercy of noise).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Give up on a round after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
}

#[derive(Args, Debug, Clone)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Connections to open and hold.
    #[arg(short = 'c', long = "connections", default_value_t = 10_000)]
    c: usize,
    /// Handshakes in progress at once while opening.
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// Seconds to hold all connections before reading the server's memory.
    #[arg(long, default_value_t = 1.0)]
    hold: f64,
    /// Give up opening after this many seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
}

/// Which subscriptions a `fanout` run measures.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `rpc.subscribe ["topic"]`: plain notifications.
    Plain,
    /// `rpc.subscribe {"topic", "positioned": true}`: `rpc.publication` with offsets.
    Positioned,
    /// Plain, then positioned, in the same run (each on a topic of its own).
    Both,
}

#[derive(Args, Debug, Clone)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// Subscriber connections.
    #[arg(short = 'c', long = "connections", default_value_t = 100)]
    c: usize,
    /// Publications per round.
    #[arg(short = 'n', long = "count", default_value_t = 10_000)]
    n: u64,
    /// `publish` calls in flight on the publisher's connection.
    #[arg(short = 'k', long = "in-flight", default_value_t = 64)]
    k: usize,
    /// Pad bytes in each publication's params.
    #[arg(long, default_value_t = 64)]
    bytes: usize,
    /// Plain or positioned subscribers, or both in turn.
    #[arg(long, value_enum, default_value_t = Kind::Both)]
    kind: Kind,
    /// Rounds per kind (a fresh topic each); the result is their median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Before the rounds, with --pid: publish --retain-each publications to
    /// each of this many topics nobody subscribes to, and report the server's
    /// memory per retained publication (start the server with a history of
    /// at least --retain-each).
    #[arg(long, default_value_t = 0)]
    retain_topics: usize,
    /// Publications per retained topic.
    #[arg(long, default_value_t = 1_000)]
    retain_each: u64,
    /// Give up on a round after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Another hub of the same cluster (repeatable): subscribers are spread
    /// round-robin over --url and these hubs; the publisher uses --url.
    #[arg(long = "hub")]
    hubs: Vec<String>,
    /// Publications per second (0: as fast as the in-flight window allows).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let local = LocalSet::new();
    let (result, ok) = local.block_on(&rt, async move {
        match cli.mode {
            Mode::Calls(a) => run_calls(a, "calls").await,
            Mode::HttpCalls(a) => run_calls(a, "http-calls").await,
            Mode::Flood(a) => run_flood(a).await,
            Mode::Idle(a) => run_idle(a).await,
            Mode::Fanout(a) => run_fanout(a).await,
            Mode::GenCert(a) => gen_cert(&a),
        }
    });
    println!("RESULT {result}");
    if !ok {
        std::process::exit(1);
    }
}

/// Ends the run before it starts: still one `RESULT` line, with the reason.
fn usage_exit(mode: &str, why: &str) -> ! {
    eprintln!("loadgen {mode}: {why}");
    println!("RESULT {}", json!({ "mode": mode, "ok": false, "error": why }));
    std::process::exit(2);
}

/// Where a mode's connections go: the URL, the resolved target, and the TLS
/// client for a `wss://` or `https://` one.
struct Dest {
    url: String,
    target: Target,
    tls: Option<Tls>,
}

/// `url` checked for `mode` (`http-calls` takes http:// and https://, every
/// other mode ws:// and wss://), with its TLS client from `--ca`.
fn dest_or_exit(mode: &str, common: &Common, url: &str) -> Dest {
    let target = target::parse(url).unwrap_or_else(|e| usage_exit(mode, &e));
    if target.scheme.is_http() != (mode == "http-calls") {
        let wanted = if mode == "http-calls" { "http:// or https://" } else { "ws:// or wss://" };
        usage_exit(mode, &format!("{url}: {mode} takes {wanted} URLs"));
    }
    let tls = match (target.scheme.is_tls(), &common.ca) {
        (false, _) => None,
        (true, Some(ca)) => Some(Tls::trusting(ca).unwrap_or_else(|e| usage_exit(mode, &e))),
        (true, None) => usage_exit(mode, &format!("{url}: TLS needs --ca FILE, the CA to trust (see gen-cert)")),
    };
    Dest { url: url.to_owned(), target, tls }
}

/// One connection to `dest`.
async fn open(common: &Common, dest: &Dest) -> Result<(Tx, Rx), String> {
    wire::open(common.engine, &dest.target, &dest.url, common.read_buffer, dest.tls.as_ref()).await
}

fn gen_cert(a: &GenCertArgs) -> (serde_json::Value, bool) {
    match tls::generate(&a.out) {
        Ok(files) => {
            eprintln!(
                "loadgen gen-cert: wrote {}, {} and {}",
                files.ca.display(),
                files.cert.display(),
                files.key.display()
            );
            (json!({"mode": "gen-cert", "ca": files.ca, "cert": files.cert, "key": files.key, "ok": true}), true)
        }
        Err(e) => (json!({"mode": "gen-cert", "error": e, "ok": false}), false),
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Nanoseconds since this process first asked: the clock publications are
/// stamped with, so a subscriber in the same process measures
/// publish-to-delivery latency without comparing two machines' clocks.
fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Opens `c` connections, at most `parallel` handshakes at a time.
/// Opens `c` connections (64 at a time): the open ones, how many failed, and the first failure.
async fn open_counted(common: &Common, dest: &Dest, c: usize) -> (Vec<(Tx, Rx)>, u64, Option<String>) {
    let mut conns = Vec::with_capacity(c);
    let mut errors = 0u64;
    let mut first_error = None;
    for r in open_all(common, dest, c, 64).await {
        match r {
            Ok(pair) => conns.push(pair),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    (conns, errors, first_error)
}

async fn open_all(common: &Common, dest: &Dest, c: usize, parallel: usize) -> Vec<Result<(Tx, Rx), String>> {
    futures_util::stream::iter(0..c).map(|_| open(common, dest)).buffer_unordered(parallel.max(1)).collect().await
}

// ---------------------------------------------------------------- calls

/// The measured window, shared by every connection.
#[derive(Clone, Copy)]
struct Phase {
    warm_end: Instant,
    end: Instant,
    drain_end: Instant,
}

/// Per-connection call bookkeeping. Call ids are `round * K + slot`, so a
/// reply finds its slot with one division and is checked against the exact
/// id that slot is waiting for.
struct CallState {
    k: u64,
    ids: Vec<u64>,
    sent: Vec<Instant>,
    free: Vec<u32>,
    hist: Histogram<u64>,
    done: u64,
    errors: u64,
    first_error: Option<String>,
}

const FREE: u64 = u64::MAX;

impl CallState {
    fn new(k: usize, now: Instant) -> Self {
        Self {
            k: k as u64,
            ids: vec![FREE; k],
            sent: vec![now; k],
            free: (0..k as u32).rev().collect(),
            hist: Histogram::new_with_bounds(1, 120_000_000_000, 3).expect("histogram bounds"),
            done: 0,
            errors: 0,
            first_error: None,
        }
    }

    fn error(&mut self, what: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what());
        }
    }

    fn outstanding(&self) -> usize {
        self.ids.len() - self.free.len()
    }

    /// Takes a free slot and returns the id of the call to send in it.
    fn start(&mut self, round: &mut [u64], now: Instant) -> Option<u64> {
        let slot = self.free.pop()? as usize;
        let id = round[slot] * self.k + slot as u64;
        round[slot] += 1;
        self.ids[slot] = id;
        self.sent[slot] = now;
        Some(id)
    }

    /// Checks one reply; frees its slot and records it if in the window.
    fn complete(&mut self, text: &[u8], params: &[u8], now: Instant, phase: &Phase) {
        let Some(f) = scan::scan_object(text) else {
            return self
                .error(|| format!("not a JSON object: {}", String::from_utf8_lossy(&text[..text.len().min(200)])));
        };
        let Some(id) = f.id_u64() else {
            return self.error(|| {
                format!("reply without a numeric id: {}", String::from_utf8_lossy(&text[..text.len().min(200)]))
            });
        };
        let slot = (id % self.k) as usize;
        if self.ids[slot] != id {
            return self.error(|| format!("reply to unknown id {id}"));
        }
        self.ids[slot] = FREE;
        self.free.push(slot as u32);
        let good = f.is_v2() && f.error.is_none() && f.result.is_some_and(|r| scan::json_eq(r, params));
        if !good {
            return self.error(|| format!("bad reply: {}", String::from_utf8_lossy(&text[..text.len().min(200)])));
        }
        if now >= phase.warm_end && now < phase.end {
            self.done += 1;
            let ns = now.duration_since(self.sent[slot]).as_nanos() as u64;
            self.hist.saturating_record(ns.max(1));
        }
    }
}

struct ConnCalls {
    done: u64,
    errors: u64,
    unanswered: u64,
    hist: Histogram<u64>,
    first_error: Option<String>,
}

async fn calls_conn(mut tx: Tx, mut rx: Rx, k: usize, batch: usize, params: Rc<[u8]>, phase: Phase) -> ConnCalls {
    let prefix = {
        let mut p = br#"{"jsonrpc":"2.0","method":"echo","params":"#.to_vec();
        p.extend_from_slice(&params);
        p.extend_from_slice(br#","id":"#);
        p
    };
    let st = RefCell::new(CallState::new(k, Instant::now()));
    let wake_writer = Notify::new();
    let writer_error: RefCell<Option<String>> = RefCell::new(None);

    let writer = async {
        let mut round = vec![0u64; k];
        let end = sleep_until(phase.end.into());
        tokio::pin!(end);
        loop {
            let mut queued = 0;
            // One timestamp for the whole group: it leaves in one write.
            let now = Instant::now();
            if now >= phase.end {
                break;
            }
            loop {
                let id = st.borrow_mut().start(&mut round, now);
                let Some(id) = id else { break };
                let mut digits = itoa::Buffer::new();
                if let Err(e) = tx.push3(&prefix, digits.format(id).as_bytes(), b"}").await {
                    *writer_error.borrow_mut() = Some(e);
                    return;
                }
                queued += 1;
            }
            if queued > 0
                && let Err(e) = tx.flush().await
            {
                *writer_error.borrow_mut() = Some(e);
                return;
            }
            tokio::select! {
                biased;
                _ = wake_writer.notified() => {}
                _ = &mut end => break,
            }
        }
    };

    let reader = async {
        let deadline = sleep_until(phase.drain_end.into());
        tokio::pin!(deadline);
        let mut since_yield = 0usize;
        loop {
            let msg = tokio::select! {
                biased;
                m = rx.next_text() => m,
                _ = &mut deadline => break,
            };
            match msg {
                Ok(Some(text)) => {
                    let now = Instant::now();
                    let finished = {
                        let mut s = st.borrow_mut();
                        s.complete(text, &params, now, &phase);
                        now >= phase.end && s.outstanding() == 0
                    };
                    if finished {
                        break;
                    }
                    wake_writer.notify_one();
                    since_yield += 1;
                    if since_yield == batch {
                        // Let the writer send before reading on.
                        since_yield = 0;
                        tokio::task::yield_now().await;
                    }
                }
                Ok(None) => {
                    let mut s = st.borrow_mut();
                    if s.outstanding() > 0 || Instant::now() < phase.end {
                        s.error(|| "server closed the connection".into());
                    }
                    break;
                }
                Err(e) => {
                    st.borrow_mut().error(|| e);
                    break;
                }
            }
        }
    };

    tokio::join!(writer, reader);
    let mut s = st.into_inner();
    if let Some(e) = writer_error.into_inner() {
        s.error(|| e);
    }
    let unanswered = s.outstanding() as u64;
    ConnCalls { done: s.done, errors: s.errors, unanswered, hist: s.hist, first_error: s.first_error }
}

async fn run_calls(a: CallsArgs, mode: &str) -> (serde_json::Value, bool) {
    let dest = dest_or_exit(mode, &a.common, &a.common.url);
    let k = a.k.max(1);
    let c = a.c.max(1);
    let batch = a.batch.unwrap_or_else(|| k.min((c * k / 8).max(1)));
    let params: Rc<[u8]> = {
        let mut p = Vec::with_capacity(a.bytes + 4);
        p.extend_from_slice(b"[\"");
        p.resize(2 + a.bytes, b'x');
        p.extend_from_slice(b"\"]");
        p.into()
    };
    eprintln!(
        "loadgen {mode}: {} C={c} K={k} bytes={} warmup={}s seconds={}s batch={batch} engine={:?}",
        a.common.url, a.bytes, a.warmup, a.seconds, a.common.engine
    );
    let (conns, mut errors, mut first_error) = open_counted(&a.common, &dest, c).await;
    let start = Instant::now();
    let warm_end = start + secs(a.warmup);
    let end = warm_end + secs(a.seconds);
    let phase = Phase { warm_end, end, drain_end: end + secs(a.drain) };

    // CPU use of the server and of this process over the measured window.
    let pid = a.common.pid;
    let meters = tokio::task::spawn_local(async move {
        sleep_until(warm_end.into()).await;
        let server = pid.and_then(|p| CpuMeter::start(Some(p)));
        let client = CpuMeter::start(None);
        let machine = MachineMeter::start();
        sleep_until(end.into()).await;
        Cpu::read(server, client, machine)
    });

    let handles: Vec<_> = conns
        .into_iter()
        .map(|(tx, rx)| tokio::task::spawn_local(calls_conn(tx, rx, k, batch, params.clone(), phase)))
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000_000, 3).expect("histogram bounds");
    let mut done = 0u64;
    let mut unanswered = 0u64;
    let opened = handles.len();
    for h in handles {
        match h.await {
            Ok(r) => {
                done += r.done;
                errors += r.errors;
                unanswered += r.unanswered;
                hist.add(&r.hist).expect("same histogram bounds");
                if let Some(e) = r.first_error {
                    first_error.get_or_insert(e);
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(format!("connection task failed: {e}"));
            }
        }
    }
    let cpu = meters.await.unwrap_or_default();
    let seconds = a.seconds.max(1e-9);
    let us = |q: f64| round(hist.value_at_quantile(q) as f64 / 1000.0, 1);
    let ok = errors == 0 && unanswered == 0 && done > 0 && opened == c;
    if let Some(e) = &first_error {
        eprintln!("loadgen {mode}: first error: {e}");
    }
    let result = json!({
        "mode": mode,
        "url": a.common.url,
        "engine": format!("{:?}", a.common.engine).to_lowercase(),
        "c": c,
        "k": k,
        "bytes": a.bytes,
        "seconds": a.seconds,
        "warmup": a.warmup,
        "batch": batch,
        "connections": opened,
        "calls": done,
        "calls_per_sec": round(done as f64 / seconds, 1),
        "p50_us": us(0.5),
        "p99_us": us(0.99),
        "p999_us": us(0.999),
        "max_us": round(hist.max() as f64 / 1000.0, 1),
        "errors": errors,
        "unanswered": unanswered,
        "server_cpu": cpu.server,
        "client_cpu": cpu.client,
        "other_cpu": cpu.other,
        "first_error": first_error,
        "ok": ok,
    });
    (result, ok)
}

/// CPU use over a run, in cores: the server's, the generator's, and
/// everything else on the machine (noise: compilers, other benchmarks).
#[derive(Default)]
struct Cpu {
    server: Option<f64>,
    client: Option<f64>,
    other: Option<f64>,
}

impl Cpu {
    fn read(server: Option<CpuMeter>, client: Option<CpuMeter>, machine: Option<MachineMeter>) -> Self {
        let server = server.and_then(|m| m.busy());
        let client = client.and_then(|m| m.busy());
        let machine = machine.and_then(|m| m.busy());
        let other = machine.map(|m| (m - server.unwrap_or(0.0) - client.unwrap_or(0.0)).max(0.0));
        let r3 = |v: Option<f64>| v.map(|v| round(v, 3));
        Self { server: r3(server), client: r3(client), other: r3(other) }
    }
}

// ---------------------------------------------------------------- flood

struct ConnFlood {
    ticks: u64,
    last_tick: Option<Instant>,
    replied: bool,
    early_reply: bool,
    errors: u64,
    first_error: Option<String>,
}

/// The tick notification as the contract's servers usually spell it: a frame
/// that starts like this and ends with `}}` is counted without a scan.
const TICK_PREFIX: &[u8] = br#"{"jsonrpc":"2.0","method":"tick","params":{"#;

fn is_tick(text: &[u8]) -> bool {
    if text.starts_with(TICK_PREFIX) && text.ends_with(b"}}") && finders().id.find(&text[TICK_PREFIX.len()..]).is_none()
    {
        return true;
    }
    matches!(
        scan::scan_object(text),
        Some(f @ Fields { id: None, method: Some(b"\"tick\""), params: Some(p), .. }) if f.is_v2() && p.starts_with(b"{")
    )
}

/// One flood on one connection: send the call, count ticks until the reply
/// and all n ticks are in. Returns the halves for the next round.
async fn flood_conn(mut tx: Tx, mut rx: Rx, n: u64, bytes: usize, id: u64, deadline: Instant) -> (Tx, Rx, ConnFlood) {
    let mut r =
        ConnFlood { ticks: 0, last_tick: None, replied: false, early_reply: false, errors: 0, first_error: None };
    let fail = |r: &mut ConnFlood, e: String| {
        r.errors += 1;
        r.first_error.get_or_insert(e);
    };
    let req = format!(r#"{{"jsonrpc":"2.0","method":"flood","params":[{n},{bytes}],"id":{id}}}"#);
    let sent = match tx.push3(req.as_bytes(), b"", b"").await {
        Ok(()) => tx.flush().await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        fail(&mut r, e);
        return (tx, rx, r);
    }
    let want_id = id.to_string();
    let want_result = n.to_string();
    let timeout = sleep_until(deadline.into());
    tokio::pin!(timeout);
    while !(r.replied && r.ticks >= n) {
        let msg = tokio::select! {
            biased;
            m = rx.next_text() => m,
            _ = &mut timeout => {
                let e = format!("timed out with {} of {n} ticks, replied: {}", r.ticks, r.replied);
                fail(&mut r, e);
                break;
            }
        };
        let text = match msg {
            Ok(Some(t)) => t,
            Ok(None) => {
                let e = format!("server closed after {} of {n} ticks", r.ticks);
                fail(&mut r, e);
                break;
            }
            Err(e) => {
                fail(&mut r, e);
                break;
            }
        };
        if is_tick(text) {
            r.ticks += 1;
            if r.ticks == n {
                r.last_tick = Some(Instant::now());
            }
            continue;
        }
        match scan::scan_object(text) {
            Some(f) if f.is_v2() && f.id == Some(want_id.as_bytes()) && f.result == Some(want_result.as_bytes()) => {
                r.replied = true;
                // The contract sends the reply after the ticks; a server that
                // answers early is noted, not failed: we still wait for all n.
                r.early_reply = r.ticks < n;
            }
            _ => {
                let e = format!("unexpected message: {}", String::from_utf8_lossy(&text[..text.len().min(200)]));
                fail(&mut r, e);
            }
        }
    }
    (tx, rx, r)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

async fn run_flood(a: FloodArgs) -> (serde_json::Value, bool) {
    let dest = dest_or_exit("flood", &a.common, &a.common.url);
    let c = a.c.max(1);
    let rounds = a.rounds.max(1);
    eprintln!(
        "loadgen flood: {} C={c} n={} bytes={} rounds={rounds} engine={:?}",
        a.common.url, a.n, a.bytes, a.common.engine
    );
    let (mut conns, mut errors, mut first_error) = open_counted(&a.common, &dest, c).await;
    let opened = conns.len();
    let server = a.common.pid.and_then(|p| CpuMeter::start(Some(p)));
    let client = CpuMeter::start(None);
    let machine = MachineMeter::start();
    let mut rates = Vec::with_capacity(rounds);
    let mut spans_ms = Vec::with_capacity(rounds);
    let mut ticks_total = 0u64;
    let mut replies = 0usize;
    let mut early_replies = 0usize;
    for round in 0..rounds {
        let start = Instant::now();
        let deadline = start + secs(a.timeout);
        let handles: Vec<_> = conns
            .drain(..)
            .map(|(tx, rx)| tokio::task::spawn_local(flood_conn(tx, rx, a.n, a.bytes, round as u64 + 1, deadline)))
            .collect();
        let mut ticks = 0u64;
        let mut last = start;
        for h in handles {
            match h.await {
                Ok((tx, rx, r)) => {
                    ticks += r.ticks;
                    errors += r.errors;
                    replies += usize::from(r.replied);
                    early_replies += usize::from(r.early_reply);
                    if let Some(t) = r.last_tick {
                        last = last.max(t);
                    }
                    if let Some(e) = r.first_error {
                        first_error.get_or_insert(e);
                    }
                    if r.errors == 0 {
                        conns.push((tx, rx));
                    }
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(format!("connection task failed: {e}"));
                }
            }
        }
        let span = last.duration_since(start).as_secs_f64();
        ticks_total += ticks;
        rates.push(if span > 0.0 { ticks as f64 / span } else { 0.0 });
        spans_ms.push(span * 1000.0);
        if errors > 0 {
            break;
        }
    }
    let cpu = Cpu::read(server, client, machine);
    let expected = a.n * c as u64 * rounds as u64;
    let ok = errors == 0 && ticks_total == expected && replies == c * rounds;
    if let Some(e) = &first_error {
        eprintln!("loadgen flood: first error: {e}");
    }
    let per_round: Vec<f64> = rates.iter().map(|r| round(*r, 1)).collect();
    let result = json!({
        "mode": "flood",
        "url": a.common.url,
        "engine": format!("{:?}", a.common.engine).to_lowercase(),
        "c": c,
        "n": a.n,
        "bytes": a.bytes,
        "rounds": rounds,
        "connections": opened,
        "notifications": ticks_total,
        "expected": expected,
        "notif_per_sec": round(median(&mut rates), 1),
        "time_to_last_ms": round(median(&mut spans_ms), 3),
        "notif_per_sec_rounds": per_round,
        "replies": replies,
        "early_replies": early_replies,
        "errors": errors,
        "server_cpu": cpu.server,
        "client_cpu": cpu.client,
        "other_cpu": cpu.other,
        "first_error": first_error,
        "ok": ok,
    });
    (result, ok)
}

// ---------------------------------------------------------------- fanout

/// Publishes `n` publications to `topic` through the contract's `publish`,
/// `k` in flight; returns when every one is answered (with its result).
/// Publishes `n` publications of `{"t": NANOS, "pad": PAD}` to `topic`
/// (`t` is [`now_ns`] when the frame is written), at most `k` unanswered, at
/// most `rate` per second when `rate > 0`.
async fn publish_n(
    tx: &mut Tx,
    rx: &mut Rx,
    topic: &str,
    n: u64,
    k: usize,
    pad: &str,
    rate: f64,
) -> Result<(), String> {
    let prefix = format!(r#"{{"jsonrpc":"2.0","method":"publish","params":["{topic}","tick",{{"t":"#);
    let middle = format!(r#","pad":"{pad}"}}],"id":"#);
    let (mut sent, mut answered) = (0u64, 0u64);
    let k = k.max(1) as u64;
    let start = Instant::now();
    let due = |i: u64| if rate > 0.0 { start + secs(i as f64 / rate) } else { start };
    let mut frame = String::with_capacity(prefix.len() + middle.len() + 48);
    let mut digits = itoa::Buffer::new();
    while answered < n {
        // Refill in groups (one flush per half window), only what is due.
        if sent - answered <= k / 2 && sent < n {
            let now = Instant::now();
            while sent - answered < k && sent < n && due(sent) <= now {
                sent += 1;
                frame.clear();
                frame.push_str(&prefix);
                frame.push_str(digits.format(now_ns()));
                frame.push_str(&middle);
                frame.push_str(digits.format(sent));
                frame.push('}');
                tx.push3(frame.as_bytes(), b"", b"").await?;
            }
            tx.flush().await?;
        }
        if sent == answered {
            // Nothing in flight: the next publication is not due yet.
            sleep_until(due(sent).into()).await;
            continue;
        }
        let text = rx.next_text().await?.ok_or("the server closed the publisher")?;
        match scan::scan_object(text) {
            Some(f) if f.is_v2() && f.result.is_some() && f.id_u64().is_some() => answered += 1,
            _ => return Err(format!("bad publish reply: {}", String::from_utf8_lossy(&text[..text.len().min(200)]))),
        }
    }
    Ok(())
}

/// A subscriber's count of one round.
struct ConnFanout {
    received: u64,
    last: Option<Instant>,
    error: Option<String>,
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000_000, 3).expect("histogram bounds")
}

/// Substring searches built once (building a searcher per frame costs about
/// as much as the search).
struct Finders {
    id: memchr::memmem::Finder<'static>,
    offset: memchr::memmem::Finder<'static>,
    stamp: memchr::memmem::Finder<'static>,
}

fn finders() -> &'static Finders {
    static F: OnceLock<Finders> = OnceLock::new();
    F.get_or_init(|| Finders {
        id: memchr::memmem::Finder::new(br#""id""#),
        offset: memchr::memmem::Finder::new(OFFSET),
        stamp: memchr::memmem::Finder::new(STAMP),
    })
}

const OFFSET: &[u8] = br#""offset":"#;
/// The key of the publish time in a publication's params (wherever the hub
/// put it among the params' keys).
const STAMP: &[u8] = br#""t":"#;

/// The unsigned decimal that starts at `text[at..]`.
fn number_at(text: &[u8], at: usize) -> Option<u64> {
    let rest = text.get(at..)?;
    let end = rest.iter().position(|c| !c.is_ascii_digit()).unwrap_or(rest.len());
    scan::parse_u64(&rest[..end])
}

/// The publish time stamped in a publication's params (`"t":NANOS`),
/// searched for from `from`; in a plain tick spelled as the generator's
/// publisher sends it, it opens the params and is read without a search.
fn stamp_of(text: &[u8], from: usize) -> Option<u64> {
    if let Some(rest) = text.strip_prefix(TICK_PREFIX).and_then(|r| r.strip_prefix(STAMP))
        && from <= TICK_PREFIX.len()
    {
        return number_at(text, text.len() - rest.len());
    }
    let at = from + finders().stamp.find(text.get(from..)?)? + STAMP.len();
    number_at(text, at)
}

const PUBLICATION_PREFIX: &[u8] = br#"{"jsonrpc":"2.0","method":"rpc.publication","params":{"#;

/// The offset of a positioned publication (the first `"offset":` of its
/// frame) and where its digits start.
fn offset_of(text: &[u8]) -> Option<(u64, usize)> {
    let at = finders().offset.find(text)? + OFFSET.len();
    Some((number_at(text, at)?, at))
}

/// What one subscriber checks in each publication of a round: it is a tick
/// (plain) or an `rpc.publication` whose offset follows the last one
/// (positioned). Its stamp goes into the round's latency histogram.
struct Checker {
    positioned: bool,
    expected_offset: Option<u64>,
}

impl Checker {
    /// Checks one publication, delivered at `now` (lazily read, once per
    /// batch); records its latency.
    fn check(&mut self, text: &[u8], now: &mut Option<u64>, latency: &RefCell<Histogram<u64>>) -> Result<(), String> {
        let (good, stamp_from) = if self.positioned {
            let offset = offset_of(text);
            let consecutive = self.expected_offset.is_none_or(|e| offset.map(|o| o.0) == Some(e));
            self.expected_offset = offset.map(|o| o.0 + 1);
            (text.starts_with(PUBLICATION_PREFIX) && consecutive, offset.map_or(0, |o| o.1))
        } else {
            (is_tick(text), 0)
        };
        if !good {
            return Err(format!("unexpected message: {}", String::from_utf8_lossy(&text[..text.len().min(200)])));
        }
        if let Some(t) = stamp_of(text, stamp_from) {
            let now = *now.get_or_insert_with(now_ns);
            latency.borrow_mut().saturating_record(now.saturating_sub(t).max(1));
        }
        Ok(())
    }
}

/// Counts `n` publications on one subscriber; positioned ones must have
/// consecutive offsets. Every message that one read brought is handled in
/// one go, with one clock reading: they had all arrived when it was taken.
async fn fanout_conn(
    tx: Tx,
    mut rx: Rx,
    n: u64,
    positioned: bool,
    deadline: Instant,
    latency: Rc<RefCell<Histogram<u64>>>,
) -> (Tx, Rx, ConnFanout) {
    let mut r = ConnFanout { received: 0, last: None, error: None };
    let mut checker = Checker { positioned, expected_offset: None };
    let timeout = sleep_until(deadline.into());
    tokio::pin!(timeout);
    while r.received < n && r.error.is_none() {
        let mut now = None;
        let (mut received, mut error) = (r.received, None);
        let mut handle = |text: &[u8]| {
            if let Err(e) = checker.check(text, &mut now, &latency) {
                error = Some(e);
                return ControlFlow::Break(());
            }
            received += 1;
            if received == n { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        };
        let batch = tokio::select! {
            biased;
            b = rx.texts(&mut handle) => Some(b),
            _ = &mut timeout => None,
        };
        r.received = received;
        r.error = match (error, batch) {
            (Some(e), _) => Some(e),
            (None, None) => Some(format!("timed out with {} of {n} publications", r.received)),
            (None, Some(Ok(Batch::Closed))) => Some(format!("server closed after {} of {n} publications", r.received)),
            (None, Some(Err(e))) => Some(e),
            (None, Some(Ok(_))) => None,
        };
    }
    if r.received == n {
        r.last = Some(Instant::now());
    }
    (tx, rx, r)
}

/// Subscribes every connection with `request`: all requests first, then all
/// replies, so C subscriptions cost about one round trip, not C. Counts each
/// connection whose subscription failed.
async fn subscribe_all(subs: &mut [(Tx, Rx)], request: &str, errors: &mut u64, first_error: &mut Option<String>) {
    let mut sent = Vec::with_capacity(subs.len());
    for (tx, _) in subs.iter_mut() {
        let r = match tx.push3(request.as_bytes(), b"", b"").await {
            Ok(()) => tx.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            *errors += 1;
            first_error.get_or_insert_with(|| e.clone());
        }
        sent.push(r.is_ok());
    }
    for ((_, rx), sent) in subs.iter_mut().zip(sent) {
        if !sent {
            continue;
        }
        match rx.next_text().await {
            Ok(Some(reply)) if memchr::memmem::find(reply, br#""result""#).is_some() => {}
            Ok(Some(reply)) => {
                *errors += 1;
                first_error.get_or_insert_with(|| format!("subscribe refused: {}", String::from_utf8_lossy(reply)));
            }
            Ok(None) => {
                *errors += 1;
                first_error.get_or_insert_with(|| "closed before answering the subscribe".into());
            }
            Err(e) => {
                *errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
}

/// One kind's rounds: deliveries per second (median), publishes per second.
struct KindResult {
    deliveries_per_sec: f64,
    publishes_per_sec: f64,
    rounds: Vec<f64>,
    delivered: u64,
    latency: Histogram<u64>,
    /// CPU seconds over the rounds' delivery windows: the server's, the generator's.
    server_cpu_s: Option<f64>,
    client_cpu_s: Option<f64>,
}

/// CPU seconds a process has run so far (`None`: this one).
fn cpu_now(pid: Option<u32>) -> Option<f64> {
    sys::cpu_seconds(pid).ok()
}

async fn fanout_rounds(
    a: &FanoutArgs,
    kind: Kind,
    subs: &mut Vec<(Tx, Rx)>,
    publisher: &mut (Tx, Rx),
    errors: &mut u64,
    first_error: &mut Option<String>,
) -> KindResult {
    let positioned = kind == Kind::Positioned;
    let pad = "x".repeat(a.bytes);
    let mut rates = Vec::new();
    let mut publish_rates = Vec::new();
    let mut delivered = 0;
    let latency = Rc::new(RefCell::new(latency_histogram()));
    let (mut server_cpu_s, mut client_cpu_s) = (a.common.pid.map(|_| 0.0), Some(0.0));
    for round in 0..a.rounds.max(1) {
        let topic = format!("fanout.{}.{round}", if positioned { "positioned" } else { "plain" });
        let subscribe = if positioned {
            format!(
                r#"{{"jsonrpc":"2.0","method":"rpc.subscribe","params":{{"topic":"{topic}","positioned":true}},"id":1}}"#
            )
        } else {
            format!(r#"{{"jsonrpc":"2.0","method":"rpc.subscribe","params":["{topic}"],"id":1}}"#)
        };
        subscribe_all(subs, &subscribe, errors, first_error).await;
        if *errors > 0 {
            break;
        }
        let cpu_before = (a.common.pid.and_then(|p| cpu_now(Some(p))), cpu_now(None));
        let start = Instant::now();
        let deadline = start + secs(a.timeout);
        let handles: Vec<_> = subs
            .drain(..)
            .map(|(tx, rx)| tokio::task::spawn_local(fanout_conn(tx, rx, a.n, positioned, deadline, latency.clone())))
            .collect();
        let (tx, rx) = publisher;
        let published = publish_n(tx, rx, &topic, a.n, a.k, &pad, a.rate).await;
        let published_at = Instant::now();
        if let Err(e) = published {
            *errors += 1;
            first_error.get_or_insert(e);
        }
        let mut last = start;
        let mut received = 0;
        for h in handles {
            match h.await {
                Ok((tx, rx, r)) => {
                    received += r.received;
                    if let Some(t) = r.last {
                        last = last.max(t);
                    }
                    if let Some(e) = r.error {
                        *errors += 1;
                        first_error.get_or_insert(e);
                    } else {
                        subs.push((tx, rx));
                    }
                }
                Err(e) => {
                    *errors += 1;
                    first_error.get_or_insert(format!("subscriber task failed: {e}"));
                }
            }
        }
        let spent = |before: Option<f64>, after: Option<f64>, sum: Option<f64>| Some(sum? + after? - before?);
        server_cpu_s = spent(cpu_before.0, a.common.pid.and_then(|p| cpu_now(Some(p))), server_cpu_s);
        client_cpu_s = spent(cpu_before.1, cpu_now(None), client_cpu_s);
        delivered += received;
        let span = last.duration_since(start).as_secs_f64();
        rates.push(if span > 0.0 { received as f64 / span } else { 0.0 });
        let publish_span = published_at.duration_since(start).as_secs_f64();
        publish_rates.push(if publish_span > 0.0 { a.n as f64 / publish_span } else { 0.0 });
        eprintln!(
            "loadgen fanout: {kind:?} round {round}: {received} deliveries in {:.1} ms ({:.0}/s)",
            span * 1e3,
            rates.last().unwrap()
        );
        if *errors > 0 {
            break;
        }
    }
    let per_round = rates.iter().map(|r| round(*r, 1)).collect();
    KindResult {
        deliveries_per_sec: round(median(&mut rates), 1),
        publishes_per_sec: round(median(&mut publish_rates), 1),
        rounds: per_round,
        delivered,
        latency: Rc::try_unwrap(latency).map(RefCell::into_inner).unwrap_or_else(|rc| rc.borrow().clone()),
        server_cpu_s,
        client_cpu_s,
    }
}

async fn run_fanout(a: FanoutArgs) -> (serde_json::Value, bool) {
    let dest = dest_or_exit("fanout", &a.common, &a.common.url);
    eprintln!(
        "loadgen fanout: {} (+{} hubs) C={} n={} k={} bytes={} rate={} kind={:?} engine={:?}",
        a.common.url,
        a.hubs.len(),
        a.c,
        a.n,
        a.k,
        a.bytes,
        a.rate,
        a.kind,
        a.common.engine
    );
    // Subscribers round-robin over every hub: hub i gets c/h, the first c%h one more.
    let mut urls = vec![a.common.url.clone()];
    urls.extend(a.hubs.iter().cloned());
    let (mut subs, mut errors, mut first_error) = (Vec::new(), 0, None);
    let c = a.c.max(1);
    for (i, url) in urls.iter().enumerate() {
        let share = c / urls.len() + usize::from(i < c % urls.len());
        let common = Common { url: url.clone(), ..a.common.clone() };
        let (opened, failed, first) = open_counted(&common, &dest_or_exit("fanout", &common, url), share).await;
        subs.extend(opened);
        errors += failed;
        first_error = first_error.or(first);
    }
    let mut publisher = match open(&a.common, &dest).await {
        Ok(pair) => pair,
        Err(e) => usage_exit("fanout", &format!("cannot open the publisher: {e}")),
    };

    // Memory per retained publication: publish to topics nobody subscribes to.
    let mut retained = serde_json::Value::Null;
    if let (Some(pid), true) = (a.common.pid, a.retain_topics > 0) {
        let before = sys::vm_rss_kib(pid).unwrap_or(0);
        let pad = "x".repeat(a.bytes);
        for t in 0..a.retain_topics {
            let (tx, rx) = &mut publisher;
            if let Err(e) = publish_n(tx, rx, &format!("retain.{t}"), a.retain_each, a.k, &pad, 0.0).await {
                errors += 1;
                first_error.get_or_insert(e);
                break;
            }
        }
        let after = sys::vm_rss_kib(pid).unwrap_or(0);
        let count = a.retain_topics as u64 * a.retain_each;
        // The frame as the in-memory broker keeps it (the positioned notification).
        let frame = format!(
            r#"{{"jsonrpc":"2.0","method":"rpc.publication","params":{{"topic":"retain.{}","epoch":"0123456789ab","offset":{},"method":"tick","params":{{"t":12345678901,"pad":"{pad}"}}}}}}"#,
            a.retain_topics / 2,
            a.retain_each / 2
        );
        let per = (after as f64 - before as f64) * 1024.0 / count as f64;
        retained = json!({
            "topics": a.retain_topics,
            "publications": count,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "bytes_per_publication": round(per, 1),
            "frame_bytes": frame.len(),
            "overhead_bytes": round(per - frame.len() as f64, 1),
        });
        eprintln!("loadgen fanout: retained {count} publications: {retained}");
    }

    let server = a.common.pid.and_then(|p| CpuMeter::start(Some(p)));
    let client = CpuMeter::start(None);
    let machine = MachineMeter::start();
    let kinds: &[Kind] = match a.kind {
        Kind::Both => &[Kind::Plain, Kind::Positioned],
        Kind::Plain => &[Kind::Plain],
        Kind::Positioned => &[Kind::Positioned],
    };
    let mut results = serde_json::Map::new();
    let mut delivered = 0;
    for &kind in kinds {
        if errors > 0 {
            break;
        }
        let r = fanout_rounds(&a, kind, &mut subs, &mut publisher, &mut errors, &mut first_error).await;
        delivered += r.delivered;
        let name = format!("{kind:?}").to_lowercase();
        let us = |q: f64| round(r.latency.value_at_quantile(q) as f64 / 1000.0, 1);
        let ns_per_delivery =
            |cpu_s: Option<f64>| cpu_s.filter(|_| r.delivered > 0).map(|s| round(s * 1e9 / r.delivered as f64, 1));
        results.insert(
            name,
            json!({
                "deliveries_per_sec": r.deliveries_per_sec,
                "publishes_per_sec": r.publishes_per_sec,
                "deliveries_per_sec_rounds": r.rounds,
                "latency_us": {"p50": us(0.5), "p99": us(0.99), "p999": us(0.999), "max": us(1.0)},
                "server_ns_per_delivery": ns_per_delivery(r.server_cpu_s),
                "client_ns_per_delivery": ns_per_delivery(r.client_cpu_s),
            }),
        );
    }
    let cpu = Cpu::read(server, client, machine);
    let expected = a.n * a.c.max(1) as u64 * a.rounds.max(1) as u64 * kinds.len() as u64;
    let ok = errors == 0 && delivered == expected;
    if let Some(e) = &first_error {
        eprintln!("loadgen fanout: first error: {e}");
    }
    let result = json!({
        "mode": "fanout",
        "url": a.common.url,
        "hubs": a.hubs,
        "rate": a.rate,
        "engine": format!("{:?}", a.common.engine).to_lowercase(),
        "c": a.c,
        "n": a.n,
        "k": a.k,
        "bytes": a.bytes,
        "rounds": a.rounds,
        "kinds": results,
        "retained": retained,
        "deliveries": delivered,
        "expected": expected,
        "errors": errors,
        "server_cpu": cpu.server,
        "client_cpu": cpu.client,
        "other_cpu": cpu.other,
        "first_error": first_error,
        "ok": ok,
    });
    (result, ok)
}

// ---------------------------------------------------------------- idle

/// Opens one connection and proves it with one `echo` call.
async fn idle_conn(common: &Common, dest: &Dest) -> Result<(Tx, Rx), String> {
    let (mut tx, mut rx) = open(common, dest).await?;
    tx.push3(br#"{"jsonrpc":"2.0","method":"echo","params":["idle"],"id":1}"#, b"", b"").await?;
    tx.flush().await?;
    let text = rx.next_text().await?.ok_or("closed before answering")?;
    match scan::scan_object(text) {
        Some(f) if f.is_v2() && f.id == Some(b"1") && f.result.is_some_and(|r| scan::json_eq(r, br#"["idle"]"#)) => {
            Ok((tx, rx))
        }
        _ => Err(format!("bad proof reply: {}", String::from_utf8_lossy(&text[..text.len().min(200)]))),
    }
}

async fn run_idle(mut a: IdleArgs) -> (serde_json::Value, bool) {
    let dest = dest_or_exit("idle", &a.common, &a.common.url);
    // Idle connections need little buffer on our side; keep the client small.
    if a.common.read_buffer == DEFAULT_READ_BUFFER {
        a.common.read_buffer = 4096;
    }
    let limits = sys::raise_nofile_limit();
    match &limits {
        Ok((soft, hard)) => eprintln!("loadgen idle: RLIMIT_NOFILE soft={soft} hard={hard}"),
        Err(e) => eprintln!("loadgen idle: cannot raise RLIMIT_NOFILE: {e}"),
    }
    if let Ok((soft, _)) = limits
        && (a.c as u64) + 64 > soft
    {
        eprintln!("loadgen idle: {} connections need more than the {soft} file descriptors allowed", a.c);
    }
    let Some(pid) = a.common.pid else {
        usage_exit("idle", "--pid is required (the server's process id)");
    };
    eprintln!("loadgen idle: {} C={} parallel={} engine={:?}", a.common.url, a.c, a.parallel, a.common.engine);
    let before = match sys::vm_rss_kib(pid) {
        Ok(v) => v,
        Err(e) => usage_exit("idle", &format!("cannot read the memory of process {pid}: {e}")),
    };
    let started = Instant::now();
    let common = a.common.clone();
    let opening = futures_util::stream::iter(0..a.c)
        .map(|_| idle_conn(&common, &dest))
        .buffer_unordered(a.parallel.max(1))
        .collect::<Vec<_>>();
    let results = match tokio::time::timeout(secs(a.timeout), opening).await {
        Ok(r) => r,
        Err(_) => {
            eprintln!("loadgen idle: opening timed out after {}s", a.timeout);
            Vec::new()
        }
    };
    let open_seconds = started.elapsed().as_secs_f64();
    let mut held = Vec::with_capacity(results.len());
    let mut errors = (a.c - results.len()) as u64;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(pair) => held.push(pair),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    tokio::time::sleep(secs(a.hold)).await;
    let after = sys::vm_rss_kib(pid).unwrap_or(0);
    let client_rss = sys::vm_rss_kib(std::process::id()).unwrap_or(0);
    let opened = held.len();
    drop(held);
    let per_conn = if opened > 0 { (after as f64 - before as f64) / opened as f64 } else { 0.0 };
    if let Some(e) = &first_error {
        eprintln!("loadgen idle: first error: {e}");
    }
    let ok = errors == 0 && opened == a.c;
    let result = json!({
        "mode": "idle",
        "url": a.common.url,
        "engine": format!("{:?}", a.common.engine).to_lowercase(),
        "c": a.c,
        "connections": opened,
        "open_seconds": round(open_seconds, 3),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_conn": round(per_conn, 2),
        "client_rss_kib": client_rss,
        "errors": errors,
        "first_error": first_error,
        "ok": ok,
    });
    (result, ok)
}
