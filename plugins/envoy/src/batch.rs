//! One webhook request body through the pipeline, and what the filter forwards.
//!
//! The rule is never to make the apiserver retry: nothing here rejects a request. A body with
//! no audit event in it (not JSON, a truncated EventList, an array of non-events) and any
//! internal error (a caught panic) forward the original bytes untouched; the host counts them.
//!
//! Also here: what a filtered body gives the alert consumer (the worker's alert steps; see the
//! README's "Alerts across workers"), and splitting a forwarded body back into its events (what
//! VMs of kaudit before alert steps queued).

use kaudit::BatchSummary;
use kaudit::Pipeline;
use kaudit::{list_items, Records};

/// Why a body was forwarded as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untouched {
    /// Nothing to filter (empty body, `items: []`).
    Empty,
    /// Over `limits.maxBatchBytes`: not read (counted by the pipeline as `oversizedBatches`).
    Oversized,
    /// Records were found but none is an audit event: a bad batch, counted, never rejected.
    NoAuditEvent(BatchSummary),
    /// The pipeline failed (a panic caught on hosts that can unwind); the host rebuilds it.
    InternalError(String),
}

/// The result of filtering one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// The policy ran. `body` is `Some` when the bytes changed and must replace the request body.
    Processed {
        summary: BatchSummary,
        body: Option<String>,
    },
    Untouched(Untouched),
}

/// What the filter queues for the alert consumer after [`filter_body`] ran `result` on `worker`
/// (a `Pipeline::alert_worker`): the kept events' alert steps, `None` when there are none. Steps
/// of a batch forwarded untouched (an internal error half-way) are dropped with it.
pub fn alert_steps(worker: &mut Pipeline, result: &Filtered) -> Option<Vec<u8>> {
    let steps = worker.take_alert_steps();
    (matches!(result, Filtered::Processed { .. }) && !steps.is_empty()).then_some(steps)
}

/// With the `fault-injection` feature (test builds), a body containing this panics in the
/// pipeline call.
pub const FAULT_TRIGGER: &[u8] = b"kaudit-fault-injection:panic";

/// Runs `pipeline.process_batch` on a request body (EventList, JSON array or JSON lines; the
/// framing is kept) and decides what to forward.
pub fn filter_body(pipeline: &mut Pipeline, body: &[u8]) -> Filtered {
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if cfg!(feature = "fault-injection") && body.windows(FAULT_TRIGGER.len()).any(|w| w == FAULT_TRIGGER) {
            panic!("fault injection: the body contains {}", String::from_utf8_lossy(FAULT_TRIGGER));
        }
        let mut out = String::with_capacity(body.len());
        let summary = pipeline.process_batch(body, &mut out);
        (summary, out)
    }));
    let (summary, out) = match run {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_string());
            return Filtered::Untouched(Untouched::InternalError(msg));
        }
    };
    if summary.oversized {
        return Filtered::Untouched(Untouched::Oversized);
    }
    if summary.events == 0 {
        return Filtered::Untouched(Untouched::Empty);
    }
    if summary.kept + summary.dropped == 0 {
        return Filtered::Untouched(Untouched::NoAuditEvent(summary));
    }
    let body = (out.as_bytes() != body).then_some(out);
    Filtered::Processed { summary, body }
}

/// Calls `f` with every event of a forwarded body (the same framings `process_batch` writes).
pub fn for_each_item(body: &[u8], f: &mut dyn FnMut(&[u8])) {
    for record in Records::new(body) {
        match list_items(record.bytes) {
            Some(items) => items.into_iter().for_each(|item| f(item.as_bytes())),
            None => f(record.bytes),
        }
    }
}

