//! The incremental part: each pushed event becomes one fixed-size [`Row`] (strings interned
//! once per distinct value) plus capped detail strings in a [`BlockArena`], and optionally its
//! raw text (in a second arena) for ad-hoc queries. Both arenas have byte budgets; when one is
//! full its oldest block is dropped, so a live dashboard keeps the newest details. Counts never
//! depend on the budgets: only rows are needed for them.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use crate::enrich::{Enricher, Enrichment, IpScope, TAG_DELETE, TAG_EXEC, TAG_INTERNET, TAG_SECRET};
use crate::event::doc::EventDoc;
use crate::event::framing::for_each_event;
use crate::event::time::format_micros;
use crate::event::{Event, STAGES};
use crate::query::Query;
use crate::report::ReportError;

/// Index of an interned string; 0 is the empty string.
pub(crate) type Sym = u32;

/// Size of one stored row in bytes (the fixed per-event cost; see `docs/REPORTS.md`).
pub const ROW_BYTES: usize = std::mem::size_of::<Row>();
// The documented per-event cost (docs/REPORTS.md); a field added to `Row` must keep it.
const _: () = assert!(ROW_BYTES == 64);

/// Longest interned value (namespace, account, user, IP, user agent...), in bytes.
const MAX_SYM_BYTES: usize = 256;
/// Caps of the detail strings, in bytes: auditID, name, requestURI, command, container.
const DETAIL_CAPS: [usize; 5] = [64, 253, 512, 512, 64];
/// Most standing queries (one bit each per row).
pub const MAX_STANDING_QUERIES: usize = 32;
/// No detail / raw entry.
pub(crate) const NONE: u64 = u64::MAX;

/// Memory bounds of a builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderOptions {
    /// Budget for detail strings (≤ 1,410 bytes per event, ~100 typical). Default 64 MiB.
    pub detail_bytes: usize,
    /// Budget for raw event text kept for ad-hoc queries; 0 (default) keeps none.
    pub raw_bytes: usize,
    /// The enrichment key queries see (`kaudit.account`, ...); the enricher's `key`.
    pub enrichment_key: String,
}

impl Default for BuilderOptions {
    fn default() -> Self {
        BuilderOptions { detail_bytes: 64 << 20, raw_bytes: 0, enrichment_key: "kaudit".into() }
    }
}

/// Operation codes in rows.
pub(crate) const OPS: [&str; 5] = ["", "create", "update", "delete", "access"];
/// Scope codes in rows.
pub(crate) const SCOPES: [&str; 4] = ["", "intranet", "internet", "invalid"];

pub(crate) const F_SUCCESS_KNOWN: u8 = 1;
pub(crate) const F_SUCCESS: u8 = 2;
pub(crate) const F_INTERNET: u8 = 4;
pub(crate) const F_EXEC: u8 = 8;
pub(crate) const F_DELETE: u8 = 16;
pub(crate) const F_SECRET: u8 = 32;

/// One event, reduced to what the reports read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    /// Event time (µs since the epoch); `i64::MIN` when the event has none.
    pub time: i64,
    /// Offset of the detail strings in the details arena, or [`NONE`].
    pub detail: u64,
    pub namespace: Sym,
    pub account: Sym,
    pub user: Sym,
    pub verb: Sym,
    pub resource: Sym,
    pub subresource: Sym,
    pub source_ip: Sym,
    pub region: Sym,
    pub user_agent: Sym,
    /// Bit i: standing query i matched.
    pub queries: u32,
    /// Response code; 0 when absent or outside 1..=65535.
    pub code: u16,
    /// Index into [`OPS`].
    pub op: u8,
    /// `F_*` bits.
    pub flags: u8,
    /// Index into [`SCOPES`].
    pub scope: u8,
    /// Index into [`STAGES`] plus one; 0 for anything else.
    pub stage: u8,
}

pub(crate) const UNTIMED: i64 = i64::MIN;

/// Rows per chunk of [`Rows`] (1 MiB of rows).
const ROWS_PER_CHUNK: usize = 1 << 14;

