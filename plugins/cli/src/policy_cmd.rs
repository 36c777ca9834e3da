//! `kaudit policy check` and `kaudit policy impact`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kaudit::event::framing::for_each_event;
use kaudit::policy::apply::{self, Verdict};
use kaudit::policy::Evaluator;
use kaudit::{Level, Policy};

pub fn check(file: &Path) -> Result<ExitCode, String> {
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
            Ok(ExitCode::SUCCESS)
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
            Ok(ExitCode::from(1))
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

pub fn impact(policy_file: &Path, logs: &[PathBuf], json: bool) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(policy_file).map_err(|e| format!("{}: {e}", policy_file.display()))?;
    let loaded = Policy::load(&text, &policy_file.display().to_string()).map_err(|e| e.to_string())?;
    let evaluator = Evaluator::new(loaded.policy);
    let mut by_rule: BTreeMap<Option<usize>, (Level, Tally)> = BTreeMap::new();
    let mut before_levels: BTreeMap<String, Tally> = BTreeMap::new();
    let mut after_levels: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut bad = 0u64;
    let mut out = String::new();
    for log in logs {
        let bytes = std::fs::read(log).map_err(|e| format!("{}: {e}", log.display()))?;
        for_each_event(&bytes, &mut |_, _, parsed| {
            let Ok(event) = parsed else {
                bad += 1;
                return;
            };
            let decision = evaluator.evaluate_event(&event);
            let size = event.obj.text.trim().len();
            let (kept, after, level) = match apply::verdict(&decision, &event) {
                Verdict::Drop(_) => (false, 0, "None (dropped)"),
                Verdict::Keep(changes) => {
                    out.clear();
                    apply::write_event(&event, &changes, &[], &mut out);
                    let written = changes
                        .new_level
                        .map_or_else(|| event.level.as_deref().unwrap_or("?").to_string(), |l| l.as_str().to_string());
                    (true, out.len(), level_name(&written))
                }
            };
            by_rule.entry(decision.rule).or_insert((decision.level, Tally::default())).1.add(kept, size, after);
            let recorded = event.level.as_deref().unwrap_or("(none)").to_string();
            before_levels.entry(recorded).or_default().add(true, size, size);
            after_levels.entry(level).or_default().add(kept, size, after);
            total.add(kept, size, after);
        });
    }
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
        s.push_str(&format!("}},\"total\":{{{}}},\"bad\":{bad}}}", tally_json(&total)));
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
        let pct =
            if total.bytes_before > 0 { 100.0 * total.bytes_after as f64 / total.bytes_before as f64 } else { 0.0 };
        println!(
            "\ntotal: {} events, {} kept; {} bytes recorded, {} bytes under this policy ({pct:.1}%); {bad} bad records",
            total.events, total.kept, total.bytes_before, total.bytes_after
        );
    }
    Ok(ExitCode::SUCCESS)
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
        kaudit::event::raw::write_json_str(&mut key, k);
        format!("{key}:{{{}}}", tally_json(t))
    })
    .collect::<Vec<_>>()
    .join(",")
}
