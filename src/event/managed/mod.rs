//! Managed clusters' audit logs (EKS, GKE, AKS) as users receive them: which wrapper a record
//! arrives in, and the native `audit.k8s.io` Events inside it.
//!
//! Detection needs no flag: a native Event is recognised on its first member, and only records
//! that are not native events are looked at further (the decision costs nothing on native logs).
//!
//! * EKS and AKS carry the apiserver's Event verbatim, only wrapped; it is handed on as the exact
//!   bytes inside the wrapper (a JSON string decoded: `logEvents[].message`, `properties.log`).
//! * GKE converts the Event into a Cloud Audit Logs `LogEntry`; [`gke`] rebuilds an Event from it.
//! * Every Event carries its provider context ([`Source`]: provider, cluster, account…), which
//!   the pipeline writes as enrichment under `kaudit.source`.
//! * A wrapper that does not decode (bad base64, truncated gzip, `records` not an array) is one
//!   [`Piece::Bad`] holding the wrapper's bytes; pieces decoded before the fault are handed over.
//!   Records of a managed source that are not audit events (AKS klog categories, other Cloud
//!   Audit Logs services, other CloudWatch streams) are [`Piece::NotAudit`], passed on untouched.
//!
//! Wire formats: AWS CloudWatch Logs subscription filters and Firehose HTTP-endpoint delivery
//! (docs.aws.amazon.com: `SubscriptionFilters.html`, firehose `httpdeliveryrequestresponse.html`),
//! Azure resource-log schema (learn.microsoft.com `resource-logs-schema`), Google Cloud
//! `LogEntry`/`AuditLog` and Pub/Sub `PubsubMessage` REST schemas; docs/MANAGED.md.

pub mod compress;
pub mod gke;

use std::borrow::Cow;

use crate::event::framing::Records;
use crate::event::raw::{self, RawObject};

/// How deep wrappers may nest (Firehose record → gzip → envelope → message is three).
const MAX_DEPTH: u8 = 6;

/// Where an event came from: written as the `kaudit.source` enrichment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// `(key, JSON value)` in writing order; the first is `provider`.
    fields: Vec<(&'static str, String)>,
}

impl Source {
    pub fn new(provider: &'static str) -> Source {
        let mut s = Source::default();
        s.set("provider", provider);
        s
    }

    /// Sets a string field; empty values are left out (absent, never invented).
    pub fn set(&mut self, key: &'static str, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut json = String::with_capacity(value.len() + 2);
        raw::write_json_str(&mut json, value);
        self.set_raw(key, json);
    }

    fn set_raw(&mut self, key: &'static str, json: String) {
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = json,
            None => self.fields.push((key, json)),
        }
    }

    /// A field's value (a string field decoded).
    pub fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        let (_, v) = self.fields.iter().find(|(k, _)| *k == key)?;
        raw::decode_str(v).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields as one JSON object.
    pub fn write_json(&self, out: &mut String) {
        out.push('{');
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            raw::write_json_str(out, k);
            out.push(':');
            out.push_str(v);
        }
        out.push('}');
    }

    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }
}

/// Why a wrapper's piece is bad (each has its own counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadKind {
    /// The wrapper does not decode: bad base64, corrupt or truncated gzip, a malformed envelope.
    Wrapper,
    /// An Event EKS cut because it was over CloudWatch's entry size (ends in `[Truncated...]`).
    Truncated,
}

