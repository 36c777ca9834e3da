//! Two-phase aggregation (`alerts.role`, docs/SCALING.md): a stream split round robin over
//! three agents, their partial records merged by an aggregator, gives exactly the alerts one
//! instance raises on the whole stream (the same JSON, rule by rule), while no agent alone
//! raises the windowed alert. Re-sent partials (an agent restarted and re-reading its log)
//! change nothing.

use std::collections::BTreeMap;

use kaudit::{AlertRole, PartialError, Pipeline};

mod support;

use support::{repo_file, seed_geo_files};

/// The seed alert tests' config (default policy and rules, GeoIP, a high-risk list), in `role`.
fn config(role: &str, extra: &str) -> String {
    format!(
        "enrichment:\n  geoip: [city.mmdb, asn.mmdb]\n  highRiskIPs: [203.0.113.48/29]\nalerts:\n  role: {role}\n{extra}"
    )
}

fn pipeline(text: &str) -> Pipeline {
    Pipeline::from_config_text(text, "kaudit.yaml", &seed_geo_files()).unwrap().0
}

fn agent(id: &str, extra: &str) -> Pipeline {
    pipeline(&config("agent", &format!("  aggregation:\n    agentId: {id}\n{extra}")))
}

/// The streams: the seed's Example 2 (two bursts from one Internet address amid near misses)
/// followed by Example 1 (exec sessions, an Internet administrator) moved 1 h later.
fn stream() -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for l in repo_file("tests/fixtures/alerts/seed-example2-internet.jsonl").split(|b| *b == b'\n') {
        if !l.is_empty() {
            lines.push(l.to_vec());
        }
    }
    for l in repo_file("tests/fixtures/alerts/seed-example1-exec.jsonl").split(|b| *b == b'\n') {
        if !l.is_empty() {
            let text = String::from_utf8(l.to_vec()).unwrap().replace("2024-05-14T10:", "2024-05-14T11:");
            lines.push(text.into_bytes());
        }
    }
    lines
}

/// Runs lines through a pipeline; returns (alerts, partial records).
fn feed(p: &mut Pipeline, lines: &[Vec<u8>], finish: bool) -> (Vec<String>, Vec<String>) {
    let (mut alerts, mut partials) = (Vec::new(), Vec::new());
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        out.clear();
        p.process_document(l, i + 1, &mut out, &mut |_| {});
        alerts.extend(p.take_alerts());
        partials.extend(p.take_partials());
    }
    if finish {
        p.finish_alerts();
        alerts.extend(p.take_alerts());
        partials.extend(p.take_partials());
    }
    (alerts, partials)
}

/// Alerts by rule, each rule's alerts sorted (the aggregator raises them in event-time order,
/// a single instance in stream order).
fn by_rule(alerts: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in alerts {
        let v: serde_json::Value = serde_json::from_str(a).unwrap();
        m.entry(v["rule"].as_str().unwrap().to_string()).or_default().push(a.clone());
    }
    m.values_mut().for_each(|v| v.sort());
    m
}

fn round_robin(lines: &[Vec<u8>], n: usize) -> Vec<Vec<Vec<u8>>> {
    let mut parts = vec![Vec::new(); n];
    for (i, l) in lines.iter().enumerate() {
        parts[i % n].push(l.clone());
    }
    parts
}

/// The event time a record is sent at: a partial when its period ends, a watermark at its time.
fn sent_at(record: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(record).unwrap();
    let t = v.get("end").or(v.get("time")).and_then(|t| t.as_str()).unwrap();
    kaudit::parse_micros(t).unwrap()
}

/// The agents' records in the order an aggregator receives them when the agents read their
/// logs side by side: by the event time they are sent at; a stream given with `from` was
/// down until then and sends what it holds at that moment.
fn arrival(streams: &[(Vec<String>, i64)]) -> Vec<String> {
    let mut all: Vec<(i64, usize, usize, &String)> = Vec::new();
    for (si, (records, from)) in streams.iter().enumerate() {
        all.extend(records.iter().enumerate().map(|(i, r)| (sent_at(r).max(*from), si, i, r)));
    }
    all.sort_by_key(|&(t, si, i, _)| (t, si, i));
    all.into_iter().map(|(_, _, _, r)| r.clone()).collect()
}

