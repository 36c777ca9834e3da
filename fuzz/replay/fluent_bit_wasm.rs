//! Replays fuzz inputs of the `fluent_bit` target through the real `kaudit-fluent-bit.wasm`
//! (the Fluent Bit test host: wasmtime, called the way `filter_wasm` calls it) and compares each
//! reply byte for byte with the native adapter the fuzzer exercised. A trap, or any difference,
//! fails. The fuzzer covers the logic natively; this covers what only the wasm32 build can do
//! differently (arithmetic width, stack, the ABI glue).
//!
//! `cargo xtask fuzz-replay-wasm` (or, from fuzz/: `cargo run --features wasm --bin
//! replay_fluent_bit_wasm -- corpus/fluent_bit`), with `KAUDIT_ARTIFACTS` pointing at the built
//! artifacts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kaudit::Pipeline;
use kaudit_fluent_bit::config::{load_from, Loaded};
use kaudit_fluent_bit::filter::{Filter, Input, Mode, Reply, Stats};
use kaudit_fluent_bit_testhost::{artifact, FluentBit, Options, Reply as WasmReply};

const TAG: &str = "kube.audit";

fn native_reply(filter: &mut Filter, stats: &mut Stats, record: &[u8]) -> Option<Vec<u8>> {
    match filter.handle(Input::Record(record), stats) {
        Reply::Drop => None,
        Reply::Record => Some(filter.reply().strip_suffix(b"\0").unwrap_or(filter.reply()).to_vec()),
    }
}

fn wasm_reply(fb: &mut FluentBit, record: &[u8]) -> Result<Option<Vec<u8>>, String> {
    Ok(match fb.call(TAG, record)? {
        WasmReply::Drop => None,
        WasmReply::Record(b) => Some(b),
    })
}

fn files(args: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for a in args {
        let p = Path::new(a);
        if p.is_dir() {
            let mut v: Vec<PathBuf> =
                std::fs::read_dir(p).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
            v.sort();
            out.extend(v.into_iter().filter(|p| p.is_file()));
        } else {
            out.push(p.to_path_buf());
        }
    }
    out
}

/// Inputs with a config need a fresh instance each (about 0.3 s in a debug build): at most this
/// many, evenly spread over the corpus; every plain record is replayed.
const MAX_CONFIGS: usize = 300;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = files(&args);
    let with_config: Vec<&PathBuf> = all.iter().filter(|p| std::fs::read(p).is_ok_and(|d| d.contains(&0))).collect();
    let step = with_config.len().div_ceil(MAX_CONFIGS).max(1);
    let sampled: Vec<&PathBuf> = with_config.iter().step_by(step).copied().collect();
    let inputs: Vec<PathBuf> =
        all.iter().filter(|p| !with_config.contains(p) || sampled.contains(p)).cloned().collect();
    if inputs.is_empty() {
        eprintln!("usage: replay_fluent_bit_wasm <corpus dir or file>...");
        return ExitCode::from(2);
    }
    let wasm = match artifact() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // One instance for all plain records (as Fluent Bit keeps one), and the native twin.
    let mut fb = FluentBit::load(&wasm, Options::default()).expect("load the module");
    let mut native = Filter::new(Mode::Ready {
        pipeline: Box::new(Pipeline::embedded_default()),
        source: "<embedded default>".into(),
    });
    let mut stats = Stats::ZERO;
    let scratch = std::env::temp_dir().join(format!("kaudit-replay-{}", std::process::id()));
    let (mut records, mut configs, mut failures) = (0u64, 0u64, Vec::new());
    let start = std::time::Instant::now();
    for path in &inputs {
        let data = std::fs::read(path).expect("read input");
        let name = path.display().to_string();
        let result = match data.iter().position(|&b| b == 0) {
            None => {
                records += 1;
                wasm_reply(&mut fb, &data).map(|got| (got, native_reply(&mut native, &mut stats, &data)))
            }
            Some(i) => {
                // `config \0 record`: the config as /etc/kaudit/kaudit.yaml of a fresh instance.
                configs += 1;
                let (config, record) = (&data[..i], &data[i + 1..]);
                std::fs::create_dir_all(&scratch).expect("scratch dir");
                std::fs::write(scratch.join("kaudit.yaml"), config).expect("write config");
                let options =
                    Options { accessible_paths: vec![(scratch.clone(), "/etc/kaudit".into())], ..Options::default() };
                // WAMR calls `_initialize`: the module refuses to start exactly when the native
                // config lookup fails. Then the per-record path of a host that does not call it.
                let refused = FluentBit::load(&wasm, options.clone()).is_err();
                let options = Options { call_initialize: false, ..options };
                // The module sees one file in its preopened directory: every other path is
                // WASI's ENOENT (errno 44), worded as wasi-libc words it.
                let read = |path: &str| match path {
                    "/etc/kaudit/kaudit.yaml" => Ok(config.to_vec()),
                    // The host's file system refuses a name over 255 bytes first.
                    _ if path.split('/').any(|c| c.len() > 255) => {
                        Err(std::io::Error::other("Filename too long (os error 37)"))
                    }
                    _ => Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "No such file or directory (os error 44)",
                    )),
                };
                let mode = match load_from(&["/etc/kaudit/kaudit.yaml"], &read) {
                    Loaded::Ready { pipeline, source, .. } => Mode::Ready { pipeline, source },
                    Loaded::Error(m) => Mode::ConfigError(m),
                };
                if refused != matches!(mode, Mode::ConfigError(_)) {
                    failures.push(format!(
                        "{name}: the module refused to start: {refused}, the native config lookup failed: {}",
                        !refused
                    ));
                }
                let mut twin = Filter::new(mode);
                let mut twin_stats = Stats::ZERO;
                FluentBit::load(&wasm, options)
                    .and_then(|mut one| wasm_reply(&mut one, record))
                    .map(|got| (got, native_reply(&mut twin, &mut twin_stats, record)))
            }
        };
        match result {
            Err(e) => failures.push(format!("{name}: trap or invalid return: {e}")),
            Ok((got, want)) if got != want => failures.push(format!(
                "{name}: wasm and native differ:\n  wasm:   {:?}\n  native: {:?}",
                got.as_deref().map(String::from_utf8_lossy),
                want.as_deref().map(String::from_utf8_lossy)
            )),
            Ok(_) => {}
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!(
        "replayed {} inputs ({records} records on one instance, {configs} of {} config+record inputs on fresh instances) through {} in {:.1} s: {} failures",
        inputs.len(),
        with_config.len(),
        wasm.display(),
        start.elapsed().as_secs_f64(),
        failures.len()
    );
    for f in failures.iter().take(20) {
        eprintln!("{f}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
