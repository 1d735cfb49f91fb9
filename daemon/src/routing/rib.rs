//! The RIB: every candidate route with its source, the best one per prefix, and the
//! differences pushed to the FIB.
//!
//! Owns route selection only. Protocols own their own decision processes (a BGP speaker
//! hands over its best path, OSPF its SPF result, each ECMP set already built as one
//! [`NextHop::Ecmp`] candidate); the FIB owns lookups. The RIB is owned by one task and
//! not shared; the FIB it writes is.
//!
//! Selection: lowest administrative distance, then lowest metric (then a fixed order of
//! sources, so the choice never depends on arrival order). Distances follow the common
//! router defaults:
//!
//! | source     | distance |
//! | ---------- | -------- |
//! | connected  | 0        |
//! | static     | 1        |
//! | eBGP       | 20       |
//! | OSPF       | 110      |
//! | iBGP       | 200      |
//!
//! A candidate is keyed by (prefix, protocol): a new candidate from the same protocol for
//! the same prefix replaces the old one, and eBGP and iBGP are the same protocol (BGP has
//! one best path per prefix).

use std::collections::BTreeMap;
use std::mem::discriminant;
use std::sync::Arc;

use ipnetwork::IpNetwork;

use crate::dataplane::fib::{Fib, FibChange, Interner};
use crate::dataplane::NextHop;
use crate::prefix_map::PrefixMap;

/// Where a candidate route came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteSource {
    Connected,
    Static,
    Ospf,
    Bgp { ebgp: bool },
}

impl RouteSource {
    /// Administrative distance: lower is preferred.
    pub fn admin_distance(self) -> u8 {
        match self {
            RouteSource::Connected => 0,
            RouteSource::Static => 1,
            RouteSource::Bgp { ebgp: true } => 20,
            RouteSource::Ospf => 110,
            RouteSource::Bgp { ebgp: false } => 200,
        }
    }

    /// The name the API shows: connected, static, ospf, ebgp, ibgp.
    pub fn name(self) -> &'static str {
        match self {
            RouteSource::Connected => "connected",
            RouteSource::Static => "static",
            RouteSource::Ospf => "ospf",
            RouteSource::Bgp { ebgp: true } => "ebgp",
            RouteSource::Bgp { ebgp: false } => "ibgp",
        }
    }

    /// True if both come from the same protocol (so replace each other).
    pub fn same_protocol(self, other: RouteSource) -> bool {
        discriminant(&self) == discriminant(&other)
    }
}

/// One route offered by one source.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub prefix: IpNetwork,
    pub source: RouteSource,
    pub next_hop: NextHop,
    /// Compared only between candidates of equal distance.
    pub metric: u32,
}

/// The best route of a prefix changed: `new` is installed now (None: the prefix has no
/// route left). Emitted once per prefix per call, only when something differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RibChange {
    pub prefix: IpNetwork,
    pub new: Option<Candidate>,
}

/// Clears host bits so the RIB and the FIB agree on what a prefix is.
fn normalize(prefix: IpNetwork) -> IpNetwork {
    IpNetwork::new(prefix.network(), prefix.prefix()).unwrap_or(prefix)
}

/// A candidate as the table keeps it: its prefix is the table's key, not repeated, and
/// its next hop an index into the RIB's next-hop table (a full table has a handful of
/// next hops for a million prefixes): 12 bytes, copied freely, compared as integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Offer {
    source: RouteSource,
    metric: u32,
    /// Holds one reference in [`Rib::next_hops`] while in the table.
    next_hop: u32,
}

impl Offer {
    fn preference(&self) -> (u8, u32, RouteSource) {
        (self.source.admin_distance(), self.metric, self.source)
    }
}

/// The candidates of one prefix, most preferred first; never empty. Almost every prefix
/// of a big table has exactly one (a BGP full table), which is kept inline: no heap
/// allocation per prefix, and the rare list is boxed so that the inline case stays 16
/// bytes.
#[derive(Clone, Debug)]
enum Candidates {
    One(Offer),
    /// Two or more. Boxed: a bare `Vec` (24 bytes) would make every inline candidate 32.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Offer>>),
}

