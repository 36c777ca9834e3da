//! Alert routes: where the config sends alerts and in which payload format (`alerts.routes`).
//!
//! The formats are rendered here, once, for every host: a host takes the alert JSON objects
//! ([`crate::Pipeline::take_alerts`]), asks each route for its payloads and only delivers them
//! (Fluent Bit's `http` output, Envoy's alert cluster). Formats:
//!
//! * `jsonLines`: the alert objects as JSON lines (docs/ALERTS.md), byte for byte;
//! * `alertmanager`: Prometheus Alertmanager's API v2 `POST /api/v2/alerts` body, a JSON array of
//!   `postableAlert` (prometheus/alertmanager `api/v2/openapi.yaml`: `labels` required,
//!   `annotations`, `startsAt`, `endsAt`, `generatorURL`);
//! * `slack`: a Slack incoming-webhook message, `{"text": …}` in Slack's mrkdwn;
//! * `dingtalk`: a DingTalk custom robot message, `{"msgtype":"markdown","markdown":{"title","text"},"at":{…}}`.
//!
//! Rendering is pure: the same alerts give the same bytes in every host.

use std::borrow::Cow;

use serde_json::Value;

use super::rule::Severity;
use crate::event::raw::{decode_str, parse_object, write_json_str, write_json_str_array};
use crate::event::time::{format_micros, parse_duration, parse_micros};
use crate::yaml::{Ctx, Diagnostic, Kind, Node};

/// A payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertFormat {
    /// The alert objects as JSON lines (`application/x-ndjson`).
    JsonLines,
    /// Alertmanager API v2 `postableAlerts`.
    Alertmanager,
    /// Slack incoming webhook.
    Slack,
    /// DingTalk custom robot (markdown message).
    DingTalk,
}

impl AlertFormat {
    /// The names used in the config.
    pub const NAMES: &'static [&'static str] = &["jsonLines", "alertmanager", "slack", "dingtalk"];

    /// The format named `s` in the config.
    pub fn parse(s: &str) -> Option<AlertFormat> {
        Some(match s {
            "jsonLines" => AlertFormat::JsonLines,
            "alertmanager" => AlertFormat::Alertmanager,
            "slack" => AlertFormat::Slack,
            "dingtalk" => AlertFormat::DingTalk,
            _ => return None,
        })
    }

    /// The name used in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertFormat::JsonLines => "jsonLines",
            AlertFormat::Alertmanager => "alertmanager",
            AlertFormat::Slack => "slack",
            AlertFormat::DingTalk => "dingtalk",
        }
    }

    /// The `Content-Type` of its payloads.
    pub fn content_type(self) -> &'static str {
        match self {
            AlertFormat::JsonLines => "application/x-ndjson",
            _ => "application/json",
        }
    }

    /// Default for `maxAlertsPerMessage`: chat messages stay readable (and under Slack's 40,000
    /// characters of `text` and DingTalk's 20,000 bytes); machine formats take large batches.
    fn default_max_alerts(self) -> usize {
        match self {
            AlertFormat::Slack | AlertFormat::DingTalk => 10,
            AlertFormat::JsonLines | AlertFormat::Alertmanager => 1_000,
        }
    }
}

/// One route of `alerts.routes`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRoute {
    /// `name`: unique; hosts name their delivery after it (Fluent Bit key `kaudit_route_<name>`).
    pub name: String,
    /// `format`.
    pub format: AlertFormat,
    /// `minSeverity`: alerts below it are not sent on this route.
    pub min_severity: Severity,
    /// `maxAlertsPerMessage`: alerts per payload (a host that delivers a batch splits it).
    pub max_alerts_per_message: usize,
    /// Alertmanager: `labels` added to every alert (the rule's labels win on a clash).
    pub labels: Vec<(String, String)>,
    /// Alertmanager: `generatorURL`, with `{rule}` and `{auditID}` replaced (form-encoded).
    pub generator_url: Option<String>,
    /// Alertmanager: `endsAfter`: `endsAt` = `startsAt` + this (microseconds); none: Alertmanager's `resolve_timeout`.
    pub ends_after: Option<i64>,
    /// DingTalk: `keyword` the robot's security setting requires; put in the title and text.
    pub keyword: Option<String>,
    /// DingTalk: `atMobiles`: phone numbers to @-mention.
    pub at_mobiles: Vec<String>,
    /// DingTalk: `atAll`.
    pub at_all: bool,
}

/// One payload to deliver: the body and its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPayload {
    /// The request body.
    pub body: String,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// How many alerts it carries.
    pub alerts: usize,
}

