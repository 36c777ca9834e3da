//! Alert rules: a query per rule, output fields, optional aggregation over event-time windows
//! with bounded state; rule packs (kaudit YAML packs, the Falco k8saudit translation, Sigma).
//!
//! * `rule`: the rule model and its YAML decoding (shared by the config and packs);
//! * `engine`: evaluation on kept events ([`AlertEngine::observe`]);
//! * `state`: bounded per-group state (LRU groups, bucketed windows);
//! * `output`: the alert JSON object;
//! * `sigma`: the Sigma compiler.
//!
//! Reference: docs/ALERTS.md (rules, semantics, schema) and docs/CONFIG.md (`alerts:`).

mod engine;
mod output;
pub mod rule;
pub mod sigma;
mod state;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::config::FileSource;
use crate::query::QueryLimits;
use crate::yaml::{self, Ctx, Diagnostic, Kind, Node};

pub use engine::{AlertEngine, AlertStats};
use rule::Lists;
pub use rule::{Rule, Severity};

/// The seed's alert examples and important operations (the embedded default rules).
pub const DEFAULT_RULES: &str = include_str!("../../rules/default-alerts.yaml");
/// kaudit's translation of Falco's k8saudit rules that are on by default.
pub const FALCO_PACK: &str = include_str!("../../rules/falco-k8saudit.yaml");

/// Packs built into the engine, by the name used in `alerts.packs` (`builtin:<name>`).
const BUILTIN_PACKS: &[(&str, &str, &str)] = &[("falco-k8saudit", "<builtin falco-k8saudit.yaml>", FALCO_PACK)];

/// Resource bounds of the alert engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertLimits {
    /// Groups kept per rule; the least recently updated is evicted beyond this.
    pub max_groups: usize,
    /// Distinct values tracked per `distinct()` aggregate and group.
    pub max_distinct: usize,
    /// auditIDs listed in one alert (the most recent in the window).
    pub max_audit_ids: usize,
    /// Compiled size allowed for each regex in the rules' queries (checked at load).
    pub max_regex_bytes: usize,
}

impl Default for AlertLimits {
    fn default() -> Self {
        AlertLimits {
            max_groups: 10_000,
            max_distinct: 1_000,
            max_audit_ids: 10,
            max_regex_bytes: QueryLimits::default().max_regex_bytes,
        }
    }
}

/// The `alerts` section of the config: rules, rule packs, limits.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    pub enabled: bool,
    /// Compiled rules, in evaluation order (shared by every engine built from the config).
    pub rules: Vec<Arc<Rule>>,
    pub limits: AlertLimits,
}

impl Default for AlertConfig {
    /// No rules.
    fn default() -> Self {
        AlertConfig { enabled: true, rules: Vec::new(), limits: AlertLimits::default() }
    }
}

impl AlertConfig {
    /// The embedded default: the seed's alert examples and important operations.
    pub fn embedded_default() -> AlertConfig {
        let mut cfg = AlertConfig::default();
        // The embedded file is checked by tests; should it ever fail, no rules is the safe state.
        if let Ok(rules) =
            load_pack_text(DEFAULT_RULES, "<embedded default-alerts.yaml>", &Lists::new(), QueryLimits::default())
        {
            cfg.rules = rules.into_iter().map(Arc::new).collect();
        }
        cfg
    }

    /// The rule named `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().map(|r| r.as_ref()).find(|r| r.name == name)
    }
}

/// Keys of the `alerts` section.
const ALERT_KEYS: &[&str] = &["enabled", "defaultRules", "packs", "lists", "disable", "limits", "rules"];
const LIMIT_KEYS: &[&str] = &["maxGroups", "maxDistinct", "maxAuditIDs", "maxRegexBytes"];
const PACK_KEYS: &[&str] = &["name", "description", "lists", "rules"];