/// The rows, in fixed-size chunks: growing never copies or over-allocates more than one chunk
/// (a single `Vec` would hold up to twice the rows' size after doubling).
#[derive(Debug, Default)]
pub(crate) struct Rows {
    chunks: Vec<Vec<Row>>,
    len: usize,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn push(&mut self, row: Row) {
        if self.chunks.last().is_none_or(|c| c.len() == ROWS_PER_CHUNK) {
            self.chunks.push(Vec::with_capacity(ROWS_PER_CHUNK));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.push(row);
            self.len += 1;
        }
    }
    pub fn get(&self, i: usize) -> Option<&Row> {
        self.chunks.get(i / ROWS_PER_CHUNK)?.get(i % ROWS_PER_CHUNK)
    }
    fn last_mut(&mut self) -> Option<&mut Row> {
        self.chunks.last_mut()?.last_mut()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Row> {
        self.chunks.iter().flatten()
    }
    fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity() * ROW_BYTES).sum::<usize>() + self.chunks.capacity() * 24
    }
}

/// Interned strings: each distinct value stored once.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    pub strings: Vec<Arc<str>>,
    index: HashMap<Arc<str>, Sym>,
}

impl Interner {
    fn new() -> Self {
        let mut i = Interner::default();
        i.intern("");
        i
    }

    pub fn intern(&mut self, s: &str) -> Sym {
        let s = truncate(s, MAX_SYM_BYTES);
        if let Some(&sym) = self.index.get(s) {
            return sym;
        }
        let sym = self.strings.len() as Sym;
        let arc: Arc<str> = Arc::from(s);
        self.strings.push(arc.clone());
        self.index.insert(arc, sym);
        sym
    }

    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.index.get(truncate(s, MAX_SYM_BYTES)).copied()
    }

    pub fn get(&self, sym: Sym) -> &str {
        self.strings.get(sym as usize).map_or("", |s| s)
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Append-only text in blocks under a byte budget. Entries never span blocks; when a new block
/// would exceed the budget, the oldest blocks are dropped (rows pointing into them lose their
/// entry, never their counts). Blocks avoid the up-to-2x slack of one growing buffer (wasm
/// memory never shrinks) and eviction copies nothing. Offsets are global and only grow.
#[derive(Debug, Default)]
pub(crate) struct BlockArena {
    /// (global offset of the block's first byte, block).
    blocks: VecDeque<(u64, String)>,
    /// Global offset of the oldest byte still held.
    pub start: u64,
    /// Global offset one past the newest byte.
    end: u64,
    block_size: usize,
    budget: usize,
    /// Sum of the blocks' capacities.
    pub held: usize,
}

impl BlockArena {
    pub(crate) fn new(budget: usize) -> Self {
        let block_size = (budget / 16).clamp(budget.min(4096), 1 << 20);
        BlockArena { blocks: VecDeque::new(), start: 0, end: 0, block_size, budget, held: 0 }
    }

    /// Appends `parts` as one entry and returns its offset; `None` if it exceeds the budget.
    pub(crate) fn push(&mut self, parts: &[&str]) -> Option<u64> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 || len > self.budget {
            return None;
        }
        let fits = self.blocks.back().is_some_and(|(_, b)| b.capacity() - b.len() >= len);
        if !fits {
            let cap = self.block_size.max(len);
            while self.held + cap > self.budget {
                let Some((_, old)) = self.blocks.pop_front() else { break };
                self.held -= old.capacity();
                self.start = self.blocks.front().map_or(self.end, |(o, _)| *o);
            }
            if self.blocks.is_empty() {
                self.start = self.end;
            }
            self.blocks.push_back((self.end, String::with_capacity(cap)));
            self.held += cap;
        }
        let offset = self.end;
        let (_, block) = self.blocks.back_mut()?;
        for p in parts {
            block.push_str(p);
        }
        self.end += len as u64;
        Some(offset)
    }

    /// The text from `offset` to the end of its block.
    fn tail(&self, offset: u64) -> Option<&str> {
        if offset < self.start || offset >= self.end {
            return None;
        }
        let i = self.blocks.partition_point(|(o, _)| *o <= offset).checked_sub(1)?;
        let (o, block) = &self.blocks[i];
        block.get((offset - o) as usize..)
    }

    pub(crate) fn get(&self, offset: u64, len: usize) -> Option<&str> {
        self.tail(offset)?.get(..len)
    }

    fn holds(&self, offset: u64) -> bool {
        offset != NONE && offset >= self.start
    }
}

