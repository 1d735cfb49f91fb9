//! The FIB: longest-prefix match for IPv4 and IPv6, prefix -> [`NextHop`], read without
//! locks on the packet path.
//!
//! Owns the lookup tables and the FIB's own copy of its prefixes. Does not decide which
//! route is best (that is `routing::rib`) nor what to do with a packet (`forward`).
//!
//! Readers load an immutable [`FibSnapshot`] through `arc-swap` (cached per thread and
//! revalidated with one atomic load) and never wait for a writer. A writer (serialized by a mutex that readers never touch) applies a whole batch
//! to a private copy of the pages it changes and publishes the new snapshot with one
//! atomic store, so a reader sees either all of a batch or none of it, and traffic to
//! prefixes a batch does not touch is answered throughout. Layout and numbers:
//! docs/fib.md.
//!
//! - [`v4`]: DIR-24-8 in copy-on-write pages;
//! - [`v6`]: a /16 direct root plus poptrie-style tries (and a /32 direct level for
//!   crowded /16s);
//! - [`nexthop`]: next-hop interning and the table entry encoding.

mod nexthop;
#[cfg(test)]
mod tests;
mod v4;
mod v6;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

pub(crate) use self::nexthop::Interner;
use self::nexthop::{entry, entry_len, entry_nh, normalize, Entry, Slot};
use self::v4::V4Table;
use self::v6::{Routes, V6Table};
use crate::dataplane::{Egress, NextHop};
use crate::prefix_map::{ChunkMap, V6Key};

/// One change to the FIB. Prefixes need not be normalized: host bits are cleared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibChange {
    /// Install or replace the route for the prefix.
    Upsert(IpNetwork, NextHop),
    /// Remove the route for the prefix (no-op if absent).
    Remove(IpNetwork),
}

/// One published, immutable state of the FIB. Hold one across a burst of packets to pay
/// the snapshot load once (see [`Fib::snapshot`]).
#[derive(Clone)]
pub struct FibSnapshot {
    v4: V4Table,
    v6: V6Table,
    nh: Arc<[Slot]>,
    len: usize,
}

impl FibSnapshot {
    fn empty() -> FibSnapshot {
        FibSnapshot {
            v4: V4Table::new(),
            v6: V6Table::new(),
            nh: Arc::from(Vec::new()),
            len: 0,
        }
    }

    #[inline(always)]
    fn egress(&self, e: Entry, flow_hash: u32) -> Option<Egress> {
        if e == 0 {
            return None;
        }
        self.nh.get(entry_nh(e)).map(|s| s.resolved.pick(flow_hash))
    }

    /// Where a packet to `dst` goes; `flow_hash` picks the ECMP member.
    #[inline]
    pub fn lookup(&self, dst: IpAddr, flow_hash: u32) -> Option<Egress> {
        match dst {
            IpAddr::V4(a) => self.lookup_v4(a, flow_hash),
            IpAddr::V6(a) => self.lookup_v6(a, flow_hash),
        }
    }

    #[inline]
    pub fn lookup_v4(&self, dst: Ipv4Addr, flow_hash: u32) -> Option<Egress> {
        self.egress(self.v4.lookup(dst.to_bits()), flow_hash)
    }

    #[inline]
    pub fn lookup_v6(&self, dst: Ipv6Addr, flow_hash: u32) -> Option<Egress> {
        self.egress(self.v6.lookup(dst.to_bits()), flow_hash)
    }

    /// The matching route itself. The prefix is rebuilt from `dst` and the length stored
    /// in the entry, so this costs one lookup.
    pub fn longest_match(&self, dst: IpAddr) -> Option<(IpNetwork, NextHop)> {
        let (e, net) = match dst {
            IpAddr::V4(a) => {
                let e = self.v4.lookup(a.to_bits());
                let len = entry_len(e);
                let net = Ipv4Network::new(Ipv4Addr::from_bits(a.to_bits() & mask4(len)), len);
                (e, IpNetwork::V4(net.ok()?))
            }
            IpAddr::V6(a) => {
                let e = self.v6.lookup(a.to_bits());
                let len = entry_len(e);
                let net = Ipv6Network::new(Ipv6Addr::from_bits(a.to_bits() & mask6(len)), len);
                (e, IpNetwork::V6(net.ok()?))
            }
        };
        if e == 0 {
            return None;
        }
        let slot = self.nh.get(entry_nh(e))?;
        Some((net, slot.next_hop.clone()))
    }

    /// Number of prefixes (v4 + v6).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for FibSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FibSnapshot")
            .field("len", &self.len)
            .finish()
    }
}

fn mask4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// The writer's canonical state: every prefix with its next-hop index. Tables are derived
/// from it and can always be checked against it.
#[derive(Default)]
struct Writer {
    v4: ChunkMap<(u32, u8), u32>,
    v6: Routes,
    /// Per /16: how many v6 routes longer than /16 it holds (picks its layout).
    long6: HashMap<usize, usize>,
    nh: Interner,
}

