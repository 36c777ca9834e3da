//! One alert rule as the engine runs it: its compiled query, extra checks, output fields and
//! optional aggregation. Decoding it from YAML is `decode.rs`; `${list}` references are
//! `lists.rs`. Everything is compiled once, at load: evaluation (`engine.rs`) never parses.

use crate::query::{Document, FieldPath, Query, Value};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_repositories_as_falco_splits_them() {
        assert_eq!(image_repository("nginx"), "nginx");
        assert_eq!(image_repository("mysql:latest"), "mysql");
        assert_eq!(image_repository("docker.io/calico/node:v3.1@sha256:ab"), "docker.io/calico/node");
        assert_eq!(image_repository("quay.io/x/y@sha256:ab"), "quay.io/x/y");
        // Falco splits at the first ':', so a registry port truncates the repository.
        assert_eq!(image_repository("registry:5000/team/app:1"), "registry");
    }
}
