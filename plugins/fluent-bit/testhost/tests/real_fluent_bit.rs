//! The real Fluent Bit (5.1.1, WAMR 2.4.1 inside: fast interpreter, no SIMD) running the shipped
//! plugins/fluent-bit/fluent-bit.yaml with only paths and ports substituted (the `tail` input's
//! file, storage and DB, the module, the output folder; the alert webhook's host/port/URI come
//! from the environment the config names), fed by appending to the tailed file as
//! kube-apiserver does.
//!
//! The oracle is the native CLI, `kaudit run`, on the same lines: the audit log Fluent Bit writes
//! must equal its output record for record as JSON values (Fluent Bit parses every line into
//! msgpack and writes it back, so bytes differ: key spacing, escapes, number spelling); the
//! alert webhook must receive each of its alerts exactly once; no `kaudit_dropped` carrier and
//! no alert key may reach the audit log.
//!
//! The alert route is HTTPS with the certificate and host name verified (as shipped): the
//! webhook is an Envoy terminating TLS with a certificate for `localhost` made at test time
//! (plugins/envoy/tests/support/pki.rs) in front of the recording receiver; `tls.ca_file` points
//! at that test CA.
//!
//! One deviation from the shipped file, in every run but one: `accessible_paths: /etc/kaudit`
//! becomes `accessible_paths: .` with Fluent Bit started in the run's folder, because WAMR
//! preopens a directory under its host path (Fluent Bit passes no mapped directories) and a test
//! must not write the machine's /etc/kaudit. The module then finds the config through its second
//! lookup path, `kaudit.yaml` (plugins/fluent-bit/src/config.rs; both paths go through the same
//! loader). `a_bad_etc_kaudit_config_stops_fluent_bit_at_startup` keeps `/etc/kaudit`: its
//! Fluent Bit runs in a private mount namespace where the run's `etc/kaudit` is laid over /etc.
//!
//! The host is found as plugins/envoy/tests/support/real_hosts.rs says; `kaudit run` is the
//! binary `cargo xtask test` builds and names in `$KAUDIT_CLI`.

mod fluent_bit_run;
#[path = "../../../envoy/tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use fluent_bit_run::*;
use serde_json::{json, Value};
use support::real_hosts::{
    self, kaudit_run as native, missing_and_duplicated, parse_tolerating_torn, repo_root, Native,
};
use support::{wait_for, TempDir};

/// Two normal events with one padded to `padding` bytes between them, and what `kaudit run`
/// writes for the two normal ones.
fn padded_between_two(seed: u64, padding: usize) -> (String, Native) {
    let small = one_event(seed);
    let mut big: Value = serde_json::from_str(&small).expect("event");
    big["annotations"] = json!({ "padding": "x".repeat(padding) });
    let want = native(format!("{small}\n{small}\n").as_bytes(), None);
    (format!("{small}\n{big}\n{small}\n"), want)
}

/// Starts a run that Fluent Bit must refuse; its exit status and kaudit's error line.
fn refused_start(run: &mut Run) -> (ExitStatus, String) {
    let status = run.start_expecting_failure();
    let log = run.log();
    assert!(!status.success(), "fluent-bit must not run with a config kaudit cannot load:\n{log}");
    let error =
        log.lines().find(|l| l.starts_with("kaudit: error:")).unwrap_or_else(|| panic!("no kaudit error:\n{log}"));
    assert!(!run.path("out/audit-filtered.log").exists(), "nothing was written");
    (status, error.to_string())
}

/// One audit event (the first line of kaudit's corpus generator for `seed`).
fn one_event(seed: u64) -> String {
    let corpus = String::from_utf8(kaudit_testkit::corpus::generate(1, seed)).expect("utf-8");
    corpus.lines().next().expect("one event").to_string()
}

/// How many events the policy drops but whose alerts must go out: the module returns them as
/// `kaudit_dropped` carriers, which the shipped config must keep out of the audit log.
fn carriers(input: &[u8], config: Option<&str>) -> usize {
    let mut p = match config {
        Some(text) => kaudit::Pipeline::from_config_text(text, "kaudit.yaml", &kaudit::NoFiles).expect("config").0,
        None => kaudit::Pipeline::embedded_default(),
    };
    let mut n = 0;
    for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut out = Vec::new();
        p.process_document(line, 1, &mut out, &mut |_| {});
        if out.is_empty() && !p.take_alerts().is_empty() {
            n += 1;
        }
    }
    n
}

