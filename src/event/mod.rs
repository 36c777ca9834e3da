//! The audit event model: a borrowed view of one `audit.k8s.io` Event (v1, v1beta1, v1alpha1).
//!
//! Only what decisions need is decoded (strings as `Cow`, borrowed unless escaped); request and
//! response objects stay raw slices, and every member keeps its position so the writer can
//! splice edits into the original bytes.

pub(crate) mod buffers;
mod decode;
pub mod doc;
pub mod edit;
pub mod feed;
pub mod framing;
pub mod managed;
pub mod raw;
mod scan;
pub mod time;

use std::borrow::Cow;

use serde::Deserialize;

pub use raw::{CowStr, JsonError, JsonStr, RawObject};

/// `user` / `impersonatedUser`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserInfo<'a> {
    /// `username`.
    #[serde(borrow, default)]
    pub username: Option<Cow<'a, str>>,
    /// `uid`.
    #[serde(borrow, default)]
    pub uid: Option<Cow<'a, str>>,
    /// `groups`.
    #[serde(borrow, default)]
    pub groups: Option<Vec<CowStr<'a>>>,
}

impl UserInfo<'_> {
    /// The username, or `""`.
    pub fn name(&self) -> &str {
        self.username.as_deref().unwrap_or("")
    }

    /// The groups.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().flatten().map(|g| g.0.as_ref())
    }
}

/// `objectRef`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ObjectRef<'a> {
    /// `resource`.
    #[serde(borrow, default)]
    pub resource: Option<Cow<'a, str>>,
    /// `namespace`.
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    /// `name`.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// `apiGroup` (absent for the core group).
    #[serde(borrow, default, rename = "apiGroup")]
    pub api_group: Option<Cow<'a, str>>,
    /// `apiVersion`.
    #[serde(borrow, default, rename = "apiVersion")]
    pub api_version: Option<Cow<'a, str>>,
    /// `subresource`.
    #[serde(borrow, default)]
    pub subresource: Option<Cow<'a, str>>,
}

impl ObjectRef<'_> {
    /// The resource, or `""`.
    pub fn resource(&self) -> &str {
        self.resource.as_deref().unwrap_or("")
    }
    /// The subresource, or `""`.
    pub fn subresource(&self) -> &str {
        self.subresource.as_deref().unwrap_or("")
    }
    /// The namespace, or `""`.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
    /// The name, or `""`.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
    /// The API group; v1alpha1 events carry it only inside `apiVersion` (`group/version`).
    pub fn group(&self) -> &str {
        if let Some(g) = self.api_group.as_deref() {
            return g;
        }
        match self.api_version.as_deref().and_then(|v| v.rsplit_once('/')) {
            Some((group, _)) => group,
            None => "",
        }
    }
}

/// `responseStatus` (only the fields kaudit reads).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseStatus<'a> {
    /// `code`: the HTTP status code.
    #[serde(default)]
    pub code: Option<i64>,
    /// `status`: `Success` or `Failure`.
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    /// `reason`.
    #[serde(borrow, default)]
    pub reason: Option<Cow<'a, str>>,
    /// `message` (decoded when read: see [`JsonStr`]).
    #[serde(borrow, default)]
    pub message: Option<JsonStr<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct LegacyMeta<'a> {
    #[serde(borrow, default, rename = "creationTimestamp")]
    creation_timestamp: Option<Cow<'a, str>>,
}

/// The four audit levels, ordered as kube-apiserver orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Nothing is logged.
    None = 0,
    /// Request metadata, no bodies.
    Metadata = 1,
    /// Metadata and the request body.
    Request = 2,
    /// Metadata and both bodies.
    RequestResponse = 3,
}

impl Level {
    /// The level named `s` (as in policies and events).
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "None" => Level::None,
            "Metadata" => Level::Metadata,
            "Request" => Level::Request,
            "RequestResponse" => Level::RequestResponse,
            _ => return None,
        })
    }
    /// The level's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
    /// kube-apiserver's rank: unknown strings rank like `None`.
    pub fn rank_of(s: &str) -> u8 {
        Level::parse(s).map_or(0, |l| l as u8)
    }
}

