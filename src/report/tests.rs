//! Report aggregation on the bundled real sample log, checked against counts computed
//! independently from the JSON with serde_json.

use serde_json::Value as Json;

use super::*;
use crate::enrich::Enricher;
use crate::query::Query;

fn sample() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sample-audit.log")).expect("sample log")
}

fn events() -> Vec<Json> {
    String::from_utf8(sample())
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn builder(options: BuilderOptions) -> ReportBuilder {
    let mut b = ReportBuilder::new(options);
    let (events, bad) = b.push_input(&sample(), &Enricher::default());
    assert_eq!((events, bad), (88, 0));
    b
}

fn all() -> Filter {
    Filter { last: Some("all".into()), ..Filter::default() }
}

fn time_of(e: &Json) -> i64 {
    let t = e.get("stageTimestamp").or_else(|| e.get("timestamp")).and_then(Json::as_str).unwrap();
    crate::event::time::parse_micros(t).unwrap()
}

fn count(entries: &[Entry], key: &str) -> u64 {
    entries.iter().find(|e| e.key == key).map_or(0, |e| e.count)
}

#[test]
fn all_time_overview_matches_the_log() {
    let r = builder(BuilderOptions::default()).report(&all()).unwrap();
    let evs = events();
    assert_eq!(r.overview.total, evs.len() as u64);
    let code = |e: &Json| e["responseStatus"]["code"].as_i64();
    assert_eq!(r.overview.failure, evs.iter().filter(|e| code(e).is_some_and(|c| c >= 400)).count() as u64);
    assert_eq!(r.overview.success, evs.iter().filter(|e| code(e).is_some_and(|c| c < 400)).count() as u64);
    assert_eq!(
        count(&r.overview.by_status_code.entries, "403"),
        evs.iter().filter(|e| code(e) == Some(403)).count() as u64
    );
    for ns in ["default", "kube-system", ""] {
        let want = evs.iter().filter(|e| e["objectRef"]["namespace"].as_str().unwrap_or("") == ns).count() as u64;
        assert_eq!(count(&r.overview.by_namespace.entries, ns), want, "namespace {ns:?}");
    }
    let want_ip = evs.iter().filter(|e| e["sourceIPs"][0] == "192.168.99.1").count() as u64;
    let ip = r.overview.by_source_ip.entries.iter().find(|e| e.key == "192.168.99.1").unwrap();
    assert_eq!((ip.count, ip.scope.as_str(), ip.region.as_str()), (want_ip, "intranet", "intranet"));
    // The timeline covers every timed event once.
    assert_eq!(r.overview.timeline.iter().map(|b| b.count).sum::<u64>(), r.overview.total);
    let deletes = evs.iter().filter(|e| e["verb"] == "delete").count() as u64;
    assert_eq!(r.overview.important.resource_deletion.count, deletes);
    let execs = evs
        .iter()
        .filter(|e| {
            e["objectRef"]["resource"] == "pods"
                && matches!(e["objectRef"]["subresource"].as_str(), Some("exec" | "attach"))
        })
        .count();
    assert_eq!(r.overview.important.command_execution.count, execs as u64);
    assert!(execs > 0);
    let secret_reads = evs
        .iter()
        .filter(|e| {
            e["objectRef"]["resource"] == "secrets"
                && matches!(e["verb"].as_str(), Some("get" | "list" | "watch"))
                && e["objectRef"].get("subresource").is_none()
        })
        .count();
    assert_eq!(r.overview.important.secret_access.count, secret_reads as u64);
    // Newest first.
    let times: Vec<&str> =
        r.overview.important.resource_deletion.events.iter().map(|e| e.time.as_deref().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
}

#[test]
fn default_range_is_the_whole_span_of_the_data() {
    let r = builder(BuilderOptions::default()).report(&Filter::default()).unwrap();
    let evs = events();
    assert_eq!((r.range.from.as_deref(), r.range.to.as_deref()), (None, None));
    assert_eq!((r.overview.total, r.range.events, r.input.events), (88, 88, 88));
    assert_eq!(r.overview.total, evs.len() as u64);
    // The timeline spans the data (2018-2020 in the sample).
    assert_eq!(r.overview.timeline.iter().map(|b| b.count).sum::<u64>(), 88);
}

#[test]
fn last_week_of_the_data_counts_the_events_in_range() {
    let week = Filter { last: Some("7d".into()), ..Filter::default() };
    let r = builder(BuilderOptions::default()).report(&week).unwrap();
    let evs = events();
    let newest = evs.iter().map(time_of).max().unwrap();
    let want = evs.iter().filter(|e| time_of(e) >= newest - 7 * 86_400 * 1_000_000).count() as u64;
    assert_eq!(r.overview.total, want);
    assert!(want > 0 && want < evs.len() as u64);
    // `range.events` counts the range alone; the other filters narrow `overview.total` only.
    assert_eq!((r.range.events, r.input.events), (want, 88));
    let narrowed = Filter { code: vec![200], ..week };
    let n = builder(BuilderOptions::default()).report(&narrowed).unwrap();
    assert_eq!(n.range.events, want);
    assert!(n.overview.total < want, "{} of {want}", n.overview.total);
    assert_eq!(r.range.to.as_deref(), Some(crate::event::time::format_micros(newest).as_str()));
    assert_eq!(r.range.step, "1h");
    assert_eq!(r.overview.timeline.len(), 169);
}

#[test]
fn operations_per_type_match_the_verbs() {
    let r = builder(BuilderOptions::default()).report(&all()).unwrap();
    let evs = events();
    let ops = |res: &str, verbs: &[&str]| {
        evs.iter().filter(|e| e["objectRef"]["resource"] == res && verbs.contains(&e["verb"].as_str().unwrap())).count()
            as u64
    };
    let compute = &r.operations.categories[0];
    assert_eq!(compute.category, "compute");
    let pods = compute.resources.iter().find(|x| x.resource_type == "pods").unwrap();
    assert_eq!(pods.ops.create, ops("pods", &["create"]));
    assert_eq!(pods.ops.access, ops("pods", &["get", "list", "watch"]));
    let storage = &r.operations.categories[2];
    let cm = storage.resources.iter().find(|x| x.resource_type == "configmaps").unwrap();
    assert_eq!((cm.ops.create, cm.ops.delete), (ops("configmaps", &["create"]), ops("configmaps", &["delete"])));
    let other = &r.operations.categories[3];
    let roles = other.resources.iter().find(|x| x.resource_type == "clusterroles").unwrap();
    assert_eq!(roles.ops.update, ops("clusterroles", &["update", "patch"]));
    let with_resource = evs.iter().filter(|e| e["objectRef"]["resource"].is_string()).count() as u64;
    assert_eq!(r.operations.totals.total, with_resource);
    assert_eq!(r.operations.categories.iter().map(|c| c.totals.total).sum::<u64>(), with_resource);
}

#[test]
fn details_for_a_type_any_case_and_the_default_type() {
    let b = builder(BuilderOptions::default());
    let f = Filter { resource_type: Some("Pods".into()), ..all() };
    let d = b.report(&f).unwrap().details;
    let evs = events();
    let pods: Vec<&Json> = evs.iter().filter(|e| e["objectRef"]["resource"] == "pods").collect();
    assert_eq!(d.resource_type.as_deref(), Some("pods"));
    assert_eq!(d.ops.total, pods.len() as u64);
    assert_eq!(d.events.events.len(), pods.len().min(100));
    assert_eq!(
        d.failure,
        pods.iter().filter(|e| e["responseStatus"]["code"].as_i64().unwrap_or(0) >= 400).count() as u64
    );
    assert_eq!(d.timeline.iter().map(|t| t.create + t.update + t.delete + t.access).sum::<u64>(), d.ops.total);
    // Default: the most operated type.
    let d = b.report(&all()).unwrap().details;
    assert_eq!(d.resource_type.as_deref(), Some("pods"));
    // A CRD name that does not occur: an empty tab, not an error.
    let d = b.report(&Filter { resource_type: Some("AliyunLogConfigs".into()), ..all() }).unwrap().details;
    assert_eq!((d.resource_type.as_deref(), d.ops.total), (Some("AliyunLogConfigs"), 0));
}

#[test]
fn value_filters() {
    let b = builder(BuilderOptions::default());
    let evs = events();
    let r = b.report(&Filter { namespace: vec!["default".into()], code: vec![403], ..all() }).unwrap();
    let want =
        evs.iter().filter(|e| e["objectRef"]["namespace"] == "default" && e["responseStatus"]["code"] == 403).count()
            as u64;
    assert_eq!(r.overview.total, want);
    assert!(want > 0);
    let r = b.report(&Filter::from_json(r#"{"last":"all","user":"system:admin"}"#).unwrap()).unwrap();
    assert_eq!(r.overview.total, evs.iter().filter(|e| e["user"]["username"] == "system:admin").count() as u64);
    let r = b.report(&Filter { namespace: vec!["no-such-namespace".into()], ..all() }).unwrap();
    assert_eq!(r.overview.total, 0);
    assert!(Filter::from_json(r#"{"bogus":1}"#).is_err());
    assert_eq!(Filter::from_json(r#"{"code":["403", 200]}"#).unwrap().code, [403, 200]);
    assert!(b.report(&Filter { from: Some("yesterday".into()), ..Filter::default() }).is_err());
}

#[test]
fn standing_and_raw_queries_agree_with_kaudit_query() {
    let q = "verb: create and not objectRef.namespace: default";
    let mut standing = ReportBuilder::default();
    standing.add_standing_query(Query::parse(q).unwrap()).unwrap();
    standing.push_input(&sample(), &Enricher::default());
    let raw = builder(BuilderOptions { raw_bytes: 1 << 20, ..BuilderOptions::default() });
    let f = Filter { query: Some(q.into()), ..all() };
    let a = standing.report(&f).unwrap();
    let b = raw.report(&f).unwrap();
    assert_eq!(a.overview, b.overview);
    assert_eq!(a.operations, b.operations);
    let evs = events();
    let want = evs.iter().filter(|e| e["verb"] == "create" && e["objectRef"]["namespace"] != "default").count() as u64;
    assert_eq!(a.overview.total, want);
    // Cached query results stay right when the other filters change, and when the query changes.
    for ns in ["default", "", "kube-system"] {
        let f = Filter { namespace: vec![ns.into()], ..f.clone() };
        assert_eq!(standing.report(&f).unwrap().to_json(), raw.report(&f).unwrap().to_json(), "{ns:?}");
    }
    assert_eq!(
        raw.report(&Filter { query: Some("verb: list".into()), ..all() }).unwrap().overview.total,
        evs.iter().filter(|e| e["verb"] == "list").count() as u64
    );
    assert_eq!(raw.report(&f).unwrap().overview.total, want);
    // Enrichment fields are queryable like in `kaudit query`.
    let r = raw.report(&Filter { query: Some("kaudit.operation: delete".into()), ..all() }).unwrap();
    assert_eq!(r.overview.total, r.overview.important.resource_deletion.count);
    // Without raw text or a standing query an ad-hoc query is refused.
    let none = builder(BuilderOptions::default());
    let err = none.report(&f).unwrap_err();
    assert_eq!(err.field, "query");
    assert!(none.report(&Filter { query: Some("verb: (".into()), ..all() }).is_err());
}

#[test]
fn bounded_stores_evict_the_oldest() {
    // A live stream arrives roughly in time order: push the sample sorted by time.
    let mut lines: Vec<String> = String::from_utf8(sample()).unwrap().lines().map(str::to_string).collect();
    lines.sort_by_key(|l| time_of(&serde_json::from_str(l).unwrap()));
    let input = lines.join("\n");
    let push = |options| {
        let mut b = ReportBuilder::new(options);
        assert_eq!(b.push_input(input.as_bytes(), &Enricher::default()), (88, 0));
        b
    };
    let full = push(BuilderOptions { raw_bytes: 1 << 20, ..BuilderOptions::default() });
    let small = push(BuilderOptions { detail_bytes: 4096, raw_bytes: 8192, ..BuilderOptions::default() });
    assert!(small.details.held <= 4096 && small.raw.held <= 8192);
    let a = full.report(&all()).unwrap();
    let b = small.report(&all()).unwrap();
    // Counts never depend on the budgets.
    assert_eq!(a.overview.total, b.overview.total);
    assert_eq!(a.operations, b.operations);
    assert!(b.input.details_dropped > 0 && b.input.details_dropped < 88);
    assert!(small.raw_kept() > 0 && small.raw_kept() < 88);
    // The newest events keep their details and raw text.
    let last = small.rows.len() - 1;
    assert!(small.details_of(last).is_some());
    assert_eq!(small.details_of(last), full.details_of(last));
    assert_eq!(small.raw_of(last), full.raw_of(last));
    // A query over rows whose raw text was evicted is refused, over the kept ones it works.
    let q = Some("verb: create or verb: get".to_string());
    assert!(small.report(&Filter { query: q.clone(), ..all() }).is_err());
    let first_kept = small.rows.get(small.raw_first_row).unwrap().time;
    let from = crate::event::time::format_micros(first_kept + 1);
    let recent = Filter { query: q, from: Some(from), ..all() };
    let (x, y) = (small.report(&recent).unwrap().overview, full.report(&recent).unwrap().overview);
    assert_eq!(x, y);
    assert!(x.total > 0);
}

#[test]
fn report_json_is_deterministic_and_versioned() {
    let a = builder(BuilderOptions::default()).report(&Filter::default()).unwrap().to_json();
    let b = builder(BuilderOptions::default()).report(&Filter::default()).unwrap().to_json();
    assert_eq!(a, b);
    let v: Json = serde_json::from_str(&a).unwrap();
    assert_eq!(v["schema"], SCHEMA);
    assert!(v["overview"]["important"]["commandExecution"]["events"].is_array());
}

#[test]
fn block_arena_keeps_the_newest_entries_within_budget() {
    let mut a = builder::BlockArena::new(64 * 1024);
    let mut offsets = Vec::new();
    for i in 0..10_000 {
        let text = format!("entry-{i:05}");
        offsets.push((a.push(&[&text, "|"]).unwrap(), text));
        assert!(a.held <= 64 * 1024);
    }
    let kept: Vec<_> = offsets.iter().filter(|(o, _)| a.get(*o, 11).is_some()).collect();
    assert!(kept.len() > 1000 && kept.len() < 10_000, "{}", kept.len());
    // What is kept is exactly the newest entries, intact.
    assert_eq!(kept.first().map(|k| k.0), Some(a.start));
    for (o, text) in &kept {
        assert_eq!(a.get(*o, text.len() + 1), Some(format!("{text}|").as_str()));
    }
    assert!(a.push(&["x"; 1]).is_some());
    assert_eq!(builder::BlockArena::new(8).push(&["too long for the budget"]), None);
}

#[test]
fn a_long_live_stream_stays_within_its_budgets() {
    let options = BuilderOptions { detail_bytes: 64 * 1024, raw_bytes: 256 * 1024, ..BuilderOptions::default() };
    let mut b = ReportBuilder::new(options);
    let sample = sample();
    for _ in 0..100 {
        b.push_input(&sample, &Enricher::default());
    }
    assert_eq!(b.len(), 8800);
    assert!(b.details.held <= 64 * 1024 && b.raw.held <= 256 * 1024);
    let r = b.report(&all()).unwrap();
    assert_eq!(r.overview.total, 8800);
    assert_eq!(r.input.details_dropped, b.details_dropped());
    assert!(r.input.details_dropped > 8000);
    // Listed events carry details when kept and say so when not.
    for e in &r.overview.important.resource_deletion.events {
        assert_eq!(e.audit_id.is_empty(), e.details_dropped);
    }
    assert!(b.details_of(b.len() - 1).is_some() && b.raw_of(b.len() - 1).is_some());
    // Rows cost ROW_BYTES each; everything else is bounded by the budgets and distinct strings.
    // One chunk of rows (16384) is allocated at a time; the raw index grows by doubling.
    assert!(
        b.memory_bytes() < (1 << 14) * ROW_BYTES + 64 * 1024 + 256 * 1024 + 16384 * 16 + 64 * 1024,
        "{}",
        b.memory_bytes()
    );
}

#[test]
fn last_takes_the_shared_duration_grammar_and_must_be_positive() {
    let last = |t: &str| Filter { last: Some(t.into()), ..Filter::default() }.last_micros();
    // What reports accepted before the grammars were merged.
    for (t, micros) in [("15m", 900), ("24h", 86_400), ("7d", 604_800), ("2w", 1_209_600), (" 30s ", 30)] {
        assert_eq!(last(t), Ok(Some(micros * 1_000_000)), "{t}");
    }
    // Added by the alerts' grammar: compounds and milliseconds.
    assert_eq!(last("1h30m"), Ok(Some(5_400_000_000)));
    assert_eq!(last("1500ms"), Ok(Some(1_500_000)));
    assert_eq!(last("all"), Ok(None));
    // Still refused: zero (an empty range), no unit, unknown units.
    for t in ["0", "0s", "5", "5y", "-1h", "soon"] {
        let e = last(t).unwrap_err();
        assert_eq!(e.field, "last", "{t}");
        assert!(e.message.starts_with("expected a duration like 15m"), "{t}: {}", e.message);
    }
}
