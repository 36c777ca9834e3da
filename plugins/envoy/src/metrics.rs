//! The filter's Envoy counters (`wasmcustom.kaudit.<plugin>.<name>`; README, "Metrics"):
//! their names, and the ones that mirror the core's running totals.

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::batch::BatchCounts;
use kaudit::{AlertStats, Counters, Pipeline};

/// One counter.
#[derive(Clone, Copy)]
pub enum Metric {
    Batches,
    BatchesUntouched,
    EventsIn,
    EventsKept,
    EventsDropped,
    EventsBad,
    Errors,
    AlertEventsObserved,
    AlertsSent,
    AlertsFailed,
    EventsStripped,
    EventsOversized,
    BatchesOversized,
    AlertsDropped,
    AlertGroupsEvicted,
    AlertDistinctOverflow,
    AlertLateEvents,
    PartialsQueued,
    PartialsSent,
    PartialRequestsFailed,
    PartialsDropped,
}

impl Metric {
    /// Every counter, defined at configure time.
    const ALL: [Metric; 21] = [
        Metric::Batches,
        Metric::BatchesUntouched,
        Metric::EventsIn,
        Metric::EventsKept,
        Metric::EventsDropped,
        Metric::EventsBad,
        Metric::Errors,
        Metric::AlertEventsObserved,
        Metric::AlertsSent,
        Metric::AlertsFailed,
        Metric::EventsStripped,
        Metric::EventsOversized,
        Metric::BatchesOversized,
        Metric::AlertsDropped,
        Metric::AlertGroupsEvicted,
        Metric::AlertDistinctOverflow,
        Metric::AlertLateEvents,
        Metric::PartialsQueued,
        Metric::PartialsSent,
        Metric::PartialRequestsFailed,
        Metric::PartialsDropped,
    ];

    fn name(self) -> &'static str {
        match self {
            Metric::Batches => "batches",
            Metric::BatchesUntouched => "batches_untouched",
            Metric::EventsIn => "events_in",
            Metric::EventsKept => "events_kept",
            Metric::EventsDropped => "events_dropped",
            Metric::EventsBad => "events_bad",
            Metric::Errors => "errors",
            Metric::AlertEventsObserved => "alert_events_observed",
            Metric::AlertsSent => "alerts_sent",
            Metric::AlertsFailed => "alerts_failed",
            Metric::EventsStripped => "events_stripped",
            Metric::EventsOversized => "events_oversized",
            Metric::BatchesOversized => "batches_oversized",
            Metric::AlertsDropped => "alerts_dropped",
            Metric::AlertGroupsEvicted => "alert_groups_evicted",
            Metric::AlertDistinctOverflow => "alert_distinct_overflow",
            Metric::AlertLateEvents => "alert_late_events",
            Metric::PartialsQueued => "partials_queued",
            Metric::PartialsSent => "partials_sent",
            Metric::PartialRequestsFailed => "partial_requests_failed",
            Metric::PartialsDropped => "partials_dropped",
        }
    }
}

/// Counter ids of this VM, by [`Metric`] (Envoy sums same-named counters of all VMs into one
/// stat).
pub struct Metrics {
    ids: [Option<u32>; Metric::ALL.len()],
}

impl Metrics {
    /// Defines every counter for `plugin`.
    pub fn define(plugin: &str) -> Metrics {
        let mut ids = [None; Metric::ALL.len()];
        for metric in Metric::ALL {
            let name = metric.name();
            ids[metric as usize] =
                match hostcalls::define_metric(MetricType::Counter, &format!("kaudit.{plugin}.{name}")) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        warn!("cannot define metric {name}: {e:?}");
                        None
                    }
                };
        }
        Metrics { ids }
    }

    /// Adds `n` to `metric`.
    pub fn add(&self, metric: Metric, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(id) = self.ids[metric as usize] {
            let _ = hostcalls::increment_metric(id, n.min(i64::MAX as u64) as i64);
        }
    }

    /// Adds what one request counted ([`BatchCounts::of`]).
    pub fn add_batch(&self, c: &BatchCounts) {
        self.add(Metric::Batches, c.batches);
        self.add(Metric::BatchesUntouched, c.untouched);
        self.add(Metric::EventsIn, c.events_in);
        self.add(Metric::EventsKept, c.events_kept);
        self.add(Metric::EventsDropped, c.events_dropped);
        self.add(Metric::EventsBad, c.events_bad);
        self.add(Metric::Errors, c.errors);
    }
}

/// One of the core's running totals.
type Total = fn(&Counters, &AlertStats) -> u64;

/// Metrics that mirror one of the core's running totals (counters, alert statistics): after
/// each call into a pipeline its growth since the last call is added.
const MIRRORED: &[(Metric, Total)] = &[
    (Metric::EventsStripped, |c, _| c.stripped),
    (Metric::EventsOversized, |c, _| c.oversized),
    (Metric::BatchesOversized, |c, _| c.oversized_batches),
    (Metric::AlertsDropped, |c, _| c.alerts_dropped),
    (Metric::AlertGroupsEvicted, |_, a| a.groups_evicted),
    (Metric::AlertDistinctOverflow, |_, a| a.distinct_overflow),
    (Metric::AlertLateEvents, |_, a| a.late_events),
];

/// What one pipeline's [`MIRRORED`] totals were when last added to the metrics.
#[derive(Default)]
pub struct Mirror {
    last: [u64; MIRRORED.len()],
}

impl Mirror {
    /// Adds the growth of `pipeline`'s totals since the last sync.
    pub fn sync(&mut self, pipeline: &Pipeline, metrics: &Metrics) {
        // alert_stats() sums over the rules: once per sync, not once per metric.
        let (counters, stats) = (pipeline.counters(), pipeline.alert_stats());
        for ((metric, total), last) in MIRRORED.iter().zip(&mut self.last) {
            let now = total(counters, &stats);
            metrics.add(*metric, now.saturating_sub(*last));
            *last = now;
        }
    }
}
