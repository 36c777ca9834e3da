//! The partial records of a replica in `alerts.role: agent` (docs/SCALING.md), on their way to
//! the aggregator: kept in order, sent one request at a time, resent until the aggregator
//! answers 2xx.
//!
//! Why one request at a time: the aggregator closes a period when every agent's watermark has
//! passed it, so a watermark must never arrive before the partials sent ahead of it (with
//! several callouts in flight, Envoy's POSTs overtake each other). Why resend: a partial lost on
//! the way loses the alerts it completes, and an aggregator that restarts answers nothing for a
//! while. A record resent after a lost answer is merged once (the aggregator drops steps it
//! already has), so at-least-once delivery is exact.
//!
//! A request carries the oldest records in one JSON object, `{"kaudit_partials":[…]}`, with
//! `content-type: application/json`: the record a Fluent Bit agent forwards, which the
//! aggregator Fluent Bit's `http` input takes as one record (plugins/fluent-bit/README.md) and
//! `Pipeline::merge_partials` merges. Each record names its agent (`agent`).
//!
//! Pure (no Envoy calls): the filter's root context asks for the next body, sends it, and
//! reports the answer; unit-tested natively.

use std::collections::VecDeque;

// The key the records travel under: the Fluent Bit agents' carrier key.
use kaudit::PARTIALS_KEY as KEY;

/// Most bytes of records in one request (a record is about 100 B to a few KB).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most bytes of records held while the aggregator does not take them; beyond it the oldest
/// are dropped (and counted): an aggregator down that long has lost its own windows anyway.
pub const MAX_PENDING_BYTES: usize = 32 << 20;
/// The first retry waits this long; each failure doubles it up to [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: u64 = 500;
pub const MAX_BACKOFF_MS: u64 = 8_000;

/// Partial and watermark records waiting for the aggregator.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: VecDeque<String>,
    pending_bytes: usize,
    /// The request in flight: its id and how many of the oldest records it carries.
    in_flight: Option<(u32, usize)>,
    /// No new attempt before this time (after a failure).
    retry_at_ms: u64,
    backoff_ms: u64,
    /// Records dropped at [`MAX_PENDING_BYTES`] since the last [`Outbox::take_dropped`].
    dropped: u64,
}

/// A request to send: the body and how many records it holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub body: String,
    pub records: usize,
}

impl Outbox {
    /// Queues records (in the order the pipeline emitted them).
    pub fn push(&mut self, records: impl IntoIterator<Item = String>) {
        for r in records {
            self.pending_bytes += r.len();
            self.pending.push_back(r);
        }
        // Drop the oldest beyond the cap, but never the records of the request in flight.
        let keep = self.in_flight.map_or(0, |(_, n)| n);
        while self.pending_bytes > MAX_PENDING_BYTES && self.pending.len() > keep {
            let Some(r) = self.pending.remove(keep) else { break };
            self.pending_bytes -= r.len();
            self.dropped += 1;
        }
    }

    /// The next request, when none is in flight, something waits and no backoff is running.
    /// The caller sends it and reports [`Outbox::sent`] (or [`Outbox::answered`] with `false`
    /// when it could not be sent).
    pub fn next(&self, now_ms: u64) -> Option<Request> {
        if self.in_flight.is_some() || self.pending.is_empty() || now_ms < self.retry_at_ms {
            return None;
        }
        let mut body = String::with_capacity(64);
        body.push_str("{\"");
        body.push_str(KEY);
        body.push_str("\":[");
        let mut records = 0;
        for r in &self.pending {
            if records > 0 && body.len() + r.len() > MAX_BODY_BYTES {
                break;
            }
            if records > 0 {
                body.push(',');
            }
            body.push_str(r);
            records += 1;
        }
        body.push_str("]}");
        Some(Request { body, records })
    }

    /// The request of `records` records went out as callout `token`.
    pub fn sent(&mut self, token: u32, records: usize) {
        self.in_flight = Some((token, records));
    }

    /// Whether `token` is this outbox's request.
    pub fn owns(&self, token: u32) -> bool {
        self.in_flight.is_some_and(|(t, _)| t == token)
    }

