//! The IPv6 lookup table: a 2^16-entry direct root and, under each /16 that holds longer
//! prefixes, either a poptrie-style compressed multibit trie (6-bit strides,
//! popcount-indexed children and leaves) or, for a crowded /16, a second 2^16-entry
//! direct level with one such trie per /32.
//!
//! Owns the table layout, the trie builder, lookups and the per-/16 refresh; the set of
//! prefixes belongs to the writer in `mod.rs`.
//!
//! Prefixes up to /16 live in the root entries themselves (updated in place like
//! DIR-24-8). A sparse /16 has one trie for all its longer prefixes, rebuilt as a whole
//! when any of them changes (cheap: it holds at most a few thousand). A crowded /16
//! ("wide") keeps /17-/32 in its direct level, updated in place, and rebuilds only the
//! trie of the /32 that changed. Either way the new parts are swapped in by the snapshot.

use std::collections::BTreeSet;

use crate::prefix_map::V6Key;
use std::sync::Arc;

use super::nexthop::{entry, entry_len, overrides, Entry};

/// The writer's IPv6 routes: (address, length) -> next-hop index.
/// The writer's IPv6 routes: (address, length) packed into 17 bytes -> next-hop index.
pub(super) type Routes = crate::prefix_map::ChunkMap<V6Key, u32>;

const ROOT: usize = 1 << 16;
/// A /16 with more routes longer than /16 than this becomes wide...
/// (Tiny in unit tests, so the random tests switch layouts back and forth.)
const WIDE_ABOVE: usize = if cfg!(test) { 24 } else { 4096 };
/// ...and goes back to one trie below this (the gap keeps it from flapping).
const TRIE_BELOW: usize = if cfg!(test) { 8 } else { 1024 };
/// Low half of a direct slot: the entry of its own longest route; high half: index + 1
/// of the structure below it, or 0.
const LOW: u64 = 0xffff_ffff;
/// Bits consumed by the root.
const ROOT_BITS: u32 = 16;
const STRIDE: u32 = 6;

/// A route as the subtree builder sees it: address with host bits clear, length > 16,
/// and its entry.
#[derive(Clone, Copy, Debug)]
pub(super) struct Item {
    pub(super) addr: u128,
    pub(super) len: u8,
    pub(super) e: Entry,
}

#[derive(Clone, Copy, Debug, Default)]
struct Node {
    /// Bit `v` set: slot `v` continues in a child node.
    internal: u64,
    /// Bit `v` set: slot `v` is a leaf whose value differs from the previous leaf slot's,
    /// so it starts a new entry in `leaves` (runs of equal leaves share one entry).
    leafvec: u64,
    child_base: u32,
    leaf_base: u32,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Subtree {
    nodes: Vec<Node>,
    /// 0 means "no route longer than /16 here": the root entry's own route applies.
    leaves: Vec<Entry>,
}

/// The 6 bits of `a` after the first `depth` bits (zero-padded past bit 128).
#[inline(always)]
fn window(a: u128, depth: u32) -> usize {
    (a.wrapping_shl(depth) >> (128 - STRIDE)) as usize
}

impl Subtree {
    /// `start` is the number of address bits consumed above this trie (16 or 32).
    #[inline(always)]
    fn lookup(&self, a: u128, start: u32) -> Entry {
        let mut depth = start;
        let mut i = 0usize;
        loop {
            let Some(n) = self.nodes.get(i) else {
                return 0;
            };
            let bit = 1u64 << window(a, depth);
            if n.internal & bit != 0 {
                i = n.child_base as usize + (n.internal & (bit - 1)).count_ones() as usize;
                depth += STRIDE;
            } else {
                let k =
                    n.leaf_base as usize + (n.leafvec & (bit | (bit - 1))).count_ones() as usize;
                return self.leaves.get(k.wrapping_sub(1)).copied().unwrap_or(0);
            }
        }
    }

    /// Builds the trie for `items`, sorted by (address, length), all longer than `start`
    /// and sharing their first `start` bits.
    pub(super) fn build(items: &[Item], start: u32) -> Subtree {
        let mut t = Subtree {
            nodes: vec![Node::default()],
            leaves: Vec::new(),
        };
        t.fill(0, start, items, 0);
        t.nodes.shrink_to_fit();
        t.leaves.shrink_to_fit();
        t
    }

