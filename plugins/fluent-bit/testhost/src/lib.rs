//! A test host that loads `kaudit-fluent-bit.wasm` and calls it exactly the way Fluent Bit's
//! `filter_wasm` (v5.1.1, WAMR) does, per github.com/fluent/fluent-bit at v5.1.1
//! (`plugins/filter_wasm/filter_wasm.c`, `src/wasm/flb_wasm.c`) and a real 5.1.1:
//!
//! * one instance for the whole run (since Fluent Bit v4.1.0), WASI preview1 with only the
//!   `accessible_paths` preopened, no env, no argv;
//! * WAMR calls an exported `_initialize` during instantiation (after the app heap below is
//!   appended) and a trap there fails the instantiation, so Fluent Bit's `cb_wasm_init` fails
//!   and Fluent Bit does not start;
//! * the app heap: a wasip1 Rust cdylib exports neither `__heap_base` nor `malloc`/`free`, so
//!   WAMR appends `ceil(Wasm_Heap_Size / 64 KiB)` pages at instantiation and allocates the tag
//!   and record copies there. This host grows memory by the same amount before the first call
//!   and places the NUL-terminated copies in those pages (memory the guest did not allocate);
//!   when a copy does not fit it passes pointer 0 with the real length, as WAMR's unchecked
//!   `wasm_runtime_module_dup_data` does. After the call the copies are "freed": overwritten,
//!   so a guest that kept the pointer would read garbage;
//! * `(tag, tag_len, time_sec, time_nsec, record, record_len)`, result read as a C string up to
//!   its NUL (the host never gets a length), `""` meaning drop.
//!
//! Fuel (wasmtime's count of executed wasm instructions, roughly one per instruction) gives a
//! deterministic per-record cost for an interpreter host like WAMR, where CPU time scales with it.
//! With fuel on, a module built with the `phase-marks` feature calls WASI `sched_yield` at each
//! phase boundary of a record; this host answers it (instead of WASI) by noting the fuel used so
//! far in the call ([`FluentBit::last_marks`]), which gives the per-phase breakdown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::{Caller, Config, Engine, Instance, Linker, Memory, Module, Store, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// The exported filter function (`Function_Name`).
pub const FUNCTION: &str = "kaudit_filter";
/// The counters export.
pub const COUNTERS: &str = "kaudit_counters";
/// WAMR's app heap loses this much of the appended pages to its own bookkeeping (seen on 5.1.1:
/// with the 8192 default one page is appended and a 63,999-byte record fit, 65,999 did not).
const HEAP_OVERHEAD: usize = 1024;
/// Per-allocation header and alignment of WAMR's heap allocator (an approximation).
const BLOCK_HEADER: usize = 8;
const PAGE: usize = 65536;

/// How the filter is configured, as in the `[FILTER]` section.
#[derive(Debug, Clone)]
pub struct Options {
    /// `Wasm_Heap_Size` (Fluent Bit's default is 8192; kaudit's fluent-bit.yaml uses 8M).
    pub heap_size: usize,
    /// `Accessible_Paths`: (host directory, path the guest sees).
    pub accessible_paths: Vec<(PathBuf, String)>,
    /// wasmtime's `max_wasm_stack` (the closest knob to `Wasm_Stack_Size`; WAMR's interpreter
    /// stack is a different thing, so the numbers do not translate one to one).
    pub max_wasm_stack: Option<usize>,
    /// Count fuel per call.
    pub fuel: bool,
    /// Call `_initialize` at instantiation, as WAMR does; off: a host that does not.
    pub call_initialize: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            heap_size: 8 * 1024 * 1024,
            accessible_paths: Vec::new(),
            max_wasm_stack: None,
            fuel: false,
            call_initialize: true,
        }
    }
}

/// What the filter returned for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `""`: Fluent Bit drops the record.
    Drop,
    /// The returned C string (without its NUL).
    Record(Vec<u8>),
}

/// One loaded filter instance.
pub struct FluentBit {
    store: Store<WasiP1Ctx>,
    instance: Instance,
    memory: Memory,
    filter: TypedFunc<(u32, u32, u32, u32, u32, u32), u32>,
    counters: TypedFunc<(), u32>,
    heap_base: usize,
    heap_capacity: usize,
    stderr: MemoryOutputPipe,
    fuel: bool,
    last_fuel: u64,
    /// Fuel `_initialize` used (with `Options::fuel`).
    init_fuel: u64,
    /// Fuel left at each phase mark of the current call (`sched_yield`, see the module docs).
    marks: Arc<Mutex<Vec<u64>>>,
    last_marks: Vec<u64>,
}

/// The fuel given when counting (never runs out in practice).
const FUEL: u64 = u64::MAX / 4;

