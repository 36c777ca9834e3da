//! The alert JSON object (schema in docs/ALERTS.md) and rendering of document values.
//!
//! Keys always appear in the same order; `aggregates` and `window` only for aggregated rules.

use std::fmt::Write as _;
use std::ops::ControlFlow;

use crate::event::raw::{write_json_str, write_json_str_array};
use crate::event::time::format_micros;
use crate::query::{Document, FieldPath, Lookup, Value};

use super::rule::Rule;

/// Appends a number as JSON: integral values without a fraction, non-finite as `null`.
pub fn write_num(out: &mut String, n: f64) {
    if !n.is_finite() {
        out.push_str("null");
    } else if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        // What `{}` of the `i64` writes, without the `fmt` machinery (costly in an interpreter).
        let i = n as i64;
        if i < 0 {
            out.push('-');
        }
        crate::enrich::push_u64(out, i.unsigned_abs());
    } else {
        let _ = write!(out, "{n}");
    }
}

/// Renders a scalar value as text (for group keys and distinct values); `false` for
/// objects, arrays and null, which have no text.
pub fn value_text(v: Value<'_>, out: &mut String) -> bool {
    match v {
        Value::Str(s) => out.push_str(s),
        Value::Num(n) => write_num(out, n),
        Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Value::Null | Value::Object | Value::Array => return false,
    }
    true
}

fn write_value(out: &mut String, v: Value<'_>) {
    match v {
        Value::Str(s) => write_json_str(out, s),
        Value::Num(n) => write_num(out, n),
        Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Value::Null | Value::Object | Value::Array => out.push_str("null"),
    }
}

/// Writes the values at `path` as JSON: `null` when there is none, the value when there is
/// one, an array when the path crosses arrays. Objects and arrays are not rendered (fields
/// name leaf values).
pub fn write_path_value(out: &mut String, doc: &dyn Document, path: &FieldPath) {
    match doc.lookup(path) {
        Lookup::One(v) if !matches!(v, Value::Null | Value::Object | Value::Array) => return write_value(out, v),
        Lookup::One(_) | Lookup::Absent => return out.push_str("null"),
        Lookup::Visit => {}
    }
    let mut n = 0usize;
    let start = out.len();
    doc.visit(path, &mut |v| {
        if matches!(v, Value::Null | Value::Object | Value::Array) {
            return ControlFlow::Continue(());
        }
        out.push(if n == 0 { '[' } else { ',' });
        write_value(out, v);
        n += 1;
        ControlFlow::Continue(())
    });
    match n {
        0 => out.push_str("null"),
        1 => {
            // A single value is written bare: drop the '[' written before it.
            out.remove(start);
        }
        _ => out.push(']'),
    }
}

/// What an aggregated alert adds.
pub struct AggregateOutput<'a> {
    pub values: &'a [f64],
    pub window_start: i64,
    pub window_end: i64,
}

/// The text of a rule's alerts that is the same for every alert (the rule's name, severity,
/// source and tags; the keys of its group key, fields and aggregates as JSON), written once
/// when the engine is built instead of per alert.
#[derive(Debug, Clone, Default)]
pub struct AlertTemplate {
    /// `{"kind":"Alert","rule":...,"tags":[...],"time":`.
    head: String,
    /// `"path":` for each `groupBy` path, `,` before all but the first.
    group_keys: Vec<String>,
    /// `"name":` for each output field, `,` before all but the first.
    field_keys: Vec<String>,
    /// `"name":` for each aggregate, `,` before all but the first.
    aggregate_keys: Vec<String>,
}

