//! Resource bounds (`limits:` and `alerts.limits:` in the config): each has a safe default, is
//! configurable, holds on real data, and is counted when hit. The memory ceiling under a
//! million distinct addresses and users is `tests/limits_memory.rs`.

use kaudit::Limits;
use kaudit::{Config, NoFiles, Outcome, Pipeline};

const SAMPLE: &str = include_str!("fixtures/sample-audit.log");
/// Real events the seed's policy partly drops (RequestReceived, health checks), bad records included.
const SEED_INPUT: &str = include_str!("conformance/vectors/seed-default/input.jsonl");
const INTERNET_LOG: &str = include_str!("fixtures/alerts/seed-example2-internet.jsonl");

fn pipeline(config: &str) -> Pipeline {
    Pipeline::from_config_text(config, "limits.yaml", &NoFiles).unwrap_or_else(|e| panic!("{e}")).0
}

fn load_err(config: &str) -> String {
    match Config::load(config, "limits.yaml", &NoFiles) {
        Ok(_) => panic!("config loaded: {config}"),
        Err(e) => e.to_string(),
    }
}

/// A log as one webhook body (an EventList, as kube-apiserver posts it).
fn event_list(log: &str) -> String {
    let items: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    format!(r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#, items.join(","))
}

#[test]
fn defaults_are_documented_values() {
    let l = Limits::default();
    assert_eq!((l.max_event_bytes, l.max_batch_bytes, l.max_pending_alerts), (64 << 20, 256 << 20, 10_000));
    let a = kaudit::AlertLimits::default();
    assert_eq!((a.max_groups, a.max_distinct, a.max_audit_ids), (10_000, 1_000, 10));
}

#[test]
fn a_batch_over_max_batch_bytes_is_forwarded_untouched_and_counted() {
    let body = event_list(SEED_INPUT);
    let n = SEED_INPUT.lines().filter(|l| !l.trim().is_empty()).count() as u64;

    // One byte over the limit: forwarded byte for byte, no event read, counted.
    let mut p = pipeline(&format!("limits:\n  maxBatchBytes: {}\n", body.len() - 1));
    let mut out = String::new();
    let s = p.process_batch(body.as_bytes(), &mut out);
    assert!(s.oversized);
    assert_eq!((s.events, s.kept, s.dropped, s.bad), (0, 0, 0, 0));
    assert_eq!(out, body);
    let c = p.counters();
    assert_eq!((c.oversized_batches, c.read, c.bytes_in, c.bytes_out), (1, 0, body.len() as u64, body.len() as u64));
    assert!(c.to_json().contains("\"oversizedBatches\":1"), "{}", c.to_json());
    assert!(p.metrics_json().contains("\"oversizedBatches\":1"), "{}", p.metrics_json());

    // At the limit: processed (the seed's policy drops RequestReceived and more from this log).
    let mut p = pipeline(&format!("limits:\n  maxBatchBytes: {}\n", body.len()));
    let mut out = String::new();
    let s = p.process_batch(body.as_bytes(), &mut out);
    assert!(!s.oversized);
    assert_eq!(s.events, n);
    assert!(s.dropped > 0 && s.kept > 0, "{s:?}");
    assert_ne!(out, body);
    assert_eq!(p.counters().oversized_batches, 0);
}

#[test]
fn an_event_over_max_event_bytes_inside_a_batch_passes_through_untouched() {
    let body = event_list(SAMPLE);
    let biggest = SAMPLE.lines().map(str::len).max().unwrap();
    let mut p = pipeline(&format!("limits:\n  maxEventBytes: {}\n", biggest - 1));
    let mut out = String::new();
    let s = p.process_batch(body.as_bytes(), &mut out);
    let c = p.counters();
    assert!(c.oversized >= 1, "{}", c.to_json());
    // Oversized items are written as they came (counted as kept by the batch summary).
    let big = SAMPLE.lines().find(|l| l.len() == biggest).unwrap();
    assert!(out.contains(big));
    assert_eq!(s.events, c.read);
}

#[test]
fn limit_values_are_checked() {
    let e = load_err("limits:\n  maxEventByte: 10\n");
    assert!(
        e.contains("limits.yaml:2:3")
            && e.contains("unknown key (expected one of: maxEventBytes, maxBatchBytes, maxPendingAlerts)"),
        "{e}"
    );
    let e = load_err("limits:\n  maxBatchBytes: 0\n");
    assert!(e.contains("limits.yaml:2:18") && e.contains("maxBatchBytes") && e.contains("must be at least 1"), "{e}");
    let e = load_err("limits:\n  maxPendingAlerts: -1\n");
    assert!(e.contains("maxPendingAlerts"), "{e}");
    // Above 4 GiB: read as is on 64-bit hosts, saturated (not wrapped to a small number) on
    // wasm32, where no record can be that large either way.
    let (c, _) = Config::load("limits:\n  maxEventBytes: 4294967297\n", "l.yaml", &NoFiles).unwrap();
    assert_eq!(c.limits.max_event_bytes, usize::try_from(4_294_967_297u64).unwrap_or(usize::MAX));
    let e = load_err("alerts:\n  limits: {maxGroups: 0}\n");
    assert!(e.contains("maxGroups") && e.contains("from 1 to 100000000"), "{e}");
    let (c, _) =
        Config::load("alerts:\n  limits: {maxGroups: 7, maxDistinct: 3, maxAuditIDs: 2}\n", "l.yaml", &NoFiles)
            .unwrap();
    assert_eq!((c.alerts.limits.max_groups, c.alerts.limits.max_distinct, c.alerts.limits.max_audit_ids), (7, 3, 2));
}

/// A policy file's unknown-field warnings used to be taken for an unknown key of the
/// `enrichment` section that followed, failing the config.
#[test]
fn policy_file_warnings_stay_warnings_next_to_other_sections() {
    struct Policy;
    impl kaudit::FileSource for Policy {
        fn read(&self, _: &str) -> Result<Vec<u8>, kaudit::FileError> {
            Ok(b"apiVersion: audit.k8s.io/v1\nkind: Policy\nfoo: 1\nrules:\n- level: Metadata\n".to_vec())
        }
    }
    for section in ["enrichment:\n  enabled: true\n", "limits:\n  maxEventBytes: 1000\n", "alerts:\n  enabled: true\n"]
    {
        let text = format!("policyFile: p.yaml\n{section}");
        let (_, warnings) = Config::load(&text, "c.yaml", &Policy).unwrap_or_else(|e| panic!("{section}: {e}"));
        assert_eq!(
            warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            ["p.yaml:3:1: policy.foo: unknown field, ignored"]
        );
    }
}

#[test]
fn pending_alerts_are_bounded_when_the_host_does_not_take_them() {
    // Reference: the same log with alerts taken after every record.
    let mut p = pipeline("");
    let mut total = 0usize;
    let mut out = Vec::new();
    for line in INTERNET_LOG.lines() {
        p.process_record(line.as_bytes(), &mut out);
        total += p.take_alerts().len();
    }
    assert!(total > 3, "the fixture raises {total} alerts");

    let mut p = pipeline("limits:\n  maxPendingAlerts: 3\n");
    p.process_stream(INTERNET_LOG.as_bytes(), &mut Vec::new(), &mut |_| {});
    assert_eq!(p.counters().alerts_dropped, (total - 3) as u64);
    assert!(p.counters().to_json().contains(&format!("\"alertsDropped\":{}", total - 3)));
    let kept = p.take_alerts();
    assert_eq!(kept.len(), 3);
    // After a take the queue starts again.
    assert!(p.take_alerts().is_empty());
}

#[test]
fn a_regex_over_the_size_limit_is_a_config_error() {
    // 1000 x 1000 repetitions compile to far more than the 1 MiB program limit.
    let e = load_err(
        "alerts:\n  defaultRules: false\n  rules:\n    - name: r\n      query: 'verb ~ \"(a{1000}){1000}\"'\n",
    );
    assert!(e.contains("limits.yaml:5") && e.contains("regular expression"), "{e}");
    // Nesting beyond the query depth limit is refused too (bounded recursion).
    let deep = format!("verb ~ \"{}a{}\"", "(".repeat(200), ")".repeat(200));
    let e = load_err(&format!("alerts:\n  defaultRules: false\n  rules:\n    - name: r\n      query: '{deep}'\n"));
    assert!(e.contains("regular expression"), "{e}");
}

#[test]
fn the_regex_size_limit_is_configurable() {
    let rules = |limits: &str| {
        format!("alerts:\n  defaultRules: false\n{limits}  rules:\n    - name: r\n      query: 'verb ~ \"(get|list|watch){{300}}\"'\n")
    };
    // Within the default 1 MiB.
    pipeline(&rules("")); // panics unless it loads
                          // A smaller bound refuses the same rule at load, naming the rule's query and the bound.
    let e = load_err(&rules("  limits:\n    maxRegexBytes: 10000\n"));
    assert!(e.contains("limits.yaml:7") && e.contains("query") && e.contains("size limit of 10000"), "{e}");
    // A larger one admits a regex the default refuses.
    let big = |limits: &str| {
        format!("alerts:\n  defaultRules: false\n{limits}  rules:\n    - name: r\n      query: 'verb ~ \"(a{{1000}}){{100}}\"'\n")
    };
    assert!(load_err(&big("")).contains("size limit of 1048576"));
    pipeline(&big("  limits:\n    maxRegexBytes: 16777216\n"));
    assert!(load_err("alerts:\n  limits:\n    maxRegexBytes: 0\n").contains("maxRegexBytes"));
}

#[test]
fn oversized_record_outcome_on_the_record_path() {
    let line = SAMPLE.lines().next().unwrap();
    let mut p = pipeline(&format!("limits:\n  maxEventBytes: {}\n", line.len() - 1));
    let mut out = Vec::new();
    assert_eq!(p.process_record(line.as_bytes(), &mut out), Outcome::Oversized);
    assert_eq!(out, line.as_bytes());
    assert_eq!(p.counters().oversized, 1);
}
