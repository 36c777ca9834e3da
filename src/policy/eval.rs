//! Policy evaluation, as kube-apiserver's `policyRuleEvaluator` (pkg/audit/policy/checker.go),
//! and the request attributes it needs, rebuilt from a logged event (requestinfo.go).

use std::borrow::Cow;
use std::sync::Arc;

use super::matcher::{Compiled, Request};
use super::model::Policy;
#[cfg(test)]
use super::model::{GroupResources, PolicyRule};
use crate::event::{CowStr, Event, Level, ObjectRef};

/// The authorizer attributes the apiserver evaluated the policy with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes<'a> {
    /// `None` on the failed-authentication path (the event's user is empty).
    pub user: Option<&'a str>,
    /// The user's groups.
    pub groups: Groups<'a>,
    /// The request verb (`get`, `list`, `watch`, `create`, ...).
    pub verb: &'a str,
    /// Whether the request is for a resource (else a non-resource URL such as `/healthz`).
    pub resource_request: bool,
    /// The API group (empty for the core group).
    pub api_group: &'a str,
    /// The resource (`pods`).
    pub resource: &'a str,
    /// The subresource (`exec`, `status`), if any.
    pub subresource: &'a str,
    /// The namespace, if any.
    pub namespace: Cow<'a, str>,
    /// The object name, if any.
    pub name: Cow<'a, str>,
    /// URL path without the query (non-resource requests are matched on it).
    pub path: &'a str,
}

/// The groups of the request's user, borrowed from the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Groups<'a>(&'a [CowStr<'a>]);

impl<'a> Groups<'a> {
    pub(crate) fn of(groups: &'a [CowStr<'a>]) -> Self {
        Groups(groups)
    }

    pub(crate) fn as_slice(&self) -> &'a [CowStr<'a>] {
        self.0
    }

    /// The group names, in logged order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().map(|g| g.0.as_ref())
    }
}

/// What the policy decided for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The level the policy decides.
    pub level: Level,
    /// Policy ∪ rule omitStages, sorted, without duplicates (shared with the evaluator: a
    /// decision allocates nothing).
    pub omit_stages: Arc<[String]>,
    /// Whether managedFields are omitted (`omitManagedFields`, the rule's or the policy's).
    pub omit_managed_fields: bool,
    /// Index of the matching rule, `None` when nothing matched.
    pub rule: Option<usize>,
}

impl Decision {
    /// Whether events of `stage` are omitted.
    pub fn omits(&self, stage: &str) -> bool {
        self.omit_stages.iter().any(|s| s == stage)
    }
}

/// A policy prepared for evaluation: the rules compiled (`matcher`), each rule's decision (the
/// omitStages union) made once.
#[derive(Debug, Clone)]
pub struct Evaluator {
    policy: Policy,
    compiled: Compiled,
    /// Per rule.
    decisions: Box<[Decision]>,
    no_match: Decision,
}

fn union(a: &[String], b: &[String]) -> Arc<[String]> {
    let mut out: Vec<String> = a.iter().chain(b).cloned().collect();
    out.sort();
    out.dedup();
    out.into()
}

impl Evaluator {
    /// The evaluator of `policy`.
    pub fn new(policy: Policy) -> Self {
        let rules = policy.rules.iter().enumerate().map(|(i, rule)| Decision {
            level: rule.level,
            omit_stages: union(&policy.omit_stages, &rule.omit_stages),
            omit_managed_fields: rule.omit_managed_fields.unwrap_or(policy.omit_managed_fields),
            rule: Some(i),
        });
        let no_match = Decision {
            level: Level::None,
            omit_stages: union(&policy.omit_stages, &[]),
            omit_managed_fields: policy.omit_managed_fields,
            rule: None,
        };
        let decisions = rules.collect();
        let compiled = Compiled::new(&policy.rules);
        Evaluator { policy, compiled, decisions, no_match }
    }

    /// The policy it evaluates.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// `EvaluatePolicyRule`: the first matching rule wins; no match is `None` with the policy's omitStages.
    pub fn evaluate(&self, attrs: &Attributes) -> Decision {
        self.decision(self.compiled.first_match(&mut Request::of_attributes(attrs)))
    }

    /// Evaluates the policy for a logged event (what [`Evaluator::evaluate`] decides on the
    /// event's [`Attributes::from_event`], reading only what the rules reached ask for).
    pub fn evaluate_event(&self, event: &Event) -> Decision {
        self.decision(self.compiled.first_match(&mut Request::of_event(event)))
    }

