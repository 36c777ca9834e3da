//! The proxy-wasm glue (built for wasm32 only): the root context and the HTTP context, in the
//! shape of the proxy-wasm SDK examples. The counters are `metrics`, the single alert consumer
//! `consumer`; everything decidable without Envoy lives in `settings`, `batch` (with the
//! request -> counters mapping) and `lease`, which are unit-tested natively.
//!
//! Per VM (Envoy runs one per worker thread and one on the main thread):
//! - the root context parses the plugin configuration (`on_configure`, false = Envoy refuses
//!   to start), defines the metrics, registers the alert queue and ticks every second;
//! - HTTP contexts buffer the request body (Pause until end of stream), run the worker
//!   pipeline (`Pipeline::alert_worker`: it raises no alert), rewrite the body and enqueue the
//!   kept events' alert steps (what the rules read of them, not the events) on the alert queue;
//! - the root that holds the lease (see `lease`) applies the queued steps to its own pipeline
//!   (`apply_alert_steps`, no second parse of the events) and POSTs `take_alerts()` to the
//!   alert cluster from the root context, which outlives the requests (a stream context is
//!   gone before a callout answers).

mod consumer;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use kaudit::printable;
use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::batch::{self, BatchCounts, Filtered, Untouched};
use crate::firehose;
use crate::lease;
use crate::metrics::{Metric, Metrics, Mirror};
use crate::outbox::Outbox;
use crate::settings::Settings;
use consumer::{queue_name, random_owner, Consumer};
use kaudit::Pipeline;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> { Box::new(Root::new(context_id)) });
}}

/// What a root context shares with its HTTP contexts (same VM, same thread).
struct Shared {
    settings: Settings,
    /// The worker pipeline: it raises no alert, it writes alert steps for the consumer.
    pipeline: RefCell<Pipeline>,
    /// The worker pipeline's totals already in the metrics.
    mirror: RefCell<Mirror>,
    metrics: Metrics,
    queue: Option<u32>,
    /// Whether the config raises alerts at all; if not, nothing is queued for the consumer.
    alerts: bool,
}

impl Shared {
    /// The worker pipeline (it raises no alert: they are evaluated once, by the consumer, from
    /// the steps the worker writes) and whether the config raises alerts.
    fn worker_pipeline(settings: &Settings) -> Result<(Pipeline, bool), String> {
        let (config, warnings) = settings.config()?;
        for w in warnings {
            warn!("{}", printable::lines(&w.to_string()));
        }
        let alerts = config.enabled && config.alerts.enabled && !config.alerts.rules.is_empty();
        Ok((Pipeline::alert_worker(config), alerts))
    }
}

struct Root {
    context_id: u32,
    plugin: String,
    owner: u64,
    shared: Option<Rc<Shared>>,
    consumer: Option<Consumer>,
    /// Alert callouts in flight: token -> number of alerts in the request.
    in_flight: HashMap<u32, u64>,
    /// Agent role: partial records on their way to the aggregator (kept across consumer
    /// changes of this root: what it took, it delivers).
    outbox: Outbox,
}

impl Root {
    fn new(context_id: u32) -> Root {
        Root {
            context_id,
            plugin: "kaudit".into(),
            owner: 0,
            shared: None,
            consumer: None,
            in_flight: HashMap::new(),
            outbox: Outbox::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.get_current_time().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    fn lease_key(&self) -> String {
        format!("kaudit.{}.alert-consumer", self.plugin)
    }
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

impl Context for Root {
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, _body_size: usize, _num_trailers: usize) {
        let status = if num_headers == 0 { None } else { self.get_http_call_response_header(":status") };
        let code = status.as_deref().and_then(|s| s.parse::<u16>().ok());
        if self.outbox.owns(token_id) {
            self.partials_answered(code);
            return;
        }
        let Some(n) = self.in_flight.remove(&token_id) else { return };
        let Some(shared) = self.shared.clone() else { return };
        match code {
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
                error!("{}", printable::lines(&format!("invalid plugin configuration: {e}")));
                return false;
            }
        };
        let (pipeline, alerts) = match Shared::worker_pipeline(&settings) {
            Ok(p) => p,
            Err(e) => {
                error!("{}", printable::lines(&format!("invalid kaudit config: {e}")));
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
            alerts,
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
        // Retries after a failure (the backoff is checked against the clock at each tick).
        self.send_partials();
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
        let body = match self.get_http_request_body(0, size) {
            Some(b) => b,
            None => {
                if size > 0 {
                    m.add_batch(&BatchCounts::unreadable());
                    warn!("cannot read the request body ({size} bytes); forwarded untouched");
                } else {
                    m.add(Metric::Batches, 1);
                }
                return;
            }
        };
        let (result, steps) = match self.shared.pipeline.try_borrow_mut() {
            Ok(mut p) => {
                let result = batch::filter_body(&mut p, &body);
                if let Ok(mut mirror) = self.shared.mirror.try_borrow_mut() {
                    mirror.sync(&p, m);
                }
                let steps = batch::alert_steps(&mut p, &result);
                (result, steps)
            }
            Err(_) => (Filtered::Untouched(Untouched::InternalError("pipeline busy".into())), None),
        };
        m.add_batch(&BatchCounts::of(&result));
        match &result {
            Filtered::Processed { body: Some(new), .. } => self.set_http_request_body(0, size, new.as_bytes()),
            Filtered::Processed { .. } | Filtered::Untouched(Untouched::Empty | Untouched::NoAuditEvent(_)) => {}
            Filtered::Untouched(Untouched::Oversized) => {
                warn!("a batch of {} bytes is over limits.maxBatchBytes; forwarded untouched", body.len());
            }
            Filtered::Untouched(Untouched::InternalError(msg)) => {
                error!("{}", printable::lines(&format!("internal error, batch forwarded untouched: {msg}")));
                // The pipeline may be half-updated after a panic: start from a fresh one.
                if let (Ok((fresh, _)), Ok(mut p), Ok(mut mirror)) = (
                    Shared::worker_pipeline(&self.shared.settings),
                    self.shared.pipeline.try_borrow_mut(),
                    self.shared.mirror.try_borrow_mut(),
                ) {
                    *p = fresh;
                    *mirror = Mirror::default();
                }
            }
        }
        if let Some(steps) = steps.filter(|_| self.shared.alerts) {
            self.enqueue(&steps);
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
