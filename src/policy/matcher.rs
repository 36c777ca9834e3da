//! The policy compiled for evaluation, so that a request costs a few lookups and bit operations
//! rather than a comparison per string of every rule it passes.
//!
//! Every string a rule compares is numbered once per dimension (users, groups, verbs,
//! namespaces, API groups, resources, subresources, names). For users, groups and verbs each
//! value has a row of bits, one per rule: the rules that value passes (the rules that do not
//! constrain the dimension, and those that name the value). A request looks its user, groups and
//! verb up once, ANDs their rows with the rules of its kind (resource or non-resource), and
//! checks only the candidates that remain, in order, on what is left: namespaces, resources and
//! nonResourceURLs. Those values are looked up only when a candidate asks: the URL is split only
//! for a rule with namespaces or resourceNames, the path only for one with nonResourceURLs. Each
//! dimension's strings are a [`Dict`]: a lookup rejects lengths no policy string has, then probes
//! one hash slot or a few.
//!
//! The semantics are `checker.go`'s, as the reference matcher in `eval.rs` writes them; the
//! tests compare the two on generated policies and requests.

use std::borrow::Cow;
use std::collections::HashMap;

use super::eval::{url_scope, Attributes, Groups};
use super::model::{GroupResources, PolicyRule};
use crate::dict::{Dict, DictBuilder, UNKNOWN};
use crate::event::{Event, ObjectRef};

/// A request value not looked up yet.
const PENDING: u32 = u32::MAX - 1;

/// The ids of `values` (numbering those new) as a set.
fn id_set<'s>(dict: &mut DictBuilder, values: impl IntoIterator<Item = &'s str>) -> IdSet {
    let mut set = IdSet::default();
    for v in values {
        set.add(dict.id(v));
    }
    set
}

/// A set of ids of one dimension.
#[derive(Debug, Clone, Default)]
struct IdSet {
    mask: u64,
    /// Ids from 64 on (a policy naming that many values of one dimension).
    extra: Box<[u32]>,
}

impl IdSet {
    fn add(&mut self, id: u32) {
        if id < 64 {
            self.mask |= 1 << id;
        } else if !self.extra.contains(&id) {
            let mut extra = self.extra.to_vec();
            extra.push(id);
            self.extra = extra.into();
        }
    }

    fn contains(&self, id: u32) -> bool {
        match 1u64.checked_shl(id) {
            Some(bit) => self.mask & bit != 0,
            None => self.extra.contains(&id),
        }
    }

    fn is_empty(&self) -> bool {
        self.mask == 0 && self.extra.is_empty()
    }
}

/// Per value of a dimension (by id), a row of bits: the rules the value passes, 64 to a word;
/// then the row of any other value.
#[derive(Debug, Clone, Default)]
struct Rows {
    bits: Box<[u64]>,
    words: usize,
    /// The number of values (the row of any other value is this one).
    values: usize,
}

impl Rows {
    fn zero(values: usize, words: usize) -> Self {
        Rows { bits: vec![0; (values + 1) * words].into(), words, values }
    }

    /// `sets[r]`: rule `r`'s set, `None` when it does not constrain the dimension.
    fn of_sets(values: usize, sets: &[Option<IdSet>], words: usize) -> Self {
        let mut rows = Rows::zero(values, words);
        for (r, set) in sets.iter().enumerate() {
            for id in 0..=values {
                if set.as_ref().is_none_or(|s| s.contains(id as u32)) {
                    rows.set(id, r);
                }
            }
        }
        rows
    }

    fn set(&mut self, row: usize, rule: usize) {
        if let Some(w) = self.bits.get_mut(row * self.words + rule / 64) {
            *w |= 1 << (rule % 64);
        }
    }

    /// Word `w` of the row of `id` (`UNKNOWN`: any other value).
    #[inline]
    fn word(&self, id: u32, w: usize) -> u64 {
        let row = (id as usize).min(self.values);
        self.bits.get(row * self.words + w).copied().unwrap_or(0)
    }
}

/// Rows for the pairs of two ids, in an open-addressed table of the pairs present.
#[derive(Debug, Clone, Default)]
struct PairRows {
    /// `(a, b, row + 1)`; row 0 is empty.
    slots: Box<[(u32, u32, u32)]>,
    shift: u32,
    rows: Rows,
}

