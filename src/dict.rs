//! A dictionary of strings known when a config is loaded (a policy's users, verbs, resources...;
//! the strings an alert gate answers ahead), numbering each, for lookups made per event.
//!
//! A lookup ([`Dict::find`]) first rejects a length no string has (one bit per length modulo 64,
//! so most strings absent cost a shift and an AND), then hashes the length and the first and
//! last eight bytes into an open-addressed table at most half full, compares those three words,
//! and compares the middle only past 16 bytes. Comparisons go eight bytes at a time
//! ([`same`]): an interpreter runs the C library's `memcmp` a byte at a time.

use std::collections::BTreeMap;

/// The id of a string the dictionary does not hold.
pub(crate) const UNKNOWN: u32 = u32::MAX;

/// A string's length with its first and last eight bytes (zero-padded when shorter): the whole
/// string up to 16 bytes, and a hash of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ends {
    first: u64,
    last: u64,
    len: usize,
}

impl Ends {
    fn of(s: &[u8]) -> Ends {
        let n = s.len();
        if let (Some(head), Some(tail)) = (s.first_chunk::<8>(), s.last_chunk::<8>()) {
            return Ends { first: u64::from_le_bytes(*head), last: u64::from_le_bytes(*tail), len: n };
        }
        // Overlapping reads rather than a loop over the bytes: from 4 bytes the first and last
        // four, below that the first, middle and last byte.
        let w = match (s.first_chunk::<4>(), s.last_chunk::<4>(), s.first(), s.last()) {
            (Some(head), Some(tail), ..) => {
                u64::from(u32::from_le_bytes(*head)) | u64::from(u32::from_le_bytes(*tail)) << (8 * (n - 4))
            }
            (_, _, Some(&a), Some(&z)) => {
                let m = s.get(n / 2).copied().unwrap_or(0);
                u64::from(a) | u64::from(m) << (8 * (n / 2)) | u64::from(z) << (8 * (n - 1))
            }
            _ => 0,
        };
        Ends { first: w, last: w, len: n }
    }

    /// `head/tail`, a byte at a time (rare: requests with a subresource).
    fn of_joined(head: &[u8], tail: &[u8]) -> Ends {
        let n = head.len() + 1 + tail.len();
        let at = |i: usize| match head.get(i) {
            Some(&b) => b,
            None if i == head.len() => b'/',
            None => tail.get(i - head.len() - 1).copied().unwrap_or(0),
        };
        let word = |from: usize| (from..(from + 8).min(n)).rev().fold(0u64, |w, i| w << 8 | u64::from(at(i)));
        Ends { first: word(0), last: word(n.saturating_sub(8)), len: n }
    }

    fn hash(&self) -> u32 {
        let x = (self.first ^ self.last.rotate_left(29) ^ self.len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (x >> 32) as u32
    }
}

/// `a == b`, eight bytes at a time: an interpreter runs the C library's `memcmp` a byte at a
/// time, and the strings compared here (user names, `requestObject`, times) run to dozens of
/// bytes. Past eight bytes the last word overlaps the one before it, so no byte is compared
/// alone.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        // Under a word: fuel measured the same as a byte loop of our own.
        return a == b;
    }
    let word = |s: &[u8], at: usize| -> u64 {
        let mut w = [0u8; 8];
        if let Some(bytes) = s.get(at..at + 8) {
            w.copy_from_slice(bytes);
        }
        u64::from_le_bytes(w)
    };
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// The length bit of a dictionary's length filter: the length modulo 64 (a length past 63
/// shares a bit with a shorter one: a false positive costs a probe, never an answer). WASM's
/// shift takes its count modulo 64 itself, so this is one instruction.
fn len_bit(len: usize) -> u64 {
    1u64.wrapping_shl(len as u32)
}

/// A set of strings, numbered in order of first appearance.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dict {
    /// The lengths present (`len_bit`).
    lens: u64,
    /// Open addressing on the hash's top bits; at least one slot is empty.
    slots: Box<[Slot]>,
    shift: u32,
    strs: Box<[Box<str>]>,
}