    /// The answer to the request in flight (or a request that could not be sent): on success
    /// its records are done; otherwise they stay first in line and the next attempt waits.
    /// Returns the number of records delivered.
    pub fn answered(&mut self, ok: bool, now_ms: u64) -> usize {
        let n = self.in_flight.take().map_or(0, |(_, n)| n);
        if ok {
            for r in self.pending.drain(..n.min(self.pending.len())) {
                self.pending_bytes -= r.len();
            }
            self.backoff_ms = 0;
            self.retry_at_ms = 0;
            n
        } else {
            self.backoff_ms =
                if self.backoff_ms == 0 { FIRST_BACKOFF_MS } else { (self.backoff_ms * 2).min(MAX_BACKOFF_MS) };
            self.retry_at_ms = now_ms + self.backoff_ms;
            0
        }
    }

    /// Records waiting (including those in flight).
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Records dropped at the cap since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(body: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(body).expect("one JSON object");
        v[KEY].as_array().expect("a list").iter().map(|r| r["n"].to_string()).collect()
    }

    #[test]
    fn one_request_at_a_time_in_order_and_a_failure_is_resent_first() {
        let mut o = Outbox::default();
        assert_eq!(o.next(0), None);
        o.push((0..3).map(|i| format!("{{\"n\":{i}}}")));
        let r = o.next(0).expect("a request");
        assert_eq!((records(&r.body), r.records), (vec!["0".into(), "1".into(), "2".into()], 3));
        o.sent(7, r.records);
        assert!(o.owns(7) && !o.owns(8));
        // Nothing else leaves while one is in flight, even when more arrives.
        o.push(["{\"n\":3}".to_string()]);
        assert_eq!(o.next(0), None);
        // Failed: the same records first again, after the backoff (doubling, capped).
        assert_eq!(o.answered(false, 1_000), 0);
        assert_eq!(o.next(1_000 + FIRST_BACKOFF_MS - 1), None);
        let again = o.next(1_000 + FIRST_BACKOFF_MS).expect("retry");
        assert_eq!(records(&again.body), ["0", "1", "2", "3"]);
        o.sent(8, again.records);
        o.answered(false, 2_000);
        assert_eq!(o.next(2_000 + FIRST_BACKOFF_MS), None, "the backoff doubled");
        for _ in 0..10 {
            let r = o.next(u64::MAX / 2).expect("retry");
            o.sent(9, r.records);
            o.answered(false, 10_000);
        }
        assert!(o.next(10_000 + MAX_BACKOFF_MS - 1).is_none() && o.next(10_000 + MAX_BACKOFF_MS).is_some());
        // Delivered: gone; the backoff starts afresh.
        let r = o.next(10_000 + MAX_BACKOFF_MS).expect("retry");
        o.sent(10, r.records);
        o.push(["{\"n\":4}".to_string()]);
        assert_eq!(o.answered(true, 20_000), 4);
        assert_eq!(o.len(), 1);
        assert_eq!(records(&o.next(20_000).expect("the rest").body), ["4"]);
    }

    #[test]
    fn requests_are_bounded_and_the_oldest_are_dropped_beyond_the_cap() {
        let mut o = Outbox::default();
        let big = format!("{{\"n\":0,\"pad\":\"{}\"}}", "x".repeat(300_000));
        o.push(std::iter::repeat_n(big.clone(), 5));
        let r = o.next(0).expect("a request");
        assert_eq!(r.records, 3, "at most MAX_BODY_BYTES of records (and at least one)");
        assert!(r.body.len() <= MAX_BODY_BYTES + 64);
        o.sent(1, r.records);
        o.push(std::iter::repeat_n(big, MAX_PENDING_BYTES / 300_000 + 10));
        assert!(o.pending_bytes <= MAX_PENDING_BYTES);
        assert!(o.take_dropped() > 0);
        assert_eq!(o.take_dropped(), 0);
        assert_eq!(o.answered(true, 0), 3, "the records in flight were kept");
        let mut single = Outbox::default();
        single.push([format!("{{\"n\":1,\"pad\":\"{}\"}}", "y".repeat(MAX_BODY_BYTES))]);
        assert_eq!(single.next(0).expect("an oversized record still goes").records, 1);
    }
}