/// One thing found in a wrapper, in input order.
#[derive(Debug)]
pub enum Piece<'a> {
    /// A native Event's text: for EKS and AKS the exact bytes the apiserver wrote; for GKE the
    /// rebuilt Event. It is not yet parsed: the pipeline decides whether it is a valid event.
    Event { text: &'a [u8], source: &'a Source },
    /// Bytes that did not decode, to pass through as they are.
    Bad { bytes: &'a [u8], reason: String, kind: BadKind },
    /// A record of a managed source that is not an audit event, to pass through untouched.
    NotAudit { bytes: &'a [u8], what: String },
    /// A CloudWatch Logs `CONTROL_MESSAGE` (a health probe): consumed, nothing to write.
    Control,
}

/// The wrapper a JSON object is, if it is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapper {
    /// CloudWatch Logs subscription envelope (`messageType`, `logEvents`).
    CloudWatchEnvelope,
    /// One CloudWatch log event (`logEvents[]` item, `FilterLogEvents` event): `message` + `timestamp`.
    CloudWatchLogEvent,
    /// `FilterLogEvents`/`GetLogEvents` response (`events`).
    CloudWatchEvents,
    /// Lambda subscription event (`awslogs.data`).
    Lambda,
    /// `{"records":[…]}`: a Firehose HTTP-endpoint request (items with `data`) or an Event Hubs body.
    Records,
    /// AKS diagnostic-settings record (`category`, `properties`).
    AzureRecord,
    /// Cloud Logging `LogEntry` (`protoPayload`).
    LogEntry,
    /// Pub/Sub push request body (`message`, `subscription`) or one `PubsubMessage` (`data`).
    PubSubPush,
    /// Pub/Sub pull response (`receivedMessages`).
    PubSubPull,
    /// A bare `PubsubMessage` (`data` with `messageId`/`publishTime`/`attributes`).
    PubSubMessage,
}

/// Recognises a wrapper from an object's top-level keys (one pass, no value decoded except the
/// first `kind` of a native event).
pub fn wrapper_of(obj: &RawObject) -> Option<Wrapper> {
    // Native events start with "kind":"Event" (apiserver key order): the common case.
    if let Some(first) = obj.members.first() {
        if obj.key_is(first, "kind") && obj.value_is(first, "\"Event\"") {
            return None;
        }
    }
    // An event in another key order: the split saw its `stage` and `verb`.
    if obj.decoded.last().is_some_and(|d| d.saw_stage_and_verb()) {
        return None;
    }
    let has = |k: &str| obj.get(k).is_some();
    let is_str = |k: &str| obj.raw(k).is_some_and(|v| v.starts_with('"'));
    let is_obj = |k: &str| obj.raw(k).is_some_and(|v| v.starts_with('{'));
    if has("stage") && has("verb") {
        return None;
    }
    Some(if has("logEvents") && has("messageType") {
        Wrapper::CloudWatchEnvelope
    } else if has("protoPayload") {
        Wrapper::LogEntry
    } else if has("category") && is_obj("properties") {
        Wrapper::AzureRecord
    } else if has("records") {
        Wrapper::Records
    } else if is_obj("awslogs") {
        Wrapper::Lambda
    } else if has("receivedMessages") {
        Wrapper::PubSubPull
    } else if is_obj("message") && (has("subscription") || obj.members.len() == 1) {
        Wrapper::PubSubPush
    } else if is_str("data") && (has("messageId") || has("publishTime") || has("attributes")) {
        Wrapper::PubSubMessage
    } else if is_str("message") && (has("timestamp") || has("logStreamName")) {
        Wrapper::CloudWatchLogEvent
    } else if has("events") && obj.raw("events").is_some_and(|v| v.starts_with('[')) {
        Wrapper::CloudWatchEvents
    } else {
        return None;
    })
}

/// What the decoder needs to know of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Most bytes one gzip member may expand to (`limits.maxBatchBytes`): bounds a gzip bomb.
    pub max_decoded_bytes: usize,
}