/// Incremental report aggregation; see the module docs of [`crate::report`].
#[derive(Debug)]
pub struct ReportBuilder {
    pub(crate) options: BuilderOptions,
    pub(crate) strings: Interner,
    pub(crate) rows: Rows,
    pub(crate) details: BlockArena,
    pub(crate) raw: BlockArena,
    /// Per row from `raw_first_row`: (offset of the event text, its length, enrichment length).
    pub(crate) raw_index: VecDeque<(u64, u32, u32)>,
    pub(crate) raw_first_row: usize,
    pub(crate) standing: Vec<Query>,
    pub(crate) bad: u64,
    pub(crate) untimed: u64,
    pub(crate) oldest: Option<i64>,
    pub(crate) newest: Option<i64>,
    pub(crate) facet_namespaces: BTreeSet<Sym>,
    pub(crate) facet_accounts: BTreeSet<Sym>,
    pub(crate) facet_codes: BTreeSet<u16>,
    pub(crate) facet_resources: BTreeSet<Sym>,
    /// Results of the last ad-hoc (raw text) query, so changing other filters does not re-parse
    /// every event: per row 0 = not evaluated, 1 = no match, 2 = match.
    pub(crate) query_cache: std::cell::RefCell<(String, Vec<u8>)>,
    scratch: String,
}

impl Default for ReportBuilder {
    fn default() -> Self {
        ReportBuilder::new(BuilderOptions::default())
    }
}

impl ReportBuilder {
    /// An empty builder.
    pub fn new(options: BuilderOptions) -> Self {
        ReportBuilder {
            // A detail arena always holds at least one event's capped details.
            details: BlockArena::new(options.detail_bytes.max(4096)),
            raw: BlockArena::new(options.raw_bytes),
            options,
            strings: Interner::new(),
            rows: Rows::default(),
            raw_index: VecDeque::new(),
            raw_first_row: 0,
            standing: Vec::new(),
            bad: 0,
            untimed: 0,
            oldest: None,
            newest: None,
            facet_namespaces: BTreeSet::new(),
            facet_accounts: BTreeSet::new(),
            facet_codes: BTreeSet::new(),
            facet_resources: BTreeSet::new(),
            query_cache: Default::default(),
            scratch: String::new(),
        }
    }

    /// The options it was built with.
    pub fn options(&self) -> &BuilderOptions {
        &self.options
    }

    /// Registers a query to evaluate on every event pushed from now on (a live dashboard's
    /// fixed query). Returns an error when the builder already holds events (they could not
    /// be evaluated) or the limit of 32 is reached.
    pub fn add_standing_query(&mut self, query: Query) -> Result<(), ReportError> {
        let error = |message: String| Err(ReportError { field: "query", message });
        if !self.rows.is_empty() {
            return error("standing queries must be added before the first event".into());
        }
        if self.standing.len() >= MAX_STANDING_QUERIES {
            return error(format!("at most {MAX_STANDING_QUERIES} standing queries"));
        }
        if !self.standing.iter().any(|q| q.source().trim() == query.source().trim()) {
            self.standing.push(query);
        }
        Ok(())
    }

    /// Events pushed so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no event has been pushed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The oldest and newest event times pushed so far (RFC 3339), `None` before the first timed event.
    pub fn time_span(&self) -> (Option<String>, Option<String>) {
        (self.oldest.map(format_micros), self.newest.map(format_micros))
    }

    /// Records counted as not audit events.
    pub fn bad(&self) -> u64 {
        self.bad
    }

    /// Counts one record that is not an audit event.
    pub fn push_bad(&mut self) {
        self.bad += 1;
    }

