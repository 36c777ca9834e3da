//! Where the module's WASM instructions go, per function: the profile behind the fuel report's
//! totals (Fluent Bit's WAMR interprets, so its cost is the instructions executed).
//!
//! `cargo run -p kaudit-fluent-bit-testhost --release --features profile --bin profile -- <module.wasm> <audit.log> [config-dir] [top]`
//!
//! Each function gets two counters (exported mutable globals): calls, and instructions executed
//! in its own body (callees not included). Every straight-line segment adds its length when it
//! starts, so the counts are exact, and their sum is within a few percent of the fuel report's
//! total (wasmtime's fuel does not charge a few structural instructions). The module is
//! instrumented in memory and run through the same host as the fuel report, one call per line;
//! start-up and the first call are left out. Names need a module built without `strip`:
//! `CARGO_PROFILE_WASM_FAST_STRIP=false cargo build -p kaudit-fluent-bit --target wasm32-wasip1 --profile wasm-fast`.
//!
//! With `KAUDIT_PROFILE_SEGMENTS=<part of a function name>` it also counts each straight-line
//! segment of the functions so named and lists the hottest: runs and instructions per record,
//! the instructions, and the module file offset of the first one (`wasm-tools print
//! --print-offsets` shows the code around it), to see where a hot loop's cost goes.

use std::path::PathBuf;
use std::process::ExitCode;

use kaudit_fluent_bit_testhost::{FluentBit, Options};
use walrus::ir::{BinaryOp, Instr, Value};
use walrus::{ConstExpr, FunctionId, GlobalId, LocalFunction, Module, ValType};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(wasm), Some(log)) = (args.first(), args.get(1)) else {
        eprintln!("usage: profile <module.wasm> <audit.log> [config-dir] [top]");
        return ExitCode::from(2);
    };
    let config_dir = args.get(2).filter(|d| !d.is_empty() && *d != "-");
    let top = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(40);
    match run(wasm, log, config_dir, top) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("profile: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(wasm: &str, log: &str, config_dir: Option<&String>, top: usize) -> Result<(), String> {
    let mut module = Module::from_file(wasm).map_err(|e| format!("{wasm}: {e:#}"))?;
    let ids: Vec<FunctionId> = module.funcs.iter_local().map(|(id, _)| id).collect();
    let mut counters = Vec::new();
    let segments_of = std::env::var("KAUDIT_PROFILE_SEGMENTS").ok().filter(|s| !s.is_empty());
    let mut segments = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let name = module.funcs.get(*id).name.clone().unwrap_or_else(|| format!("func{}", id.index()));
        let instrs = module.globals.add_local(ValType::I64, true, false, ConstExpr::Value(Value::I64(0)));
        let calls = module.globals.add_local(ValType::I64, true, false, ConstExpr::Value(Value::I64(0)));
        module.exports.add(&format!("__prof_i{n}"), instrs);
        module.exports.add(&format!("__prof_c{n}"), calls);
        let demangled = format!("{:#}", rustc_demangle::demangle(&name));
        let walrus::FunctionKind::Local(f) = &mut module.funcs.get_mut(*id).kind else { continue };
        let per_segment = segments_of.as_ref().is_some_and(|s| demangled.contains(s.as_str()));
        let mut found = Vec::new();
        instrument(f, instrs, calls, per_segment.then_some((&mut module.globals, &mut found)));
        for (n_instrs, offset, text, counter) in found {
            let k = segments.len();
            module.exports.add(&format!("__prof_s{k}"), counter);
            segments.push((demangled.clone(), n_instrs, offset, text));
        }
        counters.push(demangled);
    }
    let bytes = module.emit_wasm();
    let out = std::env::temp_dir().join(format!("kaudit-profile-{}.wasm", std::process::id()));
    std::fs::write(&out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;

    let input = std::fs::read(log).map_err(|e| format!("{log}: {e}"))?;
    let lines: Vec<&[u8]> = input.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut options = Options::default();
    if let Some(dir) = config_dir {
        options.accessible_paths.push((PathBuf::from(dir), "/etc/kaudit".into()));
    }
    let mut fb = FluentBit::load(&out, options);
    let _ = std::fs::remove_file(&out);
    let fb = fb.as_mut().map_err(|e| e.clone())?;
    // Start-up and the first call (lazily built state) are not per-record costs.
    fb.call_null_record("kube.audit", 1)?;
    let read = |fb: &mut FluentBit| -> Result<Vec<(i64, i64)>, String> {
        (0..counters.len())
            .map(|n| Ok((fb.global_i64(&format!("__prof_i{n}"))?, fb.global_i64(&format!("__prof_c{n}"))?)))
            .collect()
    };
    let read_segments = |fb: &mut FluentBit| -> Result<Vec<i64>, String> {
        (0..segments.len()).map(|k| fb.global_i64(&format!("__prof_s{k}"))).collect()
    };
    let before = read(fb)?;
    let segments_before = read_segments(fb)?;
    for line in &lines {
        fb.call("kube.audit", line)?;
    }
    let after = read(fb)?;
    let segments_after = read_segments(fb)?;
    let records = lines.len().max(1) as f64;
    let mut rows: Vec<(f64, f64, &str)> = counters
        .iter()
        .zip(before.iter().zip(&after))
        .map(|(c, (b, a))| ((a.0 - b.0) as f64 / records, (a.1 - b.1) as f64 / records, c.as_str()))
        .filter(|r| r.0 > 0.0)
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: f64 = rows.iter().map(|r| r.0).sum();
    println!("{} records; instructions per record: {total:.0}", lines.len());
    println!("| instr/record | share | calls/record | function |");
    println!("|---|---|---|---|");
    for (instrs, calls, name) in rows.iter().take(top) {
        println!("| {instrs:.0} | {:.1}% | {calls:.2} | {} |", instrs * 100.0 / total, shorten(name));
    }
    if !segments.is_empty() {
        let mut hot: Vec<(f64, f64, &Segment)> = segments
            .iter()
            .zip(segments_before.iter().zip(&segments_after))
            .map(|(s, (b, a))| {
                let runs = (a - b) as f64 / records;
                (runs * s.1 as f64, runs, s)
            })
            .filter(|r| r.0 > 0.0)
            .collect();
        hot.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!();
        println!("| instr/record | runs/record | length | file offset | function | instructions |");
        println!("|---|---|---|---|---|---|");
        for (instrs, runs, (name, len, offset, text)) in hot.iter().take(top) {
            let name: String = shorten(name).chars().take(60).collect();
            println!("| {instrs:.0} | {runs:.2} | {len} | {offset:#x} | {name} | {text} |");
        }
    }
    Ok(())
}

