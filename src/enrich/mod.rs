//! Enrichment: fields derived from an event, added under one key (`"kaudit"` by default) so the
//! audit schema is never clobbered. These are what the seed's Log Service computes with SQL
//! functions at query time (`ip_to_domain`, `ip_to_country`, `security_check_ip`, the account
//! CASE expression, `regexp_extract` on requestURI), computed once in the pipeline instead.

pub mod account;
pub mod exec;
pub mod geo;
pub mod ip;
pub mod resource;

use std::net::IpAddr;

use crate::event::raw::{needs_escape, write_json_str, OutBuf};
use crate::event::time::EventTimes;
use crate::event::Event;

pub use geo::{GeoDb, GeoInfo};
pub use ip::{parse_ip, IpScope, IpSet};

/// A GeoIP database or a network entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnrichError {
    /// The `database`-th (1-based) GeoIP database is not a MaxMind DB.
    NotMaxMindDb {
        /// 1-based position in the configured list.
        database: usize,
        /// What the MaxMind DB reader said.
        reason: String,
    },
    /// A `highRiskIPs` entry that is neither an IP address nor a CIDR network.
    NotANetwork(String),
}

impl std::fmt::Display for EnrichError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnrichError::NotMaxMindDb { database, reason } => {
                write!(f, "database {database}: not a MaxMind DB: {reason}")
            }
            EnrichError::NotANetwork(s) => write!(f, "{s:?} is not an IP address or CIDR network"),
        }
    }
}

impl std::error::Error for EnrichError {}

/// Which groups of fields to compute (each can be switched off in the config).
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichConfig {
    /// `enrichment.enabled`: write the fields into events (alert rules read them either way).
    pub enabled: bool,
    /// The key the fields are added under.
    pub key: String,
    /// `sourceIP`: source and peer address, scope, GeoIP, high risk.
    pub source_ip: bool,
    /// `account`: the acting account and impersonation.
    pub account: bool,
    /// `userKind`: anonymous, node, service account, control plane or human.
    pub user_kind: bool,
    /// `resource`: resource type and category.
    pub resource: bool,
    /// `exec`: the command, container and pod of `kubectl exec`.
    pub exec: bool,
    /// `timing`: latency and success.
    pub timing: bool,
    /// `tags`: internet-access, command-execution, resource-deletion, secret-access.
    pub tags: bool,
    /// High-risk networks (the seed's `security_check_ip`).
    pub high_risk: IpSet,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            enabled: true,
            key: "kaudit".into(),
            source_ip: true,
            account: true,
            user_kind: true,
            resource: true,
            exec: true,
            timing: true,
            tags: true,
            high_risk: IpSet::default(),
        }
    }
}

/// The derived fields of one event. Text fields borrow from the event (`'e`): enriching
/// allocates nothing unless a GeoIP database answers or an exec command needs decoding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enrichment<'e> {
    /// First of `sourceIPs` (client-supplied, e.g. X-Forwarded-For).
    pub source_ip: Option<&'e str>,
    /// Last of `sourceIPs` (the connection's peer).
    pub peer_ip: Option<&'e str>,
    /// The source address's scope (internet or intranet).
    pub ip_scope: Option<IpScope>,
    /// What the GeoIP databases know about the source address.
    pub geo: Option<GeoInfo>,
    /// Whether the source address is in `highRiskIPs`.
    pub high_risk: Option<bool>,
    /// The account name as the seed resolves it: the username, or for the shared `kubernetes-admin`
    /// certificate the user its RoleBinding names.
    pub account: Option<&'e str>,
    /// The impersonated user, if any.
    pub impersonated_user: Option<&'e str>,
    /// What kind of user acted (`anonymous`, `node`, `serviceaccount`, `system`, `human`).
    pub user_kind: Option<&'static str>,
    /// `resource/subresource`, or the non-resource path.
    pub resource_type: Option<&'e str>,
    /// The resource's category (`compute`, `network`, `storage`, `other`).
    pub resource_category: Option<&'static str>,
    /// The command run by `kubectl exec`.
    pub exec: Option<exec::ExecInfo<'e>>,
    /// Milliseconds from request received to the stage.
    pub latency_ms: Option<f64>,
    /// Whether the response code is below 400.
    pub success: Option<bool>,
    /// create, update, delete or access.
    pub operation: Option<&'static str>,
    /// The tags that apply.
    pub tags: Tags,
}