fn pair_hash(a: u32, b: u32) -> u32 {
    (a.wrapping_mul(0x9e37_79b1) ^ b).wrapping_mul(0x85eb_ca6b)
}

impl PairRows {
    fn new(pairs: &[((u32, u32), Vec<usize>)], words: usize) -> Self {
        let bits = (pairs.len() * 2).next_power_of_two().trailing_zeros().max(1);
        let mut slots = vec![(0, 0, 0); 1 << bits].into_boxed_slice();
        let mask = slots.len() - 1;
        // The row past the pairs stays empty: any other pair.
        let mut rows = Rows::zero(pairs.len(), words);
        for (i, ((a, b), rules)) in pairs.iter().enumerate() {
            let mut at = (pair_hash(*a, *b) >> (32 - bits)) as usize;
            while slots[at].2 != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = (*a, *b, i as u32 + 1);
            for &r in rules {
                rows.set(i, r);
            }
        }
        PairRows { slots, shift: 32 - bits, rows }
    }

    /// The row of `(a, b)`, else `UNKNOWN`.
    fn find(&self, a: u32, b: u32) -> u32 {
        if self.rows.values == 0 || a == UNKNOWN || b == UNKNOWN {
            return UNKNOWN;
        }
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = (pair_hash(a, b) >> self.shift) as usize;
        while let Some(&(x, y, row)) = self.slots.get(at) {
            if row == 0 {
                break;
            }
            if (x, y) == (a, b) {
                return row - 1;
            }
            at = (at + 1) & mask;
        }
        UNKNOWN
    }
}

/// What a rule asks beyond users, groups and verbs.
#[derive(Debug, Clone)]
enum Scope {
    /// Neither resources, namespaces nor nonResourceURLs: any request.
    Any,
    /// Resource requests only. `resources` is `None` when there are none, or when the rows of
    /// [`ResourceRows`] decide them.
    Resources { namespaces: Option<IdSet>, resources: Option<Resources> },
    /// Non-resource requests only.
    Urls(Urls),
}

/// A rule's `resources`: the entries are alternatives, so their order does not matter.
#[derive(Debug, Clone)]
struct Resources {
    /// An entry of group `*` without resources: every resource request.
    any_group: bool,
    /// The groups of the entries without resources (every resource of the group).
    whole_groups: IdSet,
    /// The entries with resources.
    entries: Box<[Entry]>,
}

impl Resources {
    /// Whether rows can decide it: no resourceNames, no pattern but plain names.
    fn plain(&self) -> bool {
        self.entries.iter().all(|e| e.names.is_none() && !e.star && e.bases.is_empty() && e.subs.is_empty())
    }
}

/// A `GroupResources` with resources.
#[derive(Debug, Clone)]
struct Entry {
    /// `None`: group `*`.
    group: Option<u32>,
    names: Option<IdSet>,
    /// `*`.
    star: bool,
    /// `R` equal to the resource (no subresource) or to `resource/subresource`.
    exact: IdSet,
    /// `P/*`: the resource is `P`, with or without a subresource.
    bases: IdSet,
    /// `*/X`: the subresource is `X`.
    subs: IdSet,
}

/// The rules whose resources are plain, decided for a resource request by its API group and
/// `resource[/subresource]`: a rule passes when an entry takes the whole group, or names the
/// resource in the group (or in `*`).
#[derive(Debug, Clone, Default)]
struct ResourceRows {
    /// Whether any rule is decided here (else no lookup is made).
    any: bool,
    /// The rules these rows do not decide: they pass.
    undecided: Box<[u64]>,
    /// By API group: the rules taking every resource of the group (or of `*`).
    by_group: Rows,
    /// By resource: the rules naming it in group `*`.
    by_resource: Rows,
    /// By (API group, resource): the rules naming the resource in the group.
    by_pair: PairRows,
}

/// A rule's `nonResourceURLs`. A spec with a `?` never equals a path taken from a URI.
#[derive(Debug, Clone)]
struct Urls {
    any: bool,
    /// `(spec, whether it holds a '?')`.
    exact: Box<[(Box<str>, bool)]>,
    /// `/healthz*` as `/healthz`.
    prefixes: Box<[(Box<str>, bool)]>,
}