impl FluentBit {
    /// Loads and instantiates the module like `cb_wasm_init` does.
    pub fn load(wasm: &Path, options: Options) -> Result<FluentBit, String> {
        let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
        check_wamr_features(&bytes)?;
        let mut config = Config::new();
        config.consume_fuel(options.fuel);
        if let Some(stack) = options.max_wasm_stack {
            config.max_wasm_stack(stack);
        }
        let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
        let module = compile(&engine, wasm, &bytes, options.fuel)?;
        check_module_shape(&module)?;

        let stderr = MemoryOutputPipe::new(1 << 20);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(stderr.clone());
        for (host, guest) in &options.accessible_paths {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly).map_err(|e| format!("{}: {e:#}", host.display()))?;
        }
        let mut store = Store::new(&engine, wasi.build_p1());
        if options.fuel {
            store.set_fuel(FUEL).map_err(|e| format!("{e:#}"))?;
        }
        let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx).map_err(|e| format!("{e:#}"))?;
        let marks: Arc<Mutex<Vec<u64>>> = Arc::default();
        if options.fuel {
            // Phase marks (a no-op yield for the module): note the fuel left.
            let seen = marks.clone();
            linker.allow_shadowing(true);
            linker
                .func_wrap("wasi_snapshot_preview1", "sched_yield", move |caller: Caller<'_, WasiP1Ctx>| -> i32 {
                    if let (Ok(fuel), Ok(mut seen)) = (caller.get_fuel(), seen.lock()) {
                        seen.push(fuel);
                    }
                    0
                })
                .map_err(|e| format!("{e:#}"))?;
        }
        let instance = linker.instantiate(&mut store, &module).map_err(|e| format!("instantiate: {e:#}"))?;
        let memory = instance.get_memory(&mut store, "memory").ok_or("the module exports no memory")?;
        let filter = instance
            .get_typed_func::<(u32, u32, u32, u32, u32, u32), u32>(&mut store, FUNCTION)
            .map_err(|e| format!("{FUNCTION}: {e:#} (Fluent Bit needs (i32,i32,i32,i32,i32,i32) -> i32)"))?;
        let counters =
            instance.get_typed_func::<(), u32>(&mut store, COUNTERS).map_err(|e| format!("{COUNTERS}: {e:#}"))?;

        // WAMR appends the app heap as new pages at instantiation (`wasm_runtime_instantiate`,
        // flb_wasm.c v5.1.1; WAMR `core/iwasm/interpreter/wasm_runtime.c`).
        let heap_size = options.heap_size.max(8192); // Fluent Bit clamps to at least 8192
        let pages = heap_size.div_ceil(PAGE);
        let before = memory.grow(&mut store, pages as u64).map_err(|e| format!("app heap: {e:#}"))?;
        let heap_base = before as usize * PAGE;
        let mut init_fuel = 0;
        if options.call_initialize {
            if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
                let result = init.call(&mut store, ());
                if options.fuel {
                    init_fuel = FUEL - store.get_fuel().unwrap_or(FUEL);
                    store.set_fuel(FUEL).map_err(|e| format!("{e:#}"))?;
                }
                if let Err(e) = result {
                    let log = String::from_utf8_lossy(&stderr.contents()).into_owned();
                    return Err(format!("instantiate: _initialize trapped ({e:#}); the module's stderr:\n{log}"));
                }
            }
        }
        Ok(FluentBit {
            store,
            instance,
            memory,
            filter,
            counters,
            heap_base,
            heap_capacity: pages * PAGE - HEAP_OVERHEAD,
            stderr,
            fuel: options.fuel,
            last_fuel: 0,
            init_fuel,
            marks,
            last_marks: Vec::new(),
        })
    }

    /// Calls the filter for one record, as `flb_wasm_call_function_format_json` does.
    /// `Err` is a trap (Fluent Bit logs it and drops the record) or an invalid return.
    pub fn call(&mut self, tag: &str, record: &[u8]) -> Result<Reply, String> {
        self.invoke(tag.as_bytes(), Some(record), record.len() as u32)
    }

    /// Calls the filter with a NULL record pointer and a non-zero length (the host's heap copy failed).
    pub fn call_null_record(&mut self, tag: &str, record_len: u32) -> Result<Reply, String> {
        self.invoke(tag.as_bytes(), None, record_len)
    }

    fn invoke(&mut self, tag: &[u8], record: Option<&[u8]>, record_len: u32) -> Result<Reply, String> {
        // wasm_runtime_module_dup_data: tag then record, NUL-terminated, 0 when it does not fit.
        let mut used = 0;
        let tag_ptr = self.dup(tag, &mut used);
        let record_ptr = record.map_or(0, |r| self.dup(r, &mut used));
        let (sec, nsec) = (1_795_556_685u32, 712_443_375u32);
        let fuel_before = self.fuel_left();
        if let Ok(mut marks) = self.marks.lock() {
            marks.clear();
        }
        let result = self.filter.call(&mut self.store, (tag_ptr, tag.len() as u32, sec, nsec, record_ptr, record_len));
        self.last_fuel = fuel_before.saturating_sub(self.fuel_left());
        self.last_marks = match self.marks.lock() {
            Ok(marks) => marks.iter().map(|left| fuel_before.saturating_sub(*left)).collect(),
            Err(_) => Vec::new(),
        };
        // wasm_runtime_module_free: the copies are gone after the call.
        let heap = &mut self.memory.data_mut(&mut self.store)[self.heap_base..self.heap_base + used];
        heap.fill(0xA5);
        let ptr = result.map_err(|e| format!("Got exception running wasm code: {e:?}"))?;
        // wasm_runtime_validate_app_str_addr, then strdup.
        let text = self.c_string(ptr).ok_or("[wasm] returned value is invalid")?;
        Ok(if text.is_empty() { Reply::Drop } else { Reply::Record(text) })
    }

    /// Copies `data` plus a NUL into the app heap; 0 when it does not fit (like WAMR).
    fn dup(&mut self, data: &[u8], used: &mut usize) -> u32 {
        let start = (*used + BLOCK_HEADER).next_multiple_of(8);
        let end = start + data.len() + 1;
        if end > self.heap_capacity {
            eprintln!("testhost: warning: allocate {} bytes memory failed", data.len() + 1);
            return 0;
        }
        *used = end;
        let at = self.heap_base + start;
        let mem = self.memory.data_mut(&mut self.store);
        mem[at..at + data.len()].copy_from_slice(data);
        mem[at + data.len()] = 0;
        at as u32
    }

    /// The NUL-terminated string at `ptr`, if its NUL lies inside linear memory.
    fn c_string(&self, ptr: u32) -> Option<Vec<u8>> {
        let mem = self.memory.data(&self.store);
        let tail = mem.get(ptr as usize..)?;
        let len = tail.iter().position(|&b| b == 0)?;
        Some(tail[..len].to_vec())
    }

    fn fuel_left(&self) -> u64 {
        if self.fuel {
            self.store.get_fuel().unwrap_or(0)
        } else {
            0
        }
    }

    /// Limits the fuel of the next calls (to make a call trap on purpose); `None` refills.
    pub fn set_fuel(&mut self, fuel: Option<u64>) -> Result<(), String> {
        self.store.set_fuel(fuel.unwrap_or(FUEL)).map_err(|e| format!("{e:#}"))
    }

    /// The `kaudit_counters()` JSON.
    pub fn counters(&mut self) -> Result<String, String> {
        let ptr = self.counters.call(&mut self.store, ()).map_err(|e| format!("{e:?}"))?;
        let text = self.c_string(ptr).ok_or("counters: returned value is invalid")?;
        String::from_utf8(text).map_err(|e| e.to_string())
    }

    /// Fuel (≈ wasm instructions) `_initialize` consumed at load (0 unless [`Options::fuel`]).
    /// The value of an exported `i64` global (the `profile` binary's counters).
    pub fn global_i64(&mut self, name: &str) -> Result<i64, String> {
        let global = self.instance.get_global(&mut self.store, name).ok_or_else(|| format!("no global {name}"))?;
        global.get(&mut self.store).i64().ok_or_else(|| format!("{name} is not an i64"))
    }

    pub fn init_fuel(&self) -> u64 {
        self.init_fuel
    }

    /// Fuel (≈ wasm instructions) the last call consumed (0 unless [`Options::fuel`]).
    pub fn last_fuel(&self) -> u64 {
        self.last_fuel
    }

    /// Fuel used by the last call up to each of its phase marks (empty unless [`Options::fuel`]
    /// and a module built with the `phase-marks` feature).
    pub fn last_marks(&self) -> &[u64] {
        &self.last_marks
    }

    /// Current linear memory size in bytes (never shrinks).
    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    /// What the guest wrote to stderr so far (Fluent Bit's own stderr in production).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }
}

