//! What the record-processing commands write: events to stdout in large blocks, and on stderr
//! the per-record reports of bad records and the end-of-run summary.

use std::io::Write;

use kaudit::{BadRecords, Outcome, RecordReport};

use crate::term;

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
