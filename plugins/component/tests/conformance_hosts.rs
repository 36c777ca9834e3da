//! One engine, identical results: every conformance vector (tests/conformance/vectors/*) through
//! the native CLI, the wasmtime CLI running the `wasi:cli` command component, the wasmtime CLI
//! invoking the library component (`--invoke`), and the library component embedded with the
//! wasmtime crate. Each must write exactly `expected.jsonl`, `explain.jsonl` and (where the host
//! reports alerts) `alerts.jsonl`.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use support::host::{Explanation, Loaded, Outcome};
use support::{
    assert_same, command_wasm, component_wasm, native_cli, parse_wave_result, run_with_stdin, vectors, wasmtime_cli,
    wave_string, Vector,
};

/// Records of the input that are not audit events (`kaudit explain` exits 1 when there are any).
fn bad_records(input: &[u8]) -> usize {
    let mut bad = 0;
    kaudit::for_each_event(input, &mut |_, parsed| bad += usize::from(parsed.is_err()));
    bad
}

fn stdout_of(host: &str, v: &Vector, out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone())
        .unwrap_or_else(|e| panic!("{host}: vector {}: stdout is not UTF-8: {e}", v.name))
}

/// `--config` arguments for a vector whose directory is visible at `dir` (native path or guest path).
fn config_args(v: &Vector, dir: &str) -> Vec<String> {
    match v.config {
        Some(_) => vec!["--config".into(), format!("{dir}/config.yaml")],
        None => vec![],
    }
}

