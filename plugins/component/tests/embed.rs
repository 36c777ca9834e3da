//! The `engine` resource embedded with the wasmtime crate, driven across many calls: every
//! outcome, counter, decision and config error the component returns must be what the native
//! engine (the `kaudit` crate) returns for the same bytes.

mod support;

use std::sync::OnceLock;

use kaudit::explain_json;
use kaudit::DropReason as NativeDrop;
use kaudit::{Event, NoFiles, Outcome as NativeOutcome, Pipeline};
use support::host::{ConfigError, DropReason, ErrorKind, Explanation, Instance, Level, Loaded, Outcome};
use support::{component_wasm, root, vectors};

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| Loaded::new(&component_wasm()))
}

fn instance() -> Instance {
    loaded().instantiate(None)
}

/// The real sample log (tests/fixtures/README.md): 82 events from a live apiserver and Falco traces.
fn sample_lines() -> Vec<Vec<u8>> {
    let log = std::fs::read(root().join("tests/fixtures/sample-audit.log")).unwrap();
    log.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

/// Asserts that the component's outcome is the native one, bytes included.
fn assert_same_outcome(native: &NativeOutcome, native_out: &[u8], got: &Outcome, what: &str) {
    match (native, got) {
        (NativeOutcome::Kept { changed }, Outcome::Kept(k)) => {
            assert_eq!(k.event, native_out, "{what}: kept bytes");
            assert_eq!(k.changed, *changed, "{what}: changed");
        }
        (NativeOutcome::Dropped { reason, rule }, Outcome::Dropped(d)) => {
            let want = match reason {
                NativeDrop::LevelNone => DropReason::LevelNone,
                NativeDrop::OmittedStage => DropReason::OmittedStage,
                NativeDrop::Filtered => DropReason::Filtered,
                NativeDrop::Disabled => DropReason::Disabled,
            };
            assert_eq!(d.reason, want, "{what}: drop reason");
            assert_eq!(d.rule, rule.map(|r| r as u32), "{what}: rule");
        }
        (NativeOutcome::Bad { error, passed }, Outcome::Bad(b)) => {
            assert_eq!(b.error, error.to_string(), "{what}: error");
            assert_eq!(b.passed.as_deref(), passed.then_some(native_out), "{what}: passed bytes");
        }
        (NativeOutcome::Oversized, Outcome::Oversized(bytes)) => assert_eq!(bytes, native_out, "{what}"),
        (n, g) => panic!("{what}: native {n:?}, component {g:?}"),
    }
}

#[test]
fn every_outcome_equals_the_native_engine_record_by_record() {
    /// The vector's folder, for files its config refers to (the component sees it as `/`).
    struct Dir<'a>(&'a std::path::Path);
    impl kaudit::FileSource for Dir<'_> {
        fn read(&self, path: &str) -> Result<Vec<u8>, kaudit::FileError> {
            std::fs::read(self.0.join(path)).map_err(|e| kaudit::FileError::new(path, e))
        }
    }
    let mut checked = 0;
    for v in vectors() {
        let config = v.config.clone().unwrap_or_default();
        let mut inst = loaded().instantiate(Some((&v.dir, "/")));
        let engine = inst.create(&config).unwrap();
        let mut native = Pipeline::from_config_text(&config, "config.yaml", &Dir(&v.dir)).unwrap().0;
        for (i, line) in v.input_lines().into_iter().enumerate() {
            // Bytes, as the component returns them (and as the CLI writes them).
            let mut out = Vec::new();
            let n = native.process_record(line, &mut out);
            assert_same_outcome(&n, &out, &inst.process(engine, line), &format!("{} line {}", v.name, i + 1));
            checked += 1;
        }
        assert_eq!(inst.metrics_json(engine), native.metrics_json(), "{}: counters and alert statistics", v.name);
        assert_eq!(inst.take_alerts(engine), native.take_alerts(), "{}: alerts", v.name);
        inst.drop_engine(engine);
    }
    assert!(checked > 100, "only {checked} records compared");
}

#[test]
fn the_outcome_kinds_are_all_exercised_on_real_data() {
    // The sample log must produce kept, edited, dropped and bad records, or the test above proves little.
    let mut inst = instance();
    let engine = inst.create("").unwrap();
    let (mut kept, mut changed, mut dropped, mut bad) = (0, 0, 0, 0);
    let seed = vectors().into_iter().find(|v| v.name == "seed-default").expect("seed-default vector");
    let mut lines = sample_lines();
    lines.extend(seed.input_lines().into_iter().map(<[u8]>::to_vec));
    for line in &lines {
        match inst.process(engine, line) {
            Outcome::Kept(k) => {
                kept += 1;
                changed += usize::from(k.changed);
            }
            Outcome::Dropped(_) => dropped += 1,
            Outcome::Bad(b) => {
                assert_eq!(b.passed.as_deref(), Some(line.as_slice()), "bad records pass through unchanged by default");
                bad += 1
            }
            Outcome::Oversized(_) => {}
        }
    }
    assert!(
        kept > 0 && changed > 0 && dropped > 0 && bad > 0,
        "kept {kept}, changed {changed}, dropped {dropped}, bad {bad}"
    );
}

