//! Ordered maps packed for full routing tables.
//!
//! A BGP full table is a million prefixes held by several layers (the speaker's
//! Adj-RIB-In and route set, the RIB, the FIB writer). `std`'s `BTreeMap` fixes its nodes
//! at 11 entries and, fed in key order (how a table arrives: UPDATEs are packed in
//! prefix order), splits every full leaf in the middle and never fills the left half
//! again, so its leaves end a bit over half full; with `IpNetwork` keys (18 bytes,
//! compared field by field) that cost about 50 bytes per prefix for a map of pointers.
//!
//! [`ChunkMap`] keeps sorted runs of up to [`CHUNK`] entries, keys and values in separate
//! arrays (a search touches only keys), and an index of each run's first key. An
//! insert past the end of a full run starts a new run and leaves the full one full, so
//! a table loaded in order is packed; inserts elsewhere split a run in halves, like a
//! B-tree. The run of the last insert is tried first, so in-order inserts skip the
//! index search. [`PrefixMap`] is a `ChunkMap` per address family with compact keys
//! (IPv4: one `u64`; IPv6: 17 bytes) in `IpNetwork` order.
//!
//! Numbers (`benches/prefix_map.rs`) are in docs/performance.md.

use std::cell::Cell;
use std::cmp::Ordering;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::{Bound, RangeBounds};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

/// Most entries in one run. 512 keys of 8 bytes are 4 KiB: a search in a run is nine
/// probes within a few cache lines, and a middle insert moves at most that much.
pub const CHUNK: usize = 512;

/// One sorted run.
#[derive(Clone, Debug)]
struct Chunk<K, V> {
    keys: Vec<K>,
    vals: Vec<V>,
}

impl<K, V> Chunk<K, V> {
    fn with_capacity(n: usize) -> Chunk<K, V> {
        Chunk {
            keys: Vec::with_capacity(n),
            vals: Vec::with_capacity(n),
        }
    }
    fn len(&self) -> usize {
        self.keys.len()
    }
}

/// A sorted map in runs of up to [`CHUNK`] entries (see the module docs).
#[derive(Clone, Debug)]
pub struct ChunkMap<K, V> {
    /// The first key of each run; `firsts[i]` belongs to `chunks[i]`. No run is empty.
    firsts: Vec<K>,
    chunks: Vec<Chunk<K, V>>,
    len: usize,
    /// The run of the last insert or removal.
    hint: usize,
    /// (run, position) of the last key found: lookups in key order (deciding the
    /// prefixes of an UPDATE one after the other) find the next key right after it. A
    /// `Cell` so that `get` can move it; this makes the map `!Sync`, which no owner needs
    /// (each table belongs to one task or sits behind a lock).
    finger: Cell<(usize, usize)>,
}

impl<K, V> Default for ChunkMap<K, V> {
    fn default() -> Self {
        ChunkMap {
            firsts: Vec::new(),
            chunks: Vec::new(),
            len: 0,
            hint: 0,
            finger: Cell::new((0, 0)),
        }
    }
}

