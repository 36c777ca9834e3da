//! One alert rule: its compiled query, extra checks, output fields and optional aggregation,
//! and how a rule is decoded from YAML (the config's `alerts.rules`, kaudit rule packs).
//!
//! Everything is compiled here, once: queries (with `${list}` references expanded), field
//! paths, durations. Evaluation (`engine.rs`) never parses.

use std::collections::HashMap;

use crate::query::{Document, FieldPath, Query, QueryLimits, Value};
use crate::yaml::{Ctx, Diagnostic, Kind, Node};

/// Alert severities, lowest first. Falco priorities and Sigma levels map onto this scale
/// (docs/ALERTS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// For information.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The names, from lowest to highest.
    pub const NAMES: &'static [&'static str] = &["info", "low", "medium", "high", "critical"];

    /// The severity named `s` (lower case).
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    /// The name as written in alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Named lists that queries and checks refer to as `${name}` (Falco-style lists).
pub type Lists = HashMap<String, Vec<String>>;

/// A compiled alert rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `name`: unique over all loaded rules.
    pub name: String,
    /// `severity`.
    pub severity: Severity,
    /// Where the rule comes from: `config`, `default`, a pack's name, `sigma`.
    pub source: String,
    /// `description`.
    pub description: String,
    /// `tags`.
    pub tags: Vec<String>,
    /// `query`: which events match.
    pub query: Query,
    /// The rule does not fire when one of these holds (Falco's `not list_field in (...)`).
    pub unless_all: Vec<UnlessAll>,
    /// The rule fires only when this holds (Falco's `contains` on a serialised object).
    pub json_contains: Option<JsonContains>,
    /// Output fields, in order: name and the path read from the triggering event.
    pub fields: Vec<(String, FieldPath)>,
    /// `groupBy`: the fields that key the aggregation's groups.
    pub group_by: Vec<FieldPath>,
    /// `window`, `aggregates` and `condition`, for aggregated rules.
    pub aggregation: Option<Aggregation>,
    /// Minimum event time between two alerts of one group, in microseconds.
    pub throttle: i64,
    /// While an aggregated rule's condition stays true, raise again after this long.
    pub repeat: Option<i64>,
}

impl Rule {
    /// Whether the rule needs per-group state (aggregation, grouping or throttling).
    pub fn stateful(&self) -> bool {
        self.aggregation.is_some() || !self.group_by.is_empty() || self.throttle > 0
    }

    /// How long a group's state matters after its last event: the window and the throttle.
    pub fn retention(&self) -> i64 {
        let window = self.aggregation.as_ref().map_or(0, |a| a.window);
        window.max(self.throttle).max(self.repeat.unwrap_or(0))
    }

    /// The checks beyond the query (evaluated only when the query matched).
    pub fn extra_checks_pass(&self, event: &crate::event::Event, doc: &dyn Document) -> bool {
        if self.unless_all.iter().any(|u| u.holds(doc)) {
            return false;
        }
        match &self.json_contains {
            Some(c) => c.holds(event, doc),
            None => true,
        }
    }
}

/// A value transformation applied before an `unlessAll` comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    None,
    /// Falco's `image.repository`: the image up to the first `:` or `@` (tag and digest removed).
    ImageRepository,
}

/// "Every value at `path` (after `transform`) is one of `values`": Falco's `in` on a list
/// field, which the (existential) query language cannot express. Holds only when the path
/// has at least one value.
#[derive(Debug, Clone)]
pub struct UnlessAll {
    pub path: FieldPath,
    pub transform: Transform,
    pub values: Vec<String>,
}

impl UnlessAll {
    pub fn holds(&self, doc: &dyn Document) -> bool {
        let mut seen = false;
        let mut all = true;
        doc.visit(&self.path, &mut |v| {
            seen = true;
            let ok = match v {
                Value::Str(s) => {
                    let s = match self.transform {
                        Transform::None => s,
                        Transform::ImageRepository => image_repository(s),
                    };
                    self.values.iter().any(|x| x == s)
                }
                _ => false,
            };
            if ok {
                std::ops::ControlFlow::Continue(())
            } else {
                all = false;
                std::ops::ControlFlow::Break(())
            }
        });
        seen && all
    }
}