/// What one filtered request adds to the filter's batch and event metrics
/// (`kaudit.<plugin>.batches`, `batches_untouched`, `events_in`, ...; README, "Metrics").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Requests seen (always 1).
    pub batches: u64,
    /// Requests forwarded as they came (oversized, no audit event, internal error).
    pub untouched: u64,
    /// Events read.
    pub events_in: u64,
    /// Events forwarded.
    pub events_kept: u64,
    /// Events the policy dropped.
    pub events_dropped: u64,
    /// Records that are not audit events.
    pub events_bad: u64,
    /// Internal errors (the pipeline failed and is rebuilt).
    pub errors: u64,
}

impl BatchCounts {
    /// The counts of one request whose body came out as `result`.
    pub fn of(result: &Filtered) -> BatchCounts {
        let mut c = BatchCounts { batches: 1, ..BatchCounts::default() };
        match result {
            Filtered::Processed { summary, .. } => {
                c.events_in = summary.events;
                c.events_kept = summary.kept;
                c.events_dropped = summary.dropped;
                c.events_bad = summary.bad;
            }
            Filtered::Untouched(Untouched::Empty) => {}
            Filtered::Untouched(Untouched::Oversized) => c.untouched = 1,
            Filtered::Untouched(Untouched::NoAuditEvent(summary)) => {
                c.events_in = summary.events;
                c.events_bad = summary.bad;
                c.untouched = 1;
            }
            Filtered::Untouched(Untouched::InternalError(_)) => {
                c.errors = 1;
                c.untouched = 1;
            }
        }
        c
    }

    /// A request whose body could not be read at all (forwarded untouched).
    pub fn unreadable() -> BatchCounts {
        BatchCounts { batches: 1, untouched: 1, errors: 1, ..BatchCounts::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"u"},"objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"requestReceivedTimestamp":"2024-01-01T00:00:00.000000Z","stageTimestamp":"2024-01-01T00:00:00.100000Z"}"#;
    const STAGE_RECEIVED: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a2","stage":"RequestReceived","requestURI":"/api/v1/pods","verb":"list","user":{"username":"u"},"objectRef":{"resource":"pods","apiVersion":"v1"},"requestReceivedTimestamp":"2024-01-01T00:00:00.000000Z","stageTimestamp":"2024-01-01T00:00:00.000000Z"}"#;

    fn event_list(items: &[&str]) -> String {
        format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
            items.join(",")
        )
    }

    #[test]
    fn a_batch_over_max_batch_bytes_is_oversized_and_not_fed_to_alerts() {
        let body = event_list(&[EVENT]);
        let config = format!("limits:\n  maxBatchBytes: {}\n", body.len() - 1);
        let (mut p, _) = Pipeline::from_config_text(&config, "kaudit.yaml", &kaudit::NoFiles).unwrap();
        let filtered = filter_body(&mut p, body.as_bytes());
        assert_eq!(filtered, Filtered::Untouched(Untouched::Oversized));
        assert_eq!(alert_steps(&mut p, &filtered), None);
        assert_eq!((p.counters().oversized_batches, p.counters().read), (1, 0));
    }

