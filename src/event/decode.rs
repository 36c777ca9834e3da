//! The small members decisions read (`user`, `impersonatedUser`, `objectRef`, `responseStatus`,
//! `annotations`, `sourceIPs`, v1beta1's `metadata`) decoded straight from the scanner's slices: no member list, no
//! allocation beyond the `Vec`s of the decoded types, strings borrowed unless escaped. In an
//! interpreter (Fluent Bit's WAMR) this costs a fraction of serde's generic decoding.
//!
//! Each function answers `None` for anything outside the common shape (escaped keys, a
//! duplicate field, a value of an unexpected type, a negative or non-integer `code`, lone
//! surrogates): the caller then decodes the member with serde, so results and error messages
//! are exactly serde's.

use std::borrow::Cow;

use super::raw::{self, CowStr};
use super::scan::{for_each_item, for_each_member};
use super::{LegacyMeta, ObjectRef, ResponseStatus, UserInfo};

/// A string value: borrowed when it has no escapes, else decoded (`None`: not a string, or an
/// escape serde_json rejects).
#[inline]
fn string(raw: &str, escaped: bool) -> Option<Cow<'_, str>> {
    if !raw.starts_with('"') {
        return None;
    }
    if escaped {
        return raw::decode_str(raw).ok();
    }
    raw.get(1..raw.len() - 1).map(Cow::Borrowed)
}

/// An `Option<Cow<str>>` field: `null` or a string.
#[inline]
fn opt_string(raw: &str, escaped: bool) -> Option<Option<Cow<'_, str>>> {
    if raw == "null" {
        return Some(None);
    }
    string(raw, escaped).map(Some)
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
pub(super) fn strings(raw: &str) -> Option<Option<Vec<CowStr<'_>>>> {
    if raw == "null" {
        return Some(None);
    }
    let mut out = Vec::new();
    for_each_item(raw, |item, escaped| {
        out.push(CowStr(string(item, escaped)?));
        Some(())
    })?;
    Some(Some(out))
}

/// `user` / `impersonatedUser` as `Option<UserInfo>`.
pub(super) fn user(raw: &str) -> Option<Option<UserInfo<'_>>> {
    if raw == "null" {
        return Some(None);
    }
    let mut u = UserInfo::default();
    let mut seen = 0u8;
    for_each_member(raw, |key, value, escaped| {
        match key {
            "username" => {
                first(&mut seen, 1)?;
                u.username = opt_string(value, escaped)?;
            }
            "uid" => {
                first(&mut seen, 2)?;
                u.uid = opt_string(value, escaped)?;
            }
            "groups" => {
                first(&mut seen, 4)?;
                u.groups = strings(value)?;
            }
            _ => {}
        }
        Some(())
    })?;
    Some(Some(u))
}

/// `objectRef` as `Option<ObjectRef>`.
pub(super) fn object_ref(raw: &str) -> Option<Option<ObjectRef<'_>>> {
    if raw == "null" {
        return Some(None);
    }
    let mut o = ObjectRef::default();
    let mut seen = 0u8;
    for_each_member(raw, |key, value, escaped| {
        let (bit, field) = match key {
            "resource" => (1, &mut o.resource),
            "namespace" => (2, &mut o.namespace),
            "name" => (4, &mut o.name),
            "apiGroup" => (8, &mut o.api_group),
            "apiVersion" => (16, &mut o.api_version),
            "subresource" => (32, &mut o.subresource),
            _ => return Some(()),
        };
        first(&mut seen, bit)?;
        *field = opt_string(value, escaped)?;
        Some(())
    })?;
    Some(Some(o))
}

/// A non-negative JSON integer that fits an `i64` (`-0`, negatives, fractions and exponents go
/// to serde_json, which has its own rules for them).
fn code(raw: &str) -> Option<Option<i64>> {
    if raw == "null" {
        return Some(None);
    }
    let b = raw.as_bytes();
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(Some(n))
}

/// `responseStatus` as `Option<ResponseStatus>`.
pub(super) fn response_status(raw: &str) -> Option<Option<ResponseStatus<'_>>> {
    if raw == "null" {
        return Some(None);
    }
    let mut r = ResponseStatus::default();
    let mut seen = 0u8;
    for_each_member(raw, |key, value, escaped| {
        match key {
            "code" => {
                first(&mut seen, 1)?;
                r.code = code(value)?;
            }
            "status" => {
                first(&mut seen, 2)?;
                r.status = opt_string(value, escaped)?;
            }
            "reason" => {
                first(&mut seen, 4)?;
                r.reason = opt_string(value, escaped)?;
            }
            "message" => {
                first(&mut seen, 8)?;
                r.message = opt_string(value, escaped)?;
            }
            _ => {}
        }
        Some(())
    })?;
    Some(Some(r))
}

/// v1beta1/v1alpha1 `metadata` as `Option<LegacyMeta>` (only `creationTimestamp` is read).
pub(super) fn legacy_meta(raw: &str) -> Option<Option<LegacyMeta<'_>>> {
    if raw == "null" {
        return Some(None);
    }
    let mut m = LegacyMeta::default();
    let mut seen = 0u8;
    for_each_member(raw, |key, value, escaped| {
        if key == "creationTimestamp" {
            first(&mut seen, 1)?;
            m.creation_timestamp = opt_string(value, escaped)?;
        }
        Some(())
    })?;
    Some(Some(m))
}

/// `annotations`: `null` or an object of strings, in input order (duplicates kept).
pub(super) fn annotations(raw: &str) -> Option<Vec<(Cow<'_, str>, Cow<'_, str>)>> {
    let mut out = Vec::new();
    if raw == "null" {
        return Some(out);
    }
    for_each_member(raw, |key, value, escaped| {
        out.push((Cow::Borrowed(key), string(value, escaped)?));
        Some(())
    })?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::raw::decode;

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
        r.as_ref().map(|r| (r.code, [&r.status, &r.reason, &r.message].map(|f| f.as_deref().map(str::to_string))))
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
                check_same(&m.key, m.value);
                fast += usize::from(match m.key.as_ref() {
                    "user" => user(m.value).is_some(),
                    "objectRef" => object_ref(m.value).is_some(),
                    "responseStatus" => response_status(m.value).is_some(),
                    "sourceIPs" => strings(m.value).is_some(),
                    "annotations" => annotations(m.value).is_some(),
                    "metadata" => legacy_meta(m.value).is_some(),
                    _ => false,
                });
            }
        }
        // The common shapes take the fast path (a regression here is a silent slowdown).
        assert!(fast > 1500, "{fast}");
    }
}