impl Urls {
    /// Whether the path matches; `uri`: `text` is a request URI, whose path ends at the first `?`.
    fn matches(&self, text: &str, uri: bool) -> bool {
        if self.any {
            return true;
        }
        let exact = |(e, q): &(Box<str>, bool)| {
            if uri {
                !q && text.starts_with(&**e) && matches!(text.as_bytes().get(e.len()), None | Some(b'?'))
            } else {
                **e == *text
            }
        };
        self.exact.iter().any(exact) || self.prefixes.iter().any(|(p, q)| !(uri && *q) && text.starts_with(&**p))
    }
}

/// The compiled rules.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    users: Dict,
    user_rows: Rows,
    groups: Dict,
    group_rows: Rows,
    verbs: Dict,
    verb_rows: Rows,
    /// The rules a resource request can match (per word), and a non-resource one.
    resource_rules: Box<[u64]>,
    url_rules: Box<[u64]>,
    resource_rows: ResourceRows,
    scopes: Box<[Scope]>,
    namespaces: Dict,
    api_groups: Dict,
    /// `resource`, `resource/subresource` and the `P` of `P/*`.
    resources: Dict,
    subresources: Dict,
    names: Dict,
}

#[derive(Default)]
struct Builder {
    users: DictBuilder,
    groups: DictBuilder,
    verbs: DictBuilder,
    namespaces: DictBuilder,
    api_groups: DictBuilder,
    resources: DictBuilder,
    subresources: DictBuilder,
    names: DictBuilder,
}

fn nonempty(set: IdSet, list: &[String]) -> Option<IdSet> {
    (!list.is_empty()).then_some(set)
}

fn strs(list: &[String]) -> impl Iterator<Item = &str> {
    list.iter().map(String::as_str)
}

impl Builder {
    fn scope(&mut self, r: &PolicyRule) -> Scope {
        if !r.namespaces.is_empty() || !r.resources.is_empty() {
            return Scope::Resources {
                namespaces: nonempty(id_set(&mut self.namespaces, strs(&r.namespaces)), &r.namespaces),
                resources: (!r.resources.is_empty()).then(|| self.resources(&r.resources)),
            };
        }
        if r.non_resource_urls.is_empty() {
            return Scope::Any;
        }
        let (mut any, mut exact, mut prefixes) = (false, Vec::new(), Vec::new());
        for spec in &r.non_resource_urls {
            if spec == "*" {
                any = true;
            } else if spec.ends_with('*') {
                // The spec itself is a path the prefix matches too.
                let prefix = spec.trim_end_matches('*');
                prefixes.push((prefix.into(), prefix.contains('?')));
            } else {
                exact.push((spec.as_str().into(), spec.contains('?')));
            }
        }
        Scope::Urls(Urls { any, exact: exact.into(), prefixes: prefixes.into() })
    }

    fn resources(&mut self, list: &[GroupResources]) -> Resources {
        let mut out = Resources { any_group: false, whole_groups: IdSet::default(), entries: Box::default() };
        let mut entries = Vec::new();
        for gr in list {
            if gr.resources.is_empty() {
                match gr.group.as_str() {
                    "*" => out.any_group = true,
                    group => out.whole_groups.add(self.api_groups.id(group)),
                }
                continue;
            }
            let mut e = Entry {
                group: (gr.group != "*").then(|| self.api_groups.id(&gr.group)),
                names: nonempty(id_set(&mut self.names, strs(&gr.resource_names)), &gr.resource_names),
                star: false,
                exact: IdSet::default(),
                bases: IdSet::default(),
                subs: IdSet::default(),
            };
            for res in &gr.resources {
                e.exact.add(self.resources.id(res));
                if res == "*" {
                    e.star = true;
                }
                if let Some(sub) = res.strip_prefix("*/") {
                    e.subs.add(self.subresources.id(sub));
                }
                if let Some(base) = res.strip_suffix("/*") {
                    e.bases.add(self.resources.id(base));
                }
            }
            entries.push(e);
        }
        out.entries = entries.into();
        out
    }
}

/// The ids of an `IdSet` below `values`.
fn ids(set: &IdSet, values: usize) -> impl Iterator<Item = u32> + '_ {
    (0..values as u32).filter(|&id| set.contains(id))
}

