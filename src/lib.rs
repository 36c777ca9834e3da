//! kaudit: Kubernetes audit-log policy evaluation, enrichment, alerting and reporting.
//!
//! This crate is the pure engine shared by every host (native CLI, WASI component, Fluent Bit,
//! Envoy, browser). It does no I/O: hosts hand it bytes and get bytes and outcomes back.
//!
//! Data flows one way: host adapter → [`Pipeline`] → [`Outcome`] → host adapter.
#![forbid(unsafe_code)]

pub mod alert;
pub mod config;
pub mod corpus;
mod diagnostic;
pub mod enrich;
pub mod event;
mod files;
pub mod pipeline;
pub mod policy;
pub mod query;
pub mod report;
pub mod yaml;

pub use config::{BadRecords, Config, ConfigError};
pub use diagnostic::{Diagnostic, DiagnosticKind};
pub use event::{Event, Level};
pub use files::{FileSource, NoFiles};
pub use pipeline::{Counters, Outcome, Pipeline, RecordReport};
pub use policy::{Decision, Policy};