/// The tags of one event: a set of [`TAG_INTERNET`], [`TAG_EXEC`], [`TAG_DELETE`] and
/// [`TAG_SECRET`], iterated in that order (the order they are written in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tags(u8);

static ALL_TAGS: [&str; 4] = [TAG_INTERNET, TAG_EXEC, TAG_DELETE, TAG_SECRET];
/// The tags as JSON strings (none needs escaping), written in one copy each.
static ALL_TAGS_JSON: [&str; 4] =
    ["\"internet-access\"", "\"command-execution\"", "\"resource-deletion\"", "\"secret-access\""];

impl Tags {
    const INTERNET: u8 = 1;
    const EXEC: u8 = 2;
    const DELETE: u8 = 4;
    const SECRET: u8 = 8;

    /// Whether no tag applies.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Whether `tag` applies.
    pub fn contains(&self, tag: &str) -> bool {
        ALL_TAGS.iter().position(|t| *t == tag).is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// The tags that apply, in written order.
    pub fn iter(&self) -> TagIter {
        TagIter { bits: self.0, next: 0 }
    }
}

/// The tags of a [`Tags`], in written order.
#[derive(Debug, Clone)]
pub struct TagIter {
    bits: u8,
    next: usize,
}

impl Iterator for TagIter {
    type Item = &'static &'static str;
    fn next(&mut self) -> Option<Self::Item> {
        while self.next < ALL_TAGS.len() {
            let i = self.next;
            self.next += 1;
            if self.bits & (1 << i) != 0 {
                return ALL_TAGS.get(i);
            }
        }
        None
    }
}

impl IntoIterator for &Tags {
    type Item = &'static &'static str;
    type IntoIter = TagIter;
    fn into_iter(self) -> TagIter {
        self.iter()
    }
}

/// Tags for the seed's important operations.
pub const TAG_INTERNET: &str = "internet-access";
pub const TAG_EXEC: &str = "command-execution";
pub const TAG_DELETE: &str = "resource-deletion";
pub const TAG_SECRET: &str = "secret-access";

/// Computes enrichments; holds the loaded GeoIP databases.
#[derive(Debug, Default)]
pub struct Enricher {
    /// What it computes.
    pub config: EnrichConfig,
    /// The GeoIP databases, if configured.
    pub geo: Option<GeoDb>,
}

impl Enricher {
    /// An enricher computing what `config` enables.
    pub fn new(config: EnrichConfig, geo: Option<GeoDb>) -> Self {
        Enricher { config, geo }
    }

    /// Whether the fields are written into events.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Derives every enabled field from `ev`.
    pub fn enrich<'e>(&self, ev: &'e Event) -> Enrichment<'e> {
        let times = if self.config.timing { EventTimes::read(ev, true) } else { EventTimes::default() };
        self.enrich_at(ev, times)
    }

    /// [`Enricher::enrich`] with the event's times already read ([`EventTimes::read`] with
    /// the received time when `timing` is on): the pipeline reads them once per record for the
    /// enrichment and the alert rules.
    pub fn enrich_at<'e>(&self, ev: &'e Event, times: EventTimes) -> Enrichment<'e> {
        let mut e = Enrichment::default();
        self.enrich_into(ev, times, &mut e);
        e
    }

    /// [`Enricher::enrich_at`] into `e`, which is as [`Enrichment::default`] made it: the
    /// pipeline's own local (returned, the enrichment was built apart and copied out, ~200
    /// bytes an interpreter copies one by one).
    #[inline(never)]
    pub(crate) fn enrich_into<'e>(&self, ev: &'e Event, times: EventTimes, e: &mut Enrichment<'e>) {
        let c = &self.config;
        let first_ip = ev.source_ips.first().map(|s| s.as_ref());
        let parsed: Option<IpAddr> = first_ip.and_then(ip::parse_ip);
        let scope = first_ip.map(|_| parsed.map_or(IpScope::Invalid, ip::scope));
        if c.source_ip {
            e.source_ip = first_ip;
            e.peer_ip = ev.source_ips.last().map(|s| s.as_ref());
            e.ip_scope = scope;
            if let (Some(addr), Some(db)) = (parsed, &self.geo) {
                e.geo = db.lookup(addr);
            }
            if !c.high_risk.is_empty() {
                e.high_risk = Some(parsed.is_some_and(|a| c.high_risk.contains(a)));
            }
        }
        if c.account {
            e.account = Some(account::acting_account(ev));
            e.impersonated_user = ev.impersonated_user.as_ref().and_then(|u| u.username.as_deref());
        }
        if c.user_kind {
            e.user_kind = Some(account::user_kind(ev));
        }
        if c.resource {
            if let Some(oref) = &ev.object_ref {
                let r = oref.resource();
                if !r.is_empty() {
                    e.resource_type = Some(r);
                    e.resource_category = Some(resource::category(r));
                }
            }
            e.operation = Some(resource::operation(&ev.verb));
        }
        if c.exec {
            e.exec = exec::from_event(ev);
        }
        if c.timing {
            if let (Some(stage), Some(received)) = (times.stage, times.received) {
                e.latency_ms = Some((stage - received) as f64 / 1000.0);
            }
            e.success = ev.code().map(|code| code < 400);
        }
        if c.tags {
            if scope == Some(IpScope::Internet) {
                e.tags.0 |= Tags::INTERNET;
            }
            let oref = ev.object_ref.as_ref();
            let sub = oref.map_or("", |o| o.subresource());
            let res = oref.map_or("", |o| o.resource());
            if res == "pods" && matches!(sub, "exec" | "attach") {
                e.tags.0 |= Tags::EXEC;
            }
            if matches!(ev.verb.as_ref(), "delete" | "deletecollection") {
                e.tags.0 |= Tags::DELETE;
            }
            if res == "secrets" && sub.is_empty() && matches!(ev.verb.as_ref(), "get" | "list" | "watch") {
                e.tags.0 |= Tags::SECRET;
            }
        }
    }

    /// Enriches `ev` and writes the fields as one JSON object (stable key order).
    pub fn enrich_json(&self, ev: &Event, out: &mut String) {
        self.enrich(ev).write_json(out);
    }
}

