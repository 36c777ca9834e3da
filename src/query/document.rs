//! What the evaluator reads from: the [`Document`] trait, the [`Value`]s a lookup yields,
//! and the reference implementation over `serde_json::Value`.
//!
//! The traversal rules live in [`lookup_json_from`] so other `Document` implementations (the
//! pipeline's lazily decoded event) can apply exactly the same rules to the sub-objects they
//! decode:
//!
//! * a path that crosses an array visits every element (nested arrays are flattened);
//! * at each object, the remaining segments are also tried re-joined with `.` as one key,
//!   longest first, so the SLS spelling `annotations.authorization.k8s.io/decision` finds the
//!   key `"authorization.k8s.io/decision"`. Every spelling that exists is visited, like SLS,
//!   which indexes `{"a":{"b":1}}` and `{"a.b":1}` under the same name `a.b`.

use std::ops::ControlFlow;

use serde_json::Value as Json;

use super::FieldPath;

/// One value found in a document. `Object` and `Array` only signal that something exists
/// there; queries never compare their contents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// JSON null.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Num(f64),
    /// A string.
    Str(&'a str),
    /// An object (matched by `exists`, never by value).
    Object,
    /// An array (its items are visited one by one).
    Array,
}

impl<'a> From<&'a Json> for Value<'a> {
    /// The shallow view of a JSON value (no array flattening).
    fn from(v: &'a Json) -> Value<'a> {
        match v {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            // Integers beyond 2^53 lose precision; audit events carry none that are compared.
            Json::Number(n) => n.as_f64().map_or(Value::Null, Value::Num),
            Json::String(s) => Value::Str(s),
            Json::Object(_) => Value::Object,
            Json::Array(_) => Value::Array,
        }
    }
}

/// The answer of [`Document::lookup`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lookup<'a> {
    /// Not answered this way: [`Document::visit`] the path.
    Visit,
    /// No value at the path.
    Absent,
    /// Exactly one value at the path.
    One(Value<'a>),
}

/// What a query is evaluated against. Object-safe; implemented by the pipeline over a lazily
/// decoded event and here for `serde_json::Value`.
pub trait Document {
    /// Calls `visit` for every value found at `path`, flattening arrays along the way (an
    /// empty array yields nothing); stops early when `visit` returns `ControlFlow::Break`.
    /// Implementations should follow [`lookup_json_from`]'s rules (arrays, dotted keys).
    fn visit(&self, path: &FieldPath, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>);

    /// The value at `path` when the document holds at most one there and answers it without
    /// a visit (a field already decoded, named by [`FieldPath::known`]); [`Lookup::Visit`]
    /// otherwise, the default. Must agree with [`Document::visit`] (a `null` may be absent).
    fn lookup(&self, path: &FieldPath) -> Lookup<'_> {
        let _ = path;
        Lookup::Visit
    }

    /// Calls `visit` for every string, number and boolean leaf anywhere in the document
    /// (for bare full-text terms); stops early on `Break`.
    fn visit_all(&self, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>);
}

impl Document for Json {
    fn visit(&self, path: &FieldPath, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        let _ = lookup_json(self, path, visit);
    }

    fn visit_all(&self, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        let _ = visit_all_json(self, visit);
    }
}

/// Visits every value at `path` below `root`. Returns `Break` if `visit` did.
pub fn lookup_json<'a>(
    root: &'a Json,
    path: &FieldPath,
    mut visit: impl FnMut(Value<'a>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    walk(root, path, 0, &mut visit)
}

/// Visits every value at the segments `first_segment..` of `path` below `value`: for a
/// `Document` that resolved the leading segments itself and decoded the rest of the event
/// as JSON. `first_segment == path.len()` visits `value` itself (arrays flattened).
pub fn lookup_json_from<'a>(
    value: &'a Json,
    path: &FieldPath,
    first_segment: usize,
    mut visit: impl FnMut(Value<'a>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    walk(value, path, first_segment, &mut visit)
}

fn walk<'a>(
    v: &'a Json,
    path: &FieldPath,
    seg: usize,
    visit: &mut dyn FnMut(Value<'a>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    match v {
        Json::Array(items) => {
            for item in items {
                walk(item, path, seg, visit)?;
            }
            ControlFlow::Continue(())
        }
        _ if seg >= path.len() => visit(Value::from(v)),
        Json::Object(map) => {
            // Longest dotted key first; `dotted(seg, seg + 1)` is the plain segment.
            for end in (seg + 1..=path.len()).rev() {
                if let Some(child) = path.dotted(seg, end).and_then(|key| map.get(key)) {
                    walk(child, path, end, visit)?;
                }
            }
            ControlFlow::Continue(())
        }
        // A scalar with segments left: nothing there.
        _ => ControlFlow::Continue(()),
    }
}

/// Visits every string, number and boolean leaf of `root` (object keys are not searched,
/// as in SLS full-text search). Recursion depth is that of the JSON, which serde_json's
/// parser already limits to 128.
pub fn visit_all_json<'a>(root: &'a Json, mut visit: impl FnMut(Value<'a>) -> ControlFlow<()>) -> ControlFlow<()> {
    fn leaves<'a>(v: &'a Json, visit: &mut dyn FnMut(Value<'a>) -> ControlFlow<()>) -> ControlFlow<()> {
        match v {
            Json::Array(items) => items.iter().try_for_each(|item| leaves(item, visit)),
            Json::Object(map) => map.values().try_for_each(|item| leaves(item, visit)),
            Json::Null => ControlFlow::Continue(()),
            leaf => visit(Value::from(leaf)),
        }
    }
    leaves(root, &mut visit)
}