impl Candidates {
    fn as_slice(&self) -> &[Offer] {
        match self {
            Candidates::One(o) => std::slice::from_ref(o),
            Candidates::Many(v) => v,
        }
    }

    fn best(&self) -> &Offer {
        // Never empty (see the type).
        &self.as_slice()[0]
    }

    fn has_protocol(&self, source: RouteSource) -> bool {
        self.as_slice()
            .iter()
            .any(|o| o.source.same_protocol(source))
    }

    /// Adds `offer`, replacing the candidate of the same protocol, in preference order.
    /// Returns the replaced candidate's next hop (its reference is the caller's to drop).
    fn offer(&mut self, offer: Offer) -> Option<u32> {
        let mut all = match std::mem::replace(self, Candidates::One(offer)) {
            Candidates::One(o) if o.source.same_protocol(offer.source) => {
                return Some(o.next_hop);
            }
            Candidates::One(o) => Box::new(vec![o]),
            Candidates::Many(v) => v,
        };
        let replaced = all
            .iter()
            .position(|o| o.source.same_protocol(offer.source))
            .map(|i| all.remove(i).next_hop);
        if all.is_empty() {
            return replaced;
        }
        let at = all.partition_point(|o| o.preference() <= offer.preference());
        all.insert(at, offer);
        *self = Candidates::Many(all);
        replaced
    }

    /// Removes the candidate of `source`'s protocol: its next hop (the reference is the
    /// caller's to drop) and whether any candidate is left (if not, the caller drops the
    /// prefix). None if the protocol had no candidate here.
    fn withdraw(&mut self, source: RouteSource) -> Option<(u32, bool)> {
        match self {
            Candidates::One(o) => o
                .source
                .same_protocol(source)
                .then_some((o.next_hop, false)),
            Candidates::Many(v) => {
                let i = v.iter().position(|o| o.source.same_protocol(source))?;
                let gone = v.remove(i).next_hop;
                if v.len() == 1 {
                    *self = Candidates::One(v[0]);
                }
                Some((gone, true))
            }
        }
    }
}

/// Ordered: a full table arrives in prefix order (BGP UPDATEs), and the search then
/// stays in one run of the map from one prefix to the next; a hash table (tried, seeded
/// multiply-fold hash) took 20% longer to load 1.2M prefixes than a `BTreeMap` at the
/// same memory, every prefix a cache miss. `PrefixMap` packs the in-order load.
type Table = PrefixMap<Candidates>;

// What a prefix of a full table costs in the RIB besides its key.
const _: () = assert!(std::mem::size_of::<Candidates>() <= 16);

/// One touch of a prefix by a call: its best route just before and just after. A call
/// may touch a prefix more than once; its change is from the first `before` to the last
/// `after` (see [`Rib::commit`]). Keeping `after` spares commit a second search of the
/// table per prefix.
struct Note {
    prefix: IpNetwork,
    before: Option<Offer>,
    after: Option<Offer>,
}

type Notes = Vec<Note>;

pub struct Rib {
    fib: Arc<Fib>,
    /// Candidates per prefix.
    routes: Table,
    /// FIB changes pushed so far (lets tests check that only differences are pushed).
    pushed: u64,
    /// A copy for "what would change" questions: computes changes, pushes nothing.
    detached: bool,
    /// The next hops the candidates refer to, by index, with reference counts.
    next_hops: Interner,
}

impl std::fmt::Debug for Rib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rib")
            .field("prefixes", &self.routes.len())
            .finish()
    }
}

impl Rib {
    pub fn new(fib: Arc<Fib>) -> Rib {
        Rib {
            fib,
            routes: Table::new(),
            pushed: 0,
            detached: false,
            next_hops: Interner::default(),
        }
    }

    /// A copy that reports the same changes for the same updates but never writes the
    /// FIB: what an update *would* change (config dry runs). Costs a copy of every
    /// candidate.
    pub fn detached_copy(&self) -> Rib {
        Rib {
            fib: Arc::clone(&self.fib),
            routes: self.routes.clone(),
            pushed: self.pushed,
            detached: true,
            next_hops: self.next_hops.clone(),
        }
    }

    /// The FIB this RIB writes.
    pub fn fib(&self) -> &Arc<Fib> {
        &self.fib
    }

