//! An event as a query [`Document`]: what a query reads is looked up in the fields the event
//! parse already decoded (`verb`, `objectRef.resource`, `responseStatus.code`, ...) or, for a
//! string member, sliced from the raw text; only other paths decode a member to a JSON value,
//! once, when a query first reads it (a rule on `verb` never parses `responseObject`). The
//! enrichment is visible under its key (e.g. `kaudit.ipScope`), read from the [`Enrichment`]
//! fields directly (no JSON text in between).
//!
//! Every path gives exactly the values a JSON traversal of the written event gives
//! ([`crate::query::lookup_json`]'s rules), with one licence: a `null` may be left out where the
//! traversal would visit it, because no query test, group key or alert field tells a `null`
//! from an absent value (both are "no value").

use std::cell::RefCell;
use std::ops::ControlFlow;

use serde_json::Value as Json;

use super::edit::{strip_managed_fields, Changes};
use super::Event;
use crate::enrich::{format_ms, Enrichment};
use crate::query::{
    lookup_json_from, visit_all_json, Document, EnrichmentField, FieldPath, GeoField, KnownPath, Lookup,
    ObjectRefField, StatusField, UserField, Value, ENRICHMENT_KEY,
};

/// The enrichment a document shows under its key.
enum Extra<'e> {
    /// None given: one already written into the event (a forwarded event) is read.
    None,
    /// As JSON (a report row's stored enrichment).
    Json(&'e Json),
    /// The fields, fresh from the enricher; `source` is the managed-cluster provider context
    /// (JSON text) the pipeline writes as the last member. `json` is the written JSON, made
    /// only for what the fields do not answer directly (full-text terms, `source`).
    Fields { fields: &'e Enrichment<'e>, source: Option<&'e str>, json: RefCell<Option<Option<Json>>> },
}

/// A lazily decoded view of one event (plus its enrichment) for query evaluation.
pub struct EventDoc<'e, 'a> {
    event: &'e Event<'a>,
    extra_key: &'e str,
    extra: Extra<'e>,
    /// Decoded members, by member index (`None` = not decoded yet; `Some(None)` = invalid);
    /// empty until a path first needs a decoded member.
    cache: RefCell<Vec<Option<Option<Json>>>>,
    /// The policy's edits, so queries see the event as it is written out.
    changes: Option<&'e Changes>,
    /// Whether the enrichment is under [`ENRICHMENT_KEY`], the key the `kaudit.*` tags of
    /// [`FieldPath::known`] were recognised under (then no path needs a name compared).
    default_key: bool,
}

impl<'e, 'a> EventDoc<'e, 'a> {
    /// A view of `event` with `extra` (a fresh enrichment as JSON) visible under `extra_key`; without it, an enrichment already in the event is read.
    pub fn new(event: &'e Event<'a>, extra_key: &'e str, extra: Option<&'e Json>) -> Self {
        let extra = match extra {
            Some(json) => Extra::Json(json),
            None => Extra::None,
        };
        EventDoc::with_extra(event, extra_key, extra)
    }

    fn with_extra(event: &'e Event<'a>, extra_key: &'e str, extra: Extra<'e>) -> Self {
        let default_key = extra_key == ENRICHMENT_KEY;
        EventDoc { event, extra_key, extra, cache: RefCell::new(Vec::new()), changes: None, default_key }
    }

    /// A view of `event` with the fresh `enrichment` visible under `extra_key`, as
    /// [`Enrichment::write_json`] writes it, plus a `"source"` member with the JSON text
    /// `source` when given (the managed-cluster provider context).
    pub fn enriched(
        event: &'e Event<'a>,
        extra_key: &'e str,
        enrichment: &'e Enrichment,
        source: Option<&'e str>,
    ) -> Self {
        let extra = Extra::Fields { fields: enrichment, source, json: RefCell::new(None) };
        EventDoc::with_extra(event, extra_key, extra)
    }

    /// Shows the event as written after the policy's `changes` (level, bodies, managedFields).
    pub fn with_changes(mut self, changes: &'e Changes) -> Self {
        self.changes = Some(changes);
        self
    }

    fn decode(&self, index: usize) -> Option<Json> {
        let obj = &self.event.obj;
        let value = obj.members.get(index).map(|m| obj.value(m))?;
        let Some(c) = self.changes else { return serde_json::from_str(value).ok() };
        match obj.members.get(index).map(|m| obj.key(m))? {
            "level" if c.new_level.is_some() => c.new_level.map(|l| Json::String(l.as_str().to_string())),
            "requestObject" if c.remove_request_object => None,
            "responseObject" if c.remove_response_object => None,
            "requestObject" | "responseObject" if c.strip_managed_fields => {
                let stripped = strip_managed_fields(value);
                serde_json::from_str(stripped.as_deref().unwrap_or(value)).ok()
            }
            _ => serde_json::from_str(value).ok(),
        }
    }

    fn with_member<R>(&self, index: usize, f: impl FnOnce(&Json) -> R) -> Option<R> {
        {
            let mut cache = self.cache.borrow_mut();
            if cache.is_empty() {
                cache.resize(self.event.obj.members.len(), None);
            }
            if cache[index].is_none() {
                cache[index] = Some(self.decode(index));
            }
        }
        let cache = self.cache.borrow();
        cache[index].as_ref().and_then(|v| v.as_ref()).map(f)
    }

    /// Whether the policy's edits change member `key` (then it is read through [`Self::decode`]).
    fn edited(&self, key: &str) -> bool {
        let Some(c) = self.changes else { return false };
        match key {
            "level" => c.new_level.is_some(),
            "requestObject" | "responseObject" => {
                c.remove_request_object || c.remove_response_object || c.strip_managed_fields
            }
            _ => false,
        }
    }

    /// Answers `path` (whose first segment names member `index`) from the decoded event or the
    /// raw text; `false` when it needs the member decoded as JSON.
    fn visit_fast(&self, index: usize, path: &FieldPath, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) -> bool {
        let obj = &self.event.obj;
        let member = &obj.members[index];
        let key = obj.key(member);
        if self.edited(key) {
            return false;
        }
        if path.len() == 1 {
            return match scalar(obj.value(member)) {
                Some(v) => {
                    let _ = visit(v);
                    true
                }
                None => false,
            };
        }
        if !matches!(path.known(), KnownPath::Other | KnownPath::Enrichment(_)) {
            visit_event_field(self.event, path.known(), visit);
            return true;
        }
        if key == "annotations" {
            // Longest dotted key first (`authorization.k8s.io/decision`); annotation values
            // are strings, so only a key that ends the path yields a value.
            if let Some(v) = self.event.annotation(path.dotted(1, path.len()).unwrap_or_default()) {
                let _ = visit(Value::Str(v));
            }
            return true;
        }
        // `objectRef.uid`, `user.extra`, ...: decoded.
        false
    }
}

/// The value of one of the decoded event's fields (what a JSON traversal of the event finds
/// there, a `null` absent); `Visit` for the groups, which are several.
fn event_value<'v>(ev: &'v Event, field: KnownPath) -> Lookup<'v> {
    let one = |v: Option<&'v str>| v.map_or(Lookup::Absent, |s| Lookup::One(Value::Str(s)));
    match field {
        KnownPath::Verb => Lookup::One(Value::Str(&ev.verb)),
        KnownPath::Stage => Lookup::One(Value::Str(&ev.stage)),
        KnownPath::UserAgent => one(ev.user_agent.as_deref()),
        KnownPath::ObjectRef(f) => {
            let Some(o) = &ev.object_ref else { return Lookup::Absent };
            one(match f {
                ObjectRefField::Resource => o.resource.as_deref(),
                ObjectRefField::Namespace => o.namespace.as_deref(),
                ObjectRefField::Name => o.name.as_deref(),
                ObjectRefField::ApiGroup => o.api_group.as_deref(),
                ObjectRefField::ApiVersion => o.api_version.as_deref(),
                ObjectRefField::Subresource => o.subresource.as_deref(),
            })
        }
        KnownPath::ResponseStatus(f) => {
            let Some(r) = &ev.response_status else { return Lookup::Absent };
            match f {
                StatusField::Code => r.code.map_or(Lookup::Absent, |c| Lookup::One(Value::Num(c as f64))),
                StatusField::Status => one(r.status.as_deref()),
                StatusField::Reason => one(r.reason.as_deref()),
                StatusField::Message => one(r.message.as_deref()),
            }
        }
        KnownPath::User(f) => user_value(Some(&ev.user), f),
        KnownPath::ImpersonatedUser(f) => user_value(ev.impersonated_user.as_ref(), f),
        KnownPath::Enrichment(_) | KnownPath::Other => Lookup::Visit,
    }
}

