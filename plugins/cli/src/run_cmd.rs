//! `kaudit run` (policy + enrichment + alerts) and `kaudit query`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use kaudit::for_each_event;
use kaudit::query::Query;
use kaudit::EventDoc;
use kaudit::{AlertRole, Pipeline};

use crate::args::{RecordArgs, Source};
use crate::exit::Status;
use crate::input::{self, Item};
use crate::output::{print_summary, report_bad, Output};

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    records: RecordArgs,
    /// Where alerts go, one JSON object per line: `stderr` (default), `stdout`, or a file.
    #[arg(long, value_name = "stderr|stdout|FILE", default_value = "stderr")]
    alerts: String,
    /// `alerts.role: agent`: where partial and watermark records go, one JSON object per line
    /// (`stdout` or a file), for `kaudit aggregate` or an aggregator (docs/SCALING.md).
    #[arg(long, value_name = "stdout|FILE")]
    partials: Option<String>,
    /// Do not write events, only alerts.
    #[arg(long)]
    no_events: bool,
    /// Audit logs; stdin when none or `-`.
    files: Vec<PathBuf>,
}

/// Where a stream of JSON lines (alerts, partial records) goes.
pub(crate) enum AlertSink {
    Stderr,
    Stdout,
    File(std::fs::File),
}

impl AlertSink {
    pub(crate) fn open(target: &str) -> Result<AlertSink, String> {
        Ok(match target {
            "stderr" => AlertSink::Stderr,
            "stdout" | "-" => AlertSink::Stdout,
            path => AlertSink::File(std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?),
        })
    }

    pub(crate) fn write(&mut self, alerts: Vec<String>, events: &mut Output) -> Result<(), String> {
        for a in alerts {
            match self {
                AlertSink::Stderr => eprintln!("{}", crate::term::field(&a)),
                AlertSink::Stdout => {
                    events.buf.extend_from_slice(a.as_bytes());
                    events.buf.push(b'\n');
                }
                AlertSink::File(f) => writeln!(f, "{a}").map_err(|e| format!("alerts file: {e}"))?,
            }
        }
        Ok(())
    }
}

pub fn run(args: RunArgs) -> Result<Status, String> {
    let mut pipeline = Pipeline::new(args.records.config()?);
    let mut sink = AlertSink::open(&args.alerts)?;
    let mut partials = match (&args.partials, pipeline.alert_role()) {
        (Some(target), AlertRole::Agent) => Some(AlertSink::open(target)?),
        (None, AlertRole::Agent) => {
            return Err("alerts.role is agent: name where its partial records go with --partials FILE".into())
        }
        (Some(_), role) => {
            return Err(format!("--partials: alerts.role is {}, only an agent writes partials", role.as_str()))
        }
        (None, _) => None,
    };
    let mut out = Output::new();
    let mut discard: Vec<u8> = Vec::new();
    let mut alerts = 0usize;
    let mut guard = crate::guard::Guard::default();
    let max_event_bytes = pipeline.config().limits.max_event_bytes;
    input::for_each_record(&args.files, max_event_bytes, &mut |item| {
        let Item::Record { input, record } = item else { return out.flush() };
        let target = if args.no_events { &mut discard } else { &mut out.buf };
        guard.record(input, &record, target, |buf| {
            pipeline.process_document(record.bytes, record.line, buf, &mut |r| {
                if !args.records.quiet {
                    report_bad(input, r);
                }
            })
        });
        discard.clear();
        let raised = pipeline.take_alerts();
        alerts += raised.len();
        sink.write(raised, &mut out)?;
        if let Some(p) = &mut partials {
            p.write(pipeline.take_partials(), &mut out)?;
        }
        out.flush_if_full()
    })?;
    // The input ended: an agent sends its open periods.
    pipeline.finish_alerts();
    let raised = pipeline.take_alerts();
    alerts += raised.len();
    sink.write(raised, &mut out)?;
    if let Some(p) = &mut partials {
        p.write(pipeline.take_partials(), &mut out)?;
    }
    out.flush()?;
    print_summary(&pipeline);
    guard.print_summary();
    let a = pipeline.alert_stats();
    eprintln!(
        "kaudit: {alerts} alerts ({} suppressed by throttle, {} late events ignored by windows)",
        a.suppressed, a.late_events
    );
    args.records.metrics.write(&pipeline)?;
    Ok(Status::Success)
}

#[derive(Args)]
pub struct QueryArgs {
    /// The query, e.g. 'verb : create and objectRef.subresource:exec' (docs/QUERY.md).
    query: String,
    #[command(flatten)]
    source: Source,
    /// Print the matching events with the enrichment added (under `kaudit`).
    #[arg(long)]
    enrich: bool,
    /// Print only the number of matching events.
    #[arg(long, short)]
    count: bool,
    /// Audit logs; stdin when none.
    files: Vec<PathBuf>,
}

/// Exit status like grep: 0 when something matched, 1 when nothing did, 2 on errors.
pub fn query(args: QueryArgs) -> Result<Status, String> {
    let query = Query::parse(&args.query).map_err(|e| format!("invalid query: {e}\n{}", e.render(&args.query)))?;
    let pipeline = Pipeline::new(input::load_config(&args.source)?);
    let enricher = pipeline.enricher();
    let key = enricher.config.key.clone();
    let mut out = Output::new();
    let mut matched = 0u64;
    let max_event_bytes = pipeline.config().limits.max_event_bytes;
    input::for_each_record(&args.files, max_event_bytes, &mut |item| {
        let Item::Record { record, .. } = item else { return out.flush() };
        for_each_event(record.bytes, &mut |_, parsed| {
            let Ok(event) = parsed else { return };
            let mut enrichment = String::new();
            enricher.enrich_json(&event, &mut enrichment);
            let extra: Option<serde_json::Value> = serde_json::from_str(&enrichment).ok();
            let doc = EventDoc::new(&event, &key, extra.as_ref());
            if !query.matches(&doc) {
                return;
            }
            matched += 1;
            if args.count {
                return;
            }
            if args.enrich {
                kaudit::write_event(&event, &Default::default(), &[(&key, &enrichment)], &mut out.buf);
            } else {
                kaudit::compact_into(event.obj.text.trim(), &mut out.buf);
            }
            out.buf.push(b'\n');
        });
        out.flush_if_full()
    })?;
    if args.count {
        println!("{matched}");
    }
    Ok(if matched > 0 { Status::Success } else { Status::Negative })
}
