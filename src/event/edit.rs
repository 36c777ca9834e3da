//! The edits a policy decision makes to a kept event (level lowered, bodies removed,
//! managedFields cleared), and writing an event with them spliced into its original bytes.
//! The policy decides the edits (`policy::apply::verdict`); this layer knows how to make them.

use super::raw::{self, Edit, OutBuf, RawObject};
use super::{Event, Level};

/// The edits a decision makes to a kept event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The level to write, when it differs from the recorded one.
    pub new_level: Option<Level>,
    /// Remove `requestObject` (the level is below Request).
    pub remove_request_object: bool,
    /// Remove `responseObject` (the level is below RequestResponse).
    pub remove_response_object: bool,
    /// Clear `metadata.managedFields` in the request and response objects (`omitManagedFields`).
    pub strip_managed_fields: bool,
}

impl Changes {
    /// Whether the event is written unchanged.
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

/// Writes `event` with `changes` (and `append`ed members) applied into `out`.
/// An event without changes is copied byte for byte.
pub fn write_event<O: OutBuf + ?Sized>(event: &Event, changes: &Changes, append: &[(&str, &str)], out: &mut O) {
    if changes.is_empty() && append.is_empty() {
        out.put(event.obj.text.trim());
        return;
    }
    let append_keys: Vec<&str> = append.iter().map(|(k, _)| *k).collect();
    event.obj.rebuild(
        out,
        |_, m| match m.key.as_ref() {
            "level" if changes.new_level.is_some() => {
                Edit::Replace(format!("\"{}\"", changes.new_level.map_or("", Level::as_str)))
            }
            "requestObject" if changes.remove_request_object => Edit::Remove,
            "responseObject" if changes.remove_response_object => Edit::Remove,
            "requestObject" | "responseObject" if changes.strip_managed_fields => match strip_managed_fields(m.value) {
                Some(v) => Edit::Replace(v),
                None => Edit::Keep,
            },
            k if append_keys.contains(&k) => Edit::Remove,
            _ => Edit::Keep,
        },
        append,
    );
}

/// Clears `metadata.managedFields` on an object, on every item of a list and on every row
/// object of a `Table` (pkg/audit/request.go `copyWithoutManagedFields`). `None` if unchanged.
pub fn strip_managed_fields(value: &str) -> Option<String> {
    let obj = raw::parse_object(value).ok()?;
    let mut changed = false;
    let mut out = String::with_capacity(value.len());
    obj.rebuild(
        &mut out,
        |_, m| match m.key.as_ref() {
            "metadata" => match strip_in_metadata(m.value) {
                Some(v) => {
                    changed = true;
                    Edit::Replace(v)
                }
                None => Edit::Keep,
            },
            "items" => match map_array(m.value, strip_managed_fields) {
                Some(v) => {
                    changed = true;
                    Edit::Replace(v)
                }
                None => Edit::Keep,
            },
            "rows" if is_table(&obj) => match map_array(m.value, strip_row) {
                Some(v) => {
                    changed = true;
                    Edit::Replace(v)
                }
                None => Edit::Keep,
            },
            _ => Edit::Keep,
        },
        &[],
    );
    changed.then_some(out)
}

fn is_table(obj: &RawObject) -> bool {
    obj.get("kind").is_some_and(|m| m.value == "\"Table\"")
}

fn strip_in_metadata(value: &str) -> Option<String> {
    let meta = raw::parse_object(value).ok()?;
    meta.get("managedFields")?;
    let mut out = String::with_capacity(value.len());
    meta.rebuild(&mut out, |_, m| if m.key == "managedFields" { Edit::Remove } else { Edit::Keep }, &[]);
    Some(out)
}

fn strip_row(value: &str) -> Option<String> {
    let row = raw::parse_object(value).ok()?;
    let object = row.get("object")?;
    let stripped = strip_managed_fields(object.value)?;
    let mut out = String::with_capacity(value.len());
    row.rebuild(&mut out, |_, m| if m.key == "object" { Edit::Replace(stripped.clone()) } else { Edit::Keep }, &[]);
    Some(out)
}

/// Applies `f` to each item of a JSON array; `None` if no item changed.
fn map_array(value: &str, f: fn(&str) -> Option<String>) -> Option<String> {
    let items = raw::parse_array(value).ok()?;
    let mut changed = false;
    let mut out = String::with_capacity(value.len());
    out.push('[');
    for (i, (_, item)) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match f(item) {
            Some(v) => {
                changed = true;
                out.push_str(&v);
            }
            None => out.push_str(item),
        }
    }
    out.push(']');
    changed.then_some(out)
}
