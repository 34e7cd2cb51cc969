//! A latency histogram that calls record into without a lock: fixed
//! buckets, one atomic counter each. It is written on every call, so it
//! must cost little on the hot path (two relaxed atomic additions and a
//! scan of the bounds from the lowest, where most calls land: one
//! comparison for a call under 50 µs; prometheus-client's own histogram
//! takes a mutex), and it is read back for quantiles (the dashboard's
//! p99). The count is the buckets' total, read at scrape time.
//!
//! Terms: a **bucket** counts the observations at most its upper **bound**
//! and above the previous one; the last bucket has no bound (`+Inf`).
//! prometheus-client's encoder makes the counts cumulative, as Prometheus
//! wants them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the call-latency buckets, in microseconds: 50 µs to 10 s.
pub(crate) const LATENCY_BOUNDS_US: [u64; 17] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// [`LATENCY_BOUNDS_US`] in nanoseconds, what durations are compared with.
const LATENCY_BOUNDS_NS: [u64; LATENCY_BOUNDS_US.len()] = {
    let mut ns = [0; LATENCY_BOUNDS_US.len()];
    let mut at = 0;
    while at < ns.len() {
        ns[at] = LATENCY_BOUNDS_US[at] * 1_000;
        at += 1;
    }
    ns
};

/// A histogram of durations over [`LATENCY_BOUNDS_US`].
#[derive(Debug, Default)]
pub(crate) struct Latency {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
}

/// What a histogram held at one moment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    /// `(upper bound in seconds, count in this bucket)`, the last one `+Inf`.
    pub(crate) buckets: Vec<(f64, u64)>,
    pub(crate) count: u64,
    pub(crate) sum_seconds: f64,
}

impl Latency {
    /// Records one duration.
    pub(crate) fn observe(&self, duration: Duration) {
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        // Most calls are fast: counting up from the lowest bound beats a binary search.
        let at = LATENCY_BOUNDS_NS.iter().position(|&bound| ns <= bound).unwrap_or(LATENCY_BOUNDS_NS.len());
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// How many durations were recorded.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().map(|bucket| bucket.load(Ordering::Relaxed)).sum()
    }

    /// The buckets, read now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut count = 0;
        let mut buckets = Vec::with_capacity(LATENCY_BOUNDS_US.len() + 1);
        for (at, bucket) in self.buckets.iter().enumerate() {
            let n = bucket.load(Ordering::Relaxed);
            count += n;
            buckets.push((LATENCY_BOUNDS_US.get(at).map_or(f64::INFINITY, |&us| us as f64 / 1e6), n));
        }
        // The count is the buckets' total, so the two always agree in one scrape.
        Snapshot { buckets, count, sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9 }
    }
}

impl Snapshot {
    /// The `q` quantile (0..=1), interpolated within its bucket as
    /// Prometheus's `histogram_quantile` does; the highest finite bound when
    /// it falls in `+Inf`; `None` without observations.
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * self.count as f64;
        let (mut lower, mut below) = (0.0, 0u64);
        for &(upper, in_bucket) in &self.buckets {
            let cumulative = below + in_bucket;
            if cumulative as f64 >= rank && cumulative > below {
                if upper.is_infinite() {
                    return Some(Duration::from_secs_f64(lower));
                }
                let share = (rank - below as f64) / (cumulative - below) as f64;
                return Some(Duration::from_secs_f64(lower + (upper - lower) * share.clamp(0.0, 1.0)));
            }
            (lower, below) = (if upper.is_finite() { upper } else { lower }, cumulative);
        }
        Some(Duration::from_secs_f64(lower))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_bucket_of_the_first_bound_they_do_not_exceed() {
        let latency = Latency::default();
        latency.observe(Duration::from_micros(50));
        latency.observe(Duration::from_micros(51));
        latency.observe(Duration::from_nanos(100_001));
        latency.observe(Duration::from_secs(60));
        let snapshot = latency.snapshot();
        assert_eq!(snapshot.buckets[0], (50e-6, 1));
        assert_eq!(snapshot.buckets[1], (100e-6, 1));
        // Over a bound by a nanosecond is over it.
        assert_eq!(snapshot.buckets[2], (250e-6, 1));
        assert_eq!(snapshot.buckets.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(snapshot.count, 4);
        assert!((snapshot.sum_seconds - 60.000201001).abs() < 1e-9);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let latency = Latency::default();
        for _ in 0..100 {
            latency.observe(Duration::from_micros(700));
        }
        let snapshot = latency.snapshot();
        // All in (500 µs, 1 ms]: the median is half-way, p99 near the top.
        let micros = |q| snapshot.quantile(q).map(|d| d.as_secs_f64() * 1e6).expect("observations");
        assert!((micros(0.5) - 750.0).abs() < 0.01, "{}", micros(0.5));
        assert!((micros(0.99) - 995.0).abs() < 0.01, "{}", micros(0.99));
        assert_eq!(Latency::default().snapshot().quantile(0.99), None);
    }
}
