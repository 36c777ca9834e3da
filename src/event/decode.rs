//! The small members decisions read (`user`, `impersonatedUser`, `objectRef`, `responseStatus`,
//! `annotations`, `sourceIPs`, v1beta1's `metadata`) decoded while the scanner validates them:
//! their bytes are walked once, no member list, strings borrowed unless escaped, and the `Vec`s
//! of the decoded types taken from [`Spare`] (lists of earlier records, emptied: see
//! [`super::buffers`]). In an interpreter (Fluent Bit's WAMR) this costs a fraction of serde's
//! generic decoding.
//!
//! Each decoder validates the JSON it reads exactly as the scanner does, and answers `None` for
//! anything outside the common shape (escaped keys, a duplicate field, a value of an unexpected
//! type, a negative or non-integer `code`, lone surrogates): the scanner then validates the
//! member as any other value and the event decodes it with serde, so results and error
//! messages are exactly serde's.
//!
//! The top-level strings (`stage`, `verb`, `auditID`, the timestamps, ...) are taken here too
//! when plain (and `requestURI` when escaped). An event whose members were all taken here, once
//! each, is built from [`Decoded`] alone ([`Decoded::take_event`]); anything else (a duplicate,
//! another escaped or a `null` string where the event reads one, a wrong `kind`, a declined
//! member) makes the event decode its members one by one, in order, as before.

use std::borrow::Cow;

use super::raw::RawObject;
use super::raw::{CowStr, JsonStr};
use super::scan::{array_at, json_str_at, null_at, object_at, skip_value, slice, string_at, string_end, Ws};
use super::{Event, EventError, LegacyMeta, ObjectRef, ResponseStatus, UserInfo};

/// What a decoder answers: the value and the offset after its JSON.
type At<T> = Option<(T, usize)>;

/// Decoded `annotations`, in input order.
type Annotations<'a> = Vec<(Cow<'a, str>, JsonStr<'a>)>;

/// Empty lists for the decoders to fill: the allocations of an earlier record's lists (see
/// [`super::buffers`]), or none (then the decoders allocate, as [`super::raw::parse_object`]).
#[derive(Debug, Default)]
pub(crate) struct Spare {
    /// For `groups` and `sourceIPs`.
    pub(super) lists: Vec<Vec<CowStr<'static>>>,
    /// For `annotations`.
    pub(super) annotations: Annotations<'static>,
}

impl Spare {
    /// An empty list for `groups` or `sourceIPs`.
    #[inline(always)]
    fn list<T>(&mut self) -> Vec<T> {
        match self.lists.pop() {
            Some(list) => super::buffers::relend(list),
            None => Vec::with_capacity(4),
        }
    }

    /// An empty list for `annotations`.
    #[inline(always)]
    fn annotations<'a>(&mut self) -> Annotations<'a> {
        match std::mem::take(&mut self.annotations) {
            spare if spare.capacity() > 0 => super::buffers::relend(spare),
            _ => Vec::with_capacity(4),
        }
    }
}