impl<K: Ord + Copy, V> ChunkMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Whether run `c` is where `key` belongs: at or after its first key (or the first
    /// run) and before the next run's first key.
    fn run_holds(&self, c: usize, key: &K) -> bool {
        c < self.chunks.len()
            && (c == 0 || self.firsts[c] <= *key)
            && self.firsts.get(c + 1).is_none_or(|next| key < next)
    }

    /// The run where `key` is or would go (the map must not be empty).
    fn run_of(&self, key: &K) -> usize {
        if self.run_holds(self.hint, key) {
            return self.hint;
        }
        self.firsts.partition_point(|f| f <= key).saturating_sub(1)
    }

    /// (run, position in the run): `Ok` if present, `Err` where it would be inserted.
    fn locate(&self, key: &K) -> Option<(usize, Result<usize, usize>)> {
        if self.chunks.is_empty() {
            return None;
        }
        let (fc, fi) = self.finger.get();
        let c = if fc < self.chunks.len() && self.run_holds(fc, key) {
            fc
        } else {
            self.run_of(key)
        };
        let keys = &self.chunks[c].keys;
        // A table loaded in order appends to its run: one comparison instead of a search.
        if keys.last().is_some_and(|last| last < key) {
            return Some((c, Err(keys.len())));
        }
        let near = if c == fc {
            [fi + 1, fi]
        } else {
            [usize::MAX; 2]
        };
        let found = match near.into_iter().find(|&i| keys.get(i) == Some(key)) {
            Some(i) => Ok(i),
            None => keys.binary_search(key),
        };
        if let Ok(i) = found {
            self.finger.set((c, i));
        }
        Some((c, found))
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        match self.locate(key)? {
            (c, Ok(i)) => Some(&self.chunks[c].vals[i]),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match self.locate(key)? {
            (c, Ok(i)) => {
                self.hint = c;
                Some(&mut self.chunks[c].vals[i])
            }
            _ => None,
        }
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: K, val: V) -> Option<V> {
        match self.locate(&key) {
            Some((c, Ok(i))) => {
                self.hint = c;
                Some(std::mem::replace(&mut self.chunks[c].vals[i], val))
            }
            Some((c, Err(i))) => {
                self.insert_at(c, i, key, val);
                None
            }
            None => {
                self.insert_at(0, 0, key, val);
                None
            }
        }
    }

    /// The value of `key`, inserting `make()` first if absent; true if it was inserted.
    /// One search either way.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> (&mut V, bool) {
        let (c, i, inserted) = match self.locate(&key) {
            Some((c, Ok(i))) => (c, i, false),
            Some((c, Err(i))) => {
                let (c, i) = self.insert_at(c, i, key, make());
                (c, i, true)
            }
            None => {
                let (c, i) = self.insert_at(0, 0, key, make());
                (c, i, true)
            }
        };
        self.hint = c;
        (&mut self.chunks[c].vals[i], inserted)
    }

    /// Inserts at position `i` of run `c` (as found by `locate`); returns where the entry
    /// ended up after any split.
    fn insert_at(&mut self, c: usize, i: usize, key: K, val: V) -> (usize, usize) {
        self.len += 1;
        if self.chunks.is_empty() {
            let mut run = Chunk::with_capacity(4);
            run.keys.push(key);
            run.vals.push(val);
            self.chunks.push(run);
            self.firsts.push(key);
            self.hint = 0;
            return (0, 0);
        }
        let (c, i) = if self.chunks[c].len() < CHUNK {
            (c, i)
        } else if i == CHUNK {
            // Past the end of a full run (a table arriving in order): a new run, and the
            // full one stays full.
            self.chunks.insert(c + 1, Chunk::with_capacity(4));
            self.firsts.insert(c + 1, key);
            (c + 1, 0)
        } else {
            // Elsewhere: split in halves.
            let mid = CHUNK / 2;
            let right = Chunk {
                keys: self.chunks[c].keys.split_off(mid),
                vals: self.chunks[c].vals.split_off(mid),
            };
            self.firsts.insert(c + 1, right.keys[0]);
            self.chunks.insert(c + 1, right);
            if i < mid {
                (c, i)
            } else {
                (c + 1, i - mid)
            }
        };
        let run = &mut self.chunks[c];
        run.keys.insert(i, key);
        run.vals.insert(i, val);
        if i == 0 {
            self.firsts[c] = key;
        }
        self.hint = c;
        (c, i)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (c, Ok(i)) = self.locate(key)? else {
            return None;
        };
        Some(self.remove_at(c, i))
    }

    fn remove_at(&mut self, c: usize, i: usize) -> V {
        self.len -= 1;
        let run = &mut self.chunks[c];
        run.keys.remove(i);
        let val = run.vals.remove(i);
        if run.keys.is_empty() {
            self.chunks.remove(c);
            self.firsts.remove(c);
            self.hint = c.saturating_sub(1);
            return val;
        }
        if i == 0 {
            self.firsts[c] = run.keys[0];
        }
        self.hint = c;
        self.merge_small(c);
        val
    }

    /// Keeps runs from thinning out after withdrawals: a run under a quarter full takes
    /// in its right neighbour when both fit in half a run, and gives memory back.
    fn merge_small(&mut self, c: usize) {
        let small = CHUNK / 4;
        if self.chunks[c].len() >= small {
            return;
        }
        if c + 1 < self.chunks.len() && self.chunks[c].len() + self.chunks[c + 1].len() <= CHUNK / 2
        {
            let next = self.chunks.remove(c + 1);
            self.firsts.remove(c + 1);
            let run = &mut self.chunks[c];
            run.keys.extend(next.keys);
            run.vals.extend(next.vals);
        }
        let run = &mut self.chunks[c];
        if run.keys.capacity() > 2 * run.len().max(4) {
            run.keys.shrink_to(run.len() * 2);
            run.vals.shrink_to(run.len() * 2);
        }
    }

    /// Keeps the entries for which `keep` is true (visited in order, once each).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for run in &mut self.chunks {
            let mask: Vec<bool> = run
                .keys
                .iter()
                .zip(run.vals.iter_mut())
                .map(|(k, v)| keep(k, v))
                .collect();
            let mut m = mask.iter();
            run.keys.retain(|_| m.next().copied().unwrap_or(true));
            let mut m = mask.iter();
            run.vals.retain(|_| m.next().copied().unwrap_or(true));
        }
        self.chunks.retain(|r| !r.keys.is_empty());
        self.firsts = self.chunks.iter().map(|r| r.keys[0]).collect();
        self.len = self.chunks.iter().map(Chunk::len).sum();
        self.hint = 0;
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + '_ {
        self.chunks
            .iter()
            .flat_map(|r| r.keys.iter().zip(r.vals.iter()))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> + '_ {
        self.chunks
            .iter_mut()
            .flat_map(|r| r.keys.iter().zip(r.vals.iter_mut()))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.chunks.iter().flat_map(|r| r.keys.iter())
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.chunks.iter().flat_map(|r| r.vals.iter())
    }

    /// The entries with keys in `range`, in order.
    pub fn range<R: RangeBounds<K>>(&self, range: R) -> impl Iterator<Item = (&K, &V)> + '_ {
        let (c, i) = match range.start_bound() {
            Bound::Unbounded => (0, 0),
            Bound::Included(k) | Bound::Excluded(k) => match self.locate(k) {
                None => (0, 0),
                Some((c, Ok(i))) => match range.start_bound() {
                    Bound::Excluded(_) => (c, i + 1),
                    _ => (c, i),
                },
                Some((c, Err(i))) => (c, i),
            },
        };
        let end = match range.end_bound() {
            Bound::Included(k) => Bound::Included(*k),
            Bound::Excluded(k) => Bound::Excluded(*k),
            Bound::Unbounded => Bound::Unbounded,
        };
        let first = self.chunks.get(c).map(|r| {
            r.keys[i.min(r.len())..]
                .iter()
                .zip(&r.vals[i.min(r.len())..])
        });
        let rest = self
            .chunks
            .get(c + 1..)
            .unwrap_or_default()
            .iter()
            .flat_map(|r| r.keys.iter().zip(r.vals.iter()));
        first
            .into_iter()
            .flatten()
            .chain(rest)
            .take_while(move |(k, _)| match end {
                Bound::Included(e) => k.cmp(&&e) != Ordering::Greater,
                Bound::Excluded(e) => k.cmp(&&e) == Ordering::Less,
                Bound::Unbounded => true,
            })
    }

    /// The entries, consuming the map.
    pub fn into_entries(self) -> impl Iterator<Item = (K, V)> {
        self.chunks
            .into_iter()
            .flat_map(|r| r.keys.into_iter().zip(r.vals))
    }
}

