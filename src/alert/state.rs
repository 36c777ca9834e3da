//! Bounded per-group alert state: an LRU store of groups (at most `maxGroups` per rule, the
//! least recently updated evicted first) and each group's event-time window.
//!
//! A window of length W is kept as [`BUCKETS`] buckets of W/BUCKETS each (a ring indexed by
//! bucket number), so a group's state is a fixed, small array of counters however many events
//! it sees. The window that a condition sees ends at the latest bucket the group has seen and
//! spans the BUCKETS buckets up to it: between W - W/BUCKETS and W of event time.

use std::collections::{HashMap, VecDeque};

/// Buckets per window.
pub const BUCKETS: usize = 10;

const NIL: u32 = u32::MAX;

/// The state of one group.
#[derive(Debug)]
pub struct GroupState {
    /// Latest event time seen (microseconds).
    pub last_seen: i64,
    /// Event time of the last alert raised for the group.
    pub last_alert: Option<i64>,
    /// The condition held on the group's last evaluation (edge detection).
    pub firing: bool,
    pub agg: Option<Box<AggState>>,
}

impl GroupState {
    pub fn new(t: i64, agg: Option<Box<AggState>>) -> Self {
        GroupState { last_seen: t, last_alert: None, firing: false, agg }
    }
}

/// Counters per bucket: `count`, `failures`, then one per `countIf`.
#[derive(Debug)]
pub struct AggState {
    /// Latest bucket number seen.
    pub latest: i64,
    /// Bucket number held by each ring slot (`i64::MIN`: empty).
    tags: [i64; BUCKETS],
    /// `BUCKETS * width` counters, slot-major.
    counters: Box<[u32]>,
    width: usize,
    pub distinct: Vec<DistinctSet>,
    /// Recent auditIDs of the group's events with their bucket, newest last.
    pub audit_ids: VecDeque<(i64, String)>,
}

/// Distinct values of one `distinct(...)` aggregate, each with the last bucket it was seen in.
#[derive(Debug, Default)]
pub struct DistinctSet {
    values: HashMap<Box<str>, i64>,
}

/// What happened to a value offered to a [`DistinctSet`].
#[derive(Debug, PartialEq, Eq)]
pub enum DistinctAdd {
    Tracked,
    /// The set is full of values still in the window: the value is not tracked.
    Overflow,
}

impl DistinctSet {
    /// Records `value` as seen in `bucket`; `max` bounds the set, `oldest_live` is the first
    /// bucket still in the window (older values are dropped to make room).
    pub fn add(&mut self, value: &str, bucket: i64, max: usize, oldest_live: i64) -> DistinctAdd {
        if let Some(b) = self.values.get_mut(value) {
            *b = (*b).max(bucket);
            return DistinctAdd::Tracked;
        }
        if self.values.len() >= max {
            self.values.retain(|_, b| *b >= oldest_live);
            if self.values.len() >= max {
                return DistinctAdd::Overflow;
            }
        }
        self.values.insert(value.into(), bucket);
        DistinctAdd::Tracked
    }

    /// Values seen in buckets `oldest_live..`.
    pub fn count(&self, oldest_live: i64) -> usize {
        self.values.values().filter(|b| **b >= oldest_live).count()
    }
}

impl AggState {
    pub fn new(count_ifs: usize, distincts: usize) -> Self {
        let width = 2 + count_ifs;
        AggState {
            latest: i64::MIN,
            tags: [i64::MIN; BUCKETS],
            counters: vec![0; BUCKETS * width].into_boxed_slice(),
            width,
            distinct: (0..distincts).map(|_| DistinctSet::default()).collect(),
            audit_ids: VecDeque::new(),
        }
    }

    /// The first bucket inside the window that ends at the latest bucket.
    pub fn oldest_live(&self) -> i64 {
        self.latest.saturating_sub(BUCKETS as i64 - 1)
    }

    /// Whether `bucket` falls before the window (a late event).
    pub fn is_late(&self, bucket: i64) -> bool {
        self.latest != i64::MIN && bucket < self.oldest_live()
    }