fn user_value<'v>(user: Option<&'v super::UserInfo>, f: UserField) -> Lookup<'v> {
    let Some(u) = user else { return Lookup::Absent };
    let v = match f {
        UserField::Username => u.username.as_deref(),
        UserField::Uid => u.uid.as_deref(),
        UserField::Groups => return Lookup::Visit,
    };
    v.map_or(Lookup::Absent, |s| Lookup::One(Value::Str(s)))
}

/// Visits the values of one of the decoded event's fields ([`event_value`], and the groups).
fn visit_event_field(ev: &Event, field: KnownPath, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
    visit_lookup(event_value(ev, field), visit, || {
        let user = match field {
            KnownPath::User(UserField::Groups) => Some(&ev.user),
            KnownPath::ImpersonatedUser(UserField::Groups) => ev.impersonated_user.as_ref(),
            _ => None,
        };
        user.into_iter().flat_map(|u| u.groups())
    });
}

/// Visits what a [`Lookup`] found: its one value, nothing, or for `Visit` the strings `many`
/// lists (a field of several values).
fn visit_lookup<'v, I: IntoIterator<Item = &'v str>>(
    lookup: Lookup<'_>,
    visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>,
    many: impl FnOnce() -> I,
) {
    match lookup {
        Lookup::One(v) => {
            let _ = visit(v);
        }
        Lookup::Absent => {}
        Lookup::Visit => {
            for s in many() {
                if visit(Value::Str(s)).is_break() {
                    break;
                }
            }
        }
    }
}