/// A counted segment: its function, length, file offset and instructions.
type Segment = (String, i64, u32, String);

fn shorten(name: &str) -> String {
    name.chars().take(160).collect()
}

/// Counts each straight-line segment of every sequence (function body, block, loop, if arm) when
/// it starts: a segment ends after a branch, a return or a nested block (which may branch out),
/// so the counts are exact up to traps. Adds 1 to `calls` at the entry.
/// With `segments`, each segment also counts its runs in a new global, listed there with its
/// length, file offset and instructions.
fn instrument(
    f: &mut LocalFunction,
    instrs: GlobalId,
    calls: GlobalId,
    mut segments: Option<(&mut walrus::ModuleGlobals, &mut Vec<(i64, u32, String, GlobalId)>)>,
) {
    let entry = f.entry_block();
    let mut seqs = vec![entry];
    let mut i = 0;
    while i < seqs.len() {
        let id = seqs[i];
        for (instr, _) in &f.block(id).instrs {
            match instr {
                Instr::Block(b) => seqs.push(b.seq),
                Instr::Loop(l) => seqs.push(l.seq),
                Instr::IfElse(e) => {
                    seqs.push(e.consequent);
                    seqs.push(e.alternative);
                }
                _ => {}
            }
        }
        i += 1;
    }
    for id in seqs {
        let old = std::mem::take(&mut f.block_mut(id).instrs);
        let mut new = Vec::with_capacity(old.len() + 8);
        if id == entry {
            new.extend(add(calls, 1));
        }
        let mut segment = Vec::new();
        let mut flush =
            |segment: &mut Vec<(Instr, walrus::InstrLocId)>, new: &mut Vec<(Instr, walrus::InstrLocId)>, end: bool| {
                let n = segment.len() as i64 + i64::from(end);
                if n > 0 {
                    new.extend(add(instrs, n));
                    if let Some((globals, list)) = segments.as_mut() {
                        let counter = globals.add_local(ValType::I64, true, false, ConstExpr::Value(Value::I64(0)));
                        let offset = segment.first().map_or(0, |(_, loc)| loc.data());
                        let text: Vec<String> = segment.iter().map(|(i, _)| short(i)).collect();
                        list.push((n, offset, text.join(" "), counter));
                        new.extend(add(counter, 1));
                    }
                    new.append(segment);
                }
            };
        for item in old {
            let ends = matches!(
                item.0,
                Instr::Br(_)
                    | Instr::BrIf(_)
                    | Instr::BrTable(_)
                    | Instr::Return(_)
                    | Instr::Unreachable(_)
                    | Instr::Block(_)
                    | Instr::Loop(_)
                    | Instr::IfElse(_)
                    | Instr::ReturnCall(_)
                    | Instr::ReturnCallIndirect(_)
            );
            segment.push(item);
            if ends {
                flush(&mut segment, &mut new, false);
            }
        }
        flush(&mut segment, &mut new, true); // + the sequence's `end`
        f.block_mut(id).instrs = new;
    }
}

/// An instruction in a few words (its operation, and the local's index or the memory offset).
fn short(i: &Instr) -> String {
    match i {
        Instr::Binop(b) => format!("{:?}", b.op),
        Instr::Unop(u) => format!("{:?}", u.op),
        Instr::LocalGet(l) => format!("get{}", l.local.index()),
        Instr::LocalSet(l) => format!("set{}", l.local.index()),
        Instr::LocalTee(l) => format!("tee{}", l.local.index()),
        Instr::Const(c) => format!("{:?}", c.value),
        Instr::Load(l) => format!("load.{:?}+{}", l.kind, l.arg.offset),
        Instr::Store(s) => format!("store.{:?}+{}", s.kind, s.arg.offset),
        Instr::Call(c) => format!("call{}", c.func.index()),
        _ => format!("{i:?}").chars().take_while(|c| c.is_alphanumeric()).collect(),
    }
}

fn add(global: GlobalId, n: i64) -> [(Instr, walrus::InstrLocId); 4] {
    [
        (Instr::GlobalGet(walrus::ir::GlobalGet { global }), Default::default()),
        (Instr::Const(walrus::ir::Const { value: Value::I64(n) }), Default::default()),
        (Instr::Binop(walrus::ir::Binop { op: BinaryOp::I64Add }), Default::default()),
        (Instr::GlobalSet(walrus::ir::GlobalSet { global }), Default::default()),
    ]
}
