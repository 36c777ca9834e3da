//! `kaudit policy check` and `kaudit policy impact`.

use crate::exit::Status;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kaudit::for_each_event;
use kaudit::Evaluator;
use kaudit::{verdict, write_event, DropReason, Verdict};
use kaudit::{Level, Policy};

pub fn check(file: &Path) -> Result<Status, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    match Policy::load(&text, &file.display().to_string()) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                crate::term::say!("kaudit: warning: {w}");
            }
            println!(
                "{}: valid {} policy with {} rules",
                crate::term::field(&file.display().to_string()),
                loaded.policy.api_version,
                loaded.policy.rules.len()
            );
            Ok(Status::Success)
        }
        Err(e) => {
            for w in &e.warnings {
                crate::term::say!("kaudit: warning: {w}");
            }
            for err in &e.errors {
                crate::term::say!("kaudit: error: {err}");
            }
            eprintln!(
                "{}: invalid policy ({} errors)",
                crate::term::field(&file.display().to_string()),
                e.errors.len()
            );
            Ok(Status::Negative)
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    events: u64,
    kept: u64,
    bytes_before: u64,
    bytes_after: u64,
}

impl Tally {
    fn add(&mut self, kept: bool, before: usize, after: usize) {
        self.events += 1;
        self.kept += u64::from(kept);
        self.bytes_before += before as u64;
        self.bytes_after += after as u64;
    }
}