/// Moves the plain resources of resource rules into rows (their scopes keep only namespaces).
fn resource_rows(scopes: &mut [Scope], api_groups: usize, resources: usize, words: usize) -> ResourceRows {
    let mut rows = ResourceRows {
        any: false,
        undecided: vec![0; words].into(),
        by_group: Rows::zero(api_groups, words),
        by_resource: Rows::zero(resources, words),
        by_pair: PairRows::default(),
    };
    let mut pairs: HashMap<(u32, u32), Vec<usize>> = HashMap::new();
    for (r, scope) in scopes.iter_mut().enumerate() {
        let Scope::Resources { resources: res @ Some(_), .. } = scope else {
            rows.undecided[r / 64] |= 1 << (r % 64);
            continue;
        };
        let Some(plain) = res.take_if(|res| res.plain()) else {
            rows.undecided[r / 64] |= 1 << (r % 64);
            continue;
        };
        rows.any = true;
        for g in 0..=api_groups {
            if plain.any_group || plain.whole_groups.contains(g as u32) {
                rows.by_group.set(g, r);
            }
        }
        for e in plain.entries.iter() {
            for c in ids(&e.exact, resources) {
                match e.group {
                    None => rows.by_resource.set(c as usize, r),
                    Some(g) => pairs.entry((g, c)).or_default().push(r),
                }
            }
        }
    }
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort();
    rows.by_pair = PairRows::new(&pairs, words);
    rows
}

impl Compiled {
    /// Compiles `rules`.
    pub(crate) fn new(rules: &[PolicyRule]) -> Self {
        let mut b = Builder::default();
        let users: Vec<_> = rules.iter().map(|r| nonempty(id_set(&mut b.users, strs(&r.users)), &r.users)).collect();
        let groups: Vec<_> =
            rules.iter().map(|r| nonempty(id_set(&mut b.groups, strs(&r.user_groups)), &r.user_groups)).collect();
        let verbs: Vec<_> = rules.iter().map(|r| nonempty(id_set(&mut b.verbs, strs(&r.verbs)), &r.verbs)).collect();
        let mut scopes: Box<[Scope]> = rules.iter().map(|r| b.scope(r)).collect();
        let words = rules.len().div_ceil(64).max(1);
        let (mut resource_rules, mut url_rules) = (vec![0u64; words], vec![0u64; words]);
        for (r, scope) in scopes.iter().enumerate() {
            let bit = 1u64 << (r % 64);
            if !matches!(scope, Scope::Urls(_)) {
                resource_rules[r / 64] |= bit;
            }
            if !matches!(scope, Scope::Resources { .. }) {
                url_rules[r / 64] |= bit;
            }
        }
        let (users, groups, verbs) = ((b.users.build(), users), (b.groups.build(), groups), (b.verbs.build(), verbs));
        let (api_groups, resources) = (b.api_groups.build(), b.resources.build());
        let resource_rows = resource_rows(&mut scopes, api_groups.len(), resources.len(), words);
        Compiled {
            user_rows: Rows::of_sets(users.0.len(), &users.1, words),
            users: users.0,
            group_rows: Rows::of_sets(groups.0.len(), &groups.1, words),
            groups: groups.0,
            verb_rows: Rows::of_sets(verbs.0.len(), &verbs.1, words),
            verbs: verbs.0,
            resource_rules: resource_rules.into(),
            url_rules: url_rules.into(),
            resource_rows,
            scopes,
            namespaces: b.namespaces.build(),
            api_groups,
            resources,
            subresources: b.subresources.build(),
            names: b.names.build(),
        }
    }

