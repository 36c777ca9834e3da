//! GKE: a native audit Event rebuilt from a Cloud Audit Logs `LogEntry` (`protoPayload` of type
//! `AuditLog`, `serviceName` `k8s.io`, `resource.type` `k8s_cluster`).
//!
//! GKE converts the apiserver's Event into a LogEntry and loses part of it. The mapping (docs/MANAGED.md,
//! "GKE: what a rebuilt event has") follows what the LogEntry carries and nothing more:
//!
//! * `verb` is the last `.`-segment of `methodName`; `objectRef` comes from `resourceName`
//!   (`<group|core>/<version>[/namespaces/<ns>]/<resource>[/<name>[/<subresource>]]`, with the
//!   apiserver's namespace special cases); non-resource requests (`io.k8s.get` on `readyz`)
//!   get `requestURI` `/<resourceName>`; resource requests get no `requestURI` (GKE does not
//!   keep it: no `/api` vs `/apis/<group>` prefix, no query string).
//! * `stage` from `operation.first/last` (first only: `ResponseStarted`); `level` from which
//!   bodies are present; `@type` is removed from the bodies.
//! * `responseStatus.code` is an HTTP code: from a logged `Status` body, else the one the gRPC
//!   status stands for (google.rpc `code.proto` HTTP mapping; OK is 201 for a create, 200
//!   otherwise; UNKNOWN on exec/attach is the 101 of the upgraded connection).
//! * `user.username` is `authenticationInfo.principalEmail`; groups, uid, extra are not carried.
//! * `stageTimestamp` is the entry's `timestamp`; there is no separate receive time.
//! * `labels` become `annotations`, plus `kaudit/rebuilt-from: gke-logentry`, so the event says
//!   it was rebuilt.
//!
//! Read against falcosecurity/plugins `k8saudit-gke/pkg/k8sauditgke/convert.go` and
//! GoogleCloudPlatform/khi `googlecloudlogk8saudit/contract/fieldset.go`, which map the same
//! entries (Falco ignores `status`; this mapping does not).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::Source;
use crate::event::raw::{self, write_json_str, Edit};

/// The annotation that marks a rebuilt event.
pub const REBUILT_ANNOTATION: &str = "kaudit/rebuilt-from";
pub const REBUILT_VALUE: &str = "gke-logentry";

/// Why an entry was not rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRebuilt {
    /// A Cloud Audit Log of another service, or not of a GKE cluster: passed through.
    NotKubernetes(String),
    /// A k8s.io entry that does not have the shape of one.
    Malformed(String),
}

#[derive(Deserialize)]
struct LogEntry<'a> {
    #[serde(borrow, default, rename = "insertId")]
    insert_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    labels: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "logName")]
    log_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    operation: Option<Operation<'a>>,
    #[serde(borrow, rename = "protoPayload")]
    proto: Payload<'a>,
    #[serde(borrow, default)]
    resource: Option<Resource<'a>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Operation<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    first: Option<bool>,
    #[serde(default)]
    last: Option<bool>,
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow, default, rename = "serviceName")]
    service_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "methodName")]
    method_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "resourceName")]
    resource_name: Option<Cow<'a, str>>,
    #[serde(default)]
    status: Option<RpcStatus>,
    #[serde(borrow, default, rename = "authenticationInfo")]
    authentication: Option<Authentication<'a>>,
    #[serde(borrow, default, rename = "requestMetadata")]
    request_metadata: Option<RequestMetadata<'a>>,
    #[serde(borrow, default)]
    request: Option<&'a RawValue>,
    #[serde(borrow, default)]
    response: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RpcStatus {
    #[serde(default)]
    code: Option<i64>,
}

#[derive(Deserialize)]
struct Authentication<'a> {
    #[serde(borrow, default, rename = "principalEmail")]
    principal_email: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RequestMetadata<'a> {
    #[serde(borrow, default, rename = "callerIp")]
    caller_ip: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "callerSuppliedUserAgent")]
    user_agent: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Resource<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    labels: Option<ResourceLabels<'a>>,
}

#[derive(Deserialize)]
struct ResourceLabels<'a> {
    #[serde(borrow, default)]
    cluster_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    location: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    project_id: Option<Cow<'a, str>>,
}

/// `objectRef` parts from `resourceName`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ObjectRef<'a> {
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub api_group: &'a str,
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
}

