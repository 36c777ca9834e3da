//! An event as a query [`Document`]: top-level members are decoded to JSON values only when a
//! query reads them (a rule on `verb` never parses `responseObject`), and the enrichment is
//! visible under its key (e.g. `kaudit.ipScope`).

use std::cell::RefCell;
use std::ops::ControlFlow;

use serde_json::Value as Json;

use super::edit::{strip_managed_fields, Changes};
use super::Event;
use crate::query::{lookup_json_from, visit_all_json, Document, FieldPath, Value};

/// A lazily decoded view of one event (plus its enrichment) for query evaluation.
pub struct EventDoc<'e, 'a> {
    event: &'e Event<'a>,
    extra_key: &'e str,
    extra: Option<&'e Json>,
    /// Decoded members, by member index (`None` = not decoded yet; `Some(None)` = invalid).
    cache: RefCell<Vec<Option<Option<Json>>>>,
    /// The policy's edits, so queries see the event as it is written out.
    changes: Option<&'e Changes>,
}

impl<'e, 'a> EventDoc<'e, 'a> {
    /// A view of `event` with `extra` (a fresh enrichment) visible under `extra_key`; without it, an enrichment already in the event is read.
    pub fn new(event: &'e Event<'a>, extra_key: &'e str, extra: Option<&'e Json>) -> Self {
        EventDoc { event, extra_key, extra, cache: RefCell::new(vec![None; event.obj.members.len()]), changes: None }
    }

    /// Shows the event as written after the policy's `changes` (level, bodies, managedFields).
    pub fn with_changes(mut self, changes: &'e Changes) -> Self {
        self.changes = Some(changes);
        self
    }

    fn decode(&self, index: usize) -> Option<Json> {
        let member = &self.event.obj.members[index];
        let Some(c) = self.changes else { return serde_json::from_str(member.value).ok() };
        match member.key.as_ref() {
            "level" if c.new_level.is_some() => c.new_level.map(|l| Json::String(l.as_str().to_string())),
            "requestObject" if c.remove_request_object => None,
            "responseObject" if c.remove_response_object => None,
            "requestObject" | "responseObject" if c.strip_managed_fields => {
                let stripped = strip_managed_fields(member.value);
                serde_json::from_str(stripped.as_deref().unwrap_or(member.value)).ok()
            }
            _ => serde_json::from_str(member.value).ok(),
        }
    }

    fn with_member<R>(&self, index: usize, f: impl FnOnce(&Json) -> R) -> Option<R> {
        {
            let mut cache = self.cache.borrow_mut();
            if cache[index].is_none() {
                cache[index] = Some(self.decode(index));
            }
        }
        let cache = self.cache.borrow();
        cache[index].as_ref().and_then(|v| v.as_ref()).map(f)
    }
}

impl Document for EventDoc<'_, '_> {
    fn visit(&self, path: &FieldPath, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        let Some(first) = path.segment(0) else { return };
        if let (true, Some(extra)) = (first == self.extra_key, self.extra) {
            let _ = lookup_json_from(extra, path, 1, &mut *visit);
            return;
        }
        // Top-level keys of audit events have no dots, so only the first segment names a member;
        // without a fresh enrichment, one already written into the event (a forwarded event) is read.
        if let Some(index) = self.event.obj.index_of(first) {
            self.with_member(index, |json| lookup_json_from(json, path, 1, &mut *visit));
        }
    }

    fn visit_all(&self, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        for index in 0..self.event.obj.members.len() {
            if self.extra.is_some() && self.event.obj.members[index].key == self.extra_key {
                continue;
            }
            let flow = self.with_member(index, |json| visit_all_json(json, &mut *visit));
            if flow == Some(ControlFlow::Break(())) {
                return;
            }
        }
        if let Some(extra) = self.extra {
            let _ = visit_all_json(extra, &mut *visit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Query;

    #[test]
    fn enrichment_written_into_the_event_is_read_when_no_fresh_one_is_given() {
        let text = r#"{"stage":"ResponseComplete","verb":"get","kaudit":{"ipScope":"internet"}}"#;
        let ev = Event::parse(text).unwrap();
        assert!(Query::parse("kaudit.ipScope: internet").unwrap().matches(&EventDoc::new(&ev, "kaudit", None)));
        let fresh: Json = serde_json::json!({"ipScope": "intranet"});
        let doc = EventDoc::new(&ev, "kaudit", Some(&fresh));
        assert!(!Query::parse("kaudit.ipScope: internet").unwrap().matches(&doc));
    }

    #[test]
    fn seed_query_on_a_lazy_event() {
        let text = r#"{"kind":"Event","stage":"ResponseStarted","verb":"create","objectRef":{"resource":"pods","subresource":"exec"},"annotations":{"authorization.k8s.io/decision":"allow"},"responseObject":{"huge":[1,2,3]}}"#;
        let ev = Event::parse(text).unwrap();
        let extra: Json = serde_json::json!({"ipScope": "internet"});
        let doc = EventDoc::new(&ev, "kaudit", Some(&extra));
        let q = Query::parse("verb : create and objectRef.subresource:exec and stage:  ResponseStarted").unwrap();
        assert!(q.matches(&doc));
        assert!(Query::parse("kaudit.ipScope: internet").unwrap().matches(&doc));
        assert!(Query::parse("annotations.authorization.k8s.io/decision: allow").unwrap().matches(&doc));
        // responseObject was never needed, so never decoded.
        let idx = ev.obj.index_of("responseObject").unwrap();
        assert!(doc.cache.borrow()[idx].is_none());
        assert!(Query::parse("ResponseStarted").unwrap().matches(&doc));
        assert!(!Query::parse("nothere").unwrap().matches(&doc));
    }
}