    /// The index of the first rule that matches the request.
    pub(crate) fn first_match(&self, q: &mut Request) -> Option<usize> {
        let user = q.user.map_or(UNKNOWN, |u| self.users.find(u));
        let verb = self.verbs.find(q.verb);
        let (kind, resource) = match q.object {
            Some(object) => {
                let rows = &self.resource_rows;
                let (mut group, mut resource, mut pair) = (UNKNOWN, UNKNOWN, UNKNOWN);
                if rows.any {
                    group = self.api_group(q, object);
                    resource = self.combined(q, object);
                    pair = rows.by_pair.find(group, resource);
                }
                (&self.resource_rules, Some((group, resource, pair)))
            }
            None => (&self.url_rules, None),
        };
        let groups = if q.user.is_some() && self.groups.len() > 0 { q.groups.as_slice() } else { &[] };
        for (w, &kind) in kind.iter().enumerate() {
            let mut candidates = kind & self.user_rows.word(user, w) & self.verb_rows.word(verb, w);
            // Groups count only for a request with a user; each group adds the rules naming it.
            let mut in_groups = self.group_rows.word(UNKNOWN, w);
            for g in groups {
                in_groups |= self.group_rows.word(self.groups.find(&g.0), w);
            }
            candidates &= in_groups;
            if let Some((group, resource, pair)) = resource {
                let rows = &self.resource_rows;
                if rows.any {
                    candidates &= rows.undecided.get(w).copied().unwrap_or(0)
                        | rows.by_group.word(group, w)
                        | rows.by_resource.word(resource, w)
                        | rows.by_pair.rows.word(pair, w);
                }
            }
            while candidates != 0 {
                let r = w * 64 + candidates.trailing_zeros() as usize;
                if self.scopes.get(r).is_some_and(|s| self.scope_matches(s, q)) {
                    return Some(r);
                }
                candidates &= candidates - 1;
            }
        }
        None
    }

    /// Looks the namespace and name up (the URL is split once for both).
    fn scope_keys(&self, q: &mut Request) {
        if q.keys.namespace != PENDING {
            return;
        }
        let (namespace, name) = match (q.given_scope, q.event.and_then(|e| Some((e, e.object_ref.as_ref()?)))) {
            (Some((namespace, name)), _) => (Cow::Borrowed(namespace), Cow::Borrowed(name)),
            (None, Some((ev, oref))) => url_scope(ev, oref),
            (None, None) => (Cow::Borrowed(""), Cow::Borrowed("")),
        };
        q.keys.namespace = self.namespaces.find(&namespace);
        q.keys.name = self.names.find(&name);
    }

    fn api_group(&self, q: &mut Request, object: Object) -> u32 {
        if q.keys.api_group == PENDING {
            q.keys.api_group = self.api_groups.find(object.api_group());
        }
        q.keys.api_group
    }

    /// The id of `resource` or `resource/subresource`.
    fn combined(&self, q: &mut Request, object: Object) -> u32 {
        if q.keys.combined == PENDING {
            q.keys.combined = match object.subresource {
                "" => self.resources.find(object.resource),
                sub => self.resources.find_joined(object.resource, sub),
            };
        }
        q.keys.combined
    }

    fn scope_matches(&self, scope: &Scope, q: &mut Request) -> bool {
        match scope {
            Scope::Any => true,
            Scope::Resources { namespaces, resources } => {
                if let Some(namespaces) = namespaces {
                    self.scope_keys(q);
                    if !namespaces.contains(q.keys.namespace) {
                        return false;
                    }
                }
                resources.as_ref().is_none_or(|r| self.resources_match(r, q))
            }
            Scope::Urls(urls) => match (q.path, q.event) {
                (Some(path), _) => urls.matches(path, false),
                (None, Some(ev)) => urls.matches(&ev.request_uri, true),
                (None, None) => urls.matches("", false),
            },
        }
    }

    fn resources_match(&self, r: &Resources, q: &mut Request) -> bool {
        if r.any_group {
            return true;
        }
        let Some(object) = q.object else { return false };
        let group = self.api_group(q, object);
        if r.whole_groups.contains(group) {
            return true;
        }
        for e in r.entries.iter() {
            if e.group.is_some_and(|g| g != group) {
                continue;
            }
            if let Some(names) = &e.names {
                self.scope_keys(q);
                if !names.contains(q.keys.name) {
                    continue;
                }
            }
            if e.star || e.exact.contains(self.combined(q, object)) {
                return true;
            }
            if !e.subs.is_empty() && !object.subresource.is_empty() {
                if q.keys.sub == PENDING {
                    q.keys.sub = self.subresources.find(object.subresource);
                }
                if e.subs.contains(q.keys.sub) {
                    return true;
                }
            }
            if !e.bases.is_empty() {
                if q.keys.resource == PENDING {
                    q.keys.resource = match object.subresource {
                        "" => self.combined(q, object),
                        _ => self.resources.find(object.resource),
                    };
                }
                if e.bases.contains(q.keys.resource) {
                    return true;
                }
            }
        }
        false
    }
}