    /// Withdraws `remove` (by prefix and protocol), then adds `add` (replacing the same
    /// protocol's candidate for the prefix), pushes the resulting best-route differences
    /// to the FIB as one batch, and returns them (in prefix order).
    pub fn update(
        &mut self,
        add: Vec<Candidate>,
        remove: Vec<(IpNetwork, RouteSource)>,
    ) -> Vec<RibChange> {
        let mut notes = Notes::with_capacity(add.len() + remove.len());
        let mut released = Vec::new();
        for (prefix, source) in remove {
            self.withdraw(normalize(prefix), source, &mut notes, &mut released);
        }
        for c in add {
            self.offer(c, &mut notes, &mut released);
        }
        self.commit(notes, released)
    }

    /// Makes `candidates` the complete set from `source`'s protocol: what is missing is
    /// withdrawn, what is new or different is offered, what is equal is left alone.
    /// Candidates of another protocol in the list are ignored.
    pub fn replace_source(
        &mut self,
        source: RouteSource,
        candidates: Vec<Candidate>,
    ) -> Vec<RibChange> {
        let mut wanted: BTreeMap<IpNetwork, Candidate> = BTreeMap::new();
        for mut c in candidates {
            if !c.source.same_protocol(source) {
                tracing::warn!(prefix = %c.prefix, ?source, other = ?c.source,
                    "candidate of another protocol ignored in replace_source");
                continue;
            }
            c.prefix = normalize(c.prefix);
            wanted.insert(c.prefix, c);
        }
        let stale: Vec<IpNetwork> = self
            .routes
            .iter()
            .filter(|(p, cs)| !wanted.contains_key(p) && cs.has_protocol(source))
            .map(|(p, _)| p)
            .collect();
        let mut notes = Notes::with_capacity(stale.len() + wanted.len());
        let mut released = Vec::new();
        for p in stale {
            self.withdraw(p, source, &mut notes, &mut released);
        }
        for c in wanted.into_values() {
            self.offer(c, &mut notes, &mut released);
        }
        self.commit(notes, released)
    }

    /// Every candidate, sorted by prefix, the selected one first within a prefix.
    pub fn candidates(&self) -> Vec<Candidate> {
        self.routes
            .iter()
            .flat_map(|(p, cs)| cs.as_slice().iter().map(move |o| self.candidate(p, o)))
            .collect()
    }

    /// The selected route for exactly `prefix` (host bits ignored).
    pub fn best(&self, prefix: IpNetwork) -> Option<Candidate> {
        let prefix = normalize(prefix);
        Some(self.candidate(prefix, self.routes.get(&prefix)?.best()))
    }