    /// Fills node `at`, which consumes bits `depth..depth + 6`, from `items` (those with
    /// length <= depth are already accounted for in `inherited`).
    fn fill(&mut self, at: usize, depth: u32, items: &[Item], inherited: Entry) {
        let mut slots = [inherited; 64];
        let mut own: Vec<&Item> = items
            .iter()
            .filter(|p| u32::from(p.len) > depth && u32::from(p.len) <= depth + STRIDE)
            .collect();
        // Shorter first so the more specific route wins where they overlap.
        own.sort_by_key(|p| p.len);
        for p in own {
            let free = depth + STRIDE - u32::from(p.len);
            let start = (window(p.addr, depth) >> free) << free;
            for s in &mut slots[start..start + (1 << free)] {
                *s = p.e;
            }
        }

        // Items are sorted by address, so those sharing a window are contiguous.
        let mut groups: Vec<(usize, usize, usize)> = Vec::new();
        let mut k = 0;
        while k < items.len() {
            if u32::from(items[k].len) <= depth + STRIDE {
                k += 1;
                continue;
            }
            let w = window(items[k].addr, depth);
            let mut end = k + 1;
            while end < items.len() && window(items[end].addr, depth) == w {
                end += 1;
            }
            groups.push((w, k, end));
            k = end;
        }

        let mut internal = 0u64;
        for &(w, _, _) in &groups {
            internal |= 1 << w;
        }
        let mut leafvec = 0u64;
        let leaf_base = self.leaves.len() as u32;
        let mut prev: Option<Entry> = None;
        for (v, &s) in slots.iter().enumerate() {
            if internal & (1 << v) != 0 {
                continue;
            }
            if prev != Some(s) {
                leafvec |= 1 << v;
                self.leaves.push(s);
                prev = Some(s);
            }
        }
        let child_base = self.nodes.len();
        self.nodes
            .resize(child_base + groups.len(), Node::default());
        self.nodes[at] = Node {
            internal,
            leafvec,
            child_base: child_base as u32,
            leaf_base,
        };
        for (n, &(w, s, e)) in groups.iter().enumerate() {
            self.fill(child_base + n, depth + STRIDE, &items[s..e], slots[w]);
        }
    }
}

type Direct16 = Box<[u64; ROOT]>;

/// A zeroed 2^16-entry direct level, built on the heap (512 KiB would strain a stack).
fn direct16(from: Option<&Direct16>) -> Direct16 {
    let mut d: Direct16 = match vec![0u64; ROOT].into_boxed_slice().try_into() {
        Ok(b) => b,
        Err(_) => unreachable!("a vec of ROOT elements converts to [u64; ROOT]"),
    };
    if let Some(src) = from {
        d.copy_from_slice(&src[..]);
    }
    d
}

/// Direct slots covered by `addr/len` in a level consuming bits `base..base + 16`
/// (`base < len <= base + 16`).
fn direct_range(addr: u128, base: u32, len: u8) -> std::ops::Range<usize> {
    let first = (addr.wrapping_shl(base) >> (128 - 16)) as usize;
    first..first + (1 << (base + 16 - u32::from(len)))
}

fn direct_insert(slots: &mut [u64], len: u8, e: Entry) {
    for r in slots {
        if overrides(*r as u32, len) {
            *r = (*r & !LOW) | u64::from(e);
        }
    }
}

fn direct_remove(slots: &mut [u64], len: u8, repl: Entry) {
    for r in slots {
        let cur = *r as u32;
        if cur != 0 && entry_len(cur) == len {
            *r = (*r & !LOW) | u64::from(repl);
        }
    }
}

fn mask(len: u32) -> u128 {
    u128::MAX.checked_shl(128 - len).unwrap_or(0)
}

/// Routes longer than `len` under `addr/len`, as builder items.
fn items_under(routes: &Routes, addr: u128, len: u32) -> Vec<Item> {
    let hi = addr | !mask(len);
    routes
        .range(V6Key::new(addr, 0)..=V6Key::new(hi, u8::MAX))
        .filter(|(k, _)| u32::from(k.prefix_len()) > len)
        .map(|(k, &i)| Item {
            addr: k.addr(),
            len: k.prefix_len(),
            e: entry(k.prefix_len(), i),
        })
        .collect()
}

/// Points direct slot `cell` at `new` (allocating an index in `pool`), or detaches it.
fn attach<T: Default>(cell: &mut u64, pool: &mut Vec<Arc<T>>, free: &mut Vec<u32>, new: Option<T>) {
    let cur = (*cell >> 32) as usize;
    match new {
        None => {
            if cur != 0 {
                *cell &= LOW;
                if let Some(s) = pool.get_mut(cur - 1) {
                    // Drop our reference now; readers of older snapshots keep theirs.
                    *s = Arc::new(T::default());
                    free.push((cur - 1) as u32);
                }
            }
        }
        Some(t) => {
            let t = Arc::new(t);
            if let Some(s) = cur.checked_sub(1).and_then(|i| pool.get_mut(i)) {
                *s = t;
                return;
            }
            let idx = match free.pop() {
                Some(i) => {
                    pool[i as usize] = t;
                    i as usize
                }
                None => {
                    pool.push(t);
                    pool.len() - 1
                }
            };
            *cell = (*cell & LOW) | ((idx as u64 + 1) << 32);
        }
    }
}

/// A crowded /16: /17-/32 in a direct level, a trie per /32 with longer routes.
#[derive(Debug)]
pub(super) struct Wide {
    mid: Direct16,
    tries: Vec<Arc<Subtree>>,
    free: Vec<u32>,
}

impl Clone for Wide {
    fn clone(&self) -> Self {
        Wide {
            mid: direct16(Some(&self.mid)),
            tries: self.tries.clone(),
            free: self.free.clone(),
        }
    }
}

impl Wide {
    fn build(base: u128, routes: &Routes) -> Wide {
        let mut w = Wide {
            mid: direct16(None),
            tries: Vec::new(),
            free: Vec::new(),
        };
        let items = items_under(routes, base, 16);
        let mut mids: Vec<&Item> = items.iter().filter(|p| p.len <= 32).collect();
        mids.sort_by_key(|p| p.len);
        for p in mids {
            direct_insert(&mut w.mid[direct_range(p.addr, 16, p.len)], p.len, p.e);
        }
        let deep: Vec<Item> = items.into_iter().filter(|p| p.len > 32).collect();
        let mut k = 0;
        while k < deep.len() {
            let s32 = (deep[k].addr >> 96) as u16;
            let end = k + deep[k..].partition_point(|p| (p.addr >> 96) as u16 == s32);
            let t = Subtree::build(&deep[k..end], 32);
            attach(
                &mut w.mid[usize::from(s32)],
                &mut w.tries,
                &mut w.free,
                Some(t),
            );
            k = end;
        }
        w
    }