/// What a resource request names.
#[derive(Debug, Clone, Copy)]
struct Object<'r> {
    /// `None`: ask `oref` (an event's group is worked out only when a rule reads it).
    api_group: Option<&'r str>,
    oref: Option<&'r ObjectRef<'r>>,
    resource: &'r str,
    subresource: &'r str,
}

impl<'r> Object<'r> {
    fn api_group(&self) -> &'r str {
        match (self.api_group, self.oref) {
            (Some(g), _) => g,
            (None, Some(o)) => o.group(),
            (None, None) => "",
        }
    }
}

/// The ids of the request's values a rule looked up (`PENDING` until then).
#[derive(Debug)]
struct Keys {
    namespace: u32,
    api_group: u32,
    /// `resource` or `resource/subresource`.
    combined: u32,
    /// `resource` alone.
    resource: u32,
    sub: u32,
    name: u32,
}

/// A request as the compiled rules read it: what an event gives for free at once, the URL's
/// namespace and name only when a rule asks.
pub(crate) struct Request<'r> {
    user: Option<&'r str>,
    groups: Groups<'r>,
    verb: &'r str,
    /// `None` for a non-resource request.
    object: Option<Object<'r>>,
    event: Option<&'r Event<'r>>,
    /// The namespace and name when given (else read from the event's URL when asked).
    given_scope: Option<(&'r str, &'r str)>,
    /// The path when given (else the event's URI up to its `?`).
    path: Option<&'r str>,
    keys: Keys,
}

const NO_KEYS: Keys =
    Keys { namespace: PENDING, api_group: PENDING, combined: PENDING, resource: PENDING, sub: PENDING, name: PENDING };

impl<'r> Request<'r> {
    /// The request an event logged (the attributes [`Attributes::from_event`] rebuilds).
    pub(crate) fn of_event(ev: &'r Event<'r>) -> Self {
        let user = match ev.user.name() {
            "" => None,
            name => Some(name),
        };
        let object = ev.object_ref.as_ref().map(|o| Object {
            api_group: None,
            oref: Some(o),
            resource: o.resource(),
            subresource: o.subresource(),
        });
        Request {
            user,
            groups: Groups::of(ev.user.groups.as_deref().unwrap_or_default()),
            verb: &ev.verb,
            object,
            event: Some(ev),
            given_scope: None,
            path: None,
            keys: NO_KEYS,
        }
    }

