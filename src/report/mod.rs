//! Audit reports: the three tabs of the seed's console ("Overview", "Operations Overview",
//! "Operation Details"), computed by incremental aggregation over a stream of enriched events.
//!
//! A dashboard pushes events as they arrive ([`ReportBuilder::push`]) and asks for a report
//! whenever its filters change ([`ReportBuilder::report`]). Each event is reduced at push time
//! to a compact fixed-size row (strings interned once) plus a few capped detail strings, so a
//! report never needs the original events again, except for an ad-hoc search-language query:
//!
//! * a query registered before pushing ([`ReportBuilder::add_standing_query`], what a live
//!   dashboard with a fixed query or the CLI does) is evaluated on the full event at push
//!   time and remembered as one bit per row;
//! * otherwise the builder can keep the raw event text within a byte budget
//!   ([`BuilderOptions::raw_bytes`], what the browser dashboard does for files) and evaluates
//!   any query on the re-parsed event later;
//! * a query over rows whose raw text was not kept is an error, never a silently wrong number.
//!
//! Both paths evaluate exactly what `kaudit query` evaluates: [`crate::query::Query`] on an
//! [`crate::event::doc::EventDoc`] with the enrichment under its key. The JSON schema of a
//! [`Report`] is documented in `docs/REPORTS.md`.
//!
//! Files: `filter` (what a dashboard asks for), `builder` (rows, interning, bounded stores),
//! `aggregate` (one report from the rows), `model` (the serialized report). Chunked input
//! (a browser reading a file piece by piece) is framed by [`crate::Feed`].

mod aggregate;
pub(crate) mod builder;
mod filter;
mod model;

#[cfg(test)]
mod tests;

pub use builder::{BuilderOptions, ReportBuilder, ROW_BYTES};
pub use filter::{Filter, ReportError};
pub use model::*;

/// Identifies the report JSON layout (bumped on incompatible changes).
pub const SCHEMA: &str = "kaudit.report/v1";