/// The four stages.
pub const STAGES: [&str; 4] = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"];

/// A decoded view of one audit event.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// The event's raw members, for writing it back.
    pub obj: RawObject<'a>,
    /// `apiVersion`.
    pub api_version: Option<Cow<'a, str>>,
    /// `level` as recorded.
    pub level: Option<Cow<'a, str>>,
    /// `auditID`.
    pub audit_id: Cow<'a, str>,
    /// `stage`.
    pub stage: Cow<'a, str>,
    /// `requestURI`.
    pub request_uri: Cow<'a, str>,
    /// `verb`.
    pub verb: Cow<'a, str>,
    /// `user`.
    pub user: UserInfo<'a>,
    /// `impersonatedUser`.
    pub impersonated_user: Option<UserInfo<'a>>,
    /// `sourceIPs`.
    pub source_ips: Vec<Cow<'a, str>>,
    /// `userAgent`.
    pub user_agent: Option<Cow<'a, str>>,
    /// `objectRef`.
    pub object_ref: Option<ObjectRef<'a>>,
    /// `responseStatus`.
    pub response_status: Option<ResponseStatus<'a>>,
    /// `annotations`, in input order (values decoded when read: see [`JsonStr`]).
    pub annotations: Vec<(Cow<'a, str>, JsonStr<'a>)>,
    /// `requestReceivedTimestamp`.
    pub request_received_timestamp: Option<Cow<'a, str>>,
    /// `stageTimestamp`.
    pub stage_timestamp: Option<Cow<'a, str>>,
    /// v1beta1/v1alpha1 `timestamp` (seconds precision).
    pub legacy_timestamp: Option<Cow<'a, str>>,
    /// v1beta1/v1alpha1 `metadata.creationTimestamp`: the stage's time (seconds precision).
    pub legacy_stage_timestamp: Option<Cow<'a, str>>,
}

/// Why a record is not an audit event kaudit can decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    /// The top-level field at fault, if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl From<JsonError> for EventError {
    fn from(e: JsonError) -> Self {
        EventError { field: None, message: format!("invalid JSON: {e}") }
    }
}

impl From<String> for EventError {
    /// An error about the record as a whole (no field).
    fn from(message: String) -> Self {
        EventError { field: None, message }
    }
}

impl From<&str> for EventError {
    /// An error about the record as a whole (no field).
    fn from(message: &str) -> Self {
        EventError { field: None, message: message.to_string() }
    }
}

impl std::error::Error for EventError {}

fn field_err(field: &str, e: JsonError) -> EventError {
    EventError { field: Some(field.to_string()), message: e.message }
}

/// A record without `field`, which every audit event has.
fn missing(field: &str) -> EventError {
    EventError { field: Some(field.into()), message: "missing: not an audit event".into() }
}