/// Decodes a JSON object already recognised as `wrapper`.
pub fn decode_wrapper(wrapper: Wrapper, obj: &RawObject, limits: DecodeLimits, f: &mut dyn FnMut(Piece<'_>)) {
    let mut d = Dec { limits, f, depth: 0 };
    d.wrapper(wrapper, obj, &Source::default());
}

/// Decodes a record that is not one JSON object: gzip (Kinesis record data, `.gz` objects),
/// base64 of gzip, a CloudWatch export line `<timestamp> <message>`, or JSON objects joined
/// without a delimiter (a Firehose→S3 object after gunzip). Returns `false` (and calls nothing)
/// when `bytes` is none of these.
pub fn decode_loose(bytes: &[u8], limits: DecodeLimits, f: &mut dyn FnMut(Piece<'_>)) -> bool {
    let mut d = Dec { limits, f, depth: 0 };
    d.loose(bytes, &Source::default())
}

/// Decodes a whole input whose first bytes are gzip (a body, a file): its members' records,
/// one member in memory at a time, each bounded by `limits.max_decoded_bytes`.
pub fn decode_gzip_input(bytes: &[u8], limits: DecodeLimits, f: &mut dyn FnMut(Piece<'_>)) {
    let mut d = Dec { limits, f, depth: 0 };
    d.gzip(bytes, &Source::default());
}

/// Whether `Pipeline::process_record` reads `bytes` as a managed-cluster wrapper (its events
/// are then counted one by one) rather than as one native record.
pub fn is_wrapped(bytes: &[u8]) -> bool {
    let limits = DecodeLimits { max_decoded_bytes: 1 << 20 };
    match std::str::from_utf8(bytes).map(raw::parse_object) {
        Ok(Ok(obj)) => wrapper_of(&obj).is_some(),
        _ => decode_loose(bytes, limits, &mut |_| {}),
    }
}

struct Dec<'f> {
    limits: DecodeLimits,
    f: &'f mut dyn FnMut(Piece<'_>),
    depth: u8,
}

/// An EKS message cut by CloudWatch ends with this (Falco k8saudit-eks checks the same suffix).
const EKS_TRUNCATED: &str = "[Truncated...]";

impl Dec<'_> {
    fn bad(&mut self, bytes: &[u8], reason: String) {
        (self.f)(Piece::Bad { bytes, reason, kind: BadKind::Wrapper });
    }

    fn wrapper(&mut self, w: Wrapper, obj: &RawObject, ctx: &Source) {
        if self.depth >= MAX_DEPTH {
            return self.bad(obj.text.as_bytes(), format!("wrappers nested more than {MAX_DEPTH} deep"));
        }
        self.depth += 1;
        match w {
            Wrapper::CloudWatchEnvelope => self.cloudwatch_envelope(obj),
            Wrapper::CloudWatchLogEvent => {
                let mut source = ctx.clone();
                if source.is_empty() {
                    source = Source::new("eks");
                }
                if let Some(stream) = str_member(obj, "logStreamName") {
                    source.set("logStream", &stream);
                }
                self.cloudwatch_log_event(obj.text, &source)
            }
            Wrapper::CloudWatchEvents => self.cloudwatch_events(obj),
            Wrapper::Lambda => self.lambda(obj),
            Wrapper::Records => self.records(obj, ctx),
            Wrapper::AzureRecord => self.azure_record(obj),
            Wrapper::LogEntry => self.log_entry(obj),
            Wrapper::PubSubPush => match obj.raw("message") {
                Some(m) => self.pubsub_message(m, obj.text),
                None => self.bad(obj.text.as_bytes(), "Pub/Sub push: no message".into()),
            },
            Wrapper::PubSubMessage => self.pubsub_message(obj.text, obj.text),
            Wrapper::PubSubPull => self.pubsub_pull(obj),
        }
        self.depth -= 1;
    }

    /// Bytes that came out of a decoding step (gzip, base64): records framed as a stream.
    fn content(&mut self, bytes: &[u8], ctx: &Source) {
        if compress::is_gzip(bytes) {
            return self.gzip(bytes, ctx);
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return self.bad(bytes, "decoded data is neither gzip nor UTF-8 text".into());
        };
        for record in Records::new(text.as_bytes()) {
            self.record(record.bytes, ctx);
        }
    }

    /// One record of decoded content.
    fn record(&mut self, bytes: &[u8], ctx: &Source) {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let t = text.trim_start();
            if t.starts_with('{') {
                if let Ok(obj) = raw::parse_object(text) {
                    return match wrapper_of(&obj) {
                        Some(w) => self.wrapper(w, &obj, ctx),
                        None => (self.f)(Piece::Event { text: bytes, source: ctx }),
                    };
                }
            } else if t.starts_with('[') {
                if let Ok(items) = raw::parse_array(text) {
                    if !items.is_empty() && items.iter().all(|(_, v)| v.starts_with('{')) {
                        for (_, item) in items {
                            self.record(item.as_bytes(), ctx);
                        }
                        return;
                    }
                }
            }
        }
        if !self.loose(bytes, ctx) {
            (self.f)(Piece::Event { text: bytes, source: ctx });
        }
    }

    fn loose(&mut self, bytes: &[u8], ctx: &Source) -> bool {
        if compress::is_gzip(bytes) {
            self.gzip(bytes, ctx);
            return true;
        }
        if bytes.starts_with(compress::BASE64_GZIP_PREFIX) {
            let Ok(text) = std::str::from_utf8(bytes) else { return false };
            match compress::base64(text) {
                Ok(data) => self.content(&data, ctx),
                Err(e) => self.bad(bytes, e),
            }
            return true;
        }
        let Ok(text) = std::str::from_utf8(bytes) else { return false };
        if let Some(message) = export_line_message(text) {
            let mut source = ctx.clone();
            if source.is_empty() {
                source = Source::new("eks");
            }
            self.message(message, bytes, &source);
            return true;
        }
        if text.trim_end().ends_with(EKS_TRUNCATED) && text.trim_start().starts_with('{') {
            // A bare message (Firehose message extraction, a message copied out of CloudWatch).
            self.message(text, bytes, ctx);
            return true;
        }
        if text.trim_start().starts_with('{') {
            return self.concatenated(text, ctx);
        }
        false
    }

    /// JSON values back to back with no delimiter (`{…}{…}`): each is a record. False when
    /// there are not at least two values before any fault.
    fn concatenated(&mut self, text: &str, ctx: &Source) -> bool {
        let mut values = Vec::new();
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&serde_json::value::RawValue>();
        let mut fault = None;
        for v in stream.by_ref() {
            match v {
                Ok(v) => values.push(v.get()),
                Err(e) => {
                    fault = Some(e.to_string());
                    break;
                }
            }
        }
        // Only a Firehose→S3 object is read this way: the first value must be an envelope or
        // an Event, else the text is one (bad) record as it came.
        let recognised = |v: &str| {
            raw::parse_object(v).is_ok_and(|o| wrapper_of(&o).is_some() || o.raw("kind") == Some("\"Event\""))
        };
        if values.len() < 2 || !recognised(values[0]) {
            return false;
        }
        let rest_at = match fault {
            Some(_) => values.last().map(|v| v.as_ptr() as usize + v.len() - text.as_ptr() as usize),
            None => None,
        };
        for v in values {
            self.record(v.as_bytes(), ctx);
        }
        if let (Some(at), Some(e)) = (rest_at, fault) {
            let rest = text[at..].trim_start();
            self.bad(rest.as_bytes(), format!("after concatenated JSON values: {e}"));
        }
        true
    }

    fn gzip(&mut self, bytes: &[u8], ctx: &Source) {
        if self.depth >= MAX_DEPTH {
            return self.bad(bytes, format!("wrappers nested more than {MAX_DEPTH} deep"));
        }
        self.depth += 1;
        // One member at a time: a Firehose→S3 object is many envelopes, each its own member.
        for member in compress::GzMembers::new(bytes, self.limits.max_decoded_bytes) {
            match member {
                Ok(m) => self.content(&m, ctx),
                Err(e) => self.bad(&bytes[e.at..], e.message),
            }
        }
        self.depth -= 1;
    }

    fn cloudwatch_envelope(&mut self, obj: &RawObject) {
        let kind = str_member(obj, "messageType");
        if kind.as_deref() == Some("CONTROL_MESSAGE") {
            return (self.f)(Piece::Control);
        }
        if kind.as_deref() != Some("DATA_MESSAGE") {
            return self.bad(obj.text.as_bytes(), format!("CloudWatch Logs envelope: messageType {kind:?}"));
        }
        let mut source = Source::new("eks");
        let group = str_member(obj, "logGroup").unwrap_or_default();
        source.set("cluster", eks_cluster(&group));
        source.set("account", &str_member(obj, "owner").unwrap_or_default());
        source.set("logGroup", &group);
        let stream = str_member(obj, "logStream").unwrap_or_default();
        source.set("logStream", &stream);
        let Some(items) = obj.raw("logEvents").and_then(|v| raw::parse_array(v).ok()) else {
            return self.bad(obj.text.as_bytes(), "CloudWatch Logs envelope: logEvents is not an array".into());
        };
        for (_, item) in items {
            self.cloudwatch_log_event(item, &source);
        }
    }

    fn cloudwatch_events(&mut self, obj: &RawObject) {
        let Some(items) = obj.raw("events").and_then(|v| raw::parse_array(v).ok()) else {
            return self.bad(obj.text.as_bytes(), "FilterLogEvents response: events is not an array".into());
        };
        for (_, item) in items {
            let mut source = Source::new("eks");
            if let Ok(event) = raw::parse_object(item) {
                source.set("logStream", &str_member(&event, "logStreamName").unwrap_or_default());
            }
            self.cloudwatch_log_event(item, &source);
        }
    }

    /// One CloudWatch log event (`{"id","timestamp","message"}` or a `FilterLogEvents` event).
    fn cloudwatch_log_event(&mut self, item: &str, source: &Source) {
        let message = raw::parse_object(item).ok().and_then(|o| str_member(&o, "message"));
        let Some(message) = message else {
            return self.bad(item.as_bytes(), "CloudWatch log event without a message string".into());
        };
        // Only the audit streams hold Events; the cluster log group has others (authenticator…).
        if let Some(stream) = source.get("logStream") {
            if !stream.starts_with("kube-apiserver-audit") {
                let what = format!("CloudWatch log stream {stream}: not an audit stream");
                return (self.f)(Piece::NotAudit { bytes: message.as_bytes(), what });
            }
        }
        self.message(&message, item.as_bytes(), source);
    }

    /// An EKS message: the Event as the apiserver wrote it, or one CloudWatch cut.
    fn message(&mut self, message: &str, _wrapper: &[u8], source: &Source) {
        let m = message.trim_end();
        if m.ends_with(EKS_TRUNCATED) {
            let reason = "EKS truncated this event (over the CloudWatch Logs entry size): it ends in [Truncated...]";
            return (self.f)(Piece::Bad { bytes: message.as_bytes(), reason: reason.into(), kind: BadKind::Truncated });
        }
        if !m.trim_start().starts_with('{') {
            let what = "CloudWatch log message that is not a JSON object".to_string();
            return (self.f)(Piece::NotAudit { bytes: message.as_bytes(), what });
        }
        (self.f)(Piece::Event { text: message.as_bytes(), source });
    }

    fn lambda(&mut self, obj: &RawObject) {
        let data = obj.raw("awslogs").and_then(|v| raw::parse_object(v).ok()).and_then(|o| str_member(&o, "data"));
        let Some(data) = data else {
            return self.bad(obj.text.as_bytes(), "Lambda awslogs event without data".into());
        };
        match compress::base64(&data) {
            Ok(bytes) => self.content(&bytes, &Source::default()),
            Err(e) => self.bad(obj.text.as_bytes(), format!("Lambda awslogs.data: {e}")),
        }
    }

    /// `{"records":[…]}`: Firehose HTTP-endpoint items carry `data`; Event Hubs items are AKS records.
    fn records(&mut self, obj: &RawObject, ctx: &Source) {
        let Some(items) = obj.raw("records").and_then(|v| raw::parse_array(v).ok()) else {
            return self.bad(obj.text.as_bytes(), "records is not an array".into());
        };
        for (_, item) in items {
            let Ok(record) = raw::parse_object(item) else {
                self.bad(item.as_bytes(), "records item is not a JSON object".into());
                continue;
            };
            if let Some(data) = record.raw("data") {
                let decoded = raw::decode_str(data).map_err(|e| e.to_string()).and_then(|d| compress::base64(&d));
                match decoded {
                    Ok(bytes) => self.firehose_data(&bytes, item.as_bytes(), ctx),
                    Err(e) => self.bad(item.as_bytes(), format!("Firehose record data: {e}")),
                }
            } else {
                match wrapper_of(&record) {
                    Some(w) => self.wrapper(w, &record, ctx),
                    None => (self.f)(Piece::Event { text: item.as_bytes(), source: ctx }),
                }
            }
        }
    }

    /// A Firehose record's data: gzip of an envelope, or (with decompression or a direct PUT
    /// source) the records themselves. A fault inside makes the whole record bad.
    fn firehose_data(&mut self, data: &[u8], item: &[u8], ctx: &Source) {
        if compress::is_gzip(data) {
            // Decoded whole first: a fault anywhere makes the one record bad, not half of it.
            let members: Result<Vec<Vec<u8>>, _> =
                compress::GzMembers::new(data, self.limits.max_decoded_bytes).collect();
            match members {
                Ok(members) => members.iter().for_each(|m| self.content(m, ctx)),
                Err(e) => self.bad(item, format!("Firehose record data: {}", e.message)),
            }
        } else {
            self.content(data, ctx)
        }
    }

    fn azure_record(&mut self, obj: &RawObject) {
        let category = str_member(obj, "category").unwrap_or_default();
        if category != "kube-audit" && category != "kube-audit-admin" {
            let what = format!("AKS record of category {category:?}: not an audit event");
            return (self.f)(Piece::NotAudit { bytes: obj.text.as_bytes(), what });
        }
        let props = obj.raw("properties").and_then(|v| raw::parse_object(v).ok());
        let Some(log) = props.as_ref().and_then(|p| str_member(p, "log")) else {
            return self.bad(obj.text.as_bytes(), "AKS kube-audit record without a properties.log string".into());
        };
        let mut source = Source::new("aks");
        let resource_id = str_member(obj, "resourceId").unwrap_or_default();
        let (subscription, group, cluster) = azure_resource(&resource_id);
        source.set("cluster", cluster);
        source.set("subscription", subscription);
        source.set("resourceGroup", group);
        source.set("category", &category);
        if let Some(pod) = props.as_ref().and_then(|p| str_member(p, "pod")) {
            source.set("pod", &pod);
        }
        // The apiserver's line ends in '\n': the Event is what precedes it.
        let event = log.strip_suffix('\n').unwrap_or(&log);
        (self.f)(Piece::Event { text: event.as_bytes(), source: &source });
    }

    fn log_entry(&mut self, obj: &RawObject) {
        match gke::rebuild(obj) {
            Ok((event, source)) => (self.f)(Piece::Event { text: event.as_bytes(), source: &source }),
            Err(gke::NotRebuilt::NotKubernetes(what)) => (self.f)(Piece::NotAudit { bytes: obj.text.as_bytes(), what }),
            Err(gke::NotRebuilt::Malformed(reason)) => self.bad(obj.text.as_bytes(), reason),
        }
    }

    /// A `PubsubMessage`: `data` is base64 of the LogEntry JSON.
    fn pubsub_message(&mut self, message: &str, wrapper: &str) {
        let data = raw::parse_object(message).ok().and_then(|m| str_member(&m, "data"));
        let Some(data) = data else {
            return self.bad(wrapper.as_bytes(), "Pub/Sub message without data".into());
        };
        match compress::base64(&data) {
            Ok(bytes) => self.content(&bytes, &Source::default()),
            Err(e) => self.bad(wrapper.as_bytes(), format!("Pub/Sub message data: {e}")),
        }
    }

    fn pubsub_pull(&mut self, obj: &RawObject) {
        let Some(items) = obj.raw("receivedMessages").and_then(|v| raw::parse_array(v).ok()) else {
            return self.bad(obj.text.as_bytes(), "Pub/Sub pull: receivedMessages is not an array".into());
        };
        for (_, item) in items {
            match raw::parse_object(item).ok().and_then(|o| o.raw("message")) {
                Some(message) => self.pubsub_message(message, item),
                None => self.bad(item.as_bytes(), "Pub/Sub received message without message".into()),
            }
        }
    }
}

