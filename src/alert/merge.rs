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
//!
//! Order per agent: an agent numbers its records (`seq`) within each run (`inc`). A watermark
//! moves its agent only once every earlier-numbered record of that run has come, so a
//! watermark that overtook partials (a transport's retry, several HTTP callouts in flight)
//! waits for them. The wait is bounded: when the run's own watermarks have moved on by more
//! than `gapTimeout` of event time, or more than [`MAX_OUT_OF_ORDER`] of its records wait
//! behind a gap, the gap is given up and counted (`missing`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::config::AggregationConfig;
use super::partial::{Partial, Record, Seq};

/// Records of one agent run held behind a gap (numbers seen above it plus watermarks held)
/// before the gap is given up.
pub const MAX_OUT_OF_ORDER: usize = 4096;
/// Runs (incarnations) remembered per agent; the one heard from longest ago is forgotten
/// (its gaps counted `missing`).
pub const MAX_RUNS_PER_AGENT: usize = 4;

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
    /// Records that came before an earlier-numbered record of the same agent run.
    pub reordered: u64,
    /// Numbered records never received: gaps given up on (after `gapTimeout` or
    /// [`MAX_OUT_OF_ORDER`]), or left when a run was forgotten or the input ended. One that
    /// comes after all is still merged (as late, if its period closed).
    pub missing: u64,
    /// Watermarks held now, waiting for earlier-numbered records.
    pub held_watermarks: u64,
    /// Agent runs seen (an agent's restart is a new run).
    pub runs: u64,
    /// Step fingerprints held (the steps of the idempotency horizon).
    pub fingerprints: u64,
}

/// One run (incarnation) of an agent: which of its numbered records came.
#[derive(Debug)]
struct Run {
    inc: String,
    /// Every record numbered below this came (or was given up on).
    next: u64,
    /// Numbers above a gap that came.
    above: BTreeSet<u64>,
    /// Watermarks that came before an earlier-numbered record: number → time.
    held: BTreeMap<u64, i64>,
    /// The latest watermark time of this run (held or not).
    latest: i64,
    /// Arrival counter of its last record (the run heard from longest ago is forgotten first).
    heard: u64,
}

impl Run {
    /// Gives up the records numbered below `n` that have not come; returns how many.
    fn give_up(&mut self, n: u64) -> u64 {
        if n <= self.next {
            return 0;
        }
        let came = self.above.range(..n).count() as u64;
        let missing = n - self.next - came;
        self.above = self.above.split_off(&n);
        self.next = n;
        while self.above.remove(&self.next) {
            self.next += 1;
        }
        missing
    }

    /// Records numbered below the highest one seen that have not come.
    fn gaps(&self) -> u64 {
        let highest = self.above.last().copied().unwrap_or(0);
        if highest <= self.next {
            return 0;
        }
        highest - self.next - (self.above.len() as u64 - 1)
    }
}