impl<K: Ord + Copy, V> FromIterator<(K, V)> for ChunkMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(items: I) -> Self {
        let mut map = ChunkMap::new();
        for (k, v) in items {
            map.insert(k, v);
        }
        map
    }
}

impl<K: PartialEq, V: PartialEq> PartialEq for ChunkMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .chunks
                .iter()
                .flat_map(|r| r.keys.iter().zip(&r.vals))
                .eq(other.chunks.iter().flat_map(|r| r.keys.iter().zip(&r.vals)))
    }
}

impl<K: Eq, V: Eq> Eq for ChunkMap<K, V> {}

/// An IPv4 prefix as one integer: address in the high bits, length in the low byte, so
/// integer order is `Ipv4Network` order (address, then length).
type V4Key = u64;

fn v4_key(n: Ipv4Network) -> V4Key {
    (u64::from(u32::from(n.ip())) << 8) | u64::from(n.prefix())
}

fn v4_net(k: V4Key) -> Ipv4Network {
    // Only keys made by `v4_key` are stored: the length is at most 32.
    Ipv4Network::new(Ipv4Addr::from((k >> 8) as u32), (k & 0xff) as u8)
        .expect("stored IPv4 prefix length is valid")
}

/// An IPv6 prefix in `Ipv6Network` order, packed into 17 bytes (a struct of two `u64`
/// and the length would take 24): the address big-endian, then the length, compared as
/// two integers and a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct V6Key([u8; 17]);

impl V6Key {
    /// The key of `addr/len` (host bits as given).
    pub(crate) fn new(addr: u128, len: u8) -> V6Key {
        let mut k = [0u8; 17];
        k[..16].copy_from_slice(&addr.to_be_bytes());
        k[16] = len;
        V6Key(k)
    }

    pub(crate) fn addr(&self) -> u128 {
        (u128::from(self.half(0)) << 64) | u128::from(self.half(8))
    }

    pub(crate) fn prefix_len(&self) -> u8 {
        self.0[16]
    }

    fn half(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[at..at + 8]);
        u64::from_be_bytes(b)
    }
}

impl Ord for V6Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.half(0)
            .cmp(&other.half(0))
            .then_with(|| self.half(8).cmp(&other.half(8)))
            .then_with(|| self.0[16].cmp(&other.0[16]))
    }
}

