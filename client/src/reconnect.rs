//! The reconnect policy: when an endpoint's socket ends (or an attempt to
//! open it fails), how long to wait before the next attempt, and when to give
//! up.
//!
//! Terms:
//! - an **attempt** is one try to open the socket (TCP, TLS, WebSocket upgrade);
//! - a **retry** is any attempt after the first one, counted from the last
//!   *stable* connection (one that stayed up at least [`Backoff::stable_after`]);
//! - the **delay** before retry `n` comes from [`Backoff::delay`].
//!
//! The default is [`Reconnect::Backoff`] with [`Backoff::default`]: first
//! retry at once, then 100 ms growing 1.5x per retry, each shortened by up to
//! 20% of random jitter, capped at 10 s, never giving up.
//!
//! ```
//! use std::time::Duration;
//! use switchboard_client::{Backoff, Reconnect};
//!
//! let policy = Backoff::default();
//! // Retry 1 is immediate; retry 2 waits 100 ms; retry 3 150 ms (before jitter).
//! assert_eq!(policy.delay(1, 0.0), Duration::ZERO);
//! assert_eq!(policy.delay(2, 0.0), Duration::from_millis(100));
//! assert_eq!(policy.delay(3, 0.0), Duration::from_millis(150));
//! // Far out, the cap holds.
//! assert_eq!(policy.delay(60, 0.0), Duration::from_secs(10));
//!
//! // Give up after 5 retries, never wait more than 2 s:
//! let bounded = Reconnect::Backoff(Backoff { max: Duration::from_secs(2), max_retries: Some(5), ..Backoff::default() });
//! # let _ = bounded;
//! ```

use std::time::Duration;

/// What an endpoint does when its socket ends or an attempt fails.
#[derive(Debug, Clone, PartialEq)]
pub enum Reconnect {
    /// Make one attempt and never another: when the socket ends the endpoint
    /// stays down (state `Closed`), and so does the client if it was the only one.
    Never,
    /// Keep trying with growing, jittered delays (the default).
    Backoff(Backoff),
}

impl Default for Reconnect {
    /// [`Reconnect::Backoff`] with [`Backoff::default`].
    fn default() -> Self {
        Reconnect::Backoff(Backoff::default())
    }
}

/// Exponential backoff with jitter and a cap.
///
/// Out-of-range values are clamped, never rejected: a `factor` below 1 acts
/// as 1, a `jitter` outside `0..=1` is clamped into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Whether the first retry happens at once (default `true`). When false,
    /// the first retry already waits `initial`.
    pub immediate_first: bool,
    /// The first non-zero delay. Default 100 ms.
    pub initial: Duration,
    /// How much each delay grows over the previous one. Default 1.5.
    pub factor: f64,
    /// The longest delay. Default 10 s.
    pub max: Duration,
    /// Each delay is shortened by a random fraction up to this (0 = none,
    /// 1 = anywhere between zero and the full delay), so that many clients
    /// dropped by one restart do not all come back in the same instant.
    /// Default 0.2.
    pub jitter: f64,
    /// Give up after this many retries in a row without a stable connection
    /// (`None`, the default: never give up). A client whose every endpoint gave
    /// up is `Closed`.
    pub max_retries: Option<u32>,
    /// A connection that stayed up at least this long starts the count (and
    /// the delays) afresh; one that dropped sooner does not, so a server that
    /// accepts and drops at once is not hammered. Default 1 s.
    pub stable_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            immediate_first: true,
            initial: Duration::from_millis(100),
            factor: 1.5,
            max: Duration::from_secs(10),
            jitter: 0.2,
            max_retries: None,
            stable_after: Duration::from_secs(1),
        }
    }
}

impl Backoff {
    /// The delay before retry `retry` (1 for the first retry), given `unit`, a
    /// random number in `0..1` (0 gives the delay without jitter).
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let growth_steps = match (self.immediate_first, retry) {
            (_, 0) => return Duration::ZERO,
            (true, 1) => return Duration::ZERO,
            (true, n) => n - 2,
            (false, n) => n - 1,
        };
        let max = self.max.as_secs_f64();
        let factor = if self.factor.is_finite() { self.factor.max(1.0) } else { 1.0 };
        // powi on a big exponent reaches infinity, which `min` folds into the cap.
        let exponent = i32::try_from(growth_steps).unwrap_or(i32::MAX);
        let base = (self.initial.as_secs_f64() * factor.powi(exponent)).min(max);
        let jitter = if self.jitter.is_finite() { self.jitter.clamp(0.0, 1.0) } else { 0.0 };
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
        let secs = (base * (1.0 - jitter * unit)).clamp(0.0, max.max(0.0));
        // Round to whole microseconds so that exact inputs give exact outputs.
        Duration::from_micros((secs * 1e6).round() as u64)
    }
}