/// Parses a resource request's `resourceName`; `None` for a non-resource path (`readyz`, `api/v1`).
pub fn object_ref(resource_name: &str) -> Option<ObjectRef<'_>> {
    let segs: Vec<&str> = resource_name.split('/').collect();
    if segs.len() < 3 || !is_version(segs[1]) || segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let api_group = if segs[0] == "core" { "" } else { segs[0] };
    let mut r = ObjectRef { api_group, api_version: segs[1], ..ObjectRef::default() };
    let rest = &segs[2..];
    if rest[0] == "namespaces" && rest.len() >= 3 && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize")) {
        // A namespaced resource: namespaces/<ns>/<resource>[/<name>[/<subresource>…]].
        r.namespace = Some(rest[1]);
        r.resource = rest[2];
        r.name = rest.get(3).copied();
        r.subresource = rest.get(4).copied();
    } else {
        r.resource = rest[0];
        r.name = rest.get(1).copied();
        r.subresource = rest.get(2).copied();
        // The Namespace object and its status/finalize: the apiserver sets namespace = name.
        if rest[0] == "namespaces" {
            r.namespace = r.name;
        }
    }
    Some(r)
}

fn is_version(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'v' && b[1].is_ascii_digit()
}

/// The HTTP status a google.rpc code stands for (googleapis `google/rpc/code.proto`).
pub fn http_code(rpc: i64, verb: &str, subresource: Option<&str>) -> i64 {
    let streaming = matches!(subresource, Some("exec" | "attach" | "portforward"));
    match rpc {
        0 if verb == "create" && !streaming => 201,
        0 => 200,
        1 => 499,
        2 if streaming => 101,
        2 | 13 | 15 => 500,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

/// Rebuilds the Event of a GKE `LogEntry` (as one JSON line, apiserver key order) and its source.
pub fn rebuild(entry: &raw::RawObject) -> Result<(String, Source), NotRebuilt> {
    let e: LogEntry = raw::decode(entry.text).map_err(|e| NotRebuilt::Malformed(format!("GKE LogEntry: {e}")))?;
    let service = e.proto.service_name.as_deref().unwrap_or("");
    let resource_type = e.resource.as_ref().and_then(|r| r.kind.as_deref()).unwrap_or("");
    if service != "k8s.io" || resource_type != "k8s_cluster" {
        return Err(NotRebuilt::NotKubernetes(format!(
            "Cloud Audit Log of service {service:?} on resource type {resource_type:?}: not a GKE audit entry"
        )));
    }
    let method = e.proto.method_name.as_deref().unwrap_or("");
    let resource_name = e.proto.resource_name.as_deref().unwrap_or("");
    let verb = method.rsplit('.').next().filter(|v| !v.is_empty());
    let Some(verb) = verb else {
        return Err(NotRebuilt::Malformed("GKE LogEntry: no protoPayload.methodName".into()));
    };
    // `io.k8s.get` on `readyz`: a non-resource request (three segments, no group/version/resource).
    let oref = if method.split('.').count() > 3 { object_ref(resource_name) } else { None };
    let op = e.operation.as_ref();
    let audit_id = op.and_then(|o| o.id.as_deref()).or(e.insert_id.as_deref()).unwrap_or("");
    let started_only = op.is_some_and(|o| o.first == Some(true) && o.last != Some(true));
    let stage = if started_only { "ResponseStarted" } else { "ResponseComplete" };
    let level = if e.proto.response.is_some() {
        "RequestResponse"
    } else if e.proto.request.is_some() {
        "Request"
    } else {
        "Metadata"
    };

    let mut out = String::with_capacity(entry.text.len());
    out.push_str("{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"");
    out.push_str(level);
    out.push_str("\",\"auditID\":");
    write_json_str(&mut out, audit_id);
    out.push_str(",\"stage\":\"");
    out.push_str(stage);
    out.push('"');
    if oref.is_none() && !resource_name.is_empty() {
        out.push_str(",\"requestURI\":");
        write_json_str(&mut out, &format!("/{resource_name}"));
    }
    out.push_str(",\"verb\":");
    write_json_str(&mut out, verb);
    out.push_str(",\"user\":{");
    if let Some(email) = e.proto.authentication.as_ref().and_then(|a| a.principal_email.as_deref()) {
        out.push_str("\"username\":");
        write_json_str(&mut out, email);
    }
    out.push('}');
    let meta = e.proto.request_metadata.as_ref();
    if let Some(ip) = meta.and_then(|m| m.caller_ip.as_deref()) {
        out.push_str(",\"sourceIPs\":[");
        write_json_str(&mut out, ip);
        out.push(']');
    }
    if let Some(ua) = meta.and_then(|m| m.user_agent.as_deref()) {
        out.push_str(",\"userAgent\":");
        write_json_str(&mut out, ua);
    }
    if let Some(o) = &oref {
        out.push_str(",\"objectRef\":{\"resource\":");
        write_json_str(&mut out, o.resource);
        for (key, value) in [("namespace", o.namespace), ("name", o.name)] {
            if let Some(v) = value {
                out.push_str(&format!(",\"{key}\":"));
                write_json_str(&mut out, v);
            }
        }
        out.push_str(",\"apiGroup\":");
        write_json_str(&mut out, o.api_group);
        out.push_str(",\"apiVersion\":");
        write_json_str(&mut out, o.api_version);
        if let Some(sub) = o.subresource {
            out.push_str(",\"subresource\":");
            write_json_str(&mut out, sub);
        }
        out.push('}');
    }
    write_response_status(&mut out, &e, verb, oref.as_ref().and_then(|o| o.subresource));
    for (key, body) in [("requestObject", e.proto.request), ("responseObject", e.proto.response)] {
        if let Some(body) = body {
            out.push_str(&format!(",\"{key}\":"));
            without_type(body.get(), &mut out);
        }
    }
    if let Some(t) = &e.timestamp {
        out.push_str(",\"stageTimestamp\":");
        write_json_str(&mut out, t);
    }
    out.push_str(",\"annotations\":");
    let mut marker = String::new();
    write_json_str(&mut marker, REBUILT_VALUE);
    let append = [(REBUILT_ANNOTATION, marker.as_str())];
    match e.labels.map(|l| raw::parse_object(l.get())) {
        Some(Ok(labels)) => labels.rebuild(
            &mut out,
            |_, key, _| if key == REBUILT_ANNOTATION { Edit::Remove } else { Edit::Keep },
            &append,
        ),
        _ => raw::RawObject::empty("{}").rebuild(&mut out, |_, _, _| Edit::Keep, &append),
    }
    out.push('}');

    let mut source = Source::new("gke");
    if let Some(labels) = e.resource.as_ref().and_then(|r| r.labels.as_ref()) {
        source.set("cluster", labels.cluster_name.as_deref().unwrap_or(""));
        source.set("project", labels.project_id.as_deref().unwrap_or(""));
        source.set("location", labels.location.as_deref().unwrap_or(""));
    }
    source.set("logName", e.log_name.as_deref().unwrap_or(""));
    source.set("rebuiltFrom", "LogEntry");
    Ok((out, source))
}

/// `responseStatus`: a logged `Status` body's own fields, else the code the gRPC status stands for.
fn write_response_status(out: &mut String, e: &LogEntry, verb: &str, subresource: Option<&str>) {
    if let Some(status) = e.proto.response.and_then(|r| raw::parse_object(r.get()).ok()) {
        let is_status = status.raw("@type") == Some("\"core.k8s.io/v1.Status\"");
        let code = status.raw("code").filter(|c| c.bytes().all(|b| b.is_ascii_digit()));
        if let (true, Some(code)) = (is_status, code) {
            out.push_str(",\"responseStatus\":{\"metadata\":{}");
            for key in ["status", "message", "reason", "details"] {
                if let Some(v) = status.raw(key) {
                    out.push_str(&format!(",\"{key}\":"));
                    out.push_str(v);
                }
            }
            out.push_str(",\"code\":");
            out.push_str(code);
            out.push('}');
            return;
        }
    }
    let rpc = e.proto.status.as_ref().and_then(|s| s.code).unwrap_or(0);
    out.push_str(",\"responseStatus\":{\"metadata\":{},\"code\":");
    out.push_str(&http_code(rpc, verb, subresource).to_string());
    out.push('}');
}

/// Copies a body without its `@type` member (added by Cloud Logging, not part of the object).
fn without_type(body: &str, out: &mut String) {
    match raw::parse_object(body) {
        Ok(obj) => obj.rebuild(out, |_, key, _| if key == "@type" { Edit::Remove } else { Edit::Keep }, &[]),
        Err(_) => out.push_str(body),
    }
}
