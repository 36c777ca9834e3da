//! Malformed input never panics: each bad record is reported and passed through untouched
//! (or dropped when configured), and the counts add up.

use kaudit::{BadRecords, Pipeline};
use kaudit::{Outcome, RecordReport};

const GOOD: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"alice","groups":["system:authenticated"]},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2024-05-01T10:00:00.000000Z","stageTimestamp":"2024-05-01T10:00:00.002000Z"}"#;

fn run(input: &[u8], mode: BadRecords) -> (Vec<u8>, Vec<RecordReport>, Pipeline) {
    let mut config = kaudit::Config::embedded_default();
    config.bad_records = mode;
    config.enrichment.enabled = false;
    let mut p = Pipeline::new(config);
    let mut out = Vec::new();
    let mut reports = Vec::new();
    p.process_stream(input, &mut out, &mut |r| reports.push(r.clone()));
    (out, reports, p)
}

fn bad_errors(reports: &[RecordReport]) -> Vec<(usize, String)> {
    reports
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Bad { error, .. } => Some((r.pos.line, error.to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn every_kind_of_bad_line_is_reported_and_passed_through_untouched() {
    let mut input = Vec::new();
    let bad_lines: Vec<Vec<u8>> = vec![
        br#"{"kind":"Event","auditID":"trunc","stage":"ResponseComplete","verb":"get""#.to_vec(),
        b"\xff\xfe\x00 not utf-8 \xc3\x28".to_vec(),
        br#"{"kind": 0}"#.to_vec(),
        br#"{"stage":"ResponseComplete","verb":"get","objectRef":"pods"}"#.to_vec(),
        br#"{"stage":"ResponseComplete","verb":"get","responseStatus":{"code":"200"}}"#.to_vec(),
        br#"[1, 2, 3]"#.to_vec(),
        b"hello world".to_vec(),
        br#"{"stage":"ResponseComplete","verb":"get"} trailing"#.to_vec(),
    ];
    input.extend_from_slice(b"\n   \n");
    for line in &bad_lines {
        input.extend_from_slice(line);
        input.push(b'\n');
        input.extend_from_slice(GOOD.as_bytes());
        input.push(b'\n');
    }
    let (out, reports, p) = run(&input, BadRecords::Pass);
    let errors = bad_errors(&reports);
    // `[1, 2, 3]` is not a list of events: one record, passed through with its brackets.
    assert_eq!(errors.len(), bad_lines.len(), "{errors:#?}");
    for (line, error) in &errors {
        assert!(*line >= 3, "line numbers count from the start of the input: {line}");
        assert!(!error.is_empty());
    }
    assert!(errors.iter().any(|(_, e)| e.contains("not UTF-8")));
    assert!(errors.iter().any(|(_, e)| e.starts_with("kind:")));
    assert!(errors.iter().any(|(_, e)| e.starts_with("objectRef:")));
    assert!(errors.iter().any(|(_, e)| e.starts_with("responseStatus:")));
    // Every bad line's exact bytes are in the output.
    for line in &bad_lines {
        assert!(
            out.windows(line.len()).any(|w| w == line.as_slice()),
            "{:?} not passed through",
            String::from_utf8_lossy(line)
        );
    }
    let c = p.counters();
    assert_eq!(c.read, c.kept + c.dropped + c.bad + c.oversized);
    assert_eq!(c.kept, bad_lines.len() as u64);
    assert_eq!(c.bad as usize, errors.len());
}

#[test]
fn drop_mode_drops_bad_records_but_counts_them() {
    let input = format!("{GOOD}\n{{\"kind\": 0}}\nnot json\n{GOOD}\n");
    let (out, _, p) = run(input.as_bytes(), BadRecords::Drop);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert_eq!((p.counters().bad, p.counters().kept, p.counters().read), (2, 2, 4));
}

#[test]
fn fifty_megabyte_line() {
    let body = "x".repeat(50 * 1024 * 1024);
    let big = GOOD.replacen(
        "\"level\":\"Metadata\"",
        &format!("\"level\":\"RequestResponse\",\"responseObject\":{{\"data\":\"{body}\"}}"),
        1,
    );
    let (out, reports, _) = run(big.as_bytes(), BadRecords::Pass);
    assert_eq!(reports.len(), 1);
    // The seed policy logs pod lists at Request: the 50 MB responseObject is removed.
    assert_eq!(reports[0].outcome, Outcome::Kept { changed: true });
    assert!(out.len() < 2000, "{}", out.len());
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    // 10,000 levels inside requestObject: valid JSON, skipped iteratively, never recursed into.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let ev = GOOD.replacen("\"level\":\"Metadata\"", &format!("\"level\":\"Metadata\",\"requestObject\":{deep}"), 1);
    let (out, reports, _) = run(ev.as_bytes(), BadRecords::Pass);
    assert_eq!(reports[0].outcome, Outcome::Kept { changed: true }, "a Metadata event loses its requestObject");
    assert_eq!(String::from_utf8(out).unwrap().trim_end(), GOOD);
    // Inside a member kaudit decodes (user), unknown deep values are skipped the same way.
    let deep_user = GOOD.replacen("\"user\":{", &format!("\"user\":{{\"extra\":{deep},"), 1);
    let (out, reports, _) = run(deep_user.as_bytes(), BadRecords::Pass);
    assert_eq!(reports[0].outcome, Outcome::Kept { changed: false });
    assert_eq!(out, format!("{deep_user}\n").into_bytes());
    // Deep nesting where a string is expected is a clean per-record error.
    let deep_verb = GOOD.replacen("\"verb\":\"list\"", &format!("\"verb\":{deep}"), 1);
    let (_, reports, _) = run(deep_verb.as_bytes(), BadRecords::Pass);
    assert!(
        matches!(&reports[0].outcome, Outcome::Bad { error, passed: true } if error.field.as_deref() == Some("verb")),
        "{:?}",
        reports[0]
    );
    // Unbalanced deep input spread over lines must not take the framing down either.
    let (_, reports, _) = run("{\"a\":".repeat(10_000).as_bytes(), BadRecords::Pass);
    assert_eq!(reports.len(), 1);
}

#[test]
fn oversized_events_pass_through_unparsed() {
    let (config, _) = kaudit::Config::load("limits:\n  maxEventBytes: 100\n", "c.yaml", &kaudit::NoFiles).unwrap();
    let mut p = Pipeline::new(config);
    let mut out = Vec::new();
    assert_eq!(p.process_record(GOOD.as_bytes(), &mut out), Outcome::Oversized);
    assert_eq!(out, GOOD.as_bytes());
}

#[test]
fn event_list_and_array_framing() {
    let list = format!("{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{GOOD},{{\"kind\":0}}]}}\n[{GOOD}]\n");
    let (out, reports, _) = run(list.as_bytes(), BadRecords::Pass);
    assert_eq!(
        reports.iter().map(|r| (r.pos.line, r.pos.item)).collect::<Vec<_>>(),
        [(1, Some(0)), (1, Some(1)), (2, Some(0))]
    );
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 3);
}

#[test]
fn pretty_printed_events_are_written_as_one_line() {
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(GOOD).unwrap()).unwrap();
    let (out, reports, _) = run(format!("{pretty}\n{GOOD}\n").as_bytes(), BadRecords::Pass);
    assert_eq!(reports.len(), 2);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    let a: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let b: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    assert_eq!(a, b);
}

#[test]
fn random_bytes_never_panic() {
    // A deterministic xorshift over printable JSON-ish bytes and raw bytes.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let alphabet = br#"{}[]":,0123456789.-eE truefalsnu\"abcdef
"#;
    for _ in 0..2000 {
        let mut input = Vec::new();
        let len = (x % 300) as usize;
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            input.push(if x.is_multiple_of(7) {
                (x >> 8) as u8
            } else {
                alphabet[(x >> 16) as usize % alphabet.len()]
            });
        }
        let (_, reports, p) = run(&input, BadRecords::Pass);
        let c = p.counters();
        assert_eq!(c.read as usize, reports.len());
        assert_eq!(c.read, c.kept + c.dropped + c.bad + c.oversized);
    }
}
