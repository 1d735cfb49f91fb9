//! The IPv6 lookup table: a 2^16-entry direct root and, under each /16 that holds longer
//! prefixes, a poptrie-style compressed multibit trie (6-bit strides, popcount-indexed
//! children and leaves).
//!
//! Owns the table layout, the subtree builder and lookups; the set of prefixes and the
//! choice of what to rebuild belong to the writer in `mod.rs`.
//!
//! Prefixes up to /16 live in the root entries themselves (updated in place like
//! DIR-24-8). A subtree holds only the prefixes longer than /16 under its root slot and is
//! rebuilt as a whole when any of them changes: the rebuild is proportional to that /16's
//! routes, never to the table, and the new subtree is swapped in by the snapshot.

use std::sync::Arc;

use super::nexthop::{entry_len, overrides, Entry};

const ROOT: usize = 1 << 16;
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

#[derive(Debug, Default)]
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
    #[inline(always)]
    fn lookup(&self, a: u128) -> Entry {
        let mut depth = ROOT_BITS;
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

    /// Builds the subtree for `items`, sorted by (address, length), all longer than /16
    /// and under one /16.
    pub(super) fn build(items: &[Item]) -> Subtree {
        let mut t = Subtree {
            nodes: vec![Node::default()],
            leaves: Vec::new(),
        };
        t.fill(0, ROOT_BITS, items, 0);
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

#[derive(Debug)]
struct Root {
    /// Low 32 bits: the entry of the longest prefix of length <= 16 covering the slot.
    /// High 32 bits: index + 1 of the slot's subtree in `subs`, or 0.
    e: Box<[u64; ROOT]>,
}

impl Clone for Root {
    fn clone(&self) -> Self {
        // Copy on the heap: a derived clone of a 512 KiB array may go through the stack.
        let mut e = empty_root();
        e.copy_from_slice(&self.e[..]);
        Root { e }
    }
}

fn empty_root() -> Box<[u64; ROOT]> {
    match vec![0u64; ROOT].into_boxed_slice().try_into() {
        Ok(b) => b,
        Err(_) => unreachable!("a vec of ROOT elements converts to [u64; ROOT]"),
    }
}

#[derive(Clone, Debug)]
pub(super) struct V6Table {
    root: Arc<Root>,
    subs: Vec<Arc<Subtree>>,
    /// Indices in `subs` no root slot refers to (writer bookkeeping).
    free: Vec<u32>,
}

impl V6Table {
    pub(super) fn new() -> V6Table {
        V6Table {
            root: Arc::new(Root { e: empty_root() }),
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
            if let Some(t) = self.subs.get(sub - 1) {
                let e = t.lookup(a);
                if e != 0 {
                    return e;
                }
            }
        }
        r as u32
    }

    /// Root slots covered by `addr/len`, `len <= 16`.
    fn root_range(addr: u128, len: u8) -> std::ops::Range<usize> {
        let first = (addr >> (128 - ROOT_BITS)) as usize;
        first..first + (1 << (ROOT_BITS - u32::from(len)))
    }

    /// Installs a route of length <= 16 wherever it is now the longest match among the
    /// root routes.
    pub(super) fn insert_short(&mut self, addr: u128, len: u8, e: Entry) {
        let root = Arc::make_mut(&mut self.root);
        for r in &mut root.e[Self::root_range(addr, len)] {
            if overrides(*r as u32, len) {
                *r = (*r & !0xffff_ffff) | u64::from(e);
            }
        }
    }

    /// Removes a route of length <= 16, restoring `repl` where it was the longest match.
    pub(super) fn remove_short(&mut self, addr: u128, len: u8, repl: Entry) {
        let root = Arc::make_mut(&mut self.root);
        for r in &mut root.e[Self::root_range(addr, len)] {
            let cur = *r as u32;
            if cur != 0 && entry_len(cur) == len {
                *r = (*r & !0xffff_ffff) | u64::from(repl);
            }
        }
    }

    /// Replaces the subtree of root slot `slot` by one built from `items` (sorted, all
    /// longer than /16, all under that slot); no items removes it.
    pub(super) fn rebuild(&mut self, slot: usize, items: &[Item]) {
        let root = Arc::make_mut(&mut self.root);
        let Some(r) = root.e.get_mut(slot) else {
            return;
        };
        let cur = (*r >> 32) as usize;
        if items.is_empty() {
            if cur != 0 {
                *r &= 0xffff_ffff;
                if let Some(s) = self.subs.get_mut(cur - 1) {
                    // Drop our reference now; readers of older snapshots keep theirs.
                    *s = Arc::new(Subtree::default());
                    self.free.push((cur - 1) as u32);
                }
            }
            return;
        }
        let t = Arc::new(Subtree::build(items));
        if cur != 0 {
            if let Some(s) = self.subs.get_mut(cur - 1) {
                *s = t;
                return;
            }
        }
        let idx = match self.free.pop() {
            Some(i) => {
                self.subs[i as usize] = t;
                i as usize
            }
            None => {
                self.subs.push(t);
                self.subs.len() - 1
            }
        };
        *r = (*r & 0xffff_ffff) | ((idx as u64 + 1) << 32);
    }
}
