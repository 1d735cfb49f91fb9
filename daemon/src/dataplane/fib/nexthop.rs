//! Next-hop interning for the FIB: every distinct [`NextHop`] gets a small index that the
//! lookup tables store instead of the next hop itself, and a table entry (a `u32`) packs
//! that index with the length of the prefix it came from.
//!
//! Owns the entry encoding shared by the v4 and v6 tables and the writer-side reference
//! counts; knows nothing about prefixes.

use std::collections::HashMap;

use crate::dataplane::{Egress, NextHop, TunnelId};

/// A table entry: `len << 24 | (nh + 1)`, or 0 for "no route". Keeping the prefix length
/// in the entry lets the writer decide what an insert may overwrite and what a removal
/// must restore without a shadow table, and lets `longest_match` rebuild the prefix from
/// the destination alone.
pub(super) type Entry = u32;

/// Next-hop indices live in the low 24 bits (16M distinct next hops; far beyond need).
pub(super) const MAX_NEXT_HOPS: u32 = (1 << 24) - 2;

#[inline(always)]
pub(super) const fn entry(len: u8, nh: u32) -> Entry {
    ((len as u32) << 24) | (nh + 1)
}

/// Prefix length of a non-empty entry (0..=128).
#[inline(always)]
pub(super) const fn entry_len(e: Entry) -> u8 {
    (e >> 24) as u8
}

/// Next-hop index of a non-empty entry.
#[inline(always)]
pub(super) const fn entry_nh(e: Entry) -> usize {
    ((e & 0x00ff_ffff) - 1) as usize
}

/// True if a new route of length `len` replaces `old` at a slot: the slot is empty or
/// holds a route that is not more specific (equal length means the same prefix).
#[inline(always)]
pub(super) const fn overrides(old: Entry, len: u8) -> bool {
    old == 0 || entry_len(old) <= len
}

/// What the packet path needs from a next hop, resolved once at intern time.
#[derive(Clone, Debug)]
pub(super) enum Resolved {
    One(Egress),
    /// Sorted, distinct, non-empty.
    Ecmp(Box<[TunnelId]>),
}

impl Resolved {
    #[inline(always)]
    pub(super) fn pick(&self, flow_hash: u32) -> Egress {
        match self {
            Resolved::One(e) => *e,
            Resolved::Ecmp(members) => {
                // Multiply-shift maps the hash onto 0..len without a division; the same
                // hash and member set always give the same member.
                let i = ((flow_hash as u64 * members.len() as u64) >> 32) as usize;
                match members.get(i) {
                    Some(t) => Egress::Tunnel(*t),
                    None => Egress::Blackhole,
                }
            }
        }
    }
}

/// One published next hop: the form the packet path uses and the form `longest_match`
/// returns.
#[derive(Clone, Debug)]
pub(super) struct Slot {
    pub(super) resolved: Resolved,
    pub(super) next_hop: NextHop,
}

/// Canonical form: ECMP members sorted and distinct, and an ECMP set of one is just that
/// tunnel, so equal routes intern to one index whatever order a protocol listed them in.
/// An empty ECMP set has no usable path and is a blackhole.
pub(super) fn normalize(nh: NextHop) -> NextHop {
    match nh {
        NextHop::Ecmp(mut members) => {
            members.sort_unstable();
            members.dedup();
            match members.len() {
                0 => NextHop::Blackhole,
                1 => NextHop::Tunnel(members[0]),
                _ => NextHop::Ecmp(members),
            }
        }
        other => other,
    }
}

fn resolve(nh: &NextHop) -> Resolved {
    match nh {
        NextHop::Tunnel(t) => Resolved::One(Egress::Tunnel(*t)),
        NextHop::Host => Resolved::One(Egress::Host),
        NextHop::Local => Resolved::One(Egress::Local),
        NextHop::Blackhole => Resolved::One(Egress::Blackhole),
        NextHop::Ecmp(m) => Resolved::Ecmp(m.clone().into_boxed_slice()),
    }
}

