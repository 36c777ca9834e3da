//! What a two-phase aggregator holds in memory (docs/SCALING.md, "What each instance holds in
//! memory"). A generated stream (`kaudit_testkit::corpus`, sorted by stage time as apiservers
//! write it) is split round robin over 3 agents with the default rules; their partial and
//! watermark records are merged side by side by one aggregator. The heap is measured by a
//! counting global allocator (bytes requested and not yet freed), so the corpus, the agents and
//! the records waiting to be merged are not counted: only what the aggregator pipeline holds.
//! For comparison, one `single` instance on the whole stream, measured the same way.
//!
//! Run: `cargo bench --bench aggregator_memory -- [events] [seed]` (default 60000 7).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use kaudit::Pipeline;

/// Live heap bytes and their peak since the last [`reset_peak`].
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn note(delta: isize) {
    let now = LIVE.fetch_add(delta, Relaxed) + delta;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Relaxed)
}

fn reset_peak() {
    PEAK.store(live(), Relaxed);
}

fn kib(bytes: isize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn stage_time(line: &[u8]) -> i64 {
    let v: serde_json::Value = serde_json::from_slice(line).expect("corpus is JSON");
    v["stageTimestamp"].as_str().and_then(kaudit::parse_micros).unwrap_or(0)
}

fn sent_at(record: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(record).expect("a partial record");
    let t = v.get("end").or(v.get("time")).and_then(|t| t.as_str()).unwrap_or("");
    kaudit::parse_micros(t).unwrap_or(0)
}

fn pipeline(role: &str, extra: &str) -> Pipeline {
    let text = format!("alerts:\n  role: {role}\n{extra}");
    Pipeline::from_config_text(&text, "kaudit.yaml", &kaudit::NoFiles).expect("config").0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let events: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(60_000);
    let seed: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(7);
    let text = kaudit_testkit::corpus::generate(events, seed);
    let mut lines: Vec<&[u8]> = text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    lines.sort_by_cached_key(|l| stage_time(l));
    let span = stage_time(lines[lines.len() - 1]) - stage_time(lines[0]);

    // Single instance on the whole stream.
    let before = live();
    let mut single = pipeline("single", "");
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        single.process_document(l, i + 1, &mut out, &mut |_| {});
        out.clear();
        single.take_alerts();
    }
    let single_heap = live() - before;
    let single_groups = single.alert_stats().groups;
    drop(single);

    // Three agents, round robin.
    let mut streams: Vec<Vec<String>> = Vec::new();
    for a in 0..3 {
        let mut agent = pipeline("agent", &format!("  aggregation:\n    agentId: node-{a}\n"));
        let mut records = Vec::new();
        for (i, l) in lines.iter().enumerate().skip(a).step_by(3) {
            agent.process_document(l, i + 1, &mut out, &mut |_| {});
            out.clear();
            agent.take_alerts();
            records.extend(agent.take_partials());
        }
        agent.finish_alerts();
        records.extend(agent.take_partials());
        streams.push(records);
    }
    let mut arrival: Vec<(i64, usize, String)> =
        streams.into_iter().flatten().enumerate().map(|(i, r)| (sent_at(&r), i, r)).collect();
    arrival.sort_by_key(|(t, i, _)| (*t, *i));
    let records = arrival.len();
    let bytes: usize = arrival.iter().map(|(_, _, r)| r.len()).sum();

    // The aggregator: heap held after each tenth of the records, and the peak.
    let before = live();
    reset_peak();
    let mut agg = pipeline("aggregator", "");
    let mut samples = Vec::new();
    for (n, (_, _, r)) in arrival.iter().enumerate() {
        agg.merge_partials(r.as_bytes()).expect("a partial record");
        agg.take_alerts();
        if (n + 1) % (records / 10).max(1) == 0 {
            let m: serde_json::Value = serde_json::from_str(&agg.metrics_json()).expect("metrics");
            samples.push((n + 1, live() - before, m));
        }
    }
    let peak = PEAK.load(Relaxed) - before;
    let held = live() - before;
    let m: serde_json::Value = serde_json::from_str(&agg.metrics_json()).expect("metrics");
    let a = &m["aggregation"]["aggregator"];

    // The fingerprint set's own cost per entry: the same map type, filled as far.
    let fps = a["fingerprints"].as_u64().unwrap_or(0) as usize;
    let before_map = live();
    let map: std::collections::HashMap<u64, i64> =
        (0..fps as u64).map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15), 0)).collect();
    let map_heap = live() - before_map;
    drop(map);

    println!(
        "stream: {events} events (seed {seed}), {:.1} min of event time; 3 agents, default rules",
        span as f64 / 60e6
    );
    println!("agents' records: {records} ({bytes} bytes)");
    println!("single instance: heap held {} ({single_groups} groups)", kib(single_heap));
    println!(
        "aggregator: heap held {} (peak {}); agents {}, runs {}, groups {}, pending partials {}, fingerprints {} (a HashMap<u64, i64> of as many entries: {}, {:.1} B/entry)",
        kib(held),
        kib(peak),
        a["agents"],
        a["runs"],
        m["alerts"]["groups"],
        a["pending"],
        fps,
        kib(map_heap),
        map_heap as f64 / fps.max(1) as f64
    );
    println!("after records | heap held | groups | pending partials | fingerprints");
    for (n, heap, m) in samples {
        let a = &m["aggregation"]["aggregator"];
        println!("{n} | {} | {} | {} | {}", kib(heap), m["alerts"]["groups"], a["pending"], a["fingerprints"]);
    }
}
