//! The single alert consumer: the root context that holds the lease (see `lease`) drains the
//! queue of the workers' alert steps into its own pipeline (`apply_alert_steps`; a forwarded
//! body queued by a VM of an earlier kaudit goes through `observe_for_alerts`, event by event)
//! and POSTs `take_alerts()` to
//! the alert cluster (or, with `alerts.routes` in the kaudit config, each route's payloads to
//! that route's cluster) from the root context, which outlives the requests (a stream context is
//! gone before a callout answers). With `alerts.role: agent` (several Envoy replicas behind the
//! webhook) the replica's partial and watermark records go to the aggregator (`alerts.partials`,
//! else the alert cluster) through the `outbox`: in order, one request at a time, resent until
//! taken (docs/SCALING.md); they are named by the Envoy node id unless the config gives `agentId`.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::Context;

use super::Root;
use crate::batch;
use crate::lease::{self, Lease, Step};
use crate::metrics::{Metric, Mirror};
use kaudit::{AlertRole, Pipeline, StepsError};

/// Most queue messages handled in one callback, so one callback never runs unbounded.
const DRAIN_LIMIT: usize = 1_000;

/// The consumer's state while this root holds the lease.
pub(super) struct Consumer {
    pub(super) pipeline: Pipeline,
    pub(super) mirror: Mirror,
    /// Until when the last confirmed renewal holds.
    until_ms: u64,
}