/// Falco's repository of an image reference: split at the first `:`, then at the first `@`.
pub fn image_repository(image: &str) -> &str {
    let s = image.split(':').next().unwrap_or(image);
    s.split('@').next().unwrap_or(s)
}

/// "The compact JSON text of the value at `path` (keys and values) contains one of `any`":
/// Falco's `ka.req.configmap.obj contains "password"`.
#[derive(Debug, Clone)]
pub struct JsonContains {
    pub path: FieldPath,
    pub any: Vec<String>,
}

impl JsonContains {
    fn holds(&self, event: &crate::event::Event, doc: &dyn Document) -> bool {
        // The document says whether the value is there as the event is written (the policy may
        // have removed a body); its text comes from the event's raw member.
        let mut present = false;
        doc.visit(&self.path, &mut |v| {
            present = !matches!(v, Value::Null);
            if present {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        });
        if !present {
            return false;
        }
        let Some(first) = self.path.segment(0) else { return false };
        let Some(raw) = event.raw(first) else { return false };
        let Ok(root) = serde_json::from_str::<serde_json::Value>(raw) else { return false };
        let mut texts = Vec::new();
        collect_subtrees(&root, &self.path, 1, &mut texts);
        texts.iter().any(|t| self.any.iter().any(|needle| t.contains(needle.as_str())))
    }
}

fn collect_subtrees(v: &serde_json::Value, path: &FieldPath, seg: usize, out: &mut Vec<String>) {
    if seg >= path.len() {
        out.push(v.to_string());
        return;
    }
    match v {
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_subtrees(i, path, seg, out)),
        serde_json::Value::Object(map) => {
            if let Some(child) = path.segment(seg).and_then(|k| map.get(k)) {
                collect_subtrees(child, path, seg + 1, out);
            }
        }
        _ => {}
    }
}

/// An aggregate function over a group's events in the window.
#[derive(Debug, Clone)]
pub enum AggFn {
    Count,
    /// Events with `responseStatus.code >= 400`.
    Failures,
    /// `failures / count` as a percentage (0–100), rounded to 2 decimals.
    FailureRate,
    /// Events that also match the query.
    CountIf(Query),
    /// Distinct values at the path (at most `limits.maxDistinct`).
    Distinct(FieldPath),
}

/// Aggregation settings of a rule.
#[derive(Debug, Clone)]
pub struct Aggregation {
    /// Window length in microseconds (event time).
    pub window: i64,
    /// Every aggregate by name: the built-ins `count`, `failures`, `failureRate` first, then
    /// the rule's own, in config order.
    pub aggregates: Vec<(String, AggFn)>,
    /// Holds over the aggregates (a query whose fields are aggregate names).
    pub condition: Query,
}

impl Aggregation {
    pub const BUILTINS: [&'static str; 3] = ["count", "failures", "failureRate"];

    /// Number of `countIf` aggregates (each has a counter per bucket).
    pub fn count_ifs(&self) -> usize {
        self.aggregates.iter().filter(|(_, f)| matches!(f, AggFn::CountIf(_))).count()
    }

    pub fn distincts(&self) -> usize {
        self.aggregates.iter().filter(|(_, f)| matches!(f, AggFn::Distinct(_))).count()
    }
}

/// Parses a duration: `90s`, `5m`, `1h30m`, `2d`, `0`; at least one unit, integer amounts.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(0);
    }
    let mut total: i64 = 0;
    let mut rest = t;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid duration {text:?}: expected a number, e.g. 30s, 5m, 1h"));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| format!("invalid duration {text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: i64 = match unit {
            "ms" => 1_000,
            "s" => 1_000_000,
            "m" => 60_000_000,
            "h" => 3_600_000_000,
            "d" => 86_400_000_000,
            "" => return Err(format!("invalid duration {text:?}: missing unit (ms, s, m, h or d)")),
            u => return Err(format!("invalid duration {text:?}: unknown unit {u:?} (ms, s, m, h or d)")),
        };
        total = n
            .checked_mul(scale)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| format!("invalid duration {text:?}: too long"))?;
    }
    Ok(total)
}