#[test]
fn counters_accumulate_across_many_calls_and_engines_are_independent() {
    let lines = sample_lines();
    let mut inst = instance();
    let engine = inst.create("").unwrap();
    let drop_all =
        inst.create("policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules:\n    - level: None\n").unwrap();
    let mut native = Pipeline::embedded_default();
    const ROUNDS: usize = 25;
    for _ in 0..ROUNDS {
        for line in &lines {
            native.process_record(line, &mut String::new());
            inst.process(engine, line);
            if let Outcome::Kept(_) = inst.process(drop_all, line) {
                panic!("a level-None-only policy kept an event");
            }
        }
    }
    let c = inst.counters(engine);
    let n = native.counters();
    assert_eq!(c.read, (ROUNDS * lines.len()) as u64);
    assert_eq!(
        (c.read, c.kept, c.stripped, c.dropped, c.bad, c.bytes_in, c.bytes_out),
        (n.read, n.kept, n.stripped, n.dropped, n.bad, n.bytes_in, n.bytes_out)
    );
    assert_eq!(c.dropped, c.dropped_level_none + c.dropped_omitted_stage + c.dropped_filtered + c.dropped_disabled);
    assert_eq!(
        (c.oversized, c.oversized_batches, c.alerts_dropped),
        (n.oversized, n.oversized_batches, n.alerts_dropped)
    );
    // The alert engine's totals through the record are the native engine's.
    let a = inst.alert_stats(engine);
    let na = native.alert_stats();
    assert!(a.events > 0 && a.alerts > 0, "the default rules saw the sample's kept events and raised alerts");
    assert_eq!(
        (a.events, a.matches, a.alerts, a.suppressed, a.groups, a.groups_evicted, a.late_events, a.distinct_overflow),
        (
            na.events,
            na.matches,
            na.alerts,
            na.suppressed,
            na.groups,
            na.groups_evicted,
            na.late_events,
            na.distinct_overflow
        )
    );
    let d = inst.counters(drop_all);
    assert_eq!(d.read, c.read, "second engine saw the same records");
    assert_eq!(d.kept, 0);
    assert_eq!(d.dropped + d.bad, d.read);
    // Alerts raised across all those calls are the native engine's, in the same order.
    assert_eq!(inst.take_alerts(engine), native.take_alerts());
    assert!(inst.take_alerts(engine).is_empty(), "take-alerts hands each alert over once");
}

#[test]
fn config_errors_are_typed_and_located_like_the_native_ones() {
    let bad = "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules:\n    - level: Loud\n  omitStages: [Nope]\nbadRecords: maybe\n";
    let native = match Pipeline::from_config_text(bad, "kaudit.yaml", &NoFiles) {
        Err(e) => e.errors,
        Ok(_) => panic!("native engine accepted a bad config"),
    };
    let mut inst = instance();
    let got = match inst.create_named(bad, "kaudit.yaml") {
        Err(e) => e,
        Ok(_) => panic!("component accepted a bad config"),
    };
    let fields = |e: &ConfigError| (e.file.clone(), e.line, e.column, e.field.clone(), e.message.clone());
    let want: Vec<_> = native
        .iter()
        .map(|d| (d.file.clone(), d.pos.line as u32, d.pos.col as u32, d.field.clone(), d.message.clone()))
        .collect();
    assert_eq!(got.iter().map(fields).collect::<Vec<_>>(), want);
    assert!(got.len() >= 2, "expected several errors, got {got:?}");
    assert!(got.iter().all(|e| e.file == "kaudit.yaml" && e.line >= 1 && e.column >= 1), "{got:?}");
    assert!(got.iter().any(|e| e.line == 7 && e.field == "badRecords"), "badRecords error located: {got:?}");

    // `create` names the config config.yaml.
    let unnamed = inst.create("policy: 3\n").err().expect("a scalar policy is an error");
    assert_eq!(unnamed[0].file, "config.yaml");
    assert_eq!((unnamed[0].line, unnamed[0].column), (1, 9));

    // The one-shot functions fail with the same errors, typed by kind.
    let native = Pipeline::from_config_text(bad, "config.yaml", &NoFiles).err().unwrap().errors;
    let got = inst.run_lines(bad, "").unwrap_err();
    let kind = |k: kaudit::DiagnosticKind| match k {
        kaudit::DiagnosticKind::Syntax => ErrorKind::Syntax,
        kaudit::DiagnosticKind::UnknownKey => ErrorKind::UnknownKey,
        kaudit::DiagnosticKind::DuplicateKey => ErrorKind::DuplicateKey,
        kaudit::DiagnosticKind::Type => ErrorKind::WrongType,
        kaudit::DiagnosticKind::File => ErrorKind::File,
        _ => ErrorKind::InvalidValue,
    };
    let want: Vec<_> = native
        .iter()
        .map(|d| {
            (kind(d.kind), d.file.clone(), d.pos.line as u32, d.pos.col as u32, d.field.clone(), d.message.clone())
        })
        .collect();
    let got: Vec<_> = got.into_iter().map(|e| (e.kind, e.file, e.line, e.column, e.field, e.message)).collect();
    assert_eq!(got, want);
    assert!(got.iter().any(|e| e.0 == ErrorKind::InvalidValue && e.4 == "badRecords"), "{got:?}");
    let dup = inst.filter_lines("badRecords: pass\nbadRecords: drop\n", "").unwrap_err();
    assert_eq!(
        (dup[0].kind, dup[0].line, dup[0].field.as_str()),
        (ErrorKind::DuplicateKey, 2, "badRecords"),
        "{dup:?}"
    );
}