/// What the aggregator knows of one agent.
#[derive(Debug)]
struct AgentState {
    /// The end of the last period it flushed (its latest watermark with nothing missing before).
    watermark: i64,
    /// Its latest watermark, also one still waiting for earlier-numbered records.
    latest: i64,
    runs: Vec<Run>,
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
    /// Per agent: its watermark and its runs' sequence numbers.
    agents: BTreeMap<String, AgentState>,
    /// Records numbered so far (the arrival counter of [`Run::heard`]).
    arrivals: u64,
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
            arrivals: 0,
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
    pub fn add(&mut self, mut record: Record, accept: impl Fn(&Partial) -> bool) -> Vec<Partial> {
        if self.cfg.partitioned {
            // Only some of each agent's partials come here: their numbers have gaps by design.
            match &mut record {
                Record::Watermark { seq, .. } => *seq = None,
                Record::Partial(p) => p.seq = None,
            }
        }
        match record {
            Record::Watermark { agent, seq, time } => {
                self.stats.watermarks += 1;
                self.earliest = self.earliest.min(time);
                self.advance(agent.clone(), i64::MIN);
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.latest = a.latest.max(time);
                }
                let time = match seq {
                    Some(seq) => self.sequence(&agent, seq, Some(time)),
                    None => time,
                };
                self.advance(agent, time);
            }
            Record::Partial(mut p) => {
                // Only a watermark moves an agent's time: more partials of the same flush may follow.
                self.advance(p.agent.clone(), i64::MIN);
                if let Some(seq) = p.seq.take() {
                    let time = self.sequence(&p.agent, seq, None);
                    self.advance(p.agent.clone(), time);
                }
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

    /// The stream ended: every pending partial. Records still missing are counted.
    pub fn finish(&mut self) -> Vec<Partial> {
        for state in self.agents.values_mut() {
            for run in &mut state.runs {
                self.stats.missing += run.gaps();
                run.held.clear();
                run.next = run.above.last().map_or(run.next, |n| n + 1);
                run.above.clear();
            }
        }
        self.stats.held_watermarks = 0;
        self.release(true)
    }

    fn advance(&mut self, agent: String, time: i64) {
        let state =
            self.agents.entry(agent).or_insert(AgentState { watermark: i64::MIN, latest: i64::MIN, runs: Vec::new() });
        state.watermark = state.watermark.max(time);
        state.latest = state.latest.max(time);
        self.stats.agents = self.agents.len() as u64;
    }

    /// Notes a numbered record of `agent` (a watermark with its `time`); returns the latest
    /// time of the run's watermarks that may now move the agent (`i64::MIN`: none).
    fn sequence(&mut self, agent: &str, seq: Seq, watermark: Option<i64>) -> i64 {
        self.arrivals += 1;
        let state = self.agents.entry(agent.to_string()).or_insert(AgentState {
            watermark: i64::MIN,
            latest: i64::MIN,
            runs: Vec::new(),
        });
        let runs = &mut state.runs;
        let i = match runs.iter().position(|r| r.inc == seq.inc) {
            Some(i) => i,
            None => {
                if runs.len() >= MAX_RUNS_PER_AGENT {
                    let oldest = runs.iter().enumerate().min_by_key(|(_, r)| r.heard).map_or(0, |(i, _)| i);
                    let gone = runs.swap_remove(oldest);
                    self.stats.missing += gone.gaps();
                }
                self.stats.runs += 1;
                runs.push(Run {
                    inc: seq.inc,
                    next: 0,
                    above: BTreeSet::new(),
                    held: BTreeMap::new(),
                    latest: i64::MIN,
                    heard: 0,
                });
                runs.len() - 1
            }
        };
        let run = &mut runs[i];
        run.heard = self.arrivals;
        // A number already seen is a re-sent record: its steps are deduplicated one by one.
        if seq.n >= run.next && !run.above.contains(&seq.n) {
            if seq.n > run.next {
                self.stats.reordered += 1;
            }
            run.above.insert(seq.n);
            while run.above.remove(&run.next) {
                run.next += 1;
            }
            if let Some(t) = watermark {
                run.latest = run.latest.max(t);
                run.held.insert(seq.n, t);
            }
        }
        let mut moved = i64::MIN;
        while let Some((&n, &t)) = run.held.first_key_value() {
            if n >= run.next {
                let waited_enough = run.latest > t.saturating_add(self.cfg.gap_timeout);
                if !waited_enough && run.above.len() + run.held.len() <= MAX_OUT_OF_ORDER {
                    break;
                }
                self.stats.missing += run.give_up(n);
            }
            run.held.pop_first();
            moved = moved.max(t);
        }
        self.stats.held_watermarks =
            self.agents.values().flat_map(|a| a.runs.iter()).map(|r| r.held.len() as u64).sum();
        moved
    }

    /// Releases the partials whose period ended before every live agent's watermark.
    fn release(&mut self, all: bool) -> Vec<Partial> {
        let newest = self.agents.values().map(|a| a.latest).max().unwrap_or(i64::MIN);
        // Expected agents not heard from yet stand at the earliest watermark received.
        let unheard = self.cfg.agents.saturating_sub(self.agents.len()).min(1);
        let waiting = std::iter::repeat_n((self.earliest, self.earliest), unheard);
        // Live by the latest watermark an agent sent (one waiting for earlier records is not
        // idle), waited for at the watermark it has reached with nothing missing.
        let live = self
            .agents
            .values()
            .map(|a| (a.latest, a.watermark))
            .chain(waiting)
            .filter(|(latest, _)| *latest >= newest.saturating_sub(self.cfg.idle_after))
            .map(|(_, w)| w);
        self.stats.live_agents = live.clone().count() as u64;
        let until =
            if all { i64::MAX } else { live.min().unwrap_or(i64::MIN).saturating_sub(self.cfg.allowed_lateness) };
        if until <= self.closed && !all {
            self.stats.pending = self.pending.len() as u64;
            self.stats.fingerprints = self.seen.len() as u64;
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
        self.stats.fingerprints = self.seen.len() as u64;
        out
    }
}