impl Enrichment<'_> {
    /// Writes the fields as a JSON object; absent fields are left out.
    pub fn write_json<O: OutBuf + ?Sized>(&self, out: &mut O) {
        out.reserve_out(384);
        out.put_char('{');
        self.write_members(out, "}");
    }

    /// The members after an opening brace already written, then `close` (`}`, or `}}` to close
    /// the event too). The pipeline writes them straight into its output, whatever the output
    /// is. Not inlined: its helpers then are (`needs_escape`, `constant_index`; inlined into
    /// the pipeline's writer it cost ~250 instructions a record more in Fluent Bit's module).
    #[inline(never)]
    pub(crate) fn write_members<O: OutBuf + ?Sized>(&self, out: &mut O, close: &str) {
        self.members(out, None, close);
    }

    /// [`Enrichment::write_members`] with `"source":<source>` (a managed cluster's provider
    /// context, raw JSON) as the last member. A function of its own: as a parameter of the
    /// one above it cost every other event (most) ~5 instructions.
    #[inline(never)]
    pub(crate) fn write_members_with_source<O: OutBuf + ?Sized>(&self, out: &mut O, source: &str, close: &str) {
        self.members(out, Some(source), close);
    }

    /// Every push costs an interpreter the same few dozen instructions whatever its length, so
    /// members are written in as few as can be: a string value's closing quote goes out with
    /// the next member's text (see [`Members`]), constant members and the pairs that always
    /// come together are one constant text each.
    #[inline(always)]
    fn members<O: OutBuf + ?Sized>(&self, out: &mut O, source: Option<&str>, close: &str) {
        let mut w = Members { out, at: FIRST };
        let mut source_plain = false;
        if let Some(v) = self.source_ip {
            source_plain = w.str("\",\"sourceIP\":\"", v);
        }
        if let Some(v) = self.peer_ip {
            // Most events have one source address: the peer is the same string, already checked.
            if source_plain && self.source_ip.is_some_and(|s| std::ptr::eq(s, v)) {
                w.open("\",\"peerIP\":\"");
                w.out.put(v);
            } else {
                w.str("\",\"peerIP\":\"", v);
            }
        }
        if let Some(v) = self.ip_scope {
            w.open(v.json_member());
        }
        if let Some(g) = &self.geo {
            w.text("\",\"geo\":");
            g.write_json(w.out);
        }
        if let Some(v) = self.high_risk {
            w.text(if v { "\",\"highRiskIP\":true" } else { "\",\"highRiskIP\":false" });
        }
        if let Some(v) = self.account {
            w.str("\",\"account\":\"", v);
        }
        if let Some(v) = self.impersonated_user {
            w.str("\",\"impersonatedUser\":\"", v);
        }
        if let Some(v) = self.user_kind {
            w.constant(v, &account::USER_KINDS, "\",\"userKind\":\"");
        }
        if let Some(v) = self.resource_type {
            w.str("\",\"resourceType\":\"", v);
        }
        if let Some(v) = self.resource_category {
            w.constant(v, &resource::CATEGORIES, "\",\"resourceCategory\":\"");
        }
        if let Some(x) = &self.exec {
            w.text("\",");
            write_json_str(w.out, x.kind);
            w.out.put_char(':');
            x.write_json(w.out);
        }
        if let Some(v) = self.latency_ms {
            w.text("\",\"latencyMs\":");
            write_ms(w.out, v);
        }
        let op = self.operation.and_then(|op| constant_index(op, &resource::OPERATIONS));
        match (self.success, op) {
            (Some(ok), Some(i)) => {
                let table = if ok { &SUCCESS_OPERATIONS } else { &FAILURE_OPERATIONS };
                w.open(table.get(i).copied().unwrap_or_default());
            }
            (success, _) => {
                if let Some(v) = success {
                    w.text(if v { "\",\"success\":true" } else { "\",\"success\":false" });
                }
                if let Some(v) = self.operation {
                    w.constant(v, &resource::OPERATIONS, "\",\"operation\":\"");
                }
            }
        }
        if !self.tags.is_empty() {
            w.text("\",\"tags\":[");
            let mut first = true;
            for (i, t) in ALL_TAGS_JSON.iter().enumerate() {
                if self.tags.0 & (1 << i) != 0 {
                    if !first {
                        w.out.put_char(',');
                    }
                    first = false;
                    w.out.put(t);
                }
            }
            w.out.put_char(']');
        }
        if let Some(source) = source {
            w.text("\",\"source\":");
            w.out.put(source);
        }
        if w.at == AFTER_STRING {
            w.out.put_char('"');
        }
        w.out.put(close);
    }
}

