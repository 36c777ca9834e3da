//! Electing the single alert consumer among Envoy's VMs (one per worker thread plus the main
//! thread) with a lease in proxy-wasm shared data, written with compare-and-swap.
//!
//! Every root context ticks once a second and looks at the lease:
//! - it names this root and CAS-renewing it succeeds: this root is the consumer until
//!   `now + TTL` (a renewal that loses the CAS race means someone else took over);
//! - it is missing, unreadable or expired: this root writes itself in (CAS on the version it
//!   read), and acts as consumer only after the next tick's renewal confirms it, so two roots
//!   that raced on a missing key never both consume (only the last writer sees itself);
//! - otherwise another root holds it: wait. If that root's VM goes away (config reload), the
//!   lease expires and another root takes over within `TTL_MS` plus a tick.

/// How long a lease lasts without renewal. Renewed every tick (1 s).
pub const TTL_MS: u64 = 5_000;
/// The tick period every root context sets.
pub const TICK_MS: u64 = 1_000;

/// The lease value: `kaudit-lease <owner> <expires_ms>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub owner: u64,
    pub expires_ms: u64,
}

impl Lease {
    pub fn new(owner: u64, now_ms: u64) -> Lease {
        Lease { owner, expires_ms: now_ms.saturating_add(TTL_MS) }
    }

    pub fn encode(&self) -> Vec<u8> {
        format!("kaudit-lease {} {}", self.owner, self.expires_ms).into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<Lease> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        if parts.next()? != "kaudit-lease" {
            return None;
        }
        let owner = parts.next()?.parse().ok()?;
        let expires_ms = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Lease { owner, expires_ms })
    }
}

/// What a root context does with the lease it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It is ours: CAS-write a renewed lease; success confirms us as the consumer.
    Renew,
    /// Nobody (alive) holds it: CAS-write ourselves in; confirmed at the next tick.
    Claim,
    /// Someone else holds it.
    Wait,
}

/// The step for `me` given the current lease value (`None`: the key does not exist).
pub fn step(current: Option<&[u8]>, me: u64, now_ms: u64) -> Step {
    match current.and_then(Lease::decode) {
        None => Step::Claim,
        Some(lease) if lease.owner == me => Step::Renew,
        Some(lease) if lease.expires_ms <= now_ms => Step::Claim,
        Some(_) => Step::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_round_trips_and_rejects_garbage() {
        let l = Lease::new(42, 1_000);
        assert_eq!(Lease::decode(&l.encode()), Some(Lease { owner: 42, expires_ms: 1_000 + TTL_MS }));
        for bad in [
            &b""[..],
            b"kaudit-lease",
            b"kaudit-lease 1",
            b"kaudit-lease x 2",
            b"lease 1 2",
            b"kaudit-lease 1 2 3",
            b"\xff",
        ] {
            assert_eq!(Lease::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn steps() {
        let mine = Lease::new(7, 10_000).encode();
        let theirs = Lease::new(8, 10_000).encode();
        assert_eq!(step(None, 7, 0), Step::Claim);
        assert_eq!(step(Some(b"garbage"), 7, 0), Step::Claim);
        assert_eq!(step(Some(&mine), 7, 12_000), Step::Renew);
        // Our own expired lease is still ours to renew (no one has taken it).
        assert_eq!(step(Some(&mine), 7, 99_000), Step::Renew);
        assert_eq!(step(Some(&theirs), 7, 12_000), Step::Wait);
        assert_eq!(step(Some(&theirs), 7, 10_000 + TTL_MS), Step::Claim);
    }

    /// Several roots sharing one CAS store: exactly one consumer per tick, and a new one within
    /// TTL after the consumer disappears.
    #[test]
    fn simulated_roots_elect_one_consumer_and_recover() {
        #[derive(Default)]
        struct Store {
            value: Option<Vec<u8>>,
            cas: u32,
        }
        impl Store {
            fn set(&mut self, v: Vec<u8>, cas: Option<u32>) -> bool {
                if cas.is_some_and(|c| c != self.cas) {
                    return false;
                }
                self.value = Some(v);
                self.cas += 1;
                true
            }
        }
        let mut store = Store::default();
        let mut alive = vec![1u64, 2, 3];
        let mut last_consumer = None;
        let mut switched_at = None;
        for tick in 0..30u64 {
            let now = tick * TICK_MS;
            if tick == 10 {
                // The consumer's VM is destroyed.
                alive.retain(|r| Some(*r) != last_consumer);
            }
            let mut consumers = Vec::new();
            for &me in &alive {
                let (value, cas) = (store.value.clone(), store.value.as_ref().map(|_| store.cas));
                match step(value.as_deref(), me, now) {
                    Step::Renew => {
                        if store.set(Lease::new(me, now).encode(), cas) {
                            consumers.push(me);
                        }
                    }
                    Step::Claim => {
                        store.set(Lease::new(me, now).encode(), cas);
                    }
                    Step::Wait => {}
                }
            }
            assert!(consumers.len() <= 1, "tick {tick}: {consumers:?}");
            if (1..10).contains(&tick) {
                assert_eq!(consumers.len(), 1, "tick {tick}");
            }
            if tick >= 10 && consumers.len() == 1 && switched_at.is_none() {
                switched_at = Some(tick);
            }
            if let Some(c) = consumers.first() {
                last_consumer = Some(*c);
            }
        }
        let switched = switched_at.expect("a new consumer took over");
        assert!(switched * TICK_MS <= 10 * TICK_MS + TTL_MS + TICK_MS, "took over at tick {switched}");
    }
}