    fn decision(&self, rule: Option<usize>) -> Decision {
        rule.and_then(|i| self.decisions.get(i)).unwrap_or(&self.no_match).clone()
    }

    /// The reference: `checker.go`'s loops over the rules' strings, as written before the
    /// rules were compiled.
    #[cfg(test)]
    pub(crate) fn evaluate_reference(&self, attrs: &Attributes) -> Option<usize> {
        self.policy.rules.iter().position(|rule| rule_matches(rule, attrs))
    }
}

#[cfg(test)]
fn rule_matches(rule: &PolicyRule, a: &Attributes) -> bool {
    if !rule.users.is_empty() {
        match a.user {
            Some(u) if rule.users.iter().any(|x| x == u) => {}
            _ => return false,
        }
    }
    if !rule.user_groups.is_empty()
        && (a.user.is_none() || !a.groups.iter().any(|g| rule.user_groups.iter().any(|x| x == g)))
    {
        return false;
    }
    if !rule.verbs.is_empty() && !rule.verbs.iter().any(|v| v == a.verb) {
        return false;
    }
    if !rule.namespaces.is_empty() || !rule.resources.is_empty() {
        return rule_matches_resource(rule, a);
    }
    if !rule.non_resource_urls.is_empty() {
        return rule_matches_non_resource(rule, a);
    }
    true
}

#[cfg(test)]
fn rule_matches_resource(rule: &PolicyRule, a: &Attributes) -> bool {
    if !a.resource_request {
        return false;
    }
    if !rule.namespaces.is_empty() && !rule.namespaces.iter().any(|n| n == a.namespace.as_ref()) {
        return false;
    }
    if rule.resources.is_empty() {
        return true;
    }
    rule.resources.iter().any(|gr| group_resources_match(gr, a))
}

#[cfg(test)]
fn group_resources_match(gr: &GroupResources, a: &Attributes) -> bool {
    if gr.group != a.api_group && gr.group != "*" {
        return false;
    }
    if gr.resources.is_empty() {
        return true;
    }
    let combined = if a.subresource.is_empty() { None } else { Some((a.resource, a.subresource)) };
    for res in &gr.resources {
        if !gr.resource_names.is_empty() && !gr.resource_names.iter().any(|n| n == a.name.as_ref()) {
            continue;
        }
        let exact = match combined {
            None => res == a.resource,
            Some((r, s)) => {
                res.len() == r.len() + 1 + s.len()
                    && res.starts_with(r)
                    && res[r.len()..].starts_with('/')
                    && res.ends_with(s)
            }
        };
        if exact || res == "*" {
            return true;
        }
        if let Some(sub) = res.strip_prefix("*/") {
            if !a.subresource.is_empty() && sub == a.subresource {
                return true;
            }
        }
        // `pods/*` matches the resource whether or not a subresource is present (the apiserver's code).
        if let Some(base) = res.strip_suffix("/*") {
            if base == a.resource {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
fn rule_matches_non_resource(rule: &PolicyRule, a: &Attributes) -> bool {
    if a.resource_request {
        return false;
    }
    rule.non_resource_urls.iter().any(|spec| {
        if spec == "*" || spec == a.path {
            return true;
        }
        match spec.strip_suffix('*') {
            Some(_) => a.path.starts_with(spec.trim_end_matches('*')),
            None => false,
        }
    })
}

/// What requestinfo.go derives from a resource URL, where it matters to the policy.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UrlInfo<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
}

/// The parts of a path as `path.trim_matches('/').split('/')` gives them, found in one pass
/// over the bytes (an interpreter pays per call of a searcher, and a path has half a dozen
/// parts): the positions of the first few slashes (no more parts are ever read) and the count.
struct PathParts<'a> {
    text: &'a str,
    /// The trimmed path is `text[from..to]`.
    from: usize,
    to: usize,
    /// Positions of the first slashes inside it.
    slashes: [usize; PathParts::KEPT],
    /// How many slashes there are inside it (the parts are one more).
    inner: usize,
    /// Where the query's `?` is (else the text's length).
    end: usize,
}

impl<'a> PathParts<'a> {
    const KEPT: usize = 9;

    /// Splits `text` (with `at_query`, a request URI: only what precedes its first `?`, the
    /// query being returned too).
    fn split(text: &'a str, at_query: bool) -> (PathParts<'a>, Option<&'a str>) {
        let b = text.as_bytes();
        let mut from = 0;
        while b.get(from) == Some(&b'/') {
            from += 1;
        }
        let mut slashes = [0; PathParts::KEPT];
        let mut inner = 0;
        let (mut end, mut query) = (b.len(), None);
        let mut i = from;
        while let Some(&c) = b.get(i) {
            if c == b'/' {
                if let Some(slot) = slashes.get_mut(inner) {
                    *slot = i;
                }
                inner += 1;
            } else if c == b'?' && at_query {
                (end, query) = (i, text.get(i + 1..));
                break;
            }
            i += 1;
        }
        // Trailing slashes were counted: they are not inside the trimmed path.
        let mut to = end;
        while to > from && b.get(to - 1) == Some(&b'/') {
            to -= 1;
            inner -= 1;
        }
        (PathParts { text, from, to, slashes, inner, end }, query)
    }

    /// The text up to the query.
    fn path(&self) -> &'a str {
        self.text.get(..self.end).unwrap_or_default()
    }

    /// How many parts there are.
    fn len(&self) -> usize {
        self.inner + 1
    }

    /// The `k`th part (`""` past the end or past the kept ones).
    fn part(&self, k: usize) -> &'a str {
        if k > self.inner || k >= PathParts::KEPT {
            return "";
        }
        let start = match k.checked_sub(1) {
            None => self.from,
            Some(j) => self.slashes.get(j).map_or(self.to, |s| s + 1),
        };
        let end = if k < self.inner { self.slashes.get(k).copied().unwrap_or(self.to) } else { self.to };
        self.text.get(start..end).unwrap_or_default()
    }
}