/// `success` and `operation` together, in [`resource::OPERATIONS`]' order (member texts as
/// [`Members::open`] takes them).
static SUCCESS_OPERATIONS: [&str; 4] = [
    "\",\"success\":true,\"operation\":\"create",
    "\",\"success\":true,\"operation\":\"update",
    "\",\"success\":true,\"operation\":\"delete",
    "\",\"success\":true,\"operation\":\"access",
];
static FAILURE_OPERATIONS: [&str; 4] = [
    "\",\"success\":false,\"operation\":\"create",
    "\",\"success\":false,\"operation\":\"update",
    "\",\"success\":false,\"operation\":\"delete",
    "\",\"success\":false,\"operation\":\"access",
];

/// Where [`Members`] starts a member's text `",<member>`: after a string value whose closing
/// quote is still to write, after any other value, or for the first member.
const AFTER_STRING: usize = 0;
const AFTER_VALUE: usize = 1;
const FIRST: usize = 2;

/// Writes an object's members, each given as text that starts with `",` (the previous string
/// value's closing quote and the separator), of which the part `at` needs is written.
struct Members<'o, O: OutBuf + ?Sized> {
    out: &'o mut O,
    at: usize,
}

impl<O: OutBuf + ?Sized> Members<'_, O> {
    /// A member (or a key) whose text ends in a complete value (or in the colon).
    #[inline(always)]
    fn text(&mut self, text: &str) {
        self.out.put(text.get(self.at..).unwrap_or(text));
        self.at = AFTER_VALUE;
    }

    /// A member whose text ends in a string value but its closing quote.
    #[inline(always)]
    fn open(&mut self, text: &str) {
        self.out.put(text.get(self.at..).unwrap_or(text));
        self.at = AFTER_STRING;
    }

    /// A string member, its text given up to the value's opening quote. Returns whether the
    /// value needed no escaping.
    #[inline(always)]
    fn str(&mut self, key: &str, v: &str) -> bool {
        if needs_escape(v) {
            self.text(key.strip_suffix('"').unwrap_or(key));
            write_json_str(self.out, v);
            false
        } else {
            self.open(key);
            self.out.put(v);
            true
        }
    }

    /// A member whose value is one of `table`'s: its member text, or if `value` is another
    /// string (of the same text), `key` (text up to the opening quote) and the value.
    #[inline(always)]
    fn constant(&mut self, value: &str, table: &[(&'static str, &'static str)], key: &str) {
        match constant_index(value, table).and_then(|i| table.get(i)) {
            Some((_, member)) => self.open(member),
            None => {
                self.str(key, value);
            }
        }
    }
}

