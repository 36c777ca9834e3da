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

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use fluent_bit_run::*;
use serde_json::{json, Value};
use support::real_hosts::{
    self, kaudit_run as native, missing_and_duplicated, multiset, parse_tolerating_torn, repo_root, Native,
};
use support::{wait_for, Recorder, TempDir};

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

/// Every conformance vector through the shipped config, with `extra` replacements (the module).
fn conformance_vectors(bin: &Path, extra: &[(&str, &str)], what: &str) {
    let dirs = vectors();
    let carried: usize = std::thread::scope(|s| {
        let runs: Vec<_> = dirs
            .iter()
            .map(|dir| {
                s.spawn(move || {
                    let name = dir.file_name().expect("name").to_string_lossy().into_owned();
                    let input = std::fs::read(dir.join("input.jsonl")).expect("input");
                    let config = std::fs::read_to_string(dir.join("config.yaml")).ok();
                    check_stream_with(bin, &format!("{what}{name}"), &input, config.as_deref(), 10, extra);
                    carriers(&input, config.as_deref())
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("vector run")).sum()
    });
    // The grep on kaudit_dropped was exercised: events dropped by the policy raised alerts,
    // the alerts arrived (check_stream) and the carriers did not reach the audit log.
    eprintln!("{what}conformance vectors: {carried} kaudit_dropped carriers kept out of the audit log");
    assert!(carried > 0, "no vector has an event that the policy drops and that raises alerts");
}

#[test]
fn conformance_vectors_through_the_shipped_config_equal_kaudit_run() {
    let Some(bin) = fluent_bit("conformance vectors") else { return };
    conformance_vectors(&bin, &[], "");
}

/// `kaudit-fluent-bit.aot` (`cargo xtask build-wasm` writes it with flb-wamrc), or `None` after
/// saying so; under `CI=true` a missing one fails.
fn aot_artifact(test: &str) -> Option<PathBuf> {
    let aot = artifact().with_extension("aot");
    if aot.is_file() {
        return Some(aot);
    }
    let msg =
        format!("{test}: {} is missing (`cargo xtask build-wasm` writes it when flb-wamrc is found)", aot.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; under CI=true the AOT module must be tested");
    }
    eprintln!("SKIPPED {msg}");
    None
}

#[test]
fn the_aot_module_runs_the_conformance_vectors_like_kaudit_run() {
    let Some(bin) = fluent_bit("AOT conformance vectors") else { return };
    let Some(aot) = aot_artifact("AOT conformance vectors") else { return };
    let wasm = artifact().display().to_string();
    let aot = aot.display().to_string();
    conformance_vectors(&bin, &[(wasm.as_str(), aot.as_str())], "aot-");
}

#[test]
fn an_aot_file_of_another_target_or_wamr_version_stops_fluent_bit_with_an_error_not_a_crash() {
    let Some(bin) = fluent_bit("AOT ABI mismatch") else { return };
    let Some(aot) = aot_artifact("AOT ABI mismatch") else { return };
    let Some(wamrc) = real_hosts::require(&real_hosts::FLB_WAMRC, "AOT ABI mismatch") else { return };
    let dir = TempDir::new("aot-abi");
    // A module really compiled for another CPU architecture (an empty module: seconds, not the
    // minute the filter takes). On an aarch64 machine, x86_64 is the other one.
    let other = if cfg!(target_arch = "aarch64") { "x86_64" } else { "aarch64" };
    std::fs::write(dir.0.join("empty.wasm"), b"\0asm\x01\0\0\0").expect("module");
    let out = Command::new(&wamrc)
        .arg(format!("--target={other}"))
        .arg("-o")
        .arg(dir.0.join("other-target.aot"))
        .arg(dir.0.join("empty.wasm"))
        .output()
        .expect("flb-wamrc");
    assert!(out.status.success(), "flb-wamrc --target={other}: {}", String::from_utf8_lossy(&out.stderr));
    // The filter's own .aot as another WAMR would have written it: the AOT format version (the
    // u32 after the magic `\0aot`, 5 in WAMR 2.4.1) changed; and the same file cut short.
    let mut bytes = std::fs::read(&aot).expect("aot");
    assert_eq!(&bytes[..4], b"\0aot", "an AOT file starts with the magic \\0aot");
    let truncated = bytes[..bytes.len() / 2].to_vec();
    bytes[4] = bytes[4].wrapping_sub(1);
    std::fs::write(dir.0.join("other-version.aot"), &bytes).expect("write");
    std::fs::write(dir.0.join("truncated.aot"), &truncated).expect("write");
    let wasm = artifact().display().to_string();
    for (file, error) in [
        ("other-target.aot", format!("invalid target type, expected {} but got {other}", std::env::consts::ARCH)),
        ("other-version.aot", "unknown binary version".to_string()),
        ("truncated.aot", "unexpected end".to_string()),
    ] {
        let path = dir.0.join(file).display().to_string();
        let mut run = Run::new(bin.clone(), file, None, &[(wasm.as_str(), path.as_str())]);
        let status = run.start_expecting_failure();
        let log = run.log();
        // Refused at start-up with WAMR's reason, exit status 255: not a signal (no crash).
        assert_eq!(status.code(), Some(255), "{file}: fluent-bit must exit with 255, not crash: {status}\n{log}");
        let line = log
            .lines()
            .find(|l| l.contains("AOT module load failed"))
            .unwrap_or_else(|| panic!("{file}: no load error in the log:\n{log}"));
        assert!(line.contains(&error), "{file}: expected {error:?} in {line:?}");
        assert!(log.contains("Failed initialize filter wasm"), "{file}: the filter's init failed:\n{log}");
        assert!(!run.path("out/audit-filtered.log").exists(), "{file}: nothing was written");
        eprintln!("{file}: exit status 255; {}", line.trim());
    }
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

/// The route sections of plugins/fluent-bit/README.md ("Alert routes"), for a route `name`
/// posting to the run's plain-HTTP receiver at `uri`: (the `rewrite_tag` filter, the `http` output).
/// Substituted: the route name, host, port, URI, and `tls: on` -> `tls: off` (the receiver is on
/// loopback; the shipped route's TLS is `the_shipped_alert_route_posts_only_to_a_verified_webhook`).
fn readme_route(name: &str, port: u16, uri: &str) -> (String, String) {
    let readme = std::fs::read_to_string(repo_root().join("plugins/fluent-bit/README.md")).expect("README");
    let marker =
        readme.find("loaded by plugins/fluent-bit/testhost/tests/real_fluent_bit.rs").expect("the route block");
    let start = readme[marker..].find("```yaml\n").expect("yaml block") + marker + "```yaml\n".len();
    let block = &readme[start..start + readme[start..].find("```").expect("end of block")];
    let mut text = block.replace("alertmanager", name);
    for (from, to) in [
        (format!("host: {name}.monitoring.svc"), "host: 127.0.0.1".to_string()),
        ("port: 9093".to_string(), format!("port: {port}")),
        ("uri: /api/v2/alerts".to_string(), format!("uri: {uri}")),
        ("tls: on".to_string(), "tls: off".to_string()),
    ] {
        assert!(text.contains(&from), "the README's route block no longer has {from:?}");
        text = text.replace(&from, &to);
    }
    let at = text.find("    - name: http").expect("the http output");
    (text[..at].to_string(), text[at..].to_string())
}

/// What the core renders for each record of `input` that raises alerts, per route: the bodies
/// the module must hand to Fluent Bit (one per record and route).
fn expected_bodies(input: &[u8], config: &str, route: &str) -> Vec<String> {
    let (mut p, _) = kaudit::Pipeline::from_config_text(config, "kaudit.yaml", &kaudit::NoFiles).expect("config");
    let mut bodies = Vec::new();
    for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut out = Vec::new();
        p.process_record(line, &mut out);
        let alerts = p.take_alerts();
        let cfg = &p.config().alerts;
        if let Some(payload) = cfg.payload(cfg.route(route).expect("route"), &alerts) {
            bodies.push(payload.body);
        }
    }
    bodies
}

#[test]
fn alert_routes_post_alertmanager_slack_and_dingtalk_payloads_one_per_record() {
    use kaudit_testkit::alert_schemas::{check_alertmanager, check_dingtalk, check_slack};
    let Some(bin) = fluent_bit("alert routes") else { return };
    let config = "alerts:\n  routes:\n    - {name: am, format: alertmanager, endsAfter: 1h, labels: {cluster: test}}\n    \
                  - {name: chat, format: slack, minSeverity: medium}\n    - {name: ding, format: dingtalk, keyword: kaudit}\n";
    let receiver = Recorder::start();
    let routes = [("am", "/api/v2/alerts"), ("chat", "/services/T0/B0/x"), ("ding", "/robot/send?access_token=t")];
    let (mut filters, mut outputs) = (String::new(), String::new());
    for (name, uri) in routes {
        let (f, o) = readme_route(name, receiver.port, uri);
        filters.push_str(&f);
        outputs.push_str(&o);
    }
    let anchor = "    # A record the policy dropped but whose alerts must still go out";
    let with_filters = format!("{filters}{anchor}");
    let mut run = Run::new(bin, "routes", Some(config), &[(anchor, with_filters.as_str())]);
    let rendered = std::fs::read_to_string(run.path("fluent-bit.yaml")).expect("config");
    std::fs::write(run.path("fluent-bit.yaml"), format!("{rendered}\n{outputs}")).expect("config");
    run.start();
    let input = std::fs::read(repo_root().join("tests/conformance/vectors/seed-alerts/input.jsonl")).expect("input");
    let want = native(&input, Some(config));
    let lines: Vec<&[u8]> = input.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    run.stream(&lines, 5, Duration::from_millis(20));
    let expected: Vec<(&str, &str, Vec<String>)> =
        routes.iter().map(|(n, u)| (*n, *u, expected_bodies(&input, config, n))).collect();
    run.wait_for_output(want.events.len(), want.alerts.len());
    let all_posted = wait_for(30, || {
        expected.iter().all(|(_, uri, bodies)| receiver.requests_to(uri).len() >= bodies.len()).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(run.stop().success());
    assert!(all_posted.is_some(), "not every route's payloads arrived:\n{}", tail(&run.log(), 40));
    let got = parse_output(&run.output());
    assert_clean(&got, "routes");
    assert_same_records(&got, &want.events, "routes");
    assert_same_alerts(&run.alerts(), &want.alerts, "routes: the kaudit.alerts route");
    for (name, uri, bodies) in &expected {
        let requests = receiver.requests_to(uri);
        assert!(!bodies.is_empty(), "{name}: the vector raises alerts for this route");
        let posted: Vec<String> = requests.iter().map(|r| String::from_utf8(r.body.clone()).expect("utf-8")).collect();
        // Byte for byte what the core renders, one request per record with alerts.
        assert_eq!(
            multiset(&posted.iter().map(|b| json!(b)).collect::<Vec<_>>()),
            multiset(&bodies.iter().map(|b| json!(b)).collect::<Vec<_>>()),
            "{name}"
        );
        for (r, body) in requests.iter().zip(&posted) {
            assert_eq!(r.method, "POST", "{name}");
            assert_eq!(r.header("content-type"), Some("application/json"), "{name}");
            let checked = match *name {
                "am" => check_alertmanager(body).map(|_| ()),
                "chat" => check_slack(body).map(|_| ()),
                _ => check_dingtalk(body, Some("kaudit")).map(|_| ()),
            };
            assert_eq!(checked, Ok(()), "{name}: {body}");
        }
    }
    // Alertmanager got every alert, each with the rule's name and the event time.
    let am: Vec<Value> = receiver
        .requests_to("/api/v2/alerts")
        .iter()
        .flat_map(|r| serde_json::from_slice::<Vec<Value>>(&r.body).expect("array"))
        .map(|a| json!([a["labels"]["alertname"], a["startsAt"]]))
        .collect();
    let native_am: Vec<Value> = want.alerts.iter().map(|a| json!([a["rule"], a["time"]])).collect();
    assert_eq!(multiset(&am), multiset(&native_am));
    let log = run.log();
    // `body_key` problems are warnings (a record without the key, a body that is not a string).
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("[error]") || (l.contains("[ warn]") && !l.contains("service will shutdown")))
        .collect();
    assert!(complaints.is_empty(), "Fluent Bit complained:\n{}", complaints.join("\n"));
    eprintln!(
        "alert routes: {} alerts; requests: alertmanager {}, slack {}, dingtalk {}",
        want.alerts.len(),
        expected[0].2.len(),
        expected[1].2.len(),
        expected[2].2.len()
    );
}

impl Run {
    /// Sends SIGHUP (the shipped `hot_reload: on`) and waits until the reloaded pipeline
    /// watches the input again; returns how long that took.
    fn hot_reload(&self) -> Duration {
        let watching = format!("name={}", self.path("in.log").display());
        let before = self.log().matches(&watching).count();
        let started = Instant::now();
        self.signal("-HUP");
        let done = wait_for(60, || (self.log().matches(&watching).count() > before).then_some(()));
        assert!(done.is_some(), "no reload within 60 s:\n{}", tail(&self.log(), 40));
        assert!(self.log().contains("[reload] start everything"), "{}", tail(&self.log(), 40));
        started.elapsed()
    }
}

#[test]
fn collection_turns_off_and_on_by_hot_reload_and_no_record_read_before_is_lost() {
    let Some(bin) = fluent_bit("enable/disable") else { return };
    // flush 5 instead of 1 (the one value changed): the records read before each switch are
    // still buffered in Fluent Bit when the SIGHUP arrives.
    let mut run = Run::new(bin, "switch", Some("enabled: true\n"), &[("flush: 1", "flush: 5")]);
    run.start();
    let a = kaudit_testkit::corpus::generate(300, 31);
    let b = kaudit_testkit::corpus::generate(200, 32);
    let c = kaudit_testkit::corpus::generate(300, 33);
    let (want_a, want_c) = (native(&a, None), native(&c, None));
    assert!(!want_a.alerts.is_empty() && !want_c.alerts.is_empty(), "both streams raise alerts");

    // On: A is read and buffered (not yet flushed) when collection is switched off.
    run.append(&a);
    std::thread::sleep(Duration::from_millis(1_500));
    let flushed_at_switch = run.output().len();
    std::fs::write(run.path("kaudit.yaml"), "enabled: false\n").expect("kaudit.yaml");
    let off_took = run.hot_reload();
    run.wait_for_output(want_a.events.len(), want_a.alerts.len());

    // Off: B is consumed; nothing reaches the audit log or the alert webhook.
    run.append(&b);
    std::thread::sleep(Duration::from_secs(7));
    assert_same_records(&parse_output(&run.output()), &want_a.events, "collection off");
    assert_same_alerts(&run.alerts(), &want_a.alerts, "collection off");

    // On again: C is collected and alerted (alert windows start afresh with the new instance).
    std::fs::write(run.path("kaudit.yaml"), "enabled: true\n").expect("kaudit.yaml");
    let on_took = run.hot_reload();
    run.append(&c);
    let both = want_a.events.len() + want_c.events.len();
    run.wait_for_output(both, want_a.alerts.len() + want_c.alerts.len());
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(run.stop().success());
    let got = parse_output(&run.output());
    assert_clean(&got, "switch");
    let want: Vec<String> = want_a.events.iter().chain(&want_c.events).cloned().collect();
    assert_same_records(&got, &want, "A, then C after collection is back on");
    let alerts: Vec<Value> = want_a.alerts.iter().chain(&want_c.alerts).cloned().collect();
    assert_same_alerts(&run.alerts(), &alerts, "A and C");
    let log = run.log();
    assert!(!log.contains("[error]"), "Fluent Bit logged errors:\n{}", tail(&log, 40));
    assert!(!log.contains("Got exception"), "a trap:\n{}", tail(&log, 40));
    eprintln!(
        "enable/disable: {} of A's {} records flushed at the switch-off, all {} after it; B ({} events) \
         consumed while off; C's {} records and {} alerts after the switch-on; hot reload off {:.2} s, on {:.2} s",
        flushed_at_switch,
        want_a.events.len(),
        want_a.events.len(),
        b.split(|x| *x == b'\n').filter(|l| !l.is_empty()).count(),
        want_c.events.len(),
        want_c.alerts.len(),
        off_took.as_secs_f64(),
        on_took.as_secs_f64()
    );
}

/// What a policy decided for an output record: (auditID, stage, level, has requestObject, has
/// responseObject). The Lua filter's records come back through LuaJIT tables (an empty array may
/// come back as a map), so decisions are compared, not whole records.
fn decisions(records: &[Value]) -> Vec<(String, String, String, bool, bool)> {
    records
        .iter()
        .map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (s("auditID"), s("stage"), s("level"), r.get("requestObject").is_some(), r.get("responseObject").is_some())
        })
        .collect()
}

#[test]
fn the_lua_policy_filter_of_the_benchmark_decides_like_kaudit() {
    // plugins/fluent-bit/kaudit-policy.lua is what `cargo xtask bench-fluent-bit` compares the
    // module with: it must do the same work (the seed's policy) for the comparison to be honest.
    let Some(bin) = fluent_bit("Lua policy filter") else { return };
    let dir = TempDir::new("lua");
    let mut input = kaudit_testkit::corpus::generate(2_000, 16);
    input.extend_from_slice(&std::fs::read(repo_root().join("tests/fixtures/sample-audit.log")).expect("sample log"));
    std::fs::write(dir.0.join("in.log"), &input).expect("input");
    let script = repo_root().join("plugins/fluent-bit/kaudit-policy.lua");
    // The benchmark's pipeline: the shipped tail and parser settings, read once, to a file.
    let config = format!(
        "service:\n  flush: 1\n  grace: 1\n  log_level: warn\n  json.escape_unicode: off\nparsers:\n  - name: kaudit-audit-json\n    \
         format: json\n    time_key: stageTimestamp\n    time_format: \"%Y-%m-%dT%H:%M:%S.%LZ\"\n    time_keep: on\npipeline:\n  \
         inputs:\n    - name: tail\n      tag: kube.audit\n      path: {d}/in.log\n      parser: kaudit-audit-json\n      \
         read_from_head: true\n      exit_on_eof: true\n      buffer_max_size: 4M\n  filters:\n    - name: lua\n      \
         match: kube.audit\n      script: {script}\n      call: kaudit_policy\n  outputs:\n    - name: file\n      \
         match: '*'\n      path: {d}\n      file: out.log\n      format: plain\n",
        d = dir.0.display(),
        script = script.display()
    );
    std::fs::write(dir.0.join("fluent-bit.yaml"), config).expect("config");
    let out = Command::new(&bin).arg("-c").arg(dir.0.join("fluent-bit.yaml")).output().expect("fluent-bit");
    let log = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fluent-bit with the Lua filter: {}\n{}", out.status, tail(&log, 30));
    assert!(!log.contains("[error]"), "Fluent Bit logged errors:\n{}", tail(&log, 30));
    let lines: Vec<String> =
        std::fs::read_to_string(dir.0.join("out.log")).unwrap_or_default().lines().map(String::from).collect();
    let got = decisions(&parse_output(&lines));
    let policy_only = "enrichment:\n  enabled: false\nalerts:\n  enabled: false\n";
    let want: Vec<Value> = native(&input, Some(policy_only)).events.iter().map(|l| as_record(l)).collect();
    let want = decisions(&want);
    let events = input.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    // The sample exercises every kind of decision: drops, and each level kept with its bodies.
    assert!(want.len() < events, "the policy drops events of the sample");
    for level in ["Metadata", "Request", "RequestResponse"] {
        assert!(want.iter().any(|d| d.2 == level), "the sample has events kept at {level}");
    }
    assert!(want.iter().any(|d| d.2 == "Metadata" && !d.3 && !d.4), "bodies stripped at Metadata");
    assert_eq!(got.len(), want.len(), "Lua kept {} events, kaudit {} (of {events})", got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "record {i}: the Lua filter decided otherwise than kaudit");
    }
    eprintln!("Lua policy filter: {events} events in, {} kept, the same decisions as kaudit run", got.len());
}