/// What k8s.io/apiserver's `RequestInfoFactory` reads from a resource request path (prefixes
/// `api`, `apis`), from its parts.
fn resource_info<'a>(parts: &PathParts<'a>, verb: &str) -> Option<UrlInfo<'a>> {
    // Only the front is ever removed, so `start` moves instead.
    let mut start = match parts.part(0) {
        "api" => 2,
        "apis" => 3,
        _ => return None,
    };
    let len = parts.len().max(start);
    let part = |start: usize, i: usize| parts.part(start + i);
    if len == start || part(start, 0).is_empty() {
        return None;
    }
    if matches!(part(start, 0), "watch" | "proxy") {
        start += 1;
    }
    let count = |start: usize| len - start;
    let mut info = UrlInfo::default();
    if part(start, 0) == "namespaces" && count(start) > 1 {
        info.namespace = part(start, 1);
        // `namespaces/{ns}/{resource}`: the resource is the next part, unless it is one of the
        // namespace's own subresources (status, finalize).
        if count(start) > 2 && !matches!(part(start, 2), "status" | "finalize") {
            start += 2;
        }
    }
    if count(start) >= 3 && verb != "proxy" {
        info.subresource = part(start, 2);
    }
    if count(start) >= 2 {
        info.name = part(start, 1);
    }
    if count(start) > 0 {
        info.resource = part(start, 0);
    }
    Some(info)
}

/// `fieldSelector=metadata.name=X` on a list/watch sets the name attribute.
fn field_selector_name(query: Option<&str>) -> Option<Cow<'_, str>> {
    let query = query?;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "fieldSelector" {
            for term in v.split(',') {
                let term = term.trim();
                let value = term.strip_prefix("metadata.name=").or_else(|| term.strip_prefix("metadata.name=="));
                if let Some(value) = value {
                    return Some(Cow::Owned(value.to_string()));
                }
            }
        }
    }
    None
}

/// The namespace and name of the resource request an event logged. objectRef.namespace/name
/// may have been back-filled from the request body after the policy ran (a create's name comes
/// from its body); the URL says what the apiserver saw.
pub(crate) fn url_scope<'a>(ev: &'a Event<'a>, oref: &'a ObjectRef<'a>) -> (Cow<'a, str>, Cow<'a, str>) {
    let (parts, query) = PathParts::split(&ev.request_uri, true);
    let verb = ev.verb.as_ref();
    match resource_info(&parts, verb) {
        Some(url) => {
            let name = if url.name.is_empty() && matches!(verb, "list" | "watch") {
                field_selector_name(query).unwrap_or(Cow::Borrowed(""))
            } else {
                Cow::Borrowed(url.name)
            };
            (Cow::Borrowed(url.namespace), name)
        }
        None => (Cow::Borrowed(oref.namespace()), Cow::Borrowed(if verb == "create" { "" } else { oref.name() })),
    }
}

