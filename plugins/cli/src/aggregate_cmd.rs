//! `kaudit aggregate`: merges the partial records of `alerts.role: agent` instances (files of
//! `kaudit run --partials`, or records an aggregator would receive) and raises the alerts, as
//! one instance reading every agent's events would (docs/SCALING.md).

use std::path::PathBuf;

use clap::Args;
use kaudit::{AlertRole, Pipeline};

use crate::args::{Metrics, Source};
use crate::exit::Status;
use crate::input::{self, Item};
use crate::output::Output;
use crate::run_cmd::AlertSink;

#[derive(Args)]
pub struct AggregateArgs {
    #[command(flatten)]
    source: Source,
    /// Where alerts go, one JSON object per line: `stdout` (default), `stderr`, or a file.
    #[arg(long, value_name = "stdout|stderr|FILE", default_value = "stdout")]
    alerts: String,
    #[command(flatten)]
    metrics: Metrics,
    /// Files of partial and watermark records (JSON lines; Fluent Bit carriers with
    /// `kaudit_partials` too); stdin when none or `-`. Files of several agents may be given in
    /// any order: the records are merged in the order of the event time they were sent at (a
    /// partial at its period's end, a watermark at its time), as if the agents had run side by
    /// side, and the end of the input closes every period.
    files: Vec<PathBuf>,
}

/// Exit status 1 when a record was not a partial or watermark record (each one is reported).
pub fn aggregate(args: AggregateArgs) -> Result<Status, String> {
    let mut config = input::load_config(&args.source)?;
    // The config's rules and limits are the agents'; this command is the aggregator.
    config.alerts.role = AlertRole::Aggregator;
    let mut pipeline = Pipeline::new(config);
    let mut sink = AlertSink::open(&args.alerts)?;
    let mut out = Output::new();
    let (mut merged, mut invalid, mut alerts) = (0usize, 0usize, 0usize);
    let max_event_bytes = pipeline.config().limits.max_event_bytes;
    // (sent at, input, line, record): every input is read before merging, so that agents'
    // files given one after the other merge as if the agents had run side by side.
    let mut records: Vec<(i64, String, usize, Vec<u8>)> = Vec::new();
    input::for_each_record(&args.files, max_event_bytes, &mut |item| {
        if let Item::Record { input, record } = item {
            records.push((sent_at(record.bytes), input.to_string(), record.line, record.bytes.to_vec()));
        }
        Ok(())
    })?;
    records.sort_by_key(|r| r.0);
    for (_, input, line, bytes) in records {
        match pipeline.merge_partials(&bytes) {
            Ok(n) => merged += n,
            Err(e) => {
                invalid += 1;
                eprintln!("{input}:{line}: {e}");
            }
        }
        let raised = pipeline.take_alerts();
        alerts += raised.len();
        sink.write(raised, &mut out)?;
        out.flush_if_full()?;
    }
    pipeline.finish_alerts();
    let raised = pipeline.take_alerts();
    alerts += raised.len();
    sink.write(raised, &mut out)?;
    out.flush()?;
    let stats = pipeline.metrics_json();
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap_or_default();
    let a = &v["aggregation"]["aggregator"];
    eprintln!(
        "kaudit: {merged} records merged from {} agents ({} steps; {} duplicate steps, {} late and {} too-late \
         partials, {} missing records), {invalid} not partials; {alerts} alerts",
        a["agents"], a["steps"], a["duplicateSteps"], a["late"], a["tooLate"], a["missing"]
    );
    args.metrics.write(&pipeline)?;
    Ok(if invalid > 0 { Status::Negative } else { Status::Success })
}

/// The event time a record was sent at: a partial's `end`, a watermark's `time`, the latest of
/// a carrier's records; records without one first.
fn sent_at(bytes: &[u8]) -> i64 {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else { return i64::MIN };
    let one = |v: &serde_json::Value| {
        v.get("end").or_else(|| v.get("time")).and_then(|t| t.as_str()).and_then(kaudit::parse_micros)
    };
    match v.get(kaudit::PARTIALS_KEY).and_then(|p| p.as_array()) {
        Some(items) => items.iter().filter_map(one).max(),
        None => one(&v),
    }
    .unwrap_or(i64::MIN)
}
