//! One Fluent Bit record through the pipeline, with the guarantees `filter_wasm` needs.
//!
//! Fluent Bit drops a record when the guest returns anything but one JSON object, and aborts on
//! an invalid return after a valid one in the same chunk (fluent/fluent-bit v5.1.1
//! `plugins/filter_wasm/filter_wasm.c`: `json_buf` is freed but not reset when `flb_pack_json` fails,
//! a double free; see plugins/fluent-bit/README.md). So every reply here is
//! either a drop (`""`) or exactly one JSON object with no interior NUL, built in one reused
//! buffer:
//!
//! * kept or stripped events: the pipeline's bytes (spliced from a validated parse);
//! * records the pipeline passes through (not an audit event, oversized): checked to be one JSON
//!   object, otherwise wrapped as `{"kaudit_error":…,"log":"<original text>"}`;
//! * alerts a record raised: appended as `"kaudit_alerts":[…]` plus `"kaudit_alert_count":"N"`
//!   (a string, because Fluent Bit's `rewrite_tag` matches string values only); a dropped record
//!   that raised alerts becomes `{"kaudit_alerts":[…],"kaudit_alert_count":"N","kaudit_dropped":"true"}`;
//! * `alerts.role: agent`: partial and watermark records ride on the record the same way, as
//!   `"kaudit_partials":[…]` plus `"kaudit_partial_count":"N"` (docs/SCALING.md);
//! * `alerts.role: aggregator`: a record carrying partials (`kaudit_partials`, from agents
//!   through `forward`) is merged and dropped; the alerts it completes come back as a carrier;
//! * with `alerts.routes`: per route that has alerts, `"kaudit_route_<name>":{"body":…,"headers":{…}}`
//!   (the payload the core rendered in the route's format, posted by an `http` output with
//!   `body_key`/`headers_key`, see README.md "Alert routes");
//! * a bad config: every record comes back unchanged plus `"kaudit_error":"config: …"`;
//! * a NULL record pointer (Fluent Bit's heap copy failed): `{"kaudit_error":…,"record_len":N}`.

use std::fmt::Write as _;

use kaudit::{parse_object, write_json_str};
use kaudit::{AlertRole, Outcome, Pipeline, PARTIALS_KEY};

/// The key alerts land under in the returned record.
pub const ALERTS_KEY: &str = "kaudit_alerts";
/// The alert count as a string (what `rewrite_tag` routes on).
pub const ALERT_COUNT_KEY: &str = "kaudit_alert_count";
/// Partial records as a string count (what `rewrite_tag` routes on).
pub const PARTIAL_COUNT_KEY: &str = "kaudit_partial_count";
/// Marks a record the policy dropped that is only there to carry its alerts.
pub const DROPPED_KEY: &str = "kaudit_dropped";
/// Prefix of the per-route payload keys (`kaudit_route_<route name>`).
pub const ROUTE_KEY_PREFIX: &str = "kaudit_route_";
/// Errors visible in the record.
pub const ERROR_KEY: &str = "kaudit_error";

/// The record as the host handed it over.
pub enum Input<'a> {
    Record(&'a [u8]),
    /// The host passed a NULL pointer with this length (its heap copy failed).
    Null {
        len: u32,
    },
    /// The pointer and length reach past the end of linear memory.
    OutOfBounds {
        ptr: u32,
        len: u32,
    },
}

/// What to return to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Return `""`: Fluent Bit drops the record.
    Drop,
    /// Return [`Filter::reply`]: one JSON object, NUL-terminated.
    Record,
}

/// The adapter's own counters (the pipeline counts outcomes). Plain numbers, kept outside the
/// [`Filter`] so they survive a trap (see lib.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub calls: u64,
    pub null_record: u64,
    pub out_of_bounds: u64,
    /// Passed-through records that were not one JSON object and were wrapped.
    pub wrapped: u64,
    /// Records returned with the config error.
    pub config_error_records: u64,
    /// Records returned unchanged because of an internal error (a caught panic, a bad result).
    pub internal_errors: u64,
    /// Calls that trapped (seen on the next call): Fluent Bit dropped their records.
    pub traps: u64,
    /// Alerts attached to records.
    pub alerts: u64,
}