impl Writer {
    /// Entry of the longest prefix strictly shorter than `len` that covers `addr`.
    fn cover_v4(&self, addr: u32, len: u8) -> Entry {
        for l in (0..len).rev() {
            if let Some(&i) = self.v4.get(&(addr & mask4(l), l)) {
                return entry(l, i);
            }
        }
        0
    }

    fn cover_v6(&self, addr: u128, len: u8) -> Entry {
        for l in (0..len).rev() {
            if let Some(&i) = self.v6.get(&V6Key::new(addr & mask6(l), l)) {
                return entry(l, i);
            }
        }
        0
    }

    /// Records `prefix -> nh` and returns the new next-hop index and whether the prefix
    /// is new, or `None` if nothing changes (same next hop, or no index left). One search
    /// of the map per prefix (a full table is a million of them).
    fn upsert<K: Ord + Copy>(
        map: &mut ChunkMap<K, u32>,
        interner: &mut Interner,
        key: K,
        nh: &NextHop,
    ) -> Option<(u32, bool)> {
        let full = || tracing::error!("FIB next-hop table full; route not installed");
        match map.get_mut(&key) {
            Some(slot) => {
                let old = *slot;
                if interner.next_hop(old) == Some(nh) {
                    return None;
                }
                let Some(i) = interner.acquire(nh) else {
                    full();
                    return None;
                };
                interner.release(old);
                *slot = i;
                Some((i, false))
            }
            None => {
                let Some(i) = interner.acquire(nh) else {
                    full();
                    return None;
                };
                // The map tries the run of its last insert first: a table arriving in
                // prefix order costs no second full search.
                map.insert(key, i);
                Some((i, true))
            }
        }
    }
}

/// The forwarding table. `Send + Sync`; share it with `Arc`.
pub struct Fib {
    current: ArcSwap<FibSnapshot>,
    /// Bumped after every publish; lets a reader thread keep using its cached snapshot
    /// with one atomic load instead of an `ArcSwap` load per packet.
    generation: AtomicU64,
    /// Tells this FIB's entry in a thread's reader cache from another FIB's.
    id: u64,
    writer: Mutex<Writer>,
}

/// The snapshot a thread used last, and which FIB and publish it came from.
struct ReaderCache {
    fib: u64,
    generation: u64,
    snap: Arc<FibSnapshot>,
}

thread_local! {
    // One entry per thread: the packet path looks up one FIB over and over. A thread
    // that stops doing lookups keeps its last snapshot alive until it exits or looks
    // up again; that bounds the extra memory to one old snapshot per such thread.
    static READER: RefCell<Option<ReaderCache>> = const { RefCell::new(None) };
}

static NEXT_FIB_ID: AtomicU64 = AtomicU64::new(0);

impl Default for Fib {
    fn default() -> Self {
        Fib::new()
    }
}

impl fmt::Debug for Fib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fib").field("len", &self.len()).finish()
    }
}

impl Fib {
    pub fn new() -> Fib {
        Fib {
            current: ArcSwap::from_pointee(FibSnapshot::empty()),
            generation: AtomicU64::new(0),
            id: NEXT_FIB_ID.fetch_add(1, Ordering::Relaxed),
            writer: Mutex::new(Writer::default()),
        }
    }

    /// The current state, for answering many lookups with one load. A held snapshot
    /// keeps its memory alive; drop it after the burst.
    pub fn snapshot(&self) -> Arc<FibSnapshot> {
        self.current.load_full()
    }

    /// Runs `f` on the current snapshot, through this thread's cache when it is fresh.
    #[inline(always)]
    fn with_current<R>(&self, f: impl Fn(&FibSnapshot) -> R) -> R {
        // Acquire pairs with the Release increment in `apply`, which follows the store:
        // seeing generation g means a snapshot loaded after this is at least g's.
        let generation = self.generation.load(Ordering::Acquire);
        let hit = READER.try_with(|cell| {
            let cache = cell.try_borrow().ok()?;
            match &*cache {
                Some(c) if c.fib == self.id && c.generation == generation => Some(f(&c.snap)),
                _ => None,
            }
        });
        match hit {
            Ok(Some(r)) => r,
            _ => {
                self.refill(generation);
                f(&self.current.load())
            }
        }
    }

    /// Replaces this thread's cached snapshot (kept off the hot path).
    #[cold]
    #[inline(never)]
    fn refill(&self, generation: u64) {
        // Fails only while thread-local storage is torn down or if a lookup is nested
        // in another; the caller then just uses an `ArcSwap` load.
        let _ = READER.try_with(|cell| {
            if let Ok(mut cache) = cell.try_borrow_mut() {
                *cache = Some(ReaderCache {
                    fib: self.id,
                    generation,
                    snap: self.current.load_full(),
                });
            }
        });
    }

    #[inline]
    pub fn lookup(&self, dst: IpAddr, flow_hash: u32) -> Option<Egress> {
        self.with_current(|s| s.lookup(dst, flow_hash))
    }