/// The members decoded during the split of an event, each with the index of the member it
/// came from (the last of duplicates; the others are decoded again when the event reads them).
///
/// When every member the event reads was decoded here, once each, with nothing declined
/// ([`Decoded::complete`]), the event is built from these alone, without a second walk of
/// the members (see [`super::Event::from_object`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Decoded<'a> {
    user: Option<(usize, Option<UserInfo<'a>>)>,
    impersonated_user: Option<(usize, Option<UserInfo<'a>>)>,
    object_ref: Option<(usize, Option<ObjectRef<'a>>)>,
    response_status: Option<(usize, Option<ResponseStatus<'a>>)>,
    legacy_meta: Option<(usize, Option<LegacyMeta<'a>>)>,
    annotations: Option<(usize, Annotations<'a>)>,
    /// In the event's type (`groups` are `CowStr`s): no conversion when taken.
    source_ips: Option<(usize, Option<Vec<Cow<'a, str>>>)>,
    /// The top-level strings (plain, so borrowed), valid when `complete`.
    pub(super) strings: Strings<'a>,
    /// `requestURI` when it has escapes (decoded): Go's encoder writes `&` as `\u0026`, so a
    /// URL with a query often has one; other escaped strings make the event decode its members
    /// one by one.
    escaped_request_uri: Option<String>,
    /// The members seen, one bit per name ([`Decoded::seen`]).
    seen: u32,
    /// Something was declined or seen twice: the event decodes the members one by one.
    declined: bool,
}

/// The top-level strings of an event, as the split found them (plain strings, so
/// borrowed and without drop glue; `null` where the event allows it).
#[derive(Debug, Clone, Default)]
pub(super) struct Strings<'a> {
    pub(super) api_version: Option<&'a str>,
    pub(super) level: Option<&'a str>,
    pub(super) audit_id: Option<&'a str>,
    pub(super) stage: Option<&'a str>,
    pub(super) request_uri: Option<&'a str>,
    pub(super) verb: Option<&'a str>,
    pub(super) user_agent: Option<&'a str>,
    pub(super) request_received_timestamp: Option<&'a str>,
    pub(super) stage_timestamp: Option<&'a str>,
    pub(super) legacy_timestamp: Option<&'a str>,
}

/// The value decoded for member `index`, taken out of its slot.
fn take<T>(slot: &mut Option<(usize, T)>, index: usize) -> Option<T> {
    match slot {
        Some((i, _)) if *i == index => slot.take().map(|(_, v)| v),
        _ => None,
    }
}

/// A decoded member's value.
fn value<T>(slot: Option<(usize, Option<T>)>) -> Option<T> {
    slot.and_then(|(_, v)| v)
}

/// Stores a decoder's answer for member `index`; the offset after the value.
#[inline(always)]
fn put<T>(slot: &mut Option<(usize, T)>, index: usize, at: At<T>) -> Option<usize> {
    let (v, end) = at?;
    *slot = Some((index, v));
    Some(end)
}

/// Marks the member named by `bit` seen; a second one makes the event decode its members one
/// by one (the last duplicate wins there, and errors are reported in order).
#[inline(always)]
fn first_of(seen: &mut u32, declined: &mut bool, bit: u32) {
    if *seen & bit != 0 {
        *declined = true;
    }
    *seen |= bit;
}

/// What a string member may hold besides a plain string.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Str {
    /// A string only (`null` is an error the event reports).
    Required,
    /// A string or `null`.
    Nullable,
}

impl<'a> Decoded<'a> {
    /// Decodes member `index` (named `key`, its value at `text[start]`) when it is one of the
    /// members decisions read: the offset after the value and whether it is a plain string;
    /// `None` for other members and for whatever the decoder declines (the caller then
    /// validates the value itself).
    #[inline(always)]
    pub(crate) fn decode(
        &mut self,
        index: usize,
        key: &[u8],
        text: &'a str,
        start: usize,
        line_break: &mut Ws,
        spare: &mut Spare,
    ) -> Option<(usize, bool)> {
        use Str::{Nullable, Required};
        let strings = &mut self.strings;
        let (bit, field, kind) = match key {
            b"kind" => (1 << 0, None, Required),
            b"apiVersion" => (1 << 1, Some(&mut strings.api_version), Required),
            b"level" => (1 << 2, Some(&mut strings.level), Nullable),
            b"auditID" => (1 << 3, Some(&mut strings.audit_id), Nullable),
            b"stage" => (1 << 4, Some(&mut strings.stage), Required),
            b"requestURI" => (1 << 5, Some(&mut strings.request_uri), Nullable),
            b"verb" => (1 << 6, Some(&mut strings.verb), Required),
            b"userAgent" => (1 << 7, Some(&mut strings.user_agent), Nullable),
            b"requestReceivedTimestamp" => (1 << 8, Some(&mut strings.request_received_timestamp), Nullable),
            b"stageTimestamp" => (1 << 9, Some(&mut strings.stage_timestamp), Nullable),
            b"timestamp" => (1 << 10, Some(&mut strings.legacy_timestamp), Nullable),
            _ => {
                let (bit, end) = match key {
                    b"user" => (1 << 11, put(&mut self.user, index, user_at(text, start, line_break, spare))),
                    b"impersonatedUser" => {
                        (1 << 12, put(&mut self.impersonated_user, index, user_at(text, start, line_break, spare)))
                    }
                    b"objectRef" => {
                        // Decoded in its slot: an `ObjectRef` is too big to move cheaply.
                        let slot = self.object_ref.insert((index, None));
                        let end = object_ref_into(text, start, line_break, &mut slot.1);
                        if end.is_none() {
                            self.object_ref = None;
                        }
                        (1 << 13, end)
                    }
                    b"responseStatus" => {
                        (1 << 14, put(&mut self.response_status, index, response_status_at(text, start, line_break)))
                    }
                    b"metadata" => {
                        (1 << 15, put(&mut self.legacy_meta, index, legacy_meta_at(text, start, line_break)))
                    }
                    b"annotations" => {
                        (1 << 16, put(&mut self.annotations, index, annotations_at(text, start, line_break, spare)))
                    }
                    b"sourceIPs" => {
                        (1 << 17, put(&mut self.source_ips, index, strings_at(text, start, line_break, spare)))
                    }
                    _ => return None,
                };
                first_of(&mut self.seen, &mut self.declined, bit);
                if end.is_none() {
                    self.declined = true;
                }
                return end.map(|end| (end, false));
            }
        };
        first_of(&mut self.seen, &mut self.declined, bit);
        // A plain string: borrowed; an escaped `requestURI`: decoded. Anything else (other
        // escapes, `null`, other types) is validated by the caller and decoded by the event,
        // member by member.
        let b = text.as_bytes();
        if b.get(start) == Some(&b'"') {
            if let Some((end, false)) = string_end(b, start) {
                let Some(s) = slice(text, start + 1, end - 1) else {
                    self.declined = true;
                    return None;
                };
                let fits = match bit {
                    1 => s == "Event",
                    2 => s.starts_with("audit.k8s.io/"),
                    _ => true,
                };
                match field {
                    Some(field) if fits => *field = Some(s),
                    None if fits => {}
                    _ => self.declined = true,
                }
                return Some((end, true));
            }
            if bit == 1 << 5 {
                if let Some((Cow::Owned(uri), end)) = string_at(text, start) {
                    self.escaped_request_uri = Some(uri);
                    return Some((end, false));
                }
            }
        } else if kind == Nullable && b.get(start) == Some(&b'n') {
            let end = null_at(b, start)?;
            return Some((end, false));
        }
        self.declined = true;
        None
    }

    /// Whether the split met both a `stage` and a `verb` member (of any value): what tells an
    /// event from a managed cluster's wrapper without looking the keys up again.
    pub(crate) fn saw_stage_and_verb(&self) -> bool {
        const STAGE_AND_VERB: u32 = 1 << 4 | 1 << 6;
        self.seen & STAGE_AND_VERB == STAGE_AND_VERB
    }

    /// Every member the event reads was decoded here, once each: the event needs nothing else.
    pub(crate) fn complete(&self) -> bool {
        !self.declined
    }

    /// The event of `obj` from its [`Decoded`], which the caller found [`Decoded::complete`]:
    /// what decoding its members one by one gives, without walking them again. The values are
    /// taken out of the `Decoded`, which stays in `obj.decoded` (its allocation is reused, see
    /// [`super::buffers`]).
    pub(super) fn take_event(mut obj: RawObject<'a>) -> Result<Event<'a>, EventError> {
        let mut slot = std::mem::take(&mut obj.decoded);
        let Some(d) = slot.last_mut() else { return Err(super::missing("stage")) };
        let s = &d.strings;
        let Some(stage) = s.stage else { return Err(super::missing("stage")) };
        let Some(verb) = s.verb else { return Err(super::missing("verb")) };
        let borrowed = |s: Option<&'a str>| s.map(Cow::Borrowed);
        let (api_version, level, user_agent) = (borrowed(s.api_version), borrowed(s.level), borrowed(s.user_agent));
        let audit_id = Cow::Borrowed(s.audit_id.unwrap_or(""));
        let request_uri = match d.escaped_request_uri.take() {
            Some(uri) => Cow::Owned(uri),
            None => Cow::Borrowed(s.request_uri.unwrap_or("")),
        };
        let request_received_timestamp = borrowed(s.request_received_timestamp);
        let (stage_timestamp, legacy_timestamp) = (borrowed(s.stage_timestamp), borrowed(s.legacy_timestamp));
        let user = value(d.user.take()).unwrap_or_default();
        let impersonated_user = value(d.impersonated_user.take());
        let source_ips = value(d.source_ips.take()).unwrap_or_default();
        let object_ref = value(d.object_ref.take());
        let response_status = value(d.response_status.take());
        let annotations = d.annotations.take().map(|(_, a)| a).unwrap_or_default();
        let legacy_stage_timestamp = value(d.legacy_meta.take()).and_then(|m| m.creation_timestamp);
        Ok(Event {
            obj: RawObject { decoded: slot, ..obj },
            api_version,
            level,
            audit_id,
            stage: Cow::Borrowed(stage),
            request_uri,
            verb: Cow::Borrowed(verb),
            user,
            impersonated_user,
            source_ips,
            user_agent,
            object_ref,
            response_status,
            annotations,
            request_received_timestamp,
            stage_timestamp,
            legacy_timestamp,
            legacy_stage_timestamp,
        })
    }

    /// No member an event reads was seen.
    pub(crate) fn is_empty(&self) -> bool {
        self.seen == 0
    }

    /// `user` or `impersonatedUser` of member `index`, if decoded.
    pub(super) fn user(&mut self, index: usize, impersonated: bool) -> Option<Option<UserInfo<'a>>> {
        take(if impersonated { &mut self.impersonated_user } else { &mut self.user }, index)
    }
    /// `objectRef` of member `index`, if decoded.
    pub(super) fn object_ref(&mut self, index: usize) -> Option<Option<ObjectRef<'a>>> {
        take(&mut self.object_ref, index)
    }
    /// `responseStatus` of member `index`, if decoded.
    pub(super) fn response_status(&mut self, index: usize) -> Option<Option<ResponseStatus<'a>>> {
        take(&mut self.response_status, index)
    }
    /// v1beta1 `metadata` of member `index`, if decoded.
    pub(super) fn legacy_meta(&mut self, index: usize) -> Option<Option<LegacyMeta<'a>>> {
        take(&mut self.legacy_meta, index)
    }
    /// `annotations` of member `index`, if decoded.
    pub(super) fn annotations(&mut self, index: usize) -> Option<Annotations<'a>> {
        take(&mut self.annotations, index)
    }
    /// `sourceIPs` of member `index`, if decoded.
    pub(super) fn source_ips(&mut self, index: usize) -> Option<Option<Vec<Cow<'a, str>>>> {
        take(&mut self.source_ips, index)
    }
}