fn side_by_side(streams: &[Vec<String>]) -> Vec<String> {
    arrival(&streams.iter().map(|s| (s.clone(), i64::MIN)).collect::<Vec<_>>())
}

fn aggregate(records: &[String]) -> (Vec<String>, Pipeline) {
    let mut agg = pipeline(&config("aggregator", ""));
    assert_eq!(agg.alert_role(), AlertRole::Aggregator);
    let mut alerts = Vec::new();
    for r in records {
        agg.merge_partials(r.as_bytes()).unwrap();
        alerts.extend(agg.take_alerts());
    }
    agg.finish_alerts();
    alerts.extend(agg.take_alerts());
    (alerts, agg)
}

fn single(lines: &[Vec<u8>]) -> Vec<String> {
    let mut p = pipeline(&config("single", ""));
    feed(&mut p, lines, true).0
}

const WINDOWED: &str = "internet-access-failures";

#[test]
fn three_agents_merged_equal_one_instance_rule_by_rule() {
    let lines = stream();
    let want = by_rule(&single(&lines));
    assert_eq!(want.get(WINDOWED).map(Vec::len), Some(2), "{want:#?}");
    assert!(want.len() >= 3, "the stream exercises several rules: {:?}", want.keys());

    let thirds = round_robin(&lines, 3);
    // Each third alone, in single role: the windowed rule never fires.
    for (i, third) in thirds.iter().enumerate() {
        let alone = by_rule(&single(third));
        assert!(!alone.contains_key(WINDOWED), "agent {i} alone raised {WINDOWED}");
    }
    let mut local = Vec::new();
    let mut streams = Vec::new();
    for (i, third) in thirds.iter().enumerate() {
        let mut a = agent(&format!("node-{i}"), "");
        let (alerts, partials) = feed(&mut a, third, true);
        assert!(!partials.is_empty());
        // Agents raise only the rules without state (exec-into-container, resource-deletion).
        for alert in &alerts {
            let v: serde_json::Value = serde_json::from_str(alert).unwrap();
            assert!(["exec-into-container", "resource-deletion"].contains(&v["rule"].as_str().unwrap()), "{alert}");
        }
        local.extend(alerts);
        streams.push(partials);
    }
    let (merged, agg) = aggregate(&side_by_side(&streams));
    let stats: serde_json::Value = serde_json::from_str(&agg.metrics_json()).unwrap();
    local.extend(merged);
    let got = by_rule(&local);
    for (rule, alerts) in &want {
        assert_eq!(got.get(rule), Some(alerts), "rule {rule}");
    }
    assert_eq!(got.len(), want.len(), "{:?} vs {:?}", got.keys(), want.keys());
    let a = &stats["aggregation"];
    assert_eq!(a["role"], "aggregator");
    assert_eq!((a["aggregator"]["late"].as_u64(), a["aggregator"]["duplicates"].as_u64()), (Some(0), Some(0)), "{a}");
}