    /// Frames `input` (JSON lines, EventLists, arrays, pretty-printed events), enriches every
    /// event with `enricher` and pushes it; counts the rest as bad. Returns (events, bad).
    pub fn push_input(&mut self, input: &[u8], enricher: &Enricher) -> (u64, u64) {
        let (mut events, mut bad) = (0, 0);
        for_each_event(input, &mut |_, parsed| match parsed {
            Ok(event) => {
                let enrichment = enricher.enrich(&event);
                self.push(&event, &enrichment);
                events += 1;
            }
            Err(_) => {
                self.push_bad();
                bad += 1;
            }
        });
        (events, bad)
    }

    /// Adds one event and its enrichment.
    pub fn push(&mut self, ev: &Event, enr: &Enrichment) {
        let time = ev.stage_time_micros().unwrap_or(UNTIMED);
        if time == UNTIMED {
            self.untimed += 1;
        } else {
            self.oldest = Some(self.oldest.map_or(time, |t| t.min(time)));
            self.newest = Some(self.newest.map_or(time, |t| t.max(time)));
        }
        let oref = ev.object_ref.as_ref();
        let s = &mut self.strings;
        let namespace = s.intern(oref.map_or("", |o| o.namespace()));
        let account = s.intern(enr.account.unwrap_or(""));
        let resource = s.intern(enr.resource_type.unwrap_or(""));
        let code = ev.code().filter(|c| (1..=65535).contains(c)).map_or(0, |c| c as u16);
        let mut flags = 0;
        if let Some(ok) = enr.success {
            flags |= F_SUCCESS_KNOWN | if ok { F_SUCCESS } else { 0 };
        }
        for tag in &enr.tags {
            flags |= match *tag {
                TAG_INTERNET => F_INTERNET,
                TAG_EXEC => F_EXEC,
                TAG_DELETE => F_DELETE,
                TAG_SECRET => F_SECRET,
                _ => 0,
            };
        }
        let row = Row {
            time,
            detail: NONE,
            namespace,
            account,
            user: s.intern(ev.user.name()),
            verb: s.intern(&ev.verb),
            resource,
            subresource: s.intern(oref.map_or("", |o| o.subresource())),
            source_ip: s.intern(enr.source_ip.unwrap_or("")),
            region: s.intern(&region(enr)),
            user_agent: s.intern(ev.user_agent.as_deref().unwrap_or("")),
            queries: self.standing_bits(ev, enr),
            code,
            op: enr.operation.and_then(|o| OPS.iter().position(|x| *x == o)).unwrap_or(0) as u8,
            flags,
            scope: match enr.ip_scope {
                None => 0,
                Some(IpScope::Intranet) => 1,
                Some(IpScope::Internet) => 2,
                Some(IpScope::Invalid) => 3,
            },
            stage: STAGES.iter().position(|x| *x == ev.stage).map_or(0, |i| i as u8 + 1),
        };
        self.facet_namespaces.insert(namespace);
        self.facet_accounts.insert(account);
        self.facet_codes.insert(code);
        if resource != 0 {
            self.facet_resources.insert(resource);
        }
        self.rows.push(row);
        self.store_details(ev, enr);
        if self.options.raw_bytes > 0 {
            self.store_raw(ev, enr);
        }
    }

    fn standing_bits(&mut self, ev: &Event, enr: &Enrichment) -> u32 {
        if self.standing.is_empty() {
            return 0;
        }
        self.scratch.clear();
        enr.write_json(&mut self.scratch);
        let extra: Option<serde_json::Value> = serde_json::from_str(&self.scratch).ok();
        let doc = EventDoc::new(ev, &self.options.enrichment_key, extra.as_ref());
        let mut bits = 0;
        for (i, q) in self.standing.iter().enumerate() {
            if q.matches(&doc) {
                bits |= 1 << i;
            }
        }
        bits
    }

