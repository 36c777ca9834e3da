//! kaudit-fluent-bit.wasm called the way Fluent Bit's filter_wasm calls it (see the testhost's
//! lib.rs), for what the real Fluent Bit cannot show (real_fluent_bit.rs runs the real one):
//! the module's exact bytes (no msgpack round trip) on every conformance vector, NULL and bad
//! bytes on demand, records larger or deeper than Fluent Bit's `tail` passes on, the
//! /etc/kaudit config path, a host without `_initialize`, linear-memory growth, forced traps,
//! instruction counts.

use std::path::{Path, PathBuf};

use kaudit::Pipeline;
use kaudit_fluent_bit_testhost::{artifact, is_one_object, root, split_alerts, FluentBit, Options, Reply};

const TAG: &str = "kube.audit";

fn wasm() -> PathBuf {
    artifact().unwrap_or_else(|e| panic!("{e}"))
}

fn load(options: Options) -> FluentBit {
    FluentBit::load(&wasm(), options).unwrap_or_else(|e| panic!("{e}"))
}

fn sample_lines() -> Vec<Vec<u8>> {
    let log = std::fs::read(root().join("tests/fixtures/sample-audit.log")).unwrap();
    log.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

/// What the native engine writes for one record (the bytes every host must produce).
fn native(pipeline: &mut Pipeline, record: &[u8]) -> Option<String> {
    native_with_alerts(pipeline, record).0
}

/// The native engine's record and the alerts it raised.
fn native_with_alerts(pipeline: &mut Pipeline, record: &[u8]) -> (Option<String>, Vec<String>) {
    let mut out = String::new();
    pipeline.process_record(record, &mut out);
    ((!out.is_empty()).then_some(out), pipeline.take_alerts())
}

/// The reply split into the record (without kaudit's alert keys) and the alerts it carried.
fn record_and_alerts(reply: &Reply) -> (Option<String>, Vec<String>) {
    match record_text(reply) {
        None => (None, Vec::new()),
        Some(text) => {
            let (record, alerts) = split_alerts(text.as_bytes());
            (record.map(|r| String::from_utf8(r).unwrap()), alerts)
        }
    }
}

/// The reply as text, after checking it is what Fluent Bit accepts: `""` or one JSON object.
fn record_text(reply: &Reply) -> Option<String> {
    match reply {
        Reply::Drop => None,
        Reply::Record(bytes) => {
            assert!(is_one_object(bytes), "not one JSON object: {}", String::from_utf8_lossy(bytes));
            Some(String::from_utf8(bytes.clone()).expect("replies are UTF-8"))
        }
    }
}

/// A fresh directory under the target dir for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("kaudit-fluent-bit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The vector's files in a directory Fluent Bit would preopen, its config.yaml named kaudit.yaml.
fn config_dir_for(vector: &Path) -> Option<PathBuf> {
    if !vector.join("config.yaml").exists() {
        return None;
    }
    let dir = scratch_dir(&vector.file_name().unwrap().to_string_lossy());
    for entry in std::fs::read_dir(vector).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let to = if name == "config.yaml" { "kaudit.yaml".to_string() } else { name };
        std::fs::copy(&path, dir.join(to)).unwrap();
    }
    Some(dir)
}