impl PartialOrd for V6Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn v6_key(n: Ipv6Network) -> V6Key {
    V6Key::new(u128::from(n.ip()), n.prefix())
}

fn v6_net(k: V6Key) -> Ipv6Network {
    // Only keys made by `v6_key` are stored: the length is at most 128.
    Ipv6Network::new(Ipv6Addr::from(k.addr()), k.prefix_len())
        .expect("stored IPv6 prefix length is valid")
}

/// A map keyed by prefix in `IpNetwork` order (IPv4 first), one [`ChunkMap`] per family.
/// A prefix keeps whatever host bits it was inserted with (like a `BTreeMap` of
/// `IpNetwork`); normalizing is the caller's choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixMap<V> {
    v4: ChunkMap<V4Key, V>,
    v6: ChunkMap<V6Key, V>,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            v4: ChunkMap::default(),
            v6: ChunkMap::default(),
        }
    }
}

impl<V> PrefixMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }

    pub fn get(&self, p: &IpNetwork) -> Option<&V> {
        match *p {
            IpNetwork::V4(n) => self.v4.get(&v4_key(n)),
            IpNetwork::V6(n) => self.v6.get(&v6_key(n)),
        }
    }

    pub fn get_mut(&mut self, p: &IpNetwork) -> Option<&mut V> {
        match *p {
            IpNetwork::V4(n) => self.v4.get_mut(&v4_key(n)),
            IpNetwork::V6(n) => self.v6.get_mut(&v6_key(n)),
        }
    }

    pub fn contains_key(&self, p: &IpNetwork) -> bool {
        self.get(p).is_some()
    }

    pub fn insert(&mut self, p: IpNetwork, val: V) -> Option<V> {
        match p {
            IpNetwork::V4(n) => self.v4.insert(v4_key(n), val),
            IpNetwork::V6(n) => self.v6.insert(v6_key(n), val),
        }
    }

    /// See [`ChunkMap::get_or_insert_with`].
    pub fn get_or_insert_with(&mut self, p: IpNetwork, make: impl FnOnce() -> V) -> (&mut V, bool) {
        match p {
            IpNetwork::V4(n) => self.v4.get_or_insert_with(v4_key(n), make),
            IpNetwork::V6(n) => self.v6.get_or_insert_with(v6_key(n), make),
        }
    }

    pub fn remove(&mut self, p: &IpNetwork) -> Option<V> {
        match *p {
            IpNetwork::V4(n) => self.v4.remove(&v4_key(n)),
            IpNetwork::V6(n) => self.v6.remove(&v6_key(n)),
        }
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(IpNetwork, &mut V) -> bool) {
        self.v4.retain(|k, v| keep(IpNetwork::V4(v4_net(*k)), v));
        self.v6.retain(|k, v| keep(IpNetwork::V6(v6_net(*k)), v));
    }

    /// Every entry in prefix order (IPv4 first).
    pub fn iter(&self) -> impl Iterator<Item = (IpNetwork, &V)> + '_ {
        let v4 = self.v4.iter().map(|(k, v)| (IpNetwork::V4(v4_net(*k)), v));
        let v6 = self.v6.iter().map(|(k, v)| (IpNetwork::V6(v6_net(*k)), v));
        v4.chain(v6)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (IpNetwork, &mut V)> + '_ {
        let v4 = self
            .v4
            .iter_mut()
            .map(|(k, v)| (IpNetwork::V4(v4_net(*k)), v));
        let v6 = self
            .v6
            .iter_mut()
            .map(|(k, v)| (IpNetwork::V6(v6_net(*k)), v));
        v4.chain(v6)
    }

    pub fn keys(&self) -> impl Iterator<Item = IpNetwork> + '_ {
        self.iter().map(|(p, _)| p)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.v4.values().chain(self.v6.values())
    }

    /// The entries, consuming the map.
    pub fn into_entries(self) -> impl Iterator<Item = (IpNetwork, V)> {
        let v4 = self
            .v4
            .into_entries()
            .map(|(k, v)| (IpNetwork::V4(v4_net(k)), v));
        let v6 = self
            .v6
            .into_entries()
            .map(|(k, v)| (IpNetwork::V6(v6_net(k)), v));
        v4.chain(v6)
    }
}

impl<V> FromIterator<(IpNetwork, V)> for PrefixMap<V> {
    fn from_iter<I: IntoIterator<Item = (IpNetwork, V)>>(items: I) -> Self {
        let mut map = PrefixMap::new();
        for (p, v) in items {
            map.insert(p, v);
        }
        map
    }
}

#[cfg(test)]
mod tests;