pub fn impact(policy_file: &Path, logs: &[PathBuf], json: bool) -> Result<Status, String> {
    let text = std::fs::read_to_string(policy_file).map_err(|e| format!("{}: {e}", policy_file.display()))?;
    let loaded = Policy::load(&text, &policy_file.display().to_string()).map_err(|e| e.to_string())?;
    let evaluator = Evaluator::new(loaded.policy);
    let mut by_rule: BTreeMap<Option<usize>, (Level, Tally)> = BTreeMap::new();
    let mut before_levels: BTreeMap<String, Tally> = BTreeMap::new();
    let mut after_levels: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    // Bytes saved per cause: a stage omitted, a rule's level None, a rule's level cutting bodies.
    let mut savings: BTreeMap<Cause, Tally> = BTreeMap::new();
    let mut bad = 0u64;
    let mut out = String::new();
    // Streamed like `run`: a recorded log of any size, gzip included.
    let max_event_bytes = kaudit::Limits::default().max_event_bytes;
    crate::input::for_each_record(logs, max_event_bytes, &mut |item| {
        let crate::input::Item::Record { record, .. } = item else { return Ok(()) };
        for_each_event(record.bytes, &mut |_, parsed| {
            let Ok(event) = parsed else {
                bad += 1;
                return;
            };
            let decision = evaluator.evaluate_event(&event);
            let size = event.obj.text.trim().len();
            let (kept, after, level) = match verdict(&decision, &event) {
                Verdict::Drop(reason) => {
                    let cause = match reason {
                        DropReason::OmittedStage => Cause::Stage(event.stage.to_string()),
                        _ => Cause::Dropped(decision.rule),
                    };
                    savings.entry(cause).or_default().add(false, size, 0);
                    (false, 0, "None (dropped)")
                }
                Verdict::Keep(changes) => {
                    out.clear();
                    write_event(&event, &changes, &[], &mut out);
                    let written = changes
                        .new_level
                        .map_or_else(|| event.level.as_deref().unwrap_or("?").to_string(), |l| l.as_str().to_string());
                    if out.len() < size {
                        savings.entry(Cause::Trimmed(decision.rule)).or_default().add(true, size, out.len());
                    }
                    (true, out.len(), level_name(&written))
                }
            };
            by_rule.entry(decision.rule).or_insert((decision.level, Tally::default())).1.add(kept, size, after);
            let recorded = event.level.as_deref().unwrap_or("(none)").to_string();
            before_levels.entry(recorded).or_default().add(true, size, size);
            after_levels.entry(level).or_default().add(kept, size, after);
            total.add(kept, size, after);
        });
        Ok(())
    })?;
    let rules = evaluator.policy().rules.clone();
    if json {
        let mut s = String::from("{\"rules\":[");
        for (i, (rule, (level, t))) in by_rule.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let line = rule.and_then(|r| rules.get(r)).map_or("null".to_string(), |r| r.line.to_string());
            let idx = rule.map_or("null".to_string(), |r| r.to_string());
            s.push_str(&format!(
                "{{\"rule\":{idx},\"line\":{line},\"level\":\"{}\",{}}}",
                level.as_str(),
                tally_json(t)
            ));
        }
        s.push_str("],\"recordedLevels\":{");
        s.push_str(&levels_json(before_levels.iter().map(|(k, v)| (k.as_str(), v))));
        s.push_str("},\"writtenLevels\":{");
        s.push_str(&levels_json(after_levels.iter().map(|(k, v)| (*k, v))));
        s.push_str("},\"savings\":[");
        for (i, (cause, t)) in sorted_savings(&savings).into_iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let (kind, rule) = match cause {
                Cause::Stage(stage) => (format!("omitStages {stage}"), None),
                Cause::Dropped(r) => ("level None".to_string(), *r),
                Cause::Trimmed(r) => ("bodies cut by the level".to_string(), *r),
            };
            let mut kind_json = String::new();
            kaudit::write_json_str(&mut kind_json, &kind);
            let line = rule.and_then(|r| rules.get(r)).map_or("null".to_string(), |r| r.line.to_string());
            let idx = rule.map_or("null".to_string(), |r| r.to_string());
            s.push_str(&format!(
                "{{\"cause\":{kind_json},\"rule\":{idx},\"line\":{line},\"events\":{},\"bytesSaved\":{}}}",
                t.events,
                t.bytes_before - t.bytes_after
            ));
        }
        s.push_str(&format!("],\"total\":{{{}}},\"bad\":{bad}}}", tally_json(&total)));
        crate::term::print_data(&s);
    } else {
        println!(
            "{:<8} {:>5} {:<16} {:>10} {:>10} {:>14} {:>14}",
            "rule", "line", "level", "events", "kept", "bytes before", "bytes after"
        );
        for (rule, (level, t)) in &by_rule {
            let (name, line) = match rule {
                Some(r) => (r.to_string(), rules.get(*r).map_or(0, |x| x.line).to_string()),
                None => ("no match".to_string(), "-".to_string()),
            };
            println!(
                "{:<8} {:>5} {:<16} {:>10} {:>10} {:>14} {:>14}",
                name,
                line,
                level.as_str(),
                t.events,
                t.kept,
                t.bytes_before,
                t.bytes_after
            );
        }
        println!("\nrecorded level    events          bytes");
        for (level, t) in &before_levels {
            println!("{:<16} {:>7} {:>14}", crate::term::field(level), t.events, t.bytes_before);
        }
        println!("\nwritten level     events          bytes");
        for (level, t) in &after_levels {
            println!("{:<16} {:>7} {:>14}", crate::term::field(level), t.events, t.bytes_after);
        }
        let share = |b: u64| if total.bytes_before > 0 { 100.0 * b as f64 / total.bytes_before as f64 } else { 0.0 };
        println!("\nwhere the savings come from (bytes saved, share of the bytes recorded)");
        for (cause, t) in sorted_savings(&savings) {
            let saved = t.bytes_before - t.bytes_after;
            let what = match cause {
                Cause::Stage(stage) => {
                    format!("omitStages: {} events at stage {} not written", t.events, crate::term::field(stage))
                }
                Cause::Dropped(r) => format!("{}: level None drops {} events", rule_name(&rules, *r), t.events),
                Cause::Trimmed(r) => {
                    let level = r.and_then(|r| rules.get(r)).map_or("?", |x| x.level.as_str());
                    format!("{}: level {level} cuts the bodies of {} events", rule_name(&rules, *r), t.events)
                }
            };
            println!("{saved:>14} {:>5.1}%  {what}", share(saved));
            if let Some(rule) = cause.rule().and_then(|r| rules.get(r)) {
                println!("{:22}{}", "", crate::term::field(&describe(rule)));
            }
        }
        let pct = share(total.bytes_after);
        println!(
            "\ntotal: {} events, {} kept; {} bytes recorded, {} bytes under this policy ({pct:.1}%); {bad} bad records",
            total.events, total.kept, total.bytes_before, total.bytes_after
        );
    }
    Ok(Status::Success)
}

