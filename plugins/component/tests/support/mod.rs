//! Shared by the component's tests: the conformance vectors, the built artifacts, the native CLI,
//! the wasmtime CLI, WAVE text for `--invoke`, and comparisons that name the first differing line.
#![allow(dead_code)] // each test binary uses part of it

pub mod host;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

/// The repository root (this crate lives in plugins/component).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// One conformance vector (tests/conformance/README.md).
pub struct Vector {
    pub name: String,
    pub dir: PathBuf,
    /// `config.yaml`, when the vector has one (otherwise the embedded default applies).
    pub config: Option<String>,
    pub input: Vec<u8>,
}

impl Vector {
    /// An expectation file; a missing `alerts.jsonl` means "no alerts".
    pub fn expected(&self, file: &str) -> String {
        let path = self.dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(_) if file == "alerts.jsonl" => String::new(),
            Err(e) => panic!("{}: {e} (run cargo xtask bless)", path.display()),
        }
    }

    /// The input's records, one per line (the README's format), blank lines skipped.
    pub fn input_lines(&self) -> Vec<&[u8]> {
        self.input.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).collect()
    }
}

/// Every vector under tests/conformance/vectors, sorted by name: a vector added there is checked
/// by every host here without touching this code.
pub fn vectors() -> Vec<Vector> {
    let root = root().join("tests/conformance/vectors");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("vector dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 3, "expected at least 3 vectors in {}", root.display());
    dirs.into_iter()
        .map(|dir| Vector {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            config: std::fs::read_to_string(dir.join("config.yaml")).ok(),
            input: std::fs::read(dir.join("input.jsonl"))
                .unwrap_or_else(|e| panic!("{}/input.jsonl: {e}", dir.display())),
            dir,
        })
        .collect()
}

/// Panics with the first differing line when `actual` is not byte-identical to `expected`.
pub fn assert_same(host: &str, vector: &Vector, file: &str, expected: &str, actual: &str) {
    if expected == actual {
        return;
    }
    let (e, a): (Vec<_>, Vec<_>) = (expected.split_inclusive('\n').collect(), actual.split_inclusive('\n').collect());
    let first = e.iter().zip(&a).position(|(x, y)| x != y).unwrap_or(e.len().min(a.len()));
    panic!(
        "{host}: vector {} differs from {file} at line {} ({} expected lines, {} actual)\nexpected: {:?}\nactual:   {:?}",
        vector.name,
        first + 1,
        e.len(),
        a.len(),
        e.get(first).unwrap_or(&"<none>"),
        a.get(first).unwrap_or(&"<none>")
    );
}

/// Newest modification time of the files under `dirs` (relative to the repository root).
fn newest_source(dirs: &[&str]) -> SystemTime {
    fn walk(p: &Path, newest: &mut SystemTime) {
        if let Ok(meta) = std::fs::metadata(p) {
            if meta.is_dir() {
                for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                    walk(&e.path(), newest);
                }
            } else if let Ok(m) = meta.modified() {
                *newest = (*newest).max(m);
            }
        }
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    for d in dirs {
        walk(&root().join(d), &mut newest);
    }
    newest
}

/// Fails when `built` is older than the sources it is built from (a stale build would test old
/// code). `KAUDIT_STALE_OK=1` skips the check (while others edit the tree and you know why).
fn assert_fresh(built: &Path, sources: &[&str], rebuild: &str) {
    if std::env::var_os("KAUDIT_STALE_OK").is_some() {
        return;
    }
    let built_at = std::fs::metadata(built).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
    assert!(
        built_at >= newest_source(sources),
        "{} is older than the sources in {sources:?}: rebuild it ({rebuild}), or set KAUDIT_STALE_OK=1",
        built.display()
    );
}

/// A .wasm artifact collected by `cargo xtask build-wasm` under `$KAUDIT_ARTIFACTS`.
pub fn artifact(name: &str) -> PathBuf {
    let dir = std::env::var_os("KAUDIT_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
        target.join("kaudit-artifacts")
    });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the WASM artifacts first (cargo xtask build-wasm, or cargo xtask test), with KAUDIT_ARTIFACTS pointing at them",
        path.display()
    );
    let sources: &[&str] = match name {
        "kaudit-component.wasm" => &["src", "rules", "wit", "plugins/component/src"],
        _ => &["src", "rules", "plugins/cli/src"],
    };
    assert_fresh(&path, sources, "cargo xtask build-wasm");
    path
}

/// The library component (world kaudit:audit/audit).
pub fn component_wasm() -> PathBuf {
    artifact("kaudit-component.wasm")
}