/// Expands `${name}` references in a query: each becomes the list's items, quoted and
/// separated by `, ` (for use inside `in (...)`).
pub fn expand_query(text: &str, lists: &Lists) -> Result<String, String> {
    if !text.contains("${") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or_else(|| "unterminated ${...} list reference".to_string())?;
        let name = &after[..end];
        let items = lists.get(name).ok_or_else(|| format!("unknown list ${{{name}}}"))?;
        if items.is_empty() {
            return Err(format!("list ${{{name}}} is empty; an empty in (...) cannot match, remove it from the query"));
        }
        for (k, item) in items.iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            out.push('"');
            for c in item.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands list items: an item that is exactly `${name}` splices that list.
pub fn expand_items(items: &[String], lists: &Lists) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in items {
        match item.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                out.extend(lists.get(name).ok_or_else(|| format!("unknown list ${{{name}}}"))?.iter().cloned())
            }
            None => out.push(item.clone()),
        }
    }
    Ok(out)
}

/// Keys of one rule in YAML.
pub const RULE_KEYS: &[&str] = &[
    "name",
    "severity",
    "description",
    "tags",
    "enabled",
    "query",
    "fields",
    "groupBy",
    "window",
    "aggregates",
    "condition",
    "throttle",
    "repeat",
    "unlessAll",
    "jsonContains",
];

/// Parses a query from a YAML string node, expanding lists; errors point at the node.
pub fn compile_query(c: &Ctx, node: &Node, lists: &Lists, limits: QueryLimits) -> Result<Query, Diagnostic> {
    let text = c.string(node)?;
    let expanded = expand_query(&text, lists).map_err(|e| c.error(node.pos, e))?;
    Query::parse_with(&expanded, limits).map_err(|e| c.error(node.pos, query_error_message(&expanded, &e)))
}

/// `invalid query: column N: message`, then the query and a caret under the column.
fn query_error_message(query: &str, e: &crate::query::QueryError) -> String {
    let line: String = query.chars().map(|ch| if ch.is_whitespace() { ' ' } else { ch }).collect();
    let pad = " ".repeat(e.column.saturating_sub(1));
    format!("invalid query: {e}\n    {line}\n    {pad}^")
}

fn path_of(c: &Ctx, node: &Node) -> Result<FieldPath, Diagnostic> {
    let text = c.string(node)?;
    FieldPath::parse(text.trim()).map_err(|e| c.error(node.pos, format!("invalid field path {text:?}: {e}")))
}

fn duration_of(c: &Ctx, node: &Node) -> Result<i64, Diagnostic> {
    match &node.kind {
        Kind::Int(0) => Ok(0),
        Kind::Str(s) => parse_duration(s).map_err(|e| c.error(node.pos, e)),
        _ => Err(c.error(node.pos, format!("expected a duration such as 30s, 5m or 1h, found {}", node.type_name()))),
    }
}