/// Why bytes were saved (ordered for the map; the report sorts by bytes saved).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Cause {
    /// The stage is in the effective omitStages.
    Stage(String),
    /// The matching rule's level is None.
    Dropped(Option<usize>),
    /// The matching rule's level writes less than was recorded (bodies, managed fields).
    Trimmed(Option<usize>),
}

impl Cause {
    fn rule(&self) -> Option<usize> {
        match self {
            Cause::Stage(_) => None,
            Cause::Dropped(r) | Cause::Trimmed(r) => *r,
        }
    }
}

fn sorted_savings(savings: &BTreeMap<Cause, Tally>) -> Vec<(&Cause, &Tally)> {
    let mut v: Vec<(&Cause, &Tally)> = savings.iter().filter(|(_, t)| t.bytes_before > t.bytes_after).collect();
    v.sort_by_key(|(_, t)| std::cmp::Reverse(t.bytes_before - t.bytes_after));
    v
}

fn rule_name(rules: &[kaudit::PolicyRule], rule: Option<usize>) -> String {
    match rule.and_then(|r| rules.get(r).map(|x| (r, x.line))) {
        Some((r, line)) => format!("rule {r} (line {line})"),
        None => "no rule".to_string(),
    }
}

/// What a rule matches, in one line: `users [...] verbs [...] resources [group/...]`.
fn describe(rule: &kaudit::PolicyRule) -> String {
    fn list(name: &str, items: &[String], out: &mut Vec<String>) {
        if items.is_empty() {
            return;
        }
        let shown: Vec<&str> = items.iter().take(4).map(String::as_str).collect();
        let more = if items.len() > 4 { format!(", +{} more", items.len() - 4) } else { String::new() };
        out.push(format!("{name} [{}{more}]", shown.join(", ")));
    }
    let mut parts = Vec::new();
    list("users", &rule.users, &mut parts);
    list("userGroups", &rule.user_groups, &mut parts);
    list("verbs", &rule.verbs, &mut parts);
    let resources: Vec<String> = rule
        .resources
        .iter()
        .map(|g| {
            let group = if g.group.is_empty() { "core" } else { g.group.as_str() };
            if g.resources.is_empty() {
                format!("{group}/*")
            } else {
                format!("{group}/{}", g.resources.join("|"))
            }
        })
        .collect();
    list("resources", &resources, &mut parts);
    list("namespaces", &rule.namespaces, &mut parts);
    list("nonResourceURLs", &rule.non_resource_urls, &mut parts);
    if parts.is_empty() {
        "every other request".to_string()
    } else {
        parts.join(" ")
    }
}

fn level_name(s: &str) -> &'static str {
    match s {
        "Metadata" => "Metadata",
        "Request" => "Request",
        "RequestResponse" => "RequestResponse",
        _ => "other",
    }
}

fn tally_json(t: &Tally) -> String {
    format!(
        "\"events\":{},\"kept\":{},\"bytesBefore\":{},\"bytesAfter\":{}",
        t.events, t.kept, t.bytes_before, t.bytes_after
    )
}

fn levels_json<'a>(it: impl Iterator<Item = (&'a str, &'a Tally)>) -> String {
    it.map(|(k, t)| {
        let mut key = String::new();
        kaudit::write_json_str(&mut key, k);
        format!("{key}:{{{}}}", tally_json(t))
    })
    .collect::<Vec<_>>()
    .join(",")
}
