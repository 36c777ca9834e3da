//! A first look at a set of queries before their trees: which of them can still match a
//! document, decided from a few single-valued fields (`verb`, `stage`, `kaudit.ipScope`, ...)
//! read once per document for all the queries.
//!
//! A query whose top level is an `and` (or a single test) holds only if each of its conjuncts
//! does. A conjunct that reads one field only, a field the document answers with one string
//! or none ([`Document::lookup`]), has an answer that depends on that string alone. Those
//! answers are computed when the gate is built, by the evaluator itself, for every string the
//! queries or the caller name (`values`), for an absent field and, when the conjunct only
//! compares whole strings (`=`, `in`, `exists`), for any other string. Per document, each
//! field's string is looked up once (in a [`Dict`]) and its row of answers ANDed into the
//! candidates: a query left out cannot match; a query kept is evaluated in full. Anything else
//! (another value kind, a field the document does not answer by lookup, a test such as `:` or
//! `~` on a string not named) keeps every query, so the gate never changes an answer.

use std::ops::ControlFlow;

use super::document::{Document, Lookup, Value};
use super::eval::{Literal, Node, Test};
use super::known::{EnrichmentField, GeoField, KnownPath, StatusField, UserField};
use super::{FieldPath, Query};
use crate::dict::{Dict, DictBuilder};

/// Queries from this position on are not gated (always candidates).
pub const GATED: usize = 64;

/// The gate of a list of queries (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Gate {
    fields: Vec<GateField>,
}

/// One field the gate reads, with the answers of every query's conjuncts on it.
#[derive(Debug, Clone)]
struct GateField {
    path: FieldPath,
    /// The queries with a conjunct on this field.
    queries: u64,
    /// The strings answered ahead.
    strings: Dict,
    /// Per string of `strings` (by id), the queries it does not rule out.
    rows: Box<[u64]>,
    /// The queries not ruled out when the field is absent.
    absent: u64,
    /// The queries not ruled out by a string `strings` does not hold.
    other: u64,
}

impl Gate {
    /// The gate of `queries` (the first [`GATED`]). `values(path)` names strings worth
    /// answering ahead for a field (the usual verbs, stages, enrichment constants) besides
    /// those the queries compare with.
    pub fn new(queries: &[&Query], values: &dyn Fn(&FieldPath) -> Vec<&'static str>) -> Gate {
        // The single-field conjuncts of each query, by field.
        let mut by_field: Vec<(FieldPath, Vec<(usize, &Node)>)> = Vec::new();
        for (i, q) in queries.iter().enumerate().take(GATED) {
            let conjuncts = match &q.root {
                Node::All(children) => children.as_slice(),
                one => std::slice::from_ref(one),
            };
            for c in conjuncts {
                let mut paths = Some(Vec::new());
                c.collect_paths(&mut paths);
                let Some([path]) = paths.as_deref() else { continue };
                if !answered_as_text(path.known()) {
                    continue;
                }
                match by_field.iter_mut().find(|(p, _)| p == path) {
                    Some((_, list)) => list.push((i, c)),
                    None => by_field.push((path.clone(), vec![(i, c)])),
                }
            }
        }
        let mut fields = Vec::new();
        for (path, conjuncts) in by_field {
            let mut strings: Vec<String> = values(&path).into_iter().map(String::from).collect();
            for (_, c) in &conjuncts {
                c.visit_tests(&mut |test| {
                    for text in literal_texts(test) {
                        strings.push(text.to_string());
                    }
                });
            }
            strings.sort();
            strings.dedup();
            let answers = |value: Option<&str>| -> u64 {
                let doc = OneField { path: &path, value };
                conjuncts.iter().fold(!0u64, |row, (i, c)| if c.eval(&doc) { row } else { row & !(1 << i) })
            };
            // A string no conjunct compares with (not `strings`, so no literal either).
            let mut stranger = String::from("\u{0}gate");
            while strings.contains(&stranger) {
                stranger.push('\u{0}');
            }
            let other = conjuncts.iter().fold(!0u64, |row, (i, c)| {
                let decided = c.compares_whole_strings();
                if !decided || c.eval(&OneField { path: &path, value: Some(&stranger) }) {
                    row
                } else {
                    row & !(1 << i)
                }
            });
            // `strings` is deduplicated: their ids are their indexes.
            let mut dict = DictBuilder::default();
            let mut rows = Vec::with_capacity(strings.len());
            for text in &strings {
                dict.id(text);
                rows.push(answers(Some(text)));
            }
            let field = GateField {
                queries: conjuncts.iter().fold(0, |m, (i, _)| m | 1 << i),
                strings: dict.build(),
                rows: rows.into(),
                absent: answers(None),
                other,
                path,
            };
            // A field that rules nothing out in any case is not worth a lookup.
            if field.rows.iter().chain([&field.absent, &field.other]).any(|&r| r != !0) {
                fields.push(field);
            }
        }
        // The fields gating the most queries first (the sooner every query is out, the fewer
        // fields are read).
        fields.sort_by_key(|f| std::cmp::Reverse(f.queries.count_ones()));
        Gate { fields }
    }

