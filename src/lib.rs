//! kaudit: Kubernetes audit-log policy evaluation, enrichment, alerting and reporting.
//!
//! This crate is the pure engine shared by every host (native CLI, WASI component, Fluent Bit,
//! Envoy, browser). It does no I/O: hosts hand it bytes and get bytes and outcomes back, and
//! read the files a config names through a [`FileSource`] they provide.
//!
//! # The map
//!
//! Data flows one way: host adapter → [`Pipeline`] → [`Outcome`] → host adapter.
//!
//! * **Configure.** [`Config::load`] decodes the one YAML config (policy, `badRecords`, limits,
//!   enrichment, alerts) into a [`Config`]; [`Config::embedded_default`] is the seed's policy and
//!   alert rules. Problems come back as [`Diagnostic`]s naming file, line and field
//!   ([`ConfigError`] when the load fails). A host decides every setting on the `Config` (e.g.
//!   `config.alerts.enabled = false`), then builds the engine once.
//! * **Run.** [`Pipeline::new`] builds the engine: the [`Policy`]'s [`Evaluator`], the enricher
//!   and the alert engine. It is fed a record ([`Pipeline::process_record`]: Fluent Bit), a
//!   webhook batch ([`Pipeline::process_batch`]: Envoy) or a stream
//!   ([`Pipeline::process_stream`]: CLI, component); each event is parsed once ([`Event`]),
//!   decided ([`Decision`], [`DropReason`]) and written by splicing its original bytes into an
//!   [`OutBuf`]. Every record gets an [`Outcome`] and is counted ([`Counters`]); alerts are taken
//!   with [`Pipeline::take_alerts`].
//! * **Explain and search.** [`Pipeline::explain_stream`] gives the policy decision of every
//!   event ([`Explained`]); [`query::Query`] is the search language of rules, dashboards and
//!   `kaudit query`, evaluated on an [`EventDoc`].
//! * **Report.** [`report::ReportBuilder`] aggregates enriched events into the seed's three
//!   report tabs.
//! * **Frame.** [`Records`] splits a stream into documents with their line numbers, [`Feed`]
//!   does it for input that arrives in chunks, and [`for_each_event`] parses every event of an
//!   input for read-only commands.
//!
//! ```
//! let mut pipeline = kaudit::Pipeline::embedded_default();
//! let event = br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"alice"},"objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"}}"#;
//! let mut out = Vec::new();
//! let outcome = pipeline.process_record(event, &mut out);
//! assert!(matches!(outcome, kaudit::Outcome::Kept { .. }));
//! assert_eq!(pipeline.counters().kept, 1);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod alert;
mod config;
mod diagnostic;
mod dict;
mod enrich;
mod event;
mod explain;
mod files;
mod pipeline;
mod policy;
pub mod printable;
pub mod query;
pub mod report;
#[cfg(test)]
mod test_rng;
pub mod yaml;

pub use alert::{
    incarnation_id, load_pack_text, AgentStats, AggregationConfig, AlertConfig, AlertEngine, AlertFormat, AlertLimits,
    AlertPayload, AlertRoute, AlertStats, Lists, MergeStats, PartialError, Role as AlertRole, Rule,
    Severity as AlertSeverity, StepsError, FALCO_PACK, PARTIAL_KIND, WATERMARK_KIND,
};
pub use config::{BadRecords, Config, ConfigError, Limits};
pub use diagnostic::{Diagnostic, DiagnosticKind};
pub use enrich::{parse_ip, EnrichConfig, EnrichError, Enricher, Enrichment, GeoDb, GeoInfo, IpScope, IpSet};
pub use event::doc::EventDoc;
pub use event::feed::Feed;
pub use event::framing::{for_each_event, list_items, Record, RecordPos, Records};
pub use event::managed::compress::{is_gzip, GZIP_MAGIC};
pub use event::managed::is_wrapped;
pub use event::raw::{
    compact_into, decode_str, parse_object, write_json_str, CowStr, JsonError, Member, OutBuf, RawObject,
};
pub use event::time::{format_micros, parse_micros};
pub use event::{Event, EventError, Level, ObjectRef, ResponseStatus, UserInfo};
pub use explain::{explain_json, Explained};
pub use files::{FileError, FileSource, NoFiles};
#[cfg(feature = "phase-marks")]
pub use pipeline::set_phase_hook;
pub use pipeline::{BatchSummary, Counters, Outcome, Pipeline, RecordReport, PARTIALS_AGENT_KEY, PARTIALS_KEY};
pub use policy::{
    default_policy, verdict, write_event, Attributes, Changes, Decision, DropReason, Evaluator, GroupResources, Groups,
    Loaded, Policy, PolicyError, PolicyRule, Verdict,
};
pub use policy::{policy_differences, to_v1_yaml};
