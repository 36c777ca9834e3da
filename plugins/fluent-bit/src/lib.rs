//! kaudit as a Fluent Bit `filter_wasm` module (`wasm32-wasip1` core module, `event_format json`).
//!
//! Exports:
//! * `kaudit_filter(tag, tag_len, time_sec, time_nsec, record, record_len) -> *const u8`: the
//!   filter (`Function_Name kaudit_filter`). Record JSON in, one JSON object or `""` (drop) out.
//! * `kaudit_counters() -> *const u8`: the counters as NUL-terminated JSON (tests, debugging).
//! * `_initialize()`: the WASI reactor start-up, where the config loads (see [`_initialize`]).
//!
//! Fluent Bit creates one instance per filter at startup and calls it for every record, in one
//! thread (fluent/fluent-bit v5.1.1: `cb_wasm_init` in `plugins/filter_wasm/filter_wasm.c` instantiates
//! once since v4.1.0; threaded inputs reach filters through the engine's ring-buffer collector). The state ([`filter::Filter`]: the pipeline, the one reply buffer) is
//! built when WAMR instantiates the module (`_initialize`), or at the first call on a host that
//! does not call `_initialize`, and kept in a global for the process lifetime.
//!
//! Traps: wasm32-wasip1's std is built with `panic=abort`, so a panic is a trap (`unreachable`)
//! whatever the profile says, and `catch_unwind` only helps native builds; Fluent Bit's WAMR
//! has no exception handling either. Every path here is written not to panic. If a call traps
//! anyway (a core bug, an exhausted WAMR stack), Fluent Bit drops that record and calls again
//! with the same instance: the state is taken out of its cell during a call, so the next call
//! finds it missing, counts the trap and rebuilds it instead of trapping forever on a
//! half-updated state.
//!
//! This file holds the only `unsafe` code: turning the host's raw record pointer into a slice,
//! and an ASCII slice into text.

pub mod config;
pub mod filter;

use std::cell::Cell;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

use filter::{Filter, Input, Mode, Reply, Stats};

/// The reply that drops a record: a pointer to a 0 byte (`""`).
static DROP: [u8; 1] = [0];

thread_local! {
    // wasm32-wasip1 has one thread: these are plain globals.
    static FILTER: Cell<Option<Box<Filter>>> = const { Cell::new(None) };
    static STATS: Cell<Stats> = const { Cell::new(Stats::ZERO) };
    /// Set during a call; still set at the next call means that call trapped.
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
    /// Set while the config loads; still set at the next call means loading trapped.
    static LOADING: Cell<bool> = const { Cell::new(false) };
}

/// The Fluent Bit filter function. The tag and timestamp are not used: the decision depends on
/// the record only (the same bytes give the same result in every kaudit host).
///
/// # Safety
/// `record` must be NULL or point to `record_len` readable bytes, as Fluent Bit guarantees: it
/// copies the record into the instance's heap right before the call and frees it after.
#[no_mangle]
pub unsafe extern "C" fn kaudit_filter(
    _tag: *const u8,
    _tag_len: u32,
    _time_sec: u32,
    _time_nsec: u32,
    record: *const u8,
    record_len: u32,
) -> *const u8 {
    // SAFETY: the caller's contract above; `record_input` checks NULL and memory bounds.
    let input = unsafe { record_input(record, record_len) };
    with_filter(|f, stats| {
        let bytes = match &input {
            Input::Record(b) => Some(*b),
            _ => None,
        };
        let reply = match catch_unwind(AssertUnwindSafe(|| f.handle(input, stats))) {
            Ok(reply) => reply,
            Err(_) => match bytes {
                Some(b) => f.pass_original(b, stats),
                None => Reply::Drop,
            },
        };
        match reply {
            Reply::Drop => DROP.as_ptr(),
            // Points into the filter's reply buffer, which stays put until the next call;
            // Fluent Bit copies it (strdup) before that.
            Reply::Record => f.reply().as_ptr(),
        }
    })
}

/// WASI reactor start-up. WAMR calls `_initialize` while it instantiates a module that imports
/// WASI (`execute_post_instantiate_functions`, core/iwasm/interpreter/wasm_runtime.c), after the
/// app heap and the preopened `accessible_paths` are set up; a trap there fails the
/// instantiation. Fluent Bit 4.1+ instantiates the filter once, in `cb_wasm_init`, so a config
/// that does not load stops Fluent Bit at startup, with the error (file:line:col and field) on
/// stderr, instead of running with a policy it could not read. A host that never calls
/// `_initialize` gets the same state at the first record, and the config error on every record.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn _initialize() {
    let filter = Filter::new(load_mode());
    let failed = matches!(filter.mode(), Mode::ConfigError(_));
    FILTER.set(Some(Box::new(filter)));
    if failed {
        log("kaudit: the filter does not start (a trap in _initialize fails the module's instantiation)");
        // A trap: the only way a reactor can refuse to start.
        core::arch::wasm32::unreachable();
    }
}

/// The counters as NUL-terminated JSON, see [`Filter::counters_json`].
#[no_mangle]
pub extern "C" fn kaudit_counters() -> *const u8 {
    with_filter(|f, stats| f.counters_json(stats).as_ptr())
}