    /// Stores the capped detail strings of the newest row (NUL-terminated each).
    fn store_details(&mut self, ev: &Event, enr: &Enrichment) {
        let oref = ev.object_ref.as_ref();
        let exec = enr.exec.as_ref();
        let fields = [
            ev.audit_id.as_ref(),
            oref.map_or("", |o| o.name()),
            ev.request_uri.as_ref(),
            exec.and_then(|x| x.command.as_deref()).unwrap_or(""),
            exec.and_then(|x| x.container.as_deref()).unwrap_or(""),
        ];
        let clean: Vec<Cow<str>> = fields
            .iter()
            .zip(DETAIL_CAPS)
            .map(|(f, cap)| {
                let f = truncate(f, cap);
                if f.contains('\0') {
                    Cow::Owned(f.replace('\0', ""))
                } else {
                    Cow::Borrowed(f)
                }
            })
            .collect();
        let mut parts: Vec<&str> = Vec::with_capacity(10);
        for f in &clean {
            parts.push(f);
            parts.push("\0");
        }
        if let (Some(offset), Some(row)) = (self.details.push(&parts), self.rows.last_mut()) {
            row.detail = offset;
        }
    }

    /// Keeps the newest row's raw event and enrichment text, within the raw budget.
    fn store_raw(&mut self, ev: &Event, enr: &Enrichment) {
        self.scratch.clear();
        enr.write_json(&mut self.scratch);
        let text = ev.obj.text.trim();
        let entry = match (u32::try_from(text.len()), u32::try_from(self.scratch.len())) {
            (Ok(a), Ok(b)) => self.raw.push(&[text, &self.scratch]).map_or((NONE, 0, 0), |o| (o, a, b)),
            _ => (NONE, 0, 0),
        };
        self.raw_index.push_back(entry);
        // Forget index entries of evicted rows.
        while self.raw_index.front().is_some_and(|e| !self.raw.holds(e.0)) {
            self.raw_index.pop_front();
            self.raw_first_row += 1;
        }
    }

    /// The raw event and enrichment JSON of row `i`, if kept.
    pub(crate) fn raw_of(&self, i: usize) -> Option<(&str, &str)> {
        let &(offset, ev_len, enr_len) = self.raw_index.get(i.checked_sub(self.raw_first_row)?)?;
        if !self.raw.holds(offset) {
            return None;
        }
        let both = self.raw.get(offset, ev_len as usize + enr_len as usize)?;
        Some(both.split_at(ev_len as usize))
    }

    /// The detail strings of row `i` (auditID, name, requestURI, command, container).
    pub(crate) fn details_of(&self, i: usize) -> Option<[&str; 5]> {
        let row = self.rows.get(i)?;
        if !self.details.holds(row.detail) {
            return None;
        }
        let mut parts = self.details.tail(row.detail)?.splitn(6, '\0');
        let mut out = [""; 5];
        for slot in &mut out {
            *slot = parts.next()?;
        }
        Some(out)
    }

    /// Rows whose details were evicted.
    pub(crate) fn details_dropped(&self) -> u64 {
        self.rows.iter().filter(|r| !self.details.holds(r.detail)).count() as u64
    }

    /// Rows whose raw text is kept.
    pub(crate) fn raw_kept(&self) -> u64 {
        self.raw_index.iter().filter(|e| self.raw.holds(e.0)).count() as u64
    }

    /// Bytes held: rows, arenas, raw index, interned strings (an estimate of the heap in use).
    pub fn memory_bytes(&self) -> usize {
        // Per string: the text, the Arc header, the Vec slot and the hash map entry.
        let strings: usize = self.strings.strings.iter().map(|s| s.len() + 56).sum();
        self.rows.bytes() + self.details.held + self.raw.held + self.raw_index.capacity() * 16 + strings
    }
}

/// The region label of an event's source IP: `intranet`, `invalid`, the GeoIP country (and
/// province) for internet addresses, `internet` when no GeoIP database is configured, or ``.
fn region(e: &Enrichment) -> String {
    match e.ip_scope {
        None => String::new(),
        Some(IpScope::Intranet) => "intranet".into(),
        Some(IpScope::Invalid) => "invalid".into(),
        Some(IpScope::Internet) => {
            let Some(g) = &e.geo else { return "internet".into() };
            let country = g.country.as_deref().or(g.country_code.as_deref());
            match (country, g.province.as_deref()) {
                (Some(c), Some(p)) => format!("{c} / {p}"),
                (Some(c), None) => c.to_string(),
                (None, _) => "internet".into(),
            }
        }
    }
}