#[test]
fn per_event_rules_at_the_aggregator_and_resent_partials_change_nothing() {
    let lines = stream();
    let want = by_rule(&single(&lines));
    let extra = "    perEventRules: aggregator\n";
    let thirds = round_robin(&lines, 3);
    let mut streams = Vec::new();
    for (i, third) in thirds.iter().enumerate() {
        let mut a = agent(&format!("node-{i}"), extra);
        let (alerts, partials) = feed(&mut a, third, true);
        assert_eq!(alerts, Vec::<String>::new(), "an agent raises nothing itself");
        streams.push(partials);
    }
    // Agent 1 is killed half way through its share (the periods it had not flushed are lost
    // with it), restarted, and re-reads its log from the start: everything it sent before is
    // sent again.
    let half = thirds[1].len() / 2;
    let mut killed = agent("node-1", extra);
    let (_, before_kill) = feed(&mut killed, &thirds[1][..half], false);
    assert!(!before_kill.is_empty());
    // It is down for 5 minutes of event time while the others go on, then re-sends everything.
    let killed_at = before_kill.last().map(|r| sent_at(r)).unwrap();
    let records = arrival(&[
        (streams[0].clone(), i64::MIN),
        (before_kill.clone(), i64::MIN),
        (streams[1].clone(), killed_at + 5 * 60_000_000),
        (streams[2].clone(), i64::MIN),
    ]);
    let (merged, agg) = aggregate(&records);
    assert_eq!(by_rule(&merged), want);
    let stats: serde_json::Value = serde_json::from_str(&agg.metrics_json()).unwrap();
    let a = &stats["aggregation"]["aggregator"];
    let resent: usize = before_kill
        .iter()
        .filter(|r| r.contains("\"KauditPartial\""))
        .map(|r| serde_json::from_str::<serde_json::Value>(r).unwrap()["steps"].as_array().unwrap().len())
        .sum();
    assert_eq!(a["duplicateSteps"], resent as u64, "{a}");
    assert_eq!(a["agents"], 3);
    assert_eq!(a["late"], 0, "{a}");

    // Restarted from a saved read position a little before the kill (as `tail` with a `db`
    // resumes, plus what it had not flushed): its periods are cut differently, the steps it
    // sends again are recognised one by one.
    let mut resumed = agent("node-1", extra);
    let (_, after) = feed(&mut resumed, &thirds[1][half - 30..], true);
    let records = arrival(&[
        (streams[0].clone(), i64::MIN),
        (before_kill.clone(), i64::MIN),
        (after, killed_at + 5 * 60_000_000),
        (streams[2].clone(), i64::MIN),
    ]);
    let (merged, agg) = aggregate(&records);
    assert_eq!(by_rule(&merged), want);
    let stats: serde_json::Value = serde_json::from_str(&agg.metrics_json()).unwrap();
    assert!(stats["aggregation"]["aggregator"]["duplicateSteps"].as_u64() > Some(0), "{stats}");

    // The same partials twice, in any grouping: the same alerts.
    let mut twice = side_by_side(&streams);
    twice.extend(side_by_side(&streams));
    assert_eq!(by_rule(&aggregate(&twice).0), want);
}

#[test]
fn partial_records_are_small_and_say_what_they_hold() {
    let lines = stream();
    let mut a = agent("node-0", "");
    let (_, partials) = feed(&mut a, &lines, true);
    let bytes_in: usize = lines.iter().map(|l| l.len() + 1).sum();
    let bytes_out: usize = partials.iter().map(|p| p.len() + 1).sum();
    // This stream is mostly Internet traffic, which the stateful rules all match.
    assert!(bytes_out < bytes_in, "{bytes_out} bytes of partials for {bytes_in} bytes of events");
    let burst = partials
        .iter()
        .map(|p| serde_json::from_str::<serde_json::Value>(p).unwrap())
        .filter(|v| v["rule"] == WINDOWED && v["key"] == "203.0.113.50")
        .max_by_key(|v| v["count"].as_u64())
        .unwrap();
    assert_eq!(burst["kind"], "KauditPartial");
    assert_eq!(burst["agent"], "node-0");
    assert_eq!(burst["group"], serde_json::json!({"kaudit.sourceIP": "203.0.113.50"}));
    let count = burst["count"].as_u64().unwrap();
    assert_eq!(burst["steps"].as_array().unwrap().len() as u64, count);
    assert!(burst["failures"].as_u64().unwrap() <= count);
    assert!(burst["auditIDs"].as_array().unwrap().len() as u64 == count.min(10));
    // Watermarks: event time, one per flush period the stream crossed.
    let marks = partials.iter().filter(|p| p.contains("\"KauditWatermark\"")).count();
    assert!(marks > 100, "{marks}");
}