/// Decodes one rule. `source` names where it comes from; `lists` resolves `${name}`.
/// Returns `None` for a rule with `enabled: false`.
pub fn decode_rule(
    c: &mut Ctx,
    node: &Node,
    source: &str,
    lists: &Lists,
    limits: QueryLimits,
) -> Result<Option<Rule>, Diagnostic> {
    let entries = c.strict_map(node, RULE_KEYS)?;
    let get = |k: &str| entries.iter().find(|(key, _)| key.name == k).map(|(_, v)| *v);
    let name = match get("name") {
        Some(n) => c.at("name", |c| c.string(n))?,
        None => return Err(c.error(node.pos, "a rule needs a name")),
    };
    if name.trim().is_empty() {
        return Err(c.at("name", |c| c.error(node.pos, "must not be empty")));
    }
    if let Some(e) = get("enabled") {
        if !c.at("enabled", |c| c.bool(e))? {
            return Ok(None);
        }
    }
    let severity = match get("severity") {
        Some(s) => c.at("severity", |c| {
            let text = c.string(s)?;
            Severity::parse(&text).ok_or_else(|| {
                c.error(s.pos, format!("unknown severity {text:?} (expected one of: {})", Severity::NAMES.join(", ")))
            })
        })?,
        None => Severity::Medium,
    };
    let description = match get("description") {
        Some(d) => c.at("description", |c| c.string_or_null(d))?,
        None => String::new(),
    };
    let tags = match get("tags") {
        Some(t) => c.at("tags", |c| c.strings(t))?,
        None => Vec::new(),
    };
    let query = match get("query") {
        Some(q) => c.at("query", |c| compile_query(c, q, lists, limits))?,
        None => return Err(c.error(node.pos, format!("rule {name:?} needs a query (use \"*\" for every event)"))),
    };
    let mut fields = Vec::new();
    if let Some(f) = get("fields") {
        c.at("fields", |c| -> Result<(), Diagnostic> {
            let Kind::Map(items) = &f.kind else {
                return Err(c.error(
                    f.pos,
                    format!("expected a mapping of output name to field path, found {}", f.type_name()),
                ));
            };
            for (k, v) in items {
                if fields.iter().any(|(n, _): &(String, FieldPath)| *n == k.name) {
                    return Err(c.at(&k.name, |c| c.error(k.pos, "duplicate output field")));
                }
                let path = c.at(&k.name, |c| path_of(c, v))?;
                fields.push((k.name.clone(), path));
            }
            Ok(())
        })?;
    }
    let group_by = match get("groupBy") {
        Some(g) => c.at("groupBy", |c| match &g.kind {
            Kind::Str(_) => Ok(vec![path_of(c, g)?]),
            _ => c.list(g, |c, n| path_of(c, n)),
        })?,
        None => Vec::new(),
    };
    let window = match get("window") {
        Some(w) => Some(c.at("window", |c| {
            let d = duration_of(c, w)?;
            if d <= 0 {
                return Err(c.error(w.pos, "the window must be longer than 0"));
            }
            if d > 30 * 86_400_000_000 {
                return Err(c.error(w.pos, "the window must be at most 30d"));
            }
            Ok(d)
        })?),
        None => None,
    };
    let aggregation = match window {
        Some(window) => Some(decode_aggregation(c, node, window, get("aggregates"), get("condition"), lists, limits)?),
        None => {
            for k in ["aggregates", "condition"] {
                if let Some(n) = get(k) {
                    return Err(
                        c.at(k, |c| c.error(n.pos, "needs a window (aggregation happens over an event-time window)"))
                    );
                }
            }
            None
        }
    };
    let throttle = match get("throttle") {
        Some(t) => c.at("throttle", |c| duration_of(c, t))?,
        // An aggregated rule raises at most once per window per group unless told otherwise.
        None => aggregation.as_ref().map_or(0, |a| a.window),
    };
    let repeat = match get("repeat") {
        Some(r) => {
            if aggregation.is_none() {
                return Err(
                    c.at("repeat", |c| c.error(r.pos, "only aggregated rules (with a window) repeat; use throttle"))
                );
            }
            let d = c.at("repeat", |c| duration_of(c, r))?;
            if d <= 0 {
                return Err(c.at("repeat", |c| c.error(r.pos, "must be longer than 0")));
            }
            Some(d)
        }
        None => None,
    };
    let unless_all = match get("unlessAll") {
        Some(u) => c.at("unlessAll", |c| match &u.kind {
            Kind::Seq(_) => c.list(u, |c, n| decode_unless_all(c, n, lists)),
            _ => Ok(vec![decode_unless_all(c, u, lists)?]),
        })?,
        None => Vec::new(),
    };
    let json_contains = match get("jsonContains") {
        Some(j) => Some(c.at("jsonContains", |c| decode_json_contains(c, j, lists))?),
        None => None,
    };
    Ok(Some(Rule {
        name,
        severity,
        source: source.to_string(),
        description,
        tags,
        query,
        unless_all,
        json_contains,
        fields,
        group_by,
        aggregation,
        throttle,
        repeat,
    }))
}

