//! Throughput of kaudit in each host, on one deterministic corpus, in one run:
//!
//! * native: the `kaudit` library (the engine every host embeds), per event and per batch;
//! * the library component (`kaudit-component.wasm`) in the wasmtime crate (48.0.8, the runtime
//!   of the wasmtime CLI), per event (`engine.process`) and per batch (`engine.process-batch`,
//!   EventLists of 100 events like the audit webhook posts);
//! * whole processes: the native `kaudit run` against `wasmtime run kaudit-cli.wasm run` (the
//!   command component), startup included;
//! * the npm package (wasm-bindgen) in Node and in Chromium: `Engine.push` of the whole corpus
//!   (what `kaudit run` does plus the report store), timed inside the JavaScript host by
//!   js/bench/engine.mjs, against the native library doing the same work per record.
//!
//! Prints events/s, MB/s and the ratio to native, and checks that every host wrote the same
//! bytes (the npm package: the same counts and the same report text as native). The corpus is the core's (`kaudit_testkit::corpus`, deterministic). Run with `cargo xtask bench`
//! (builds the artifacts first) or `cargo bench -p kaudit-component --bench hosts` with
//! `KAUDIT_ARTIFACTS` set and the release CLI built. `KAUDIT_BENCH_EVENTS` sets the corpus size
//! (default 20000), `KAUDIT_BENCH_ROUNDS` the measured rounds (default 7), `KAUDIT_BENCH_JS=0` leaves
//! the npm package out (it needs js/pkg/ built, Node, and for Chromium `cargo xtask setup`).

#[path = "../tests/support/host.rs"]
#[allow(dead_code)] // the tests use the rest of it
mod host;

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kaudit::report::{BuilderOptions, Filter, ReportBuilder};
use kaudit::{Feed, Pipeline};

const BATCH: usize = 100;

/// What a host wrote: total bytes and a hash of them, to check that all hosts agree.
#[derive(Default, PartialEq, Eq, Debug, Clone, Copy)]
struct Written {
    bytes: u64,
    hash: u64,
}

struct Sink {
    bytes: u64,
    hasher: std::collections::hash_map::DefaultHasher,
}

impl Sink {
    fn new() -> Sink {
        Sink { bytes: 0, hasher: Default::default() }
    }
    fn put(&mut self, b: &[u8]) {
        self.bytes += b.len() as u64;
        self.hasher.write(b);
    }
    fn done(self) -> Written {
        Written { bytes: self.bytes, hash: self.hasher.finish() }
    }
}

/// One host and mode to measure: `run` processes the whole corpus once and answers what it
/// wrote and, when the host timed the work itself (the JavaScript hosts, whose process start-up
/// and compilation are not the work), how long that took.
struct Case<'a> {
    host: &'static str,
    mode: &'static str,
    run: Box<dyn FnMut() -> (Written, Option<Duration>) + 'a>,
}

/// A case timed from outside (the whole call).
fn untimed<'a>(mut f: impl FnMut() -> Written + 'a) -> Box<dyn FnMut() -> (Written, Option<Duration>) + 'a> {
    Box::new(move || (f(), None))
}

struct Row {
    host: &'static str,
    mode: &'static str,
    best: Duration,
    written: Written,
}

/// Runs every case once to warm up, then `rounds` times round-robin (so background load on the
/// machine spreads over all hosts alike) and keeps each case's fastest round.
fn measure(cases: Vec<Case>, rounds: usize) -> Vec<Row> {
    let mut cases = cases;
    let mut rows: Vec<Row> = cases
        .iter_mut()
        .map(|c| Row { host: c.host, mode: c.mode, best: Duration::MAX, written: (c.run)().0 })
        .collect();
    for _ in 0..rounds {
        for (c, r) in cases.iter_mut().zip(rows.iter_mut()) {
            let start = Instant::now();
            let (w, took) = (c.run)();
            r.best = r.best.min(took.unwrap_or_else(|| start.elapsed()));
            assert_eq!(w, r.written, "{} {}: output changed between rounds", c.host, c.mode);
        }
    }
    rows
}