    /// Whether the gate reads no field (every query is always a candidate).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The queries (bit `i` for query `i` < [`GATED`]) that may match `doc`; a query whose
    /// bit is clear does not.
    pub fn candidates(&self, doc: &dyn Document) -> u64 {
        let mut candidates = !0u64;
        for f in &self.fields {
            if candidates & f.queries == 0 {
                continue;
            }
            candidates &= match doc.lookup(&f.path) {
                Lookup::One(Value::Str(s)) => f.row(s),
                Lookup::Absent => f.absent,
                _ => !0,
            };
            if candidates == 0 {
                break;
            }
        }
        candidates
    }
}

impl GateField {
    /// The queries not ruled out by the string `s`.
    fn row(&self, s: &str) -> u64 {
        // `UNKNOWN` (any other string) is past the last row.
        self.rows.get(self.strings.find(s) as usize).copied().unwrap_or(self.other)
    }
}

/// Whether documents answer `field` by [`Document::lookup`] with one string or none.
fn answered_as_text(field: KnownPath) -> bool {
    match field {
        KnownPath::Other
        | KnownPath::ResponseStatus(StatusField::Code)
        | KnownPath::User(UserField::Groups)
        | KnownPath::ImpersonatedUser(UserField::Groups) => false,
        KnownPath::Enrichment(e) => !matches!(
            e,
            EnrichmentField::HighRiskIp
                | EnrichmentField::Success
                | EnrichmentField::LatencyMs
                | EnrichmentField::Tags
                | EnrichmentField::Geo(GeoField::Asn)
        ),
        _ => true,
    }
}

