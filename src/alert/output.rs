//! The alert JSON object (schema in docs/ALERTS.md) and rendering of document values.
//!
//! Keys always appear in the same order; `aggregates` and `window` only for aggregated rules.

use std::fmt::Write as _;
use std::ops::ControlFlow;

use crate::event::raw::write_json_str;
use crate::event::time::format_micros;
use crate::query::{Document, FieldPath, Value};

use super::rule::Rule;

/// Appends a number as JSON: integral values without a fraction, non-finite as `null`.
pub fn write_num(out: &mut String, n: f64) {
    if !n.is_finite() {
        out.push_str("null");
    } else if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        let _ = write!(out, "{}", n as i64);
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
    pub names: &'a [(String, super::rule::AggFn)],
    pub values: &'a [f64],
    pub window_start: i64,
    pub window_end: i64,
}

/// Writes one alert.
pub fn write_alert<'i>(
    rule: &Rule,
    time: i64,
    doc: &dyn Document,
    agg: Option<AggregateOutput<'_>>,
    audit_ids: impl Iterator<Item = &'i str>,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"kind\":\"Alert\",\"rule\":");
    write_json_str(&mut out, &rule.name);
    out.push_str(",\"severity\":\"");
    out.push_str(rule.severity.as_str());
    out.push_str("\",\"source\":");
    write_json_str(&mut out, &rule.source);
    out.push_str(",\"tags\":[");
    for (i, t) in rule.tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(&mut out, t);
    }
    out.push_str("],\"time\":");
    write_json_str(&mut out, &format_micros(time));
    out.push_str(",\"groupKey\":{");
    for (i, p) in rule.group_by.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(&mut out, &p.to_string());
        out.push(':');
        write_path_value(&mut out, doc, p);
    }
    out.push_str("},\"fields\":{");
    for (i, (name, p)) in rule.fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(&mut out, name);
        out.push(':');
        write_path_value(&mut out, doc, p);
    }
    out.push('}');
    if let Some(a) = agg {
        out.push_str(",\"aggregates\":{");
        for (i, ((name, _), v)) in a.names.iter().zip(a.values).enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_str(&mut out, name);
            out.push(':');
            write_num(&mut out, *v);
        }
        out.push_str("},\"window\":{\"start\":");
        write_json_str(&mut out, &format_micros(a.window_start));
        out.push_str(",\"end\":");
        write_json_str(&mut out, &format_micros(a.window_end));
        out.push('}');
    }
    out.push_str(",\"auditIDs\":[");
    for (i, id) in audit_ids.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(&mut out, id);
    }
    out.push_str("]}");
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