fn artifacts() -> PathBuf {
    std::env::var_os("KAUDIT_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
        target.join("kaudit-artifacts")
    })
}

fn require(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: run cargo xtask bench (it builds the WASM artifacts and the release CLI)",
        path.display()
    );
    path
}

/// The release `kaudit` binary next to this bench (target/release), or `$KAUDIT_CLI`.
fn native_cli() -> PathBuf {
    std::env::var_os("KAUDIT_CLI").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("bench executable");
        exe.parent().and_then(Path::parent).expect("target profile dir").join("kaudit")
    })
}

fn run_process(cmd: &mut Command) -> Written {
    let out = cmd.stderr(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {:?}", out.status);
    let mut s = Sink::new();
    s.put(&out.stdout);
    s.done()
}

fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    let events: usize = std::env::var("KAUDIT_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    // The core's deterministic corpus (kaudit_testkit::corpus): control-plane chatter, service accounts,
    // humans with 1-20 KB bodies, exec streams, watches; Metadata and RequestResponse events.
    let corpus = String::from_utf8(kaudit_testkit::corpus::generate(events, 42)).expect("corpus is UTF-8");
    let lines: Vec<&str> = corpus.lines().filter(|l| !l.is_empty()).collect();
    let events = lines.len();
    let total = corpus.len() as u64;
    let batches: Vec<String> = lines
        .chunks(BATCH)
        .map(|c| {
            let items: Vec<&str> = c.to_vec();
            format!(
                "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{}]}}",
                items.join(",")
            )
        })
        .collect();

    // What the default pipeline does with this corpus (so the figures can be read).
    let mut p = Pipeline::embedded_default();
    let mut out = Vec::new();
    p.process_stream(corpus.as_bytes(), &mut out, &mut |_| {});
    let c = p.counters();
    println!(
        "corpus: {events} events, {:.1} MB ({} B/event avg); default pipeline: kept {} ({} stripped), dropped {}, bad {}; {:.1} MB out",
        total as f64 / 1e6,
        total / events as u64,
        c.kept,
        c.stripped,
        c.dropped,
        c.bad,
        out.len() as f64 / 1e6
    );
    assert_eq!(c.bad, 0, "the generated corpus must be valid audit events");
    assert!(c.kept > 0 && c.dropped > 0, "the corpus must exercise keep and drop");

    let rounds: usize = std::env::var("KAUDIT_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let component = require(artifacts().join("kaudit-component.wasm"));
    let start = Instant::now();
    let loaded = host::Loaded::new(&component);
    let compile = start.elapsed();

    let native_per_event = || {
        let mut p = Pipeline::embedded_default();
        let mut sink = Sink::new();
        let mut out = Vec::with_capacity(64 * 1024);
        for line in &lines {
            out.clear();
            p.process_record(line.as_bytes(), &mut out);
            sink.put(&out);
        }
        sink.done()
    };
    let native_batch = || {
        let mut p = Pipeline::embedded_default();
        let mut sink = Sink::new();
        let mut out = Vec::with_capacity(2 << 20);
        for b in &batches {
            out.clear();
            p.process_batch(b.as_bytes(), &mut out);
            sink.put(&out);
        }
        sink.done()
    };
    let component_per_event = || {
        let mut inst = loaded.instantiate(None);
        let e = inst.create("").expect("default config");
        let mut sink = Sink::new();
        for line in &lines {
            match inst.process(e, line.as_bytes()) {
                host::Outcome::Kept(k) => sink.put(&k.event),
                host::Outcome::Dropped(_) => {}
                host::Outcome::Bad(b) => sink.put(b.passed.as_deref().unwrap_or_default()),
                host::Outcome::Oversized(bytes) => sink.put(&bytes),
            }
        }
        sink.done()
    };
    let component_batch = || {
        let mut inst = loaded.instantiate(None);
        let e = inst.create("").expect("default config");
        let mut sink = Sink::new();
        for b in &batches {
            sink.put(&inst.process_batch(e, b.as_bytes()).output);
        }
        sink.done()
    };
    // The whole corpus as JSON lines in one call: the engine's own speed, without per-call costs.
    let native_stream = || {
        let mut p = Pipeline::embedded_default();
        let mut out = Vec::with_capacity(corpus.len());
        p.process_stream(corpus.as_bytes(), &mut out, &mut |_| {});
        let mut sink = Sink::new();
        sink.put(&out);
        sink.done()
    };
    let component_stream = || {
        let mut inst = loaded.instantiate(None);
        let mut sink = Sink::new();
        sink.put(inst.run_lines("", &corpus).expect("default config").as_bytes());
        sink.done()
    };
    let rows = measure(
        vec![
            Case { host: "native (kaudit lib)", mode: "stream, 1 call", run: untimed(native_stream) },
            Case { host: "component (wasmtime crate)", mode: "stream, 1 call", run: untimed(component_stream) },
            Case { host: "native (kaudit lib)", mode: "per event", run: untimed(native_per_event) },
            Case { host: "component (wasmtime crate)", mode: "per event", run: untimed(component_per_event) },
            Case { host: "native (kaudit lib)", mode: "EventList x100", run: untimed(native_batch) },
            Case { host: "component (wasmtime crate)", mode: "EventList x100", run: untimed(component_batch) },
        ],
        rounds,
    );

    // Whole processes on a file: native CLI vs the command component in the wasmtime CLI.
    let dir = std::env::temp_dir().join(format!("kaudit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("corpus.jsonl");
    std::fs::write(&file, &corpus).expect("write corpus");
    let cli = require(native_cli());
    let command = require(artifacts().join("kaudit-cli.wasm"));
    let preopen = format!("{}::/data", dir.display());
    let process_rows = measure(
        vec![
            Case {
                host: "native CLI (kaudit run)",
                mode: "process",
                run: untimed(|| run_process(Command::new(&cli).arg("run").arg(&file))),
            },
            Case {
                host: "wasmtime CLI (kaudit-cli.wasm run)",
                mode: "process",
                run: untimed(|| {
                    run_process(
                        Command::new("wasmtime")
                            .args(["run", "--dir", &preopen])
                            .arg(&command)
                            .args(["run", "/data/corpus.jsonl"]),
                    )
                }),
            },
        ],
        rounds.min(3),
    );

    // The npm package's `Engine.push` (js/src/lib.rs `Engine::record`: the report store takes
    // each record, then the pipeline runs it) in Node and Chromium, against the same work done
    // by the native library. Each JavaScript round is a new process that pushes the corpus
    // twice into fresh engines and reports its faster push (the first also warms V8's tiers).
    let js = std::env::var("KAUDIT_BENCH_JS").map_or(true, |v| v != "0");
    let native_engine = || {
        let mut p = Pipeline::embedded_default();
        let mut builder = ReportBuilder::new(BuilderOptions {
            // The package's default raw-text budget (js/src/lib.rs `DEFAULT_RAW_BYTES`).
            raw_bytes: 256 << 20,
            detail_bytes: BuilderOptions::default().detail_bytes,
            enrichment_key: p.enricher().config.key.clone(),
        });
        let mut feed = Feed::with_max_event_bytes(p.config().limits.max_event_bytes);
        let mut scratch = String::new();
        let mut alerts = 0;
        let start = Instant::now();
        let mut record = |r: kaudit::Record| {
            builder.push_input(r.bytes, p.enricher());
            scratch.clear();
            p.process_document(r.bytes, 0, &mut scratch, &mut |_| {});
            alerts += p.take_alerts().len();
        };
        feed.push(corpus.as_bytes(), &mut record);
        feed.finish(&mut record);
        let took = start.elapsed();
        let c = p.counters();
        let report = builder.report(&Filter::default()).expect("report").to_json();
        (engine_written(builder.len() as u64, c.kept, c.dropped, alerts as u64, &report), Some(took))
    };
    let js_engine = |host: &'static str| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../js/bench/engine.mjs");
        let file = file.clone();
        move || {
            let out = Command::new("node")
                .arg(&script)
                .arg(host)
                .arg(&file)
                .arg("2")
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|e| panic!("node {}: {e}", script.display()));
            assert!(out.status.success(), "node {} {host}: {:?}", script.display(), out.status);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("engine.mjs prints JSON");
            let n = |k: &str| v["counts"][k].as_u64().unwrap_or_else(|| panic!("{host}: counts.{k}"));
            let ms = v["ms"].as_array().expect("ms").iter().filter_map(|m| m.as_f64()).fold(f64::MAX, f64::min);
            let report = v["report"].as_str().expect("report");
            let written = engine_written(n("events"), n("kept"), n("dropped"), n("alerts"), report);
            (written, Some(Duration::from_secs_f64(ms / 1e3)))
        }
    };
    let npm_rows = if js {
        let mut cases = vec![Case { host: "native (kaudit lib)", mode: "Engine.push", run: Box::new(native_engine) }];
        cases.push(Case { host: "npm package, Node", mode: "Engine.push", run: Box::new(js_engine("node")) });
        cases.push(Case { host: "npm package, Chromium", mode: "Engine.push", run: Box::new(js_engine("chromium")) });
        measure(cases, rounds.min(5))
    } else {
        Vec::new()
    };
    std::fs::remove_dir_all(&dir).ok();

    println!("\ncomponent compile (wasmtime crate, once per process): {:.2} s", compile.as_secs_f64());
    println!("Fluent Bit test host: not measured here (plugins/fluent-bit/testhost has its own harness)");
    println!(
        "\nbest of {rounds} rounds (3 for processes), hosts interleaved; machine: {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("\n{:<36} {:<16} {:>12} {:>10} {:>10}", "host", "mode", "events/s", "MB/s", "vs native");
    let print = |rows: &[Row]| {
        let Some(base) = rows.first() else { return };
        for r in rows {
            let secs = r.best.as_secs_f64();
            // The same mode's native row is the reference.
            let native = rows.iter().find(|n| n.mode == r.mode).unwrap_or(base);
            println!(
                "{:<36} {:<16} {:>12.0} {:>10.1} {:>9.0}%",
                r.host,
                r.mode,
                events as f64 / secs,
                total as f64 / 1e6 / secs,
                100.0 * native.best.as_secs_f64() / secs
            );
        }
    };
    print(&rows);
    print(&process_rows);
    print(&npm_rows);

    // One engine, identical results: every in-process host wrote the same bytes per mode, and
    // both processes wrote the same stdout.
    for r in &rows {
        let native = rows.iter().find(|n| n.mode == r.mode).expect("native row");
        assert_eq!(r.written, native.written, "{} {} wrote different bytes than native", r.host, r.mode);
    }
    let [a, b] = &process_rows[..] else { unreachable!("two process rows") };
    assert_eq!(a.written, b.written, "the native CLI and the wasmtime CLI wrote different bytes");
    assert_eq!(a.written, rows[0].written, "the CLI writes what the library's stream writes");
    println!("\nall hosts wrote identical bytes ({:.1} MB per run)", rows[0].written.bytes as f64 / 1e6);
    for r in &npm_rows {
        assert_eq!(r.written, npm_rows[0].written, "{} counted or reported differently than native", r.host);
    }
    if !npm_rows.is_empty() {
        println!("the npm package in Node and Chromium gave native's counts and report text");
    }
}

/// What an engine of the npm package ended with: its counts and its report text.
fn engine_written(events: u64, kept: u64, dropped: u64, alerts: u64, report: &str) -> Written {
    let mut s = Sink::new();
    for n in [events, kept, dropped, alerts] {
        s.put(&n.to_le_bytes());
    }
    s.put(report.as_bytes());
    s.done()
}