/// The `wasi:cli` command component built from plugins/cli.
pub fn command_wasm() -> PathBuf {
    artifact("kaudit-cli.wasm")
}

/// The native `kaudit` binary: `$KAUDIT_CLI`, else the one in this test's target profile dir
/// (`cargo build -p kaudit-cli` puts it there; `cargo test` alone does not build it).
pub fn native_cli() -> PathBuf {
    let path = match std::env::var_os("KAUDIT_CLI") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().expect("test executable path");
            // target/<profile>/deps/<test> -> target/<profile>/kaudit
            exe.parent().and_then(Path::parent).expect("target profile dir").join("kaudit")
        }
    };
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p kaudit-cli` first (cargo xtask test does), or set KAUDIT_CLI",
        path.display()
    );
    assert_fresh(&path, &["src", "rules", "plugins/cli/src"], "cargo build -p kaudit-cli");
    path
}

/// The wasmtime CLI `cargo xtask setup` installs (the version the tests were written against).
pub fn wasmtime_cli() -> &'static str {
    let out = Command::new("wasmtime")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("the wasmtime CLI is not on PATH ({e}): run cargo xtask setup (cargo install wasmtime-cli --locked --version 48.0.8)"));
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(version.starts_with("wasmtime 48."), "expected wasmtime 48.x (cargo xtask setup), found {version}");
    "wasmtime"
}

/// Runs a command with `stdin` as its standard input and returns its output.
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut pipe = child.stdin.take().expect("stdin pipe");
    let input = stdin.to_vec();
    // Feed stdin from another thread so a child writing a lot of output cannot deadlock us.
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    writer.join().expect("stdin writer").unwrap_or_else(|e| panic!("{cmd:?}: writing stdin: {e}"));
    out
}

/// `s` as a WAVE string literal (the argument syntax of `wasmtime run --invoke`).
pub fn wave_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8 + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses what `wasmtime run --invoke` prints for a `result<string, list<error>>` (one line):
/// `ok("...")` gives the decoded text, `err(...)` the error list as printed, in WAVE
/// (`[{kind: file, file: "/x", line: 0, ...}]`; [`wave_errors`] writes the expected one).
pub fn parse_wave_result(stdout: &str) -> Result<String, String> {
    let line = stdout.trim_end_matches('\n');
    let inner = |rest: &str| {
        rest.strip_suffix(')')
            .unwrap_or_else(|| panic!("unterminated WAVE result: {:?}", &line[..line.len().min(200)]))
            .to_string()
    };
    if let Some(r) = line.strip_prefix("ok(") {
        Ok(parse_wave_string(&inner(r)))
    } else if let Some(r) = line.strip_prefix("err(") {
        Err(inner(r))
    } else {
        panic!("not a WAVE result: {:?}", &line[..line.len().min(200)]);
    }
}

/// The WAVE text of the WIT `list<error>` a one-shot function returns for config diagnostics
/// (`kind` as `wit/types.wit` names the core's kinds).
pub fn wave_errors(errors: &[kaudit::Diagnostic]) -> String {
    let items: Vec<String> = errors
        .iter()
        .map(|d| {
            let kind = match d.kind {
                kaudit::DiagnosticKind::Syntax => "syntax",
                kaudit::DiagnosticKind::UnknownKey => "unknown-key",
                kaudit::DiagnosticKind::DuplicateKey => "duplicate-key",
                kaudit::DiagnosticKind::Type => "wrong-type",
                kaudit::DiagnosticKind::File => "file",
                _ => "invalid-value",
            };
            format!(
                "{{kind: {kind}, file: {}, line: {}, column: {}, field: {}, message: {}}}",
                wave_string(&d.file),
                d.pos.line,
                d.pos.col,
                wave_string(&d.field),
                wave_string(&d.message)
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// Decodes one WAVE string literal (`"..."` with `\n`, `\"`, `\u{..}`, ... escapes).
pub fn parse_wave_string(lit: &str) -> String {
    let inner = lit
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not a WAVE string: {lit:.200}"));
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('\'') => out.push('\''),
            Some('u') => {
                assert_eq!(chars.next(), Some('{'), "bad \\u escape in {lit:.200}");
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let code = u32::from_str_radix(&hex, 16).unwrap_or_else(|e| panic!("bad \\u{{{hex}}}: {e}"));
                out.push(char::from_u32(code).unwrap_or_else(|| panic!("bad code point {code:x}")));
            }
            other => panic!("unknown WAVE escape \\{other:?} in {lit:.200}"),
        }
    }
    out
}