    #[inline]
    pub fn lookup_v4(&self, dst: Ipv4Addr, flow_hash: u32) -> Option<Egress> {
        self.with_current(|s| s.lookup_v4(dst, flow_hash))
    }

    #[inline]
    pub fn lookup_v6(&self, dst: Ipv6Addr, flow_hash: u32) -> Option<Egress> {
        self.with_current(|s| s.lookup_v6(dst, flow_hash))
    }

    /// The matching entry itself: (prefix, next hop), for "route lookup" in the API.
    pub fn longest_match(&self, dst: IpAddr) -> Option<(IpNetwork, NextHop)> {
        self.current.load().longest_match(dst)
    }

    /// Applies `batch` in order and publishes the result at once. Writers serialize;
    /// readers keep using the previous snapshot until the store.
    pub fn apply<I: IntoIterator<Item = FibChange>>(&self, batch: I) {
        // A writer that panicked left the canonical maps possibly ahead of the published
        // tables; carrying on is still better than refusing every later update.
        let mut w = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let w = &mut *w;
        let mut snap = FibSnapshot::clone(&self.current.load());
        // v6 routes longer than /16 are applied per /16 once the batch is recorded.
        let mut changed6: BTreeMap<usize, Vec<(u128, u8)>> = BTreeMap::new();

        for change in batch {
            match change {
                FibChange::Upsert(IpNetwork::V4(n), nh) => {
                    let (addr, len) = (n.network().to_bits(), n.prefix());
                    let nh = normalize(nh);
                    if let Some((i, _)) = Writer::upsert(&mut w.v4, &mut w.nh, (addr, len), &nh) {
                        snap.v4.insert(addr, len, entry(len, i));
                    }
                }
                FibChange::Upsert(IpNetwork::V6(n), nh) => {
                    let (addr, len) = (n.network().to_bits(), n.prefix());
                    let nh = normalize(nh);
                    if let Some((i, new)) =
                        Writer::upsert(&mut w.v6, &mut w.nh, V6Key::new(addr, len), &nh)
                    {
                        if len <= 16 {
                            snap.v6.insert_short(addr, len, entry(len, i));
                        } else {
                            let slot = (addr >> 112) as usize;
                            if new {
                                *w.long6.entry(slot).or_default() += 1;
                            }
                            changed6.entry(slot).or_default().push((addr, len));
                        }
                    }
                }
                FibChange::Remove(IpNetwork::V4(n)) => {
                    let (addr, len) = (n.network().to_bits(), n.prefix());
                    if let Some(i) = w.v4.remove(&(addr, len)) {
                        w.nh.release(i);
                        let repl = w.cover_v4(addr, len);
                        snap.v4.remove(addr, len, repl);
                    }
                }
                FibChange::Remove(IpNetwork::V6(n)) => {
                    let (addr, len) = (n.network().to_bits(), n.prefix());
                    if let Some(i) = w.v6.remove(&V6Key::new(addr, len)) {
                        w.nh.release(i);
                        if len <= 16 {
                            let repl = w.cover_v6(addr, len);
                            snap.v6.remove_short(addr, len, repl);
                        } else {
                            let slot = (addr >> 112) as usize;
                            if let Some(n) = w.long6.get_mut(&slot) {
                                *n = n.saturating_sub(1);
                            }
                            changed6.entry(slot).or_default().push((addr, len));
                        }
                    }
                }
            }
        }

        for (slot, changed) in changed6 {
            let long = w.long6.get(&slot).copied().unwrap_or(0);
            if long == 0 {
                w.long6.remove(&slot);
            }
            snap.v6.refresh(slot, &changed, long, &w.v6);
        }
        if w.nh.dirty {
            snap.nh = Arc::from(w.nh.publish());
        }
        snap.len = w.v4.len() + w.v6.len();
        self.current.store(Arc::new(snap));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Every route, sorted by prefix (IPv4 first).
    pub fn entries(&self) -> Vec<(IpNetwork, NextHop)> {
        let w = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let v4 = w.v4.iter().filter_map(|(&(addr, len), &i)| {
            let net = Ipv4Network::new(Ipv4Addr::from_bits(addr), len).ok()?;
            Some((IpNetwork::V4(net), w.nh.next_hop(i)?.clone()))
        });
        let v6 = w.v6.iter().filter_map(|(k, &i)| {
            let net = Ipv6Network::new(Ipv6Addr::from_bits(k.addr()), k.prefix_len()).ok()?;
            Some((IpNetwork::V6(net), w.nh.next_hop(i)?.clone()))
        });
        let mut all: Vec<_> = v4.chain(v6).collect();
        // Already in (address, length) order per family; keep the promise explicit.
        all.sort_by_key(|e| e.0);
        all
    }

    /// Number of prefixes (v4 + v6).
    pub fn len(&self) -> usize {
        self.current.load().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