fn decode_aggregation(
    c: &mut Ctx,
    rule: &Node,
    window: i64,
    aggregates: Option<&Node>,
    condition: Option<&Node>,
    lists: &Lists,
    limits: QueryLimits,
) -> Result<Aggregation, Diagnostic> {
    let mut aggs: Vec<(String, AggFn)> = vec![
        ("count".into(), AggFn::Count),
        ("failures".into(), AggFn::Failures),
        ("failureRate".into(), AggFn::FailureRate),
    ];
    if let Some(a) = aggregates {
        c.at("aggregates", |c| -> Result<(), Diagnostic> {
            let Kind::Map(items) = &a.kind else {
                return Err(c.error(a.pos, format!("expected a mapping of name to aggregate, found {}", a.type_name())));
            };
            for (k, v) in items {
                c.at(&k.name, |c| -> Result<(), Diagnostic> {
                    if !k.name.chars().all(|ch| ch.is_alphanumeric() || ch == '_')
                        || k.name.chars().next().is_none_or(|ch| ch.is_ascii_digit())
                    {
                        return Err(
                            c.error(k.pos, "an aggregate name is letters, digits and _ (it is used in the condition)")
                        );
                    }
                    let text = c.string(v)?;
                    let f = parse_agg_fn(&text, lists, limits).map_err(|e| c.error(v.pos, e))?;
                    if let Some(i) = Aggregation::BUILTINS.iter().position(|b| *b == k.name) {
                        // `count: count` is harmless; rebinding a built-in name is not.
                        let same =
                            matches!((i, &f), (0, AggFn::Count) | (1, AggFn::Failures) | (2, AggFn::FailureRate));
                        if !same {
                            return Err(
                                c.error(k.pos, format!("{} is a built-in aggregate; choose another name", k.name))
                            );
                        }
                        return Ok(());
                    }
                    if aggs.iter().any(|(n, _)| *n == k.name) {
                        return Err(c.error(k.pos, "duplicate aggregate"));
                    }
                    aggs.push((k.name.clone(), f));
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    }
    let Some(cond) = condition else {
        return Err(c.error(rule.pos, "a rule with a window needs a condition over its aggregates, e.g. count > 10"));
    };
    let condition = c.at("condition", |c| -> Result<Query, Diagnostic> {
        let q = compile_query(c, cond, lists, limits)?;
        let Some(paths) = q.field_paths() else {
            return Err(c.error(
                cond.pos,
                "the condition compares aggregates by name (e.g. count > 10); bare terms are not allowed",
            ));
        };
        for p in paths {
            let known = p.len() == 1 && aggs.iter().any(|(n, _)| Some(n.as_str()) == p.segment(0));
            if !known {
                let names: Vec<&str> = aggs.iter().map(|(n, _)| n.as_str()).collect();
                return Err(
                    c.error(cond.pos, format!("unknown aggregate {p} in the condition (known: {})", names.join(", ")))
                );
            }
        }
        Ok(q)
    })?;
    Ok(Aggregation { window, aggregates: aggs, condition })
}

/// `count`, `failures`, `failureRate`, `countIf(<query>)`, `distinct(<path>)`.
pub fn parse_agg_fn(text: &str, lists: &Lists, limits: QueryLimits) -> Result<AggFn, String> {
    let t = text.trim();
    match t {
        "count" | "count()" => return Ok(AggFn::Count),
        "failures" | "failures()" => return Ok(AggFn::Failures),
        "failureRate" | "failureRate()" => return Ok(AggFn::FailureRate),
        _ => {}
    }
    let call = |prefix: &str| -> Option<&str> {
        t.strip_prefix(prefix).and_then(|r| r.trim_start().strip_prefix('(')).and_then(|r| r.strip_suffix(')'))
    };
    if let Some(inner) = call("countIf") {
        let q = expand_query(inner, lists)?;
        return Query::parse_with(&q, limits).map(AggFn::CountIf).map_err(|e| format!("invalid countIf query: {e}"));
    }
    if let Some(inner) = call("distinct") {
        return FieldPath::parse(inner.trim())
            .map(AggFn::Distinct)
            .map_err(|e| format!("invalid distinct field path: {e}"));
    }
    Err(format!(
        "unknown aggregate {t:?} (expected count, failures, failureRate, countIf(<query>) or distinct(<field>))"
    ))
}

fn decode_unless_all(c: &mut Ctx, node: &Node, lists: &Lists) -> Result<UnlessAll, Diagnostic> {
    let entries = c.strict_map(node, &["path", "transform", "in"])?;
    let (mut path, mut transform, mut values) = (None, Transform::None, None);
    for (k, v) in entries {
        c.at(&k.name, |c| -> Result<(), Diagnostic> {
            match k.name.as_str() {
                "path" => path = Some(path_of(c, v)?),
                "transform" => {
                    transform = match c.string(v)?.as_str() {
                        "none" => Transform::None,
                        "imageRepository" => Transform::ImageRepository,
                        other => {
                            return Err(c.error(
                                v.pos,
                                format!("unknown transform {other:?} (expected none or imageRepository)"),
                            ))
                        }
                    }
                }
                _ => {
                    let items = c.strings(v)?;
                    values = Some(expand_items(&items, lists).map_err(|e| c.error(v.pos, e))?);
                }
            }
            Ok(())
        })?;
    }
    let path = path.ok_or_else(|| c.error(node.pos, "unlessAll needs a path"))?;
    let values = values.ok_or_else(|| c.error(node.pos, "unlessAll needs an `in` list"))?;
    Ok(UnlessAll { path, transform, values })
}

fn decode_json_contains(c: &mut Ctx, node: &Node, lists: &Lists) -> Result<JsonContains, Diagnostic> {
    let entries = c.strict_map(node, &["path", "any"])?;
    let (mut path, mut any) = (None, None);
    for (k, v) in entries {
        c.at(&k.name, |c| -> Result<(), Diagnostic> {
            if k.name == "path" {
                path = Some(path_of(c, v)?);
            } else {
                let items = c.strings(v)?;
                let items = expand_items(&items, lists).map_err(|e| c.error(v.pos, e))?;
                if items.is_empty() || items.iter().any(String::is_empty) {
                    return Err(c.error(v.pos, "needs at least one non-empty string"));
                }
                any = Some(items);
            }
            Ok(())
        })?;
    }
    let path = path.ok_or_else(|| c.error(node.pos, "jsonContains needs a path"))?;
    let any = any.ok_or_else(|| c.error(node.pos, "jsonContains needs an `any` list"))?;
    Ok(JsonContains { path, any })
}

/// Decodes a `lists:` mapping (name -> list of strings; an item `${other}` splices an earlier
/// list) into `lists`, overriding lists of the same name.
pub fn decode_lists(c: &mut Ctx, node: &Node, lists: &mut Lists) -> Result<(), Diagnostic> {
    let Kind::Map(items) = &node.kind else {
        return Err(c.error(node.pos, format!("expected a mapping of list name to items, found {}", node.type_name())));
    };
    for (k, v) in items {
        c.at(&k.name, |c| -> Result<(), Diagnostic> {
            if k.name.is_empty() || k.name.contains(['{', '}', '$']) {
                return Err(c.error(k.pos, "invalid list name"));
            }
            let raw = c.strings(v)?;
            let items = expand_items(&raw, lists).map_err(|e| c.error(v.pos, e))?;
            lists.insert(k.name.clone(), items);
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(300_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("250ms"), Ok(250_000));
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5w").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn image_repositories_as_falco_splits_them() {
        assert_eq!(image_repository("nginx"), "nginx");
        assert_eq!(image_repository("mysql:latest"), "mysql");
        assert_eq!(image_repository("docker.io/calico/node:v3.1@sha256:ab"), "docker.io/calico/node");
        assert_eq!(image_repository("quay.io/x/y@sha256:ab"), "quay.io/x/y");
        // Falco splits at the first ':', so a registry port truncates the repository.
        assert_eq!(image_repository("registry:5000/team/app:1"), "registry");
    }

    #[test]
    fn list_expansion() {
        let mut lists = Lists::new();
        lists.insert("users".into(), vec!["admin".into(), "we\"ird".into()]);
        assert_eq!(
            expand_query("user.username in (${users})", &lists).unwrap(),
            r#"user.username in ("admin", "we\"ird")"#
        );
        assert!(expand_query("x in (${nope})", &lists).unwrap_err().contains("unknown list"));
        assert!(expand_query("x in (${users)", &lists).unwrap_err().contains("unterminated"));
        assert_eq!(expand_items(&["a".into(), "${users}".into()], &lists).unwrap(), ["a", "admin", "we\"ird"]);
    }
}