    /// The selected route of every prefix, sorted by prefix.
    pub fn best_routes(&self) -> impl Iterator<Item = Candidate> + '_ {
        self.routes
            .iter()
            .map(|(p, cs)| self.candidate(p, cs.best()))
    }

    /// Number of prefixes with at least one candidate.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    fn next_hop(&self, i: u32) -> NextHop {
        // Every offer in the table holds a reference on its index.
        self.next_hops
            .next_hop(i)
            .cloned()
            .unwrap_or(NextHop::Blackhole)
    }

    fn candidate(&self, prefix: IpNetwork, o: &Offer) -> Candidate {
        Candidate {
            prefix,
            source: o.source,
            next_hop: self.next_hop(o.next_hop),
            metric: o.metric,
        }
    }

    fn withdraw(
        &mut self,
        prefix: IpNetwork,
        source: RouteSource,
        notes: &mut Notes,
        released: &mut Vec<u32>,
    ) {
        let Some(cs) = self.routes.get_mut(&prefix) else {
            notes.push(Note {
                prefix,
                before: None,
                after: None,
            });
            return;
        };
        let before = Some(*cs.best());
        let after = match cs.withdraw(source) {
            None => before,
            Some((nh, left)) => {
                released.push(nh);
                if left {
                    Some(*cs.best())
                } else {
                    // The map's last-used run is this prefix's: no second full search.
                    self.routes.remove(&prefix);
                    None
                }
            }
        };
        notes.push(Note {
            prefix,
            before,
            after,
        });
    }

    fn offer(&mut self, c: Candidate, notes: &mut Notes, released: &mut Vec<u32>) {
        let prefix = normalize(c.prefix);
        let Some(next_hop) = self.next_hops.acquire(&c.next_hop) else {
            tracing::error!(%prefix, "RIB next-hop table full; route not installed");
            return;
        };
        let offer = Offer {
            source: c.source,
            metric: c.metric,
            next_hop,
        };
        // One search of the (large) table per prefix: the entry serves the note too.
        let (cs, inserted) = self
            .routes
            .get_or_insert_with(prefix, || Candidates::One(offer));
        let before = if inserted {
            None
        } else {
            let before = Some(*cs.best());
            if cs.as_slice().contains(&offer) {
                released.push(next_hop);
            } else if let Some(replaced) = cs.offer(offer) {
                released.push(replaced);
            }
            before
        };
        notes.push(Note {
            prefix,
            before,
            after: Some(*cs.best()),
        });
    }

    /// Compares each touched prefix's best route with what it was, pushes the next-hop
    /// differences to the FIB in one batch, and reports the best-route differences in
    /// prefix order. Then drops the references in `released`: only now, so that no index
    /// freed during the call was handed out again and compared as equal in the notes.
    fn commit(&mut self, mut notes: Notes, released: Vec<u32>) -> Vec<RibChange> {
        // A BGP UPDATE's prefixes mostly come sorted and distinct: then there is nothing
        // to sort or merge.
        if !notes.is_sorted_by(|a, b| a.prefix < b.prefix) {
            // Stable, so that a prefix's notes stay in call order: its first `before`
            // and last `after` are the change.
            notes.sort_by_key(|n| n.prefix);
            notes.dedup_by(|later, kept| {
                if later.prefix != kept.prefix {
                    return false;
                }
                kept.after = later.after.take();
                true
            });
        }
        let mut changes = Vec::new();
        let mut batch = Vec::new();
        for Note {
            prefix,
            before,
            after,
        } in notes
        {
            if before == after {
                continue;
            }
            let new = after.map(|o| self.candidate(prefix, &o));
            if before.map(|o| o.next_hop) != after.map(|o| o.next_hop) {
                batch.push(match &new {
                    Some(c) => FibChange::Upsert(prefix, c.next_hop.clone()),
                    None => FibChange::Remove(prefix),
                });
            }
            changes.push(RibChange { prefix, new });
        }
        for i in released {
            self.next_hops.release(i);
        }
        if !batch.is_empty() && !self.detached {
            self.pushed += batch.len() as u64;
            self.fib.apply(batch);
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{Egress, TunnelId};

    fn net(s: &str) -> IpNetwork {
        s.parse().expect("test prefix")
    }

    fn cand(prefix: &str, source: RouteSource, tunnel: u32, metric: u32) -> Candidate {
        Candidate {
            prefix: net(prefix),
            source,
            next_hop: NextHop::Tunnel(TunnelId(tunnel)),
            metric,
        }
    }

    fn rib() -> Rib {
        Rib::new(Arc::new(Fib::new()))
    }

    fn fib_tunnel(r: &Rib, addr: &str) -> Option<Egress> {
        r.fib().lookup(addr.parse().expect("test address"), 0)
    }

    /// The FIB holds exactly the RIB's best next hops.
    fn assert_fib_reflects_rib(r: &Rib) {
        let want: Vec<(IpNetwork, NextHop)> = r
            .best_routes()
            .map(|c| (c.prefix, c.next_hop.clone()))
            .collect();
        assert_eq!(r.fib().entries(), want);
    }

    const EBGP: RouteSource = RouteSource::Bgp { ebgp: true };
    const IBGP: RouteSource = RouteSource::Bgp { ebgp: false };

    #[test]
    fn distances_are_ordered() {
        use RouteSource::*;
        let order = [Connected, Static, EBGP, Ospf, IBGP];
        for w in order.windows(2) {
            assert!(w[0].admin_distance() < w[1].admin_distance(), "{w:?}");
        }
    }

    #[test]
    fn detached_copy_reports_the_same_changes_and_leaves_the_fib_alone() {
        let mut r = rib();
        r.update(vec![cand("10.0.0.0/8", RouteSource::Ospf, 1, 10)], vec![]);
        let update = || {
            (
                vec![
                    cand("10.0.0.0/8", RouteSource::Static, 2, 0),
                    cand("10.9.0.0/16", RouteSource::Static, 3, 0),
                ],
                vec![],
            )
        };
        let mut copy = r.detached_copy();
        let (add, remove) = update();
        let predicted = copy.update(add, remove);
        // The FIB still holds the original RIB's routes only.
        assert_fib_reflects_rib(&r);
        assert_eq!(r.fib().len(), 1);
        let (add, remove) = update();
        assert_eq!(r.update(add, remove), predicted);
        assert_fib_reflects_rib(&r);
    }

    #[test]
    fn best_by_distance_then_metric() {
        let mut r = rib();
        let changes = r.update(
            vec![
                cand("10.0.0.0/8", IBGP, 1, 0),
                cand("10.0.0.0/8", RouteSource::Ospf, 2, 50),
                cand("10.0.0.0/8", RouteSource::Static, 3, 7),
            ],
            vec![],
        );
        assert_eq!(changes.len(), 1, "one change per prefix per call");
        assert!(changes[0].new.is_some());
        assert_eq!(
            r.best(net("10.0.0.0/8")).map(|c| c.source),
            Some(RouteSource::Static)
        );
        assert_eq!(
            fib_tunnel(&r, "10.1.1.1"),
            Some(Egress::Tunnel(TunnelId(3)))
        );
        assert_eq!(r.candidates().len(), 3);

        // Same protocol replaces: a lower OSPF metric does not beat static...
        r.update(vec![cand("10.0.0.0/8", RouteSource::Ospf, 4, 1)], vec![]);
        assert_eq!(r.candidates().len(), 3);
        assert_eq!(
            r.best(net("10.0.0.0/8")).map(|c| c.source),
            Some(RouteSource::Static)
        );
        // ...but metric decides within equal distance (eBGP and iBGP are one protocol,
        // so an eBGP path replaces the iBGP one and wins on distance over OSPF).
        r.update(vec![], vec![(net("10.0.0.0/8"), RouteSource::Static)]);
        assert_eq!(
            fib_tunnel(&r, "10.1.1.1"),
            Some(Egress::Tunnel(TunnelId(4)))
        );
        r.update(vec![cand("10.0.0.0/8", EBGP, 5, 100)], vec![]);
        assert_eq!(r.candidates().len(), 2);
        assert_eq!(r.best(net("10.0.0.0/8")).map(|c| c.source), Some(EBGP));
        assert_fib_reflects_rib(&r);
    }

    /// The last route over one next hop goes and a route over another comes in the same
    /// call: the freed index must not be handed to the new next hop and mistaken for the
    /// old one (the FIB would keep the old tunnel).
    #[test]
    fn next_hop_replaced_in_one_call_reaches_the_fib() {
        let mut r = rib();
        r.update(vec![cand("10.0.0.0/8", RouteSource::Ospf, 1, 10)], vec![]);
        let changes = r.update(
            vec![cand("10.0.0.0/8", RouteSource::Static, 2, 0)],
            vec![(net("10.0.0.0/8"), RouteSource::Ospf)],
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(
            fib_tunnel(&r, "10.1.1.1"),
            Some(Egress::Tunnel(TunnelId(2)))
        );
        assert_fib_reflects_rib(&r);
        // Each next hop is let go with its last route.
        r.update(vec![], vec![(net("10.0.0.0/8"), RouteSource::Static)]);
        assert!(r.is_empty());
        assert_eq!(r.next_hops.next_hop(0), None);
        assert_eq!(r.next_hops.next_hop(1), None);
    }

    #[test]
    fn withdrawal_falls_back_to_next_best() {
        let mut r = rib();
        r.update(
            vec![
                cand("192.0.2.0/24", RouteSource::Connected, 1, 0),
                cand("192.0.2.0/24", RouteSource::Ospf, 2, 10),
                cand("2001:db8::/32", RouteSource::Static, 3, 0),
                cand("2001:db8::/32", IBGP, 4, 0),
            ],
            vec![],
        );
        let changes = r.update(
            vec![],
            vec![
                (net("192.0.2.0/24"), RouteSource::Connected),
                (net("2001:db8::/32"), RouteSource::Static),
            ],
        );
        assert_eq!(changes.len(), 2);
        assert_eq!(
            fib_tunnel(&r, "192.0.2.9"),
            Some(Egress::Tunnel(TunnelId(2)))
        );
        assert_eq!(
            fib_tunnel(&r, "2001:db8::9"),
            Some(Egress::Tunnel(TunnelId(4)))
        );
        assert_fib_reflects_rib(&r);

        // Last candidate gone: the prefix leaves the RIB and the FIB.
        let changes = r.update(vec![], vec![(net("192.0.2.0/24"), RouteSource::Ospf)]);
        assert_eq!(changes[0].new, None);
        assert_eq!(r.best(net("192.0.2.0/24")), None);
        assert_eq!(fib_tunnel(&r, "192.0.2.9"), None);
        // Withdrawing what is not there changes nothing.
        assert!(r
            .update(vec![], vec![(net("198.51.100.0/24"), RouteSource::Ospf)])
            .is_empty());
        assert_fib_reflects_rib(&r);
    }

    #[test]
    fn replace_source_touches_only_differences() {
        let mut r = rib();
        let statics = |ids: &[(u8, u32)]| -> Vec<Candidate> {
            ids.iter()
                .map(|&(n, t)| cand(&format!("10.{n}.0.0/16"), RouteSource::Static, t, 0))
                .collect()
        };
        r.update(vec![cand("10.3.0.0/16", RouteSource::Ospf, 9, 5)], vec![]);
        let changes = r.replace_source(RouteSource::Static, statics(&[(1, 1), (2, 2), (3, 3)]));
        assert_eq!(changes.len(), 3);
        let pushed = r.pushed;

        // Same set again: nothing changes, nothing is pushed.
        assert!(r
            .replace_source(RouteSource::Static, statics(&[(1, 1), (2, 2), (3, 3)]))
            .is_empty());
        assert_eq!(r.pushed, pushed);

        // 1 unchanged, 2 re-pointed, 3 dropped (OSPF takes over), 4 new.
        let changes = r.replace_source(RouteSource::Static, statics(&[(1, 1), (2, 7), (4, 4)]));
        let touched: Vec<IpNetwork> = changes.iter().map(|c| c.prefix).collect();
        assert_eq!(
            touched,
            vec![net("10.2.0.0/16"), net("10.3.0.0/16"), net("10.4.0.0/16")]
        );
        assert_eq!(r.pushed, pushed + 3);
        assert_eq!(
            fib_tunnel(&r, "10.3.0.1"),
            Some(Egress::Tunnel(TunnelId(9)))
        );
        assert_eq!(
            fib_tunnel(&r, "10.2.0.1"),
            Some(Egress::Tunnel(TunnelId(7)))
        );
        // Other protocols' candidates are untouched.
        assert_eq!(
            r.candidates()
                .iter()
                .filter(|c| c.source == RouteSource::Ospf)
                .count(),
            1
        );
        assert_fib_reflects_rib(&r);

        // Empty set withdraws everything static.
        r.replace_source(RouteSource::Static, vec![]);
        assert!(r.candidates().iter().all(|c| c.source == RouteSource::Ospf));
        assert_fib_reflects_rib(&r);
    }

    #[test]
    fn best_change_with_same_next_hop_is_reported_but_not_pushed() {
        let mut r = rib();
        r.update(vec![cand("10.0.0.0/8", RouteSource::Ospf, 1, 10)], vec![]);
        let pushed = r.pushed;
        let changes = r.update(vec![cand("10.0.0.0/8", RouteSource::Static, 1, 0)], vec![]);
        assert_eq!(changes.len(), 1);
        assert_eq!(r.pushed, pushed);
        assert_fib_reflects_rib(&r);
    }

    #[test]
    fn prefixes_are_normalized_and_ecmp_passes_through() {
        let mut r = rib();
        let ecmp = NextHop::Ecmp(vec![TunnelId(1), TunnelId(2)]);
        r.update(
            vec![Candidate {
                prefix: net("10.1.2.3/16"),
                source: RouteSource::Ospf,
                next_hop: ecmp.clone(),
                metric: 20,
            }],
            vec![],
        );
        assert_eq!(
            r.best(net("10.1.0.0/16")).map(|c| c.next_hop),
            Some(ecmp.clone())
        );
        assert_eq!(r.best(net("10.1.9.9/16")).map(|c| c.metric), Some(20));
        assert_fib_reflects_rib(&r);
        r.update(vec![], vec![(net("10.1.0.0/16"), RouteSource::Ospf)]);
        assert!(r.is_empty());
        assert!(r.fib().is_empty());
    }

    #[test]
    fn a_prefix_touched_twice_in_one_call_is_reported_once_against_its_state_before() {
        let mut r = rib();
        r.update(
            vec![
                cand("10.2.0.0/16", RouteSource::Ospf, 1, 10),
                cand("10.1.0.0/16", RouteSource::Ospf, 1, 10),
            ],
            vec![],
        );
        // Withdrawn then offered again, and another prefix offered twice: each prefix
        // once, in prefix order, with its route at the end of the call.
        let changes = r.update(
            vec![
                cand("10.9.0.0/16", RouteSource::Static, 3, 0),
                cand("10.2.0.0/16", RouteSource::Ospf, 2, 10),
                cand("10.9.0.0/16", RouteSource::Static, 4, 0),
            ],
            vec![(net("10.2.0.0/16"), RouteSource::Ospf)],
        );
        let seen: Vec<(IpNetwork, Option<NextHop>)> = changes
            .iter()
            .map(|c| (c.prefix, c.new.as_ref().map(|n| n.next_hop.clone())))
            .collect();
        assert_eq!(
            seen,
            vec![
                (net("10.2.0.0/16"), Some(NextHop::Tunnel(TunnelId(2)))),
                (net("10.9.0.0/16"), Some(NextHop::Tunnel(TunnelId(4)))),
            ]
        );
        // Offered and withdrawn in one call: nothing before, nothing after, no change.
        let changes = r.update(
            vec![cand("10.7.0.0/16", RouteSource::Ospf, 1, 1)],
            vec![(net("10.7.0.0/16"), RouteSource::Ospf)],
        );
        assert_eq!(changes.len(), 1, "withdrawals go first, so the offer stays");
        assert_fib_reflects_rib(&r);
    }

    #[test]
    fn candidates_grow_past_one_and_shrink_back_in_any_order() {
        let sources = [RouteSource::Static, RouteSource::Ospf, IBGP];
        // Every order of adding and of withdrawing three protocols' candidates.
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for add in orders {
            for remove in orders {
                let mut r = rib();
                for &i in &add {
                    r.update(
                        vec![cand("10.0.0.0/8", sources[i], i as u32 + 1, 5)],
                        vec![],
                    );
                }
                let listed: Vec<RouteSource> = r.candidates().iter().map(|c| c.source).collect();
                assert_eq!(listed, sources, "preference order after adding {add:?}");
                let mut left: Vec<usize> = vec![0, 1, 2];
                for &i in &remove {
                    r.update(vec![], vec![(net("10.0.0.0/8"), sources[i])]);
                    left.retain(|&l| l != i);
                    assert_eq!(
                        r.best(net("10.0.0.0/8")).map(|c| c.source),
                        left.first().map(|&l| sources[l]),
                        "add {add:?} remove {remove:?}"
                    );
                    assert_eq!(r.candidates().len(), left.len());
                    assert_fib_reflects_rib(&r);
                }
                assert!(r.is_empty());
            }
        }
    }

    #[test]
    fn listings_are_sorted_by_prefix_whatever_the_table_order() {
        let mut r = rib();
        let mut add: Vec<Candidate> = (0..=255u32)
            .rev()
            .map(|n| cand(&format!("10.{n}.0.0/16"), RouteSource::Static, n + 1, 0))
            .collect();
        add.push(cand("2001:db8::/32", RouteSource::Static, 1, 0));
        add.push(cand("10.0.0.0/8", RouteSource::Ospf, 1, 0));
        r.update(add, vec![]);
        let best: Vec<IpNetwork> = r.best_routes().map(|c| c.prefix).collect();
        let mut sorted = best.clone();
        sorted.sort();
        assert_eq!(best, sorted);
        assert_eq!(best.len(), 258);
        let all: Vec<IpNetwork> = r.candidates().iter().map(|c| c.prefix).collect();
        assert_eq!(all, sorted);
        assert_fib_reflects_rib(&r);
    }
}
