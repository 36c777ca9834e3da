//! The real wasmtime CLI (48.0.8) on both artifacts, beyond the conformance vectors: the command
//! component on the real sample log (same bytes and summary as the native CLI), config errors,
//! the filesystem sandbox; the library component through `--invoke` (qualified names, `err`).

mod support;

use std::process::Command;

use support::{
    command_wasm, component_wasm, native_cli, parse_wave_result, root, run_with_stdin, wasmtime_cli, wave_string,
};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn wave_strings_round_trip() {
    let s = "{\"a\":\"x\\\\y\"}\n\t\r\u{1}'caf\u{e9} \u{65e5}";
    assert_eq!(support::parse_wave_string(&wave_string(s)), s);
    assert_eq!(parse_wave_result("err([{kind: file}])\n"), Err("[{kind: file}]".to_string()));
    assert_eq!(parse_wave_result("ok(\"\\u{7f}\\'\")\n"), Ok("\u{7f}'".to_string()));
}

#[test]
fn command_component_filters_the_sample_log_like_the_native_cli() {
    let fixtures = root().join("tests/fixtures");
    let native = Command::new(native_cli())
        .args(["filter", "--policy"])
        .arg(fixtures.join("policies/k8s-website-audit-policy.yaml"))
        .arg(fixtures.join("sample-audit.log"))
        .output()
        .unwrap();
    assert!(native.status.success(), "{}", stderr(&native));
    let wasm = Command::new(wasmtime_cli())
        .args(["run", "--dir", &format!("{}::/data", fixtures.display())])
        .arg(command_wasm())
        .args(["filter", "--policy", "/data/policies/k8s-website-audit-policy.yaml", "/data/sample-audit.log"])
        .output()
        .unwrap();
    assert!(wasm.status.success(), "{}", stderr(&wasm));
    assert!(!native.stdout.is_empty());
    assert_eq!(String::from_utf8_lossy(&wasm.stdout), String::from_utf8_lossy(&native.stdout));
    // The summary line counts the same events.
    let summary =
        |o: &std::process::Output| stderr(o).lines().find(|l| l.starts_with("kaudit: read ")).map(str::to_string);
    assert!(summary(&native).is_some(), "native summary: {}", stderr(&native));
    assert_eq!(summary(&wasm), summary(&native));
}