impl<'a> Attributes<'a> {
    /// Rebuilds the policy attributes of the request an event logged.
    pub fn from_event(ev: &'a Event<'a>) -> Attributes<'a> {
        let user = match ev.user.name() {
            "" => None,
            name => Some(name),
        };
        let groups = Groups(ev.user.groups.as_deref().unwrap_or_default());
        let path = PathParts::split(&ev.request_uri, true).0.path();
        let verb = ev.verb.as_ref();
        let Some(oref) = ev.object_ref.as_ref() else {
            return Attributes {
                user,
                groups,
                verb,
                resource_request: false,
                api_group: "",
                resource: "",
                subresource: "",
                namespace: Cow::Borrowed(""),
                name: Cow::Borrowed(""),
                path,
            };
        };
        let (namespace, name) = url_scope(ev, oref);
        Attributes {
            user,
            groups,
            verb,
            resource_request: true,
            api_group: oref.group(),
            resource: oref.resource(),
            subresource: oref.subresource(),
            namespace,
            name,
            path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_resource_path<'a>(path: &'a str, verb: &str) -> Option<UrlInfo<'a>> {
        resource_info(&PathParts::split(path, false).0, verb)
    }

    /// `parse_resource_path` as it was written with a `Vec` of the parts.
    fn by_vec<'a>(path: &'a str, verb: &str) -> Option<UrlInfo<'a>> {
        let trimmed = path.trim_matches('/');
        let mut parts: Vec<&'a str> = trimmed.split('/').collect();
        match parts.first() {
            Some(&"api") => parts.drain(..2.min(parts.len())),
            Some(&"apis") => parts.drain(..3.min(parts.len())),
            _ => return None,
        };
        if parts.is_empty() || parts[0].is_empty() {
            return None;
        }
        if matches!(parts[0], "watch" | "proxy") {
            parts.remove(0);
        }
        let mut info = UrlInfo::default();
        if parts.first() == Some(&"namespaces") && parts.len() > 1 {
            info.namespace = parts[1];
            if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
                parts.drain(..2);
            }
        }
        if parts.len() >= 3 && verb != "proxy" {
            info.subresource = parts[2];
        }
        if parts.len() >= 2 {
            info.name = parts[1];
        }
        if !parts.is_empty() {
            info.resource = parts[0];
        }
        Some(info)
    }

    #[test]
    fn request_uris_split_as_find_and_split_once_do() {
        let pieces = ["/", "?", "api", "v1", "namespaces", "a", "=", "&", "//", "é"];
        let mut rng = crate::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..100_000 {
            let uri: String = (0..rng.below(12)).map(|_| pieces[rng.below(pieces.len() as u64) as usize]).collect();
            let (parts, query) = PathParts::split(&uri, true);
            let path = uri.find('?').map_or(uri.as_str(), |i| &uri[..i]);
            assert_eq!(parts.path(), path, "{uri}");
            assert_eq!(query, uri.split_once('?').map(|(_, q)| q), "{uri}");
            let want: Vec<&str> = path.trim_matches('/').split('/').collect();
            assert_eq!(parts.len(), want.len(), "{uri}");
            for (k, w) in want.iter().enumerate().take(PathParts::KEPT) {
                assert_eq!(parts.part(k), *w, "{uri} {k}");
            }
            assert_eq!(parts.part(want.len()), "", "{uri}");
            assert_eq!(resource_info(&parts, "get"), by_vec(path, "get"), "{uri}");
        }
    }

    #[test]
    fn resource_paths_parse_as_with_a_vec_of_parts() {
        let words = [
            "api",
            "apis",
            "v1",
            "apps",
            "watch",
            "proxy",
            "namespaces",
            "ns",
            "status",
            "finalize",
            "pods",
            "p",
            "exec",
            "",
            "x",
        ];
        let mut rng = crate::test_rng::XorShift::new(0x2545_f491_4f6c_dd1d);
        let mut next = |m: u64| rng.below(m);
        for i in 0..200_000 {
            let n = next(10) as usize;
            let mut path: String =
                (0..n).map(|_| words[next(words.len() as u64) as usize]).collect::<Vec<_>>().join("/");
            if i % 3 == 0 {
                path.insert(0, '/');
            }
            if i % 5 == 0 {
                path.push('/');
            }
            let verb = if i % 7 == 0 { "proxy" } else { "get" };
            assert_eq!(parse_resource_path(&path, verb), by_vec(&path, verb), "{path} {verb}");
        }
    }
}