/// Decodes the config's `alerts` section.
pub fn decode_config(ctx: &mut Ctx, node: &Node, files: &dyn FileSource) -> Result<AlertConfig, Diagnostic> {
    if matches!(node.kind, Kind::Null) {
        return Ok(AlertConfig::embedded_default());
    }
    let entries = rule::strict_map(ctx, node, ALERT_KEYS)?;
    let get = |k: &str| entries.iter().find(|(key, _)| key.name == k).map(|(key, v)| (*key, *v));
    let mut cfg = AlertConfig::default();
    if let Some((_, v)) = get("enabled") {
        cfg.enabled = ctx.at("enabled", |c| c.bool(v))?;
    }
    if let Some((_, v)) = get("limits") {
        ctx.at("limits", |c| -> Result<(), Diagnostic> {
            for (k, n) in rule::strict_map(c, v, LIMIT_KEYS)? {
                let value = c.at(&k.name, |c| {
                    let x = c.u64(n)?;
                    if x == 0 || x > 100_000_000 {
                        return Err(c.error(n.pos, "expected a number from 1 to 100000000"));
                    }
                    Ok(x as usize)
                })?;
                match k.name.as_str() {
                    "maxGroups" => cfg.limits.max_groups = value,
                    "maxDistinct" => cfg.limits.max_distinct = value,
                    "maxRegexBytes" => cfg.limits.max_regex_bytes = value,
                    _ => cfg.limits.max_audit_ids = value,
                }
            }
            Ok(())
        })?;
    }
    let query_limits = QueryLimits { max_regex_bytes: cfg.limits.max_regex_bytes };
    // Lists first: the config's lists override a pack's lists of the same name.
    let mut config_lists = Lists::new();
    if let Some((_, v)) = get("lists") {
        ctx.at("lists", |c| rule::decode_lists(c, v, &mut config_lists))?;
    }
    let mut rules: Vec<(Rule, String)> = Vec::new();
    let defaults = match get("defaultRules") {
        Some((_, v)) => ctx.at("defaultRules", |c| c.bool(v))?,
        None => true,
    };
    if defaults {
        for r in load_pack_text(DEFAULT_RULES, "<embedded default-alerts.yaml>", &Lists::new(), query_limits)? {
            rules.push((r, "the embedded default rules".into()));
        }
    }
    if let Some((_, v)) = get("packs") {
        ctx.at("packs", |c| -> Result<(), Diagnostic> {
            let entries = c.list(v, |c, n| Ok((c.string(n)?, n.pos)))?;
            for (i, (entry, pos)) in entries.into_iter().enumerate() {
                let loaded = c.at_index(i, |c| load_pack_entry(c, &entry, pos, files, &config_lists, query_limits))?;
                for r in loaded {
                    add_rule(c, &mut rules, r, &entry, pos)?;
                }
            }
            Ok(())
        })?;
    }
    if let Some((_, v)) = get("rules") {
        ctx.at("rules", |c| -> Result<(), Diagnostic> {
            let Kind::Seq(items) = &v.kind else {
                if matches!(v.kind, Kind::Null) {
                    return Ok(());
                }
                return Err(c.error(v.pos, format!("expected a list of rules, found {}", v.type_name())));
            };
            for (i, item) in items.iter().enumerate() {
                c.at_index(i, |c| -> Result<(), Diagnostic> {
                    // A Sigma rule may be written inline (hosts without files cannot read packs).
                    let decoded = if sigma::is_sigma(item) {
                        Some(sigma::compile(c, item, query_limits)?)
                    } else {
                        rule::decode_rule(c, item, "config", &config_lists, query_limits)?
                    };
                    if let Some(r) = decoded {
                        add_rule(c, &mut rules, r, "the config", item.pos)?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    }
    if let Some((_, v)) = get("disable") {
        ctx.at("disable", |c| -> Result<(), Diagnostic> {
            let names = c.list(v, |c, n| Ok((c.string(n)?, n.pos)))?;
            for (name, pos) in names {
                let before = rules.len();
                rules.retain(|(r, _)| r.name != name);
                if rules.len() == before {
                    return Err(c.error(pos, format!("no rule named {name:?} to disable")));
                }
            }
            Ok(())
        })?;
    }
    cfg.rules = rules.into_iter().map(|(r, _)| Arc::new(r)).collect();
    Ok(cfg)
}

/// Adds a rule unless its name is taken.
fn add_rule(c: &Ctx, rules: &mut Vec<(Rule, String)>, r: Rule, origin: &str, pos: yaml::Pos) -> Result<(), Diagnostic> {
    if let Some((_, first)) = rules.iter().find(|(x, _)| x.name == r.name) {
        return Err(c.error(pos, format!("rule {:?} from {origin} is already defined by {first}; rename it, or disable the other one with alerts.disable", r.name)));
    }
    rules.push((r, origin.to_string()));
    Ok(())
}

/// Loads one `packs` entry: `builtin:<name>`, or a file read through `files` (a kaudit pack,
/// or a Sigma rule).
fn load_pack_entry(
    c: &Ctx,
    entry: &str,
    pos: yaml::Pos,
    files: &dyn FileSource,
    config_lists: &Lists,
    limits: QueryLimits,
) -> Result<Vec<Rule>, Diagnostic> {
    if let Some(name) = entry.strip_prefix("builtin:") {
        let Some((_, file, text)) = BUILTIN_PACKS.iter().find(|(n, _, _)| *n == name) else {
            let names: Vec<String> = BUILTIN_PACKS.iter().map(|(n, _, _)| format!("builtin:{n}")).collect();
            return Err(c.error(pos, format!("unknown built-in pack {entry:?} (available: {})", names.join(", "))));
        };
        return load_pack_text(text, file, config_lists, limits);
    }
    if entry.ends_with('/') {
        // A directory: every .yml/.yaml file in it, in name order (e.g. a Sigma rules folder).
        let names = files.list(entry).map_err(|e| c.error(pos, format!("cannot list rule-pack directory: {e}")))?;
        let mut rules = Vec::new();
        for name in names.iter().filter(|n| n.ends_with(".yml") || n.ends_with(".yaml")) {
            let path = format!("{entry}{name}");
            let bytes = files.read(&path).map_err(|e| c.error(pos, format!("cannot read rule pack: {e}")))?;
            let text = String::from_utf8(bytes).map_err(|_| c.error(pos, format!("{path}: not UTF-8 text")))?;
            rules.extend(load_pack_text(&text, &path, config_lists, limits)?);
        }
        return Ok(rules);
    }
    let bytes = files.read(entry).map_err(|e| c.error(pos, format!("cannot read rule pack: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| c.error(pos, format!("{entry}: not UTF-8 text")))?;
    load_pack_text(&text, entry, config_lists, limits)
}

/// Loads a pack document: a kaudit pack (`rules:`) or one Sigma rule (`detection:`).
/// `file` names it in errors; `config_lists` override the pack's own lists.
pub fn load_pack_text(
    text: &str,
    file: &str,
    config_lists: &Lists,
    limits: QueryLimits,
) -> Result<Vec<Rule>, Diagnostic> {
    let node = yaml::parse(text, file)?;
    let mut warnings = Vec::new();
    let mut c = Ctx::new(file, &mut warnings);
    if sigma::is_sigma(&node) {
        return Ok(vec![sigma::compile(&mut c, &node, limits)?]);
    }
    let entries = rule::strict_map(&mut c, &node, PACK_KEYS)?;
    let get = |k: &str| entries.iter().find(|(key, _)| key.name == k).map(|(_, v)| *v);
    let source = match get("name") {
        Some(n) => c.at("name", |c| c.string(n))?,
        None => file.rsplit('/').next().unwrap_or(file).trim_end_matches(".yaml").trim_end_matches(".yml").to_string(),
    };
    let mut lists = Lists::new();
    if let Some(l) = get("lists") {
        c.at("lists", |c| rule::decode_lists(c, l, &mut lists))?;
    }
    for (k, v) in config_lists {
        lists.insert(k.clone(), v.clone());
    }
    let Some(rules_node) = get("rules") else {
        return Err(c.error(node.pos, "a rule pack needs `rules:` (or, for a Sigma rule, `detection:`)"));
    };
    let mut out = Vec::new();
    c.at("rules", |c| -> Result<(), Diagnostic> {
        let Kind::Seq(items) = &rules_node.kind else {
            return Err(c.error(rules_node.pos, format!("expected a list of rules, found {}", rules_node.type_name())));
        };
        for (i, item) in items.iter().enumerate() {
            c.at_index(i, |c| -> Result<(), Diagnostic> {
                if let Some(r) = rule::decode_rule(c, item, &source, &lists, limits)? {
                    if out.iter().any(|x: &Rule| x.name == r.name) {
                        return Err(c.error(item.pos, format!("duplicate rule name {:?}", r.name)));
                    }
                    out.push(r);
                }
                Ok(())
            })?;
        }
        Ok(())
    })?;
    Ok(out)
}
