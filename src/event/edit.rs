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
        // Field by field: the derived comparison with a default costs an interpreter more.
        let Changes { new_level, remove_request_object, remove_response_object, strip_managed_fields } = self;
        new_level.is_none() && !remove_request_object && !remove_response_object && !strip_managed_fields
    }
}

/// Writes `event` with `changes` (and `append`ed members) applied into `out`.
/// An event without changes is copied byte for byte. Otherwise the object is rewritten member
/// by member as [`RawObject::rebuild`] does (members joined by `,`, each member's own text kept),
/// but consecutive kept members already joined by a bare `,` are copied as one slice: an
/// interpreter host pays per call, and a typical event is two or three slices.
pub fn write_event<O: OutBuf + ?Sized>(event: &Event, changes: &Changes, append: &[(&str, &str)], out: &mut O) {
    if changes.is_empty() && append.is_empty() {
        out.put(event.obj.text.trim());
        return;
    }
    let keys = append.iter().map(|(k, _)| *k);
    write_event_then(event, changes, keys, out, |out, first| write_appended(out, append, first));
}

/// [`write_event`] with members appended by `tail` (given the output and whether nothing was
/// written before them; it writes them and the closing brace): the event's members named
/// like one of `keys` are left out. The pipeline writes the enrichment straight into the
/// output this way, with no text of its own in between.
pub(crate) fn write_event_then<'k, O: OutBuf + ?Sized>(
    event: &Event,
    changes: &Changes,
    keys: impl Iterator<Item = &'k str> + Clone,
    out: &mut O,
    tail: impl FnOnce(&mut O, bool),
) {
    let obj = &event.obj;
    let text = obj.text;
    let unchanged = changes.is_empty();
    if unchanged {
        if let Some((from, body)) = one_run(obj, keys.clone()) {
            // The common case: members joined by bare commas, none named like an appended
            // one. One copy of them (with the object's brace when it is right before them, a
            // compact event), then the appended members.
            if from == 1 && text.as_bytes().first() == Some(&b'{') {
                out.put(text.get(..1 + body.len()).unwrap_or_default());
            } else {
                out.put("{");
                out.put(body);
            }
            tail(out, body.is_empty());
            return;
        }
    }
    let mut w = Splice { text, out, first: true, run: None };
    w.out.put("{");
    for m in &obj.members {
        if keys.clone().any(|k| obj.key_is(m, k)) {
            continue;
        }
        if unchanged {
            w.keep(m.key_start, m.end);
            continue;
        }
        match obj.key_bytes(m) {
            b"level" if changes.new_level.is_some() => {
                let level = changes.new_level.map_or("", Level::as_str);
                w.replace(m.key_start, m.start, &["\"", level, "\""]);
            }
            b"requestObject" if changes.remove_request_object => {}
            b"responseObject" if changes.remove_response_object => {}
            b"requestObject" | b"responseObject" if changes.strip_managed_fields => {
                match strip_managed_fields(obj.value(m)) {
                    Some(v) => w.replace(m.key_start, m.start, &[&v]),
                    None => w.keep(m.key_start, m.end),
                }
            }
            _ => w.keep(m.key_start, m.end),
        }
    }
    w.flush();
    tail(w.out, w.first);
}

/// The text of all of `obj`'s members when they are joined by bare commas and none is named
/// like an `append`ed member (what a compact event is): what [`Splice`] would copy as one run;
/// with its offset in `obj.text`.
fn one_run<'t, 'k>(obj: &RawObject<'t>, keys: impl Iterator<Item = &'k str>) -> Option<(usize, &'t str)> {
    let (first, last) = match (obj.members.first(), obj.members.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Some((0, "")),
    };
    // Names compared only when as long (a short loop an interpreter runs quickly).
    for k in keys {
        if obj.members.iter().any(|m| obj.key_is(m, k)) {
            return None;
        }
    }
    if !obj.joined {
        // Unless the scanner saw it: consecutive members of a parsed object are at least a
        // comma apart, so their texts cover all but `members - 1` bytes of the span only when
        // each gap is that one comma.
        let covered: usize = obj.members.iter().map(|m| m.end.saturating_sub(m.key_start)).sum();
        let span = last.end.checked_sub(first.key_start)?;
        if covered + (obj.members.len() - 1) != span {
            return None;
        }
    }
    Some((first.key_start, obj.text.get(first.key_start..last.end)?))
}