impl AlertTemplate {
    /// The template of `rule`'s alerts.
    pub fn new(rule: &Rule) -> Self {
        let mut head = String::from("{\"kind\":\"Alert\",\"rule\":");
        write_json_str(&mut head, &rule.name);
        head.push_str(",\"severity\":\"");
        head.push_str(rule.severity.as_str());
        head.push_str("\",\"source\":");
        write_json_str(&mut head, &rule.source);
        head.push_str(",\"tags\":");
        write_json_str_array(&mut head, &rule.tags);
        head.push_str(",\"time\":");
        let keys = |names: &mut dyn Iterator<Item = String>| -> Vec<String> {
            names
                .enumerate()
                .map(|(i, name)| {
                    let mut key = String::from(if i > 0 { "," } else { "" });
                    write_json_str(&mut key, &name);
                    key.push(':');
                    key
                })
                .collect()
        };
        AlertTemplate {
            head,
            group_keys: keys(&mut rule.group_by.iter().map(ToString::to_string)),
            field_keys: keys(&mut rule.fields.iter().map(|(name, _)| name.clone())),
            aggregate_keys: keys(
                &mut rule.aggregation.iter().flat_map(|a| a.aggregates.iter().map(|(n, _)| n.clone())),
            ),
        }
    }
}

/// Writes one alert of `rule`, whose `template` it is.
pub fn write_alert<'i>(
    rule: &Rule,
    template: &AlertTemplate,
    time: i64,
    doc: &dyn Document,
    agg: Option<AggregateOutput<'_>>,
    audit_ids: impl Iterator<Item = &'i str>,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(&template.head);
    write_json_str(&mut out, &format_micros(time));
    out.push_str(",\"groupKey\":{");
    for (key, p) in template.group_keys.iter().zip(&rule.group_by) {
        out.push_str(key);
        write_path_value(&mut out, doc, p);
    }
    out.push_str("},\"fields\":{");
    for (key, (_, p)) in template.field_keys.iter().zip(&rule.fields) {
        out.push_str(key);
        write_path_value(&mut out, doc, p);
    }
    out.push('}');
    if let Some(a) = agg {
        out.push_str(",\"aggregates\":{");
        for (key, v) in template.aggregate_keys.iter().zip(a.values) {
            out.push_str(key);
            write_num(&mut out, *v);
        }
        out.push_str("},\"window\":{\"start\":");
        write_json_str(&mut out, &format_micros(a.window_start));
        out.push_str(",\"end\":");
        write_json_str(&mut out, &format_micros(a.window_end));
        out.push('}');
    }
    out.push_str(",\"auditIDs\":");
    write_json_str_array(&mut out, audit_ids);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let mut s = String::new();
        for n in [11.0, 54.55, -3.0, f64::NAN, 0.5] {
            write_num(&mut s, n);
            s.push(' ');
        }
        assert_eq!(s, "11 54.55 -3 null 0.5 ");
    }

    #[test]
    fn path_values() {
        let doc = serde_json::json!({"a": "x", "b": [1, 2], "c": {"d": true}, "e": []});
        let mut s = String::new();
        for p in ["a", "b", "c", "c.d", "e", "zz"] {
            write_path_value(&mut s, &doc, &FieldPath::parse(p).unwrap());
            s.push(' ');
        }
        assert_eq!(s, "\"x\" [1,2] null true null null ");
    }
}

#[cfg(test)]
#[test]
fn numbers_are_written_as_display_writes_them() {
    let mut samples: Vec<f64> =
        vec![0.0, -0.0, 1.0, -1.0, 403.0, 1e15, -9.007_199_254_740_991e15, 9.007_199_254_740_992e15];
    samples.extend([0.5, -2.25, 1e300, 1e-7, f64::MAX, f64::MIN_POSITIVE]);
    let mut rng = crate::test_rng::XorShift::new(7);
    for _ in 0..20_000 {
        samples.push(rng.below(1 << 54) as f64 - (1u64 << 53) as f64);
    }
    for n in samples {
        let mut out = String::new();
        write_num(&mut out, n);
        let want = if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
            format!("{}", n as i64)
        } else {
            format!("{n}")
        };
        assert_eq!(out, want, "{n:e}");
    }
    for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut out = String::new();
        write_num(&mut out, n);
        assert_eq!(out, "null");
    }
}