#[test]
fn every_conformance_vector_record_by_record() {
    let vectors_root = root().join("tests/conformance/vectors");
    let mut vectors: Vec<PathBuf> =
        std::fs::read_dir(&vectors_root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    vectors.sort();
    assert!(vectors.len() >= 3, "conformance vectors missing in {}", vectors_root.display());
    for (i, vector) in vectors.iter().enumerate() {
        let mut options = Options::default();
        let config_dir = config_dir_for(vector);
        if let Some(dir) = &config_dir {
            // Both lookups: /etc/kaudit/kaudit.yaml, and kaudit.yaml in a preopened `.`.
            let guest = if i % 2 == 0 { "/etc/kaudit" } else { "." };
            options.accessible_paths.push((dir.clone(), guest.into()));
        }
        let mut fb = load(options);
        let input = std::fs::read(vector.join("input.jsonl")).unwrap();
        let (mut out, mut alerts) = (String::new(), String::new());
        for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let reply = fb.call(TAG, line).unwrap_or_else(|e| panic!("{}: trapped: {e}", vector.display()));
            if let Some(text) = record_text(&reply) {
                let (record, raised) = split_alerts(text.as_bytes());
                if let Some(record) = record {
                    out.push_str(std::str::from_utf8(&record).unwrap());
                    out.push('\n');
                }
                for a in raised {
                    alerts.push_str(&a);
                    alerts.push('\n');
                }
            }
        }
        let expected = std::fs::read_to_string(vector.join("expected.jsonl")).unwrap();
        let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), out.lines().collect());
        for (n, (x, y)) in e.iter().zip(&a).enumerate() {
            assert_eq!(x, y, "{}: expected.jsonl line {} differs", vector.display(), n + 1);
        }
        assert_eq!(e.len(), a.len(), "{}: record count", vector.display());
        assert_eq!(out, expected, "{}", vector.display());
        let expected_alerts = std::fs::read_to_string(vector.join("alerts.jsonl")).unwrap_or_default();
        assert_eq!(alerts, expected_alerts, "{}: alerts", vector.display());

        let counters = fb.counters().unwrap();
        let want = match &config_dir {
            Some(_) if i % 2 == 0 => "\"config\":\"/etc/kaudit/kaudit.yaml\"",
            Some(_) => "\"config\":\"kaudit.yaml\"",
            None => "\"config\":\"<embedded default>\"",
        };
        assert!(counters.contains(want), "{}: {counters}", vector.display());
        assert!(counters.contains("\"traps\":0,") && counters.contains("\"internalErrors\":0,"), "{counters}");
    }
}

#[test]
fn whole_sample_log_is_trap_free_and_equals_the_native_engine() {
    let mut fb = load(Options::default());
    let mut pipeline = Pipeline::embedded_default();
    let lines = sample_lines();
    assert!(lines.len() > 50);
    let mut alerts = 0;
    for (n, line) in lines.iter().enumerate() {
        let reply = fb.call(TAG, line).unwrap_or_else(|e| panic!("line {}: trapped: {e}", n + 1));
        let expected = native_with_alerts(&mut pipeline, line);
        alerts += expected.1.len();
        assert_eq!(record_and_alerts(&reply), expected, "line {}", n + 1);
    }
    let counters = fb.counters().unwrap();
    assert!(counters.contains(&format!("\"read\":{},", lines.len())), "{counters}");
    assert!(counters.contains(&format!("\"alerts\":{alerts}}}")), "{alerts} alerts expected: {counters}");
    assert!(fb.stderr().contains("kaudit: config <embedded default> loaded"), "{}", fb.stderr());
}

#[test]
fn null_record_pointer_gives_a_visible_error_and_the_filter_goes_on() {
    let mut fb = load(Options::default());
    let reply = fb.call_null_record(TAG, 93_515).expect("a NULL record must not trap");
    assert_eq!(
        record_text(&reply).unwrap(),
        "{\"kaudit_error\":\"record pointer is NULL (raise Wasm_Heap_Size)\",\"record_len\":93515}"
    );
    let line = &sample_lines()[0];
    assert_eq!(record_text(&fb.call(TAG, line).unwrap()), native(&mut Pipeline::embedded_default(), line));
    assert!(fb.counters().unwrap().contains("\"nullRecord\":1,"));
}

/// `record` with `"key":"value"` added as its first member.
fn with_extra_member(record: &[u8], key: &str, value: &str) -> Vec<u8> {
    let mut out = format!("{{\"{key}\":\"{value}\",").into_bytes();
    out.extend_from_slice(&record[1..]);
    out
}

#[test]
fn non_utf8_and_nul_bytes_never_come_back_raw() {
    let mut fb = load(Options::default());
    let mut pipeline = Pipeline::embedded_default();
    let line = &sample_lines()[0];
    // Invalid UTF-8 inside a string: passed through (lossy), still one object.
    let mut latin1 = with_extra_member(line, "note", "caf_");
    let at = latin1.iter().position(|b| *b == b'_').unwrap();
    latin1[at] = 0xE9;
    let text = record_text(&fb.call(TAG, &latin1).unwrap()).unwrap();
    assert_eq!(Some(text.clone()), native(&mut pipeline, &latin1));
    assert!(text.contains("caf\u{fffd}"));
    // A NUL byte: the reply is read up to its NUL, so it must never contain one.
    let nul = with_extra_member(line, "note", "a\0b");
    let text = record_text(&fb.call(TAG, &nul).unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["log"].as_str().unwrap().as_bytes(), &nul[..], "the original is kept in \"log\"");
    assert!(v["kaudit_error"].as_str().unwrap().starts_with("record is not one JSON object"));
    // Not an object at all, and two concatenated objects (which would corrupt a Fluent Bit chunk).
    for bad in [&b"[{\"a\":1},{\"b\":2}]"[..], b"this is not json", b"{\"first\":1}{\"second\":2}"] {
        let text = record_text(&fb.call(TAG, bad).unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["log"].as_str().unwrap().as_bytes(), bad);
    }
    assert!(fb.counters().unwrap().contains("\"wrapped\":4,"), "{}", fb.counters().unwrap());
}

