//! `kaudit`: the command-line host. Reads files/stdin, drives the core pipeline, prints results.
//! Builds natively and as a `wasi:cli` command component (wasm32-wasip2) from the same code.

// The WASI command is built with `panic=unwind` (std rebuilt, wasm exception handling) so the
// per-record guard works there too. `-Zbuild-std` on the 1.95 toolchain leaves LLVM's C++
// exception tag undefined, and the component would import it; defining it is what compiler-rt
// does (rust-lang/rust#152241).
#![cfg_attr(all(target_arch = "wasm32", panic = "unwind"), feature(asm_experimental_arch))]
#[cfg(all(target_arch = "wasm32", panic = "unwind"))]
core::arch::global_asm!(".globl __cpp_exception", ".tagtype __cpp_exception i32", "__cpp_exception:");

mod aggregate_cmd;
mod apiserver_cmd;
mod args;
mod demo_log;
mod exit;
mod guard;
mod gunzip;
mod input;
mod output;
mod policy_cmd;
mod report_cmd;
mod run_cmd;
mod term;

use std::path::PathBuf;
use std::process::ExitCode;

use args::{RecordArgs, Source};
use clap::{Args, Parser, Subcommand};
use exit::Status;
use input::Item;
use kaudit::RecordReport;
use output::{print_summary, report_bad, Output};

/// Kubernetes audit-log policy evaluation, enrichment, alerting and reporting.
#[derive(Parser)]
#[command(name = "kaudit", version, about, long_about = None, propagate_version = true, after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the audit policy to events: kept events (JSON lines) on stdout, a summary on stderr.
    Filter(FilterArgs),
    /// Print the policy decision for every event as one JSON line.
    Explain(ExplainArgs),
    /// Policy, enrichment and alerts: kept events (enriched) on stdout, alerts as JSON lines.
    Run(run_cmd::RunArgs),
    /// Print the events that match a search-language query (see docs/QUERY.md).
    Query(run_cmd::QueryArgs),
    /// Merge the partial records of `alerts.role: agent` runs and raise their alerts (docs/SCALING.md).
    Aggregate(aggregate_cmd::AggregateArgs),
    /// Audit reports (overview, operations overview, operation details) as JSON or HTML.
    Report(Box<report_cmd::ReportArgs>),
    /// Check an audit policy, or measure what it would keep from recorded logs.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Write a day of a small cluster's audit log (deterministic, for trying kaudit out).
    DemoLog(demo_log::DemoLogArgs),
    /// The kube-apiserver side, from the same config: audit policy (v1), flags, webhook
    /// kubeconfig, kubeadm patch, static-pod manifest; `check` reports drift.
    #[command(subcommand)]
    Apiserver(apiserver_cmd::ApiserverCommand),
}

#[derive(Args)]
struct FilterArgs {
    #[command(flatten)]
    records: RecordArgs,
    /// Audit logs (JSON lines, EventList or JSON arrays; EKS, GKE and AKS exports as delivered,
    /// gzip included); stdin when none or `-`.
    files: Vec<PathBuf>,
}

#[derive(Args)]
struct ExplainArgs {
    #[command(flatten)]
    source: Source,
    /// Audit logs; stdin when none.
    files: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file: exit 0 if the apiserver would load it, 1 with the errors otherwise.
    Check {
        /// Policy file (YAML or JSON).
        file: PathBuf,
    },
    /// For recorded logs: events and bytes per rule and level, as recorded and under the policy.
    Impact {
        /// Policy to measure.
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Recorded audit logs.
        #[arg(required = true)]
        logs: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let grep_like = match &cli.command {
        Command::Query(_) => true,
        Command::Apiserver(cmd) => apiserver_cmd::is_check(cmd),
        _ => false,
    };
    let result = match cli.command {
        Command::Filter(args) => filter(args),
        Command::Explain(args) => explain(args),
        Command::Run(args) => run_cmd::run(args),
        Command::Query(args) => run_cmd::query(args),
        Command::Aggregate(args) => aggregate_cmd::aggregate(args),
        Command::Report(args) => report_cmd::report(*args),
        Command::Policy(PolicyCommand::Check { file }) => policy_cmd::check(&file),
        Command::Policy(PolicyCommand::Impact { policy, json, logs }) => policy_cmd::impact(&policy, &logs, json),
        Command::DemoLog(args) => demo_log::demo_log(args),
        Command::Apiserver(cmd) => apiserver_cmd::apiserver(cmd),
    };
    exit::status(grep_like, result)
}

fn filter(args: FilterArgs) -> Result<Status, String> {
    let mut config = args.records.config()?;
    // `filter` is the policy alone; `run` adds enrichment and alerts.
    config.enrichment.enabled = false;
    config.alerts.enabled = false;
    let mut pipeline = kaudit::Pipeline::new(config);
    let mut out = Output::new();
    let mut guard = guard::Guard::default();
    let max_event_bytes = pipeline.config().limits.max_event_bytes;
    input::for_each_record(&args.files, max_event_bytes, &mut |item| match item {
        Item::Record { input, record } => {
            guard.record(input, &record, &mut out.buf, |buf| {
                pipeline.process_document(record.bytes, record.line, buf, &mut |r: &RecordReport| {
                    if !args.records.quiet {
                        report_bad(input, r);
                    }
                })
            });
            out.flush_if_full()
        }
        Item::EndOfRead => out.flush(),
    })?;
    print_summary(&pipeline);
    guard.print_summary();
    args.records.metrics.write(&pipeline)?;
    Ok(Status::Success)
}

fn explain(args: ExplainArgs) -> Result<Status, String> {
    let pipeline = kaudit::Pipeline::new(input::load_config(&args.source)?);
    let mut out = Output::new();
    let mut bad = 0;
    input::for_each_record(&args.files, pipeline.config().limits.max_event_bytes, &mut |item| {
        let Item::Record { input, record } = item else { return out.flush() };
        pipeline.explain_stream(record.bytes, &mut |e| match e.to_json() {
            Some(json) => {
                out.buf.extend_from_slice(json.as_bytes());
                out.buf.push(b'\n');
            }
            None => {
                bad += 1;
                let error = e.result.err().map(ToString::to_string).unwrap_or_default();
                // `e.pos.line` counts from the record's first line.
                let pos = kaudit::RecordPos { line: record.line + e.pos.line - 1, ..e.pos };
                eprintln!("kaudit: {}:{pos}: bad record: {}", term::field(input), term::field(&error));
            }
        });
        out.flush_if_full()
    })?;
    Ok(if bad > 0 { Status::Negative } else { Status::Success })
}