#[test]
fn a_bad_role_or_aggregation_setting_names_the_field() {
    let text = config("leader", "");
    let err = Pipeline::from_config_text(&text, "kaudit.yaml", &seed_geo_files()).err().unwrap().to_string();
    assert!(err.contains("kaudit.yaml:5:9: alerts.role: expected one of single, agent, aggregator"), "{err}");
    let text = config("agent", "  aggregation:\n    flushEvery: 10ms\n");
    let err = Pipeline::from_config_text(&text, "kaudit.yaml", &seed_geo_files()).err().unwrap().to_string();
    assert!(
        err.contains("alerts.aggregation.flushEvery: must be 0 (send every match at once) or at least 1s"),
        "{err}"
    );
    // Records that are not partials are refused with a reason, and counted.
    let mut agg = pipeline(&config("aggregator", ""));
    let not_partial = agg.merge_partials(b"{\"kind\":\"Event\"}").unwrap_err();
    assert!(matches!(not_partial, PartialError::Invalid(_)), "{not_partial:?}");
    let not_json = agg.merge_partials(b"not json").unwrap_err();
    assert!(matches!(not_json, PartialError::NotJson(_)), "{not_json:?}");
    assert!(not_json.to_string().starts_with("not a JSON partial record: "), "{not_json}");
    let mut agent = pipeline(&config("agent", ""));
    assert_eq!(agent.merge_partials(b"{}").unwrap_err(), PartialError::NotAggregator);
}

/// A rule with every aggregate kind, `repeat` and a small `maxDistinct`.
const BUSY: &str = include_str!("fixtures/alerts/busy-account-rules.yaml");

/// 4,000 generated events in the order an apiserver writes them: each event at its stage's
/// time (the generator writes a request's stages together).
fn generated_in_stage_order(seed: u64) -> Vec<Vec<u8>> {
    let text = kaudit_testkit::corpus::generate(4_000, seed);
    let mut lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    lines.sort_by_cached_key(|l| {
        let v: serde_json::Value = serde_json::from_slice(l).unwrap();
        kaudit::parse_micros(v["stageTimestamp"].as_str().unwrap()).unwrap()
    });
    lines
}

#[test]
fn a_generated_day_of_traffic_merges_to_the_same_alerts() {
    let lines = generated_in_stage_order(7);
    let mut single = pipeline(&config("single", BUSY));
    let want = by_rule(&feed(&mut single, &lines, true).0);
    let counts: Vec<(&str, usize)> = want.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    assert!(want.get("busy-account").is_some_and(|a| a.len() >= 5), "{counts:?}");
    assert!(want.len() >= 5, "{counts:?}");
    let mut local = Vec::new();
    let mut streams = Vec::new();
    for (i, third) in round_robin(&lines, 3).iter().enumerate() {
        let mut a = pipeline(&config("agent", &format!("  aggregation:\n    agentId: node-{i}\n{BUSY}")));
        let (alerts, partials) = feed(&mut a, third, true);
        local.extend(alerts);
        streams.push(partials);
    }
    let mut agg = pipeline(&config("aggregator", BUSY));
    for r in side_by_side(&streams) {
        agg.merge_partials(r.as_bytes()).unwrap();
        local.extend(agg.take_alerts());
    }
    agg.finish_alerts();
    local.extend(agg.take_alerts());
    assert_eq!(by_rule(&local), want);
}