/// A scalar member read from its raw text without decoding: a string without escapes, a
/// literal, an object (which a path ending there only sees as "an object"). `None`: decode it.
fn scalar(raw: &str) -> Option<Value<'_>> {
    let b = raw.as_bytes();
    match b.first()? {
        b'"' if b.len() >= 2 && !b.contains(&b'\\') => raw.get(1..raw.len() - 1).map(Value::Str),
        b'n' => Some(Value::Null),
        b't' => Some(Value::Bool(true)),
        b'f' => Some(Value::Bool(false)),
        b'{' => Some(Value::Object),
        _ => None,
    }
}

/// Visits the values at `path` (from segment 1) in the enrichment `e` as written by
/// [`Enrichment::write_json`]; `false` for what needs the JSON (`source`).
fn visit_enrichment(e: &Enrichment, path: &FieldPath, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) -> bool {
    let Some(key) = path.segment(1) else {
        let _ = visit(Value::Object);
        return true;
    };
    if let Some(field) = EnrichmentField::from_name(key) {
        // A leaf: nothing below it.
        if path.len() == 2 {
            visit_enrichment_field(e, field, visit);
        }
        return true;
    }
    match key {
        "geo" => {
            if e.geo.is_some() {
                match (path.len(), path.segment(2).and_then(GeoField::from_name)) {
                    (2, _) => {
                        let _ = visit(Value::Object);
                    }
                    (3, Some(g)) => visit_enrichment_field(e, EnrichmentField::Geo(g), visit),
                    _ => {}
                }
            }
            true
        }
        "source" => false,
        k => {
            let Some(x) = e.exec.as_ref().filter(|x| x.kind == k) else { return true };
            match path.segment(2) {
                None => {
                    let _ = visit(Value::Object);
                }
                Some(field) if path.len() == 3 => {
                    let interactive = x.kind != "portForward";
                    let _ = match field {
                        "pod" => visit(Value::Str(x.pod)),
                        "container" => {
                            x.container.as_deref().map_or(ControlFlow::Continue(()), |c| visit(Value::Str(c)))
                        }
                        "command" => x.command.as_deref().map_or(ControlFlow::Continue(()), |c| visit(Value::Str(c))),
                        "ports" if !x.ports.is_empty() => visit(Value::Str(&x.ports.join(","))),
                        "tty" if interactive => visit(Value::Bool(x.tty)),
                        "stdin" if interactive => visit(Value::Bool(x.stdin)),
                        _ => ControlFlow::Continue(()),
                    };
                }
                Some(_) => {}
            }
            true
        }
    }
}

