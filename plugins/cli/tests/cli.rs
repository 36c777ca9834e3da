//! The `kaudit` binary as a shell user drives it: outputs, summaries, exit codes, help.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kaudit_testkit::gzip;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(p: &str) -> PathBuf {
    root().join("tests/fixtures").join(p)
}

fn kaudit(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaudit"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.unwrap_or_default().to_vec();
    // From a thread: kaudit streams, so its output must be read while the input is written.
    let writer = std::thread::spawn(move || input.write_all(&bytes));
    let out = child.wait_with_output().unwrap();
    // A command that fails before reading its input closes the pipe early.
    if let Err(e) = writer.join().unwrap() {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn filter_summary_adds_up_and_bad_lines_pass_through() {
    let mut input = std::fs::read(fixture("sample-audit.log")).unwrap();
    input.extend_from_slice(b"{\"kind\": 0}\nnot json at all\n");
    let out = kaudit(&["filter"], Some(&input));
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(stdout.lines().count(), 90);
    assert!(stdout.contains("\nnot json at all\n"));
    assert!(stderr.contains("<stdin>:89: bad record (passed through): kind:"), "{stderr}");
    assert!(stderr.contains("<stdin>:90: bad record (passed through): invalid JSON"), "{stderr}");
    assert!(
        stderr.contains(
            "read 90 events: kept 88 (10 stripped), dropped 0 (0 level None, 0 omitted stage), bad 2 (passed through)"
        ),
        "{stderr}"
    );
    // `filter` is the policy alone: no enrichment key.
    assert!(!stdout.contains("\"kaudit\":"));
    let dropped = kaudit(&["filter", "--drop-bad", "-q"], Some(&input));
    assert_eq!(text(&dropped.stdout).lines().count(), 88);
    assert!(!text(&dropped.stderr).contains("bad record"));
}

/// In a pipe (`tail -f audit.log | kaudit run`), each event comes out as soon as its line
/// arrives, while stdin stays open.
#[test]
fn filter_and_run_stream_stdin_record_by_record() {
    use std::io::{BufRead, BufReader};
    let lines: Vec<String> =
        std::fs::read_to_string(fixture("sample-audit.log")).unwrap().lines().map(str::to_string).collect();
    for command in [&["filter"][..], &["run", "--alerts", "stdout"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kaudit"))
            .args(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        for line in &lines[..3] {
            stdin.write_all(line.as_bytes()).unwrap();
            stdin.write_all(b"\n").unwrap();
            stdin.flush().unwrap();
            let out = rx
                .recv_timeout(std::time::Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("{command:?}: no output for a line while stdin is open"));
            let auditid = |l: &str| serde_json::from_str::<serde_json::Value>(l).unwrap()["auditID"].clone();
            assert_eq!(auditid(&out), auditid(line), "{command:?}");
        }
        drop(stdin);
        assert!(child.wait().unwrap().success());
    }
}

/// Inputs are read in 1 MiB pieces: records and line numbers do not depend on where a piece ends.
#[test]
fn large_inputs_stream_with_whole_file_line_numbers() {
    let sample = std::fs::read(fixture("sample-audit.log")).unwrap();
    let mut input = Vec::new();
    while input.len() < 3 << 20 {
        input.extend_from_slice(&sample);
    }
    let lines = input.iter().filter(|b| **b == b'\n').count();
    // A pretty-printed event across lines, then a bad line, after the 3 MiB.
    input.extend_from_slice(b"{\n  \"kind\": \"Event\",\n  \"level\": 7\n}\nnot json\n");
    let dir = tempdir();
    let file = dir.join("big.log");
    std::fs::write(&file, &input).unwrap();
    let out = kaudit(&["filter", file.to_str().unwrap()], None);
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("big.log:{}: bad record (passed through)", lines + 1)), "{stderr}");
    assert!(stderr.contains(&format!("big.log:{}: bad record (passed through): invalid JSON", lines + 5)), "{stderr}");
    // One event per line of the sample, then the two bad records.
    assert!(stderr.contains(&format!("read {} events", lines + 2)), "{stderr}");
    // The same bytes through stdin give the same output.
    let piped = kaudit(&["filter"], Some(&input));
    assert_eq!(piped.stdout, out.stdout);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn explain_matches_the_conformance_vectors() {
    for v in ["custom-policy", "managed-fields"] {
        let dir = root().join("tests/conformance/vectors").join(v);
        let out = kaudit(
            &[
                "explain",
                "--config",
                dir.join("config.yaml").to_str().unwrap(),
                dir.join("input.jsonl").to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(text(&out.stdout), std::fs::read_to_string(dir.join("explain.jsonl")).unwrap(), "{v}");
    }
}

#[test]
fn policy_check_exit_codes_and_messages() {
    let ok = kaudit(&["policy", "check", fixture("policies/ack-default-audit-policy.yaml").to_str().unwrap()], None);
    assert!(ok.status.success());
    assert!(text(&ok.stdout).contains("valid audit.k8s.io/v1beta1 policy with 12 rules"));
    let dir = tempdir();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n  nonResourceURLs: [healthz]\n",
    )
    .unwrap();
    let out = kaudit(&["policy", "check", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.yaml:4:10: rules[0].level: unsupported value \"Everything\""), "{stderr}");
    assert!(stderr.contains("bad.yaml:5:21: rules[0].nonResourceURLs[0]"), "{stderr}");
    let missing = kaudit(&["policy", "check", "/nonexistent/policy.yaml"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("/nonexistent/policy.yaml"));
}

#[test]
fn bad_config_names_file_line_and_key() {
    let dir = tempdir();
    let cfg = dir.join("kaudit.yaml");
    std::fs::write(&cfg, "policyFile: missing.yaml\nenrichment:\n  sourceIp: true\n").unwrap();
    let out = kaudit(&["run", "--config", cfg.to_str().unwrap()], Some(b""));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("kaudit.yaml:1:13: policyFile: cannot read policy file"), "{stderr}");
    assert!(stderr.contains("kaudit.yaml:3:3: enrichment.sourceIp: unknown key"), "{stderr}");
}

#[test]
fn impact_reports_bytes_per_rule() {
    let out = kaudit(
        &[
            "policy",
            "impact",
            "--json",
            "--policy",
            fixture("policies/ack-default-audit-policy.yaml").to_str().unwrap(),
            fixture("sample-audit.log").to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"]["events"], 88);
    let rules = v["rules"].as_array().unwrap();
    let by_rule = |i: u64| rules.iter().find(|r| r["rule"] == i).unwrap();
    // Rule 8 (secrets/configmaps at Metadata) cuts bodies: fewer bytes after than before.
    assert!(by_rule(8)["bytesAfter"].as_u64() < by_rule(8)["bytesBefore"].as_u64());
    assert_eq!(by_rule(8)["level"], "Metadata");
    let sum: u64 = rules.iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(sum, 88);
}

#[test]
fn query_is_grep_like() {
    let log = fixture("sample-audit.log");
    let out = kaudit(
        &["query", "verb : create and objectRef.subresource:exec and stage:  ResponseStarted", log.to_str().unwrap()],
        None,
    );
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).lines().count(), 1);
    let none = kaudit(&["query", "verb: nothing-like-this", log.to_str().unwrap()], None);
    assert_eq!(none.status.code(), Some(1));
    let bad = kaudit(&["query", "verb : (", log.to_str().unwrap()], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("column 8"));
    // Any error is 2, never the "no match" 1: a missing config or input file too.
    let no_config =
        kaudit(&["query", "--config", "/nonexistent/kaudit.yaml", "verb: get", log.to_str().unwrap()], None);
    assert_eq!(no_config.status.code(), Some(2), "{}", text(&no_config.stderr));
    assert!(text(&no_config.stderr).contains("/nonexistent/kaudit.yaml"));
    let no_input = kaudit(&["query", "verb: get", "/nonexistent/audit.log"], None);
    assert_eq!(no_input.status.code(), Some(2), "{}", text(&no_input.stderr));
}

#[test]
fn errors_exit_1_outside_query_and_the_statuses_are_in_the_help() {
    let log = fixture("sample-audit.log");
    let log = log.to_str().unwrap();
    for args in [
        vec!["filter", "--config", "/nonexistent/kaudit.yaml", log],
        vec!["run", "--config", "/nonexistent/kaudit.yaml", log],
        vec!["explain", "--config", "/nonexistent/kaudit.yaml", log],
        vec!["filter", "/nonexistent/audit.log"],
        vec!["run", "--drop-bad", "-q", "/nonexistent/audit.log"],
    ] {
        let out = kaudit(&args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).starts_with("kaudit: error: /nonexistent/"), "{args:?}: {}", text(&out.stderr));
    }
    let help = text(&kaudit(&["--help"], None).stdout);
    assert!(help.contains("Exit status: 0 success; 1 a negative answer"), "{help}");
    assert!(help.contains("2 for query and apiserver check"), "{help}");
    // `filter` and `run` share their record options (one flattened RecordArgs).
    for cmd in ["filter", "run"] {
        let help = text(&kaudit(&[cmd, "--help"], None).stdout);
        for flag in ["--config <FILE>", "--policy <FILE>", "--drop-bad", "-q, --quiet", "--metrics <FILE|stderr>"] {
            assert!(help.contains(flag), "{cmd} --help lacks {flag}: {help}");
        }
    }
}

#[test]
fn help_on_every_command_and_usage_errors() {
    for args in [
        vec!["--help"],
        vec!["filter", "--help"],
        vec!["explain", "--help"],
        vec!["run", "--help"],
        vec!["query", "--help"],
        vec!["report", "--help"],
        vec!["policy", "--help"],
        vec!["policy", "check", "--help"],
        vec!["policy", "impact", "--help"],
    ] {
        let out = kaudit(&args, None);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage: kaudit"), "{args:?}");
    }
    let out = kaudit(&["frobnicate"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = kaudit(&["policy", "impact"], None);
    assert_eq!(out.status.code(), Some(2));
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kaudit-cli-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `--metrics` writes the same counters object every host reports; a limit that was hit is
/// named in the summary, and only then.
#[test]
fn metrics_and_limit_hits_are_reported() {
    let dir = tempdir();
    let log = fixture("alerts/seed-example2-internet.jsonl");
    let metrics_of = |config: Option<&Path>| {
        let file = dir.join("metrics.json");
        let mut args = vec![
            "run".to_string(),
            "--no-events".into(),
            "--alerts".into(),
            dir.join("alerts.jsonl").display().to_string(),
        ];
        args.extend(["--metrics".to_string(), file.display().to_string()]);
        if let Some(c) = config {
            args.extend(["--config".to_string(), c.display().to_string()]);
        }
        args.push(log.display().to_string());
        let out = kaudit(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        (m, text(&out.stderr))
    };
    let (m, stderr) = metrics_of(None);
    let n = |m: &serde_json::Value, k: &str| m[k].as_u64().unwrap_or_else(|| panic!("{k} in {m}"));
    assert!(n(&m, "read") > 0);
    assert_eq!(n(&m, "read"), n(&m, "kept") + n(&m, "dropped") + n(&m, "bad") + n(&m, "oversized"));
    assert_eq!(n(&m["alerts"], "alerts"), 7, "seed example 2 raises 7 alerts (tests/fixtures/alerts/README.md)");
    assert_eq!(n(&m["alerts"], "groupsEvicted"), 0);
    assert!(stderr.contains("kaudit: 7 alerts ("), "{stderr}");
    assert!(!stderr.contains("limits hit"), "{stderr}");

    // One group per rule: the per-address rules evict at every new address.
    let config = dir.join("tight.yaml");
    std::fs::write(&config, "alerts:\n  limits:\n    maxGroups: 1\n").unwrap();
    let (tight, stderr) = metrics_of(Some(&config));
    let evicted = n(&tight["alerts"], "groupsEvicted");
    assert!(evicted > 0, "{tight}");
    assert!(n(&tight["alerts"], "groups") <= 4, "at most one group for each grouped rule: {tight}");
    assert!(stderr.contains(&format!("kaudit: limits hit: {evicted} alert groups evicted (maxGroups)")), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Peak resident set (`VmHWM`, KiB) of a running `kaudit run --no-events` fed `events`
/// distinct-actor events (a new address and user each, `kaudit_testkit::corpus`) through stdin, polled
/// until it exits (VmHWM only grows, so the last reading is the peak but for the last moments).
fn run_peak_rss_kb(events: u32) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaudit"))
        .args(["run", "--no-events", "--alerts", "/dev/null", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let poll = std::thread::spawn(move || {
        let mut peak = 0;
        while let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
            if s.lines().any(|l| l.starts_with("State:") && l.contains("zombie")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        peak
    });
    let mut stdin = std::io::BufWriter::new(child.stdin.take().unwrap());
    let mut line = String::new();
    for i in 0..events {
        kaudit_testkit::corpus::distinct_actor_event(i, &mut line);
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(text(&out.stderr).contains(&format!("read {events} events: kept {events}")), "{}", text(&out.stderr));
    poll.join().unwrap()
}

/// `kaudit run` streams its input: memory does not grow with the input's size or its
/// cardinality (2.4x the events, 2.4x the bytes, as many more addresses and users). Reading the
/// input whole would add its 19 MB difference. `KAUDIT_CLI_MEMORY_EVENTS=1000000` runs the million
/// (docs/RELIABILITY.md).
#[test]
fn run_memory_is_bounded_on_a_long_high_cardinality_stream() {
    let events = std::env::var("KAUDIT_CLI_MEMORY_EVENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(60_000);
    let small = run_peak_rss_kb(25_000);
    let big = run_peak_rss_kb(events);
    eprintln!("kaudit run peak RSS: {small} KiB after 25,000 events, {big} KiB after {events}");
    assert!(big < 64 * 1024, "peak RSS {big} KiB");
    assert!(big <= small + 8 * 1024, "memory grew with the input: {small} KiB, then {big} KiB");
}

#[test]
fn managed_cluster_exports_from_files_gzip_and_stdin() {
    // A Firehose→S3 object as stored (back-to-back gzip members), from a file and from stdin.
    let object = fixture("managed/eks/cloudwatch-synth/firehose-s3-object.no-decompression.gz");
    let want = std::fs::read_to_string(fixture(
        "managed/eks/cloudwatch-synth/firehose-s3-object.decompressed-message-extraction.jsonl",
    ))
    .unwrap();
    let keep_all = tempdir().join("keep-all.yaml");
    std::fs::write(&keep_all, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n").unwrap();
    let policy = ["filter", "--policy", keep_all.to_str().unwrap()];
    let from_file = kaudit(&[&policy[..], &[object.to_str().unwrap()]].concat(), None);
    assert!(from_file.status.success(), "{}", text(&from_file.stderr));
    let from_stdin = kaudit(&policy, Some(&std::fs::read(&object).unwrap()));
    assert_eq!(text(&from_file.stdout), text(&from_stdin.stdout));
    // A policy that keeps everything as it is: the apiserver's bytes.
    assert_eq!(text(&from_file.stdout), want);
    assert!(text(&from_file.stderr).contains("read 12 events: kept 12"), "{}", text(&from_file.stderr));

    // AKS and GKE in one go; the non-audit records pass through and are named in the summary.
    let aks = fixture("managed/aks/dynatrace/aks-records.jsonl");
    let gke = fixture("managed/gke/dynatrace/gcp-logentries.jsonl");
    let out = kaudit(&["filter", "-q", aks.to_str().unwrap(), gke.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("of these: 4 records that are not audit events"), "{stderr}");
    assert_eq!(text(&out.stdout).lines().count(), 6, "{}", text(&out.stdout));
    // The README's GKE example: `gcloud logging read --format=json` prints a pretty-printed array.
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(fixture("managed/gke/khi/gke-logentries.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let gcloud = serde_json::to_string_pretty(&entries).unwrap();
    let out = kaudit(&["run", "--no-events"], Some(gcloud.as_bytes()));
    assert!(text(&out.stderr).contains("read 3 events: kept 3"), "{}", text(&out.stderr));
    let cw = fixture("managed/eks/cloudwatch-synth/subscription-CONTROL_MESSAGE.decoded.json");
    let out = kaudit(&["filter", cw.to_str().unwrap()], None);
    assert!(text(&out.stderr).contains("1 CloudWatch control messages consumed"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

/// `kaudit <args> <input>`: stdout, stderr with the input's path written `INPUT`, success.
fn on(args: &[&str], input: &Path) -> (String, String, bool) {
    let out = kaudit(&[args, &[input.to_str().unwrap()]].concat(), None);
    let stderr = text(&out.stderr).replace(input.to_str().unwrap(), "INPUT");
    (text(&out.stdout), stderr, out.status.success())
}

/// `run` (alerts on stderr, between the records' reports), `filter`, `report` and `policy impact`
/// on `input`, with `config`; the metrics of `run` last.
fn every_command(input: &Path, config: &Path) -> Vec<(String, String, bool)> {
    let metrics = input.with_extension("metrics.json");
    let (c, m) = (config.to_str().unwrap(), metrics.to_str().unwrap());
    let policy = root().join("tests/fixtures/policies/k8s-website-audit-policy.yaml");
    let mut got = vec![
        on(&["run", "--config", c, "--alerts", "stderr", "--metrics", m], input),
        on(&["filter", "--config", c], input),
        on(&["report", "--json", "--config", c], input),
        on(&["policy", "impact", "--json", "--policy", policy.to_str().unwrap()], input),
    ];
    got.push((std::fs::read_to_string(&metrics).unwrap(), String::new(), true));
    got
}

/// A gzip input (a rotated `audit.log.gz`, managed-cluster deliveries) gives what its
/// decompressed stream gives, streamed: `limits.maxBatchBytes` bounds a gzip record, not a file.
#[test]
fn gzip_inputs_stream_and_give_what_the_plain_input_gives() {
    let dir = tempdir();
    let config = dir.join("small-batches.yaml");
    std::fs::write(&config, "limits:\n  maxBatchBytes: 65536\n").unwrap();
    let log = std::fs::read(fixture("alerts/seed-example2-internet.jsonl")).unwrap();
    assert!(log.len() > 4 * 65536);
    let cut = log.len() / 3 + 7; // mid-line
    let cw = |f: &str| std::fs::read(fixture(&format!("managed/eks/cloudwatch-synth/{f}"))).unwrap();
    let (firehose, kinesis, export) = (
        cw("firehose-s3-object.no-decompression.gz"),
        cw("kinesis-record-data.DATA_MESSAGE.gz"),
        cw("export-task-000000.gz"),
    );
    let gunzip = |data: &[u8]| {
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut plain).unwrap();
        plain
    };
    let cases: [(&str, Vec<u8>, Vec<u8>); 7] = [
        // (a) One member (logrotate) that decompresses to more than maxBatchBytes.
        ("one member over maxBatchBytes", gzip(&log), log.clone()),
        // (d) `cat a.gz b.gz`, the line cut across members (as a block compressor cuts it).
        ("two members, a line across them", [gzip(&log[..cut]), gzip(&log[cut..])].concat(), log.clone()),
        ("gzip of gzip", gzip(&gzip(&log)), log.clone()),
        // (b) The managed-cluster shapes; a Firehose→S3 object is envelopes with no delimiter.
        ("Firehose→S3 object", firehose.clone(), gunzip(&firehose)),
        ("Kinesis record", kinesis.clone(), gunzip(&kinesis)),
        ("CloudWatch export", export.clone(), gunzip(&export)),
        ("EventList", gzip(br#"{"kind":"EventList","items":[{"kind":"Event","stage":"ResponseComplete","verb":"get","level":"Metadata"}]}"#), br#"{"kind":"EventList","items":[{"kind":"Event","stage":"ResponseComplete","verb":"get","level":"Metadata"}]}"#.to_vec()),
    ];
    for (i, (what, compressed, plain)) in cases.iter().enumerate() {
        let (gz_file, plain_file) = (dir.join(format!("{i}.log.gz")), dir.join(format!("{i}.log")));
        std::fs::write(&gz_file, compressed).unwrap();
        std::fs::write(&plain_file, plain).unwrap();
        let got = every_command(&gz_file, &config);
        assert!(got.iter().all(|(_, _, ok)| *ok), "{what}: {got:?}");
        assert!(!got[0].0.is_empty() && got[0].1.contains("kaudit: read"), "{what}: {got:?}");
        assert!(got == every_command(&plain_file, &config), "{what}: not what the plain input gives");
        // stdin too (`kaudit filter < audit.log.gz`).
        let piped = kaudit(&["filter", "--config", config.to_str().unwrap()], Some(compressed));
        assert_eq!(text(&piped.stdout), got[1].0, "{what} on stdin");
    }
    // Several managed deliveries in one file read as the files one after the other.
    let all = dir.join("all.gz");
    std::fs::write(&all, [kinesis, firehose, export].concat()).unwrap();
    let apart: Vec<String> = [4, 3, 5].iter().map(|i| dir.join(format!("{i}.log.gz")).display().to_string()).collect();
    let apart = kaudit(&[&["filter"][..], &apart.iter().map(String::as_str).collect::<Vec<_>>()].concat(), None);
    let (stdout, stderr, _) = on(&["filter"], &all);
    assert!(stdout == text(&apart.stdout), "the deliveries in one file differ from them apart");
    assert!(
        stderr.contains("read 32 events: kept 30") && text(&apart.stderr).contains("read 32 events: kept 30"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// (c) A gzip stream cut short is an error naming the input, after the records before the cut.
#[test]
fn a_truncated_gzip_is_an_error_after_the_records_before_it() {
    let dir = tempdir();
    let log = std::fs::read(fixture("sample-audit.log")).unwrap();
    let half = log.len() / 2;
    let second = gzip(&log[half..]);
    // A whole member, then one cut short.
    let cut = [gzip(&log[..half]), second[..second.len() / 2].to_vec()].concat();
    let mut decoded = Vec::new();
    assert!(flate2::read::MultiGzDecoder::new(&cut[..]).read_to_end(&mut decoded).is_err());
    let complete = &decoded[..decoded.iter().rposition(|b| *b == b'\n').unwrap() + 1];
    assert!(complete.len() > half);
    let (gz_file, plain_file) = (dir.join("audit.log.gz"), dir.join("audit.log"));
    std::fs::write(&gz_file, &cut).unwrap();
    std::fs::write(&plain_file, complete).unwrap();
    let line = complete.iter().filter(|b| **b == b'\n').count() + 1;
    for command in ["filter", "run"] {
        let (stdout, stderr, ok) = on(&[command], &gz_file);
        assert!(!ok);
        let want = format!(
            "kaudit: error: INPUT: gzip: member 2: incomplete deflate stream (line {line} of the decompressed stream; \
             the records before it were processed)"
        );
        assert!(stderr.contains(&want), "{stderr}");
        assert_eq!(stdout, on(&[command], &plain_file).0, "{command}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Strings an API caller controls, with what a terminal acts on: colour and screen-clearing CSI,
/// an OSC window title ended by BEL, carriage return and backspace (overwrite), a C1 CSI
/// (U+009B), a bidirectional override (U+202E) and a line separator.
const TERMINAL_HOSTILE: &str = "\u{1b}[31mred\u{1b}]0;pwned\u{7}\r\u{8}\u{9b}2J\u{202e}gnp.exe\u{2028}\u{7f}";

fn acts_on_terminal(c: char) -> bool {
    matches!(c, '\0'..='\x09' | '\x0b'..='\x1f' | '\x7f'..='\u{9f}' | '\u{061c}' | '\u{200e}' | '\u{200f}'
        | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Fails when `what` holds anything a terminal acts on (line breaks aside).
fn assert_inert(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| acts_on_terminal(c)) {
        panic!(
            "{what}: U+{:04X} at byte {at}: {:?}",
            c as u32,
            &text[at.saturating_sub(60)..(at + 60).min(text.len())]
        );
    }
}

/// A log whose every attacker-writable field carries TERMINAL_HOSTILE: one exec (an alert), one
/// secret deletion, one event with a hostile audit ID and level, and a line that is not JSON.
fn terminal_hostile_log() -> Vec<u8> {
    let h = TERMINAL_HOSTILE;
    let event = |id: &str, verb: &str, resource: &str, sub: Option<&str>, uri: &str| {
        let mut object = serde_json::json!({ "resource": resource, "namespace": format!("ns{h}"), "name": format!("obj{h}"), "apiVersion": "v1" });
        if let Some(s) = sub {
            object["subresource"] = s.into();
        }
        serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": format!("Metadata{h}"), "auditID": format!("{id}{h}"),
            "stage": "ResponseStarted", "requestURI": uri, "verb": verb,
            "user": { "username": format!("mallory{h}"), "groups": ["system:authenticated"] },
            "sourceIPs": ["203.0.113.7"], "userAgent": format!("agent{h}"), "objectRef": object,
            "responseStatus": { "metadata": {}, "code": 101 },
            "requestReceivedTimestamp": "2026-12-06T10:00:00.000000Z", "stageTimestamp": "2026-12-06T10:00:00.100000Z",
        })
        .to_string()
    };
    let exec_uri = "/api/v1/namespaces/ns/pods/obj/exec?command=%1B%5B31msh%E2%80%AE&container=c%C2%9B2J&stdin=true";
    let lines = [
        event("exec", "create", "pods", Some("exec"), exec_uri),
        event("del", "delete", "secrets", None, "/api/v1/namespaces/ns/secrets/obj"),
        event("get", "get", &format!("widgets{h}"), None, "/apis/x/v1/widgets"),
    ];
    let mut log = lines.join("\n").into_bytes();
    log.extend_from_slice(b"\n{\"kind\":\"Event\",\"note\":\"\x1b[2J\x1b]0;raw\x07\xc2\x9b\"\n");
    log
}

/// Item 4 of SECURITY.md: no control character from event data reaches a terminal. Messages
/// (summaries, errors quoting input, alerts on stderr) are escaped always; data on stdout is
/// byte-exact in a pipe and escaped on a terminal (run under `script`, which gives a pty).
#[test]
fn event_data_reaches_no_terminal_unescaped() {
    let dir = tempdir();
    let log = dir.join("hostile.log");
    std::fs::write(&log, terminal_hostile_log()).unwrap();
    let policy = root().join("rules/ack-default-audit-policy.yaml");
    let file = log.to_str().unwrap();
    let text_commands: [&[&str]; 4] = [
        &["report", "--last", "all", file],
        &["report", "--last", "all", "--resource-type", &format!("widgets{TERMINAL_HOSTILE}"), file],
        &["policy", "impact", "--policy", policy.to_str().unwrap(), file],
        &["explain", file],
    ];
    for args in text_commands {
        let out = kaudit(args, None);
        assert_inert(&format!("{args:?} stderr"), &out.stderr);
        if args[0] != "explain" {
            assert_inert(&format!("{args:?} stdout"), &out.stdout);
        }
    }
    let summary = text(&kaudit(&["report", "--last", "all", file], None).stdout);
    assert!(
        summary.contains("mallory\\u001b[31mred\\u001b]0;pwned\\u0007\\u000d\\u0008\\u009b2J\\u202egnp.exe"),
        "{summary}"
    );
    let explain = kaudit(&["explain", file], None);
    assert!(text(&explain.stderr).contains("bad record: "), "{}", text(&explain.stderr));

    // Alerts on stderr, and the bad line's error message.
    let run = kaudit(&["run", file], None);
    let stderr = text(&run.stderr);
    assert!(stderr.contains("mallory\\u001b[31mred"), "the exec alert names the user: {stderr}");
    assert!(stderr.contains("bad record (passed through)"), "{stderr}");
    assert_inert("run stderr", &run.stderr);
    for line in stderr.lines().filter(|l| l.starts_with('{')) {
        let alert: serde_json::Value = serde_json::from_str(line).expect("an escaped alert is still JSON");
        assert_eq!(alert["fields"]["account"], format!("mallory{TERMINAL_HOSTILE}"), "the same value: {alert}");
    }
    let query = kaudit(&["query", &format!("user.username: \"{TERMINAL_HOSTILE}"), file], None);
    assert_inert("query error", &query.stderr);

    // In a pipe, data stays byte-exact: the bad line passes through as it was.
    let piped = kaudit(&["filter", file], None);
    assert!(piped.stdout.windows(4).any(|w| w == b"\x1b[2J"), "a pipe gets the record as it was");

    // On a terminal: `script` runs kaudit with stdout and stderr on a pseudo-terminal.
    let script = ["/usr/bin/script", "/bin/script"].into_iter().find(|p| Path::new(p).exists());
    let Some(script) = script else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "script(1) (util-linux) is needed for the terminal test");
        eprintln!("skipped: script(1) not found");
        return;
    };
    let bin = env!("CARGO_BIN_EXE_kaudit");
    for args in ["filter", "run --alerts stdout", "explain", "report --json --last all", "query verb:delete"] {
        let command = format!("{bin} {args} {file}");
        let out = Command::new(script).args(["-qec", &command, "/dev/null"]).stdin(Stdio::null()).output().unwrap();
        let shown = text(&out.stdout).replace("\r\n", "\n");
        assert!(shown.contains("\\u001b[31m"), "{args}: {shown}");
        assert_inert(&format!("{args} on a terminal"), shown.as_bytes());
    }
}

#[test]
fn three_agent_runs_aggregated_raise_what_one_run_raises() {
    let dir = tempdir();
    let log = std::fs::read_to_string(fixture("alerts/seed-example2-internet.jsonl")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let single = kaudit(&["run", "--quiet", "--no-events", "--alerts", "stdout", "-"], Some(log.as_bytes()));
    assert!(single.status.success(), "{}", text(&single.stderr));
    let mut want: Vec<String> = text(&single.stdout).lines().map(String::from).collect();
    assert!(want.iter().filter(|a| a.contains("\"rule\":\"internet-access-failures\"")).count() == 2);
    let mut partial_files = Vec::new();
    for i in 0..3 {
        let third: String = lines.iter().skip(i).step_by(3).map(|l| format!("{l}\n")).collect();
        let config = dir.join(format!("agent{i}.yaml"));
        std::fs::write(
            &config,
            format!("alerts:\n  role: agent\n  aggregation:\n    agentId: node-{i}\n    perEventRules: aggregator\n"),
        )
        .unwrap();
        let partials = dir.join(format!("partials{i}.jsonl"));
        let out = kaudit(
            &[
                "run",
                "--quiet",
                "--no-events",
                "--config",
                config.to_str().unwrap(),
                "--alerts",
                "stdout",
                "--partials",
                partials.to_str().unwrap(),
                "-",
            ],
            Some(third.as_bytes()),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "", "an agent raises nothing itself");
        partial_files.push(partials.to_str().unwrap().to_string());
    }
    let mut args = vec!["aggregate"];
    args.extend(partial_files.iter().map(String::as_str));
    let merged = kaudit(&args, None);
    assert!(merged.status.success(), "{}", text(&merged.stderr));
    assert!(text(&merged.stderr).contains("from 3 agents"), "{}", text(&merged.stderr));
    let mut got: Vec<String> = text(&merged.stdout).lines().map(String::from).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // A file that is not partials is refused line by line (exit 1), the rest still merged.
    let bad = kaudit(&["aggregate", fixture("alerts/seed-example1-exec.jsonl").to_str().unwrap()], None);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("seed-example1-exec.jsonl:1: "), "{}", text(&bad.stderr));
    // `--partials` needs the agent role, and the agent role needs `--partials`.
    let wrong = kaudit(&["run", "--partials", "x.jsonl", "-"], Some(b""));
    assert!(text(&wrong.stderr).contains("only an agent writes partials"), "{}", text(&wrong.stderr));
    std::fs::remove_dir_all(&dir).ok();
}
