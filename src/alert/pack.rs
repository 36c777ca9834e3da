//! Rule packs: the embedded default rules, the built-in packs (`builtin:<name>`), and pack
//! files or directories read through the host's [`FileSource`] (kaudit packs or Sigma rules).

use super::decode::decode_rule;
use super::lists::{decode_lists, Lists};
use super::rule::Rule;
use super::sigma;
use crate::files::{read_text, FileSource};
use crate::query::QueryLimits;
use crate::yaml::{self, Ctx, Diagnostic, DiagnosticKind, Kind};

/// The seed's alert examples and important operations (the embedded default rules).
pub const DEFAULT_RULES: &str = include_str!("../../rules/default-alerts.yaml");
/// kaudit's translation of Falco's k8saudit rules that are on by default.
pub const FALCO_PACK: &str = include_str!("../../rules/falco-k8saudit.yaml");

/// Packs built into the engine, by the name used in `alerts.packs` (`builtin:<name>`).
const BUILTIN_PACKS: &[(&str, &str, &str)] = &[("falco-k8saudit", "<builtin falco-k8saudit.yaml>", FALCO_PACK)];

const PACK_KEYS: &[&str] = &["name", "description", "lists", "rules"];

/// Loads one `packs` entry: `builtin:<name>`, or a file read through `files` (a kaudit pack,
/// or a Sigma rule).
pub(super) fn load_pack_entry(
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
        let names = files
            .list(entry)
            .map_err(|e| c.problem(DiagnosticKind::File, pos, format!("cannot list rule-pack directory: {e}")))?;
        let mut rules = Vec::new();
        for name in names.iter().filter(|n| n.ends_with(".yml") || n.ends_with(".yaml")) {
            let path = format!("{entry}{name}");
            let text = read_text(c, files, &path, pos, "rule pack")?;
            rules.extend(load_pack_text(&text, &path, config_lists, limits)?);
        }
        return Ok(rules);
    }
    let text = read_text(c, files, entry, pos, "rule pack")?;
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
    let entries = c.strict_map(&node, PACK_KEYS)?;
    let get = |k: &str| entries.iter().find(|(key, _)| key.name == k).map(|(_, v)| *v);
    let source = match get("name") {
        Some(n) => c.at("name", |c| c.string(n))?,
        None => file.rsplit('/').next().unwrap_or(file).trim_end_matches(".yaml").trim_end_matches(".yml").to_string(),
    };
    let mut lists = Lists::new();
    if let Some(l) = get("lists") {
        c.at("lists", |c| decode_lists(c, l, &mut lists))?;
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
                if let Some(r) = decode_rule(c, item, &source, &lists, limits)? {
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