/// A member decoded by `fast` (unless `serde_only`), or by serde when `fast` declines it.
#[inline]
fn fast_or_serde<'a, T: Deserialize<'a>>(
    raw: &'a str,
    fast: fn(&'a str) -> Option<T>,
    key: &str,
    serde_only: bool,
) -> Result<T, EventError> {
    match if serde_only { None } else { fast(raw) } {
        Some(v) => Ok(v),
        None => raw::decode(raw).map_err(|e| field_err(key, e)),
    }
}

impl<'a> Event<'a> {
    /// Parses one event. `text` must be exactly one JSON object.
    pub fn parse(text: &'a str) -> Result<Event<'a>, EventError> {
        let obj = raw::parse_object(text)?;
        Event::from_object(obj)
    }

    /// Builds the view from an already split object.
    pub fn from_object(obj: RawObject<'a>) -> Result<Event<'a>, EventError> {
        Event::decode_members(obj, false)
    }

    /// [`Event::from_object`]; `serde_only` decodes the small objects with serde alone (the
    /// tests' reference for the fast paths).
    fn decode_members(mut obj: RawObject<'a>, serde_only: bool) -> Result<Event<'a>, EventError> {
        let mut pre = match obj.decoded.last().filter(|pre| !serde_only && !pre.is_empty()) {
            // Every member the event reads was decoded by the split, once each.
            Some(pre) if pre.complete() => return decode::Decoded::take_event(obj),
            Some(_) => obj.decoded.pop().unwrap_or_default(),
            None => decode::Decoded::default(),
        };
        let mut ev = Event {
            obj: RawObject::empty(obj.text),
            api_version: None,
            level: None,
            audit_id: Cow::Borrowed(""),
            stage: Cow::Borrowed(""),
            request_uri: Cow::Borrowed(""),
            verb: Cow::Borrowed(""),
            user: UserInfo::default(),
            impersonated_user: None,
            source_ips: Vec::new(),
            user_agent: None,
            object_ref: None,
            response_status: None,
            annotations: Vec::new(),
            request_received_timestamp: None,
            stage_timestamp: None,
            legacy_timestamp: None,
            legacy_stage_timestamp: None,
        };
        let (mut has_stage, mut has_verb) = (false, false);
        for (index, m) in obj.members.iter().enumerate() {
            let raw = obj.value(m);
            let key = obj.key(m);
            let s = || -> Result<Cow<'a, str>, EventError> {
                if m.plain() {
                    return Ok(Cow::Borrowed(scan::slice(raw, 1, raw.len().saturating_sub(1)).unwrap_or_default()));
                }
                raw::decode_str(raw).map_err(|e| field_err(key, e))
            };
            let opt_s = || -> Result<Option<Cow<'a, str>>, EventError> {
                if raw == "null" {
                    Ok(None)
                } else {
                    s().map(Some)
                }
            };
            match key {
                "kind" => {
                    let kind = s()?;
                    if kind != "Event" {
                        return Err(EventError {
                            field: Some("kind".into()),
                            message: format!("expected \"Event\", found {kind:?}"),
                        });
                    }
                }
                "apiVersion" => {
                    let v = s()?;
                    if !v.starts_with("audit.k8s.io/") {
                        return Err(EventError {
                            field: Some("apiVersion".into()),
                            message: format!("not an audit.k8s.io event: {v:?}"),
                        });
                    }
                    ev.api_version = Some(v);
                }
                "level" => ev.level = opt_s()?,
                "auditID" => ev.audit_id = opt_s()?.unwrap_or_default(),
                "stage" => {
                    ev.stage = s()?;
                    has_stage = true;
                }
                "requestURI" => ev.request_uri = opt_s()?.unwrap_or_default(),
                "verb" => {
                    ev.verb = s()?;
                    has_verb = true;
                }
                // The small objects: decoded from the scanner's slices, or by serde (exact
                // results and errors) for whatever the fast path declines.
                "user" => {
                    ev.user = match pre.user(index, false) {
                        Some(u) => u,
                        None => fast_or_serde(raw, decode::user, key, serde_only)?,
                    }
                    .unwrap_or_default()
                }
                "impersonatedUser" => {
                    ev.impersonated_user = match pre.user(index, true) {
                        Some(u) => u,
                        None => fast_or_serde(raw, decode::user, key, serde_only)?,
                    }
                }
                "sourceIPs" => {
                    ev.source_ips = match pre.source_ips(index) {
                        Some(ips) => ips.unwrap_or_default(),
                        None => {
                            let ips: Option<Vec<CowStr>> = fast_or_serde(raw, decode::strings, key, serde_only)?;
                            ips.unwrap_or_default().into_iter().map(|c| c.0).collect()
                        }
                    };
                }
                "userAgent" => ev.user_agent = opt_s()?,
                "objectRef" => {
                    ev.object_ref = match pre.object_ref(index) {
                        Some(o) => o,
                        None => fast_or_serde(raw, decode::object_ref, key, serde_only)?,
                    }
                }
                "responseStatus" => {
                    ev.response_status = match pre.response_status(index) {
                        Some(r) => r,
                        None => fast_or_serde(raw, decode::response_status, key, serde_only)?,
                    }
                }
                "annotations" => {
                    ev.annotations =
                        match pre
                            .annotations(index)
                            .or_else(|| if serde_only { None } else { decode::annotations(raw) })
                        {
                            Some(a) => a,
                            None => {
                                let map: Option<Vec<(CowStr, CowStr)>> = raw::decode::<Option<AnnotationMap>>(raw)
                                    .map_err(|e| field_err(key, e))?
                                    .map(|m| m.0);
                                map.unwrap_or_default().into_iter().map(|(k, v)| (k.0, JsonStr::from(v.0))).collect()
                            }
                        }
                }
                "requestReceivedTimestamp" => ev.request_received_timestamp = opt_s()?,
                "stageTimestamp" => ev.stage_timestamp = opt_s()?,
                "timestamp" => ev.legacy_timestamp = opt_s()?,
                "metadata" => {
                    let meta = match pre.legacy_meta(index) {
                        Some(m) => m,
                        None => fast_or_serde(raw, decode::legacy_meta, key, serde_only)?,
                    };
                    ev.legacy_stage_timestamp = meta.and_then(|m| m.creation_timestamp);
                }
                _ => {}
            }
        }
        if !has_stage {
            return Err(missing("stage"));
        }
        if !has_verb {
            return Err(missing("verb"));
        }
        ev.obj = obj;
        Ok(ev)
    }

    /// The value of an audit annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The raw text of a top-level member.
    pub fn raw(&self, key: &str) -> Option<&'a str> {
        self.obj.raw(key)
    }

    /// The request path without the query string.
    pub fn path(&self) -> &str {
        let uri = self.request_uri.as_ref();
        match uri.find('?') {
            Some(i) => &uri[..i],
            None => uri,
        }
    }

    /// `responseStatus.code`.
    pub fn code(&self) -> Option<i64> {
        self.response_status.as_ref().and_then(|s| s.code)
    }

    /// Event time in microseconds since the epoch: stageTimestamp, else the legacy fields (the
    /// first of `stage_time_texts` that parses).
    pub fn stage_time_micros(&self) -> Option<i64> {
        self.stage_time_texts().find_map(time::parse_micros)
    }

    /// Request received time in microseconds since the epoch (the first of `received_time_texts`
    /// that parses).
    pub fn received_time_micros(&self) -> Option<i64> {
        self.received_time_texts().find_map(time::parse_micros)
    }

    /// The texts standing for the stage time, in the order they are tried: stageTimestamp, the
    /// legacy stage time, then the request-received times. [`EventTimes`](time::EventTimes)
    /// reads them too.
    pub(crate) fn stage_time_texts(&self) -> impl Iterator<Item = &str> {
        [&self.stage_timestamp, &self.legacy_stage_timestamp, &self.request_received_timestamp, &self.legacy_timestamp]
            .into_iter()
            .flatten()
            .map(|t| t.as_ref())
    }

    /// The texts standing for the request-received time, in the order they are tried.
    pub(crate) fn received_time_texts(&self) -> impl Iterator<Item = &str> {
        [&self.request_received_timestamp, &self.legacy_timestamp].into_iter().flatten().map(|t| t.as_ref())
    }
}

/// An annotations object decoded in order, borrowing where possible.
struct AnnotationMap<'a>(Vec<(CowStr<'a>, CowStr<'a>)>);

impl<'de> Deserialize<'de> for AnnotationMap<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AnnotationMap<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<CowStr<'de>, CowStr<'de>>()? {
                    out.push((k, v));
                }
                Ok(AnnotationMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: &str = r#"{"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""},"auditID":"ca1ed9f4","kind":"Event","level":"Request","metadata":{"creationTimestamp":"2018-10-26T13:38:34Z"},"objectRef":{"apiVersion":"v1","name":"nginx","namespace":"default","resource":"pods","subresource":"exec"},"requestReceivedTimestamp":"2018-10-26T13:38:34.867116Z","requestURI":"/api/v1/namespaces/default/pods/nginx/exec?command=bash","responseStatus":{"code":101,"metadata":{}},"sourceIPs":["192.168.99.1"],"stage":"ResponseStarted","stageTimestamp":"2018-10-26T13:38:34.902914Z","timestamp":"2018-10-26T13:38:34Z","user":{"groups":["system:masters","system:authenticated"],"username":"minikube-user"},"verb":"create"}"#;

    #[test]
    fn decodes_decision_fields_borrowed() {
        let ev = Event::parse(EXEC).unwrap();
        assert_eq!(ev.stage, "ResponseStarted");
        assert_eq!(ev.user.name(), "minikube-user");
        assert_eq!(ev.user.groups().collect::<Vec<_>>(), ["system:masters", "system:authenticated"]);
        let oref = ev.object_ref.as_ref().unwrap();
        assert_eq!((oref.resource(), oref.subresource(), oref.group()), ("pods", "exec", ""));
        assert_eq!(ev.code(), Some(101));
        assert_eq!(ev.annotation("authorization.k8s.io/decision"), Some("allow"));
        assert_eq!(ev.path(), "/api/v1/namespaces/default/pods/nginx/exec");
        assert!(matches!(ev.verb, Cow::Borrowed(_)));
        assert_eq!(ev.stage_time_micros().unwrap() - ev.received_time_micros().unwrap(), 35_798);
    }

    /// Everything the view decodes, for comparing two ways of decoding it.
    fn summary(ev: &Result<Event, EventError>) -> String {
        match ev {
            Ok(e) => format!(
                "{:?}",
                (
                    (&e.api_version, &e.level, &e.audit_id, &e.stage, &e.request_uri, &e.verb, &e.user_agent),
                    (&e.user, &e.impersonated_user, &e.source_ips, &e.object_ref, &e.response_status, &e.annotations),
                    (&e.request_received_timestamp, &e.stage_timestamp, &e.legacy_timestamp, &e.legacy_stage_timestamp),
                    e.obj
                        .members
                        .iter()
                        .map(|m| (e.obj.key(m), e.obj.value(m), m.key_start, m.start, m.end))
                        .collect::<Vec<_>>(),
                )
            ),
            Err(e) => format!("error {e:?}"),
        }
    }

    /// The view from the scanner's split (members decoded while validated) equals the one
    /// from serde_json's split with every small object decoded by serde; errors included.
    fn check_against_serde(text: &str) {
        let reference = raw::parse_object_with_serde(text)
            .map_err(EventError::from)
            .and_then(|obj| Event::decode_members(obj, true));
        assert_eq!(summary(&Event::parse(text)), summary(&reference), "{text}");
    }

    #[test]
    fn members_decoded_during_the_split_equal_serde() {
        let corpus = String::from_utf8(kaudit_testkit::corpus::generate(300, 11)).unwrap();
        let sample = include_str!("../../tests/fixtures/sample-audit.log");
        let (mut decoded, mut lines) = (0, 0);
        for line in corpus.lines().chain(sample.lines()).chain([EXEC]) {
            check_against_serde(line);
            lines += 1;
            let obj = raw::parse_object(line).unwrap();
            decoded += usize::from(obj.decoded.last().is_some_and(|d| !d.is_empty() && d.complete()));
        }
        // The common shapes are built from the split alone (a regression here is a slowdown).
        assert!(decoded * 10 > lines * 9, "{decoded} of {lines}");
        // So is an escaped requestURI (Go writes `&` in a URL as `\u0026`).
        let escaped_uri = r#"{"stage":"a","verb":"get","requestURI":"/api/v1/pods?limit=500\u0026watch=true"}"#;
        assert!(raw::parse_object(escaped_uri).unwrap().decoded.last().is_some_and(|d| !d.is_empty() && d.complete()));
        assert_eq!(Event::parse(escaped_uri).unwrap().request_uri, "/api/v1/pods?limit=500&watch=true");
        // Shapes the decoders decline or read specially: duplicates, nulls, odd types, escapes,
        // whitespace and line breaks inside the decoded members.
        for text in [
            r#"{"stage":"a","verb":"b","user":{"username":"x"},"user":{"username":"y","groups":null}}"#,
            r#"{"stage":"a","verb":"b","user":null,"impersonatedUser":null,"objectRef":null,"responseStatus":null,"annotations":null,"sourceIPs":null,"metadata":null}"#,
            r#"{"stage":"a","verb":"b","user":{"username":"a","username":"b"}}"#,
            r#"{"stage":"a","verb":"b","user":{"groups":["a",1]}}"#,
            r#"{"stage":"a","verb":"b","user":{"username":"\ud800"}}"#,
            r#"{"stage":"a","verb":"b","user":{"user\u006eame":"a"}}"#,
            "{\"stage\":\"a\",\"verb\":\"b\",\"user\" : {\n \"username\" : \"a\\\"b\" ,\r\n\"groups\":[ \"g\" , \"h\\u00e9\" ] , \"extra\":{\"k\":[1,{}]} } }",
            r#"{"stage":"a","verb":"b","responseStatus":{"code":0123}}"#,
            r#"{"stage":"a","verb":"b","responseStatus":{"code":-0}}"#,
            r#"{"stage":"a","verb":"b","responseStatus":{"code":2e2,"status":"x"}}"#,
            r#"{"stage":"a","verb":"b","responseStatus":{"code":1.5}}"#,
            r#"{"stage":"a","verb":"b","responseStatus":{"code":9999999999999999999}}"#,
            r#"{"stage":"a","verb":"b","responseStatus":{"code":"200"}}"#,
            r#"{"stage":"a","verb":"b","responseStatus":{"code":200,"code":201}}"#,
            r#"{"stage":"a","verb":"b","annotations":{"a":"1","a":"2","b":"x\ny"}}"#,
            r#"{"stage":"a","verb":"b","annotations":{"a":1}}"#,
            r#"{"stage":"a","verb":"b","sourceIPs":["1.2.3.4",null]}"#,
            r#"{"stage":"a","verb":"b","sourceIPs":"1.2.3.4"}"#,
            r#"{"stage":"a","verb":"b","objectRef":{"name":true}}"#,
            r#"{"stage":"a","verb":"b","objectRef":[]}"#,
            r#"{"stage":"a","verb":"b","objectRef":{"name":"n"},"objectRef":{"name":true}}"#,
            r#"{"stage":"a","verb":"b","objectRef":{"name":"n"},"objectRef":{"name":"m","name":"o"}}"#,
            r#"{"stage":"a","verb":"b","objectRef":{"name":1},"objectRef":{"name":"m"}}"#,
            r#"{"stage":"a","verb":"b","metadata":{"creationTimestamp":1}}"#,
            r#"{"stage":"a","verb":"b","metadata":{"creationTimestamp":"t","creationTimestamp":"u"}}"#,
            r#"{"stage":"a","verb":"b","user":nul}"#,
            // The top-level strings: null, escapes, other types, duplicates, missing ones.
            r#"{"stage":"a","verb":"b","level":null,"auditID":null,"requestURI":null,"userAgent":null,"timestamp":null}"#,
            r#"{"stage":"a","verb":"b","requestReceivedTimestamp":null,"stageTimestamp":null,"apiVersion":null}"#,
            r#"{"stage":null,"verb":"b"}"#,
            r#"{"stage":"a","verb":null}"#,
            r#"{"stage":"a","verb":1}"#,
            r#"{"stage":"a\u0062","verb":"b","auditID":"x\ny","level":"R\u0065quest"}"#,
            r#"{"stage":"a","verb":"b","requestURI":"/api/v1/pods?limit=500\u0026watch=true","userAgent":"\ud800"}"#,
            r#"{"stage":"a","verb":"b","requestURI":"\ud83d\ude00","auditID":"\"\\\/\b\f\n\r\t"}"#,
            r#"{"stage":"a","verb":"b","requestURI":"\ud83d\ude00"}"#,
            r#"{"stage":"a","verb":"b","requestURI":"/x?\ud800"}"#,
            r#"{"stage":"a","verb":"b","requestURI":"/x?a\u0026b","requestURI":"/y"}"#,
            r#"{"stage":"a","verb":"b","requestURI":"/y","requestURI":"/x?a\u0026b"}"#,
            r#"{"stage":"a","stage":"b","verb":"c"}"#,
            r#"{"stage":"a","verb":"b","verb":"c","level":"x","level":null}"#,
            r#"{"verb":"b"}"#,
            r#"{"stage":"a"}"#,
            r#"{"kind":"Event","stage":"a","verb":"b"}"#,
            r#"{"kind":"EventList","stage":"a","verb":"b"}"#,
            r#"{"kind":null,"stage":"a","verb":"b"}"#,
            r#"{"kind":"Ev\u0065nt","stage":"a","verb":"b"}"#,
            r#"{"apiVersion":"audit.k8s.io/v1","stage":"a","verb":"b"}"#,
            r#"{"apiVersion":"v1","stage":"a","verb":"b"}"#,
            r#"{"apiVersion":"audit.k8s.io/v1","apiVersion":"v1","stage":"a","verb":"b"}"#,
            r#"{"stage":"a","verb":"b","user":{"username":"x"},"objectRef":{"name":"n"},"objectRef":{"name":"m"}}"#,
            r#"{"stage":"a","verb":"b","user":{"groups":"x"},"kind":"Other"}"#,
            r#"{"stage":"a","verb":"b","userAgent":"x","userAgent":"y"}"#,
            r#"{"stage":"a","verb":"b","user":{"username":nulL}}"#,
        ] {
            check_against_serde(text);
        }
        // Every truncation and every one-byte corruption of an event with all of them.
        let text = concat!(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"a-1","stage":"ResponseComplete","#,
            r#""requestURI":"/api/v1/x?y=1","verb":"create","user":{"username":"u\u00e9","uid":"9","groups":["g1","g2"],"extra":{"k":["v"]}},"#,
            r#""impersonatedUser":{"username":"bob","groups":null},"sourceIPs":["10.0.0.1","::1"],"userAgent":"kubectl/v1 (linux)","#,
            r#""objectRef":{"resource":"pods","namespace":"ns","name":"n","apiGroup":"","apiVersion":"v1","subresource":"exec"},"#,
            r#""responseStatus":{"metadata":{},"status":"Failure","reason":"Forbidden","message":"no \"way\"","code":403},"#,
            r#""metadata":{"creationTimestamp":"2017-09-11T19:55:05Z"},"annotations":{"a/b":"allow","c":""},"#,
            r#""requestReceivedTimestamp":"2024-01-01T00:00:00.000001Z","stageTimestamp":"2024-01-01T00:00:00.5Z"}"#
        );
        check_against_serde(text);
        for cut in 0..text.len() {
            check_against_serde(&text[..cut]);
        }
        for (i, c) in text.char_indices() {
            for bad in ['"', '\\', ']', '}', '[', '{', ',', ':', ' ', '\n', '\u{1}', 'x', '0', '-', 'n'] {
                if bad != c {
                    let mut t = String::from(&text[..i]);
                    t.push(bad);
                    t.push_str(&text[i + c.len_utf8()..]);
                    check_against_serde(&t);
                }
            }
        }
    }

    #[test]
    fn v1alpha1_group_comes_from_api_version() {
        let ev = Event::parse(r#"{"stage":"ResponseComplete","verb":"get","objectRef":{"resource":"roles","apiVersion":"rbac.authorization.k8s.io/v1alpha1"}}"#).unwrap();
        assert_eq!(ev.object_ref.unwrap().group(), "rbac.authorization.k8s.io");
    }

    #[test]
    fn rejects_what_is_not_an_event() {
        assert_eq!(Event::parse(r#"{"kind": 0}"#).unwrap_err().field.as_deref(), Some("kind"));
        assert_eq!(Event::parse(r#"{}"#).unwrap_err().field.as_deref(), Some("stage"));
        let e = Event::parse(r#"{"stage":"ResponseComplete","verb":"get","user":"bob"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("user"));
        assert!(Event::parse(r#"{"kind":"EventList","items":[]}"#).is_err());
        assert!(Event::parse("[1]").is_err());
    }
}