/// Writes the `append`ed members and the closing brace (`first`: nothing was written before them).
fn write_appended<O: OutBuf + ?Sized>(out: &mut O, append: &[(&str, &str)], mut first: bool) {
    for (key, value) in append {
        write_member_key(out, key, first);
        first = false;
        out.put(value);
    }
    out.put("}");
}

/// Writes `"key":` of an appended member, with the comma before it unless it is the `first`.
pub(crate) fn write_member_key<O: OutBuf + ?Sized>(out: &mut O, key: &str, first: bool) {
    out.put(if first { "\"" } else { ",\"" });
    if key.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        let mut k = String::with_capacity(key.len() + 2);
        raw::write_json_str(&mut k, key);
        out.put(k.get(1..k.len() - 1).unwrap_or_default());
    } else {
        out.put(key);
    }
    out.put("\":");
}

/// The writer of [`write_event`]: a pending run of kept member text, flushed as one slice.
struct Splice<'t, 'o, O: OutBuf + ?Sized> {
    text: &'t str,
    out: &'o mut O,
    first: bool,
    /// `text[start..end]`: kept members not yet written.
    run: Option<(usize, usize)>,
}

impl<O: OutBuf + ?Sized> Splice<'_, '_, O> {
    /// Keeps the member whose text is `text[start..end]`.
    fn keep(&mut self, start: usize, end: usize) {
        match self.run {
            Some((s, e)) if start == e + 1 && self.text.as_bytes().get(e) == Some(&b',') => self.run = Some((s, end)),
            _ => {
                self.flush();
                self.run = Some((start, end));
            }
        }
    }

    /// Writes the member whose key text (up to its value) is `text[start..value_start]` with
    /// the concatenation of `value` as its value.
    fn replace(&mut self, start: usize, value_start: usize, value: &[&str]) {
        self.flush();
        self.separator();
        self.out.put(self.text.get(start..value_start).unwrap_or_default());
        for v in value {
            self.out.put(v);
        }
    }

    fn flush(&mut self) {
        if let Some((s, e)) = self.run.take() {
            self.separator();
            self.out.put(self.text.get(s..e).unwrap_or_default());
        }
    }

    fn separator(&mut self) {
        if !self.first {
            self.out.put(",");
        }
        self.first = false;
    }
}

