//! Strict checks of alert payloads, as the receivers define them. Each returns the number of
//! alerts (Alertmanager) or messages checked, or what is wrong.
//!
//! * Alertmanager API v2, `POST /api/v2/alerts`: `postableAlerts` in prometheus/alertmanager
//!   `api/v2/openapi.yaml` (an array of `postableAlert`: `labels` (a `labelSet`, required),
//!   `annotations`, `startsAt`, `endsAt` (`date-time`), `generatorURL` (`uri`)), plus what
//!   Alertmanager validates on receipt (`types.Alert.Validate`: label names, non-empty labels,
//!   `startsAt` before `endsAt`). Label names are held to the classic
//!   `[a-zA-Z_][a-zA-Z0-9_]*`, which every Alertmanager version accepts.
//! * Slack incoming webhook: an object with a non-empty `text` (mrkdwn; `&`, `<`, `>` escaped as
//!   Slack's "Escaping text" asks) of at most 40,000 characters.
//! * DingTalk custom robot: `msgtype` `markdown` with `markdown.title` and `markdown.text`, or
//!   `text` with `text.content`; optional `at` with `atMobiles` (strings) and `isAtAll` (bool).

use serde_json::{Map, Value};

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object().ok_or_else(|| format!("{what}: expected an object, found {v}"))
}

fn only_keys(o: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("{what}: unexpected key {k:?} (allowed: {allowed:?})")),
        None => Ok(()),
    }
}

fn label_name_ok(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn label_set(v: &Value, what: &str, require_non_empty: bool) -> Result<(), String> {
    let o = object(v, what)?;
    if require_non_empty && o.is_empty() {
        return Err(format!("{what}: at least one label is required"));
    }
    for (k, val) in o {
        if !label_name_ok(k) {
            return Err(format!("{what}: invalid label name {k:?}"));
        }
        match val.as_str() {
            Some(s) if !(require_non_empty && s.is_empty()) => {}
            _ => return Err(format!("{what}.{k}: expected a non-empty string, found {val}")),
        }
    }
    Ok(())
}

fn date_time(v: &Value, what: &str) -> Result<i64, String> {
    let s = v.as_str().ok_or_else(|| format!("{what}: expected a date-time string, found {v}"))?;
    // RFC 3339 `date-time` as go-openapi's strfmt reads it: a full date, 'T', time, an offset.
    if s.len() < 20 || s.as_bytes()[10] != b'T' {
        return Err(format!("{what}: {s:?} is not an RFC 3339 date-time"));
    }
    kaudit::parse_micros(s).ok_or_else(|| format!("{what}: {s:?} is not an RFC 3339 date-time"))
}

/// Checks an Alertmanager API v2 `postableAlerts` body; returns the number of alerts.
pub fn check_alertmanager(body: &str) -> Result<usize, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let alerts = v.as_array().ok_or("postableAlerts: expected an array")?;
    for (i, a) in alerts.iter().enumerate() {
        let what = format!("[{i}]");
        let o = object(a, &what)?;
        only_keys(o, &["labels", "annotations", "startsAt", "endsAt", "generatorURL"], &what)?;
        let labels = o.get("labels").ok_or_else(|| format!("{what}: labels is required"))?;
        label_set(labels, &format!("{what}.labels"), true)?;
        if labels.get("alertname").is_none() {
            return Err(format!("{what}.labels: no alertname"));
        }
        if let Some(an) = o.get("annotations") {
            label_set(an, &format!("{what}.annotations"), false)?;
        }
        let start = o.get("startsAt").map(|s| date_time(s, &format!("{what}.startsAt"))).transpose()?;
        let end = o.get("endsAt").map(|s| date_time(s, &format!("{what}.endsAt"))).transpose()?;
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                return Err(format!("{what}: endsAt is before startsAt"));
            }
        }
        if let Some(u) = o.get("generatorURL") {
            let u = u.as_str().ok_or_else(|| format!("{what}.generatorURL: expected a string"))?;
            let scheme_ok = u.starts_with("http://") || u.starts_with("https://");
            if !scheme_ok || u.contains(char::is_whitespace) {
                return Err(format!("{what}.generatorURL: {u:?} is not an absolute URI"));
            }
        }
    }
    Ok(alerts.len())
}

/// Checks a Slack incoming-webhook message (`{"text": …}`); returns 1.
pub fn check_slack(body: &str) -> Result<usize, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let o = object(&v, "message")?;
    only_keys(o, &["text", "blocks", "mrkdwn"], "message")?;
    let text = o.get("text").and_then(Value::as_str).ok_or("message: text is required (a string)")?;
    if text.trim().is_empty() {
        return Err("message: text is empty".into());
    }
    if text.chars().count() > 40_000 {
        return Err("message: text is longer than 40,000 characters".into());
    }
    if text.contains(['<', '>']) {
        return Err(format!("message: unescaped < or > in {text:?}"));
    }
    for (i, _) in text.match_indices('&') {
        let rest = &text[i..];
        if !["&amp;", "&lt;", "&gt;"].iter().any(|e| rest.starts_with(e)) {
            return Err(format!("message: unescaped & in {text:?}"));
        }
    }
    Ok(1)
}

/// Checks a DingTalk custom-robot message; with `keyword`, the robot's keyword security (the
/// keyword must be in the message). Returns 1.
pub fn check_dingtalk(body: &str, keyword: Option<&str>) -> Result<usize, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let o = object(&v, "message")?;
    let msgtype = o.get("msgtype").and_then(Value::as_str).ok_or("message: msgtype is required")?;
    let shown = match msgtype {
        "markdown" => {
            only_keys(o, &["msgtype", "markdown", "at"], "message")?;
            let md = object(o.get("markdown").ok_or("message: markdown is required")?, "markdown")?;
            only_keys(md, &["title", "text"], "markdown")?;
            let title = md.get("title").and_then(Value::as_str).filter(|s| !s.is_empty());
            let text = md.get("text").and_then(Value::as_str).filter(|s| !s.is_empty());
            let (Some(title), Some(text)) = (title, text) else {
                return Err("markdown: title and text are required, non-empty strings".into());
            };
            format!("{title}\n{text}")
        }
        "text" => {
            only_keys(o, &["msgtype", "text", "at"], "message")?;
            let t = object(o.get("text").ok_or("message: text is required")?, "text")?;
            only_keys(t, &["content"], "text")?;
            t.get("content")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or("text.content is required")?
                .to_string()
        }
        other => return Err(format!("message: msgtype {other:?} is not checked here")),
    };
    if let Some(at) = o.get("at") {
        let at = object(at, "at")?;
        only_keys(at, &["atMobiles", "atUserIds", "isAtAll"], "at")?;
        for key in ["atMobiles", "atUserIds"] {
            if let Some(list) = at.get(key) {
                let ok = list.as_array().is_some_and(|l| l.iter().all(Value::is_string));
                if !ok {
                    return Err(format!("at.{key}: expected a list of strings"));
                }
            }
        }
        if at.get("isAtAll").is_some_and(|b| !b.is_boolean()) {
            return Err("at.isAtAll: expected a boolean".into());
        }
    }
    if let Some(k) = keyword {
        if !shown.contains(k) {
            return Err(format!("the robot's keyword {k:?} is not in the message"));
        }
    }
    Ok(1)
}
