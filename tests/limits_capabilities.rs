//! What kaudit can reach, checked (SECURITY.md cites these tests):
//!
//! * the core does no I/O: no file, network, process, environment or console use in `src/`
//!   (outside its unit tests), and its dependency tree is a reviewed list of pure crates;
//! * nothing in an event reaches a [`FileSource`]: files are read only while a config loads,
//!   and a [`Pipeline`] holds no file access at all;
//! * the built plugins import no capability beyond what they need: no WASI sockets or HTTP in
//!   any artifact; the Fluent Bit module's WASI calls are a fixed list (reading its config and
//!   writing its log); the Envoy module's only outbound call is `proxy_http_call` (to the
//!   configured cluster; see plugins/envoy/src/filter.rs and SECURITY.md).
//!
//! The artifact checks read `$KAUDIT_ARTIFACTS` (set by `cargo xtask test`, which builds them).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kaudit::{FileError, FileSource, Pipeline};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a core source file without comments and without its unit tests (`tests.rs`
/// files and the trailing `#[cfg(test)] mod tests { .. }` block).
fn production_code(path: &Path) -> Option<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return None;
    }
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    Some(text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n"))
}

#[test]
fn the_core_has_no_io() {
    // Each is a way to touch the filesystem, the network, processes, the environment or the
    // console. `std::net` address types (IpAddr) are plain data and allowed.
    const FORBIDDEN: &[&str] = &[
        "std::fs",
        "std::process",
        "std::env",
        "std::thread",
        "std::io::stdin",
        "std::io::stdout",
        "std::io::stderr",
        "TcpStream",
        "TcpListener",
        "UdpSocket",
        "ToSocketAddrs",
        "File::",
        "OpenOptions",
        "Command::",
        "println!",
        "eprintln!",
        "print!",
        "eprint!",
        "dbg!",
        "open_readfile",
        "Reader::open",
    ];
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    assert!(files.len() > 20, "{} files under src/", files.len());
    let mut found = Vec::new();
    let mut scanned = 0;
    for f in &files {
        let Some(code) = production_code(f) else { continue };
        scanned += 1;
        for (n, line) in code.lines().enumerate() {
            for pat in FORBIDDEN {
                if line.contains(pat) {
                    found.push(format!(
                        "{}:{}: {pat}: {}",
                        f.strip_prefix(root()).unwrap().display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
            // `use std::{fs, ..}` and the like.
            if line.contains("std::{")
                && ["fs", "process", "env", "thread"]
                    .iter()
                    .any(|m| line.contains(&format!("{m},")) || line.contains(&format!("{m}}}")))
            {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(scanned > 20);
    assert!(found.is_empty(), "I/O in the core (hosts do I/O, the core gets bytes):\n{}", found.join("\n"));
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    assert!(lib.contains("#![forbid(unsafe_code)]"));
}

/// The core's dependency closure (from Cargo.lock), each reviewed: parsing, regexes, time,
/// IP networks, the MaxMind reader (used on bytes the host reads; its file-opening functions
/// are never called, see above), derive macros. A new crate here must be reviewed for I/O and
/// added to this list and to SECURITY.md.
#[test]
fn the_core_depends_only_on_reviewed_crates() {
    // Cargo.lock does not tell dev-dependencies apart, so `kaudit-testkit` (the tests' corpus
    // generator and MMDB writer, in-memory only) is listed too. flate2 (with its pure-Rust
    // miniz_oxide backend) and base64 decode managed-cluster wrappers from byte slices only.
    const REVIEWED: &[&str] = &[
        "adler2",
        "aho-corasick",
        "arraydeque",
        "base64",
        "cfg-if",
        "crc32fast",
        "flate2",
        "form_urlencoded",
        "ipnet",
        "ipnetwork",
        "itoa",
        "jiff",
        "jiff-core",
        "jiff-static",
        "kaudit",
        "kaudit-testkit",
        "log",
        "maxminddb",
        "memchr",
        "miniz_oxide",
        "percent-encoding",
        "portable-atomic",
        "portable-atomic-util",
        "proc-macro2",
        "quote",
        "regex",
        "regex-automata",
        "regex-syntax",
        "saphyr-parser",
        "serde",
        "serde_core",
        "serde_derive",
        "serde_json",
        "simd-adler32",
        "syn",
        "thiserror",
        "thiserror-impl",
        "unicode-ident",
        "zmij",
    ];
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let mut deps: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let name = block.lines().find_map(|l| l.strip_prefix("name = \"")).unwrap().trim_end_matches('"').to_string();
        let mut list = Vec::new();
        let mut in_deps = false;
        for l in block.lines() {
            if l.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && l.starts_with(']') {
                in_deps = false;
            } else if in_deps {
                list.push(l.trim().trim_matches(|c| c == '"' || c == ',').split(' ').next().unwrap().to_string());
            }
        }
        deps.entry(name).or_default().extend(list);
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec!["kaudit".to_string()];
    while let Some(n) = stack.pop() {
        if seen.insert(n.clone()) {
            stack.extend(deps.get(&n).cloned().unwrap_or_default());
        }
    }
    let unreviewed: Vec<&String> = seen.iter().filter(|n| !REVIEWED.contains(&n.as_str())).collect();
    assert!(unreviewed.is_empty(), "crates in the core's dependency tree not reviewed for I/O: {unreviewed:?}");
    assert!(seen.contains("regex") && seen.contains("maxminddb"), "{seen:?}");
}

/// Records every path asked for.
struct Recorder(RefCell<Vec<String>>);

impl FileSource for Recorder {
    fn read(&self, path: &str) -> Result<Vec<u8>, FileError> {
        self.0.borrow_mut().push(path.to_string());
        Err(FileError::new(path, "refused by the test"))
    }
}

#[test]
fn events_never_reach_the_file_source() {
    // A pipeline cannot hold a borrowed FileSource: it owns everything it uses.
    fn owns_everything<T: 'static + Send>() {}
    owns_everything::<Pipeline>();

    let files = Recorder(RefCell::new(Vec::new()));
    // Every config key that reads a file, in a config that loads (alerts, enrichment).
    let (mut p, _) = Pipeline::from_config_text("enrichment:\n  enabled: true\n", "c.yaml", &files).unwrap();
    assert!(files.0.borrow().is_empty());
    for key in ["policyFile: /etc/passwd", "enrichment:\n  geoip: /etc/shadow", "alerts:\n  packs: [/etc/hosts]"] {
        assert!(Pipeline::from_config_text(key, "c.yaml", &files).is_err());
    }
    assert_eq!(*files.0.borrow(), ["/etc/passwd", "/etc/shadow", "/etc/hosts"]);
    files.0.borrow_mut().clear();

    // Events that carry config keys, paths and URLs are data: processed, never followed.
    let events = [
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"ResponseComplete","requestURI":"file:///etc/passwd","verb":"get","user":{"username":"u"},"sourceIPs":["203.0.113.1"],"objectRef":{"resource":"secrets","namespace":"../../etc","name":"/etc/shadow"},"policyFile":"/etc/passwd","geoip":"/etc/shadow","packs":["http://198.51.100.1/rules.yaml"],"responseStatus":{"code":200}}"#,
        r#"{"policyFile":"/etc/passwd","alerts":{"packs":["/etc/hosts"]}}"#,
    ];
    let mut out = Vec::new();
    for e in events {
        p.process_record(e.as_bytes(), &mut out);
        p.process_batch(format!("[{e}]").as_bytes(), &mut out);
        p.observe_for_alerts(e.as_bytes());
    }
    let _ = p.take_alerts();
    assert_eq!(p.counters().read, 4);
    assert!(files.0.borrow().is_empty());
}

// ---- The built artifacts ----

fn artifact(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("KAUDIT_ARTIFACTS").unwrap_or_else(|| {
        panic!("KAUDIT_ARTIFACTS is not set: run `cargo xtask test` (it builds {name} and sets it)")
    });
    let path = Path::new(&dir).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask build-wasm`)", path.display()))
}

/// A cursor over wasm binary encoding.
struct Bytes<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> u8 {
        let v = self.b[self.i];
        self.i += 1;
        v
    }
    fn leb(&mut self) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = self.byte();
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return v;
            }
        }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        s
    }
    fn name(&mut self) -> String {
        let n = self.leb() as usize;
        String::from_utf8(self.take(n).to_vec()).unwrap()
    }
    fn limits(&mut self) {
        let flags = self.byte();
        self.leb();
        if flags & 1 != 0 {
            self.leb();
        }
    }
}

/// The imports of a core module: (module, name).
fn core_imports(wasm: &[u8]) -> Vec<(String, String)> {
    assert_eq!(&wasm[..8], b"\0asm\x01\0\0\0", "not a core wasm module");
    let mut r = Bytes { b: wasm, i: 8 };
    let mut out = Vec::new();
    while r.i < wasm.len() {
        let id = r.byte();
        let size = r.leb() as usize;
        let end = r.i + size;
        if id == 2 {
            for _ in 0..r.leb() {
                let (module, name) = (r.name(), r.name());
                match r.byte() {
                    0 => drop(r.leb()),
                    1 => {
                        r.byte();
                        r.limits()
                    }
                    2 => r.limits(),
                    3 => drop(r.take(2)),
                    4 => {
                        r.byte();
                        r.leb();
                    }
                    k => panic!("import kind {k}"),
                }
                out.push((module, name));
            }
        }
        r.i = end;
    }
    out
}

/// The top-level imports of a component (what the embedder must provide), by name.
fn component_imports(wasm: &[u8]) -> Vec<String> {
    assert_eq!(&wasm[..8], b"\0asm\x0d\0\x01\0", "not a component");
    let mut r = Bytes { b: wasm, i: 8 };
    let mut out = Vec::new();
    while r.i < wasm.len() {
        let id = r.byte();
        let size = r.leb() as usize;
        let end = r.i + size;
        if id == 10 {
            for _ in 0..r.leb() {
                let tag = r.byte();
                let name = r.name();
                if tag == 0x01 {
                    r.name(); // version suffix
                }
                match r.byte() {
                    0x00 => {
                        r.byte();
                        r.leb();
                    }
                    0x01 | 0x04 | 0x05 => drop(r.leb()),
                    // A value bound: an index or a value type, one LEB either way.
                    0x02 => {
                        r.byte();
                        r.leb();
                    }
                    // A type bound: `eq` an index, or `sub resource` (nothing more).
                    0x03 => {
                        if r.byte() == 0x00 {
                            r.leb();
                        }
                    }
                    k => panic!("externdesc {k:#x}"),
                }
                out.push(name);
            }
        }
        r.i = end;
    }
    out
}

#[test]
fn no_artifact_imports_sockets_or_http() {
    for name in ["kaudit-component.wasm", "kaudit-cli.wasm"] {
        let imports = component_imports(&artifact(name));
        assert!(!imports.is_empty(), "{name}: no imports parsed");
        let allowed = [
            "wasi:cli/",
            "wasi:io/",
            "wasi:filesystem/",
            "wasi:clocks/wall-clock",
            "wasi:clocks/monotonic-clock",
            "wasi:random/insecure-seed",
            "wasi:random/random",
        ];
        let other: Vec<&String> = imports.iter().filter(|i| !allowed.iter().any(|a| i.starts_with(a))).collect();
        assert!(other.is_empty(), "{name} imports more than stdio, files, clocks and random seeds: {other:?}");
        assert!(
            !imports.iter().any(|i| i.starts_with("wasi:sockets") || i.starts_with("wasi:http")),
            "{name}: {imports:?}"
        );
    }
}

#[test]
fn the_fluent_bit_module_imports_only_config_reading_and_logging() {
    let imports = core_imports(&artifact("kaudit-fluent-bit.wasm"));
    let names: BTreeSet<String> = imports
        .iter()
        .map(|(m, n)| {
            assert_eq!(m, "wasi_snapshot_preview1", "non-WASI import {m}.{n}");
            n.clone()
        })
        .collect();
    assert!(names.iter().all(|n| !n.starts_with("sock_")), "{names:?}");
    // Open and read a file under a preopen (the config), write stderr (its log), exit, seed
    // HashMaps, read the (empty) environment: std's runtime. Nothing that lists, creates,
    // renames or deletes files, no clocks, no sockets.
    const ALLOWED: &[&str] = &[
        "environ_get",
        "environ_sizes_get",
        "fd_close",
        "fd_fdstat_get",
        "fd_filestat_get",
        "fd_prestat_get",
        "fd_prestat_dir_name",
        "fd_read",
        "fd_write",
        "path_open",
        "proc_exit",
        "random_get",
    ];
    let other: Vec<&String> = names.iter().filter(|n| !ALLOWED.contains(&n.as_str())).collect();
    assert!(
        other.is_empty(),
        "kaudit-fluent-bit.wasm imports WASI calls beyond reading its config: {other:?} (all: {names:?})"
    );
    assert!(names.contains("path_open") && names.contains("fd_read"), "{names:?}");
    // path_open could create files; the module only ever reads (std::fs::read of the config and
    // the files it names).
    let mut sources = Vec::new();
    rust_files(&root().join("plugins/fluent-bit/src"), &mut sources);
    for f in &sources {
        let text = std::fs::read_to_string(f).unwrap();
        for l in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            let uses: Vec<&str> = l.match_indices("std::fs::").map(|(i, _)| &l[i..]).collect();
            for u in uses {
                assert!(
                    u.starts_with("std::fs::read(") || u.starts_with("std::fs::read_to_string("),
                    "{}: {}",
                    f.display(),
                    l.trim()
                );
            }
            for pat in ["File::", "OpenOptions", "std::net", "std::process"] {
                assert!(!l.contains(pat), "{}: {}", f.display(), l.trim());
            }
        }
    }
}

#[test]
fn the_envoy_module_calls_out_only_over_http_to_a_cluster() {
    let imports = core_imports(&artifact("kaudit-envoy.wasm"));
    let names: BTreeSet<&str> = imports.iter().map(|(_, n)| n.as_str()).collect();
    // WASI: std's runtime only (log to stderr, HashMap seeds, exit); no files, no sockets.
    let wasi: BTreeSet<&str> =
        imports.iter().filter(|(m, _)| m == "wasi_snapshot_preview1").map(|(_, n)| n.as_str()).collect();
    let other: Vec<&&str> = wasi
        .iter()
        .filter(|n| !["environ_get", "environ_sizes_get", "fd_write", "proc_exit", "random_get"].contains(n))
        .collect();
    assert!(other.is_empty(), "kaudit-envoy.wasm WASI imports: {wasi:?}");
    assert!(imports.iter().all(|(m, _)| m == "env" || m == "wasi_snapshot_preview1"), "{imports:?}");
    // proxy_http_call is Envoy's cluster-addressed callout (Envoy resolves the cluster from its
    // own config; the module cannot name a host). The proxy-wasm crate imports the gRPC and
    // foreign-function calls too, so what the filter calls is checked in its source: HTTP
    // callouts from the alert consumer only (alert routes and the partials' outbox), each to a
    // configured cluster, and nothing else that leaves the process.
    assert!(names.contains("proxy_http_call"), "{names:?}");
    let mut sources = Vec::new();
    rust_files(&root().join("plugins/envoy/src"), &mut sources);
    let mut calls = Vec::new();
    for f in &sources {
        let text = std::fs::read_to_string(f).unwrap();
        for l in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for pat in [
                "dispatch_http_call(",
                "dispatch_grpc_call(",
                "open_grpc_stream(",
                "call_foreign_function(",
                "std::net",
                "std::fs",
            ] {
                if l.contains(pat) {
                    calls.push(format!("{}: {}", f.file_name().unwrap().to_string_lossy(), l.trim()));
                }
            }
        }
    }
    assert!(!calls.is_empty());
    for call in &calls {
        assert!(call.starts_with("consumer.rs: ") && call.contains("dispatch_http_call("), "{calls:#?}");
    }
    // The call may be wrapped over lines by rustfmt: its first argument is the configured cluster.
    let consumer = std::fs::read_to_string(root().join("plugins/envoy/src/filter/consumer.rs")).unwrap();
    let compact: String = consumer.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(
        compact.matches("dispatch_http_call(&target.cluster,").count(),
        calls.len(),
        "a callout does not go to a configured cluster"
    );
}

#[test]
fn shipped_artifacts_carry_no_fault_injection() {
    // The fault tests' builds panic on a marked input; the feature must never reach a shipped
    // artifact (the marker is only referenced by the feature's code, so its bytes tell).
    let marker = b"kaudit-fault-injection:panic";
    let has = |name: &str| artifact(name).windows(marker.len()).any(|w| w == marker);
    for name in
        ["kaudit-cli.wasm", "kaudit-component.wasm", "kaudit-envoy.wasm", "kaudit-fluent-bit.wasm", "kaudit-npm.wasm"]
    {
        assert!(!has(name), "{name} contains the fault-injection trigger");
    }
    // The check can see it: the fault builds do contain it.
    assert!(has("kaudit-envoy-fault.wasm") && has("kaudit-cli-fault.wasm") && has("kaudit-npm-fault.wasm"));
}