/// Clears `metadata.managedFields` on an object, on every item of a list and on every row
/// object of a `Table` (pkg/audit/request.go `copyWithoutManagedFields`). `None` if unchanged.
pub fn strip_managed_fields(value: &str) -> Option<String> {
    let obj = raw::parse_object(value).ok()?;
    let mut changed = false;
    let mut out = String::with_capacity(value.len());
    obj.rebuild(
        &mut out,
        |_, key, value| match key {
            "metadata" => match strip_in_metadata(value) {
                Some(v) => {
                    changed = true;
                    Edit::Replace(v)
                }
                None => Edit::Keep,
            },
            "items" => match map_array(value, strip_managed_fields) {
                Some(v) => {
                    changed = true;
                    Edit::Replace(v)
                }
                None => Edit::Keep,
            },
            "rows" if is_table(&obj) => match map_array(value, strip_row) {
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
    obj.raw("kind") == Some("\"Table\"")
}

fn strip_in_metadata(value: &str) -> Option<String> {
    let meta = raw::parse_object(value).ok()?;
    meta.get("managedFields")?;
    let mut out = String::with_capacity(value.len());
    meta.rebuild(&mut out, |_, key, _| if key == "managedFields" { Edit::Remove } else { Edit::Keep }, &[]);
    Some(out)
}

fn strip_row(value: &str) -> Option<String> {
    let row = raw::parse_object(value).ok()?;
    let stripped = strip_managed_fields(row.raw("object")?)?;
    let mut out = String::with_capacity(value.len());
    row.rebuild(&mut out, |_, key, _| if key == "object" { Edit::Replace(stripped.clone()) } else { Edit::Keep }, &[]);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `write_event` wrote before it copied runs of members: `RawObject::rebuild`.
    fn by_rebuild(event: &Event, changes: &Changes, append: &[(&str, &str)]) -> String {
        let mut out = String::new();
        event.obj.rebuild(
            &mut out,
            |_, key, value| match key {
                "level" if changes.new_level.is_some() => {
                    Edit::Replace(format!("\"{}\"", changes.new_level.map_or("", Level::as_str)))
                }
                "requestObject" if changes.remove_request_object => Edit::Remove,
                "responseObject" if changes.remove_response_object => Edit::Remove,
                "requestObject" | "responseObject" if changes.strip_managed_fields => {
                    strip_managed_fields(value).map_or(Edit::Keep, Edit::Replace)
                }
                k if append.iter().any(|(a, _)| *a == k) => Edit::Remove,
                _ => Edit::Keep,
            },
            append,
        );
        out
    }

    #[test]
    fn compact_events_with_appended_members_write_what_a_rebuild_writes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sample-audit.log");
        let log = std::fs::read_to_string(path).unwrap();
        let mut lines: Vec<String> = log.lines().map(str::to_string).collect();
        // Whitespace between members, a member named like the appended one, an empty object.
        lines.extend(log.lines().take(5).map(|l| l.replacen(",\"", ", \"", 3)));
        lines.extend(log.lines().take(5).map(|l| l.replacen("\"auditID\"", "\"kaudit\"", 1)));
        lines.push("{ }".into());
        let appends: [&[(&str, &str)]; 3] =
            [&[("kaudit", "{\"account\":\"a\"}")], &[("k\"ey", "2"), ("x", "3")], &[("kind", "1")]];
        for line in &lines {
            let Ok(event) = Event::parse(line) else {
                assert_eq!(line, "{ }");
                let obj = raw::parse_object(line).unwrap();
                assert_eq!(one_run(&obj, std::iter::empty()).map(|(_, run)| run), Some(""));
                continue;
            };
            for append in appends {
                let mut out = String::new();
                write_event(&event, &Changes::default(), append, &mut out);
                assert_eq!(out, by_rebuild(&event, &Changes::default(), append), "{line} {append:?}");
            }
        }
    }

    #[test]
    fn spliced_runs_write_what_a_member_by_member_rebuild_writes() {
        let texts = [
            r#"{"kind":"Event","level":"RequestResponse","stage":"ResponseComplete","verb":"create","requestObject":{"metadata":{"name":"a","managedFields":[{"x":1}]}},"responseObject":{"metadata":{"managedFields":[]}},"kaudit":{"old":true},"user":{"username":"u"}}"#,
            "{ \"level\" : \"Request\" ,\"stage\":\"ResponseComplete\",  \"verb\":\"get\",\n \"requestObject\": {\"a\":1},\"responseObject\":null ,\"kaudit\":1}",
            "{\n  \"kaudit\": {},\n  \"level\": \"Metadata\",\n  \"stage\": \"ResponseComplete\",\n  \"verb\": \"get\"\n}",
            r#"{"responseObject":{"kind":"Table","rows":[{"object":{"metadata":{"managedFields":[1]}}}]},"stage":"ResponseComplete","verb":"list","level":"Metadata"}"#,
        ];
        let levels = [None, Some(Level::Metadata), Some(Level::Request)];
        for text in texts {
            let event = Event::parse(text).unwrap();
            for new_level in levels {
                for bits in 0..8u8 {
                    let changes = Changes {
                        new_level,
                        remove_request_object: bits & 1 != 0,
                        remove_response_object: bits & 2 != 0,
                        strip_managed_fields: bits & 4 != 0,
                    };
                    for append in [&[][..], &[("kaudit", "{\"a\":1}")][..], &[("k\"ey", "2"), ("x", "3")][..]] {
                        let mut out = String::new();
                        write_event(&event, &changes, append, &mut out);
                        if changes.is_empty() && append.is_empty() {
                            assert_eq!(out, text.trim());
                        } else {
                            assert_eq!(out, by_rebuild(&event, &changes, append), "{text} {changes:?} {append:?}");
                        }
                    }
                }
            }
        }
    }
}
