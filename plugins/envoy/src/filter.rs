//! The proxy-wasm glue (built for wasm32 only): root context, HTTP context, metrics, the
//! alert queue and its single consumer. Everything decidable without Envoy lives in
//! `settings`, `batch` and `lease`, which are unit-tested natively.
//!
//! Per VM (Envoy runs one per worker thread and one on the main thread):
//! - the root context parses the plugin configuration (`on_configure`, false = Envoy refuses
//!   to start), defines the metrics, registers the alert queue and ticks every second;
//! - HTTP contexts buffer the request body (Pause until end of stream), run the worker
//!   pipeline (alerts off), rewrite the body and enqueue what was kept on the alert queue;
//! - the root that holds the lease (see `lease`) drains the queue into its own pipeline's
//!   `observe_for_alerts` and POSTs `take_alerts()` to the alert cluster from the root context,
//!   which outlives the requests (a stream context is gone before a callout answers).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

use crate::batch::{self, Filtered, Untouched};
use crate::firehose;
use crate::lease::{self, Lease, Step};
use crate::settings::Settings;
use kaudit::AlertStats;
use kaudit::{Counters, Pipeline};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> { Box::new(Root::new(context_id)) });
}}

/// Most queue messages handled in one callback, so one callback never runs unbounded.
const DRAIN_LIMIT: usize = 1_000;

#[derive(Clone, Copy)]
enum Metric {
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
}

const METRICS: &[(Metric, &str)] = &[
    (Metric::Batches, "batches"),
    (Metric::BatchesUntouched, "batches_untouched"),
    (Metric::EventsIn, "events_in"),
    (Metric::EventsKept, "events_kept"),
    (Metric::EventsDropped, "events_dropped"),
    (Metric::EventsBad, "events_bad"),
    (Metric::Errors, "errors"),
    (Metric::AlertEventsObserved, "alert_events_observed"),
    (Metric::AlertsSent, "alerts_sent"),
    (Metric::AlertsFailed, "alerts_failed"),
    (Metric::EventsStripped, "events_stripped"),
    (Metric::EventsOversized, "events_oversized"),
    (Metric::BatchesOversized, "batches_oversized"),
    (Metric::AlertsDropped, "alerts_dropped"),
    (Metric::AlertGroupsEvicted, "alert_groups_evicted"),
    (Metric::AlertDistinctOverflow, "alert_distinct_overflow"),
    (Metric::AlertLateEvents, "alert_late_events"),
];