/// A string's ends with its id; an empty slot has the ends of `""` and the id `UNKNOWN`, so that
/// a probe compares the ends first and asks whether the slot is empty only when they differ.
#[derive(Debug, Clone, Copy)]
struct Slot {
    ends: Ends,
    id: u32,
}

const EMPTY: Slot = Slot { ends: Ends { first: 0, last: 0, len: 0 }, id: UNKNOWN };

/// A [`Dict`] being built: [`DictBuilder::id`] numbers each new string.
#[derive(Default)]
pub(crate) struct DictBuilder {
    strs: Vec<Box<str>>,
    /// Ordered rather than hashed: a `HashMap`'s random order would free its keys in a different
    /// order each run, and the allocator's state, hence the per-record cost, would vary.
    ids: BTreeMap<Box<str>, u32>,
}

impl DictBuilder {
    /// The id of `s`, numbering it if new.
    pub(crate) fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strs.len() as u32;
        self.strs.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    /// The dictionary of the strings numbered.
    pub(crate) fn build(self) -> Dict {
        let bits = (self.strs.len() * 2).next_power_of_two().trailing_zeros().max(1);
        let mut slots = vec![EMPTY; 1 << bits].into_boxed_slice();
        let shift = 32 - bits;
        let mask = slots.len() - 1;
        let mut lens = 0;
        for (id, s) in self.strs.iter().enumerate() {
            let ends = Ends::of(s.as_bytes());
            lens |= len_bit(ends.len);
            let mut at = (ends.hash() >> shift) as usize;
            while slots[at].id != UNKNOWN {
                at = (at + 1) & mask;
            }
            slots[at] = Slot { ends, id: id as u32 };
        }
        Dict { lens, slots, shift, strs: self.strs.into_boxed_slice() }
    }
}

impl Dict {
    /// The number of strings.
    pub(crate) fn len(&self) -> usize {
        self.strs.len()
    }

    /// The id of `s`, else `UNKNOWN`. The length filter inline: most strings looked up per event
    /// are not in the dictionary, and most of those have a length no string of it has.
    #[inline]
    pub(crate) fn find(&self, s: &str) -> u32 {
        if self.lens & len_bit(s.len()) == 0 {
            return UNKNOWN;
        }
        self.find_text(s.as_bytes())
    }

    #[inline(never)]
    fn find_text(&self, s: &[u8]) -> u32 {
        // Up to 16 bytes the ends are the whole string (and `""`'s match an empty slot, whose id
        // is `UNKNOWN`); past that they leave a middle to compare.
        self.probe(Ends::of(s), |id| {
            s.len() <= 16
                || self.strs.get(id as usize).is_some_and(|t| {
                    let t = t.as_bytes();
                    s.get(8..s.len() - 8).zip(t.get(8..t.len() - 8)).is_some_and(|(a, b)| same(a, b))
                })
        })
    }

    /// The id of `head/tail`, not built.
    pub(crate) fn find_joined(&self, head: &str, tail: &str) -> u32 {
        let (head, tail) = (head.as_bytes(), tail.as_bytes());
        let n = head.len() + 1 + tail.len();
        if self.lens & len_bit(n) == 0 {
            return UNKNOWN;
        }
        self.probe(Ends::of_joined(head, tail), |id| {
            self.strs.get(id as usize).is_some_and(|t| {
                t.as_bytes().get(..head.len()).is_some_and(|h| same(h, head))
                    && t.as_bytes().get(head.len()) == Some(&b'/')
                    && t.as_bytes().get(head.len() + 1..).is_some_and(|t| same(t, tail))
            })
        })
    }