#[test]
fn warnings_are_reported_like_the_native_ones() {
    let config =
        "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  colour: blue\n  rules:\n    - level: Metadata\n";
    let (_, native) = Pipeline::from_config_text(config, "config.yaml", &NoFiles).unwrap();
    assert!(!native.is_empty(), "an unknown policy field is a warning in the native engine");
    let mut inst = instance();
    let engine = inst.create(config).unwrap();
    let got = inst.warnings(engine);
    assert_eq!(
        got.iter().map(|w| (w.line, w.column, w.field.clone(), w.message.clone())).collect::<Vec<_>>(),
        native
            .iter()
            .map(|w| (w.pos.line as u32, w.pos.col as u32, w.field.clone(), w.message.clone()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn explain_returns_the_decision_and_the_explain_line() {
    let mut inst = instance();
    let engine = inst.create("").unwrap();
    let native = Pipeline::embedded_default();
    let mut decided = 0;
    for line in sample_lines() {
        let got = inst.explain(engine, &line);
        let text = std::str::from_utf8(&line).unwrap();
        match Event::parse(text) {
            Ok(event) => {
                let d = native.explain(&event);
                let got = got.unwrap_or_else(|e| panic!("component could not explain a valid event: {e}"));
                assert_eq!(got.json, explain_json(&event, &d));
                assert_eq!(got.audit_id, event.audit_id);
                assert_eq!(got.stage, event.stage);
                assert_eq!(got.rule, d.rule.map(|r| r as u32));
                assert_eq!(*got.omit_stages, *d.omit_stages);
                assert_eq!(got.omit_managed_fields, d.omit_managed_fields);
                let level = match got.level {
                    Level::None => "None",
                    Level::Metadata => "Metadata",
                    Level::Request => "Request",
                    Level::RequestResponse => "RequestResponse",
                };
                assert_eq!(level, d.level.as_str());
                decided += 1;
            }
            Err(e) => {
                let got = got.unwrap_err();
                assert_eq!((got.kind, got.field.as_str()), (ErrorKind::Event, e.field.as_deref().unwrap_or("")));
                assert_eq!(got.message, e.message);
            }
        }
    }
    assert!(decided > 50);
    // explain does not count: only processing does.
    assert_eq!(inst.counters(engine).read, 0);
    let not_utf8 = inst.explain(engine, b"\xff{}").unwrap_err();
    assert_eq!((not_utf8.kind, not_utf8.field.as_str()), (ErrorKind::Event, ""));
    assert_eq!(not_utf8.message, "not UTF-8: invalid byte at offset 0");
    // The field at fault is its own member, not folded into the message; an event passed by
    // value has no file or position.
    let no_stage =
        inst.explain(engine, br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","verb":"get"}"#);
    let e = no_stage.unwrap_err();
    assert_eq!((e.kind, e.file.as_str(), e.line, e.column), (ErrorKind::Event, "", 0, 0));
    assert_eq!((e.field.as_str(), e.message.as_str()), ("stage", "missing: not an audit event"));
    match &inst.explain_batch(engine, b"{\"kind\":\"EventList\",\"items\":[{\"kind\":0}]}\n")[..] {
        [Explanation::Bad(b)] => assert_eq!((b.line, b.item), (1, Some(0))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn batches_keep_their_framing() {
    // Real events plus the seed vector's (which the default policy partly drops, and which has
    // records that are not events: they stay in the batch untouched).
    let mut lines = sample_lines();
    let seed = vectors().into_iter().find(|v| v.name == "seed-default").expect("seed-default vector");
    lines.extend(seed.input_lines().into_iter().map(<[u8]>::to_vec));
    // Only JSON objects can be items (a broken line would break the whole body's JSON).
    lines.retain(|l| std::str::from_utf8(l).is_ok_and(|t| kaudit::parse_object(t.trim()).is_ok()));
    let items: Vec<&str> = lines.iter().map(|l| std::str::from_utf8(l).unwrap()).collect();
    let mut inst = instance();
    for body in [
        format!("[{}]", items.join(",")),
        format!(
            "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{}]}}",
            items.join(",")
        ),
    ] {
        let engine = inst.create("").unwrap();
        let got = inst.process_batch(engine, body.as_bytes());
        let mut native = Pipeline::embedded_default();
        let mut want = String::new();
        let summary = native.process_batch(body.as_bytes(), &mut want);
        assert_eq!(String::from_utf8(got.output).unwrap(), want);
        assert_eq!(
            (got.summary.events, got.summary.kept, got.summary.dropped, got.summary.bad),
            (summary.events, summary.kept, summary.dropped, summary.bad)
        );
        assert_eq!(got.summary.events, lines.len() as u64);
        assert!(lines.len() > 150, "{} items", lines.len());
        assert!(
            got.summary.dropped > 0 && got.summary.kept > 0 && got.summary.bad > 0,
            "{:?}",
            (got.summary.kept, got.summary.dropped, got.summary.bad)
        );
        assert_eq!(want.as_bytes()[0], body.as_bytes()[0], "framing kept");
    }
}

#[test]
fn a_config_can_refer_to_files_the_host_preopened() {
    let dir = std::env::temp_dir().join(format!("kaudit-component-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("drop-all.yaml"), "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n")
        .unwrap();
    let config = "policyFile: drop-all.yaml\n";
    let event = sample_lines().into_iter().next().unwrap();

    let mut inst = loaded().instantiate(Some((&dir, "/")));
    let engine = inst.create(config).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(matches!(inst.process(engine, &event), Outcome::Dropped(_)));

    // Without a preopened directory the file cannot be read: a config error naming it.
    let errors = instance().create(config).err().expect("no filesystem: the policy file is unreadable");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "policyFile");
    assert!(errors[0].message.contains("drop-all.yaml"), "{errors:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_bytes_never_trap_and_are_passed_through() {
    let mut inst = instance();
    let engine = inst.create("").unwrap();
    for junk in [&b""[..], b"\xff\xfe", b"{", b"[1,2", b"null", b"{\"kind\":\"Event\"}", &[b'['; 10_000][..]] {
        match inst.process(engine, junk) {
            Outcome::Bad(b) => assert!(!b.error.is_empty()),
            other => panic!("{junk:?}: {other:?}"),
        }
    }
    let c = inst.counters(engine);
    assert_eq!(c.bad, 7);
    assert_eq!(inst.filter_lines("", "not json\n").unwrap(), "not json\n");
}

#[test]
fn managed_cluster_bytes_as_delivered_equal_the_native_engine() {
    let dir = root().join("tests/fixtures/managed");
    let mut inst = instance();
    // Bodies as a batch host receives them: a Firehose HTTP-endpoint request, a Kinesis record
    // (gzip bytes), an Event Hubs body, a Pub/Sub push request. Each becomes one EventList.
    for file in [
        "eks/cloudwatch-synth/firehose-http-endpoint-request.json",
        "eks/cloudwatch-synth/kinesis-record-data.DATA_MESSAGE.gz",
        "aks/eventhub-synth/eventhub-message-2.json",
        "gke/pubsub-synth/push-request-body.json",
    ] {
        let body = std::fs::read(dir.join(file)).unwrap();
        let engine = inst.create("").unwrap();
        let got = inst.process_batch(engine, &body);
        let mut want = String::new();
        let summary = Pipeline::embedded_default().process_batch(&body, &mut want);
        assert_eq!(String::from_utf8(got.output).unwrap(), want, "{file}");
        assert!(want.starts_with("{\"kind\":\"EventList\"") && summary.kept > 0, "{file}: {want}");
        assert_eq!((got.summary.events, got.summary.kept), (summary.events, summary.kept), "{file}");
    }
    // One AKS storage-blob line as one record: the Event inside comes back.
    let blob = std::fs::read_to_string(dir.join("aks/dynatrace/aks-records.jsonl")).unwrap();
    let line = blob.lines().next().unwrap().as_bytes();
    let engine = inst.create("").unwrap();
    let got = inst.process(engine, line);
    let mut native_out = Vec::new();
    let native = Pipeline::embedded_default().process_record(line, &mut native_out);
    assert_same_outcome(&native, &native_out, &got, "AKS blob line");
    assert!(native_out.starts_with(b"{\"kind\":\"Event\""));
}