/// Metrics that mirror one of the core's running totals (counters, alert statistics): after
/// each call into a pipeline its growth since the last call is added.
const MIRRORED: &[(Metric, fn(&Counters, &AlertStats) -> u64)] = &[
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
struct Mirror {
    last: [u64; MIRRORED.len()],
}

impl Mirror {
    fn sync(&mut self, pipeline: &Pipeline, metrics: &Metrics) {
        // alert_stats() sums over the rules: once per sync, not once per metric.
        let (counters, stats) = (pipeline.counters(), pipeline.alert_stats());
        for ((metric, total), last) in MIRRORED.iter().zip(&mut self.last) {
            let now = total(counters, &stats);
            metrics.add(*metric, now.saturating_sub(*last));
            *last = now;
        }
    }
}

/// Counter ids of this VM (Envoy sums same-named counters of all VMs into one stat,
/// `wasmcustom.kaudit.<plugin>.<name>`).
struct Metrics {
    ids: Vec<Option<u32>>,
}

impl Metrics {
    fn define(plugin: &str) -> Metrics {
        let ids = METRICS
            .iter()
            .map(|(_, name)| match hostcalls::define_metric(MetricType::Counter, &format!("kaudit.{plugin}.{name}")) {
                Ok(id) => Some(id),
                Err(e) => {
                    warn!("cannot define metric {name}: {e:?}");
                    None
                }
            })
            .collect();
        Metrics { ids }
    }

    fn add(&self, metric: Metric, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(Some(id)) = self.ids.get(metric as usize) {
            let _ = hostcalls::increment_metric(*id, n.min(i64::MAX as u64) as i64);
        }
    }
}

/// What a root context shares with its HTTP contexts (same VM, same thread).
struct Shared {
    settings: Settings,
    /// The worker pipeline: alerts off (they are evaluated once, by the consumer).
    pipeline: RefCell<Pipeline>,
    /// The worker pipeline's totals already in the metrics.
    mirror: RefCell<Mirror>,
    metrics: Metrics,
    queue: Option<u32>,
}

impl Shared {
    fn worker_pipeline(settings: &Settings) -> Result<Pipeline, String> {
        let (mut config, warnings) = settings.config()?;
        for w in warnings {
            warn!("{w}");
        }
        config.alerts.enabled = false;
        Ok(Pipeline::new(config))
    }
}

/// The consumer's state while this root holds the lease.
struct Consumer {
    pipeline: Pipeline,
    mirror: Mirror,
    /// Until when the last confirmed renewal holds.
    until_ms: u64,
}

struct Root {
    context_id: u32,
    plugin: String,
    owner: u64,
    shared: Option<Rc<Shared>>,
    consumer: Option<Consumer>,
    /// Alert callouts in flight: token -> number of alerts in the request.
    in_flight: HashMap<u32, u64>,
}

impl Root {
    fn new(context_id: u32) -> Root {
        Root { context_id, plugin: "kaudit".into(), owner: 0, shared: None, consumer: None, in_flight: HashMap::new() }
    }

    fn now_ms(&self) -> u64 {
        self.get_current_time().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    fn lease_key(&self) -> String {
        format!("kaudit.{}.alert-consumer", self.plugin)
    }

    /// One election step; returns whether this root is the confirmed consumer now.
    fn elect(&mut self, now: u64) -> bool {
        let key = self.lease_key();
        let (value, cas) = self.get_shared_data(&key);
        match lease::step(value.as_deref(), self.owner, now) {
            Step::Renew => {
                let renewed = Lease::new(self.owner, now);
                match self.set_shared_data(&key, Some(&renewed.encode()), cas) {
                    Ok(()) => {
                        self.become_consumer(renewed.expires_ms);
                        true
                    }
                    Err(_) => false,
                }
            }
            Step::Claim => {
                let _ = self.set_shared_data(&key, Some(&Lease::new(self.owner, now).encode()), cas);
                false
            }
            Step::Wait => false,
        }
    }

    fn become_consumer(&mut self, until_ms: u64) {
        let Some(shared) = self.shared.clone() else { return };
        if self.consumer.is_none() {
            let pipeline = match shared.settings.pipeline() {
                Ok((p, _)) => p,
                Err(e) => {
                    error!("alert consumer cannot build its pipeline: {e}");
                    return;
                }
            };
            info!("this VM (root context {}) is now the alert consumer", self.context_id);
            self.consumer = Some(Consumer { pipeline, mirror: Mirror::default(), until_ms });
        }
        if let Some(c) = self.consumer.as_mut() {
            c.until_ms = until_ms;
        }
        // Point queue notifications at this root (the last registration wins; data is kept).
        let _ = self.register_shared_queue(&queue_name(&self.plugin));
    }

    fn is_consumer(&self, now: u64) -> bool {
        self.consumer.as_ref().is_some_and(|c| now < c.until_ms)
    }

    /// Feeds queued kept events to the consumer's pipeline, then sends what alerts it raised.
    fn drain_and_flush(&mut self) {
        let (Some(shared), Some(consumer)) = (self.shared.clone(), self.consumer.as_mut()) else { return };
        if let Some(queue) = shared.queue {
            for _ in 0..DRAIN_LIMIT {
                match hostcalls::dequeue_shared_queue(queue) {
                    Ok(Some(body)) => {
                        let mut n = 0;
                        let observed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            batch::for_each_item(&body, &mut |event| {
                                consumer.pipeline.observe_for_alerts(event);
                                n += 1;
                            });
                        }));
                        shared.metrics.add(Metric::AlertEventsObserved, n);
                        if observed.is_err() {
                            shared.metrics.add(Metric::Errors, 1);
                            error!("alert evaluation failed on a queued batch; it is skipped");
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        shared.metrics.add(Metric::Errors, 1);
                        warn!("cannot dequeue kept events: {e:?}");
                        break;
                    }
                }
            }
        }
        let alerts = consumer.pipeline.take_alerts();
        consumer.mirror.sync(&consumer.pipeline, &shared.metrics);
        if alerts.is_empty() {
            return;
        }
        let n = alerts.len() as u64;
        let mut body = alerts.join("\n");
        body.push('\n');
        let target = &shared.settings.alerts;
        let headers = vec![
            (":method", "POST"),
            (":path", target.path.as_str()),
            (":authority", target.authority.as_str()),
            ("content-type", "application/x-ndjson"),
        ];
        match self.dispatch_http_call(
            &target.cluster,
            headers,
            Some(body.as_bytes()),
            vec![],
            Duration::from_millis(target.timeout_ms),
        ) {
            Ok(token) => {
                self.in_flight.insert(token, n);
            }
            Err(e) => {
                shared.metrics.add(Metric::AlertsFailed, n);
                warn!("cannot send {n} alert(s) to cluster {:?}: {e:?}", target.cluster);
            }
        }
    }
}