#[test]
fn a_5_mb_record_is_processed_whole() {
    let mut fb = load(Options::default());
    let line = &sample_lines()[0];
    let big = with_extra_member(line, "pad", &"x".repeat(5 * 1024 * 1024));
    let text = record_text(&fb.call(TAG, &big).expect("5 MB must not trap")).unwrap();
    assert!(text.len() > 5 * 1024 * 1024);
    assert_eq!(Some(text), native(&mut Pipeline::embedded_default(), &big));
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "{\"l\":".repeat(depth), "}".repeat(depth))
}

/// An audit event with a 10,000-deep object inside, and a bare 10,000-deep object.
fn deep_records() -> Vec<Vec<u8>> {
    let line = &sample_lines()[0];
    let mut event = format!("{{\"deep\":{},", nested(10_000)).into_bytes();
    event.extend_from_slice(&line[1..]);
    vec![event, nested(10_000).into_bytes()]
}

#[test]
fn ten_thousand_deep_nesting_does_not_trap() {
    // 256 KiB of wasm stack, as fluent-bit.yaml gives WAMR (the two stacks are not the same
    // measure, see README): deep JSON must not need more than a normal event.
    let mut fb = load(Options { max_wasm_stack: Some(256 * 1024), ..Options::default() });
    let mut pipeline = Pipeline::embedded_default();
    for record in deep_records() {
        let reply = fb.call(TAG, &record).unwrap_or_else(|e| panic!("trapped: {e}"));
        assert_eq!(record_text(&reply), native(&mut pipeline, &record));
    }
}

#[test]
fn deep_nesting_needs_no_more_stack_than_a_normal_event() {
    // The smallest max_wasm_stack (in 4 KiB steps) a normal event needs, then the deep ones with it.
    let line = sample_lines()[0].clone();
    let needed = (1..=64)
        .map(|k| k * 4096)
        .find(|&stack| {
            // Start-up (the config loads in `_initialize`) and the call both fit.
            FluentBit::load(&artifact().unwrap(), Options { max_wasm_stack: Some(stack), ..Options::default() })
                .and_then(|mut fb| fb.call(TAG, &line))
                .is_ok()
        })
        .expect("a normal event within 256 KiB of stack");
    let mut fb = load(Options { max_wasm_stack: Some(needed), ..Options::default() });
    fb.call(TAG, &line).unwrap();
    for record in deep_records() {
        fb.call(TAG, &record)
            .unwrap_or_else(|e| panic!("10,000-deep record needs more than {needed} bytes of stack: {e}"));
    }
    println!("smallest max_wasm_stack for a normal event and 10,000-deep records: {needed} bytes");
}

/// WAMR calls `_initialize` while instantiating: a config that does not load fails the
/// instantiation (Fluent Bit's `cb_wasm_init` fails and Fluent Bit does not start), with the
/// error, located, on stderr.
#[test]
fn a_bad_config_stops_the_filter_from_loading() {
    let dir = scratch_dir("bad-config-init");
    std::fs::write(
        dir.join("kaudit.yaml"),
        "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\nbadRecords: sometimes\n",
    )
    .unwrap();
    let err = match FluentBit::load(
        &artifact().unwrap(),
        Options { accessible_paths: vec![(dir, "/etc/kaudit".into())], ..Options::default() },
    ) {
        Ok(_) => panic!("a module with a bad config must not instantiate"),
        Err(e) => e,
    };
    assert!(err.contains("_initialize trapped"), "{err}");
    assert!(
        err.contains("the config does not load") && err.contains("/etc/kaudit/kaudit.yaml:4:"),
        "the error names the place: {err}"
    );
    assert!(err.contains("badRecords"), "the error names the field: {err}");
    // A good config loads in _initialize: the first record pays nothing for it.
    let mut fb = load(Options { fuel: true, ..Options::default() });
    assert!(fb.stderr().contains("config <embedded default> loaded"), "{}", fb.stderr());
    let line = &sample_lines()[0];
    fb.call(TAG, line).unwrap();
    let first = fb.last_fuel();
    fb.call(TAG, line).unwrap();
    assert!(
        first < 20 * fb.last_fuel(),
        "the first call does not load the config: {first} vs {} instructions",
        fb.last_fuel()
    );
}