impl Root {
    /// One election step; returns whether this root is the confirmed consumer now.
    pub(super) fn elect(&mut self, now: u64) -> bool {
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
            let mut config = match shared.settings.config() {
                Ok((c, _)) => c,
                Err(e) => {
                    error!("{}", kaudit::printable::lines(&format!("alert consumer cannot build its pipeline: {e}")));
                    return;
                }
            };
            if config.alerts.role == AlertRole::Agent && config.alerts.aggregation.agent_id.is_empty() {
                // Each replica is one agent to the aggregator: its Envoy node id names it.
                // `xds.node.id` (Envoy's attribute since 1.20; `node.id` before).
                let node = self
                    .get_property(vec!["xds", "node", "id"])
                    .or_else(|| self.get_property(vec!["node", "id"]))
                    .unwrap_or_default();
                config.alerts.aggregation.agent_id = String::from_utf8_lossy(&node).into_owned();
            }
            let mut pipeline = Pipeline::new(config);
            // Agent role: each consumer pipeline is a new run of the agent (sequence numbers
            // restart), named by the wall clock and a random nonce.
            let now_ms = self.now_ms();
            pipeline.set_agent_incarnation(&kaudit::incarnation_id(
                now_ms.saturating_mul(1000),
                random_owner(self.context_id, now_ms),
            ));
            info!("this VM (root context {}) is now the alert consumer", self.context_id);
            self.consumer = Some(Consumer { pipeline, mirror: Mirror::default(), until_ms });
        }
        if let Some(c) = self.consumer.as_mut() {
            c.until_ms = until_ms;
        }
        // Point queue notifications at this root (the last registration wins; data is kept).
        let _ = self.register_shared_queue(&queue_name(&self.plugin));
    }

    pub(super) fn is_consumer(&self, now: u64) -> bool {
        self.consumer.as_ref().is_some_and(|c| now < c.until_ms)
    }

    /// Feeds queued kept events to the consumer's pipeline, then sends what alerts it raised.
    pub(super) fn drain_and_flush(&mut self) {
        let (Some(shared), Some(consumer)) = (self.shared.clone(), self.consumer.as_mut()) else { return };
        if let Some(queue) = shared.queue {
            for _ in 0..DRAIN_LIMIT {
                match hostcalls::dequeue_shared_queue(queue) {
                    Ok(Some(message)) => {
                        let mut n = 0;
                        let observed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            match consumer.pipeline.apply_alert_steps(&message) {
                                Ok(events) => n = events,
                                Err(StepsError::NotSteps) => {
                                    // A forwarded body, queued by a VM of an earlier kaudit.
                                    batch::for_each_item(&message, &mut |event| {
                                        consumer.pipeline.observe_for_alerts(event);
                                        n += 1;
                                    });
                                }
                                Err(e) => {
                                    shared.metrics.add(Metric::Errors, 1);
                                    warn!(
                                        "{}",
                                        kaudit::printable::lines(&format!(
                                            "queued alert steps skipped: {e} (a worker of another config?)"
                                        ))
                                    );
                                }
                            }
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
        // Agent role: partial and watermark records go to the aggregator through the outbox (in
        // order, one request at a time, resent until taken); they are not alerts.
        let partials = consumer.pipeline.take_partials();
        consumer.mirror.sync(&consumer.pipeline, &shared.metrics);
        if !partials.is_empty() {
            shared.metrics.add(Metric::PartialsQueued, partials.len() as u64);
            self.outbox.push(partials);
            shared.metrics.add(Metric::PartialsDropped, self.outbox.take_dropped());
            self.send_partials();
        }
        let Some(consumer) = self.consumer.as_ref() else { return };
        if alerts.is_empty() {
            return;
        }
        // Without routes: the alert objects as JSON lines to the one target, as always. With
        // routes: each route's payloads (rendered by the core, split by its maxAlertsPerMessage).
        let config = &consumer.pipeline.config().alerts;
        let mut posts: Vec<(String, String, &'static str, u64)> = Vec::new();
        if config.routes.is_empty() && !alerts.is_empty() {
            let mut body = alerts.join("\n");
            body.push('\n');
            posts.push((String::new(), body, "application/x-ndjson", alerts.len() as u64));
        }
        for route in &config.routes {
            for p in config.payloads(route, &alerts) {
                posts.push((route.name.clone(), p.body, p.content_type, p.alerts as u64));
            }
        }
        let now_ms = self.now_ms();
        for (route, body, content_type, n) in posts {
            let target = shared.settings.target(&route);
            // A signed DingTalk robot: the signature covers the current time.
            let path = match &target.dingtalk_secret {
                Some(secret) => crate::dingtalk::signed_path(&target.path, secret, now_ms),
                None => target.path.clone(),
            };
            let headers = vec![
                (":method", "POST"),
                (":path", path.as_str()),
                (":authority", target.authority.as_str()),
                ("content-type", content_type),
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
}

impl Root {
    /// Sends the outbox's next request to the partials target (`alerts.partials`, else the
    /// alert cluster) when none is in flight and no backoff runs (outbox.rs says why).
    pub(super) fn send_partials(&mut self) {
        let Some(shared) = self.shared.clone() else { return };
        let now_ms = self.now_ms();
        let Some(request) = self.outbox.next(now_ms) else { return };
        let target = shared.settings.partials_target();
        let headers = vec![
            (":method", "POST"),
            (":path", target.path.as_str()),
            (":authority", target.authority.as_str()),
            ("content-type", "application/json"),
        ];
        match self.dispatch_http_call(
            &target.cluster,
            headers,
            Some(request.body.as_bytes()),
            vec![],
            Duration::from_millis(target.timeout_ms),
        ) {
            Ok(token) => self.outbox.sent(token, request.records),
            Err(e) => {
                self.outbox.answered(false, now_ms);
                shared.metrics.add(Metric::PartialRequestsFailed, 1);
                warn!(
                    "cannot send {} partial record(s) to cluster {:?}: {e:?}; retrying",
                    request.records, target.cluster
                );
            }
        }
    }

    /// The aggregator's answer to the outbox's request.
    pub(super) fn partials_answered(&mut self, status: Option<u16>) {
        let Some(shared) = self.shared.clone() else { return };
        let ok = status.is_some_and(|code| (200..300).contains(&code));
        let delivered = self.outbox.answered(ok, self.now_ms());
        if ok {
            shared.metrics.add(Metric::PartialsSent, delivered as u64);
            // Whatever piled up meanwhile goes at once.
            self.send_partials();
        } else {
            shared.metrics.add(Metric::PartialRequestsFailed, 1);
            warn!(
                "the aggregator answered {status:?} (cluster {:?}); {} partial record(s) wait for a retry",
                shared.settings.partials_target().cluster,
                self.outbox.len()
            );
        }
    }
}

pub(super) fn queue_name(plugin: &str) -> String {
    format!("kaudit.{plugin}.kept-events")
}

/// A random owner id for the lease (std's RandomState draws from WASI `random_get`).
pub(super) fn random_owner(context_id: u32, now_ms: u64) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(context_id);
    h.write_u64(now_ms);
    h.finish().max(1)
}
