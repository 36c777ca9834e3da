//! Replays, on the pinned stable toolchain, what the fuzz targets check (fuzz/src/checks.rs,
//! included here as is): every input saved under `fuzz/regressions/<target>/` (each a crash or
//! a property violation the fuzzer found, kept after the fix), and the seed inputs the corpora
//! start from (the real data in tests/), so the properties are known to hold on real data.
//!
//! The host-adapter targets (`fluent_bit`, `envoy_batch`, `envoy_settings`) need their crates;
//! their saved inputs are replayed here through the core path they drive (the record path, the
//! batch path, the config loader), and fully with `cargo fuzz run <target> <file>` (docs/RELIABILITY.md).

#[allow(dead_code)]
#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs `check` on `input`, naming the input when it panics.
fn replay(name: &str, input: &[u8], check: fn(&[u8])) {
    if let Err(e) = std::panic::catch_unwind(|| check(input)) {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{name}: {msg}");
    }
}

/// The core checks a saved input of each target goes through.
fn checks_for(target: &str) -> Vec<fn(&[u8])> {
    match target {
        "pipeline_record" => vec![checks::pipeline_record],
        "pipeline_stream" => vec![checks::pipeline_stream],
        "pipeline_batch" | "envoy_batch" => vec![checks::pipeline_batch],
        "policy_load" => vec![checks::policy_load],
        "query" => vec![checks::query],
        "config_load" => vec![checks::config_load],
        "rule_pack" => vec![checks::rule_pack],
        // `config \0 record` or a bare record.
        "fluent_bit" => vec![|d: &[u8]| {
            let (config, record) = checks::split_nul(d);
            if d.contains(&0) {
                checks::config_load(config);
                checks::pipeline_record(record);
            } else {
                checks::pipeline_record(d);
            }
        }],
        // The envelope is Envoy's own; its `config` text is a kaudit config.
        "envoy_settings" => vec![checks::config_load],
        other => panic!("fuzz/regressions/{other}: no such fuzz target"),
    }
}

#[test]
fn saved_fuzz_inputs_replay_clean() {
    let dir = root().join("fuzz/regressions");
    for target_dir in
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).filter_map(|e| e.ok())
    {
        if !target_dir.path().is_dir() {
            continue;
        }
        let target = target_dir.file_name().to_string_lossy().into_owned();
        for f in files(&target_dir.path()) {
            let input = std::fs::read(&f).unwrap();
            for check in checks_for(&target) {
                replay(
                    &format!("fuzz/regressions/{target}/{}", f.file_name().unwrap().to_string_lossy()),
                    &input,
                    check,
                );
            }
        }
    }
}

/// Real event logs: every record, every whole file, and each as a batch.
#[test]
fn real_logs_hold_the_pipeline_properties() {
    let r = root();
    let mut logs = vec![r.join("tests/fixtures/sample-audit.log"), r.join("tests/fixtures/audit2rbac/demo.log")];
    logs.extend(
        files(&r.join("tests/fixtures/alerts")).into_iter().filter(|p| p.extension().is_some_and(|e| e == "jsonl")),
    );
    for d in std::fs::read_dir(r.join("tests/conformance/vectors")).unwrap().filter_map(|e| e.ok()) {
        let input = d.path().join("input.jsonl");
        if input.exists() {
            logs.push(input);
        }
    }
    logs.extend(
        files(&r.join("tests/fixtures/falco")).into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")),
    );
    let mut records = 0;
    for log in &logs {
        let name = log.strip_prefix(&r).unwrap().display().to_string();
        let bytes = std::fs::read(log).unwrap();
        replay(&name, &bytes, checks::pipeline_stream);
        replay(&name, &bytes, checks::pipeline_batch);
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        for (i, line) in lines.iter().enumerate() {
            replay(&format!("{name}:{}", i + 1), line, checks::pipeline_record);
            records += 1;
        }
        let array = [b"[".as_slice(), &lines.join(&b","[..]), b"]"].concat();
        replay(&format!("{name} as a JSON array"), &array, checks::pipeline_batch);
    }
    assert!(records > 700, "{records} records");
}

#[test]
fn real_policies_configs_rules_and_queries_hold_their_properties() {
    let r = root();
    let sample = std::fs::read(r.join("tests/fixtures/sample-audit.log")).unwrap();
    let mut policies = files(&r.join("tests/fixtures/policies"));
    policies.push(r.join("tests/fixtures/audit2rbac/demo-policy.yaml"));
    policies.push(r.join("fuzz/seeds/policy.json"));
    for p in &policies {
        let text = std::fs::read(p).unwrap();
        // Every one of these loads: a check that silently returns on a load error would prove nothing.
        assert!(kaudit::Policy::load(std::str::from_utf8(&text).unwrap(), "p").is_ok(), "{}", p.display());
        replay(&p.display().to_string(), &[text.as_slice(), b"\0", &sample].concat(), checks::policy_load);
    }
    let mut packs = files(&r.join("tests/fixtures/sigma"));
    packs.retain(|p| p.extension().is_some_and(|e| e == "yml"));
    packs.extend(files(&r.join("rules")).into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")));
    for p in &packs {
        let text = std::fs::read(p).unwrap();
        replay(&p.display().to_string(), &text, checks::rule_pack);
    }
    for d in std::fs::read_dir(r.join("tests/conformance/vectors")).unwrap().filter_map(|e| e.ok()) {
        let c = d.path().join("config.yaml");
        if c.exists() {
            replay(&c.display().to_string(), &std::fs::read(&c).unwrap(), checks::config_load);
        }
    }
    replay(
        "fuzz/seeds/config-alerts.yaml",
        &std::fs::read(r.join("fuzz/seeds/config-alerts.yaml")).unwrap(),
        checks::config_load,
    );
    // Queries against real events: the lazy event and the JSON value must agree on each.
    let queries = std::fs::read_to_string(r.join("fuzz/seeds/queries.txt")).unwrap();
    let events: Vec<&[u8]> = sample.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    for q in queries.lines().filter(|l| !l.trim().is_empty()) {
        assert!(kaudit::query::Query::parse(q).is_ok(), "{q}");
        for e in &events {
            replay(q, &[q.as_bytes(), b"\0", e].concat(), checks::query);
        }
    }
}

/// Found by `pipeline_batch` (then minimised): a line that opens a value and ends inside a
/// string right after a backslash made the framing index past the end of the input (a panic in
/// `process_stream`, `process_batch` and the CLI). It is a bad record, passed through.
#[test]
fn a_backslash_at_the_end_of_the_input_is_a_bad_record() {
    for input in [&b"{\"\\"[..], b"[\"a\\", b"{\"k\":\"v\\", b"\n\n{\"\\"] {
        let mut p = kaudit::Pipeline::embedded_default();
        let mut out = Vec::new();
        let mut reports = Vec::new();
        p.process_stream(input, &mut out, &mut |r| reports.push(r.outcome.clone()));
        assert_eq!(reports.len(), 1, "{input:?}");
        assert!(matches!(&reports[0], kaudit::Outcome::Bad { passed: true, .. }), "{:?}", reports[0]);
        let trimmed: Vec<u8> = input.iter().copied().skip_while(|b| *b == b'\n').collect();
        assert_eq!(out, [trimmed.as_slice(), b"\n"].concat());
        let mut batch_out = Vec::new();
        assert_eq!(p.process_batch(input, &mut batch_out).bad, 1);
    }
}