/// The module with `config` as `/etc/kaudit/kaudit.yaml`, on a host that does not call
/// `_initialize` (the config loads at the first call).
fn load_without_initialize(name: &str, config: &str) -> FluentBit {
    let dir = scratch_dir(name);
    std::fs::write(dir.join("kaudit.yaml"), config).unwrap();
    load(Options { accessible_paths: vec![(dir, "/etc/kaudit".into())], call_initialize: false, ..Options::default() })
}

/// A config's text reaches the log in messages (an unknown key is named): a control character
/// in it is written as an escape, never as itself (it could drive the terminal showing the log).
#[test]
fn control_characters_of_a_config_reach_the_log_escaped() {
    let mut fb = load_without_initialize(
        "bad-config-escape",
        "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n\"bad\\e[2Jkey\": 1\n",
    );
    fb.call(TAG, &sample_lines()[0]).unwrap();
    let stderr = fb.stderr();
    assert!(stderr.contains("bad\\u001b[2Jkey"), "{stderr:?}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

/// On a host that does not call `_initialize` (nothing there can refuse to load), a bad config
/// is visible on every record and logged once; records pass through unchanged.
#[test]
fn without_initialize_a_bad_config_passes_records_through_with_a_visible_error_logged_once() {
    let mut fb = load_without_initialize(
        "bad-config",
        "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\nbadRecords: sometimes\n",
    );
    let lines = sample_lines();
    for line in &lines[..3] {
        let text = record_text(&fb.call(TAG, line).unwrap()).expect("never dropped");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let error = v["kaudit_error"].as_str().unwrap();
        assert!(error.starts_with("config: /etc/kaudit/kaudit.yaml:4:"), "{error}");
        // The original record, unchanged, plus the error member.
        let original = std::str::from_utf8(line).unwrap();
        let cut = text.rfind(",\"kaudit_error\":").unwrap();
        assert_eq!(format!("{}}}", &text[..cut]), original);
    }
    let stderr = fb.stderr();
    assert_eq!(stderr.matches("the config does not load").count(), 1, "{stderr}");
    assert!(stderr.contains("/etc/kaudit/kaudit.yaml:4:"), "{stderr}");
    let counters = fb.counters().unwrap();
    assert!(counters.contains("\"configErrorRecords\":3,") && counters.contains("\"pipeline\":null"), "{counters}");
}

#[test]
fn memory_stops_growing_after_warm_up() {
    let mut fb = load(Options::default());
    let lines = sample_lines();
    let mut calls = 0;
    let mut run = |fb: &mut FluentBit, n: usize| {
        for _ in 0..n {
            let line = &lines[calls % lines.len()];
            calls += 1;
            fb.call(TAG, line).unwrap();
        }
    };
    run(&mut fb, 2_000);
    let warm = fb.memory_bytes();
    run(&mut fb, 18_000);
    assert_eq!(fb.memory_bytes(), warm, "linear memory grew after warm-up: a per-call leak");
    assert!(fb.counters().unwrap().contains("\"calls\":20000,"));
}

/// Events that fill every grouped default alert rule (10,000 groups each).
const ALERT_GROUPS_FULL: u32 = 25_000;

/// The 1M-cardinality bound for the WASM instance: every event from a new source address and a
/// new user (`kaudit_testkit::corpus::distinct_actor_event`), one instance, record by record. Once the
/// alert rules are full, linear memory must not grow. 150,000 events by default (about 9 s in a
/// debug build); `KAUDIT_CARDINALITY_EVENTS=1000000` (`cargo xtask fuzz-wasm-memory`) runs the
/// million (figures in docs/RELIABILITY.md).
#[test]
fn linear_memory_stays_bounded_with_distinct_addresses_and_users() {
    let events: u32 = std::env::var("KAUDIT_CARDINALITY_EVENTS")
        .map_or(150_000, |n| n.parse().expect("KAUDIT_CARDINALITY_EVENTS: a number"));
    assert!(events > ALERT_GROUPS_FULL, "run more than {ALERT_GROUPS_FULL} events");
    let mut fb = load(Options::default());
    let start = std::time::Instant::now();
    let (mut line, mut warm, mut with_alerts) = (String::new(), 0, 0u64);
    for i in 0..events {
        kaudit_testkit::corpus::distinct_actor_event(i, &mut line);
        match fb.call(TAG, line.as_bytes()).unwrap_or_else(|e| panic!("event {i}: trap: {e}")) {
            Reply::Record(r) if r.windows(15).any(|w| w == b"\"kaudit_alerts\"") => with_alerts += 1,
            Reply::Record(_) => {}
            Reply::Drop => panic!("event {i} was dropped: the seed policy keeps every one of them"),
        }
        if i + 1 == ALERT_GROUPS_FULL {
            warm = fb.memory_bytes();
        }
        if (i + 1) % 250_000 == 0 {
            eprintln!(
                "{} events: linear memory {} bytes, {:.1} s",
                i + 1,
                fb.memory_bytes(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    let counters = fb.counters().unwrap();
    eprintln!(
        "{events} events, {with_alerts} records with alerts, {:.1} s: linear memory {warm} bytes after {ALERT_GROUPS_FULL} events, {} at the end\n{counters}",
        start.elapsed().as_secs_f64(),
        fb.memory_bytes()
    );
    assert_eq!(fb.memory_bytes(), warm, "linear memory grew with cardinality after the alert rules were full");
    assert!(counters.contains(&format!("\"calls\":{events},")) && counters.contains("\"traps\":0,"), "{counters}");
    // The alert rules keep firing (new groups evict old ones) rather than going quiet.
    assert!(with_alerts >= u64::from(events) / 2, "{with_alerts} of {events} records carried alerts");
}

#[test]
fn a_trapped_call_is_counted_and_the_next_call_works() {
    let mut fb = load(Options { fuel: true, ..Options::default() });
    let lines = sample_lines();
    fb.call(TAG, &lines[0]).unwrap();
    // Run out of fuel in the middle of a call: a trap, like an exhausted WAMR stack.
    fb.set_fuel(Some(5_000)).unwrap();
    let err = fb.call(TAG, &lines[1]).expect_err("must trap without fuel");
    assert!(err.contains("fuel"), "{err}");
    fb.set_fuel(None).unwrap();
    let mut pipeline = Pipeline::embedded_default();
    for line in &lines[2..10] {
        assert_eq!(record_text(&fb.call(TAG, line).unwrap()), native(&mut pipeline, line));
    }
    let counters = fb.counters().unwrap();
    assert!(counters.contains("\"traps\":1,"), "{counters}");
    assert!(fb.stderr().contains("the previous call trapped"), "{}", fb.stderr());
}

#[test]
fn json_escape_unicode_on_or_off_gives_the_same_decision() {
    // Fluent Bit's json.escape_unicode (default on) turns "café" into "caf\u00e9" before the filter.
    let dir = scratch_dir("escape-unicode");
    let config = "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules:\n    - level: None\n      users: [\"café\"]\n    - level: Metadata\n";
    std::fs::write(dir.join("kaudit.yaml"), config).unwrap();
    let mut fb = load(Options { accessible_paths: vec![(dir, "/etc/kaudit".into())], ..Options::default() });
    let line = String::from_utf8(sample_lines()[0].clone()).unwrap();
    assert!(line.contains("\"username\":\"system:admin\""));
    let as_user = |name: &str| line.replace("\"username\":\"system:admin\"", &format!("\"username\":\"{name}\""));
    assert_eq!(fb.call(TAG, as_user("café").as_bytes()).unwrap(), Reply::Drop, "json.escape_unicode off");
    assert_eq!(fb.call(TAG, as_user("caf\\u00e9").as_bytes()).unwrap(), Reply::Drop, "json.escape_unicode on");
    assert!(matches!(fb.call(TAG, as_user("cafe").as_bytes()).unwrap(), Reply::Record(_)), "another user is kept");
}

/// The value of `key:` in the YAML section that starts at the first line containing `section`.
fn yaml_value(yaml: &str, section: &str, key: &str) -> String {
    let start = yaml.find(section).unwrap_or_else(|| panic!("fluent-bit.yaml has no {section}"));
    let line = yaml[start..]
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} after {section}"));
    line.split_once(':').unwrap().1.trim().to_string()
}

fn size(text: &str) -> usize {
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    n.parse::<usize>().unwrap()
        * match unit {
            "K" => 1024,
            "M" => 1024 * 1024,
            "" => 1,
            other => panic!("unit {other}"),
        }
}

#[test]
fn shipped_fluent_bit_yaml_agrees_with_the_module() {
    use kaudit_fluent_bit::filter::{ALERTS_KEY, ALERT_COUNT_KEY, DROPPED_KEY};
    let yaml = std::fs::read_to_string(root().join("plugins/fluent-bit/fluent-bit.yaml")).unwrap();
    let wasm = "- name: wasm";
    assert_eq!(yaml_value(&yaml, wasm, "function_name"), kaudit_fluent_bit_testhost::FUNCTION);
    assert_eq!(yaml_value(&yaml, wasm, "event_format"), "json");
    // The config lookup's first path lies in the preopened directory.
    let dir = yaml_value(&yaml, wasm, "accessible_paths");
    assert_eq!(format!("{dir}/kaudit.yaml"), kaudit_fluent_bit::config::CONFIG_PATHS[0]);
    // The heap holds the record copy: at least twice the longest line tail accepts.
    let heap = size(&yaml_value(&yaml, wasm, "wasm_heap_size"));
    let line_max = size(&yaml_value(&yaml, "- name: tail", "buffer_max_size"));
    assert!(heap >= 2 * line_max, "wasm_heap_size {heap} < 2 x buffer_max_size {line_max}");
    assert!(size(&yaml_value(&yaml, wasm, "wasm_stack_size")) > 8192);
    // The alert route uses the keys the module writes.
    assert!(yaml_value(&yaml, "- name: rewrite_tag", "rule").starts_with(&format!("${ALERT_COUNT_KEY} ")));
    assert!(yaml_value(&yaml, "- name: grep", "exclude").starts_with(&format!("{DROPPED_KEY} ")));
    assert_eq!(yaml_value(&yaml, "- name: record_modifier", "allowlist_key"), ALERTS_KEY);
    // The alert route speaks TLS and checks the webhook's certificate and name (SECURITY.md).
    let http = "- name: http";
    for (key, want) in [("tls", "on"), ("tls.verify", "on"), ("tls.verify_hostname", "on")] {
        assert_eq!(yaml_value(&yaml, http, key), want, "alert route: {key}");
    }
    assert_eq!(yaml_value(&yaml, http, "tls.vhost"), yaml_value(&yaml, http, "host"), "SNI = the webhook's host");
    assert!(yaml_value(&yaml, http, "tls.ca_file").starts_with('/'));
    // With these settings a record of buffer_max_size reaches the module (not as NULL).
    let mut fb = load(Options { heap_size: heap, ..Options::default() });
    let line = &sample_lines()[0];
    let big = with_extra_member(line, "pad", &"x".repeat(line_max - line.len() - 20));
    let text = record_text(&fb.call(TAG, &big).unwrap()).unwrap();
    assert!(!text.contains("kaudit_error"), "a {}-byte record did not fit", big.len());
}

/// Managed clusters as Fluent Bit receives them: an AKS storage-blob line and a CloudWatch log
/// event (EKS) per record come back as the Event inside, equal to the native engine; a record
/// of another AKS category passes through.
#[test]
fn managed_cluster_records_equal_the_native_engine() {
    let dir = root().join("tests/fixtures/managed");
    let mut records: Vec<Vec<u8>> = Vec::new();
    for file in ["aks/dynatrace/aks-records.jsonl", "aks/panther/aks-records.jsonl"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        records.extend(text.lines().map(|l| l.as_bytes().to_vec()));
    }
    for file in ["aks/eventhub-synth/eventhub-message-1.json", "eks/cloudwatch-synth/filter-log-events-response.json"] {
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        let items = doc.get("records").or_else(|| doc.get("events")).and_then(|v| v.as_array()).unwrap();
        records.extend(items.iter().map(|r| r.to_string().into_bytes()));
    }
    let mut fb = load(Options::default());
    let mut pipeline = Pipeline::embedded_default();
    let mut events = 0;
    for (n, record) in records.iter().enumerate() {
        let reply = fb.call(TAG, record).unwrap_or_else(|e| panic!("record {n}: trapped: {e}"));
        let expected = native_with_alerts(&mut pipeline, record);
        events += usize::from(expected.0.as_deref().is_some_and(|r| r.starts_with("{\"kind\":\"Event\"")));
        assert_eq!(record_and_alerts(&reply), expected, "record {n}");
    }
    assert!(events >= 20, "{events} events out of {} records", records.len());
}