/// Writer-side interner (also the RIB's: its candidates hold an index, not a next hop). The published slot table is rebuilt from `slots` whenever a new
/// index is handed out; a freed index is only reused after no prefix refers to it, and old
/// snapshots keep their own copy, so a reader never sees an index change meaning.
#[derive(Clone, Default)]
pub(crate) struct Interner {
    index: HashMap<NextHop, u32>,
    refs: Vec<u32>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// The index acquired last. A batch (a BGP UPDATE, a full table) mostly repeats one
    /// next hop, so it is compared first and the hash lookup is skipped; a slot holds
    /// only a live next hop, so a match is always that next hop's index.
    last: Option<u32>,
    /// True when `slots` changed since the last publish.
    pub(super) dirty: bool,
}

impl Interner {
    /// Takes a reference on a normalized next hop, returning its index, or `None` when the
    /// index space is exhausted.
    pub(crate) fn acquire(&mut self, nh: &NextHop) -> Option<u32> {
        let last = self.last.filter(|&i| self.next_hop(i) == Some(nh));
        if let Some(i) = last.or_else(|| self.index.get(nh).copied()) {
            self.refs[i as usize] += 1;
            self.last = Some(i);
            return Some(i);
        }
        let slot = Slot {
            resolved: resolve(nh),
            next_hop: nh.clone(),
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.refs[i as usize] = 1;
                self.slots[i as usize] = Some(slot);
                i
            }
            None => {
                let i = u32::try_from(self.slots.len()).ok()?;
                if i > MAX_NEXT_HOPS {
                    return None;
                }
                self.refs.push(1);
                self.slots.push(Some(slot));
                i
            }
        };
        self.index.insert(nh.clone(), i);
        self.last = Some(i);
        self.dirty = true;
        Some(i)
    }

    pub(crate) fn release(&mut self, i: u32) {
        let Some(r) = self.refs.get_mut(i as usize) else {
            return;
        };
        *r = r.saturating_sub(1);
        if *r == 0 {
            if let Some(slot) = self.slots[i as usize].take() {
                self.index.remove(&slot.next_hop);
            }
            self.free.push(i);
            // The published table may keep the stale slot: nothing refers to it.
        }
    }

    pub(crate) fn next_hop(&self, i: u32) -> Option<&NextHop> {
        self.slots.get(i as usize)?.as_ref().map(|s| &s.next_hop)
    }

    /// The table readers index with [`entry_nh`]. Freed indices hold a blackhole
    /// placeholder; no entry points at them.
    pub(super) fn publish(&mut self) -> Vec<Slot> {
        self.dirty = false;
        self.slots
            .iter()
            .map(|s| {
                s.clone().unwrap_or(Slot {
                    resolved: Resolved::One(Egress::Blackhole),
                    next_hop: NextHop::Blackhole,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut for the last next hop must never hand out an index that was freed
    /// and now means another next hop.
    #[test]
    fn last_acquired_shortcut_follows_freed_and_reused_indices() {
        let mut interner = Interner::default();
        let a = NextHop::Tunnel(TunnelId(1));
        let b = NextHop::Tunnel(TunnelId(2));
        let ia = interner.acquire(&a).expect("index");
        assert_eq!(interner.acquire(&a), Some(ia));
        interner.release(ia);
        interner.release(ia);
        // `a` is gone; its index is reused for `b`.
        let ib = interner.acquire(&b).expect("index");
        assert_eq!(ib, ia);
        let ia2 = interner.acquire(&a).expect("index");
        assert_ne!(ia2, ib);
        assert_eq!(interner.next_hop(ia2), Some(&a));
        assert_eq!(interner.next_hop(ib), Some(&b));
        // Alternating keeps the counts right: `b` holds two references now.
        assert_eq!(interner.acquire(&b), Some(ib));
        interner.release(ib);
        assert_eq!(interner.next_hop(ib), Some(&b));
        interner.release(ib);
        assert_eq!(interner.next_hop(ib), None);
    }
}