#[test]
fn with_flush_every_0_an_agent_killed_and_resumed_where_it_stopped_loses_nothing() {
    let lines = stream();
    let want = by_rule(&single(&lines));
    let extra = "    perEventRules: aggregator\n    flushEvery: 0\n";
    let thirds = round_robin(&lines, 3);
    let mut streams = Vec::new();
    for (i, third) in thirds.iter().enumerate() {
        streams.push(feed(&mut agent(&format!("node-{i}"), extra), third, false).1);
    }
    // Killed after `half` lines: every match it read has left with its record. Restarted at a
    // saved read position 10 lines earlier (what `tail` re-reads after a kill -9), never finished.
    let half = thirds[1].len() / 2;
    let (_, before_kill) = feed(&mut agent("node-1", extra), &thirds[1][..half], false);
    let (_, after) = feed(&mut agent("node-1", extra), &thirds[1][half - 10..], false);
    let killed_at = before_kill.last().map(|r| sent_at(r)).unwrap();
    let records = arrival(&[
        (streams[0].clone(), i64::MIN),
        (before_kill, i64::MIN),
        (after, killed_at + 60_000_000),
        (streams[2].clone(), i64::MIN),
    ]);
    let (merged, agg) = aggregate(&records);
    assert_eq!(by_rule(&merged), want);
    let stats: serde_json::Value = serde_json::from_str(&agg.metrics_json()).unwrap();
    assert!(stats["aggregation"]["aggregator"]["duplicateSteps"].as_u64() > Some(0), "{stats}");
}

#[test]
fn an_aggregator_expecting_three_agents_waits_for_those_it_has_not_heard_from() {
    let lines = stream();
    let want = by_rule(&single(&lines));
    let mut streams = Vec::new();
    for (i, third) in round_robin(&lines, 3).iter().enumerate() {
        streams.push(feed(&mut agent(&format!("node-{i}"), ""), third, false).1);
    }
    let mut local = Vec::new();
    for (i, third) in round_robin(&lines, 3).iter().enumerate() {
        local.extend(feed(&mut agent(&format!("node-{i}"), ""), third, false).0);
    }
    // Agent 0's records all arrive before the first record of the others.
    let records: Vec<String> = streams.concat();
    let merge = |expect: &str| {
        // Agent 0 runs 70 minutes of event time ahead: idleAfter must cover that.
        let mut agg =
            pipeline(&config("aggregator", &format!("  aggregation:\n    agents: {expect}\n    idleAfter: 2h\n")));
        let mut alerts = local.clone();
        for r in &records {
            agg.merge_partials(r.as_bytes()).unwrap();
            alerts.extend(agg.take_alerts());
        }
        agg.finish_alerts();
        alerts.extend(agg.take_alerts());
        by_rule(&alerts)
    };
    assert_eq!(merge("3"), want);
    // Not told, it cannot wait for agents it does not know: the windowed alert is missed.
    assert_ne!(merge("0").get(WINDOWED), want.get(WINDOWED));
}

/// A small deterministic generator (xorshift64*): shuffles without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

/// Each agent's records shuffled within consecutive windows of at most `window` records sent
/// within one minute of event time, every watermark of a window moved ahead of the window's
/// partials (sent before it), and the agents interleaved side by side. A record is only ever
/// delayed (by less than a minute): a window's records arrive when its last one was sent.
fn shuffled_arrival(streams: &[Vec<String>], window: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut all: Vec<(i64, usize, usize, String)> = Vec::new();
    for (si, records) in streams.iter().enumerate() {
        let mut chunks: Vec<Vec<String>> = Vec::new();
        for r in records {
            match chunks.last_mut() {
                Some(c) if c.len() < window && sent_at(r) < sent_at(&c[0]) + 60_000_000 => c.push(r.clone()),
                _ => chunks.push(vec![r.clone()]),
            }
        }
        for chunk in chunks {
            let at = chunk.iter().map(|r| sent_at(r)).max().unwrap();
            let (mut marks, mut parts): (Vec<String>, Vec<String>) =
                chunk.into_iter().partition(|r| r.contains("\"KauditWatermark\""));
            for i in (1..parts.len()).rev() {
                parts.swap(i, rng.below(i + 1));
            }
            marks.reverse();
            let base = all.len();
            all.extend(marks.into_iter().chain(parts).enumerate().map(|(i, r)| (at, si, base + i, r)));
        }
    }
    all.sort_by_key(|&(t, si, i, _)| (t, si, i));
    all.into_iter().map(|(_, _, _, r)| r).collect()
}