/// The index of `value` in `table` when it is one of its values, the very string the enricher
/// hands out (compared by address: no byte compared, an interpreter pays per byte); `None` for
/// any other string.
fn constant_index(value: &str, table: &[(&'static str, &'static str)]) -> Option<usize> {
    table.iter().position(|(v, _)| std::ptr::eq(*v, value))
}

/// Adds `"key":value` (raw JSON) as the last member of the JSON object in `obj`.
pub(crate) fn add_member(obj: &mut String, key: &str, value: &str) {
    if !obj.ends_with('}') {
        return;
    }
    obj.pop();
    if !obj.ends_with('{') {
        obj.push(',');
    }
    write_json_str(obj, key);
    obj.push(':');
    obj.push_str(value);
    obj.push('}');
}

/// Milliseconds with at most 3 decimals, no trailing zeros (`35.798`, `250`).
pub(crate) fn format_ms(v: f64) -> String {
    let mut s = String::new();
    write_ms(&mut s, v);
    s
}

/// Appends [`format_ms`]'s text.
pub(crate) fn write_ms<O: OutBuf + ?Sized>(out: &mut O, v: f64) {
    // A whole number of microseconds (what the pipeline computes) is written with integer
    // arithmetic: float formatting costs thousands of instructions in an interpreter. Up to
    // 2^40 µs the double nearest to d/1000 rounds back to d/1000 at 3 decimals, so the text is
    // the same; anything else takes the float path.
    if v == 0.0 && v.is_sign_positive() {
        // What the float path writes for a zero latency (a `RequestReceived` stage, or a
        // request answered within its timestamps' resolution).
        out.put_char('0');
        return;
    }
    let micros = (v * 1000.0).round();
    if micros.abs() < (1u64 << 40) as f64 && micros / 1000.0 == v && micros != 0.0 {
        let d = micros as i64;
        let (whole, mut frac) = (d.unsigned_abs() / 1000, d.unsigned_abs() % 1000);
        if d < 0 {
            out.put_char('-');
        }
        // Below a second and a thousand seconds (all but the slowest requests): the whole
        // part's and the fraction's texts come from tables, one copy each.
        let (w, f) = (whole as usize, frac as usize);
        let lead = if w >= 100 {
            0
        } else if w >= 10 {
            1
        } else {
            2
        };
        let trail = if f % 100 == 0 {
            2
        } else if f % 10 == 0 {
            1
        } else {
            0
        };
        let whole_text = if whole < 1000 { DIGITS3.get(3 * w + lead..3 * w + 3) } else { None };
        let frac_text = if frac == 0 { Some("") } else { FRACTIONS.get(4 * f..4 * f + 4 - trail) };
        if let (Some(a), Some(b)) = (whole_text, frac_text) {
            out.put(a);
            out.put(b);
            return;
        }
        push_u64(out, whole);
        if frac != 0 {
            out.put_char('.');
            let mut digits = 3;
            while frac % 10 == 0 {
                frac /= 10;
                digits -= 1;
            }
            // Leading zeros of the fraction (`.05`, `.007`).
            let shown = if frac >= 100 {
                3
            } else if frac >= 10 {
                2
            } else {
                1
            };
            for _ in shown..digits {
                out.put_char('0');
            }
            push_u64(out, frac);
        }
        return;
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        out.put_char('0');
    } else {
        out.put(s);
    }
}

/// `000` to `999`, three digits each.
static DIGITS3: &str = match std::str::from_utf8(&DIGITS3_BYTES) {
    Ok(s) => s,
    Err(_) => "",
};
static DIGITS3_BYTES: [u8; 3000] = digit_table(false);
/// `.000` to `.999`, four bytes each (a fraction's text is its slot without trailing zeros).
static FRACTIONS: &str = match std::str::from_utf8(&FRACTION_BYTES) {
    Ok(s) => s,
    Err(_) => "",
};
static FRACTION_BYTES: [u8; 4000] = digit_table(true);