/// Runs `kaudit ARGS` natively or in the wasmtime CLI (the command component), input on stdin.
fn cli(wasm: Option<&Path>, dirs: &[(&Path, &str)], args: &[String], stdin: &[u8]) -> std::process::Output {
    let mut cmd = match wasm {
        None => Command::new(native_cli()),
        Some(wasm) => {
            let mut c = Command::new(wasmtime_cli());
            c.arg("run");
            for (host, guest) in dirs {
                c.arg("--dir").arg(format!("{}::{guest}", host.display()));
            }
            c.arg(wasm);
            c
        }
    };
    run_with_stdin(cmd.args(args), stdin)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The CLI checks shared by the native binary and the command component. `dir` is where the
/// vector folder is visible to the program (its native path, or a preopened guest path).
fn check_cli(host: &str, wasm: Option<&Path>, v: &Vector, dir: &str) {
    let dirs = [(v.dir.as_path(), dir)];
    let with =
        |cmd: &[&str], extra: &[&str]| -> Vec<String> { [strings(cmd), config_args(v, dir), strings(extra)].concat() };
    let input = format!("{dir}/input.jsonl");

    // `kaudit run`: the whole pipeline, events on stdout (input on stdin, then as a file).
    for (args, stdin) in [(with(&["run"], &[]), v.input.as_slice()), (with(&["run"], &[&input]), b"".as_slice())] {
        let out = cli(wasm, &dirs, &args, stdin);
        assert!(
            out.status.success(),
            "{host} {args:?} on {}: {:?}\n{}",
            v.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_same(
            &format!("{host} {}", args.join(" ")),
            v,
            "expected.jsonl",
            &v.expected("expected.jsonl"),
            &stdout_of(host, v, &out),
        );
    }

    // Alerts only, on stdout.
    let args = with(&["run", "--no-events", "--alerts", "stdout"], &[&input]);
    let out = cli(wasm, &dirs, &args, b"");
    assert!(
        out.status.success(),
        "{host} {args:?} on {}: {:?}\n{}",
        v.name,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same(
        &format!("{host} {}", args.join(" ")),
        v,
        "alerts.jsonl",
        &v.expected("alerts.jsonl"),
        &stdout_of(host, v, &out),
    );

    // `kaudit explain`: exit status 1 when some records are not events.
    let args = with(&["explain"], &[&input]);
    let out = cli(wasm, &dirs, &args, b"");
    assert_same(
        &format!("{host} explain"),
        v,
        "explain.jsonl",
        &v.expected("explain.jsonl"),
        &stdout_of(host, v, &out),
    );
    let bad = bad_records(&v.input);
    assert_eq!(
        out.status.code(),
        Some(i32::from(bad > 0)),
        "{host} explain {}: exit status with {bad} bad records",
        v.name
    );
}

#[test]
fn native_cli_matches_every_vector() {
    for v in vectors() {
        check_cli("native CLI", None, &v, &v.dir.to_string_lossy());
    }
}

#[test]
fn wasmtime_command_component_matches_every_vector() {
    let wasm = command_wasm();
    for v in vectors() {
        check_cli("wasmtime command", Some(&wasm), &v, "/conf");
    }
}

#[test]
fn filter_is_the_same_policy_alone_in_every_host() {
    // `kaudit filter` (policy only, no enrichment) has no expectation file: every host must agree
    // with the native CLI byte for byte.
    let (wasm_cli, component) = (command_wasm(), component_wasm());
    let mut instance = loaded().instantiate(None);
    for v in vectors() {
        let native =
            cli(None, &[], &[strings(&["filter"]), config_args(&v, &v.dir.to_string_lossy())].concat(), &v.input);
        assert!(native.status.success(), "{}", String::from_utf8_lossy(&native.stderr));
        let native = stdout_of("native", &v, &native);
        assert!(!native.is_empty(), "{}: filter wrote nothing", v.name);

        let wasm = cli(
            Some(&wasm_cli),
            &[(&v.dir, "/conf")],
            &[strings(&["filter"]), config_args(&v, "/conf")].concat(),
            &v.input,
        );
        assert_same(
            "wasmtime command filter",
            &v,
            "`kaudit filter` native output",
            &native,
            &stdout_of("wasmtime", &v, &wasm),
        );

        let config_path = if v.config.is_some() { "/config.yaml" } else { "" };
        let got = invoke(&component, &v.dir, &format!("filter-file({}, \"/input.jsonl\")", wave_string(config_path)))
            .unwrap();
        assert_same("wasmtime --invoke filter-file", &v, "`kaudit filter` native output", &native, &got);

        let config = v.config.clone().unwrap_or_default();
        let got = instance.filter_lines(&config, std::str::from_utf8(&v.input).unwrap()).unwrap();
        assert_same("embedded filter-lines", &v, "`kaudit filter` native output", &native, &got);
    }
}

/// Linux caps one command-line argument at 128 KiB (MAX_ARG_STRLEN); larger calls use `*-file`.
const MAX_ARG: usize = 128 * 1024 - 1;

fn invoke(wasm: &Path, dir: &Path, call: &str) -> Result<String, String> {
    let out = Command::new(wasmtime_cli())
        .args(["run", "--dir", &format!("{}::/", dir.display()), "--invoke", call])
        .arg(wasm)
        .output()
        .unwrap_or_else(|e| panic!("wasmtime run --invoke: {e}"));
    // An err(...) result still exits 0: the outcome is in stdout.
    assert!(
        out.status.success(),
        "wasmtime --invoke {:.120}: {:?}\n{}",
        call,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wave_result(&String::from_utf8(out.stdout).expect("WAVE output is UTF-8"))
}

#[test]
fn wasmtime_invoke_library_component_matches_every_vector() {
    let wasm = component_wasm();
    let mut lines_checked = 0;
    for v in vectors() {
        // The vector directory is the guest's `/`: relative paths in config.yaml resolve there.
        let config_path = if v.config.is_some() { "/config.yaml" } else { "" };
        for (func, file) in [("run", "expected.jsonl"), ("explain", "explain.jsonl"), ("alert", "alerts.jsonl")] {
            let call = format!("{func}-file({}, \"/input.jsonl\")", wave_string(config_path));
            let got = invoke(&wasm, &v.dir, &call).unwrap_or_else(|e| panic!("{call} on {}: err({e})", v.name));
            assert_same(&format!("wasmtime --invoke {func}-file"), &v, file, &v.expected(file), &got);

            let input = std::str::from_utf8(&v.input).expect("vector input is UTF-8");
            let call =
                format!("{func}-lines({}, {})", wave_string(v.config.as_deref().unwrap_or("")), wave_string(input));
            if call.len() <= MAX_ARG {
                let got =
                    invoke(&wasm, &v.dir, &call).unwrap_or_else(|e| panic!("{func}-lines on {}: err({e})", v.name));
                assert_same(&format!("wasmtime --invoke {func}-lines"), &v, file, &v.expected(file), &got);
                lines_checked += 1;
            }
        }
    }
    assert!(lines_checked >= 6, "the *-lines functions were checked on only {lines_checked} vector/function pairs");
}

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| Loaded::new(&component_wasm()))
}

/// What the host writes for one `process` outcome (a line, or nothing for a drop).
fn written(outcome: Outcome) -> Option<Vec<u8>> {
    match outcome {
        Outcome::Kept(k) => Some(k.event),
        Outcome::Dropped(_) => None,
        Outcome::Bad(b) => b.passed,
        Outcome::Oversized(bytes) => Some(bytes),
    }
}

#[test]
fn embedded_library_component_matches_every_vector() {
    for v in vectors() {
        let config = v.config.clone().unwrap_or_default();
        let expected = v.expected("expected.jsonl");
        let mut instance = loaded().instantiate(Some((&v.dir, "/")));

        // The whole input as one batch (JSON lines in, JSON lines out), then its alerts.
        let engine = instance.create(&config).unwrap_or_else(|e| panic!("{}: config errors {e:?}", v.name));
        let batch = instance.process_batch(engine, &v.input);
        assert_same(
            "embedded process-batch",
            &v,
            "expected.jsonl",
            &expected,
            &String::from_utf8(batch.output).unwrap(),
        );
        let alerts: String = instance.take_alerts(engine).into_iter().map(|a| a + "\n").collect();
        assert_same("embedded take-alerts", &v, "alerts.jsonl", &v.expected("alerts.jsonl"), &alerts);
        assert_eq!(batch.summary.events, instance.counters(engine).read, "{}: summary vs counters", v.name);

        // Record at a time, one call per line (how Fluent Bit-like hosts call it), same engine kind.
        let engine2 = instance.create(&config).unwrap();
        let mut out = Vec::new();
        for line in v.input_lines() {
            if let Some(bytes) = written(instance.process(engine2, line)) {
                out.extend_from_slice(&bytes);
                out.push(b'\n');
            }
        }
        assert_same(
            "embedded process (record at a time)",
            &v,
            "expected.jsonl",
            &expected,
            &String::from_utf8(out).unwrap(),
        );
        let alerts: String = instance.take_alerts(engine2).into_iter().map(|a| a + "\n").collect();
        assert_same(
            "embedded take-alerts (record at a time)",
            &v,
            "alerts.jsonl",
            &v.expected("alerts.jsonl"),
            &alerts,
        );

        // The input as a Kubernetes EventList (the audit webhook's body): the envelope stays, the
        // kept items are exactly the expected lines.
        let items: Vec<&str> = v.input_lines().into_iter().map(|l| std::str::from_utf8(l).unwrap().trim()).collect();
        let body = format!(
            "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{}]}}",
            items.join(",")
        );
        let engine3 = instance.create(&config).unwrap();
        let got = String::from_utf8(instance.process_batch(engine3, body.as_bytes()).output).unwrap();
        let kept: Vec<&str> = expected.lines().collect();
        let want = format!(
            "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{}]}}",
            kept.join(",")
        );
        assert_eq!(got, want, "embedded process-batch (EventList): vector {}", v.name);

        // explain-batch: the decisions' JSON lines are `kaudit explain`'s output.
        let mut explain = String::new();
        let mut bad = 0;
        for e in instance.explain_batch(engine, &v.input) {
            match e {
                Explanation::Decision(d) => {
                    explain.push_str(&d.json);
                    explain.push('\n');
                }
                Explanation::Bad(_) => bad += 1,
            }
        }
        assert_same("embedded explain-batch", &v, "explain.jsonl", &v.expected("explain.jsonl"), &explain);
        assert_eq!(bad, bad_records(&v.input), "{}: bad records reported by explain-batch", v.name);

        // The one-shot functions inside the same runtime.
        let text = std::str::from_utf8(&v.input).unwrap();
        assert_same("embedded run-lines", &v, "expected.jsonl", &expected, &instance.run_lines(&config, text).unwrap());
        assert_same(
            "embedded explain-lines",
            &v,
            "explain.jsonl",
            &v.expected("explain.jsonl"),
            &instance.explain_lines(&config, text).unwrap(),
        );
        assert_same(
            "embedded alert-lines",
            &v,
            "alerts.jsonl",
            &v.expected("alerts.jsonl"),
            &instance.alert_lines(&config, text).unwrap(),
        );
        for e in [engine, engine2, engine3] {
            instance.drop_engine(e);
        }
    }
}