/// The value of one enrichment leaf field, as [`Enrichment::write_json`] writes it; `Visit`
/// for the tags, which are several.
fn enrichment_value<'v>(e: &'v Enrichment, field: EnrichmentField) -> Lookup<'v> {
    let s = |v: Option<&'v str>| v.map_or(Lookup::Absent, |v| Lookup::One(Value::Str(v)));
    let b = |v: Option<bool>| v.map_or(Lookup::Absent, |v| Lookup::One(Value::Bool(v)));
    match field {
        EnrichmentField::SourceIp => s(e.source_ip),
        EnrichmentField::PeerIp => s(e.peer_ip),
        EnrichmentField::IpScope => s(e.ip_scope.map(|v| v.as_str())),
        EnrichmentField::HighRiskIp => b(e.high_risk),
        EnrichmentField::Account => s(e.account),
        EnrichmentField::ImpersonatedUser => s(e.impersonated_user),
        EnrichmentField::UserKind => s(e.user_kind),
        EnrichmentField::ResourceType => s(e.resource_type),
        EnrichmentField::ResourceCategory => s(e.resource_category),
        EnrichmentField::Success => b(e.success),
        EnrichmentField::Operation => s(e.operation),
        // The value as written (3 decimals at most), read back.
        EnrichmentField::LatencyMs => match e.latency_ms.map(|ms| format_ms(ms).parse::<f64>()) {
            Some(Ok(n)) => Lookup::One(Value::Num(n)),
            _ => Lookup::Absent,
        },
        EnrichmentField::Tags => Lookup::Visit,
        EnrichmentField::Geo(field) => {
            let Some(g) = &e.geo else { return Lookup::Absent };
            let v = match field {
                GeoField::Country => &g.country,
                GeoField::CountryCode => &g.country_code,
                GeoField::Province => &g.province,
                GeoField::City => &g.city,
                GeoField::Isp => &g.isp,
                GeoField::Asn => return g.asn.map_or(Lookup::Absent, |n| Lookup::One(Value::Num(f64::from(n)))),
            };
            s(v.as_deref())
        }
    }
}

/// Visits the values of one enrichment leaf field ([`enrichment_value`], and the tags).
fn visit_enrichment_field(e: &Enrichment, field: EnrichmentField, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
    visit_lookup(enrichment_value(e, field), visit, || {
        e.tags.iter().filter(|_| field == EnrichmentField::Tags).copied()
    });
}

/// Where a path [`FieldPath::known`] names is answered without its name compared.
enum Known<'s> {
    /// The decoded event.
    Event(KnownPath),
    /// The fresh enrichment's fields.
    Enrichment(&'s Enrichment<'s>, EnrichmentField),
}

impl Extra<'_> {
    /// The enrichment as written (JSON), decoded once.
    fn with_json<R>(&self, f: impl FnOnce(&Json) -> R) -> Option<R> {
        match self {
            Extra::None => None,
            Extra::Json(json) => Some(f(json)),
            Extra::Fields { fields, source, json } => {
                if json.borrow().is_none() {
                    let mut text = String::new();
                    fields.write_json(&mut text);
                    if let Some(source) = source {
                        crate::enrich::add_member(&mut text, "source", source);
                    }
                    *json.borrow_mut() = Some(serde_json::from_str(&text).ok());
                }
                let json = json.borrow();
                json.as_ref().and_then(|j| j.as_ref()).map(f)
            }
        }
    }
}

