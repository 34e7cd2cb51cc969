//! The per-connection rate limit: a token bucket over the other side's calls.
//!
//! Terms:
//! - the **bucket** holds up to `burst` tokens and refills at `per_second`
//!   tokens a second; each inbound request or notification (each entry of a
//!   batch) takes one. Responses and `$/cancelRequest` take none;
//! - a call that finds no token is **refused**: a request is answered at once
//!   with -32005 "Rate limited" and `data: {"retry_after_ms": N}` (when the
//!   next token will be there), a notification is dropped; both are counted
//!   ([`PeerHandle::rate_limited`](super::PeerHandle::rate_limited));
//! - **abuse**: `close_after` refusals without the bucket having refilled to
//!   full in between (the client never paused long enough to recover) close
//!   the connection with 1008 "rate limit exceeded".
//!
//! Off by default ([`PeerConfig::rate_limit`](super::PeerConfig::rate_limit)
//! is `None`): the connection then carries one empty pointer for it and each
//! request pays one branch.

use std::time::{Duration, Instant};

/// The close code of a connection closed for abusing its rate limit (1008,
/// "policy violation"), with the reason [`RATE_LIMIT_CLOSE_REASON`].
pub const RATE_LIMIT_CLOSE_CODE: u16 = 1008;

/// The close reason sent with [`RATE_LIMIT_CLOSE_CODE`].
pub const RATE_LIMIT_CLOSE_REASON: &str = "rate limit exceeded";

/// How many calls a second one connection may make: a token bucket.
///
/// ```
/// use switchboard_shared::peer::RateLimit;
/// // 100 calls a second on average, 200 at once after a pause; the 1,000th
/// // refusal in a row closes the connection.
/// let limit = RateLimit::new(100.0, 200).close_after(Some(1_000));
/// assert_eq!(limit.burst, 200);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens the bucket refills with each second (calls per second on
    /// average). Values that are not finite and positive act as 1 a minute.
    pub per_second: f64,
    /// The bucket's size: calls allowed at once after a pause. The minimum is 1.
    pub burst: u32,
    /// Refusals, without the bucket having refilled to full in between,
    /// after which the connection is closed with 1008 "rate limit exceeded".
    /// `None`: never closed for it.
    pub close_after: Option<u32>,
}

/// The refusals that close a connection, unless set otherwise.
pub const DEFAULT_CLOSE_AFTER: u32 = 1_000;

impl RateLimit {
    /// `per_second` calls a second, `burst` at once; closed after
    /// [`DEFAULT_CLOSE_AFTER`] refusals in a row.
    pub fn new(per_second: f64, burst: u32) -> Self {
        RateLimit { per_second, burst, close_after: Some(DEFAULT_CLOSE_AFTER) }
    }

    /// Sets after how many refusals in a row the connection is closed (`None`: never).
    pub fn close_after(mut self, refusals: Option<u32>) -> Self {
        self.close_after = refusals;
        self
    }

    fn rate(&self) -> f64 {
        if self.per_second.is_finite() && self.per_second > 0.0 { self.per_second } else { 1.0 / 60.0 }
    }

    fn size(&self) -> f64 {
        f64::from(self.burst.max(1))
    }
}

/// What the bucket says to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Run it.
    Admit,
    /// Refuse it; the next token comes after this long.
    Refuse(Duration),
    /// Refuse it, and close the connection: it reached `close_after`.
    RefuseAndClose(Duration),
    /// The connection is closing for abuse: ignore it, answer nothing.
    Ignore,
}

/// One connection's bucket (lives in its task: no atomics).
#[derive(Debug)]
pub(crate) struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
    /// Refusals since the bucket was last full.
    refused: u32,
    /// Set once `close_after` was reached.
    closing: bool,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        Bucket { tokens: limit.size(), limit, last: now, refused: 0, closing: false }
    }

    /// Takes a token for one call arriving at `now`.
    pub(crate) fn take(&mut self, now: Instant) -> Verdict {
        if self.closing {
            return Verdict::Ignore;
        }
        let (rate, size) = (self.limit.rate(), self.limit.size());
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(size);
        if self.tokens >= size {
            // The client paused long enough to recover: its past is forgiven.
            self.refused = 0;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Admit;
        }
        let wait = Duration::from_nanos(((1.0 - self.tokens) / rate * 1e9).ceil().min(1e18) as u64);
        self.refused = self.refused.saturating_add(1);
        match self.limit.close_after {
            Some(limit) if self.refused >= limit => {
                self.closing = true;
                Verdict::RefuseAndClose(wait)
            }
            _ => Verdict::Refuse(wait),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_admitted_then_calls_are_refused_with_the_wait() {
        let start = Instant::now();
        let mut bucket = Bucket::new(RateLimit::new(10.0, 3).close_after(None), start);
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Verdict::Admit);
        }
        assert_eq!(bucket.take(start), Verdict::Refuse(Duration::from_millis(100)));
        // A tenth of a second later one token is back.
        let later = start + Duration::from_millis(100);
        assert_eq!(bucket.take(later), Verdict::Admit);
        assert!(matches!(bucket.take(later), Verdict::Refuse(_)));
    }

    #[test]
    fn refusals_in_a_row_close_and_a_full_bucket_forgives_them() {
        let start = Instant::now();
        let mut bucket = Bucket::new(RateLimit::new(1.0, 1).close_after(Some(3)), start);
        assert_eq!(bucket.take(start), Verdict::Admit);
        assert!(matches!(bucket.take(start), Verdict::Refuse(_)));
        assert!(matches!(bucket.take(start), Verdict::Refuse(_)));
        // Full again after a second: the count starts afresh.
        let later = start + Duration::from_secs(1);
        assert_eq!(bucket.take(later), Verdict::Admit);
        assert!(matches!(bucket.take(later), Verdict::Refuse(_)));
        assert!(matches!(bucket.take(later), Verdict::Refuse(_)));
        assert!(matches!(bucket.take(later), Verdict::RefuseAndClose(_)));
        assert_eq!(bucket.take(later + Duration::from_secs(10)), Verdict::Ignore);
    }

    #[test]
    fn nonsense_settings_still_limit() {
        let start = Instant::now();
        let mut bucket = Bucket::new(RateLimit { per_second: f64::NAN, burst: 0, close_after: None }, start);
        assert_eq!(bucket.take(start), Verdict::Admit);
        assert!(matches!(bucket.take(start), Verdict::Refuse(wait) if wait == Duration::from_secs(60)));
    }
}