    /// The request of given attributes.
    pub(crate) fn of_attributes(a: &'r Attributes<'r>) -> Self {
        Request {
            user: a.user,
            groups: a.groups,
            verb: a.verb,
            object: a.resource_request.then_some(Object {
                api_group: Some(a.api_group),
                oref: None,
                resource: a.resource,
                subresource: a.subresource,
            }),
            event: None,
            given_scope: Some((a.namespace.as_ref(), a.name.as_ref())),
            path: Some(a.path),
            keys: NO_KEYS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Level;
    use crate::policy::{default_policy, Evaluator, Policy};
    use crate::test_rng::XorShift;

    struct Gen {
        rng: XorShift,
        /// Extra values per dimension (`w0`...): past 64, ids leave the bit masks.
        wide: usize,
    }

    impl Gen {
        fn below(&mut self, m: usize) -> usize {
            self.rng.below(m as u64) as usize
        }

        fn pick(&mut self, words: &[&str]) -> String {
            let n = words.len() + self.wide;
            match self.below(n) {
                i if i < words.len() => words[i].to_string(),
                i => format!("w{}", i - words.len()),
            }
        }

        fn list(&mut self, words: &[&str], max: usize) -> Vec<String> {
            let n = self.below(max + 1);
            (0..n).map(|_| self.pick(words)).collect()
        }

        /// A list that is empty half the time.
        fn maybe(&mut self, words: &[&str], max: usize) -> Vec<String> {
            if self.below(2) == 0 {
                Vec::new()
            } else {
                self.list(words, max)
            }
        }
    }

    const USERS: &[&str] = &["alice", "bob", "", "system:kube-proxy", "system:serviceaccount:kube-system:x", "alicf"];
    const GROUPS: &[&str] = &["system:nodes", "system:authenticated", "devs", "", "system:masters"];
    const VERBS: &[&str] = &["get", "list", "watch", "create", "update", "proxy", "delete", ""];
    const NAMESPACES: &[&str] = &["", "default", "kube-system", "*", "ns"];
    const API_GROUPS: &[&str] = &["", "apps", "*", "batch", "authentication.k8s.io", "v1"];
    const RESOURCES: &[&str] = &[
        "pods",
        "pods/log",
        "pods/*",
        "*/status",
        "*",
        "*/*",
        "/*",
        "*/",
        "/",
        "deployments",
        "deployments/scale",
        "status",
        "pods/exec/x",
        "a/b",
        "a/b/c",
        "",
        "nodes",
        "namespaces/status",
        "namespaces",
    ];
    const NAMES: &[&str] = &["p1", "", "web", "x", "a b"];
    const URLS: &[&str] = &[
        "*",
        "/healthz*",
        "/healthz",
        "/version",
        "/",
        "/*",
        "/api*",
        "/logs**",
        "",
        "/metrics",
        "/version?timeout=1s",
        "/version?*",
        "/ver*",
    ];

    fn rule(g: &mut Gen) -> PolicyRule {
        let mut r = PolicyRule {
            level: [Level::None, Level::Metadata, Level::Request, Level::RequestResponse][g.below(4)],
            users: g.maybe(USERS, 3),
            user_groups: g.maybe(GROUPS, 3),
            verbs: g.maybe(VERBS, 3),
            resources: Vec::new(),
            namespaces: Vec::new(),
            non_resource_urls: Vec::new(),
            omit_stages: Vec::new(),
            omit_managed_fields: None,
            line: 0,
        };
        match g.below(4) {
            0 => {}
            1 => r.non_resource_urls = g.list(URLS, 3),
            // Resources, namespaces, and now and then URLs too (never loaded, but evaluable).
            _ => {
                r.namespaces = g.maybe(NAMESPACES, 2);
                let n = g.below(4);
                r.resources = (0..n)
                    .map(|_| GroupResources {
                        group: g.pick(API_GROUPS),
                        resources: g.maybe(RESOURCES, 3),
                        resource_names: if g.below(3) == 0 { g.list(NAMES, 2) } else { Vec::new() },
                    })
                    .collect();
                if g.below(10) == 0 {
                    r.non_resource_urls = g.list(URLS, 2);
                }
            }
        }
        r
    }

    /// A rule that matches nothing the generator makes and numbers 70 values of every
    /// dimension first, so that the next rules' values are past the bit masks.
    fn padding() -> PolicyRule {
        let pad = |f: &dyn Fn(usize) -> String| (0..70).map(f).collect::<Vec<String>>();
        PolicyRule {
            level: Level::Metadata,
            users: pad(&|i| format!("pad{i}")),
            user_groups: pad(&|i| format!("pad{i}")),
            verbs: pad(&|i| format!("pad{i}")),
            resources: (0..70)
                .map(|i| GroupResources {
                    group: format!("pad{i}"),
                    resources: vec![format!("pad{i}"), format!("*/pad{i}"), format!("pad{i}/*")],
                    resource_names: vec![format!("pad{i}")],
                })
                .collect(),
            namespaces: pad(&|i| format!("pad{i}")),
            non_resource_urls: Vec::new(),
            omit_stages: Vec::new(),
            omit_managed_fields: None,
            line: 0,
        }
    }

    fn json(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    fn event(g: &mut Gen) -> String {
        let mut members =
            vec![r#""kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete""#.to_string()];
        members.push(format!("\"verb\":{}", json(&g.pick(VERBS))));
        match g.below(5) {
            0 => members.push(r#""user":{}"#.into()),
            _ => {
                let groups: Vec<String> = g.list(GROUPS, 4).iter().map(|s| json(s)).collect();
                let name = g.pick(USERS);
                members.push(format!("\"user\":{{\"username\":{},\"groups\":[{}]}}", json(&name), groups.join(",")));
            }
        }
        let ns = g.pick(NAMESPACES);
        let name = g.pick(NAMES);
        let words = ["api", "apis", "v1", "apps", "watch", "proxy", "namespaces", "status", "pods", "log", "", "x"];
        let uri = match g.below(12) {
            0 => format!("/api/v1/namespaces/{ns}/pods/{name}"),
            1 => format!("/api/v1/namespaces/{ns}/pods/{name}/log?follow=true"),
            2 => format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale"),
            3 => format!("/api/v1/nodes/{name}"),
            4 => format!("/api/v1/pods?fieldSelector=metadata.name%3D{name}"),
            5 => format!("/api/v1/namespaces/{ns}/pods?fieldSelector=metadata.name=={name},x=y&watch=1"),
            6 => ["/healthz", "/healthz/etcd", "/version?timeout=1s", "/", "/logs/x", "/apis", "/metrics", ""]
                [g.below(8)]
            .to_string(),
            7 => format!("/api/v1/watch/namespaces/{ns}/pods/{name}"),
            8 => format!("/api/v1/namespaces/{ns}/status"),
            _ => {
                let n = g.below(8);
                let mut path = (0..n).map(|_| words[g.below(words.len())]).collect::<Vec<_>>().join("/");
                if g.below(2) == 0 {
                    path.insert(0, '/');
                }
                path
            }
        };
        members.push(format!("\"requestURI\":{}", json(&uri)));
        if g.below(4) != 0 {
            let mut fields = Vec::new();
            let resource = g.pick(RESOURCES);
            let resource = if g.below(3) == 0 { resource } else { resource.replace(['*', '/'], "") };
            fields.push(format!("\"resource\":{}", json(&resource)));
            if g.below(2) == 0 {
                fields.push(format!("\"subresource\":{}", json(&g.pick(&["status", "log", "scale", "", "*", "a/b"]))));
            }
            if g.below(2) == 0 {
                fields.push(format!("\"namespace\":{}", json(&g.pick(NAMESPACES))));
            }
            if g.below(2) == 0 {
                fields.push(format!("\"name\":{}", json(&g.pick(NAMES))));
            }
            match g.below(3) {
                0 => fields.push(format!("\"apiGroup\":{}", json(&g.pick(API_GROUPS)))),
                1 => fields.push(format!("\"apiVersion\":{}", json(&g.pick(&["v1", "apps/v1", "batch/v1", "a/b/v1"])))),
                _ => {}
            }
            members.push(format!("\"objectRef\":{{{}}}", fields.join(",")));
        }
        format!("{{{}}}", members.join(","))
    }

    fn check(e: &Evaluator, text: &str) -> Option<usize> {
        let ev = Event::parse(text).unwrap_or_else(|err| panic!("{err}: {text}"));
        let attrs = Attributes::from_event(&ev);
        let want = e.evaluate_reference(&attrs);
        assert_eq!(e.evaluate_event(&ev).rule, want, "{text}\n{:#?}", e.policy());
        assert_eq!(e.evaluate(&attrs).rule, want, "{text}");
        want
    }

    #[test]
    fn compiled_matcher_agrees_with_the_reference() {
        let mut g = Gen { rng: XorShift::new(0x5851_f42d_4c95_7f2d), wide: 0 };
        let (mut matched, mut later, mut total) = (0, 0, 0);
        for p in 0..1_500 {
            g.wide = if p % 3 == 0 { 80 } else { 0 };
            let n = 1 + g.below(if g.wide > 0 { 40 } else { 8 });
            let mut rules: Vec<PolicyRule> = (0..n).map(|_| rule(&mut g)).collect();
            match p % 6 {
                0 => rules.insert(0, padding()),
                // The rules that can match start in the second word of the rows.
                3 => drop(rules.splice(0..0, std::iter::repeat_n(padding(), 70))),
                _ => {}
            }
            let policy = Policy {
                api_version: "audit.k8s.io/v1".into(),
                rules,
                omit_stages: vec![],
                omit_managed_fields: false,
            };
            let e = Evaluator::new(policy);
            for _ in 0..200 {
                let text = event(&mut g);
                let got = check(&e, &text);
                total += 1;
                matched += usize::from(got.is_some());
                later += usize::from(got.is_some_and(|i| i > 0));
            }
        }
        // The corpus reaches past the first rule and leaves requests unmatched.
        assert!(matched > total / 4 && later > total / 8 && matched < total, "{matched} {later} {total}");
    }

    #[test]
    fn the_seed_policy_decides_as_the_reference_on_the_sample_log() {
        let e = Evaluator::new(default_policy());
        let text = include_str!("../../tests/fixtures/sample-audit.log");
        let mut rules = std::collections::BTreeSet::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            rules.insert(check(&e, line));
        }
        assert!(rules.len() >= 3, "{rules:?}");
    }
}