impl Stats {
    pub const ZERO: Stats = Stats {
        calls: 0,
        null_record: 0,
        out_of_bounds: 0,
        wrapped: 0,
        config_error_records: 0,
        internal_errors: 0,
        traps: 0,
        alerts: 0,
    };
}

/// What the filter runs with.
pub enum Mode {
    Ready {
        pipeline: Box<Pipeline>,
        source: String,
    },
    /// The config did not load: records pass through with this message.
    ConfigError(String),
}

/// The filter state that lives for the whole Fluent Bit process.
pub struct Filter {
    mode: Mode,
    /// The one reply buffer, reused for every call (Fluent Bit copies the reply right away).
    out: String,
    counters_out: String,
}

impl Filter {
    pub fn new(mode: Mode) -> Filter {
        Filter { mode, out: String::with_capacity(16 * 1024), counters_out: String::new() }
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The reply of the last [`Reply::Record`], NUL included.
    pub fn reply(&self) -> &[u8] {
        self.out.as_bytes()
    }

    /// Handles one record. On [`Reply::Record`] the reply is in [`Filter::reply`].
    pub fn handle(&mut self, input: Input<'_>, stats: &mut Stats) -> Reply {
        stats.calls += 1;
        self.out.clear();
        let out = &mut self.out;
        let reply = match input {
            Input::Null { len } => {
                stats.null_record += 1;
                out.push_str("{\"kaudit_error\":\"record pointer is NULL (raise Wasm_Heap_Size)\",\"record_len\":");
                let _ = write!(out, "{len}}}");
                Reply::Record
            }
            Input::OutOfBounds { ptr, len } => {
                stats.out_of_bounds += 1;
                out.push_str("{\"kaudit_error\":\"record is outside linear memory\",\"record_ptr\":");
                let _ = write!(out, "{ptr},\"record_len\":{len}}}");
                Reply::Record
            }
            Input::Record(bytes) => match &mut self.mode {
                Mode::ConfigError(message) => {
                    stats.config_error_records += 1;
                    original_with(bytes, Some(&format!("config: {message}")), out, stats);
                    Reply::Record
                }
                Mode::Ready { pipeline, .. } => process(pipeline, bytes, out, stats),
            },
        };
        if reply == Reply::Record {
            self.out.push('\0');
        }
        reply
    }

    /// After an internal error: the original record, unchanged (or wrapped if it is not one object).
    pub fn pass_original(&mut self, bytes: &[u8], stats: &mut Stats) -> Reply {
        stats.internal_errors += 1;
        self.out.clear();
        original_with(bytes, None, &mut self.out, stats);
        self.out.push('\0');
        Reply::Record
    }

    /// The counters as one NUL-terminated JSON object:
    /// `{"fluentBit":{…adapter…},"pipeline":{…core…}|null,"config":"…"|"configError":"…"}`, where
    /// `pipeline` is [`kaudit::Pipeline::metrics_json`] (counters and alert statistics).
    pub fn counters_json(&mut self, s: &Stats) -> &[u8] {
        let o = &mut self.counters_out;
        o.clear();
        let _ = write!(
            o,
            "{{\"fluentBit\":{{\"calls\":{},\"nullRecord\":{},\"outOfBounds\":{},\"wrapped\":{},\"configErrorRecords\":{},\"internalErrors\":{},\"traps\":{},\"alerts\":{}}},\"pipeline\":",
            s.calls, s.null_record, s.out_of_bounds, s.wrapped, s.config_error_records, s.internal_errors, s.traps, s.alerts
        );
        match &self.mode {
            Mode::Ready { pipeline, source } => {
                o.push_str(&pipeline.metrics_json());
                o.push_str(",\"config\":");
                write_json_str(o, source);
            }
            Mode::ConfigError(message) => {
                o.push_str("null,\"configError\":");
                write_json_str(o, message);
            }
        }
        o.push_str("}\0");
        o.as_bytes()
    }
}

/// One record through the pipeline; the reply is left in `out`.
fn process(pipeline: &mut Pipeline, bytes: &[u8], out: &mut String, stats: &mut Stats) -> Reply {
    if pipeline.alert_role() == AlertRole::Aggregator && carries_partials(bytes) {
        return merge(pipeline, bytes, out, stats);
    }
    let outcome = match crate::ascii_text(bytes) {
        Some(text) => pipeline.process_text(text, out),
        None => pipeline.process_record(bytes, out),
    };
    let alerts = pipeline.take_alerts();
    let partials = pipeline.take_partials();
    let reply = match outcome {
        Outcome::Dropped { .. } | Outcome::Bad { passed: false, .. } => Reply::Drop,
        // Spliced from a validated parse: one object by construction; the cheap check below guards it.
        Outcome::Kept { .. } => Reply::Record,
        // Passed through untouched: Fluent Bit's records are objects, but this host must never
        // return anything else, so check (this path is rare: only non-audit records).
        Outcome::Bad { passed: true, .. } | Outcome::Oversized => {
            if let Err(e) = parse_object(out) {
                stats.wrapped += 1;
                out.clear();
                wrap(bytes, &format!("record is not one JSON object: {e}"), out);
            }
            Reply::Record
        }
    };
    if reply == Reply::Record && !looks_like_object(out) {
        stats.internal_errors += 1;
        out.clear();
        original_with(bytes, None, out, stats);
    }
    let reply = attach_alerts(out, reply, &alerts, stats);
    attach_routes(out, &pipeline.config().alerts, &alerts);
    attach_list(out, reply, PARTIALS_KEY, PARTIAL_COUNT_KEY, &partials)
}

/// Adds, for each route of `alerts.routes` that has alerts in this record,
/// `"kaudit_route_<name>":{"body":"<payload>","headers":{"Content-Type":"…"}}`: what Fluent Bit's
/// `http` output posts as one request with `body_key`/`headers_key` (fluent/fluent-bit v5.1.1
/// `plugins/out_http/http.c`, `send_all_requests`). The payload is rendered by the core.
fn attach_routes(out: &mut String, config: &kaudit::AlertConfig, alerts: &[String]) {
    if alerts.is_empty() || config.routes.is_empty() {
        return;
    }
    let mut members = String::new();
    for route in &config.routes {
        let Some(payload) = config.payload(route, alerts) else { continue };
        if !members.is_empty() {
            members.push(',');
        }
        write_json_str(&mut members, &format!("{ROUTE_KEY_PREFIX}{}", route.name));
        members.push_str(":{\"body\":");
        write_json_str(&mut members, &payload.body);
        members.push_str(",\"headers\":{\"Content-Type\":");
        write_json_str(&mut members, payload.content_type);
        members.push_str("}}");
    }
    if !members.is_empty() {
        append_members(out, &members);
    }
}

/// Whether an aggregator's record is an agent's partials (anything else goes through the
/// pipeline as usual).
fn carries_partials(bytes: &[u8]) -> bool {
    let needle = PARTIALS_KEY.as_bytes();
    bytes.windows(needle.len()).any(|w| w == needle)
}

/// Aggregator: merges an agent's partials; the record is dropped, the alerts it completed come
/// back as a carrier. A record that does not merge comes back with the reason in `kaudit_error`.
fn merge(pipeline: &mut Pipeline, bytes: &[u8], out: &mut String, stats: &mut Stats) -> Reply {
    let merged = pipeline.merge_partials(bytes);
    let alerts = pipeline.take_alerts();
    let reply = match merged {
        Err(e) => {
            original_with(bytes, Some(&format!("partials: {e}")), out, stats);
            attach_alerts(out, Reply::Record, &alerts, stats)
        }
        Ok(_) => attach_alerts(out, Reply::Drop, &alerts, stats),
    };
    attach_routes(out, &pipeline.config().alerts, &alerts);
    reply
}

/// Adds the alerts a record raised to the reply in `out`; a dropped record with alerts becomes
/// an alert carrier (`kaudit_dropped`), so the alerts still reach the alert route.
fn attach_alerts(out: &mut String, reply: Reply, alerts: &[String], stats: &mut Stats) -> Reply {
    stats.alerts += alerts.len() as u64;
    attach_list(out, reply, ALERTS_KEY, ALERT_COUNT_KEY, alerts)
}

/// Adds `"key":[items…],"count_key":"N"` to the reply; a dropped record becomes a carrier.
fn attach_list(out: &mut String, mut reply: Reply, key: &str, count_key: &str, items: &[String]) -> Reply {
    if items.is_empty() {
        return reply;
    }
    if reply == Reply::Drop {
        out.clear();
        out.push_str("{}");
    }
    let mut members = String::with_capacity(64 + items.iter().map(String::len).sum::<usize>());
    members.push('"');
    members.push_str(key);
    members.push_str("\":[");
    members.push_str(&items.join(","));
    let _ = write!(members, "],\"{count_key}\":\"{}\"", items.len());
    if reply == Reply::Drop {
        let _ = write!(members, ",\"{DROPPED_KEY}\":\"true\"");
        reply = Reply::Record;
    }
    append_members(out, &members);
    reply
}

/// The original record, plus `"kaudit_error":error` when given; wrapped if it is not one object.
fn original_with(bytes: &[u8], error: Option<&str>, out: &mut String, stats: &mut Stats) {
    let text = String::from_utf8_lossy(bytes);
    match parse_object(&text) {
        Ok(_) => {
            out.push_str(&text);
            if let Some(error) = error {
                let mut member = String::with_capacity(error.len() + 20);
                write_json_str(&mut member, ERROR_KEY);
                member.push(':');
                write_json_str(&mut member, error);
                append_members(out, &member);
            }
        }
        Err(e) => {
            stats.wrapped += 1;
            let why = match error {
                Some(error) => format!("{error}; record is not one JSON object: {e}"),
                None => format!("record is not one JSON object: {e}"),
            };
            wrap(bytes, &why, out);
        }
    }
}

/// `{"kaudit_error":why,"log":"<the record as text>"}`: keeps the data, escapes any NUL.
fn wrap(bytes: &[u8], why: &str, out: &mut String) {
    out.push('{');
    write_json_str(out, ERROR_KEY);
    out.push(':');
    write_json_str(out, why);
    out.push_str(",\"log\":");
    write_json_str(out, &String::from_utf8_lossy(bytes));
    out.push('}');
}

/// Inserts `members` (already `"k":v[,"k":v]`) before the closing brace of the object in `out`
/// (callers only pass objects; anything else is left alone rather than sliced at a wrong place).
fn append_members(out: &mut String, members: &str) {
    let Some(body) = out.trim_end().strip_suffix('}') else { return };
    let before = body.trim_end().len();
    let empty = body.trim_end().ends_with('{');
    out.truncate(before);
    if !empty {
        out.push(',');
    }
    out.push_str(members);
    out.push('}');
}

/// O(1) guard: starts with `{` and ends with `}` (kept events come from a validated parse).
fn looks_like_object(out: &str) -> bool {
    let t = out.trim_matches(|c: char| c.is_ascii_whitespace());
    t.len() >= 2 && t.starts_with('{') && t.ends_with('}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_line(vector: &str, n: usize) -> String {
        let path = format!("{}/../../tests/conformance/vectors/{vector}/input.jsonl", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap().lines().nth(n).unwrap().to_string()
    }

    fn reply_text(f: &Filter) -> &str {
        let r = f.reply();
        assert_eq!(r.last(), Some(&0), "reply must be NUL-terminated");
        assert!(!r[..r.len() - 1].contains(&0), "no interior NUL");
        std::str::from_utf8(&r[..r.len() - 1]).unwrap()
    }

    fn default_filter() -> Filter {
        Filter::new(Mode::Ready {
            pipeline: Box::new(Pipeline::embedded_default()),
            source: "<embedded default>".into(),
        })
    }

    #[test]
    fn kept_event_is_the_pipelines_bytes() {
        let line = vector_line("seed-default", 0);
        let mut f = default_filter();
        let mut stats = Stats::ZERO;
        assert_eq!(f.handle(Input::Record(line.as_bytes()), &mut stats), Reply::Record);
        let mut expected = String::new();
        Pipeline::embedded_default().process_record(line.as_bytes(), &mut expected);
        assert_eq!(reply_text(&f), expected);
        assert_eq!(stats.calls, 1);
    }

    /// A filter whose policy keeps every event as it is (enrichment and alerts off).
    fn keep_all_filter() -> Filter {
        let config = "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules:\n  - level: RequestResponse\nenrichment:\n  enabled: false\nalerts:\n  enabled: false\n";
        let (pipeline, _) = Pipeline::from_config_text(config, "keep.yaml", &kaudit::NoFiles).unwrap();
        Filter::new(Mode::Ready { pipeline: Box::new(pipeline), source: "keep.yaml".into() })
    }

    fn managed_fixture(path: &str) -> String {
        let path = format!("{}/../../tests/fixtures/managed/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn managed_cluster_records_come_back_as_the_events_inside() {
        let mut f = keep_all_filter();
        let mut stats = Stats::ZERO;
        // AKS storage-blob lines (what `tail` with the json parser makes one record each).
        let blob = managed_fixture("aks/dynatrace/aks-records.jsonl");
        let mut lines = blob.lines();
        let audit = lines.next().unwrap();
        let record: serde_json::Value = serde_json::from_str(audit).unwrap();
        let event = record["properties"]["log"].as_str().unwrap().trim_end_matches('\n');
        assert_eq!(f.handle(Input::Record(audit.as_bytes()), &mut stats), Reply::Record);
        assert_eq!(reply_text(&f), event, "the apiserver's bytes");
        let klog = lines.next().unwrap();
        assert_eq!(f.handle(Input::Record(klog.as_bytes()), &mut stats), Reply::Record);
        assert_eq!(reply_text(&f), klog, "another category passes through untouched");
        // EKS: one CloudWatch log event per record (a FilterLogEvents event, a logEvents item).
        let response: serde_json::Value =
            serde_json::from_str(&managed_fixture("eks/cloudwatch-synth/filter-log-events-response.json")).unwrap();
        for e in response["events"].as_array().unwrap() {
            assert_eq!(f.handle(Input::Record(e.to_string().as_bytes()), &mut stats), Reply::Record);
            assert_eq!(reply_text(&f), e["message"].as_str().unwrap());
        }
        // A CloudWatch control message holds no record: consumed.
        let control = managed_fixture("eks/cloudwatch-synth/subscription-CONTROL_MESSAGE.decoded.json");
        let control: serde_json::Value = serde_json::from_str(&control).unwrap();
        assert_eq!(f.handle(Input::Record(control.to_string().as_bytes()), &mut stats), Reply::Drop);
        assert_eq!(stats.wrapped, 0);
    }

    #[test]
    fn non_objects_and_nul_bytes_are_wrapped_never_returned_raw() {
        let mut f = default_filter();
        let mut stats = Stats::ZERO;
        for bad in [&b"[1,2]"[..], b"not json", b"{\"a\":\"x\0y\"}", b"{\"a\":1}{\"b\":2}", b"", b"{\"a\":1"] {
            assert_eq!(f.handle(Input::Record(bad), &mut stats), Reply::Record);
            let text = reply_text(&f).to_string();
            let obj = parse_object(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert!(obj.get("kaudit_error").is_some(), "{text}");
            let log = kaudit::decode_str(obj.raw("log").unwrap()).unwrap();
            assert_eq!(log.as_bytes(), bad, "the original is kept");
        }
        assert_eq!(stats.wrapped, 6);
        // An object that is not an audit event passes through unchanged.
        assert_eq!(f.handle(Input::Record(b"{\"kind\": 0}"), &mut stats), Reply::Record);
        assert_eq!(reply_text(&f), "{\"kind\": 0}");
    }

    #[test]
    fn invalid_utf8_passes_through_as_one_object() {
        let mut f = default_filter();
        let mut stats = Stats::ZERO;
        assert_eq!(f.handle(Input::Record(b"{\"log\":\"caf\xe9\"}"), &mut stats), Reply::Record);
        parse_object(reply_text(&f)).unwrap();
        assert_eq!(reply_text(&f), "{\"log\":\"caf\u{fffd}\"}");
        assert_eq!(stats.wrapped, 0);
    }

    #[test]
    fn ascii_records_are_text_and_others_are_not() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |m: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % m
        };
        for _ in 0..100_000 {
            let len = next(200) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next(128) as u8).collect();
            if len > 0 && next(2) == 0 {
                let at = next(len as u64) as usize;
                bytes[at] = 0x80 | next(128) as u8;
            }
            let want = bytes.is_ascii().then(|| std::str::from_utf8(&bytes).unwrap());
            assert_eq!(crate::ascii_text(&bytes), want, "{bytes:?}");
        }
        assert_eq!(crate::ascii_text("caf\u{e9}".as_bytes()), None);
    }

    #[test]
    fn text_and_bytes_give_the_same_outcome_and_reply() {
        // Kept, stripped, bad and wrapped records; the vector's every line.
        let path = format!("{}/../../tests/conformance/vectors/seed-default/input.jsonl", env!("CARGO_MANIFEST_DIR"));
        let input = std::fs::read_to_string(path).unwrap();
        let mut lines: Vec<&str> = input.lines().collect();
        lines.extend(["{\"kind\": 0}", "not json", "{\"a\":1"]);
        let (mut by_text, mut by_bytes) = (Pipeline::embedded_default(), Pipeline::embedded_default());
        for line in lines {
            let (mut a, mut b) = (String::new(), String::new());
            assert_eq!(by_text.process_text(line, &mut a), by_bytes.process_record(line.as_bytes(), &mut b));
            assert_eq!(a, b);
            assert_eq!(by_text.take_alerts(), by_bytes.take_alerts());
        }
        assert_eq!(by_text.metrics_json(), by_bytes.metrics_json());
    }

    #[test]
    fn null_record_is_a_visible_error() {
        let mut f = default_filter();
        let mut stats = Stats::ZERO;
        assert_eq!(f.handle(Input::Null { len: 93515 }, &mut stats), Reply::Record);
        assert_eq!(
            reply_text(&f),
            "{\"kaudit_error\":\"record pointer is NULL (raise Wasm_Heap_Size)\",\"record_len\":93515}"
        );
        assert_eq!(stats.null_record, 1);
    }

    #[test]
    fn config_error_annotates_every_record() {
        let mut f = Filter::new(Mode::ConfigError("kaudit.yaml:1:13: badRecords: expected pass or drop".into()));
        let mut stats = Stats::ZERO;
        f.handle(Input::Record(b"{\"a\":1}"), &mut stats);
        assert_eq!(
            reply_text(&f),
            "{\"a\":1,\"kaudit_error\":\"config: kaudit.yaml:1:13: badRecords: expected pass or drop\"}"
        );
        f.handle(Input::Record(b" { } "), &mut stats);
        assert_eq!(
            reply_text(&f),
            " {\"kaudit_error\":\"config: kaudit.yaml:1:13: badRecords: expected pass or drop\"}"
        );
        assert_eq!(stats.config_error_records, 2);
        let counters = std::str::from_utf8(f.counters_json(&stats)).unwrap().trim_end_matches('\0').to_string();
        assert!(counters.contains("\"configError\":\"kaudit.yaml:1:13"), "{counters}");
    }

    #[test]
    fn members_are_appended_before_the_brace() {
        let mut s = String::from("{\"a\":1}  ");
        append_members(&mut s, "\"k\":[]");
        assert_eq!(s, "{\"a\":1,\"k\":[]}");
        let mut s = String::from("{ }");
        append_members(&mut s, "\"k\":[]");
        assert_eq!(s, "{\"k\":[]}");
        // Not an object (cannot happen): untouched, no panic on a multi-byte end.
        let mut s = String::from("[\"é\"]é");
        append_members(&mut s, "\"k\":[]");
        assert_eq!(s, "[\"é\"]é");
    }

    #[test]
    fn alerts_ride_on_the_record_or_on_a_carrier_for_a_dropped_one() {
        let alerts = vec!["{\"rule\":\"a\"}".to_string(), "{\"rule\":\"b\"}".to_string()];
        let mut stats = Stats::ZERO;
        let mut out = String::from("{\"kind\":\"Event\"}");
        assert_eq!(attach_alerts(&mut out, Reply::Record, &alerts, &mut stats), Reply::Record);
        assert_eq!(
            out,
            "{\"kind\":\"Event\",\"kaudit_alerts\":[{\"rule\":\"a\"},{\"rule\":\"b\"}],\"kaudit_alert_count\":\"2\"}"
        );
        let mut out = String::new();
        assert_eq!(attach_alerts(&mut out, Reply::Drop, &alerts[..1], &mut stats), Reply::Record);
        assert_eq!(
            out,
            "{\"kaudit_alerts\":[{\"rule\":\"a\"}],\"kaudit_alert_count\":\"1\",\"kaudit_dropped\":\"true\"}"
        );
        let mut out = String::new();
        assert_eq!(attach_alerts(&mut out, Reply::Drop, &[], &mut stats), Reply::Drop);
        assert_eq!(stats.alerts, 3);
    }

    #[test]
    fn each_route_with_alerts_gets_its_payload_and_content_type() {
        let config = "alerts:\n  routes:\n    - {name: am, format: alertmanager}\n    - {name: chat, format: slack, minSeverity: critical}\n    - {name: lines, format: jsonLines}\n";
        let (pipeline, _) = Pipeline::from_config_text(config, "k.yaml", &kaudit::NoFiles).unwrap();
        let mut f = Filter::new(Mode::Ready { pipeline: Box::new(pipeline), source: "k.yaml".into() });
        let mut stats = Stats::ZERO;
        let line = vector_line("seed-alerts", 0);
        assert_eq!(f.handle(Input::Record(line.as_bytes()), &mut stats), Reply::Record);
        let reply: serde_json::Value = serde_json::from_str(reply_text(&f)).unwrap();
        let alerts = reply["kaudit_alerts"].as_array().unwrap();
        assert!(!alerts.is_empty());
        let am = &reply["kaudit_route_am"];
        assert_eq!(am["headers"], serde_json::json!({"Content-Type": "application/json"}));
        let posted: serde_json::Value = serde_json::from_str(am["body"].as_str().unwrap()).unwrap();
        let names: Vec<&serde_json::Value> =
            posted.as_array().unwrap().iter().map(|a| &a["labels"]["alertname"]).collect();
        let rules: Vec<&serde_json::Value> = alerts.iter().map(|a| &a["rule"]).collect();
        assert_eq!(names, rules);
        let lines = &reply["kaudit_route_lines"];
        assert_eq!(lines["headers"]["Content-Type"], "application/x-ndjson");
        let path = format!("{}/../../tests/conformance/vectors/seed-alerts/alerts.jsonl", env!("CARGO_MANIFEST_DIR"));
        let expected = std::fs::read_to_string(path).unwrap();
        let want: String = expected.lines().take(alerts.len()).map(|a| format!("{a}\n")).collect();
        assert_eq!(lines["body"].as_str().unwrap(), want);
        assert!(reply.get("kaudit_route_chat").is_none(), "no critical alert: nothing for that route");
    }

    #[test]
    fn counters_are_one_object() {
        let mut f = default_filter();
        let mut stats = Stats::ZERO;
        let line = vector_line("seed-default", 0);
        f.handle(Input::Record(line.as_bytes()), &mut stats);
        let c = f.counters_json(&stats).to_vec();
        let text = std::str::from_utf8(&c[..c.len() - 1]).unwrap();
        let obj = parse_object(text).unwrap();
        let pipeline = obj.raw("pipeline").unwrap();
        assert!(pipeline.contains("\"read\":1"), "{text}");
        // The alert engine's statistics too: the default rules saw the one kept event.
        assert!(pipeline.contains("\"alerts\":{\"events\":1,"), "{text}");
        assert_eq!(obj.raw("config").unwrap(), "\"<embedded default>\"");
    }
}