/// A record as an agent before sequence numbers wrote it (no `inc`, no `seq`).
fn unnumbered(record: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(record).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("inc");
    o.remove("seq");
    v.to_string()
}

fn aggregate_with(extra: &str, records: &[String]) -> (BTreeMap<String, Vec<String>>, serde_json::Value) {
    let mut agg = pipeline(&config("aggregator", extra));
    let mut alerts = Vec::new();
    for r in records {
        agg.merge_partials(r.as_bytes()).unwrap();
        alerts.extend(agg.take_alerts());
    }
    let before_end: serde_json::Value = serde_json::from_str(&agg.metrics_json()).unwrap();
    agg.finish_alerts();
    alerts.extend(agg.take_alerts());
    let mut stats: serde_json::Value = serde_json::from_str(&agg.metrics_json()).unwrap();
    stats["beforeEnd"] = before_end["aggregation"]["aggregator"].clone();
    (
        by_rule(&alerts),
        stats["aggregation"]["aggregator"].clone().as_object().cloned().map_or(stats.clone(), |mut o| {
            o.insert("beforeEnd".into(), stats["beforeEnd"].clone());
            serde_json::Value::Object(o)
        }),
    )
}

#[test]
fn records_are_numbered_per_agent_run() {
    let lines = stream();
    let mut a = agent("node-0", "");
    a.set_agent_incarnation("18c3a5e2f1-0000000000000001");
    let (_, records) = feed(&mut a, &lines, true);
    for (i, r) in records.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(r).unwrap();
        assert_eq!(
            (v["inc"].as_str(), v["seq"].as_u64()),
            (Some("18c3a5e2f1-0000000000000001"), Some(i as u64)),
            "{r}"
        );
    }
    // Without an id from the host: the first event time the agent read names the run.
    let (_, records) = feed(&mut agent("node-0", ""), &lines, true);
    let v: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
    let first = lines[0].clone();
    let ev: serde_json::Value = serde_json::from_slice(&first).unwrap();
    let t = kaudit::parse_micros(ev["stageTimestamp"].as_str().unwrap()).unwrap();
    assert_eq!(v["inc"], format!("t{t}"));
    // An id given after the first record is ignored: numbers stay within one run.
    let mut late = agent("node-0", "");
    let (_, first_records) = feed(&mut late, &lines[..40], false);
    assert!(!first_records.is_empty());
    late.set_agent_incarnation("other");
    let (_, rest) = feed(&mut late, &lines[40..], true);
    assert!(rest.iter().all(|r| r.contains(&format!("\"inc\":\"t{t}\""))), "{}", rest[0]);
}

/// Watermarks overtaking the partials sent before them by more than `allowedLateness`
/// (10 s here) of event time: numbered records still merge to exactly the single instance's
/// alerts; the same records without numbers (an agent before sequence numbers) are merged late.
#[test]
fn watermarks_overtaking_partials_wait_for_them() {
    let lines = stream();
    let want = by_rule(&single(&lines));
    let extra = "    perEventRules: aggregator\n";
    let thirds = round_robin(&lines, 3);
    let streams: Vec<Vec<String>> = thirds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut a = agent(&format!("node-{i}"), extra);
            a.set_agent_incarnation(&kaudit::incarnation_id(1_700_000_000_000_000 + i as u64, 7));
            feed(&mut a, t, true).1
        })
        .collect();
    let agg = "  aggregation:\n    allowedLateness: 10s\n";
    // In the order each agent sent them: a few partials are late already (steps of events the
    // agent read more than `lateness` out of order, sent after its watermark passed them).
    let (got, in_order) = aggregate_with(agg, &shuffled_arrival(&streams, 1, 0));
    assert_eq!(got, want);
    assert_eq!(in_order["reordered"], 0, "{in_order}");
    let late = in_order["late"].as_u64();
    for (window, seed) in [(6, 1), (12, 2), (25, 3)] {
        let records = shuffled_arrival(&streams, window, seed);
        assert_ne!(records, side_by_side(&streams));
        let (got, stats) = aggregate_with(agg, &records);
        assert_eq!(got, want, "window {window}: {stats}");
        assert!(stats["reordered"].as_u64() > Some(0), "{stats}");
        assert_eq!((stats["late"].as_u64(), stats["missing"].as_u64()), (late, Some(0)), "window {window}: {stats}");
        assert_eq!(stats["runs"], 3, "{stats}");
        assert_eq!(stats["heldWatermarks"], 0, "{stats}");
    }
    // Old records (no numbers) are accepted as before: order is then only what allowedLateness
    // covers, and here it does not.
    let old: Vec<String> = shuffled_arrival(&streams, 25, 3).iter().map(|r| unnumbered(r)).collect();
    let (got, stats) = aggregate_with(agg, &old);
    assert!(stats["late"].as_u64() > late, "{stats}");
    assert_eq!(stats["runs"], 0, "{stats}");
    assert_ne!(got, want);
}