/// The record the host passed, as a slice when it is usable.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes that stay valid and unchanged for the call.
unsafe fn record_input<'a>(ptr: *const u8, len: u32) -> Input<'a> {
    if ptr.is_null() {
        return Input::Null { len };
    }
    #[cfg(target_arch = "wasm32")]
    {
        // A wrong pointer must give a visible error, not an out-of-bounds trap.
        let memory = core::arch::wasm32::memory_size(0).saturating_mul(65536);
        if (ptr as usize).checked_add(len as usize).is_none_or(|end| end > memory) {
            return Input::OutOfBounds { ptr: ptr as usize as u32, len };
        }
    }
    // SAFETY: non-NULL and (on wasm32) inside linear memory; the caller guarantees the bytes
    // are the record's and are not written during the call. `len` fits in usize (u32 -> usize).
    Input::Record(unsafe { std::slice::from_raw_parts(ptr, len as usize) })
}

/// The record as text when every byte is ASCII (what Fluent Bit's JSON records almost always
/// are): the bytes are OR-ed together eight at a time and the high bits tested once at the end
/// (no branch per word; a non-ASCII record is rare, and then the pipeline validates it). A
/// fraction of the instructions of the general UTF-8 validation, which an interpreter pays for
/// every byte of every record. `None` otherwise (the pipeline then validates the bytes itself).
pub(crate) fn ascii_text(bytes: &[u8]) -> Option<&str> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let (words, tail) = bytes.as_chunks::<8>();
    let (blocks, rest) = words.as_chunks::<8>();
    let mut seen = 0u64;
    for b in blocks {
        seen |= (u64::from_le_bytes(b[0]) | u64::from_le_bytes(b[1]))
            | (u64::from_le_bytes(b[2]) | u64::from_le_bytes(b[3]))
            | (u64::from_le_bytes(b[4]) | u64::from_le_bytes(b[5]))
            | (u64::from_le_bytes(b[6]) | u64::from_le_bytes(b[7]));
    }
    for w in rest {
        seen |= u64::from_le_bytes(*w);
    }
    match bytes.last_chunk::<8>() {
        // The last eight bytes cover the tail (and some bytes already seen).
        Some(last) if !tail.is_empty() => seen |= u64::from_le_bytes(*last),
        _ => tail.iter().for_each(|&t| seen |= u64::from(t)),
    }
    if seen & HIGH != 0 {
        return None;
    }
    // SAFETY: every byte is below 0x80, and ASCII text is valid UTF-8.
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// Runs `f` on the process-wide filter, creating it at the first call (or after a trap).
fn with_filter<R>(f: impl FnOnce(&mut Filter, &mut Stats) -> R) -> R {
    let mut stats = STATS.get();
    if IN_CALL.replace(true) {
        stats.traps += 1;
        log("kaudit: the previous call trapped (Fluent Bit dropped that record); rebuilding the filter state");
    }
    // Taken out for the call: if the call traps, the next one starts from a fresh state.
    let mut filter = FILTER.take().unwrap_or_else(|| Box::new(Filter::new(load_mode())));
    let result = f(&mut filter, &mut stats);
    FILTER.set(Some(filter));
    STATS.set(stats);
    IN_CALL.set(false);
    result
}

/// Loads the config once, logging what was used (or the error) to stderr once.
/// This run's id for an agent's sequence numbers: a random nonce (std's `RandomState` draws its
/// keys from WASI `random_get`). No wall clock: the module imports none (tests/limits_capabilities.rs).
fn incarnation() -> String {
    use std::hash::BuildHasher;
    kaudit::incarnation_id(0, std::collections::hash_map::RandomState::new().hash_one(0x6b61_7564_6974_u64))
}

fn load_mode() -> Mode {
    if LOADING.replace(true) {
        let message = "loading the config trapped (see the earlier stderr output)".to_string();
        log(&format!("kaudit: {message}; records pass through with a kaudit_error key"));
        return Mode::ConfigError(message);
    }
    // Measurement builds: each phase boundary becomes a WASI `sched_yield` the fuel report times.
    #[cfg(feature = "phase-marks")]
    kaudit::set_phase_hook(std::thread::yield_now);
    let mode = match config::load() {
        config::Loaded::Ready { mut pipeline, source, warnings } => {
            // Agent role: every (re)build of the state is a new run of the agent.
            pipeline.set_agent_incarnation(&incarnation());
            for w in &warnings {
                log(&format!("kaudit: warning: {w}"));
            }
            log(&format!("kaudit: config {source} loaded"));
            Mode::Ready { pipeline, source }
        }
        config::Loaded::Error(message) => {
            log(&format!(
                "kaudit: error: the config does not load, records pass through unchanged with a kaudit_error key: {message}"
            ));
            Mode::ConfigError(message)
        }
    };
    LOADING.set(false);
    mode
}

/// One line to stderr (Fluent Bit's own). `eprintln!` would panic if the write failed.
fn log(line: &str) {
    // Config text can reach the messages: no control character reaches Fluent Bit's log as such.
    let _ = writeln!(std::io::stderr(), "{}", kaudit::printable::lines(line));
}
