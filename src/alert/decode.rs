//! Decoding one rule from YAML (the config's `alerts.rules`, kaudit rule packs): every query,
//! field path and duration is compiled here, and every error names the file, line and field.

use std::fmt;

use super::lists::{expand_items, expand_query, ListError, Lists};
use super::rule::*;
use crate::event::time::parse_duration;
use crate::query::{FieldPath, Query, QueryError, QueryLimits};
use crate::yaml::{Ctx, Diagnostic, Kind, Node};

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
    let expanded = expand_query(&text, lists).map_err(|e| c.error(node.pos, e.to_string()))?;
    Query::parse_with(&expanded, limits).map_err(|e| c.error(node.pos, query_error_message(&expanded, &e)))
}

/// `invalid query: column N: message`, then [`QueryError::render`] (the query and a caret under
/// the column), indented under the diagnostic's first line.
fn query_error_message(query: &str, e: &QueryError) -> String {
    let mut out = format!("invalid query: {e}");
    for line in e.render(query).lines() {
        out.push_str("\n    ");
        out.push_str(line);
    }
    out
}

fn path_of(c: &Ctx, node: &Node) -> Result<FieldPath, Diagnostic> {
    let text = c.string(node)?;
    FieldPath::parse(text.trim()).map_err(|e| c.error(node.pos, format!("invalid field path {text:?}: {e}")))
}

fn duration_of(c: &Ctx, node: &Node) -> Result<i64, Diagnostic> {
    match &node.kind {
        Kind::Int(0) => Ok(0),
        Kind::Str(s) => parse_duration(s).map_err(|e| c.error(node.pos, e.to_string())),
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
                    let f = parse_agg_fn(&text, lists, limits).map_err(|e| c.error(v.pos, e.to_string()))?;
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

/// Why an aggregate (`aggregates:` of a windowed rule) does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggFnError {
    /// A `${name}` in `countIf(...)` that cannot be expanded.
    List(ListError),
    /// The query of `countIf(...)` does not parse.
    CountIf(QueryError),
    /// The field path of `distinct(...)` does not parse.
    Distinct(QueryError),
    /// None of the aggregate functions.
    Unknown(String),
}

impl fmt::Display for AggFnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggFnError::List(e) => e.fmt(f),
            AggFnError::CountIf(e) => write!(f, "invalid countIf query: {e}"),
            AggFnError::Distinct(e) => write!(f, "invalid distinct field path: {e}"),
            AggFnError::Unknown(t) => write!(
                f,
                "unknown aggregate {t:?} (expected count, failures, failureRate, countIf(<query>) or distinct(<field>))"
            ),
        }
    }
}

impl std::error::Error for AggFnError {}

/// `count`, `failures`, `failureRate`, `countIf(<query>)`, `distinct(<path>)`.
pub fn parse_agg_fn(text: &str, lists: &Lists, limits: QueryLimits) -> Result<AggFn, AggFnError> {
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
        let q = expand_query(inner, lists).map_err(AggFnError::List)?;
        return Query::parse_with(&q, limits).map(AggFn::CountIf).map_err(AggFnError::CountIf);
    }
    if let Some(inner) = call("distinct") {
        return FieldPath::parse(inner.trim()).map(AggFn::Distinct).map_err(AggFnError::Distinct);
    }
    Err(AggFnError::Unknown(t.to_string()))
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
                    values = Some(expand_items(&items, lists).map_err(|e| c.error(v.pos, e.to_string()))?);
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
                let items = expand_items(&items, lists).map_err(|e| c.error(v.pos, e.to_string()))?;
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