    /// Brings this /16 up to date with `routes` after `changed` (routes longer than /16
    /// under it that were added, re-pointed or removed).
    fn apply(&mut self, changed: &[(u128, u8)], routes: &Routes) {
        let mut dirty32 = BTreeSet::new();
        for &(addr, len) in changed {
            if len > 32 {
                dirty32.insert(addr & mask(32));
                continue;
            }
            let range = direct_range(addr, 16, len);
            match routes.get(&V6Key::new(addr, len)) {
                Some(&i) => direct_insert(&mut self.mid[range], len, entry(len, i)),
                None => {
                    // What this level restores: the longest shorter route above /16
                    // (shorter ones live in the root).
                    let repl = (17..len)
                        .rev()
                        .find_map(|l| {
                            let a = addr & mask(u32::from(l));
                            routes.get(&V6Key::new(a, l)).map(|&i| entry(l, i))
                        })
                        .unwrap_or(0);
                    direct_remove(&mut self.mid[range], len, repl);
                }
            }
        }
        for a32 in dirty32 {
            let items = items_under(routes, a32, 32);
            let t = (!items.is_empty()).then(|| Subtree::build(&items, 32));
            let s32 = ((a32 >> 96) & 0xffff) as usize;
            attach(&mut self.mid[s32], &mut self.tries, &mut self.free, t);
        }
    }

