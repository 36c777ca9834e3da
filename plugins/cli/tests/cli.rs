//! The `kaudit` binary as a shell user drives it: outputs, summaries, exit codes, help.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
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
    assert!(stderr.contains("read 90 events: kept 88 (10 stripped), dropped 0 (0 level None, 0 omitted stage), bad 2 (passed through)"), "{stderr}");
    // `filter` is the policy alone: no enrichment key.
    assert!(!stdout.contains("\"kaudit\":"));
    let dropped = kaudit(&["filter", "--drop-bad", "-q"], Some(&input));
    assert_eq!(text(&dropped.stdout).lines().count(), 88);
    assert!(!text(&dropped.stderr).contains("bad record"));
}

#[test]
fn explain_matches_the_conformance_vectors() {
    for v in ["custom-policy", "managed-fields"] {
        let dir = root().join("tests/conformance/vectors").join(v);
        let out = kaudit(&["explain", "--config", dir.join("config.yaml").to_str().unwrap(), dir.join("input.jsonl").to_str().unwrap()], None);
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
    std::fs::write(&bad, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n  nonResourceURLs: [healthz]\n").unwrap();
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
    let out = kaudit(&["policy", "impact", "--json", "--policy", fixture("policies/ack-default-audit-policy.yaml").to_str().unwrap(), fixture("sample-audit.log").to_str().unwrap()], None);
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
    let out = kaudit(&["query", "verb : create and objectRef.subresource:exec and stage:  ResponseStarted", log.to_str().unwrap()], None);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).lines().count(), 1);
    let none = kaudit(&["query", "verb: nothing-like-this", log.to_str().unwrap()], None);
    assert_eq!(none.status.code(), Some(1));
    let bad = kaudit(&["query", "verb : (", log.to_str().unwrap()], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("column 8"));
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