/// Compiled code per (module, fuel on), made once per process: Cranelift in a debug build of
/// this host takes seconds per compile and the tests load many instances.
type Precompiled = HashMap<(PathBuf, bool, usize), Arc<Vec<u8>>>;
static PRECOMPILED: OnceLock<Mutex<Precompiled>> = OnceLock::new();

fn compile(engine: &Engine, wasm: &Path, bytes: &[u8], fuel: bool) -> Result<Module, String> {
    let key = (wasm.to_path_buf(), fuel, bytes.len());
    let cache = PRECOMPILED.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let code = match cache.get(&key) {
        Some(code) => code.clone(),
        None => {
            let code = Arc::new(engine.precompile_module(bytes).map_err(|e| format!("{}: {e:#}", wasm.display()))?);
            cache.insert(key, code.clone());
            code
        }
    };
    // SAFETY: `code` was produced by `precompile_module` in this process from these bytes, for an
    // engine with the same compilation settings (only `max_wasm_stack`, a run-time limit, varies);
    // wasmtime still checks the header and settings and refuses a mismatch.
    unsafe { Module::deserialize(engine, &*code) }.map_err(|e| format!("{}: {e:#}", wasm.display()))
}

/// Fails unless the module validates with the features of Fluent Bit's WAMR build
/// (Fluent Bit v5.1.1 `src/wasm/CMakeLists.txt` and its build summary: bulk memory, reference types, multi-value, sign-ext, non-trapping float->int;
/// no SIMD, threads, exception handling, tail calls, memory64 or GC).
pub fn check_wamr_features(bytes: &[u8]) -> Result<(), String> {
    use wasmparser::{Validator, WasmFeatures};
    let features = WasmFeatures::WASM2.difference(WasmFeatures::SIMD);
    Validator::new_with_features(features)
        .validate_all(bytes)
        .map(|_| ())
        .map_err(|e| format!("the module uses a feature Fluent Bit's WAMR lacks: {e}"))
}

