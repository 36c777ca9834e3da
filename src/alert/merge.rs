//! Two-phase aggregation, aggregator side: collects partial records from any number of agents,
//! drops steps it already has, and releases partials once every live agent's watermark has
//! passed their period. The engine replays released steps in event-time order through the
//! same code a single instance runs on events. Semantics and guarantees: docs/SCALING.md.
//!
//! Idempotency is per step: a step is identified by its rule, auditID, stage and event time
//! (one audit event matched by one rule), kept as a 64-bit fingerprint for as long as a step
//! of that age can still be merged. So a partial re-sent after an agent restart, a period
//! re-read from a different starting point, or the same event shipped twice is counted once,
//! whatever the agent's name or how its periods were cut.

use std::collections::{BTreeMap, HashMap};

use super::config::AggregationConfig;
use super::partial::{Partial, Record};

/// What the aggregator saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeStats {
    /// Partial records accepted.
    pub partials: u64,
    /// Watermark records read.
    pub watermarks: u64,
    /// Steps replayed.
    pub steps: u64,
    /// Partials all of whose steps were already merged (re-sent): ignored.
    pub duplicates: u64,
    /// Steps already merged (in re-sent or overlapping partials): ignored.
    pub duplicate_steps: u64,
    /// Partials whose period had already been closed: replayed at once, out of order.
    pub late: u64,
    /// Partials older than every rule's retention when they came: ignored.
    pub too_late: u64,
    /// Partials of a rule this aggregator does not have, or whose rule reads other paths
    /// (agents and aggregator run different rule sets): ignored.
    pub mismatched: u64,
    /// Records that are not valid partials or watermarks.
    pub invalid: u64,
    /// Agents known (by their records).
    pub agents: u64,
    /// Agents currently waited for (watermark within `idleAfter` of the newest; agents expected
    /// by `aggregation.agents` but not heard from yet count as one).
    pub live_agents: u64,
    /// Partials held, waiting for every live agent's watermark.
    pub pending: u64,
}

/// FNV-1a (64-bit): a step's fingerprint. Stable across builds and platforms.
fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The aggregator's buffer.
#[derive(Debug)]
pub struct Merger {
    cfg: AggregationConfig,
    /// Watermark per agent (the end of the last period it flushed).
    agents: BTreeMap<String, i64>,
    /// Partials waiting for their period to close, in arrival order.
    pending: Vec<Partial>,
    /// Fingerprints of the steps taken (pending or replayed), with their event time.
    seen: HashMap<u64, i64>,
    /// Steps before this event time have been released.
    closed: i64,
    /// The earliest watermark received: where an expected agent not heard from yet stands.
    earliest: i64,
    /// How long after its period closed a partial still counts (the longest rule retention
    /// plus `idleAfter` and one period).
    horizon: i64,
    pub stats: MergeStats,
}

impl Merger {
    pub fn new(cfg: AggregationConfig, retention: i64) -> Merger {
        let horizon = retention
            .saturating_add(cfg.idle_after)
            .saturating_add(cfg.allowed_lateness)
            .saturating_add(cfg.flush_every.max(1_000_000));
        Merger {
            cfg,
            agents: BTreeMap::new(),
            pending: Vec::new(),
            seen: HashMap::new(),
            closed: i64::MIN,
            earliest: i64::MAX,
            horizon,
            stats: MergeStats::default(),
        }
    }

    /// Takes one record; returns the partials released by it, to replay in the order given
    /// (the caller sorts their steps by event time).
    pub fn add(&mut self, record: Record, accept: impl Fn(&Partial) -> bool) -> Vec<Partial> {
        match record {
            Record::Watermark { agent, time } => {
                self.stats.watermarks += 1;
                self.earliest = self.earliest.min(time);
                self.advance(agent, time);
            }
            Record::Partial(mut p) => {
                // Only a watermark moves an agent's time: more partials of the same flush may follow.
                self.advance(p.agent.clone(), i64::MIN);
                if !accept(&p) {
                    self.stats.mismatched += 1;
                    return self.release(false);
                }
                if self.closed != i64::MIN && p.end < self.closed.saturating_sub(self.horizon) {
                    self.stats.too_late += 1;
                    return self.release(false);
                }
                let before = p.steps.len();
                let seen = &mut self.seen;
                let rule = p.rule.as_bytes();
                p.steps.retain(|s| {
                    let fp = fingerprint(&[rule, s.audit_id.as_bytes(), s.stage.as_bytes(), &s.t.to_le_bytes()]);
                    seen.insert(fp, s.t).is_none()
                });
                self.stats.duplicate_steps += (before - p.steps.len()) as u64;
                if p.steps.is_empty() {
                    self.stats.duplicates += 1;
                    return self.release(false);
                }
                self.stats.partials += 1;
                self.stats.steps += p.steps.len() as u64;
                if p.start < self.closed {
                    self.stats.late += 1;
                    let mut out = self.release(false);
                    out.insert(0, p);
                    return out;
                }
                self.pending.push(p);
            }
        }
        self.release(false)
    }

    /// The stream ended: every pending partial.
    pub fn finish(&mut self) -> Vec<Partial> {
        self.release(true)
    }

    fn advance(&mut self, agent: String, time: i64) {
        let w = self.agents.entry(agent).or_insert(i64::MIN);
        *w = (*w).max(time);
        self.stats.agents = self.agents.len() as u64;
    }

    /// Releases the partials whose period ended before every live agent's watermark.
    fn release(&mut self, all: bool) -> Vec<Partial> {
        let newest = self.agents.values().copied().max().unwrap_or(i64::MIN);
        // Expected agents not heard from yet stand at the earliest watermark received.
        let unheard = self.cfg.agents.saturating_sub(self.agents.len()).min(1);
        let waiting = std::iter::repeat_n(self.earliest, unheard);
        let live =
            self.agents.values().copied().chain(waiting).filter(|w| *w >= newest.saturating_sub(self.cfg.idle_after));
        self.stats.live_agents = live.clone().count() as u64;
        let until =
            if all { i64::MAX } else { live.min().unwrap_or(i64::MIN).saturating_sub(self.cfg.allowed_lateness) };
        if until <= self.closed && !all {
            return Vec::new();
        }
        let (out, keep): (Vec<Partial>, Vec<Partial>) =
            std::mem::take(&mut self.pending).into_iter().partition(|p| p.end <= until);
        self.pending = keep;
        self.stats.pending = self.pending.len() as u64;
        if !all {
            self.closed = until;
            let oldest = until.saturating_sub(self.horizon);
            self.seen.retain(|_, t| *t >= oldest);
        }
        out
    }
}