/// Runs a decoder on `raw`, which must be exactly the value (a member's raw text).
fn whole<'a, T>(raw: &'a str, at: impl FnOnce(&'a str, usize, &mut Ws) -> At<T>) -> Option<T> {
    match at(raw, 0, &mut 0)? {
        (v, end) if end == raw.len() => Some(v),
        _ => None,
    }
}

/// `null` at `text[i]`.
#[inline(always)]
fn is_null(text: &str, i: usize) -> bool {
    text.as_bytes().get(i) == Some(&b'n')
}

/// An `Option<Cow<str>>` field: `null` or a string.
#[inline(always)]
fn opt_string_at(text: &str, i: usize) -> At<Option<Cow<'_, str>>> {
    if is_null(text, i) {
        return Some((None, null_at(text.as_bytes(), i)?));
    }
    let (s, end) = string_at(text, i)?;
    Some((Some(s), end))
}

/// Marks field `bit` seen; `None` on a duplicate (serde's derive rejects those).
#[inline]
fn first(seen: &mut u8, bit: u8) -> Option<()> {
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    Some(())
}

/// An `Option<Vec<CowStr>>`: `null` or an array of strings.
/// (`T`: `CowStr` for `groups`, `Cow` for `sourceIPs`, the types of the fields they fill.)
fn strings_at<'a, T: From<Cow<'a, str>>>(
    text: &'a str,
    i: usize,
    line_break: &mut Ws,
    spare: &mut Spare,
) -> At<Option<Vec<T>>> {
    if is_null(text, i) {
        return Some((None, null_at(text.as_bytes(), i)?));
    }
    let mut out = spare.list();
    let end = array_at(text, i, line_break, |start, _| {
        let (s, end) = string_at(text, start)?;
        out.push(T::from(s));
        Some(end)
    })?;
    Some((Some(out), end))
}