const ROUTE_KEYS: &[&str] = &[
    "name",
    "format",
    "minSeverity",
    "maxAlertsPerMessage",
    "labels",
    "generatorURL",
    "endsAfter",
    "keyword",
    "atMobiles",
    "atAll",
];

/// Labels kaudit sets itself; `labels` may not name them.
const RESERVED_LABELS: &[&str] = &["alertname", "severity", "source", "auditID"];

/// Decodes `alerts.routes` (the context is at `routes`).
pub fn decode_routes(c: &mut Ctx, node: &Node) -> Result<Vec<AlertRoute>, Diagnostic> {
    let routes = c.list(node, decode_route)?;
    for (i, r) in routes.iter().enumerate() {
        if let Some(j) = routes[..i].iter().position(|o| o.name == r.name) {
            let Kind::Seq(items) = &node.kind else { break };
            return Err(c.at_index(i, |c| {
                c.at("name", |c| c.error(items[i].pos, format!("route {:?} is already defined by routes[{j}]", r.name)))
            }));
        }
    }
    Ok(routes)
}

fn decode_route(c: &mut Ctx, node: &Node) -> Result<AlertRoute, Diagnostic> {
    let entries = c.strict_map(node, ROUTE_KEYS)?;
    let get = |k: &str| entries.iter().find(|(key, _)| key.name == k).map(|(_, v)| *v);
    let name = match get("name") {
        Some(n) => c.at("name", |c| {
            let s = c.string(n)?;
            let ok = !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(c.error(
                    n.pos,
                    format!(
                        "{s:?}: a route name is 1 to 64 letters, digits, '_' or '-' (hosts use it in keys and tags)"
                    ),
                ));
            }
            Ok(s)
        })?,
        None => return Err(c.error(node.pos, "a route needs a name")),
    };
    let format = match get("format") {
        Some(n) => c.at("format", |c| {
            let s = c.string(n)?;
            AlertFormat::parse(&s).ok_or_else(|| {
                c.error(n.pos, format!("expected one of {}, found {s:?}", AlertFormat::NAMES.join(", ")))
            })
        })?,
        None => return Err(c.error(node.pos, "a route needs a format")),
    };
    let mut route = AlertRoute {
        name,
        format,
        min_severity: Severity::Info,
        max_alerts_per_message: format.default_max_alerts(),
        labels: Vec::new(),
        generator_url: None,
        ends_after: None,
        keyword: None,
        at_mobiles: Vec::new(),
        at_all: false,
    };
    for (key, v) in &entries {
        let key_name = key.name.as_str();
        let only = match key_name {
            "labels" | "generatorURL" | "endsAfter" => Some(AlertFormat::Alertmanager),
            "keyword" | "atMobiles" | "atAll" => Some(AlertFormat::DingTalk),
            _ => None,
        };
        let misplaced = match only {
            Some(f) if f != format => {
                Some(format!("only for format {}; this route's format is {}", f.as_str(), format.as_str()))
            }
            None if key_name == "maxAlertsPerMessage" && format == AlertFormat::JsonLines => {
                Some("not for format jsonLines (a payload holds every alert given)".to_string())
            }
            _ => None,
        };
        if let Some(message) = misplaced {
            return Err(c.at(key_name, |c| c.error(key.pos, message)));
        }
        c.at(key_name, |c| -> Result<(), Diagnostic> {
            match key_name {
                "minSeverity" => {
                    let s = c.string(v)?;
                    route.min_severity = Severity::parse(&s).ok_or_else(|| {
                        c.error(v.pos, format!("expected one of {}, found {s:?}", Severity::NAMES.join(", ")))
                    })?;
                }
                "maxAlertsPerMessage" => {
                    let n = c.u64(v)?;
                    if n == 0 || n > 1_000 {
                        return Err(c.error(v.pos, "expected a number from 1 to 1000"));
                    }
                    route.max_alerts_per_message = n as usize;
                }
                "labels" => {
                    let Kind::Map(items) = &v.kind else {
                        return Err(c.type_error(v, "a mapping of label name to value"));
                    };
                    for (k, lv) in items {
                        if route.labels.iter().any(|(n, _)| *n == k.name) {
                            return Err(c.at(&k.name, |c| {
                                c.problem(crate::yaml::DiagnosticKind::DuplicateKey, k.pos, "duplicate key")
                            }));
                        }
                        let value = c.at(&k.name, |c| -> Result<String, Diagnostic> {
                            if !is_label_name(&k.name) {
                                return Err(
                                    c.error(k.pos, "a label name is a letter or '_' then letters, digits or '_'")
                                );
                            }
                            if RESERVED_LABELS.contains(&k.name.as_str()) {
                                return Err(c.error(
                                    k.pos,
                                    "set by kaudit from the alert (alertname, severity, source, auditID)",
                                ));
                            }
                            let s = c.string(lv)?;
                            if s.is_empty() {
                                return Err(c.error(lv.pos, "must not be empty (Alertmanager drops empty labels)"));
                            }
                            Ok(s)
                        })?;
                        route.labels.push((k.name.clone(), value));
                    }
                }
                "generatorURL" => {
                    let s = c.string(v)?;
                    if !(s.starts_with("https://") || s.starts_with("http://")) || s.contains(char::is_whitespace) {
                        return Err(c.error(v.pos, format!("{s:?}: expected an http:// or https:// URL")));
                    }
                    route.generator_url = Some(s);
                }
                "endsAfter" => {
                    let d = match &v.kind {
                        Kind::Str(s) => parse_duration(s).map_err(|e| c.error(v.pos, e.to_string()))?,
                        _ => return Err(c.type_error(v, "a duration such as 30m or 1h")),
                    };
                    if d <= 0 {
                        return Err(c.error(v.pos, "must be longer than 0"));
                    }
                    route.ends_after = Some(d);
                }
                "keyword" => {
                    let s = c.string(v)?;
                    if s.trim().is_empty() {
                        return Err(c.error(v.pos, "must not be empty"));
                    }
                    route.keyword = Some(s);
                }
                "atMobiles" => route.at_mobiles = c.strings(v)?,
                "atAll" => route.at_all = c.bool(v)?,
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(route)
}

/// Prometheus' classic label name: `[a-zA-Z_][a-zA-Z0-9_]*` (what Alertmanager before 0.28
/// validates, and every version accepts).
fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A label name made from a field path or output name: other characters become `_`
/// (`kaudit.sourceIP` → `kaudit_sourceIP`).
fn label_name(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

impl AlertRoute {
    /// The payloads for `alerts` (alert JSON objects as [`crate::Pipeline::take_alerts`] gives
    /// them), at most `maxAlertsPerMessage` alerts each; alerts below `minSeverity` are left
    /// out. `describe` gives a rule's description (for annotations and messages).
    pub fn payloads(&self, alerts: &[String], describe: &dyn Fn(&str) -> Option<String>) -> Vec<AlertPayload> {
        let views: Vec<AlertView<'_>> =
            alerts.iter().filter_map(|a| AlertView::parse(a)).filter(|v| v.severity >= self.min_severity).collect();
        // `max(1)`: the field is public; a route built by hand must not panic here.
        views.chunks(self.max_alerts_per_message.max(1)).map(|chunk| self.render(chunk, describe)).collect()
    }

    /// All of `alerts` (those at or above `minSeverity`) in one payload, whatever
    /// `maxAlertsPerMessage` says: for a host that can send only one request per record
    /// (Fluent Bit). `None` when no alert is for this route.
    pub fn payload(&self, alerts: &[String], describe: &dyn Fn(&str) -> Option<String>) -> Option<AlertPayload> {
        let views: Vec<AlertView<'_>> =
            alerts.iter().filter_map(|a| AlertView::parse(a)).filter(|v| v.severity >= self.min_severity).collect();
        (!views.is_empty()).then(|| self.render(&views, describe))
    }

    fn render(&self, views: &[AlertView<'_>], describe: &dyn Fn(&str) -> Option<String>) -> AlertPayload {
        let body = match self.format {
            AlertFormat::JsonLines => {
                let mut b = String::new();
                for v in views {
                    b.push_str(v.text);
                    b.push('\n');
                }
                b
            }
            AlertFormat::Alertmanager => self.alertmanager(views, describe),
            AlertFormat::Slack => slack(views, describe),
            AlertFormat::DingTalk => self.dingtalk(views, describe),
        };
        AlertPayload { body, content_type: self.format.content_type(), alerts: views.len() }
    }

    fn alertmanager(&self, views: &[AlertView<'_>], describe: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::from("[");
        for (i, v) in views.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // labels: identify the alert (Alertmanager groups and deduplicates on them).
            let mut labels: Vec<(String, String)> = vec![
                ("alertname".into(), v.rule.to_string()),
                ("severity".into(), v.severity.as_str().into()),
                ("source".into(), v.source.to_string()),
            ];
            for (k, val) in &v.group_key {
                let name = label_name(k);
                if let Some(text) = value_text(val).filter(|t| !t.is_empty()) {
                    if !labels.iter().any(|(n, _)| *n == name) {
                        labels.push((name, text));
                    }
                }
            }
            // Alertmanager merges alerts with equal labels. An ungrouped rule alerts per event,
            // so the event's auditID keeps two events' alerts apart.
            if v.group_key.is_empty() {
                if let Some(id) = v.audit_ids.last() {
                    labels.push(("auditID".into(), id.to_string()));
                }
            }
            for (k, val) in &self.labels {
                if !labels.iter().any(|(n, _)| n == k) {
                    labels.push((k.clone(), val.clone()));
                }
            }
            // annotations: what a person reads.
            let mut annotations: Vec<(String, String)> = vec![("summary".into(), summary(v))];
            if let Some(d) = describe(&v.rule).filter(|d| !d.is_empty()) {
                annotations.push(("description".into(), d));
            }
            for (k, val) in v.fields.iter().chain(&v.aggregates) {
                let name = label_name(k);
                if let Some(text) = value_text(val) {
                    if !annotations.iter().any(|(n, _)| *n == name) {
                        annotations.push((name, text));
                    }
                }
            }
            if let Some((start, end)) = &v.window {
                annotations.push(("windowStart".into(), start.to_string()));
                annotations.push(("windowEnd".into(), end.to_string()));
            }
            if !v.tags.is_empty() {
                annotations.push(("tags".into(), v.tags.join(",")));
            }
            if !v.audit_ids.is_empty() {
                annotations.push(("auditIDs".into(), v.audit_ids.join(",")));
            }
            out.push_str("{\"labels\":");
            write_string_map(&mut out, &labels);
            out.push_str(",\"annotations\":");
            write_string_map(&mut out, &annotations);
            out.push_str(",\"startsAt\":");
            write_json_str(&mut out, &v.time);
            if let Some(d) = self.ends_after {
                if let Some(t) = parse_micros(&v.time) {
                    out.push_str(",\"endsAt\":");
                    write_json_str(&mut out, &format_micros(t.saturating_add(d)));
                }
            }
            if let Some(url) = &self.generator_url {
                let first_id = v.audit_ids.last().map(|s| s.as_ref()).unwrap_or("");
                let url = url.replace("{rule}", &form_encode(&v.rule)).replace("{auditID}", &form_encode(first_id));
                out.push_str(",\"generatorURL\":");
                write_json_str(&mut out, &url);
            }
            out.push('}');
        }
        out.push(']');
        out
    }

    fn dingtalk(&self, views: &[AlertView<'_>], describe: &dyn Fn(&str) -> Option<String>) -> String {
        let mut title = match views {
            [one] => format!("kaudit {}: {}", one.severity.as_str(), one.rule),
            _ => {
                let top = views.iter().map(|v| v.severity).max().unwrap_or(Severity::Info);
                format!("kaudit: {} alerts (highest {})", views.len(), top.as_str())
            }
        };
        if let Some(k) = self.keyword.as_deref().filter(|k| !title.contains(*k)) {
            title = format!("{k} {title}");
        }
        let mut text = String::new();
        for (i, v) in views.iter().enumerate() {
            if i > 0 {
                text.push_str("\n---\n\n");
            }
            text.push_str(&format!("#### [{}] {}\n\n", v.severity.as_str().to_uppercase(), v.rule));
            if let Some(d) = describe(&v.rule).filter(|d| !d.is_empty()) {
                text.push_str(&format!("> {d}\n\n"));
            }
            for (k, val) in detail_lines(v) {
                text.push_str(&format!("- **{k}**: {val}\n"));
            }
        }
        if let Some(k) = self.keyword.as_deref().filter(|k| !text.contains(*k)) {
            text.insert_str(0, &format!("**{k}**\n\n"));
        }
        // A markdown message shows an @-mention only when the text names the number.
        if !self.at_mobiles.is_empty() {
            text.push('\n');
            for m in &self.at_mobiles {
                text.push_str(&format!("@{m} "));
            }
        }
        let mut out = String::from("{\"msgtype\":\"markdown\",\"markdown\":{\"title\":");
        write_json_str(&mut out, &title);
        out.push_str(",\"text\":");
        write_json_str(&mut out, text.trim_end());
        out.push_str("},\"at\":{\"atMobiles\":");
        write_json_str_array(&mut out, &self.at_mobiles);
        out.push_str(",\"isAtAll\":");
        out.push_str(if self.at_all { "true" } else { "false" });
        out.push_str("}}");
        out
    }
}

fn slack(views: &[AlertView<'_>], describe: &dyn Fn(&str) -> Option<String>) -> String {
    let mut text = String::new();
    for (i, v) in views.iter().enumerate() {
        if i > 0 {
            text.push_str("\n\n");
        }
        text.push_str(&format!("*[{}] {}* (kaudit)", v.severity.as_str().to_uppercase(), slack_escape(&v.rule)));
        if let Some(d) = describe(&v.rule).filter(|d| !d.is_empty()) {
            text.push_str(&format!("\n_{}_", slack_escape(&d)));
        }
        for (k, val) in detail_lines(v) {
            text.push_str(&format!("\n• *{}*: `{}`", slack_escape(&k), slack_escape(&val).replace('`', "'")));
        }
    }
    let mut out = String::from("{\"text\":");
    write_json_str(&mut out, &text);
    out.push('}');
    out
}

/// Slack's mrkdwn control characters (api.slack.com "Escaping text"): `&`, `<`, `>`.
fn slack_escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>']) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"))
}

/// The lines of a chat message: time, output fields, aggregates, window, auditIDs (nulls left out).
fn detail_lines(v: &AlertView<'_>) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    if !v.fields.iter().any(|(k, _)| k == "time") {
        lines.push(("time".to_string(), v.time.to_string()));
    }
    for (k, val) in v.fields.iter().chain(&v.aggregates) {
        if let Some(t) = value_text(val) {
            lines.push((k.to_string(), t));
        }
    }
    if let Some((start, end)) = &v.window {
        lines.push(("window".into(), format!("{start} – {end}")));
    }
    if !v.audit_ids.is_empty() {
        lines.push(("auditIDs".into(), v.audit_ids.join(", ")));
    }
    lines
}

/// One line: `rule (severity): field=value, …` (the output fields that have a value).
fn summary(v: &AlertView<'_>) -> String {
    let mut s = format!("{} ({})", v.rule, v.severity.as_str());
    // The first few: the annotations carry them all.
    let parts: Vec<String> =
        v.fields.iter().filter_map(|(k, val)| value_text(val).map(|t| format!("{k}={t}"))).take(6).collect();
    if !parts.is_empty() {
        s.push_str(": ");
        s.push_str(&parts.join(", "));
    }
    s
}

/// A field value as text: strings as they are, numbers and booleans as JSON, lists joined by
/// `, `; `None` for null (and empty lists).
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(value_text).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        other => Some(other.to_string()),
    }
}

/// `s` encoded for a URL query (application/x-www-form-urlencoded: a space is `+`).
fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn write_string_map(out: &mut String, entries: &[(String, String)]) {
    out.push('{');
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(out, k);
        out.push(':');
        write_json_str(out, v);
    }
    out.push('}');
}

/// An alert object read back (members in the order kaudit wrote them).
struct AlertView<'a> {
    text: &'a str,
    rule: Cow<'a, str>,
    severity: Severity,
    source: Cow<'a, str>,
    tags: Vec<String>,
    time: Cow<'a, str>,
    group_key: Vec<(Cow<'a, str>, Value)>,
    fields: Vec<(Cow<'a, str>, Value)>,
    aggregates: Vec<(Cow<'a, str>, Value)>,
    window: Option<(String, String)>,
    audit_ids: Vec<Cow<'a, str>>,
}

impl<'a> AlertView<'a> {
    /// `None` for text that is not an alert object (hosts only pass kaudit's own alerts).
    fn parse(text: &'a str) -> Option<AlertView<'a>> {
        let obj = parse_object(text).ok()?;
        let string = |k: &str| obj.raw(k).and_then(|v| decode_str(v).ok());
        let members = |k: &str| -> Vec<(Cow<'a, str>, Value)> {
            let Some(v) = obj.raw(k) else { return Vec::new() };
            let Ok(inner) = parse_object(v) else { return Vec::new() };
            let member = |m| (inner.key_cow(m), serde_json::from_str(inner.value(m)).unwrap_or(Value::Null));
            inner.members.iter().map(member).collect()
        };
        let window = obj.raw("window").and_then(|v| {
            let w: Value = serde_json::from_str(v).ok()?;
            Some((w.get("start")?.as_str()?.to_string(), w.get("end")?.as_str()?.to_string()))
        });
        let list = |k: &str| -> Vec<String> {
            obj.raw(k).and_then(|v| serde_json::from_str::<Vec<String>>(v).ok()).unwrap_or_default()
        };
        Some(AlertView {
            text,
            rule: string("rule")?,
            severity: Severity::parse(&string("severity")?)?,
            source: string("source").unwrap_or_default(),
            tags: list("tags"),
            time: string("time")?,
            group_key: members("groupKey"),
            fields: members("fields"),
            aggregates: members("aggregates"),
            window,
            audit_ids: list("auditIDs").into_iter().map(Cow::Owned).collect(),
        })
    }
}