    /// Adds one event in `bucket`: `failed` and the `countIf` results in `hits`.
    /// The caller checked [`AggState::is_late`].
    pub fn add(&mut self, bucket: i64, failed: bool, hits: impl Iterator<Item = bool>) {
        if bucket > self.latest {
            self.latest = bucket;
        }
        let slot = bucket.rem_euclid(BUCKETS as i64) as usize;
        let base = slot * self.width;
        if self.tags[slot] != bucket {
            self.tags[slot] = bucket;
            self.counters[base..base + self.width].fill(0);
        }
        let c = &mut self.counters[base..base + self.width];
        c[0] = c[0].saturating_add(1);
        if failed {
            c[1] = c[1].saturating_add(1);
        }
        for (i, hit) in hits.enumerate() {
            if hit {
                if let Some(x) = c.get_mut(2 + i) {
                    *x = x.saturating_add(1);
                }
            }
        }
    }

    /// Sum of counter `index` over the window.
    pub fn sum(&self, index: usize) -> u64 {
        let oldest = self.oldest_live();
        (0..BUCKETS)
            .filter(|&s| self.tags[s] >= oldest && self.tags[s] <= self.latest)
            .map(|s| u64::from(self.counters[s * self.width + index]))
            .sum()
    }

    /// Remembers an auditID (keeps the newest `max`, dropping those out of the window);
    /// reuses the evicted string's buffer so a warm group does not allocate.
    pub fn remember(&mut self, bucket: i64, audit_id: &str, max: usize) {
        if max == 0 {
            return;
        }
        let oldest = self.oldest_live();
        while self.audit_ids.front().is_some_and(|(b, _)| *b < oldest) {
            self.audit_ids.pop_front();
        }
        let mut buf = if self.audit_ids.len() >= max {
            self.audit_ids.pop_front().map(|(_, s)| s).unwrap_or_default()
        } else {
            String::new()
        };
        buf.clear();
        buf.push_str(audit_id);
        // Keep them ordered by bucket even when events arrive out of order.
        let at = self.audit_ids.iter().rposition(|(b, _)| *b <= bucket).map_or(0, |i| i + 1);
        self.audit_ids.insert(at, (bucket, buf));
    }

    /// The remembered auditIDs still in the window, oldest first.
    pub fn live_audit_ids(&self) -> impl Iterator<Item = &str> {
        let oldest = self.oldest_live();
        self.audit_ids.iter().filter(move |(b, _)| *b >= oldest).map(|(_, s)| s.as_str())
    }
}

/// Counts kept by a group store.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Groups dropped because the store was full while they still held live state.
    pub evicted: u64,
    /// Groups dropped because their state had expired (nothing lost).
    pub expired: u64,
}

struct Slot {
    key: Box<str>,
    prev: u32,
    next: u32,
    state: GroupState,
}

/// Groups by key, at most `max` of them, in least-recently-updated order.
pub struct GroupStore {
    map: HashMap<Box<str>, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Most recently updated.
    head: u32,
    /// Least recently updated: the next to evict.
    tail: u32,
    max: usize,
    /// Whether the map was given its room for a full store (see [`GroupStore::entry`]).
    sized_for_full: bool,
    pub stats: StoreStats,
}

impl std::fmt::Debug for GroupStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupStore")
            .field("len", &self.map.len())
            .field("max", &self.max)
            .field("stats", &self.stats)
            .finish()
    }
}