/// `user` / `impersonatedUser` as `Option<UserInfo>`.
fn user_at<'a>(text: &'a str, i: usize, line_break: &mut Ws, spare: &mut Spare) -> At<Option<UserInfo<'a>>> {
    if is_null(text, i) {
        return Some((None, null_at(text.as_bytes(), i)?));
    }
    let mut u = UserInfo::default();
    let mut seen = 0u8;
    let end = object_at(text, i, line_break, |key, start, line_break| match key {
        "username" => {
            first(&mut seen, 1)?;
            let (v, end) = opt_string_at(text, start)?;
            u.username = v;
            Some(end)
        }
        "uid" => {
            first(&mut seen, 2)?;
            let (v, end) = opt_string_at(text, start)?;
            u.uid = v;
            Some(end)
        }
        "groups" => {
            first(&mut seen, 4)?;
            let (v, end) = strings_at(text, start, line_break, spare)?;
            u.groups = v;
            Some(end)
        }
        _ => skip_value(text.as_bytes(), start, line_break),
    })?;
    Some((Some(u), end))
}

/// `objectRef` as `Option<ObjectRef>`.
fn object_ref_at<'a>(text: &'a str, i: usize, line_break: &mut Ws) -> At<Option<ObjectRef<'a>>> {
    let mut o = None;
    let end = object_ref_into(text, i, line_break, &mut o)?;
    Some((o, end))
}