/// Fails unless the module has the shape the heap emulation assumes and imports only WASI p1.
fn check_module_shape(module: &Module) -> Result<(), String> {
    let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
    if exports.contains(&"__heap_base") || (exports.contains(&"malloc") && exports.contains(&"free")) {
        return Err(format!(
            "the module exports __heap_base or malloc/free: WAMR would place its heap differently ({exports:?})"
        ));
    }
    for import in module.imports() {
        if import.module() != "wasi_snapshot_preview1" {
            return Err(format!(
                "import {}::{} is not WASI preview1: WAMR cannot link it",
                import.module(),
                import.name()
            ));
        }
    }
    Ok(())
}

/// The built module under `$KAUDIT_ARTIFACTS` (collected by `cargo xtask build-wasm`), checked
/// once per process to be newer than the sources it is built from.
pub fn artifact() -> Result<PathBuf, String> {
    static CHECKED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CHECKED.get_or_init(find_artifact).clone()
}

fn find_artifact() -> Result<PathBuf, String> {
    let dir = std::env::var_os("KAUDIT_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
        target.join("kaudit-artifacts")
    });
    let path = dir.join("kaudit-fluent-bit.wasm");
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).map_err(|_| {
        format!(
            "{} is missing: build the WASM artifacts first (cargo xtask build-wasm, or cargo xtask test), with KAUDIT_ARTIFACTS pointing at them",
            path.display()
        )
    })?;
    for src in ["src", "rules", "plugins/fluent-bit/src"] {
        if let Some(newer) = newer_than(&root().join(src), built) {
            return Err(format!(
                "{} is older than {}: rebuild it (cargo xtask build-wasm)",
                path.display(),
                newer.display()
            ));
        }
    }
    Ok(path)
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// A file under `dir` modified after `t`, if any (unit-test files are not part of the module).
fn newer_than(dir: &Path, t: std::time::SystemTime) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "tests" || name == "tests.rs" {
            continue;
        }
        if path.is_dir() {
            if let Some(p) = newer_than(&path, t) {
                return Some(p);
            }
        } else if entry.metadata().and_then(|m| m.modified()).is_ok_and(|m| m > t) {
            return Some(path);
        }
    }
    None
}

/// Whether `bytes` is exactly one JSON object (what Fluent Bit packs without error). Checked
/// without building a tree: serde_json skips an ignored value iteratively, so 10,000-deep
/// records validate (a `Value` stops at 128 levels).
pub fn is_one_object(bytes: &[u8]) -> bool {
    let starts_with_brace = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    starts_with_brace && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// Splits a reply into the record without kaudit's alert keys and the alerts it carried (each
/// alert's exact bytes). The record is `None` when the reply only carried the alerts of a record
/// the policy dropped.
pub fn split_alerts(reply: &[u8]) -> (Option<Vec<u8>>, Vec<String>) {
    let text = String::from_utf8_lossy(reply);
    let key = "\"kaudit_alerts\":";
    let Some(at) = text.rfind(key) else { return (Some(reply.to_vec()), Vec::new()) };
    let mut items =
        serde_json::Deserializer::from_str(&text[at + key.len()..]).into_iter::<Vec<&serde_json::value::RawValue>>();
    let alerts = match items.next() {
        Some(Ok(list)) => list.iter().map(|a| a.get().to_string()).collect(),
        _ => return (Some(reply.to_vec()), Vec::new()),
    };
    let before = text[..at].trim_end();
    let record = if let Some(prefix) = before.strip_suffix(',') {
        Some(format!("{prefix}}}").into_bytes())
    } else if text.contains("\"kaudit_dropped\":\"true\"") {
        None
    } else {
        Some(format!("{before}}}").into_bytes())
    };
    (record, alerts)
}