/// 0 to 999 in three digits each, after a `.` each with `dot`.
const fn digit_table<const N: usize>(dot: bool) -> [u8; N] {
    let mut t = [0u8; N];
    let width = if dot { 4 } else { 3 };
    let mut i = 0;
    while i < 1000 && (i + 1) * width <= N {
        let at = i * width + (width - 3);
        if dot {
            t[at - 1] = b'.';
        }
        t[at] = b'0' + (i / 100) as u8;
        t[at + 1] = b'0' + (i / 10 % 10) as u8;
        t[at + 2] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
}

/// Appends the decimal digits of `n` (no `fmt` machinery: it is costly in an interpreter).
pub(crate) fn push_u64<O: OutBuf + ?Sized>(out: &mut O, n: u64) {
    // Most significant digit first, one char each (no UTF-8 check of a digit buffer).
    let mut scale = 1;
    while n / scale >= 10 {
        scale *= 10;
    }
    loop {
        out.put_char(char::from(b'0' + (n / scale % 10) as u8));
        if scale == 1 {
            break;
        }
        scale /= 10;
    }
}

#[cfg(test)]
#[test]
fn digits_are_the_display_of_the_number() {
    let mut rng = crate::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
    let mut samples: Vec<u64> = (0..2000).collect();
    samples.extend((0..20).flat_map(|e| [10u64.pow(e) - 1, 10u64.pow(e), 10u64.pow(e) + 1]));
    samples.extend([u64::MAX, u64::MAX - 1, 10_000_000_000_000_000_000]);
    for _ in 0..100_000 {
        samples.push(rng.below(u64::MAX) >> rng.below(64));
    }
    for n in samples {
        let mut s = String::from("x");
        push_u64(&mut s, n);
        assert_eq!(s, format!("x{n}"));
    }
}

#[cfg(test)]
#[test]
fn whole_microseconds_format_as_the_float_path_does() {
    fn float_path(v: f64) -> String {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" {
            "0".into()
        } else {
            s.to_string()
        }
    }
    let mut rng = crate::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
    let mut samples: Vec<i64> = (-3000..3000).collect();
    for _ in 0..200_000 {
        samples.push(rng.below(1u64 << 41) as i64 - (1i64 << 40));
    }
    samples.extend([(1i64 << 40) - 1, -(1i64 << 40) + 1, 1 << 40, 86_400_000_000, 35_798, 250_000]);
    for d in samples {
        let v = d as f64 / 1000.0;
        assert_eq!(format_ms(v), float_path(v), "{d} µs");
    }
    for v in [0.0, -0.0, 0.0004, 1e300, f64::NAN, 1.23456] {
        assert_eq!(format_ms(v), float_path(v), "{v}");
    }
}

/// Writes a JSON object member by member.
pub(crate) struct ObjWriter<'o, O: OutBuf + ?Sized> {
    pub out: &'o mut O,
    first: bool,
}

impl<'o, O: OutBuf + ?Sized> ObjWriter<'o, O> {
    pub fn new(out: &'o mut O) -> Self {
        out.put_char('{');
        ObjWriter { out, first: true }
    }
    pub fn key(&mut self, k: &str) {
        if !self.first {
            self.out.put_char(',');
        }
        self.first = false;
        write_json_str(self.out, k);
        self.out.put_char(':');
    }
    /// A key given as constant text `,"key":` (the comma is left out for the first member).
    pub fn key_at(&mut self, comma_key_colon: &str) {
        let text =
            if self.first { comma_key_colon.strip_prefix(',').unwrap_or(comma_key_colon) } else { comma_key_colon };
        self.first = false;
        self.out.put(text);
    }
    pub fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        write_json_str(self.out, v);
    }
    /// A string member, its key given as constant text `,"key":"` (with the value's opening
    /// quote: one copy fewer when the value needs no escaping, the common case).
    pub fn str_at(&mut self, comma_key_colon_quote: &str, v: &str) {
        if needs_escape(v) {
            self.key_at(comma_key_colon_quote.strip_suffix('"').unwrap_or(comma_key_colon_quote));
            write_json_str(self.out, v);
        } else {
            self.plain_at(comma_key_colon_quote, v);
        }
    }
    /// A member whose value is text that needs no escaping (a constant of this module).
    pub fn plain_at(&mut self, comma_key_colon_quote: &str, v: &str) {
        self.key_at(comma_key_colon_quote);
        self.out.put(v);
        self.out.put_char('"');
    }
    /// A whole member given as constant text `,"key":value`.
    pub fn member(&mut self, comma_member: &str) {
        self.key_at(comma_member);
    }
    pub fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        push_u64(self.out, v);
    }
    pub fn end(self) {
        self.out.put_char('}');
    }
}

#[cfg(test)]
mod tests;