/// A record that never comes is counted, and not waited for longer than `gapTimeout` of the
/// agent's own event time.
#[test]
fn a_missing_record_is_counted_not_waited_for() {
    let lines = stream();
    let extra = "    perEventRules: aggregator\n";
    let mut streams: Vec<Vec<String>> = round_robin(&lines, 3)
        .iter()
        .enumerate()
        .map(|(i, t)| feed(&mut agent(&format!("node-{i}"), extra), t, false).1)
        .collect();
    // Agent 1 loses its 20th record (a partial), early in the stream.
    let lost_at = streams[1].iter().enumerate().filter(|(_, r)| r.contains("\"KauditPartial\"")).nth(20).unwrap().0;
    let lost = streams[1].remove(lost_at);
    let lost_end = sent_at(&lost);
    let records = side_by_side(&streams);
    let (_, stats) = aggregate_with("  aggregation:\n    gapTimeout: 2m\n", &records);
    // Counted once, before the input ended (the aggregator went on without it).
    assert_eq!(stats["beforeEnd"]["missing"], 1, "{stats}");
    assert_eq!(stats["missing"], 1, "{stats}");
    assert_eq!(stats["beforeEnd"]["heldWatermarks"], 0, "{stats}");
    // Periods kept closing: what is pending at the end is the last minutes, not everything
    // since the loss.
    let total: u64 = stats["partials"].as_u64().unwrap();
    assert!(stats["beforeEnd"]["pending"].as_u64().unwrap() < total / 4, "{stats}");
    // Until gapTimeout has passed the aggregator holds the agent back: cut the input 1 min of
    // event time after the lost partial and nothing has been given up yet.
    let cut: Vec<String> = records.iter().filter(|r| sent_at(r) <= lost_end + 60_000_000).cloned().collect();
    let (_, stats) = aggregate_with("  aggregation:\n    gapTimeout: 2m\n", &cut);
    assert_eq!(stats["beforeEnd"]["missing"], 0, "{stats}");
    assert!(stats["beforeEnd"]["heldWatermarks"].as_u64() > Some(0), "{stats}");
    // At the end of a finite input it is counted.
    assert_eq!(stats["missing"], 1, "{stats}");
}

