//! Runs every conformance vector (tests/conformance/vectors/*) through the native engine and
//! compares with the expected files. `KAUDIT_BLESS=1` rewrites them instead (one test thread: `cargo xtask bless`; review the diff).

use std::path::{Path, PathBuf};

use kaudit::Pipeline;

mod support;

use support::Dir;

pub fn vectors() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/vectors");
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs
}

fn pipeline(dir: &Path) -> Pipeline {
    match std::fs::read_to_string(dir.join("config.yaml")) {
        Ok(text) => Pipeline::from_config_text(&text, "config.yaml", &Dir(dir.to_path_buf())).unwrap().0,
        Err(_) => Pipeline::embedded_default(),
    }
}

fn check(dir: &Path, file: &str, actual: &str) {
    let path = dir.join(file);
    if std::env::var_os("KAUDIT_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (run cargo xtask bless)", path.display()));
    if expected != actual {
        let (e, a): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
        let first = e.iter().zip(&a).position(|(x, y)| x != y).unwrap_or(e.len().min(a.len()));
        panic!(
            "{}: differs at line {} ({} expected lines, {} actual)\nexpected: {}\nactual:   {}",
            path.display(),
            first + 1,
            e.len(),
            a.len(),
            e.get(first).unwrap_or(&"<none>"),
            a.get(first).unwrap_or(&"<none>")
        );
    }
}

#[test]
fn every_vector_matches_the_native_engine() {
    let vectors = vectors();
    assert!(vectors.len() >= 3, "vectors missing");
    for dir in vectors {
        let input = std::fs::read(dir.join("input.jsonl")).unwrap();
        let mut p = pipeline(&dir);
        let mut out = String::new();
        p.process_stream(&input, &mut out, &mut |_| {});
        check(&dir, "expected.jsonl", &out);

        let mut explain = String::new();
        p.explain_stream(&input, &mut |e| {
            if let Some(json) = e.to_json() {
                explain.push_str(&json);
                explain.push('\n');
            }
        });
        check(&dir, "explain.jsonl", &explain);

        let alerts: String = p.take_alerts().into_iter().map(|a| a + "\n").collect();
        check(&dir, "alerts.jsonl", &alerts);

        // Into bytes (the component's and Envoy's output): the same text.
        let mut bytes = Vec::new();
        pipeline(&dir).process_stream(&input, &mut bytes, &mut |_| {});
        check(&dir, "expected.jsonl", &String::from_utf8(bytes).unwrap());
    }
}

#[test]
fn record_at_a_time_equals_stream() {
    // Hosts like Fluent Bit see one record per call; the bytes must be the same as the stream's.
    for dir in vectors() {
        let input = std::fs::read(dir.join("input.jsonl")).unwrap();
        let mut stream_out = String::new();
        pipeline(&dir).process_stream(&input, &mut stream_out, &mut |_| {});
        let mut p = pipeline(&dir);
        let mut records_out = String::new();
        for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let before = records_out.len();
            p.process_record(line, &mut records_out);
            if records_out.len() > before {
                records_out.push('\n');
            }
        }
        assert_eq!(stream_out, records_out, "{}", dir.display());
    }
}

#[test]
fn batch_as_event_list_keeps_the_expected_items() {
    for dir in vectors() {
        let input = std::fs::read_to_string(dir.join("input.jsonl")).unwrap();
        let items: Vec<&str> = input.lines().filter(|l| !l.is_empty()).collect();
        let body = format!(
            "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{}]}}",
            items.join(",")
        );
        let mut out = String::new();
        pipeline(&dir).process_batch(body.as_bytes(), &mut out);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let expected = std::fs::read_to_string(dir.join("expected.jsonl")).unwrap();
        let got: Vec<String> = v["items"].as_array().unwrap().iter().map(|i| i.to_string()).collect();
        let want: Vec<String> =
            expected.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap().to_string()).collect();
        assert_eq!(got, want, "{}", dir.display());
        assert_eq!(v["kind"], "EventList");
    }
}
