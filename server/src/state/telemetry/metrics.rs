//! The server's Prometheus metrics (cargo feature `metrics`), in a registry
//! of its own (prometheus-client): every server counts only its own
//! traffic, so several servers in one process (or tests running in
//! parallel) never see each other's counts, and no global recorder has to
//! be installed.
//!
//! Terms:
//! - a **cell** holds what one method of one direction counts on every
//!   call: its `ok` and `notification` counters, resolved once, and its
//!   latency histogram (lock-free, see `histogram.rs`). Incoming cells are
//!   made for the registered methods when the server is built, laid out by
//!   the methods' index (see `switchboard_shared::methods`); every other
//!   incoming name shares the `other` cell. Outgoing cells are made for the
//!   first [`MAX_OUTGOING_METHODS`] names called, then `other`;
//! - **live** values (open connections, calls in flight, the queue of each
//!   connection) are read from the registry of connections at scrape time,
//!   so they cost the hot path nothing.
//!
//! A call with a cell already made costs: finding its cell (for an
//! incoming call, a `Vec` read at the index the engine reports, no name
//! hashed; for an outgoing one, a hash-map lookup of its method, FxHash,
//! under a read lock), the histogram's two atomic additions, and one
//! counter's (a family lookup under a read lock only for errors and the
//! rarer outcomes).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder};
use prometheus_client::encoding::{NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use rustc_hash::FxHashMap;
use switchboard_shared::peer::{CallEvent, Direction, FlowEvent, Outcome};

use crate::config::telemetry::{MAX_ERROR_CODES, MAX_OUTGOING_METHODS, OTHER};
use crate::state::telemetry::histogram::{Latency, Snapshot};
use crate::state::telemetry::{BrokerOperation, HandshakeRefusal, Live, MethodStats};

/// The `Content-Type` of what [`Metrics::encode`] writes (Prometheus text 0.0.4).
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds, in bytes, of the buckets of the outbound-queue histogram.
const QUEUE_BOUNDS: [f64; 9] = [0.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    direction: &'static str,
    method: Arc<str>,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    direction: &'static str,
    method: Arc<str>,
    code: Code,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    direction: &'static str,
    method: Arc<str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabel {
    policy: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecoveredLabel {
    recovered: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// An error code's label: the code, or `other` past [`MAX_ERROR_CODES`].
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
enum Code {
    Known(i64),
    Other,
}

impl EncodeLabelValue for Code {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        match self {
            Code::Known(code) => EncodeLabelValue::encode(code, encoder),
            Code::Other => EncodeLabelValue::encode(&OTHER, encoder),
        }
    }
}

/// What one method of one direction counts.
#[derive(Debug)]
struct Cell {
    direction: Direction,
    method: Arc<str>,
    ok: Counter,
    notifications: Counter,
    latency: Latency,
}

impl Cell {
    fn new(calls: &Family<CallLabels, Counter>, direction: Direction, method: Arc<str>) -> Arc<Cell> {
        let labels = |outcome: Outcome| CallLabels {
            direction: direction.as_str(),
            method: Arc::clone(&method),
            outcome: outcome.as_str(),
        };
        let ok = calls.get_or_create_owned(&labels(Outcome::Ok));
        // Only incoming calls can be notifications: no empty series for the other direction.
        let notifications = match direction {
            Direction::Incoming => calls.get_or_create_owned(&labels(Outcome::Notification)),
            _ => Counter::default(),
        };
        Arc::new(Cell { direction, method, ok, notifications, latency: Latency::default() })
    }

    fn labels(&self) -> MethodLabels {
        MethodLabels { direction: self.direction.as_str(), method: Arc::clone(&self.method) }
    }
}

/// Every cell, by direction and method.
#[derive(Debug)]
struct Cells {
    calls: Family<CallLabels, Counter>,
    // By method index: read on every incoming call without hashing its name.
    // A method named `other` has the `other` cell.
    incoming: OnceLock<Vec<Arc<Cell>>>,
    other_incoming: Arc<Cell>,
    // Looked up on every outgoing call: a fast hash. The keys are at most
    // MAX_OUTGOING_METHODS names: nothing to flood.
    outgoing: RwLock<FxHashMap<Box<str>, Arc<Cell>>>,
    other_outgoing: Arc<Cell>,
}

impl Cells {
    fn new(calls: Family<CallLabels, Counter>) -> Self {
        let other_incoming = Cell::new(&calls, Direction::Incoming, Arc::from(OTHER));
        let other_outgoing = Cell::new(&calls, Direction::Outgoing, Arc::from(OTHER));
        Cells { calls, incoming: OnceLock::new(), other_incoming, outgoing: RwLock::default(), other_outgoing }
    }

    /// The cell of an incoming call of the method at `index` (see
    /// `CallEvent::method_index`), or `other` for a method the server does
    /// not have.
    fn incoming(&self, index: Option<usize>) -> &Cell {
        index.and_then(|at| self.incoming.get()?.get(at)).unwrap_or(&self.other_incoming)
    }

    /// The cell of an outgoing call, made for a new name while there is room.
    fn outgoing(&self, method: &str) -> Arc<Cell> {
        if let Some(cell) = self.outgoing.read().get(method) {
            return Arc::clone(cell);
        }
        let mut cells = self.outgoing.write();
        if let Some(cell) = cells.get(method) {
            return Arc::clone(cell);
        }
        if cells.len() >= MAX_OUTGOING_METHODS || method == OTHER {
            return Arc::clone(&self.other_outgoing);
        }
        let cell = Cell::new(&self.calls, Direction::Outgoing, Arc::from(method));
        cells.insert(method.into(), Arc::clone(&cell));
        cell
    }

    /// Every cell, incoming first, each direction sorted by method, `other` last.
    fn all(&self) -> Vec<Arc<Cell>> {
        let mut incoming: Vec<_> = self
            .incoming
            .get()
            .into_iter()
            .flatten()
            .filter(|cell| !Arc::ptr_eq(cell, &self.other_incoming))
            .cloned()
            .collect();
        incoming.sort_by(|a, b| a.method.cmp(&b.method));
        let mut outgoing: Vec<_> = self.outgoing.read().values().cloned().collect();
        outgoing.sort_by(|a, b| a.method.cmp(&b.method));
        incoming.push(Arc::clone(&self.other_incoming));
        outgoing.push(Arc::clone(&self.other_outgoing));
        incoming.extend(outgoing);
        incoming
    }
}

/// The call-latency histograms of every cell, encoded as one family.
#[derive(Debug)]
struct LatencyFamily(Arc<Cells>);

impl EncodeMetric for LatencyFamily {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        for cell in self.0.all() {
            let snapshot = cell.latency.snapshot();
            let labels = cell.labels();
            let mut histogram = encoder.encode_family(&labels)?;
            encode_histogram(&mut histogram, &snapshot)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// One latency histogram without labels.
#[derive(Debug, Default, Clone)]
struct SharedLatency(Arc<Latency>);

impl EncodeMetric for SharedLatency {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encode_histogram(&mut encoder, &self.0.snapshot())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// A histogram computed at scrape time (the outbound queues across connections).
#[derive(Debug, Clone)]
struct Frozen(Arc<Mutex<Snapshot>>);

impl EncodeMetric for Frozen {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encode_histogram(&mut encoder, &self.0.lock())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn encode_histogram(encoder: &mut MetricEncoder<'_>, snapshot: &Snapshot) -> Result<(), std::fmt::Error> {
    encoder.encode_histogram::<NoLabelSet>(snapshot.sum_seconds, snapshot.count, &snapshot.buckets, None)
}

/// A server's metrics and the registry that exports them.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// One scrape at a time: the live values are set, then encoded.
    scrape: Mutex<()>,
    cells: Arc<Cells>,
    errors: Family<ErrorLabels, Counter>,
    codes: RwLock<HashSet<i64>>,
    started: Instant,
    start_time: Gauge<f64, std::sync::atomic::AtomicU64>,
    uptime: Gauge<f64, std::sync::atomic::AtomicU64>,
    connections: Gauge,
    connections_opened: Counter,
    connections_closed: Family<ReasonLabel, Counter>,
    handshakes_accepted: Counter,
    handshakes_refused: Family<ReasonLabel, Counter>,
    in_flight: Family<DirectionLabel, Gauge>,
    parked: Counter,
    refused: Family<ReasonLabel, Counter>,
    dropped: Family<ReasonLabel, Counter>,
    queues: Frozen,
    publications: Counter,
    deliveries: Counter,
    shed: Family<PolicyLabel, Counter>,
    resumed: Family<RecoveredLabel, Counter>,
    replayed: Counter,
    broker_publish: SharedLatency,
    broker_errors: Family<OperationLabel, Counter>,
    broker_reconnects: Counter,
}

impl Metrics {
    /// The metrics, unless the settings turn them off.
    pub(crate) fn new(settings: &crate::config::telemetry::Telemetry) -> Option<Self> {
        (settings.metrics == crate::config::telemetry::Metrics::On).then(Metrics::build)
    }

    fn build() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let calls = Family::<CallLabels, Counter>::default();
        let cells = Arc::new(Cells::new(calls.clone()));
        let metrics = Metrics {
            registry: Registry::default(),
            scrape: Mutex::new(()),
            cells: Arc::clone(&cells),
            errors: Family::default(),
            codes: RwLock::default(),
            started: Instant::now(),
            start_time: Gauge::default(),
            uptime: Gauge::default(),
            connections: Gauge::default(),
            connections_opened: Counter::default(),
            connections_closed: Family::default(),
            handshakes_accepted: Counter::default(),
            handshakes_refused: Family::default(),
            in_flight: Family::default(),
            parked: Counter::default(),
            refused: Family::default(),
            dropped: Family::default(),
            queues: Frozen(Arc::new(Mutex::new(queue_snapshot(std::iter::empty())))),
            publications: Counter::default(),
            deliveries: Counter::default(),
            shed: Family::default(),
            resumed: Family::default(),
            replayed: Counter::default(),
            broker_publish: SharedLatency::default(),
            broker_errors: Family::default(),
            broker_reconnects: Counter::default(),
        };
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        metrics.start_time.set(since_epoch.as_secs_f64());
        let m = &metrics;
        let r = &mut registry;
        r.register(
            "build",
            "The Switchboard server's version",
            Info::new(VersionLabel { version: env!("CARGO_PKG_VERSION") }),
        );
        r.register(
            "start_time_seconds",
            "When the server was built, in seconds since the Unix epoch",
            m.start_time.clone(),
        );
        r.register("uptime_seconds", "Seconds since the server was built", m.uptime.clone());
        r.register("connections", "Connections open now", m.connections.clone());
        r.register("connections_opened", "Connections upgraded and registered", m.connections_opened.clone());
        r.register(
            "connections_closed",
            "Connections ended, by reason: remote, local, shutdown, slow_consumer (its outbound queue reached the bound), message_too_big, idle_timeout, transport",
            m.connections_closed.clone(),
        );
        r.register(
            "handshakes_accepted",
            "Upgrade requests that passed every admission check",
            m.handshakes_accepted.clone(),
        );
        r.register(
            "handshakes_refused",
            "Upgrade requests refused before the upgrade, by reason: origin, auth, auth_timeout, limit, shutting_down, timeout, invalid",
            m.handshakes_refused.clone(),
        );
        r.register(
            "calls",
            "Calls that ended, by direction (incoming: clients called the server), method (unknown names: other) and outcome (ok, error, notification, timeout, disconnected, cancelled, failed)",
            calls,
        );
        r.register(
            "call_errors",
            "Calls answered with an error object, by direction, method and error code",
            m.errors.clone(),
        );
        r.register(
            "call_duration_seconds",
            "Call latency by direction and method: incoming from the handler's start to its answer being queued, outgoing from sending to the reply",
            LatencyFamily(cells),
        );
        r.register(
            "calls_in_flight",
            "Calls running now: incoming handlers waiting, outgoing calls awaiting their reply",
            m.in_flight.clone(),
        );
        r.register(
            "requests_parked",
            "Requests (or batches) parked because max_in_flight handlers were running",
            m.parked.clone(),
        );
        r.register(
            "requests_refused",
            "Requests answered at once instead of run, by reason: busy (-32002), shutting_down (-32000), batch_too_long (-32600)",
            m.refused.clone(),
        );
        r.register(
            "notifications_dropped",
            "Notifications dropped instead of run, by reason (as for requests_refused)",
            m.dropped.clone(),
        );
        r.register(
            "outbound_queue_bytes",
            "Bytes waiting in each open connection's outbound queue, at scrape time",
            m.queues.clone(),
        );
        r.register(
            "publications",
            "Publications this server's fan-out received from its broker (from any server of a cluster)",
            m.publications.clone(),
        );
        r.register(
            "publication_deliveries",
            "Publications queued for a subscriber on this server (one per subscriber)",
            m.deliveries.clone(),
        );
        r.register(
            "publications_shed",
            "Publications dropped from a full outbound queue by their topic's slow-consumer policy (drop_oldest, latest_per_key)",
            m.shed.clone(),
        );
        r.register(
            "subscriptions_resumed",
            "Positioned subscriptions that gave `since`, by whether every missed publication was recovered",
            m.resumed.clone(),
        );
        r.register("replayed_publications", "Missed publications replayed to resuming subscribers", m.replayed.clone());
        r.register(
            "broker_publish_duration_seconds",
            "How long the broker took to publish (as the broker reports it)",
            m.broker_publish.clone(),
        );
        r.register("broker_errors", "Broker operations that failed, by operation", m.broker_errors.clone());
        r.register("broker_reconnects", "Times the broker reconnected to its backend", m.broker_reconnects.clone());
        Metrics { registry, ..metrics }
    }

    /// Makes the cells of the methods the server has (once, at build),
    /// `names` in the order of their index.
    pub(crate) fn know_methods<'a>(&self, names: impl Iterator<Item = &'a str>) {
        let cells = names
            .map(|name| match name {
                OTHER => Arc::clone(&self.cells.other_incoming),
                name => Cell::new(&self.cells.calls, Direction::Incoming, Arc::from(name)),
            })
            .collect();
        let _ = self.cells.incoming.set(cells);
    }

    pub(crate) fn call(&self, event: &CallEvent<'_>) {
        let outgoing;
        let cell = match event.direction {
            Direction::Incoming => {
                let cell = self.cells.incoming(event.method_index);
                // The index is into the methods this server was built with.
                debug_assert!(
                    event.method_index.is_none() || *cell.method == *event.method,
                    "method index {:?} of {:?} is {:?} here",
                    event.method_index,
                    event.method,
                    cell.method
                );
                cell
            }
            _ => {
                outgoing = self.cells.outgoing(event.method);
                &outgoing
            }
        };
        cell.latency.observe(event.duration);
        match event.outcome {
            Outcome::Ok => cell.ok.inc(),
            Outcome::Notification => cell.notifications.inc(),
            outcome => {
                let direction = event.direction.as_str();
                let method = Arc::clone(&cell.method);
                if let Some(code) = outcome.code() {
                    let code = self.code(code);
                    self.errors.get_or_create(&ErrorLabels { direction, method: Arc::clone(&method), code }).inc();
                }
                self.cells.calls.get_or_create(&CallLabels { direction, method, outcome: outcome.as_str() }).inc()
            }
        };
    }

    /// The label of an error code, within [`MAX_ERROR_CODES`].
    fn code(&self, code: i64) -> Code {
        if self.codes.read().contains(&code) {
            return Code::Known(code);
        }
        let mut codes = self.codes.write();
        if codes.len() < MAX_ERROR_CODES {
            codes.insert(code);
        }
        if codes.contains(&code) { Code::Known(code) } else { Code::Other }
    }

    pub(crate) fn flow(&self, event: FlowEvent<'_>) {
        match event {
            FlowEvent::Parked => {
                self.parked.inc();
            }
            FlowEvent::Refused(code) => {
                self.refused.get_or_create(&ReasonLabel { reason: refusal_reason(code) }).inc();
            }
            FlowEvent::Dropped(code) => {
                self.dropped.get_or_create(&ReasonLabel { reason: refusal_reason(code) }).inc();
            }
            FlowEvent::Shed { count, .. } => {
                let policy = event.shed_policy().unwrap_or(OTHER);
                self.shed.get_or_create(&PolicyLabel { policy }).inc_by(count as u64);
            }
            _ => {}
        }
    }

    pub(crate) fn handshake_accepted(&self) {
        self.handshakes_accepted.inc();
    }

    pub(crate) fn handshake_refused(&self, reason: HandshakeRefusal) {
        self.handshakes_refused.get_or_create(&ReasonLabel { reason: reason.as_str() }).inc();
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_opened.inc();
    }

    pub(crate) fn connection_closed(&self, reason: &'static str) {
        self.connections_closed.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn publication(&self, subscribers: usize) {
        self.publications.inc();
        self.deliveries.inc_by(subscribers as u64);
    }

    pub(crate) fn resumed(&self, recovered: bool, replayed: usize) {
        let recovered = if recovered { "true" } else { "false" };
        self.resumed.get_or_create(&RecoveredLabel { recovered }).inc();
        self.replayed.inc_by(replayed as u64);
    }

    pub(crate) fn broker_publish(&self, took: Duration) {
        self.broker_publish.0.observe(took);
    }

    pub(crate) fn broker_error(&self, operation: BrokerOperation) {
        self.broker_errors.get_or_create(&OperationLabel { operation: operation.as_str() }).inc();
    }

    pub(crate) fn broker_reconnect(&self) {
        self.broker_reconnects.inc();
    }

    /// The Prometheus text of every metric, the live ones read now.
    pub(crate) fn encode(&self, live: &Live) -> String {
        let _one_at_a_time = self.scrape.lock();
        self.uptime.set(self.started.elapsed().as_secs_f64());
        self.connections.set(i64::try_from(live.connections).unwrap_or(i64::MAX));
        let gauge = |direction: Direction, value: usize| {
            let labels = DirectionLabel { direction: direction.as_str() };
            self.in_flight.get_or_create(&labels).set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        gauge(Direction::Incoming, live.in_flight_incoming);
        gauge(Direction::Outgoing, live.in_flight_outgoing);
        *self.queues.0.lock() = queue_snapshot(live.queued_bytes.iter().copied());
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// Counts and latency quantiles of every method, both directions.
    pub(crate) fn method_stats(&self) -> Vec<MethodStats> {
        self.cells
            .all()
            .into_iter()
            .map(|cell| {
                let snapshot = cell.latency.snapshot();
                let answered = cell.ok.get() + cell.notifications.get();
                MethodStats {
                    direction: cell.direction,
                    method: cell.method.to_string(),
                    calls: snapshot.count,
                    errors: snapshot.count.saturating_sub(answered),
                    p50: snapshot.quantile(0.5),
                    p99: snapshot.quantile(0.99),
                }
            })
            .collect()
    }

    /// The cell of the incoming calls of `method` (for tests).
    #[cfg(test)]
    fn incoming_named(&self, method: &str) -> Arc<Cell> {
        let mut cells = self.cells.incoming.get().into_iter().flatten();
        cells.find(|cell| *cell.method == *method).cloned().unwrap_or_else(|| Arc::clone(&self.cells.other_incoming))
    }
}

/// The reason label of a refusal by its error code.
fn refusal_reason(code: i64) -> &'static str {
    use switchboard_shared::code;
    match code {
        code::SERVER_BUSY => "busy",
        code::SHUTTING_DOWN => "shutting_down",
        code::INVALID_REQUEST => "batch_too_long",
        _ => OTHER,
    }
}

/// The histogram of the outbound queues' sizes.
fn queue_snapshot(sizes: impl Iterator<Item = usize>) -> Snapshot {
    let mut counts = [0u64; QUEUE_BOUNDS.len() + 1];
    let (mut count, mut sum) = (0u64, 0f64);
    for size in sizes {
        let at = QUEUE_BOUNDS.partition_point(|&bound| bound < size as f64);
        counts[at] += 1;
        count += 1;
        sum += size as f64;
    }
    let buckets =
        counts.iter().enumerate().map(|(at, &n)| (QUEUE_BOUNDS.get(at).copied().unwrap_or(f64::INFINITY), n)).collect();
    // The byte sizes go in the `_sum` that `encode_histogram` writes in seconds' place.
    Snapshot { buckets, count, sum_seconds: sum }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_methods_are_labels_at_their_index_and_every_other_call_is_other() {
        let metrics = Metrics::build();
        metrics.know_methods(["add", "other", "echo"].into_iter());
        assert_eq!(metrics.cells.incoming(Some(0)).method.as_ref(), "add");
        assert_eq!(metrics.cells.incoming(Some(2)).method.as_ref(), "echo");
        assert_eq!(metrics.cells.incoming(None).method.as_ref(), OTHER);
        assert_eq!(metrics.incoming_named("add").latency.count(), 0);
        // A method named `other` shares the cell of every unknown name, listed once.
        assert!(std::ptr::eq(metrics.cells.incoming(Some(1)), metrics.cells.incoming(None)));
        let incoming: Vec<_> = metrics
            .cells
            .all()
            .iter()
            .filter(|c| c.direction == Direction::Incoming)
            .map(|c| c.method.to_string())
            .collect();
        assert_eq!(incoming, ["add", "echo", OTHER]);
    }

    #[test]
    fn outgoing_names_and_error_codes_are_bounded() {
        let metrics = Metrics::build();
        for n in 0..MAX_OUTGOING_METHODS + 10 {
            metrics.cells.outgoing(&format!("m{n}"));
        }
        assert_eq!(metrics.cells.outgoing.read().len(), MAX_OUTGOING_METHODS);
        assert_eq!(metrics.cells.outgoing("m9999").method.as_ref(), OTHER);
        for code in 0..MAX_ERROR_CODES as i64 {
            assert_eq!(metrics.code(code), Code::Known(code));
        }
        assert_eq!(metrics.code(-1), Code::Other);
        assert_eq!(metrics.code(0), Code::Known(0));
    }

    #[test]
    fn queue_sizes_fall_into_byte_buckets() {
        let snapshot = queue_snapshot([0, 0, 500, 5000, 100 << 20].into_iter());
        assert_eq!(snapshot.buckets[0], (0.0, 2));
        assert_eq!(snapshot.buckets[1], (1024.0, 1));
        assert_eq!(snapshot.buckets[3], (16384.0, 1));
        assert_eq!(snapshot.buckets.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(snapshot.count, 5);
    }
}

#[cfg(test)]
mod dashboard {
    use std::collections::BTreeSet;

    use super::*;

    /// Counts one event of every kind, so that every family has a series.
    fn touched() -> Metrics {
        let metrics = Metrics::build();
        metrics.know_methods(["add"].into_iter());
        let code = metrics.code(42);
        let method = Arc::from("add");
        metrics.errors.get_or_create(&ErrorLabels { direction: "incoming", method, code }).inc();
        metrics.handshake_accepted();
        metrics.handshake_refused(HandshakeRefusal::Origin);
        metrics.connection_opened();
        metrics.connection_closed("slow_consumer");
        metrics.flow(FlowEvent::Parked);
        metrics.flow(FlowEvent::Refused(-32002));
        metrics.flow(FlowEvent::Dropped(-32002));
        let tag = switchboard_shared::Sheddable { topic: Arc::from("t"), shed: switchboard_shared::Shed::DropOldest };
        metrics.flow(FlowEvent::Shed { tag: &tag, count: 1 });
        metrics.publication(1);
        metrics.resumed(false, 0);
        metrics.broker_publish(Duration::from_millis(1));
        metrics.broker_error(BrokerOperation::Publish);
        metrics.broker_reconnect();
        metrics
    }

    #[test]
    fn every_metric_the_grafana_dashboard_charts_is_exported() {
        let text = touched().encode(&Live { queued_bytes: vec![0], ..Live::default() });
        let exported: BTreeSet<&str> =
            text.lines().filter_map(|line| line.strip_prefix("# TYPE ")).filter_map(|t| t.split(' ').next()).collect();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grafana-dashboard.json");
        let dashboard = std::fs::read_to_string(path).expect("docs/grafana-dashboard.json");
        let _: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
        let charted: BTreeSet<&str> = dashboard
            .match_indices("switchboard_")
            .map(|(at, _)| {
                let name = &dashboard[at..];
                &name[..name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(name.len())]
            })
            .map(|name| {
                ["_bucket", "_sum", "_count"].iter().fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n))
            })
            .collect();
        assert!(charted.len() >= 20, "{charted:?}");
        let missing: Vec<_> = charted.difference(&exported).collect();
        assert!(missing.is_empty(), "charted but not exported: {missing:?}\nexported: {exported:?}");
    }
}
