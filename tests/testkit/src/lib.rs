//! Test support for kaudit's tests and benchmarks, kept out of the shipped engine
//! (`publish = false`; a dev-dependency only):
//!
//! * [`corpus`]: a deterministic generator of realistic audit logs (benchmarks, load and
//!   memory tests);
//! * [`mmdb`]: a MaxMind DB writer, so tests build GeoIP databases of known content;
//! * [`alert_schemas`]: strict checks of alert payloads as their receivers define them
//!   (Alertmanager API v2, Slack and DingTalk webhooks), for the core's and the hosts' tests;
//! * [`gzip`]: one gzip member of some bytes (`.gz` inputs, compressed bodies and records).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alert_schemas;
pub mod corpus;
pub mod mmdb;

/// `data` as one gzip member (default compression), as `gzip` writes a file.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("writing to a Vec cannot fail");
    e.finish().expect("writing to a Vec cannot fail")
}
