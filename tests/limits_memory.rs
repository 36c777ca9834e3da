//! Memory stays bounded at high cardinality: a million events, each from a new source address
//! and a new user, through the whole pipeline (the seed's policy, enrichment, the default alert
//! rules), as the CLI and every host drive it.
//!
//! Every default rule that keeps state groups by address or account, so each event creates
//! groups; `alerts.limits.maxGroups` (10,000 per rule) must evict the rest. The measure is the
//! peak resident set (`VmHWM`) of a child process (this test binary, re-run on one ignored
//! test), so nothing else in the test run pollutes it. The property: past the point where every
//! rule is full (20,000 events: secret reads are every other event), 5 to 40 times more events
//! do not raise the peak (beyond allocator noise), and the peak stays under a fixed ceiling.
//!
//! Time: the input is generated on the fly. A debug build handles about 3,000 events/s with
//! every event raising an alert, so a debug `cargo test` runs 125,000 events (12x the group
//! bound, under a minute); `cargo test --release -p kaudit --test limits_memory` runs the full
//! million (see docs/RELIABILITY.md for the measured figures).

use std::process::Command;
use std::time::Instant;

use kaudit::Pipeline;

const CHILD_ENV: &str = "KAUDIT_MEMORY_CHILD_EVENTS";
const BIG: u32 = if cfg!(debug_assertions) { 125_000 } else { 1_000_000 };
/// Past 20,000 events every grouped rule is at `maxGroups` (10,000).
const SMALL: u32 = 25_000;
/// The ceiling: the default bounds (3 grouped rules x 10,000 groups) measured under 20 MiB.
const CEILING_KB: u64 = 64 * 1024;
/// What allocator fragmentation may add between the two runs.
const NOISE_KB: u64 = 8 * 1024;

use kaudit_testkit::corpus::distinct_actor_event as event;

/// `VmHWM` (peak resident set) of this process, in KiB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// What a child run reports.
#[derive(Debug)]
struct Run {
    events: u32,
    peak_kb: u64,
    metrics: serde_json::Value,
    alerts: u64,
    seconds: f64,
}

fn run_child(events: u32) -> Run {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "memory_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, events.to_string())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("KAUDIT_MEMORY ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no report from the child:\n{stdout}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    Run {
        events: v["events"].as_u64().unwrap() as u32,
        peak_kb: v["peakKB"].as_u64().unwrap(),
        metrics: v["metrics"].clone(),
        alerts: v["alerts"].as_u64().unwrap(),
        seconds: v["seconds"].as_f64().unwrap(),
    }
}

/// The workload, in the child process (run by the test below, not on its own).
#[test]
#[ignore = "the child process of memory_is_bounded_under_a_million_addresses_and_users"]
fn memory_child() {
    let events: u32 = std::env::var(CHILD_ENV).expect("run by the parent test").parse().unwrap();
    let mut p = Pipeline::embedded_default();
    let (mut line, mut out) = (String::new(), Vec::new());
    let mut alerts = 0u64;
    let start = Instant::now();
    for i in 0..events {
        event(i, &mut line);
        out.clear();
        p.process_record(line.as_bytes(), &mut out);
        // Like the CLI: alerts are taken (and written out) after every record.
        alerts += p.take_alerts().len() as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "KAUDIT_MEMORY {{\"events\":{events},\"peakKB\":{},\"alerts\":{alerts},\"seconds\":{seconds:.3},\"metrics\":{}}}",
        peak_rss_kb(),
        p.metrics_json()
    );
}

#[test]
fn memory_is_bounded_under_a_million_addresses_and_users() {
    let small = run_child(SMALL);
    let big = run_child(BIG);
    for r in [&small, &big] {
        eprintln!(
            "{} events (as many addresses and users): peak RSS {} MiB, {:.1} s, {} alerts, metrics {}",
            r.events,
            r.peak_kb / 1024,
            r.seconds,
            r.alerts,
            r.metrics
        );
    }
    let m = &big.metrics;
    // Every event was read and kept (the seed's policy keeps these at Metadata).
    assert_eq!(m["read"].as_u64(), Some(u64::from(BIG)));
    assert_eq!(m["kept"].as_u64(), Some(u64::from(BIG)));
    // The bound held and was hit: three grouped rules, each full, the rest evicted and counted.
    let groups = m["alerts"]["groups"].as_u64().unwrap();
    assert!(groups <= 3 * 10_000, "groups {groups}");
    assert!(m["alerts"]["groupsEvicted"].as_u64().unwrap() > u64::from(BIG) / 2, "{m}");
    // Each new address raises internet-access: the engine kept working after the evictions.
    assert!(big.alerts >= u64::from(BIG), "alerts {}", big.alerts);
    assert!(big.peak_kb < CEILING_KB, "peak RSS {} KiB over the {} KiB ceiling", big.peak_kb, CEILING_KB);
    assert!(
        big.peak_kb <= small.peak_kb + NOISE_KB,
        "memory grew with cardinality: {} KiB after {SMALL} events, {} KiB after {BIG}",
        small.peak_kb,
        big.peak_kb
    );
}