    #[inline(always)]
    fn lookup(&self, a: u128) -> Entry {
        let m = self.mid[((a >> 96) & 0xffff) as usize];
        let t = (m >> 32) as usize;
        if t != 0 {
            if let Some(t) = self.tries.get(t - 1) {
                let e = t.lookup(a, 32);
                if e != 0 {
                    return e;
                }
            }
        }
        m as u32
    }
}

/// What hangs below a root slot.
#[derive(Clone, Debug)]
pub(super) enum Sub {
    Trie(Subtree),
    Wide(Wide),
}

impl Default for Sub {
    fn default() -> Self {
        Sub::Trie(Subtree::default())
    }
}

#[derive(Debug)]
struct Root {
    /// Low half: the entry of the longest route of length <= 16 covering the slot.
    /// High half: index + 1 of the slot's [`Sub`] in `subs`, or 0.
    e: Direct16,
}

impl Clone for Root {
    fn clone(&self) -> Self {
        Root {
            e: direct16(Some(&self.e)),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct V6Table {
    root: Arc<Root>,
    subs: Vec<Arc<Sub>>,
    /// Indices in `subs` no root slot refers to (writer bookkeeping).
    free: Vec<u32>,
}

impl V6Table {
    pub(super) fn new() -> V6Table {
        V6Table {
            root: Arc::new(Root { e: direct16(None) }),
            subs: Vec::new(),
            free: Vec::new(),
        }
    }

    /// The entry of the longest prefix containing `a`, or 0.
    #[inline(always)]
    pub(super) fn lookup(&self, a: u128) -> Entry {
        let r = self.root.e[(a >> (128 - ROOT_BITS)) as usize];
        let sub = (r >> 32) as usize;
        if sub != 0 {
            let e = match self.subs.get(sub - 1).map(|s| &**s) {
                Some(Sub::Trie(t)) => t.lookup(a, ROOT_BITS),
                Some(Sub::Wide(w)) => w.lookup(a),
                None => 0,
            };
            if e != 0 {
                return e;
            }
        }
        r as u32
    }

    /// How many /16s use the wide layout (lets tests check both layouts are exercised).
    #[cfg(test)]
    pub(super) fn wide_count(&self) -> usize {
        let root = &self.root.e;
        root.iter()
            .filter_map(|r| ((r >> 32) as usize).checked_sub(1))
            .filter(|&i| matches!(self.subs.get(i).map(|s| &**s), Some(Sub::Wide(_))))
            .count()
    }

    /// Installs a route of length <= 16 wherever it is now the longest match among the
    /// root routes.
    pub(super) fn insert_short(&mut self, addr: u128, len: u8, e: Entry) {
        let root = Arc::make_mut(&mut self.root);
        direct_insert(&mut root.e[direct_range(addr, 0, len)], len, e);
    }

    /// Removes a route of length <= 16, restoring `repl` where it was the longest match.
    pub(super) fn remove_short(&mut self, addr: u128, len: u8, repl: Entry) {
        let root = Arc::make_mut(&mut self.root);
        direct_remove(&mut root.e[direct_range(addr, 0, len)], len, repl);
    }

    /// Brings root slot `slot` up to date with `routes` after `changed` (routes longer
    /// than /16 under it that were added, re-pointed or removed); `long` is how many
    /// routes longer than /16 it now holds.
    pub(super) fn refresh(
        &mut self,
        slot: usize,
        changed: &[(u128, u8)],
        long: usize,
        routes: &Routes,
    ) {
        let root = Arc::make_mut(&mut self.root);
        let Some(cell) = root.e.get_mut(slot) else {
            return;
        };
        let base = (slot as u128) << (128 - ROOT_BITS);
        let cur = ((*cell >> 32) as usize)
            .checked_sub(1)
            .and_then(|i| self.subs.get_mut(i));
        let is_wide = cur.as_ref().is_some_and(|s| matches!(***s, Sub::Wide(_)));
        let want_wide = if is_wide {
            long >= TRIE_BELOW
        } else {
            long > WIDE_ABOVE
        };
        let new = if long == 0 {
            None
        } else if is_wide && want_wide {
            if let Some(Sub::Wide(w)) = cur.map(Arc::make_mut) {
                w.apply(changed, routes);
            }
            return;
        } else if want_wide {
            Some(Sub::Wide(Wide::build(base, routes)))
        } else {
            Some(Sub::Trie(Subtree::build(
                &items_under(routes, base, ROOT_BITS),
                ROOT_BITS,
            )))
        };
        attach(cell, &mut self.subs, &mut self.free, new);
    }
}