impl GroupStore {
    pub fn new(max: usize) -> Self {
        GroupStore {
            map: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            max: max.max(1),
            sized_for_full: false,
            stats: StoreStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The group `key`, created with `make` if absent, marked most recently updated. Before
    /// creating one, groups whose state ended before `now - retention` are dropped from the
    /// old end, then, if the store is still full, the least recently updated group is evicted.
    pub fn entry(&mut self, key: &str, now: i64, retention: i64, make: impl FnOnce() -> GroupState) -> &mut GroupState {
        if let Some(&i) = self.map.get(key) {
            self.touch(i);
            return &mut self.slots[i as usize].state;
        }
        self.expire(now, retention);
        if self.map.len() >= self.max {
            self.remove_tail();
            self.stats.evicted += 1;
        }
        if !self.sized_for_full && self.map.len() + 1 >= self.max {
            // The store is full from now on: each new group evicts one, and the removals leave
            // tombstones that the table clears when it runs out of room, by a rehash in place
            // when at most half its capacity is in use, else by growing (hashbrown's
            // `reserve_rehash`). Room for twice `max` now, while it fills, makes every later
            // clean-up in place: the store's memory stops growing once it is full.
            self.sized_for_full = true;
            self.map.reserve((2 * self.max).saturating_sub(self.map.len()));
        }
        let slot = Slot { key: key.into(), prev: NIL, next: NIL, state: make() };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key.into(), i);
        self.push_front(i);
        &mut self.slots[i as usize].state
    }

    /// Drops expired groups from the least recently updated end.
    fn expire(&mut self, now: i64, retention: i64) {
        while self.tail != NIL {
            let last = self.slots[self.tail as usize].state.last_seen;
            if last.saturating_add(retention) >= now {
                break;
            }
            self.remove_tail();
            self.stats.expired += 1;
        }
    }

    fn remove_tail(&mut self) {
        let i = self.tail;
        if i == NIL {
            return;
        }
        self.unlink(i);
        let key = std::mem::take(&mut self.slots[i as usize].key);
        self.map.remove(&key);
        // Release the group's memory now; the slot is reused by the next insert.
        self.slots[i as usize].state = GroupState::new(0, None);
        self.free.push(i);
    }

    fn touch(&mut self, i: u32) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
        let s = &mut self.slots[i as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let s = &mut self.slots[i as usize];
            s.prev = NIL;
            s.next = old;
        }
        if old != NIL {
            self.slots[old as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_least_recently_updated() {
        let mut s = GroupStore::new(2);
        s.entry("a", 0, 1000, || GroupState::new(0, None));
        s.entry("b", 1, 1000, || GroupState::new(1, None));
        s.entry("a", 2, 1000, || unreachable!());
        s.entry("c", 3, 1000, || GroupState::new(3, None));
        assert_eq!(s.len(), 2);
        assert_eq!(s.stats.evicted, 1);
        assert!(s.map.contains_key("a") && s.map.contains_key("c"));
    }

    #[test]
    fn a_full_store_keeps_its_table_size_under_churn() {
        // Each new group evicts one: without room for twice `max`, the tombstones the
        // removals leave make the table grow at some later insert (linear memory grows long
        // after the store is full). Its capacity must stay what it was when the store filled.
        for max in [1, 2, 7, 100, 1000, 10_000] {
            let mut s = GroupStore::new(max);
            let mut full_capacity = None;
            for i in 0..(max * 30).max(2000) {
                s.entry(&format!("group-{i}"), i as i64, i64::MAX / 4, || GroupState::new(i as i64, None));
                if s.len() == max {
                    let cap = *full_capacity.get_or_insert(s.map.capacity());
                    assert!(s.map.capacity() <= cap, "max {max}: grew to {} after {i}", s.map.capacity());
                }
            }
            assert_eq!(s.stats.evicted as usize, (max * 30).max(2000) - max);
        }
    }

    #[test]
    fn expired_groups_go_first_and_are_not_evictions() {
        let mut s = GroupStore::new(2);
        s.entry("a", 0, 10, || GroupState::new(0, None));
        s.entry("b", 5, 10, || GroupState::new(5, None));
        // At 100 both are long expired: they are dropped, nothing is evicted.
        s.entry("c", 100, 10, || GroupState::new(100, None));
        assert_eq!((s.len(), s.stats.evicted, s.stats.expired), (1, 0, 2));
    }

    #[test]
    fn window_sums_forget_old_buckets() {
        let mut a = AggState::new(1, 0);
        for b in 0..10 {
            a.add(b, b % 2 == 0, [true].into_iter());
        }
        assert_eq!((a.sum(0), a.sum(1), a.sum(2)), (10, 5, 10));
        a.add(12, false, [false].into_iter());
        // Buckets 0..=2 left the window [3, 12].
        assert_eq!(a.sum(0), 8);
        assert!(a.is_late(2));
        assert!(!a.is_late(3));
    }

    #[test]
    fn audit_ids_bounded_and_ordered() {
        let mut a = AggState::new(0, 0);
        for (b, id) in [(1, "a"), (3, "c"), (2, "b"), (4, "d")] {
            a.add(b, false, std::iter::empty());
            a.remember(b, id, 3);
        }
        assert_eq!(a.live_audit_ids().collect::<Vec<_>>(), ["b", "c", "d"]);
    }

    #[test]
    fn distinct_sets_are_bounded() {
        let mut d = DistinctSet::default();
        assert_eq!(d.add("x", 0, 2, 0), DistinctAdd::Tracked);
        assert_eq!(d.add("y", 0, 2, 0), DistinctAdd::Tracked);
        assert_eq!(d.add("z", 0, 2, 0), DistinctAdd::Overflow);
        // Once x and y leave the window there is room again.
        assert_eq!(d.add("z", 20, 2, 11), DistinctAdd::Tracked);
        assert_eq!(d.count(11), 1);
    }
}
