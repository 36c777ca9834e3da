//! Wall time per record of kaudit-fluent-bit.wasm in an *interpreter* (wasmi), called the way
//! Fluent Bit calls it: the closest measurable stand-in for Fluent Bit's WAMR fast interpreter
//! that the project's registries offer. It is not WAMR: read the figure as an order of magnitude
//! and use `fuel` for the deterministic count.
//!
//! `cargo run -p kaudit-fluent-bit-testhost --release --features wasmi --bin interp -- <module.wasm> <audit.log> [passes]`

use std::process::ExitCode;
use std::time::Instant;

use wasmi::{Engine, Linker, Module, Store};
use wasmi_wasi::{WasiCtx, WasiCtxBuilder};

const HEAP_PAGES: u64 = 128; // Wasm_Heap_Size 8M, appended like WAMR does (see the testhost's lib.rs)

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(wasm), Some(log)) = (args.first(), args.get(1)) else {
        eprintln!("usage: interp <module.wasm> <audit.log> [passes]");
        return ExitCode::from(2);
    };
    let passes = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(10usize);
    match run(wasm, log, passes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("interp: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(wasm: &str, log: &str, passes: usize) -> Result<(), String> {
    let bytes = std::fs::read(wasm).map_err(|e| format!("{wasm}: {e}"))?;
    let input = std::fs::read(log).map_err(|e| format!("{log}: {e}"))?;
    let lines: Vec<&[u8]> = input.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let engine = Engine::default();
    let module = Module::new(&engine, &bytes[..]).map_err(|e| e.to_string())?;
    let mut store = Store::new(&engine, WasiCtxBuilder::new().inherit_stderr().build());
    let mut linker = <Linker<WasiCtx>>::new(&engine);
    wasmi_wasi::add_to_linker(&mut linker, |cx| cx).map_err(|e| e.to_string())?;
    let instance = linker.instantiate_and_start(&mut store, &module).map_err(|e| e.to_string())?;
    let memory = instance.get_memory(&store, "memory").ok_or("no memory export")?;
    let filter = instance
        .get_typed_func::<(u32, u32, u32, u32, u32, u32), u32>(&store, "kaudit_filter")
        .map_err(|e| e.to_string())?;
    let heap = memory.grow(&mut store, HEAP_PAGES).map_err(|e| e.to_string())? as usize * 65536;
    let tag = b"kube.audit\0";
    memory.data_mut(&mut store)[heap..heap + tag.len()].copy_from_slice(tag);
    let (tag_ptr, record_ptr) = (heap as u32, (heap + 64) as u32);

    let started = Instant::now();
    filter.call(&mut store, (tag_ptr, 10, 0, 0, 0, 1)).map_err(|e| e.to_string())?;
    let first = started.elapsed();
    let started = Instant::now();
    for _ in 0..1000 {
        filter.call(&mut store, (tag_ptr, 10, 0, 0, 0, 1)).map_err(|e| e.to_string())?;
    }
    let null_call = started.elapsed() / 1000;

    let (mut records, mut bytes_in) = (0usize, 0usize);
    let started = Instant::now();
    for _ in 0..passes {
        for line in &lines {
            let at = record_ptr as usize;
            let mem = memory.data_mut(&mut store);
            mem[at..at + line.len()].copy_from_slice(line);
            mem[at + line.len()] = 0;
            filter
                .call(&mut store, (tag_ptr, 10, 0, 0, record_ptr, line.len() as u32))
                .map_err(|e| format!("trap: {e}"))?;
            records += 1;
            bytes_in += line.len();
        }
    }
    let elapsed = started.elapsed();
    println!("module: {wasm} ({} bytes), interpreter: wasmi 2.0", bytes.len());
    println!("first call (loads the config): {:.1} ms", first.as_secs_f64() * 1e3);
    println!("a call that does no work (NULL record): {:.2} µs", null_call.as_secs_f64() * 1e6);
    println!(
        "{records} records ({passes} passes, mean {} bytes): {:.1} µs/record",
        bytes_in / records.max(1),
        elapsed.as_secs_f64() * 1e6 / records.max(1) as f64
    );
    Ok(())
}
