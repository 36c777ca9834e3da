//! The heap allocations of an event's view (its member list, the [`Decoded`] members, the
//! lists of `groups`, `sourceIPs` and `annotations`), lent to each record and taken back
//! after it, so that the common record allocates nothing. In an interpreter (Fluent Bit's
//! WAMR) a `malloc` and its `free` cost about 350 instructions, and a record needed six pairs.
//!
//! The view borrows the record's text (`Event<'a>`), so the buffers cannot hold it between
//! records; they keep the emptied `Vec`s as `Vec<T<'static>>` instead, and [`relend`] turns an
//! empty `Vec` into one of another lifetime in the same allocation (std's in-place `collect`),
//! without `unsafe`.

use super::decode::{Decoded, Spare};
use super::raw::{self, JsonError, Member, RawObject};
use super::scan;
use super::Event;

/// A list with more room than this is not kept for the next record: one huge event must not
/// hold its memory for good.
const MAX_KEPT: usize = 256;

/// Lists kept for `groups` (of `user` and `impersonatedUser`) and `sourceIPs`.
const MAX_LISTS: usize = 3;

/// What a member list starts with (an audit event has about 17 members).
const MEMBERS: usize = 24;

/// The allocations one record's event borrows: see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    members: Vec<Member>,
    /// Holds no `Decoded` between records (its allocation has room for one).
    decoded: Vec<Decoded<'static>>,
    spare: Spare,
}

impl Buffers {
    /// [`raw::parse_object`] in the buffers' allocations; give them back with
    /// [`Buffers::recycle`].
    pub(crate) fn parse_object<'a>(&mut self, text: &'a str) -> Result<RawObject<'a>, JsonError> {
        let mut members = std::mem::take(&mut self.members);
        if members.capacity() == 0 {
            members.reserve(MEMBERS);
        }
        let mut slot: Vec<Decoded<'a>> = relend(std::mem::take(&mut self.decoded));
        slot.reserve_exact(1);
        slot.push(Decoded::default());
        match scan::scan_object_in(text, members, slot, &mut self.spare) {
            Some(obj) => Ok(obj),
            None => raw::parse_object_with_serde(text),
        }
    }

    /// Takes back the allocations of `ev` (from [`Buffers::parse_object`] or not) for the next
    /// record, emptied; the rest of `ev` is dropped by its owner (taken by reference: moving an
    /// event copies its ~400 bytes).
    pub(crate) fn recycle(&mut self, ev: &mut Event<'_>) {
        use std::mem::take;
        let mut members = take(&mut ev.obj.members);
        members.clear(); // members need no dropping
        if members.capacity() <= MAX_KEPT {
            self.members = members;
        }
        self.decoded = keep(take(&mut ev.obj.decoded));
        self.give_list(ev.user.groups.take());
        self.give_list(ev.impersonated_user.as_mut().and_then(|u| u.groups.take()));
        self.give_list(Some(take(&mut ev.source_ips)));
        if ev.annotations.capacity() > self.spare.annotations.capacity() {
            self.spare.annotations = keep(take(&mut ev.annotations));
        }
    }

    /// Keeps a list for `groups` or `sourceIPs` (up to [`MAX_LISTS`]).
    #[inline(always)]
    fn give_list<T>(&mut self, list: Option<Vec<T>>) {
        match list {
            Some(list) if list.capacity() > 0 && self.spare.lists.len() < MAX_LISTS => {
                self.spare.lists.push(keep(list));
            }
            _ => {}
        }
    }
}