/// Records sent again (a retry, or a restarted agent re-reading its log as a new run) are
/// merged once, and the new run's numbers start again at 0 without being taken for duplicates.
#[test]
fn duplicates_and_a_restart_as_a_new_run_merge_once() {
    let lines = stream();
    let want = by_rule(&single(&lines));
    let extra = "    perEventRules: aggregator\n    flushEvery: 0\n";
    let thirds = round_robin(&lines, 3);
    let run = |i: usize, part: &[Vec<u8>], inc: &str, finish: bool| {
        let mut a = agent(&format!("node-{i}"), extra);
        a.set_agent_incarnation(inc);
        feed(&mut a, part, finish).1
    };
    let s0 = run(0, &thirds[0], "a0", false);
    let s2 = run(2, &thirds[2], "a2", false);
    // Agent 1 killed half way (run "a1"), restarted as run "b1" from 10 lines before the kill.
    let half = thirds[1].len() / 2;
    let before_kill = run(1, &thirds[1][..half], "a1", false);
    let after = run(1, &thirds[1][half - 10..], "b1", false);
    let killed_at = before_kill.last().map(|r| sent_at(r)).unwrap();
    // Every record of agent 0 also delivered twice (a retried chunk), the copy 5 records later.
    let mut s0_twice = Vec::new();
    for (i, r) in s0.iter().enumerate() {
        s0_twice.push(r.clone());
        if i >= 5 {
            s0_twice.push(s0[i - 5].clone());
        }
    }
    let records =
        arrival(&[(s0_twice, i64::MIN), (before_kill, i64::MIN), (after, killed_at + 60_000_000), (s2, i64::MIN)]);
    let (got, stats) = aggregate_with("", &records);
    assert_eq!(got, want, "{stats}");
    assert_eq!(stats["runs"], 4, "{stats}");
    assert_eq!((stats["missing"].as_u64(), stats["late"].as_u64()), (Some(0), Some(0)), "{stats}");
    assert!(stats["duplicateSteps"].as_u64() > Some(0), "{stats}");
}

/// Which of `n` aggregators a record goes to when partials are partitioned by their group key
/// (`rule` + `key`, hashed as Kafka's default partitioner hashes a message key; FNV-1a here):
/// `None` for a watermark, which goes to every aggregator.
fn partition(record: &str, n: u64) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(record).unwrap();
    if v["kind"] == "KauditWatermark" {
        return None;
    }
    let key = format!("{}\u{0}{}", v["rule"].as_str().unwrap(), v["key"].as_str().unwrap());
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    Some(h % n)
}

/// Scale-out (docs/SCALING.md, "Scaling the aggregator out"): two aggregators, each fed the
/// partials of a disjoint half of the group keys and every agent's watermarks, raise together
/// exactly the alerts of one instance on the whole stream.
#[test]
fn aggregators_partitioned_by_group_key_raise_together_what_one_raises() {
    let lines = generated_in_stage_order(11);
    let mut single = pipeline(&config("single", BUSY));
    let want = by_rule(&feed(&mut single, &lines, true).0);
    assert!(want.len() >= 5, "{:?}", want.keys());
    let extra = format!("    perEventRules: aggregator\n{BUSY}");
    let streams: Vec<Vec<String>> = round_robin(&lines, 3)
        .iter()
        .enumerate()
        .map(|(i, third)| {
            let mut a = pipeline(&config("agent", &format!("  aggregation:\n    agentId: node-{i}\n{extra}")));
            a.set_agent_incarnation(&kaudit::incarnation_id(0, i as u64));
            feed(&mut a, third, true).1
        })
        .collect();
    let records = side_by_side(&streams);
    let mut together = Vec::new();
    let mut raised_by = Vec::new();
    for i in 0..2 {
        let mine: Vec<String> = records.iter().filter(|r| partition(r, 2).is_none_or(|p| p == i)).cloned().collect();
        let (alerts, stats) = aggregate_with(&format!("  aggregation:\n    partitioned: true\n{BUSY}"), &mine);
        assert!(stats["partials"].as_u64() > Some(100), "aggregator {i}: {stats}");
        assert_eq!((stats["late"].as_u64(), stats["missing"].as_u64()), (Some(0), Some(0)), "aggregator {i}: {stats}");
        raised_by.push(alerts.values().map(Vec::len).sum::<usize>());
        together.extend(alerts.into_values().flatten());
    }
    assert!(raised_by.iter().all(|n| *n > 0), "{raised_by:?}");
    assert_eq!(by_rule(&together), want);
}