/// `objectRef` into `out` (which is `None`), without moving it: the offset after it.
fn object_ref_into<'a>(text: &'a str, i: usize, line_break: &mut Ws, out: &mut Option<ObjectRef<'a>>) -> Option<usize> {
    if is_null(text, i) {
        return null_at(text.as_bytes(), i);
    }
    let o = out.insert(ObjectRef::default());
    let mut seen = 0u8;
    let end = object_at(text, i, line_break, |key, start, line_break| {
        let (bit, field) = match key {
            "resource" => (1, &mut o.resource),
            "namespace" => (2, &mut o.namespace),
            "name" => (4, &mut o.name),
            "apiGroup" => (8, &mut o.api_group),
            "apiVersion" => (16, &mut o.api_version),
            "subresource" => (32, &mut o.subresource),
            _ => return skip_value(text.as_bytes(), start, line_break),
        };
        first(&mut seen, bit)?;
        let (v, end) = opt_string_at(text, start)?;
        *field = v;
        Some(end)
    })?;
    Some(end)
}

/// A non-negative JSON integer that fits an `i64` (`-0`, negatives, fractions and exponents go
/// to serde_json, which has its own rules for them).
fn code_at(text: &str, i: usize) -> At<Option<i64>> {
    let b = text.as_bytes();
    if is_null(text, i) {
        return Some((None, null_at(b, i)?));
    }
    let end = super::scan::number_at(b, i)?;
    let digits = b.get(i..end)?;
    if digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some((Some(n), end))
}

