//! Alert rules: a query per rule, output fields, optional aggregation over event-time windows
//! with bounded state; rule packs (kaudit YAML packs, the Falco k8saudit translation, Sigma).
//!
//! * `config`: the config's `alerts` section ([`AlertConfig`]) and its decoding;
//! * `pack`: rule packs (embedded, built-in, files and directories);
//! * `rule`: the rule model; `decode`: a rule from YAML (shared by the config and packs);
//! * `lists`: named lists and their `${name}` references;
//! * `engine`: evaluation on kept events ([`AlertEngine::observe`]);
//! * `state`: bounded per-group state (LRU groups, bucketed windows);
//! * `partial`, `merge`: two-phase aggregation (`alerts.role`: agents emit partial records,
//!   an aggregator merges them and raises the alerts; docs/SCALING.md);
//! * `steps`: alert steps, a worker's rule inputs per kept event for a central consumer
//!   (Envoy's workers and its single alert consumer);
//! * `output`: the alert JSON object;
//! * `route`: `alerts.routes` and the payload formats (JSON lines, Alertmanager, Slack, DingTalk);
//! * `sigma`: the Sigma compiler.
//!
//! Reference: docs/ALERTS.md (rules, semantics, schema) and docs/CONFIG.md (`alerts:`).

mod config;
mod decode;
mod engine;
mod lists;
mod merge;
mod output;
mod pack;
mod partial;
mod route;
mod rule;
pub mod sigma;
mod state;
mod steps;

#[cfg(test)]
mod tests;

pub use config::{decode_config, AggregationConfig, AlertConfig, AlertLimits, Role};
pub use engine::{AlertEngine, AlertStats};
pub use lists::Lists;
pub use merge::MergeStats;
pub use pack::{load_pack_text, FALCO_PACK};
pub use partial::{incarnation_id, AgentStats, PartialError, PARTIAL_KIND, WATERMARK_KIND};
pub use route::{AlertFormat, AlertPayload, AlertRoute};
pub use rule::{Rule, Severity};
pub use steps::StepsError;