fn vectors() -> Vec<PathBuf> {
    let root = repo_root().join("tests/conformance/vectors");
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&root).expect("vectors").map(|e| e.expect("entry").path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    assert!(dirs.len() >= 4, "conformance vectors missing in {}", root.display());
    dirs
}

#[test]
fn conformance_vectors_through_the_shipped_config_equal_kaudit_run() {
    let Some(bin) = fluent_bit("conformance vectors") else { return };
    let dirs = vectors();
    let carried: usize = std::thread::scope(|s| {
        let runs: Vec<_> = dirs
            .iter()
            .map(|dir| {
                let bin = &bin;
                s.spawn(move || {
                    let name = dir.file_name().expect("name").to_string_lossy().into_owned();
                    let input = std::fs::read(dir.join("input.jsonl")).expect("input");
                    let config = std::fs::read_to_string(dir.join("config.yaml")).ok();
                    check_stream(bin, &name, &input, config.as_deref(), 10);
                    carriers(&input, config.as_deref())
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("vector run")).sum()
    });
    // The grep on kaudit_dropped was exercised: events dropped by the policy raised alerts,
    // the alerts arrived (check_stream) and the carriers did not reach the audit log.
    eprintln!("conformance vectors: {carried} kaudit_dropped carriers kept out of the audit log");
    assert!(carried > 0, "no vector has an event that the policy drops and that raises alerts");
}

#[test]
fn a_realistic_stream_equals_kaudit_run_and_each_alert_arrives_once() {
    let Some(bin) = fluent_bit("realistic stream") else { return };
    // kaudit's corpus generator: system chatter, service accounts, humans with large bodies,
    // exec streams, 403s from public IPs (src/corpus.rs). 1,500 events: a few seconds of WAMR.
    let input = kaudit_testkit::corpus::generate(1_500, 14);
    let want = native(&input, None);
    assert!(!want.alerts.is_empty(), "the stream raises alerts");
    check_stream(&bin, "corpus", &input, None, 50);
}

#[test]
fn a_real_kube_apiserver_audit_log_equals_kaudit_run() {
    let Some(bin) = fluent_bit("kube-apiserver audit log") else { return };
    let Some(harness) = real_hosts::require(&real_hosts::KUBE_AUDIT, "kube-apiserver audit log") else { return };
    let dir = TempDir::new("kube");
    // Everything at RequestResponse: kaudit's policy (the seed's) decides what is kept.
    std::fs::write(
        dir.0.join("policy.yaml"),
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: RequestResponse\n",
    )
    .expect("policy");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&harness)
        .arg(dir.0.join("policy.yaml"))
        .arg(dir.0.join("run"))
        .output()
        .expect("run-audit.sh");
    assert!(
        out.status.success(),
        "run-audit.sh failed ({}):\n{}",
        out.status,
        tail(&String::from_utf8_lossy(&out.stderr), 30)
    );
    let log = std::fs::read(dir.0.join("run/audit.log")).expect("audit.log");
    let events = log.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    eprintln!("kube-apiserver run: {events} audit events in {:.1} s", started.elapsed().as_secs_f64());
    assert!(events > 200, "the apiserver wrote {events} events");
    check_stream(&bin, "kube-apiserver", &log, None, 50);
}

#[test]
fn a_bad_config_stops_fluent_bit_at_startup_with_file_line_and_field() {
    let Some(bin) = fluent_bit("bad config") else { return };
    let config = "# kaudit config\nbadRecords: pass\nalerts:\n  rules: []\nlimits:\n  maxEventBytes: lots\n";
    let mut run = Run::new(bin, "badconfig", Some(config), &[]);
    let (status, error) = refused_start(&mut run);
    assert!(error.contains("kaudit.yaml:6:"), "the error names file:line: {error}");
    assert!(error.contains("maxEventBytes"), "the error names the field: {error}");
    eprintln!("bad config: exit {status}; {error}");
}

#[test]
fn a_bad_etc_kaudit_config_stops_fluent_bit_at_startup() {
    let Some(bin) = fluent_bit("bad /etc/kaudit config") else { return };
    let config = "badRecords: pass\nalerts:\n  rules: []\nbadRecords: drop\n";
    let Some(mut run) = Run::with_etc_kaudit(bin, "badetc", config) else { return };
    let (status, error) = refused_start(&mut run);
    assert!(error.contains("/etc/kaudit/kaudit.yaml:4:"), "the error names /etc/kaudit/kaudit.yaml:line: {error}");
    assert!(error.contains("badRecords"), "the error names the field: {error}");
    eprintln!("bad /etc/kaudit config: exit {status}; {error}");
}

#[test]
fn a_record_larger_than_wasm_heap_size_comes_back_as_the_documented_error() {
    let Some(bin) = fluent_bit("record larger than the heap") else { return };
    // The shipped heap (8M) is twice tail's buffer_max_size (4M), and tail skips longer lines:
    // no line the shipped config reads can exceed the heap. So this run lowers the heap to 64K
    // (the one value changed) and sends a 200 KB event between two normal ones.
    let mut run = Run::new(bin, "heap", None, &[("wasm_heap_size: 8M", "wasm_heap_size: 64K")]);
    run.start();
    let (input, want) = padded_between_two(3, 200_000);
    run.append(input.as_bytes());
    run.wait_for_output(want.events.len() + 1, 0);
    assert_eq!(run.stop().code(), Some(0));
    let got = parse_output(&run.output());
    let errors: Vec<&Value> = got.iter().filter(|r| r.get("kaudit_error").is_some()).collect();
    assert_eq!(errors.len(), 1, "one error record: {errors:?}");
    let e = errors[0];
    assert_eq!(e["kaudit_error"], "record pointer is NULL (raise Wasm_Heap_Size)");
    let len = e["record_len"].as_u64().expect("record_len");
    assert!(len as usize >= 200_000, "record_len {len} is the record's JSON length");
    let rest: Vec<Value> = got.iter().filter(|r| r.get("kaudit_error").is_none()).cloned().collect();
    assert_same_records(&rest, &want.events, "around the big record");
    let log = run.log();
    assert!(log.contains("allocate") && log.contains("memory failed"), "WAMR reports the failed copy:\n{log}");
    eprintln!("record larger than the heap: {e}");
}

#[test]
fn a_line_longer_than_buffer_max_size_is_skipped_by_tail_with_a_warning() {
    let Some(bin) = fluent_bit("long line") else { return };
    let mut run = Run::new(bin, "longline", None, &[]);
    run.start();
    let (input, want) = padded_between_two(5, 4_300_000);
    run.append(input.as_bytes());
    run.wait_for_output(want.events.len(), 0);
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(run.stop().code(), Some(0));
    assert_same_records(&parse_output(&run.output()), &want.events, "around the long line");
    let log = run.log();
    let warning = log.lines().find(|l| l.contains("long lines")).unwrap_or_else(|| panic!("no skip warning:\n{log}"));
    eprintln!("long line: {warning}");
}

#[test]
fn sigterm_flushes_what_fluent_bit_holds() {
    let Some(bin) = fluent_bit("SIGTERM") else { return };
    // flush 30 instead of 1 (the one value changed): nothing is written before the SIGTERM, so
    // whatever the audit log has afterwards was flushed by the shutdown.
    let mut run = Run::new(bin, "sigterm", None, &[("flush: 1", "flush: 30")]);
    run.start();
    let input = kaudit_testkit::corpus::generate(300, 21);
    let want = native(&input, None);
    run.append(&input);
    // Time for tail to read it all and the filter to process it (well under a second here).
    std::thread::sleep(Duration::from_secs(4));
    assert!(run.output().is_empty(), "nothing is flushed before the flush interval");
    let status = run.stop();
    assert!(status.success(), "exit status {status}");
    assert_same_records(&parse_output(&run.output()), &want.events, "after SIGTERM");
    // The alert route is flushed too.
    let alerts = wait_for(10, || (run.alerts().len() >= want.alerts.len()).then_some(()));
    assert!(alerts.is_some() || want.alerts.is_empty(), "{} of {} alerts", run.alerts().len(), want.alerts.len());
    assert_same_alerts(&run.alerts(), &want.alerts, "after SIGTERM");
    eprintln!("SIGTERM: {} records and {} alerts flushed at shutdown", want.events.len(), want.alerts.len());
}

#[test]
fn kill_9_mid_stream_and_restart_lose_no_record() {
    let Some(bin) = fluent_bit("kill -9") else { return };
    let input = kaudit_testkit::corpus::generate(3_000, 99);
    let want = native(&input, None);
    let mut run = Run::new(bin, "kill9", None, &[]);
    run.start();
    let lines: Vec<&[u8]> = input.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    run.stream(first, 50, Duration::from_millis(20));
    // Kill as soon as part of it is in the audit log: the rest is in tail's buffer, in chunks
    // on disk, or not read yet.
    let part = wait_for(STREAM_TIMEOUT_SECS, || (run.output().len() >= want.events.len() / 6).then_some(()));
    assert!(part.is_some(), "nothing came out:\n{}", tail(&run.log(), 30));
    run.kill9();
    let at_kill = run.output().len();
    let chunks = files_under(&run.path("storage"));
    // The apiserver keeps writing while Fluent Bit is down.
    run.stream(second, 50, Duration::from_millis(5));
    run.start();
    run.wait_for_output(want.events.len(), 0);
    std::thread::sleep(Duration::from_secs(3));
    assert!(run.stop().success());
    // A kill -9 in the middle of the `file` output's write leaves a torn line: the start of a
    // record, then the next record written after the restart on the same line.
    let (got, torn) = parse_tolerating_torn(&run.output());
    assert!(torn.len() <= 1, "kill -9: more than one torn line: {torn:?}");
    assert_clean(&got, "kill -9");
    // No loss: every record kaudit run writes is in the audit log at least as often.
    let wanted: Vec<Value> = want.events.iter().map(|l| as_record(l)).collect();
    let (missing, duplicates) = missing_and_duplicated(&got, &wanted);
    assert_eq!(missing, 0, "kill -9: {missing} records lost");
    eprintln!(
        "kill -9: {} records expected, {} in the audit log at the kill, {} after the restart: none lost, {duplicates} duplicated; {} torn line(s) {:?}; {chunks} chunk file(s) in storage at the kill",
        want.events.len(),
        at_kill,
        got.len(),
        torn.len(),
        torn.iter().map(|t| t.chars().take(40).collect::<String>()).collect::<Vec<_>>()
    );
}

#[test]
fn wamr_stack_the_8k_default_stops_startup_and_16k_runs_kaudit() {
    let Some(bin) = fluent_bit("WAMR stack") else { return };
    // WAMR's interpreter keeps every frame of the call chain on this stack. Fluent Bit's default
    // (8K) overflows while `_initialize` loads the config, which fails the instantiation.
    let mut run = Run::new(bin.clone(), "stack8k", None, &[("wasm_stack_size: 256K", "wasm_stack_size: 8K")]);
    let status = run.start_expecting_failure();
    let log = run.log();
    assert!(!status.success(), "8K: fluent-bit must not start:\n{log}");
    assert!(log.contains("wasm operand stack overflow"), "8K: the overflow is named:\n{log}");
    assert!(!log.contains("kaudit: config"), "8K: `_initialize` did not finish:\n{log}");
    // 16K: start-up, the seed-alerts vector and records nested as deep as Fluent Bit's JSON
    // parser passes on (kaudit uses no stack that grows with nesting).
    let mut run = Run::new(bin, "stack16k", None, &[("wasm_stack_size: 256K", "wasm_stack_size: 16K")]);
    run.start();
    let mut input =
        std::fs::read(repo_root().join("tests/conformance/vectors/seed-alerts/input.jsonl")).expect("input");
    for depth in [20, 60] {
        let mut nested = "1".to_string();
        for _ in 0..depth {
            nested = format!("{{\"l\":{nested}}}");
        }
        input.extend_from_slice(format!("{{\"kind\":\"Event\",\"deep\":{nested}}}\n").as_bytes());
    }
    let want = native(&input, None);
    run.append(&input);
    run.wait_for_output(want.events.len(), want.alerts.len());
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(run.stop().success());
    assert_same_records(&parse_output(&run.output()), &want.events, "16K stack");
    assert_same_alerts(&run.alerts(), &want.alerts, "16K stack");
    assert!(!run.log().contains("Got exception"), "16K: a call trapped:\n{}", run.log());
}