/// A string member decoded (`None` when absent or not a string).
fn str_member<'a>(obj: &RawObject<'a>, key: &str) -> Option<Cow<'a, str>> {
    obj.raw(key).filter(|v| v.starts_with('"')).and_then(|v| raw::decode_str(v).ok())
}

/// The cluster of an EKS log group `/aws/eks/<cluster>/cluster`.
fn eks_cluster(group: &str) -> &str {
    group.strip_prefix("/aws/eks/").and_then(|g| g.strip_suffix("/cluster")).unwrap_or("")
}

/// Subscription, resource group and cluster of an AKS `resourceId`
/// (`/SUBSCRIPTIONS/<s>/RESOURCEGROUPS/<g>/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/<c>`,
/// upper-cased by Azure Monitor).
fn azure_resource(id: &str) -> (&str, &str, &str) {
    let segs: Vec<&str> = id.split('/').collect();
    let after = |name: &str| {
        segs.iter().position(|s| s.eq_ignore_ascii_case(name)).and_then(|i| segs.get(i + 1)).copied().unwrap_or("")
    };
    (after("subscriptions"), after("resourcegroups"), after("managedclusters"))
}

/// The message of a CloudWatch `CreateExportTask` line: `<RFC 3339 time> <message>`.
fn export_line_message(line: &str) -> Option<&str> {
    let (time, message) = line.split_once(' ')?;
    let b = time.as_bytes();
    let looks_like_time = b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && time.ends_with('Z')
        && crate::event::time::parse_micros(time).is_some();
    looks_like_time.then_some(message)
}

#[cfg(test)]
mod tests;