/// `v` emptied, as a `Vec` of a type that differs from `T` at most in lifetimes (or a
/// newtype of the same layout), in the same allocation: std collects a `vec::IntoIter` in
/// place when the layouts match (`relend_keeps_the_allocation` checks it).
pub(super) fn relend<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// [`relend`], or a new empty `Vec` when `v` has more room than [`MAX_KEPT`].
fn keep<T, U>(v: Vec<T>) -> Vec<U> {
    if v.capacity() > MAX_KEPT {
        return Vec::new();
    }
    relend(v)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::super::raw::CowStr;
    use super::*;

    #[test]
    fn relend_keeps_the_allocation() {
        let text = String::from("10.0.0.1");
        let mut ips: Vec<Cow<'_, str>> = Vec::with_capacity(7);
        ips.push(Cow::Borrowed(&text));
        ips.push(Cow::Owned("x".repeat(3)));
        let at = ips.as_ptr() as usize;
        let kept: Vec<CowStr<'static>> = relend(ips);
        assert_eq!((kept.len(), kept.capacity(), kept.as_ptr() as usize), (0, 7, at));
        let big: Vec<Member> = Vec::with_capacity(MAX_KEPT + 1);
        assert_eq!(keep::<_, Member>(big).capacity(), 0);
    }

    #[test]
    fn events_in_lent_buffers_equal_fresh_ones() {
        let corpus = String::from_utf8(kaudit_testkit::corpus::generate(300, 13)).unwrap();
        let sample = include_str!("../../tests/fixtures/sample-audit.log");
        let mut buffers = Buffers::default();
        let summary = |ev: &Result<Event, super::super::EventError>| match ev {
            Ok(e) => format!(
                "{:?}",
                (
                    (&e.api_version, &e.level, &e.audit_id, &e.stage, &e.request_uri, &e.verb, &e.user_agent),
                    (&e.user, &e.impersonated_user, &e.source_ips, &e.object_ref, &e.response_status, &e.annotations),
                    (&e.request_received_timestamp, &e.stage_timestamp, &e.legacy_timestamp),
                    (&e.legacy_stage_timestamp, e.obj.line_break),
                    e.obj.members.iter().map(|m| (e.obj.key(m), e.obj.value(m), m)).collect::<Vec<_>>(),
                )
            ),
            Err(e) => format!("error {e:?}"),
        };
        // Odd shapes between common ones: declined members, errors, escapes, nulls.
        let odd = [
            r#"{"stage":"a","verb":"b","user":{"username":"x","groups":["g1","g2","g3","g4","g5"]},"sourceIPs":null}"#,
            r#"{"stage":"a","verb":"b","user":{"groups":["a",1]},"annotations":{"a":"1"}}"#,
            r#"{"stage":"a","verb":"b","impersonatedUser":{"groups":["i\u0041"]},"annotations":{"k":"v\n"}}"#,
            r#"{"stage":"a","verb":"b","sourceIPs":["1.2.3.4"],"sourceIPs":["5.6.7.8"]}"#,
            r#"{"verb":"b","sourceIPs":["1.2.3.4"]}"#,
            r#"{"st\u0061ge":"a","verb":"b"}"#,
            r#"{"stage":"a","verb":"b","user":{"groups":[]},"annotations":{}}"#,
            r#"not json"#,
        ];
        let (mut lent_decoded, mut lines) = (0, 0);
        for line in corpus.lines().chain(sample.lines()).chain(odd).chain(corpus.lines().take(50)) {
            let fresh = Event::parse(line);
            let lent = buffers.parse_object(line).map_err(Into::into).and_then(Event::from_object);
            assert_eq!(summary(&lent), summary(&fresh), "{line}");
            lines += 1;
            if let Ok(mut ev) = lent {
                lent_decoded += usize::from(ev.obj.decoded.capacity() > 0);
                buffers.recycle(&mut ev);
            }
            // The spare lists stay empty and bounded.
            assert!(buffers.spare.lists.len() <= MAX_LISTS);
            assert!(buffers.spare.lists.iter().all(Vec::is_empty) && buffers.spare.annotations.is_empty());
            assert!(buffers.members.is_empty() && buffers.decoded.is_empty());
        }
        assert!(lent_decoded * 10 > lines * 9, "{lent_decoded} of {lines}");
    }

    /// The allocations a record's event uses, by address.
    fn addresses(b: &Buffers) -> Vec<usize> {
        let mut lists: Vec<usize> = b.spare.lists.iter().map(|l| l.as_ptr() as usize).collect();
        lists.sort_unstable();
        lists.extend([b.members.as_ptr() as usize, b.decoded.as_ptr() as usize, b.spare.annotations.as_ptr() as usize]);
        lists
    }

    #[test]
    fn common_records_reuse_every_allocation() {
        let sample = include_str!("../../tests/fixtures/sample-audit.log");
        let mut buffers = Buffers::default();
        for line in sample.lines() {
            let mut ev = Event::from_object(buffers.parse_object(line).unwrap()).unwrap();
            buffers.recycle(&mut ev);
        }
        assert_eq!(buffers.spare.lists.len(), MAX_LISTS);
        assert!(buffers.members.capacity() >= MEMBERS && buffers.decoded.capacity() == 1);
        assert!(buffers.spare.annotations.capacity() > 0);
        let warm = addresses(&buffers);
        for line in sample.lines() {
            let mut ev = Event::from_object(buffers.parse_object(line).unwrap()).unwrap();
            assert!(ev.obj.decoded.capacity() == 1 && ev.user.groups.is_some());
            buffers.recycle(&mut ev);
            assert_eq!(addresses(&buffers), warm, "{line}");
        }
    }
}