/// The command is built with `panic=unwind` (exnref exception handling, on by default in
/// wasmtime since 47.0), so its per-record guard works as natively: a record whose processing
/// panics is written through untouched, reported and counted, and the run goes on.
/// `kaudit-cli-fault.wasm` is that build plus a trigger that panics on a marked record.
#[test]
fn command_component_passes_a_record_that_panics_through_and_goes_on() {
    let sample = std::fs::read_to_string(root().join("tests/fixtures/sample-audit.log")).unwrap();
    let lines: Vec<&str> = sample.lines().filter(|l| !l.trim().is_empty()).collect();
    let at = lines.len() / 2;
    let marked = lines[at].replacen(r#""auditID":"#, r#""note":"kaudit-fault-injection:panic","auditID":"#, 1);
    assert_ne!(marked, lines[at]);
    let native = |part: &[&str]| {
        let input = part.iter().map(|l| format!("{l}\n")).collect::<String>();
        let out = run_with_stdin(Command::new(native_cli()).arg("filter"), input.as_bytes());
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let want = format!("{}{marked}\n{}", native(&lines[..at]), native(&lines[at + 1..]));
    let mut input: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    input[at] = marked.clone();
    let input = input.iter().map(|l| format!("{l}\n")).collect::<String>();
    let out = run_with_stdin(
        Command::new(wasmtime_cli()).arg("run").arg(support::artifact("kaudit-cli-fault.wasm")).arg("filter"),
        input.as_bytes(),
    );
    let err = stderr(&out);
    assert!(out.status.success(), "the run goes on after the panic: {err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "every other record filtered, the panicking one untouched");
    let line = at + 1;
    assert!(err.contains(&format!("kaudit: <stdin>:{line}: internal error, record passed through untouched")), "{err}");
    assert!(err.contains("1 internal errors"), "{err}");
    assert!(!err.contains("wasm trap") && !err.contains("unreachable"), "{err}");
}

#[test]
fn command_component_reports_config_errors_with_their_location() {
    let dir = std::env::temp_dir().join(format!("kaudit-wasmtime-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kaudit.yaml"),
        "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules:\n    - level: Loud\n",
    )
    .unwrap();
    let out = run_with_stdin(
        Command::new(wasmtime_cli())
            .args(["run", "--dir", &format!("{}::/conf", dir.display())])
            .arg(command_wasm())
            .args(["filter", "--config", "/conf/kaudit.yaml"]),
        b"",
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("/conf/kaudit.yaml:5:"), "error names file and line: {err}");
    assert!(err.contains("Loud"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn command_component_sees_no_files_without_a_preopened_dir() {
    let log = root().join("tests/fixtures/sample-audit.log");
    let out = Command::new(wasmtime_cli()).arg("run").arg(command_wasm()).arg("filter").arg(&log).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("sample-audit.log"), "{}", stderr(&out));
}

fn invoke(args: &[&str], call: &str) -> Result<String, String> {
    let out = Command::new(wasmtime_cli())
        .arg("run")
        .args(args)
        .args(["--invoke", call])
        .arg(component_wasm())
        .output()
        .unwrap();
    // An err(...) result still exits 0: the result is in stdout.
    assert!(out.status.success(), "{call}: {:?} {}", out.status, stderr(&out));
    parse_wave_result(&String::from_utf8(out.stdout).unwrap())
}

#[test]
fn invoke_by_bare_and_qualified_name() {
    let event = std::fs::read_to_string(root().join("tests/fixtures/sample-audit.log"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let bare = invoke(&[], &format!("explain-lines(\"\", {})", wave_string(&event))).unwrap();
    let qualified =
        invoke(&[], &format!("kaudit:audit/lines.explain-lines@0.2.0(\"\", {})", wave_string(&event))).unwrap();
    assert_eq!(bare, qualified);
    let native = kaudit::Pipeline::embedded_default();
    let parsed = kaudit::Event::parse(&event).unwrap();
    assert_eq!(bare, kaudit::explain_json(&parsed, &native.explain(&parsed)) + "\n");
}

#[test]
fn invoke_reports_config_errors_as_err_with_exit_status_0() {
    let got = invoke(&[], "filter-lines(\"policy:\\n  rules: 5\\n\", \"\")");
    let native =
        kaudit::Pipeline::from_config_text("policy:\n  rules: 5\n", "config.yaml", &kaudit::NoFiles).err().unwrap();
    assert_eq!(got, Err(support::wave_errors(&native.errors)));
    let got = got.unwrap_err();
    assert!(
        got.contains("{kind: wrong-type, file: \"config.yaml\", line: 2, column: 10, field: \"policy.rules\""),
        "{got}"
    );
}

#[test]
fn invoke_file_functions_read_only_preopened_dirs() {
    let fixtures = root().join("tests/fixtures");
    let dir = format!("{}::/data", fixtures.display());
    let got = invoke(
        &["--dir", &dir],
        "filter-file(\"/data/policies/k8s-website-audit-policy.yaml\", \"/data/sample-audit.log\")",
    );
    // A policy file is not a kaudit config: its keys are reported, not silently ignored.
    let err = got.unwrap_err();
    assert!(
        err.starts_with("[{kind: unknown-key, file: \"/data/policies/k8s-website-audit-policy.yaml\", line: "),
        "{err}"
    );

    let log = std::fs::read(fixtures.join("sample-audit.log")).unwrap();
    let out = invoke(&["--dir", &dir], "run-file(\"\", \"/data/sample-audit.log\")").unwrap();
    let mut native = String::new();
    kaudit::Pipeline::embedded_default().process_stream(&log, &mut native, &mut |_| {});
    assert_eq!(out, native);

    // filter-file: the policy alone, as `kaudit filter` sets the pipeline up.
    let out = invoke(&["--dir", &dir], "filter-file(\"\", \"/data/sample-audit.log\")").unwrap();
    let mut config = kaudit::Config::embedded_default();
    config.enrichment.enabled = false;
    let mut policy_only = kaudit::Pipeline::new(config);
    let mut native = String::new();
    policy_only.process_stream(&log, &mut native, &mut |_| {});
    assert_eq!(out, native);

    let err = invoke(&[], "filter-file(\"\", \"/data/sample-audit.log\")").unwrap_err();
    assert!(
        err.starts_with("[{kind: file, file: \"/data/sample-audit.log\", line: 0, column: 0, field: \"\", message: "),
        "{err}"
    );
}