/// `responseStatus` as `Option<ResponseStatus>`.
fn response_status_at<'a>(text: &'a str, i: usize, line_break: &mut Ws) -> At<Option<ResponseStatus<'a>>> {
    if is_null(text, i) {
        return Some((None, null_at(text.as_bytes(), i)?));
    }
    let mut r = ResponseStatus::default();
    let mut seen = 0u8;
    let end = object_at(text, i, line_break, |key, start, line_break| {
        let (bit, field) = match key {
            "code" => {
                first(&mut seen, 1)?;
                let (v, end) = code_at(text, start)?;
                r.code = v;
                return Some(end);
            }
            "status" => (2, &mut r.status),
            "reason" => (4, &mut r.reason),
            "message" => {
                first(&mut seen, 8)?;
                if is_null(text, start) {
                    r.message = None;
                    return null_at(text.as_bytes(), start);
                }
                let (v, end) = json_str_at(text, start)?;
                r.message = Some(v);
                return Some(end);
            }
            _ => return skip_value(text.as_bytes(), start, line_break),
        };
        first(&mut seen, bit)?;
        let (v, end) = opt_string_at(text, start)?;
        *field = v;
        Some(end)
    })?;
    Some((Some(r), end))
}

/// v1beta1/v1alpha1 `metadata` as `Option<LegacyMeta>` (only `creationTimestamp` is read).
fn legacy_meta_at<'a>(text: &'a str, i: usize, line_break: &mut Ws) -> At<Option<LegacyMeta<'a>>> {
    if is_null(text, i) {
        return Some((None, null_at(text.as_bytes(), i)?));
    }
    let mut m = LegacyMeta::default();
    let mut seen = 0u8;
    let end = object_at(text, i, line_break, |key, start, line_break| {
        if key != "creationTimestamp" {
            return skip_value(text.as_bytes(), start, line_break);
        }
        first(&mut seen, 1)?;
        let (v, end) = opt_string_at(text, start)?;
        m.creation_timestamp = v;
        Some(end)
    })?;
    Some((Some(m), end))
}

/// `annotations`: `null` or an object of strings, in input order (duplicates kept).
fn annotations_at<'a>(text: &'a str, i: usize, line_break: &mut Ws, spare: &mut Spare) -> At<Annotations<'a>> {
    if is_null(text, i) {
        return Some((Vec::new(), null_at(text.as_bytes(), i)?));
    }
    let mut out = spare.annotations();
    let end = object_at(text, i, line_break, |key, start, _| {
        let (v, end) = json_str_at(text, start)?;
        out.push((Cow::Borrowed(key), v));
        Some(end)
    })?;
    Some((out, end))
}

/// `sourceIPs` (exactly `raw`), for a member the split did not decode.
pub(super) fn strings(raw: &str) -> Option<Option<Vec<CowStr<'_>>>> {
    whole(raw, |text, i, line_break| strings_at(text, i, line_break, &mut Spare::default()))
}

/// `user` / `impersonatedUser` (exactly `raw`), for a member the split did not decode.
pub(super) fn user(raw: &str) -> Option<Option<UserInfo<'_>>> {
    whole(raw, |text, i, line_break| user_at(text, i, line_break, &mut Spare::default()))
}

/// `objectRef` (exactly `raw`), for a member the split did not decode.
pub(super) fn object_ref(raw: &str) -> Option<Option<ObjectRef<'_>>> {
    whole(raw, object_ref_at)
}

/// `responseStatus` (exactly `raw`), for a member the split did not decode.
pub(super) fn response_status(raw: &str) -> Option<Option<ResponseStatus<'_>>> {
    whole(raw, response_status_at)
}

/// v1beta1 `metadata` (exactly `raw`), for a member the split did not decode.
pub(super) fn legacy_meta(raw: &str) -> Option<Option<LegacyMeta<'_>>> {
    whole(raw, legacy_meta_at)
}