fn queue_name(plugin: &str) -> String {
    format!("kaudit.{plugin}.kept-events")
}

/// A name usable inside metric and shared-data keys.
fn sanitize(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if s.is_empty() {
        "kaudit".into()
    } else {
        s
    }
}

/// A random owner id for the lease (std's RandomState draws from WASI `random_get`).
fn random_owner(context_id: u32, now_ms: u64) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(context_id);
    h.write_u64(now_ms);
    h.finish().max(1)
}

impl Context for Root {
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, _body_size: usize, _num_trailers: usize) {
        let Some(n) = self.in_flight.remove(&token_id) else { return };
        let Some(shared) = self.shared.clone() else { return };
        let status = if num_headers == 0 { None } else { self.get_http_call_response_header(":status") };
        match status.as_deref().and_then(|s| s.parse::<u16>().ok()) {
            Some(code) if (200..300).contains(&code) => shared.metrics.add(Metric::AlertsSent, n),
            other => {
                shared.metrics.add(Metric::AlertsFailed, n);
                warn!("alert sink answered {other:?} for {n} alert(s) (cluster {:?})", shared.settings.alerts.cluster);
            }
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let settings = match Settings::parse(&bytes) {
            Ok(s) => s,
            Err(e) => {
                error!("invalid plugin configuration: {e}");
                return false;
            }
        };
        let pipeline = match Shared::worker_pipeline(&settings) {
            Ok(p) => p,
            Err(e) => {
                error!("invalid kaudit config: {e}");
                return false;
            }
        };
        if let Some(name) = self.get_property(vec!["plugin_name"]) {
            self.plugin = sanitize(&String::from_utf8_lossy(&name));
        }
        let queue = match hostcalls::register_shared_queue(&queue_name(&self.plugin)) {
            Ok(id) => Some(id),
            Err(e) => {
                warn!("cannot register the alert queue: {e:?}; alerts are off in this VM");
                None
            }
        };
        let now = self.now_ms();
        if self.owner == 0 {
            self.owner = random_owner(self.context_id, now);
        }
        self.shared = Some(Rc::new(Shared {
            metrics: Metrics::define(&self.plugin),
            pipeline: RefCell::new(pipeline),
            mirror: RefCell::default(),
            settings,
            queue,
        }));
        self.consumer = None;
        self.set_tick_period(Duration::from_millis(lease::TICK_MS));
        info!(
            "configured ({})",
            self.shared.as_ref().map(|s| s.pipeline.borrow().config().policy_source.clone()).unwrap_or_default()
        );
        true
    }

    fn on_tick(&mut self) {
        let now = self.now_ms();
        if self.elect(now) {
            self.drain_and_flush();
        } else if self.consumer.take().is_some() {
            info!("this VM is no longer the alert consumer");
        }
    }

    fn on_queue_ready(&mut self, _queue_id: u32) {
        // Only the confirmed consumer drains; a root that registered the queue after it gets
        // the notification until the consumer re-registers at its next tick.
        if self.is_consumer(self.now_ms()) {
            self.drain_and_flush();
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone()?;
        Some(Box::new(Webhook { shared, firehose_request: None }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One webhook request.
struct Webhook {
    shared: Rc<Shared>,
    /// The request id of an Amazon Data Firehose delivery, answered once the receiver took it.
    firehose_request: Option<String>,
}

impl Webhook {
    fn filter(&mut self, size: usize) {
        let m = &self.shared.metrics;
        m.add(Metric::Batches, 1);
        let body = match self.get_http_request_body(0, size) {
            Some(b) => b,
            None => {
                if size > 0 {
                    m.add(Metric::Errors, 1);
                    m.add(Metric::BatchesUntouched, 1);
                    warn!("cannot read the request body ({size} bytes); forwarded untouched");
                }
                return;
            }
        };
        let result = match self.shared.pipeline.try_borrow_mut() {
            Ok(mut p) => {
                let result = batch::filter_body(&mut p, &body);
                if let Ok(mut mirror) = self.shared.mirror.try_borrow_mut() {
                    mirror.sync(&p, m);
                }
                result
            }
            Err(_) => Filtered::Untouched(Untouched::InternalError("pipeline busy".into())),
        };
        match &result {
            Filtered::Processed { summary, body: new } => {
                m.add(Metric::EventsIn, summary.events);
                m.add(Metric::EventsKept, summary.kept);
                m.add(Metric::EventsDropped, summary.dropped);
                m.add(Metric::EventsBad, summary.bad);
                if let Some(new) = new {
                    self.set_http_request_body(0, size, new.as_bytes());
                }
            }
            Filtered::Untouched(Untouched::Empty) => {}
            Filtered::Untouched(Untouched::Oversized) => {
                m.add(Metric::BatchesUntouched, 1);
                warn!("a batch of {} bytes is over limits.maxBatchBytes; forwarded untouched", body.len());
            }
            Filtered::Untouched(Untouched::NoAuditEvent(summary)) => {
                m.add(Metric::EventsIn, summary.events);
                m.add(Metric::EventsBad, summary.bad);
                m.add(Metric::BatchesUntouched, 1);
            }
            Filtered::Untouched(Untouched::InternalError(msg)) => {
                m.add(Metric::Errors, 1);
                m.add(Metric::BatchesUntouched, 1);
                error!("internal error, batch forwarded untouched: {msg}");
                // The pipeline may be half-updated after a panic: start from a fresh one.
                if let (Ok(fresh), Ok(mut p), Ok(mut mirror)) = (
                    Shared::worker_pipeline(&self.shared.settings),
                    self.shared.pipeline.try_borrow_mut(),
                    self.shared.mirror.try_borrow_mut(),
                ) {
                    *p = fresh;
                    *mirror = Mirror::default();
                }
            }
        }
        if let Some(feed) = result.alert_feed(&body) {
            self.enqueue(feed);
        }
    }

    fn enqueue(&mut self, feed: &[u8]) {
        // Without a queue (registration failed, logged at configure) alerts are off here.
        let Some(queue) = self.shared.queue else { return };
        if let Err(e) = hostcalls::enqueue_shared_queue(queue, Some(feed)) {
            self.shared.metrics.add(Metric::Errors, 1);
            warn!("cannot enqueue kept events for alerting: {e:?}");
        }
    }
}

impl Context for Webhook {}

impl HttpContext for Webhook {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.firehose_request = self.get_http_request_header(firehose::REQUEST_ID_HEADER);
        if self.get_http_request_header("content-encoding").is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip")) {
            // The core decodes a gzip body (Firehose's `Content-Encoding: gzip` option) and
            // forwards the events as plain JSON. Headers are decided here, before the body.
            self.set_http_request_header("content-encoding", None);
        }
        if !end_of_stream {
            // The body may change length; Envoy re-frames it (chunked) without the header.
            self.set_http_request_header("content-length", None);
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            // Envoy buffers until the whole batch is here (per_connection_buffer_limit_bytes).
            return Action::Pause;
        }
        self.filter(body_size);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // A Firehose delivery needs Firehose's answer; any other answer is a failed delivery
        // that Firehose retries, which is what an error from the receiver must be. So only a
        // success is replaced (the local response comes back through here: `take` ends that).
        let Some(request_id) = self.firehose_request.take() else { return Action::Continue };
        let status = self.get_http_response_header(":status").and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
        if !(200..300).contains(&status) {
            return Action::Continue;
        }
        let now = self.get_current_time().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let (code, body) = firehose::reply(&request_id, now, status);
        self.send_http_response(code, vec![("content-type", "application/json")], Some(body.as_bytes()));
        Action::Pause
    }
}