/// The retry counter of one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    policy: Reconnect,
    retries: u32,
}

impl Schedule {
    pub(crate) fn new(policy: Reconnect) -> Self {
        Schedule { policy, retries: 0 }
    }

    /// The delay before the next attempt, or `None` to give up.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        match &self.policy {
            Reconnect::Never => None,
            Reconnect::Backoff(backoff) => {
                if backoff.max_retries.is_some_and(|max| self.retries >= max) {
                    return None;
                }
                self.retries = self.retries.saturating_add(1);
                Some(backoff.delay(self.retries, rand::random::<f64>()))
            }
        }
    }

    /// Called when a connection ends after being up for `uptime`.
    pub(crate) fn connection_ended(&mut self, uptime: Duration) {
        if let Reconnect::Backoff(backoff) = &self.policy
            && uptime >= backoff.stable_after
        {
            self.retries = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_retry_is_immediate_then_delays_grow_one_and_a_half_times() {
        let b = Backoff::default();
        let delays: Vec<_> = (1..=6).map(|n| b.delay(n, 0.0)).collect();
        assert_eq!(
            delays,
            vec![
                Duration::ZERO,
                ms(100),
                ms(150),
                ms(225),
                Duration::from_micros(337_500),
                Duration::from_micros(506_250)
            ]
        );
    }

    #[test]
    fn delays_are_capped_at_ten_seconds() {
        let b = Backoff::default();
        assert_eq!(b.delay(14, 0.0), Duration::from_secs(10));
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(10));
    }

    #[test]
    fn jitter_only_shortens_a_delay_and_by_at_most_its_fraction() {
        let b = Backoff::default();
        for unit in [0.0, 0.25, 0.5, 0.999] {
            let d = b.delay(2, unit);
            assert!(d <= ms(100) && d >= ms(80), "{d:?} for {unit}");
        }
        assert_eq!(b.delay(2, 0.5), ms(90));
        let capped = b.delay(100, 0.999);
        assert!(capped <= Duration::from_secs(10) && capped >= Duration::from_secs(8));
    }

    #[test]
    fn without_an_immediate_first_retry_the_first_waits_the_initial_delay() {
        let b = Backoff { immediate_first: false, ..Backoff::default() };
        assert_eq!(b.delay(1, 0.0), ms(100));
        assert_eq!(b.delay(2, 0.0), ms(150));
    }

    #[test]
    fn nonsense_settings_are_clamped_not_panicking() {
        let b = Backoff { factor: f64::NAN, jitter: 7.0, ..Backoff::default() };
        assert_eq!(b.delay(5, 0.0), ms(100));
        assert_eq!(b.delay(5, 1.0), Duration::ZERO);
        let shrinking = Backoff { factor: 0.1, ..Backoff::default() };
        assert_eq!(shrinking.delay(9, 0.0), ms(100));
    }

    #[test]
    fn never_gives_up_at_once() {
        let mut s = Schedule::new(Reconnect::Never);
        assert_eq!(s.next_delay(), None);
    }

    #[test]
    fn max_retries_gives_up_and_a_stable_connection_starts_afresh() {
        let policy = Backoff { max_retries: Some(2), jitter: 0.0, ..Backoff::default() };
        let mut s = Schedule::new(Reconnect::Backoff(policy));
        assert_eq!(s.next_delay(), Some(Duration::ZERO));
        assert_eq!(s.next_delay(), Some(ms(100)));
        assert_eq!(s.next_delay(), None);
        s.connection_ended(Duration::from_secs(5));
        assert_eq!(s.next_delay(), Some(Duration::ZERO));
    }

    #[test]
    fn a_connection_that_drops_at_once_does_not_reset_the_delays() {
        let policy = Backoff { jitter: 0.0, ..Backoff::default() };
        let mut s = Schedule::new(Reconnect::Backoff(policy));
        assert_eq!(s.next_delay(), Some(Duration::ZERO));
        s.connection_ended(ms(10));
        assert_eq!(s.next_delay(), Some(ms(100)));
        s.connection_ended(ms(10));
        assert_eq!(s.next_delay(), Some(ms(150)));
    }

    #[test]
    fn the_default_policy_is_unlimited_backoff() {
        let Reconnect::Backoff(b) = Reconnect::default() else { panic!("default must reconnect") };
        assert_eq!(b.max_retries, None);
        let mut s = Schedule::new(Reconnect::default());
        for _ in 0..10_000 {
            assert!(s.next_delay().is_some());
        }
    }
}
