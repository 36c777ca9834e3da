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
mod demo_log;
mod guard;
mod input;
mod policy_cmd;
mod report_cmd;
mod run_cmd;
mod term;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use input::Item;
use kaudit::RecordReport;
use kaudit::{BadRecords, Outcome};
use term::say;

/// Kubernetes audit-log policy evaluation, enrichment, alerting and reporting.
#[derive(Parser)]
#[command(name = "kaudit", version, about, long_about = None, propagate_version = true)]
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
pub struct Source {
    /// kaudit config file (YAML); the embedded default (the seed's policy) when absent.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Audit policy file (YAML or JSON, audit.k8s.io/v1 or v1beta1); overrides the config's policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Args)]
struct FilterArgs {
    #[command(flatten)]
    source: Source,
    /// Drop records that are not valid audit events instead of passing them through.
    #[arg(long)]
    drop_bad: bool,
    /// Do not report each bad record on stderr (the summary still counts them).
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    metrics: Metrics,
    /// Audit logs (JSON lines, EventList or JSON arrays; EKS, GKE and AKS exports as delivered,
    /// gzip included); stdin when none or `-`.
    files: Vec<PathBuf>,
}

#[derive(Args)]
pub struct Metrics {
    /// At the end, write every counter (events, limit hits, alert engine statistics) as one
    /// JSON object (the object every kaudit host reports, docs/RELIABILITY.md) to FILE or `stderr`.
    #[arg(long, value_name = "FILE|stderr")]
    pub metrics: Option<PathBuf>,
}

impl Metrics {
    pub fn write(&self, pipeline: &kaudit::Pipeline) -> Result<(), String> {
        let Some(path) = &self.metrics else { return Ok(()) };
        let json = pipeline.metrics_json();
        if path.as_os_str() == "stderr" {
            eprintln!("{}", term::field(&json));
            return Ok(());
        }
        std::fs::write(path, format!("{json}\n")).map_err(|e| format!("{}: {e}", path.display()))
    }
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

/// How a command ended when nothing went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0.
    Success,
    /// A negative answer, exit 1: no event matched (`query`), the policy is invalid (`policy
    /// check`), some records were not audit events (`explain`).
    Negative,
}

/// The one place a command's result becomes the exit status. `query` and `apiserver check` keep grep's promise
/// (0 match, 1 no match, 2 any error: a bad query, config or input file); the other commands
/// exit 1 on an error, as they are documented to.
fn exit_status(grep_like: bool, result: Result<Status, String>) -> ExitCode {
    match result {
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::Negative) => ExitCode::from(1),
        Err(e) => {
            say!("kaudit: error: {e}");
            ExitCode::from(if grep_like { 2 } else { 1 })
        }
    }
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
    exit_status(grep_like, result)
}

/// Writes output in large blocks; a closed pipe (e.g. `| head`) ends quietly. On a terminal,
/// control characters in the data are written as escapes (term.rs).
pub struct Output {
    out: std::io::StdoutLock<'static>,
    terminal: bool,
    pub buf: Vec<u8>,
}

impl Default for Output {
    fn default() -> Self {
        Output::new()
    }
}

impl Output {
    pub fn new() -> Self {
        Output { out: std::io::stdout().lock(), terminal: term::stdout_is_terminal(), buf: Vec::with_capacity(1 << 20) }
    }
    pub fn flush_if_full(&mut self) -> Result<(), String> {
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(())
    }
    pub fn flush(&mut self) -> Result<(), String> {
        let bytes = if self.terminal { term::stream(&self.buf) } else { std::borrow::Cow::Borrowed(&self.buf[..]) };
        let r = self.out.write_all(&bytes).and_then(|_| self.out.flush());
        self.buf.clear();
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            r => r.map_err(|e| format!("stdout: {e}")),
        }
    }
}

fn filter(args: FilterArgs) -> Result<Status, String> {
    let mut config = input::load_config(&args.source)?;
    if args.drop_bad {
        config.bad_records = BadRecords::Drop;
    }
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
                    if !args.quiet {
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
    args.metrics.write(&pipeline)?;
    Ok(Status::Success)
}

/// The one-line summary on stderr (read = kept + dropped + bad + oversized).
pub fn print_summary(pipeline: &kaudit::Pipeline) {
    let c = pipeline.counters();
    eprintln!(
        "kaudit: read {} events: kept {} ({} stripped), dropped {} ({} level None, {} omitted stage), bad {} ({}), oversized {}",
        c.read,
        c.kept,
        c.stripped,
        c.dropped,
        c.dropped_level_none,
        c.dropped_omitted_stage,
        c.bad,
        if pipeline.config().bad_records == BadRecords::Pass { "passed through" } else { "dropped" },
        c.oversized
    );
    // Managed-cluster input (EKS, GKE, AKS): what was not an event, when there was any.
    print_nonzero(
        "of these",
        &[
            (c.truncated, "events EKS truncated"),
            (c.bad_wrapper, "wrappers that did not decode"),
            (c.not_audit, "records that are not audit events (other log categories or services)"),
            (c.control_messages, "CloudWatch control messages consumed"),
            (c.dropped_disabled, "records consumed while collection is off (enabled: false)"),
        ],
    );
    // Limit hits are worth a line only when they happened: each means something was not
    // tracked or kept as configured (docs/RELIABILITY.md, "Resource bounds").
    let a = pipeline.alert_stats();
    print_nonzero(
        "limits hit",
        &[
            (c.oversized_batches, "batches over maxBatchBytes"),
            (c.alerts_dropped, "alerts over maxPendingAlerts dropped"),
            (a.groups_evicted, "alert groups evicted (maxGroups)"),
            (a.distinct_overflow, "distinct values untracked (maxDistinct)"),
        ],
    );
}

/// One summary line `kaudit: <label>: N what, …` of the counts that are not zero (none: no line).
fn print_nonzero(label: &str, counts: &[(u64, &str)]) {
    let parts: Vec<String> = counts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")).collect();
    if !parts.is_empty() {
        eprintln!("kaudit: {label}: {}", parts.join(", "));
    }
}

pub fn report_bad(name: &str, r: &RecordReport) {
    if let Outcome::Bad { error, passed } = &r.outcome {
        let action = if *passed { "passed through" } else { "dropped" };
        eprintln!(
            "kaudit: {}:{}: bad record ({action}): {}",
            term::field(name),
            r.pos,
            term::field(&error.to_string())
        );
    }
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