    /// The id in the first slot whose ends are `ends` and whose id `rest` accepts, else `UNKNOWN`.
    fn probe(&self, ends: Ends, rest: impl Fn(u32) -> bool) -> u32 {
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = (ends.hash() >> self.shift) as usize;
        while let Some(slot) = self.slots.get(at) {
            if slot.ends == ends && rest(slot.id) {
                return slot.id;
            }
            if slot.id == UNKNOWN {
                break;
            }
            at = (at + 1) & mask;
        }
        UNKNOWN
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;

    #[test]
    fn ends_are_the_zero_padded_first_and_last_words() {
        let text = b"abcdefghijklmnopqrstu\xff\x00\x80";
        for from in 0..text.len() {
            for to in from..=text.len() {
                let s = &text[from..to];
                let word = |b: &[u8]| {
                    let mut w = [0u8; 8];
                    w[..b.len()].copy_from_slice(b);
                    u64::from_le_bytes(w)
                };
                let (first, last) = (word(&s[..s.len().min(8)]), word(&s[s.len().saturating_sub(8)..]));
                assert_eq!(Ends::of(s), Ends { first, last, len: s.len() }, "{s:?}");
            }
        }
    }

    #[test]
    fn same_agrees_with_slice_equality() {
        let mut rng = XorShift::new(0x2545_f491_4f6c_dd1d);
        // Every length to five words, so every split into whole words and an overlapping last.
        for _ in 0..50_000 {
            let n = rng.below(41) as usize;
            let a: Vec<u8> = (0..n).map(|_| b"ab"[rng.below(2) as usize]).collect();
            let mut b = a.clone();
            match rng.below(3) {
                0 => {}
                1 if n > 0 => b[rng.below(n as u64) as usize] ^= 1,
                _ => b.push(b'a'),
            }
            assert_eq!(same(&a, &b), a == b, "{a:?} {b:?}");
        }
    }

    #[test]
    fn lookups_find_every_string_and_combined_text() {
        let mut b = DictBuilder::default();
        let words: Vec<String> = (0..300)
            .map(|i| format!("w{i}"))
            .chain(["".into(), "a/b".into()])
            .chain((0..30).map(|i| format!("system:serviceaccount:kube-system:{i}")))
            // Same length and ends, different middles; and every length around the words.
            .chain((0..20).map(|i| format!("abcdefgh{}ijklmnop", "x".repeat(i % 4) + &i.to_string())))
            .chain((1..20).map(|i| "y".repeat(i)))
            .chain(["pods/exec/stream".into(), "deployments/scale".into()])
            .collect();
        for w in &words {
            b.id(w);
        }
        let d = b.build();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(d.find(w), i as u32, "{w}");
        }
        assert_eq!(d.find_joined("a", "b"), 301);
        assert_eq!(d.find_joined("pods", "exec/stream"), (words.len() - 2) as u32);
        assert_eq!(d.find_joined("pods/exec", "stream"), (words.len() - 2) as u32);
        assert_eq!(d.find_joined("deployments", "scale"), (words.len() - 1) as u32);
        assert_eq!(d.find_joined("deployments", "scalf"), UNKNOWN);
        assert_eq!(d.find("abcdefghXijklmnop"), UNKNOWN);
        assert_eq!(d.find("system:serviceaccount:kube-system:30"), UNKNOWN);
        assert_eq!(d.find("system:serviceaccount:kube-sys-em:3"), UNKNOWN);
        assert_eq!(d.find_joined("", "b"), UNKNOWN);
        assert_eq!(d.find("a/c"), UNKNOWN);
        assert_eq!(d.find("w300"), UNKNOWN);
        assert_eq!(d.find("a very long string past the length filter's last bit"), UNKNOWN);
        assert_eq!(Dict::default().find(""), UNKNOWN);
        assert_eq!(Dict::default().find_joined("", ""), UNKNOWN);
    }

    #[test]
    fn lengths_sharing_a_filter_bit_are_told_apart() {
        // 64 and 70 bytes share the bits of 0 and 6: `""` then meets an empty slot, whose ends
        // are its own.
        let mut b = DictBuilder::default();
        let (long, longer) = ("x".repeat(64), "y".repeat(70));
        assert_eq!((b.id(&long), b.id(&longer), b.id("abcdef")), (0, 1, 2));
        let d = b.build();
        assert_eq!((d.find(&long), d.find(&longer), d.find("abcdef")), (0, 1, 2));
        for absent in ["", "abcdeg", "yyyyyy", &"x".repeat(128), &"y".repeat(6 + 128)] {
            assert_eq!(d.find(absent), UNKNOWN, "{absent}");
        }
    }
}