/// The strings a test compares with.
fn literal_texts(test: &Test) -> Vec<&str> {
    fn text(l: &Literal) -> Option<&str> {
        match l {
            Literal::Str { text, .. } => Some(text.as_str()),
            _ => None,
        }
    }
    match test {
        Test::Eq(l) => text(l).into_iter().collect(),
        Test::In { literals, .. } => literals.iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}

/// A document with one field, holding one string or nothing.
struct OneField<'p, 'v> {
    path: &'p FieldPath,
    value: Option<&'v str>,
}

impl Document for OneField<'_, '_> {
    fn visit(&self, path: &FieldPath, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        if let (true, Some(v)) = (path == self.path, self.value) {
            let _ = visit(Value::Str(v));
        }
    }

    fn lookup(&self, path: &FieldPath) -> Lookup<'_> {
        match (path == self.path, self.value) {
            (true, Some(v)) => Lookup::One(Value::Str(v)),
            _ => Lookup::Absent,
        }
    }

    fn visit_all(&self, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        if let Some(v) = self.value {
            let _ = visit(Value::Str(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::Enricher;
    use crate::event::doc::EventDoc;
    use crate::event::Event;
    use crate::test_rng::XorShift;

    fn pick<'a>(rng: &mut XorShift, items: &[&'a str]) -> &'a str {
        items[rng.below(items.len() as u64) as usize]
    }

    /// Values of the gated fields, some of them usual, some not, some case variants.
    const VERBS: &[&str] =
        &["get", "list", "watch", "create", "delete", "deletecollection", "patch", "escalate", "GET"];
    const STAGES: &[&str] = &["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic", "responsecomplete"];
    const RESOURCES: &[&str] =
        &["secrets", "pods", "configmaps", "a-resource-name-longer-than-thirty-one-bytes", "secret"];
    const SUBRESOURCES: &[&str] = &["exec", "attach", "log", "status"];
    const USERS: &[&str] = &["alice", "system:anonymous", "system:serviceaccount:kube-system:x", "system:node:n1"];
    const IPS: &[&str] = &["10.0.0.1", "8.8.8.8", "::1", "not-an-ip", "1.1.1.1"];

    fn event(rng: &mut XorShift) -> String {
        let mut obj = serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "a",
            "stage": pick(rng, STAGES), "verb": pick(rng, VERBS), "requestURI": "/api",
            "user": {"username": pick(rng, USERS)},
            "stageTimestamp": "2024-05-01T10:00:00.000000Z",
        });
        if rng.below(4) != 0 {
            let mut oref = serde_json::json!({"resource": pick(rng, RESOURCES), "namespace": "ns"});
            if rng.below(3) == 0 {
                oref["subresource"] = pick(rng, SUBRESOURCES).into();
            }
            obj["objectRef"] = oref;
        }
        if rng.below(5) != 0 {
            obj["sourceIPs"] = serde_json::json!([pick(rng, IPS)]);
        }
        if rng.below(5) != 0 {
            let code = [200, 201, 403, 404, 500][rng.below(5) as usize];
            obj["responseStatus"] = serde_json::json!({ "code": code });
        }
        obj.to_string()
    }

    /// A random test on one field.
    fn test(rng: &mut XorShift) -> String {
        let (field, values): (&str, &[&str]) = match rng.below(7) {
            0 => ("verb", VERBS),
            1 => ("stage", STAGES),
            2 => ("objectRef.resource", RESOURCES),
            3 => ("objectRef.subresource", SUBRESOURCES),
            4 => ("kaudit.ipScope", &["internet", "intranet", "invalid", "Internet"]),
            5 => ("kaudit.userKind", &["human", "serviceaccount", "anonymous", "node", "system"]),
            _ => ("user.username", USERS),
        };
        let v = pick(rng, values);
        match rng.below(10) {
            0 => format!("{field} = {v:?}"),
            1 => format!("{field} != {v:?}"),
            2 => format!("{field} in ({v:?}, {:?})", pick(rng, values)),
            3 => format!("{field} not in ({v:?}, null)"),
            4 => format!("{field}: {v:?}"),
            5 => format!("not {field}: {v:?}"),
            6 => format!("exists({field})"),
            7 => format!("not exists({field})"),
            8 => format!("{field} ~ \"^{}\"", &v[..1]),
            _ => format!("({field} = {v:?} or {field} = {:?})", pick(rng, values)),
        }
    }

    fn query(rng: &mut XorShift) -> Query {
        let mut text = test(rng);
        for _ in 0..rng.below(4) {
            let next = test(rng);
            text = match rng.below(6) {
                0 => format!("{text} or {next}"),
                1 => format!("({text}) and not ({next})"),
                2 => format!("{text} and responseStatus.code < 400"),
                _ => format!("{text} and {next}"),
            };
        }
        Query::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn a_field_with_more_strings_than_u16_indexes_still_rules_out() {
        // The gate once left strings past `u16` indexes out and kept every query for any other
        // string; the dictionary numbers them all.
        let many: Vec<&'static str> = (0..70_000).map(|i| &*format!("v{i}").leak()).collect();
        let verb = FieldPath::parse("verb").unwrap();
        let queries = [Query::parse(r#"verb = "get""#).unwrap(), Query::parse(r#"verb != "v69999""#).unwrap()];
        let refs: Vec<&Query> = queries.iter().collect();
        let gate = Gate::new(&refs, &|_| many.clone());
        let row = |v| gate.candidates(&OneField { path: &verb, value: Some(v) }) & 0b11;
        assert_eq!(row("get"), 0b11);
        assert_eq!(row("v69999"), 0b00);
        assert_eq!(row("v3"), 0b10);
        assert_eq!(row("not named"), 0b10);
        assert_eq!(gate.candidates(&OneField { path: &verb, value: None }) & 0b11, 0b10);
    }

    #[test]
    fn a_query_the_gate_rules_out_does_not_match() {
        let mut rng = XorShift::new(0x5eed_1234_abcd_0001);
        let enricher = Enricher::default();
        let events: Vec<String> = (0..300).map(|_| event(&mut rng)).collect();
        let events: Vec<Event> = events.iter().map(|t| Event::parse(t).unwrap()).collect();
        let (mut ruled_out, mut matched) = (0, 0);
        for round in 0..200 {
            let queries: Vec<Query> = (0..1 + rng.below(12)).map(|_| query(&mut rng)).collect();
            let refs: Vec<&Query> = queries.iter().collect();
            let usual = |p: &FieldPath| match p.known() {
                KnownPath::Verb if round % 2 == 0 => vec!["get", "list", "create"],
                KnownPath::Enrichment(EnrichmentField::IpScope) => vec!["intranet", "internet", "invalid"],
                _ => Vec::new(),
            };
            let gate = Gate::new(&refs, &usual);
            for ev in &events {
                let fields = enricher.enrich(ev);
                let doc = EventDoc::enriched(ev, "kaudit", &fields, None);
                let candidates = gate.candidates(&doc);
                for (i, q) in queries.iter().enumerate() {
                    let m = q.matches(&doc);
                    matched += usize::from(m);
                    if candidates >> i & 1 == 0 {
                        ruled_out += 1;
                        assert!(!m, "{} ruled out but matches {}", q.source(), ev.obj.text);
                    }
                }
            }
        }
        // The gate does its work: most non-matching answers are known before the tree.
        assert!(ruled_out > 100_000 && matched > 10_000, "{ruled_out} ruled out, {matched} matched");
    }
}