/// `annotations` (exactly `raw`), for a member the split did not decode.
pub(super) fn annotations(raw: &str) -> Option<Annotations<'_>> {
    whole(raw, |text, i, line_break| annotations_at(text, i, line_break, &mut Spare::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::raw::{self, decode};

    type UserTuple = (Option<String>, Option<String>, Option<Vec<String>>);
    fn user_tuple(u: &Option<UserInfo>) -> Option<UserTuple> {
        u.as_ref().map(|u| {
            (
                u.username.as_deref().map(str::to_string),
                u.uid.as_deref().map(str::to_string),
                u.groups.as_ref().map(|g| g.iter().map(|c| c.0.to_string()).collect()),
            )
        })
    }

    type RefTuple = [Option<String>; 6];
    fn ref_tuple(o: &Option<ObjectRef>) -> Option<RefTuple> {
        o.as_ref().map(|o| {
            [&o.resource, &o.namespace, &o.name, &o.api_group, &o.api_version, &o.subresource]
                .map(|f| f.as_deref().map(str::to_string))
        })
    }

    type StatusTuple = (Option<i64>, [Option<String>; 3]);
    fn status_tuple(r: &Option<ResponseStatus>) -> Option<StatusTuple> {
        r.as_ref().map(|r| {
            let message = r.message.as_deref().map(str::to_string);
            (r.code, [r.status.as_deref().map(str::to_string), r.reason.as_deref().map(str::to_string), message])
        })
    }

    /// Every member the fast path decodes, it decodes as serde does.
    fn check_same(key: &str, raw: &str) {
        match key {
            "user" | "impersonatedUser" => {
                if let Some(fast) = user(raw) {
                    assert_eq!(
                        Some(user_tuple(&fast)),
                        decode::<Option<UserInfo>>(raw).ok().map(|u| user_tuple(&u)),
                        "{raw}"
                    );
                }
            }
            "objectRef" => {
                if let Some(fast) = object_ref(raw) {
                    assert_eq!(
                        Some(ref_tuple(&fast)),
                        decode::<Option<ObjectRef>>(raw).ok().map(|o| ref_tuple(&o)),
                        "{raw}"
                    );
                }
            }
            "responseStatus" => {
                if let Some(fast) = response_status(raw) {
                    let serde = decode::<Option<ResponseStatus>>(raw).ok();
                    assert_eq!(Some(status_tuple(&fast)), serde.map(|r| status_tuple(&r)), "{raw}");
                }
            }
            "metadata" => {
                if let Some(fast) = legacy_meta(raw) {
                    let time = |m: Option<LegacyMeta>| m.map(|m| m.creation_timestamp.map(|t| t.into_owned()));
                    assert_eq!(Some(time(fast)), decode::<Option<LegacyMeta>>(raw).ok().map(time), "{raw}");
                }
            }
            "sourceIPs" => {
                if let Some(fast) = strings(raw) {
                    assert_eq!(Some(fast), decode::<Option<Vec<CowStr>>>(raw).ok(), "{raw}");
                }
            }
            _ => {}
        }
    }

    #[test]
    fn users_decode_as_serde_decodes_them() {
        for raw in [
            r#"{"username":"alice","uid":"1","groups":["a","b"]}"#,
            r#"{ "username" : "al\"ice\u00e9" , "groups" : [ ] , "extra" : {"x":[1,{"y":null}]} }"#,
            r#"{"username":null,"groups":null}"#,
            r#"{}"#,
            "null",
        ] {
            assert!(user(raw).is_some(), "{raw}");
            check_same("user", raw);
        }
        // Declined: serde decides (and reports) these.
        for raw in [
            r#"{"username":"a","username":"b"}"#,
            r#"{"user\u006eame":"a"}"#,
            r#"{"username":1}"#,
            r#"{"groups":["a",1]}"#,
            r#"{"groups":"a"}"#,
            r#"{"username":"\ud800"}"#,
            r#"{"username":"a"} "#,
            r#"["a"]"#,
            r#""bob""#,
            r#"{"username":"a""#,
        ] {
            assert!(user(raw).is_none(), "{raw}");
        }
    }

    #[test]
    fn object_refs_and_statuses_decode_as_serde_decodes_them() {
        let raw = r#"{"resource":"pods","namespace":"d\u0065fault","name":"n","apiGroup":"","apiVersion":"v1","subresource":"exec","uid":"x"}"#;
        let fast = object_ref(raw).unwrap().unwrap();
        let serde: ObjectRef = decode(raw).unwrap();
        assert_eq!(
            (fast.resource(), fast.namespace(), fast.name(), fast.group(), fast.subresource()),
            (serde.resource(), serde.namespace(), serde.name(), serde.group(), serde.subresource())
        );
        assert_eq!(fast.namespace(), "default");
        assert!(matches!(fast.resource, Some(Cow::Borrowed(_))));
        assert!(object_ref(r#"{"name":"a","name":"b"}"#).is_none());
        assert!(object_ref(r#"{"name":true}"#).is_none());
        assert!(object_ref("null").unwrap().is_none());

        for (raw, want) in [
            (r#"{"code":200,"metadata":{}}"#, Some(200)),
            (r#"{"code":0}"#, Some(0)),
            (r#"{"code":null,"status":"Failure"}"#, None),
            (r#"{"code":999999999999999999}"#, Some(999_999_999_999_999_999)),
        ] {
            let fast = response_status(raw).unwrap().unwrap();
            let serde: ResponseStatus = decode(raw).unwrap();
            assert_eq!((fast.code, fast.status), (want, serde.status));
            assert_eq!(serde.code, want);
        }
        for raw in [
            r#"{"code":-0}"#,
            r#"{"code":-1}"#,
            r#"{"code":2.0}"#,
            r#"{"code":2e2}"#,
            r#"{"code":"200"}"#,
            r#"{"code":9999999999999999999}"#,
            r#"{"code":1,"code":2}"#,
        ] {
            assert!(response_status(raw).is_none(), "{raw}");
        }
    }

    #[test]
    fn annotations_and_source_ips_keep_order_and_duplicates() {
        let a = annotations(r#"{"b":"1","a":"x\ny","b":"2"}"#).unwrap();
        assert_eq!(a, [("b".into(), "1".into()), ("a".into(), "x\ny".into()), ("b".into(), "2".into())]);
        assert_eq!(annotations("null").unwrap(), []);
        assert!(annotations(r#"{"a":1}"#).is_none());
        assert!(annotations(r#"{"\u0061":"1"}"#).is_none());
        let ips = strings(r#"["10.0.0.1", "::1"]"#).unwrap().unwrap();
        assert_eq!(ips.iter().map(|c| c.0.as_ref()).collect::<Vec<_>>(), ["10.0.0.1", "::1"]);
        assert!(strings(r#"["10.0.0.1",null]"#).is_none());
        assert!(strings(r#"{}"#).is_none());
        for raw in
            [r#"{"creationTimestamp":"2017-09-11T19:55:05Z","uid":"x"}"#, r#"{"creationTimestamp":null}"#, "{}", "null"]
        {
            assert!(legacy_meta(raw).is_some(), "{raw}");
            check_same("metadata", raw);
        }
        for raw in [r#"{"creationTimestamp":1}"#, r#"{"creationTimestamp":"a","creationTimestamp":"b"}"#, "[]"] {
            assert!(legacy_meta(raw).is_none(), "{raw}");
        }
    }

    #[test]
    fn generated_events_decode_as_serde_decodes_them() {
        let corpus = String::from_utf8(kaudit_testkit::corpus::generate(300, 7)).unwrap();
        let sample = include_str!("../../tests/fixtures/sample-audit.log");
        let mut fast = 0;
        for line in corpus.lines().chain(sample.lines()) {
            let obj = raw::parse_object(line).unwrap();
            for m in &obj.members {
                let v = obj.value(m);
                check_same(obj.key(m), v);
                fast += usize::from(match obj.key(m) {
                    "user" => user(v).is_some(),
                    "objectRef" => object_ref(v).is_some(),
                    "responseStatus" => response_status(v).is_some(),
                    "sourceIPs" => strings(v).is_some(),
                    "annotations" => annotations(v).is_some(),
                    "metadata" => legacy_meta(v).is_some(),
                    _ => false,
                });
            }
        }
        // The common shapes take the fast path (a regression here is a silent slowdown).
        assert!(fast > 1500, "{fast}");
    }
}