    #[test]
    fn a_body_without_audit_events_is_forwarded_untouched() {
        let mut p = Pipeline::embedded_default();
        // `[]` holds no object: one record that is not an event, not an empty list.
        for body in
            ["not json at all", "{\"kind\":\"EventList\",\"items\":[", "[1,2,3]", "[]", "{\"a\":1}\n{\"b\":2}\n"]
        {
            match filter_body(&mut p, body.as_bytes()) {
                Filtered::Untouched(Untouched::NoAuditEvent(s)) => assert!(s.bad > 0, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        for body in ["", "\n", &event_list(&[])] {
            assert_eq!(filter_body(&mut p, body.as_bytes()), Filtered::Untouched(Untouched::Empty), "{body:?}");
        }
    }

    #[test]
    fn the_embedded_default_drops_request_received_and_keeps_the_framing() {
        let mut p = Pipeline::alert_worker(kaudit::Config::embedded_default());
        let body = event_list(&[STAGE_RECEIVED, EVENT]);
        let f = filter_body(&mut p, body.as_bytes());
        let Filtered::Processed { summary, body: Some(out) } = &f else { panic!("{f:?}") };
        assert_eq!((summary.events, summary.kept, summary.dropped), (2, 1, 1));
        assert!(out.starts_with(r#"{"kind":"EventList""#), "{out}");
        // The kept event, and only it, reaches the consumer.
        let steps = alert_steps(&mut p, &f).expect("steps of the kept event");
        assert_eq!(Pipeline::embedded_default().apply_alert_steps(&steps), Ok(1));
    }

    #[test]
    fn the_body_is_replaced_only_when_the_bytes_changed() {
        for body in [format!("{EVENT}\n"), event_list(&[EVENT]), format!("[{EVENT}]")] {
            let mut direct = String::new();
            Pipeline::embedded_default().process_batch(body.as_bytes(), &mut direct);
            let f = filter_body(&mut Pipeline::alert_worker(kaudit::Config::embedded_default()), body.as_bytes());
            let Filtered::Processed { body: replaced, .. } = &f else { panic!("{f:?}") };
            assert_eq!(replaced.is_some(), direct != body, "{body}");
            // What is forwarded is exactly what the engine wrote.
            let forwarded = replaced.as_deref().unwrap_or(&body);
            assert_eq!(forwarded, direct);
        }
    }

    #[test]
    fn nothing_kept_means_no_alert_steps() {
        let mut p = Pipeline::alert_worker(kaudit::Config::embedded_default());
        let body = format!("[{STAGE_RECEIVED}]");
        let f = filter_body(&mut p, body.as_bytes());
        assert!(matches!(&f, Filtered::Processed { summary, .. } if summary.dropped == 1), "{f:?}");
        assert_eq!(alert_steps(&mut p, &f), None);
    }

    #[test]
    fn for_each_item_reads_every_framing() {
        for body in [event_list(&[EVENT, EVENT]), format!("[{EVENT},{EVENT}]"), format!("{EVENT}\n{EVENT}\n")] {
            let mut n = 0;
            for_each_item(body.as_bytes(), &mut |e| {
                assert_eq!(e, EVENT.as_bytes());
                n += 1;
            });
            assert_eq!(n, 2, "{body}");
        }
    }

    #[test]
    fn batch_counts_follow_the_result() {
        let summary = BatchSummary { events: 5, kept: 2, dropped: 2, bad: 1, oversized: false };
        let processed = Filtered::Processed { summary: summary.clone(), body: None };
        assert_eq!(
            BatchCounts::of(&processed),
            BatchCounts {
                batches: 1,
                events_in: 5,
                events_kept: 2,
                events_dropped: 2,
                events_bad: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            BatchCounts::of(&Filtered::Untouched(Untouched::Empty)),
            BatchCounts { batches: 1, ..Default::default() }
        );
        assert_eq!(
            BatchCounts::of(&Filtered::Untouched(Untouched::Oversized)),
            BatchCounts { batches: 1, untouched: 1, ..Default::default() }
        );
        let bad = BatchSummary { events: 3, bad: 3, ..BatchSummary::default() };
        assert_eq!(
            BatchCounts::of(&Filtered::Untouched(Untouched::NoAuditEvent(bad))),
            BatchCounts { batches: 1, untouched: 1, events_in: 3, events_bad: 3, ..Default::default() }
        );
        assert_eq!(
            BatchCounts::of(&Filtered::Untouched(Untouched::InternalError("x".into()))),
            BatchCounts { batches: 1, untouched: 1, errors: 1, ..Default::default() }
        );
        // Every request is one batch, whatever happened to it, and an untouched one is counted once.
        let real = filter_body(&mut kaudit::Pipeline::embedded_default(), b"not json at all");
        let c = BatchCounts::of(&real);
        assert_eq!((c.batches, c.untouched, c.events_bad), (1, 1, 1), "{real:?}");
    }
}