impl EventDoc<'_, '_> {
    /// Where `path` is answered when [`FieldPath::known`] names a field (no name compared);
    /// `None`: look it up by name.
    #[inline]
    fn known(&self, path: &FieldPath) -> Option<Known<'_>> {
        match path.known() {
            KnownPath::Other => None,
            KnownPath::Enrichment(field) => match (&self.extra, self.default_key) {
                (Extra::Fields { fields, .. }, true) => Some(Known::Enrichment(fields, field)),
                _ => None,
            },
            // Under another enrichment key, a member of that name is the enrichment.
            field => (self.default_key || path.segment(0) != Some(self.extra_key)).then_some(Known::Event(field)),
        }
    }
}

impl Document for EventDoc<'_, '_> {
    fn lookup(&self, path: &FieldPath) -> Lookup<'_> {
        match self.known(path) {
            Some(Known::Event(field)) => event_value(self.event, field),
            Some(Known::Enrichment(e, field)) => enrichment_value(e, field),
            None => Lookup::Visit,
        }
    }

    fn visit(&self, path: &FieldPath, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        match self.known(path) {
            Some(Known::Event(field)) => return visit_event_field(self.event, field, visit),
            Some(Known::Enrichment(e, field)) => return visit_enrichment_field(e, field, visit),
            None => {}
        }
        let Some(first) = path.segment(0) else { return };
        if first == self.extra_key {
            match &self.extra {
                Extra::None => {}
                Extra::Fields { fields, .. } if visit_enrichment(fields, path, &mut *visit) => return,
                extra => {
                    let _ = extra.with_json(|json| lookup_json_from(json, path, 1, &mut *visit));
                    return;
                }
            }
        }
        // Top-level keys of audit events have no dots, so only the first segment names a member;
        // without a fresh enrichment, one already written into the event (a forwarded event) is read.
        if let Some(index) = self.event.obj.index_of(first) {
            if !self.visit_fast(index, path, &mut *visit) {
                self.with_member(index, |json| lookup_json_from(json, path, 1, &mut *visit));
            }
        }
    }

    fn visit_all(&self, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        let fresh = !matches!(self.extra, Extra::None);
        for index in 0..self.event.obj.members.len() {
            if fresh && self.event.obj.key(&self.event.obj.members[index]) == self.extra_key {
                continue;
            }
            let flow = self.with_member(index, |json| visit_all_json(json, &mut *visit));
            if flow == Some(ControlFlow::Break(())) {
                return;
            }
        }
        let _ = self.extra.with_json(|json| visit_all_json(json, &mut *visit));
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
    fn under_another_enrichment_key_paths_are_looked_up_by_name() {
        // `kaudit.*` paths name the event's own `kaudit` member when the fresh enrichment is
        // under another key; a member named like an event field is then the enrichment.
        let text = r#"{"stage":"ResponseComplete","verb":"get","sourceIPs":["8.8.8.8"],"kaudit":{"ipScope":"old"}}"#;
        let ev = Event::parse(text).unwrap();
        let enricher = crate::enrich::Enricher::new(crate::enrich::EnrichConfig::default(), None);
        let fields = enricher.enrich(&ev);
        let matches =
            |key: &str, query: &str| Query::parse(query).unwrap().matches(&EventDoc::enriched(&ev, key, &fields, None));
        assert!(matches("kaudit", "kaudit.ipScope: internet and verb: get"));
        assert!(matches("enrichment", "enrichment.ipScope: internet and kaudit.ipScope: old and verb = get"));
        assert!(!matches("enrichment", "kaudit.ipScope: internet"));
        assert!(matches("verb", "verb.ipScope = internet and not verb = get"));
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
        assert!(doc.cache.borrow().get(idx).is_none_or(Option::is_none));
        assert!(Query::parse("ResponseStarted").unwrap().matches(&doc));
        assert!(!Query::parse("nothere").unwrap().matches(&doc));
    }
}
