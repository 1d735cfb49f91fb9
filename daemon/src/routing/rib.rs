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

use std::collections::btree_map::Entry as MapEntry;
use std::collections::BTreeMap;
use std::mem::discriminant;
use std::sync::Arc;

use ipnetwork::IpNetwork;

use crate::dataplane::fib::{Fib, FibChange};
use crate::dataplane::NextHop;

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

impl Candidate {
    fn preference(&self) -> (u8, u32, RouteSource) {
        (self.source.admin_distance(), self.metric, self.source)
    }
}

/// The best route of a prefix changed: `old` was installed, `new` is now (either may be
/// absent). Emitted once per prefix per call, only when something differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RibChange {
    pub prefix: IpNetwork,
    pub old: Option<Candidate>,
    pub new: Option<Candidate>,
}

/// Clears host bits so the RIB and the FIB agree on what a prefix is.
fn normalize(prefix: IpNetwork) -> IpNetwork {
    IpNetwork::new(prefix.network(), prefix.prefix()).unwrap_or(prefix)
}

pub struct Rib {
    fib: Arc<Fib>,
    /// Candidates per prefix, most preferred first; never an empty vector.
    routes: BTreeMap<IpNetwork, Vec<Candidate>>,
    /// FIB changes pushed so far (lets tests check that only differences are pushed).
    pushed: u64,
    /// A copy for "what would change" questions: computes changes, pushes nothing.
    detached: bool,
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
            routes: BTreeMap::new(),
            pushed: 0,
            detached: false,
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
        }
    }

    /// The FIB this RIB writes.
    pub fn fib(&self) -> &Arc<Fib> {
        &self.fib
    }

    /// Withdraws `remove` (by prefix and protocol), then adds `add` (replacing the same
    /// protocol's candidate for the prefix), pushes the resulting best-route differences
    /// to the FIB as one batch, and returns them.
    pub fn update(
        &mut self,
        add: Vec<Candidate>,
        remove: Vec<(IpNetwork, RouteSource)>,
    ) -> Vec<RibChange> {
        let mut before = BTreeMap::new();
        for (prefix, source) in remove {
            self.withdraw(normalize(prefix), source, &mut before);
        }
        for c in add {
            self.offer(c, &mut before);
        }
        self.commit(before)
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
            .filter(|(p, cs)| {
                !wanted.contains_key(*p) && cs.iter().any(|c| c.source.same_protocol(source))
            })
            .map(|(p, _)| *p)
            .collect();
        let mut before = BTreeMap::new();
        for p in stale {
            self.withdraw(p, source, &mut before);
        }
        for c in wanted.into_values() {
            self.offer(c, &mut before);
        }
        self.commit(before)
    }

    /// Every candidate, by prefix, most preferred first within a prefix.
    pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.routes.values().flatten()
    }

    /// The selected route for exactly `prefix` (host bits ignored).
    pub fn best(&self, prefix: IpNetwork) -> Option<&Candidate> {
        self.routes.get(&normalize(prefix))?.first()
    }

    /// The selected route of every prefix, sorted by prefix.
    pub fn best_routes(&self) -> impl Iterator<Item = &Candidate> {
        self.routes.values().filter_map(|cs| cs.first())
    }

    /// Number of prefixes with at least one candidate.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    fn withdraw(
        &mut self,
        prefix: IpNetwork,
        source: RouteSource,
        before: &mut BTreeMap<IpNetwork, Option<Candidate>>,
    ) {
        // One search of the (large) table per prefix: the entry serves the note too.
        match self.routes.entry(prefix) {
            MapEntry::Occupied(mut o) => {
                if let MapEntry::Vacant(v) = before.entry(prefix) {
                    v.insert(o.get().first().cloned());
                }
                o.get_mut().retain(|c| !c.source.same_protocol(source));
                if o.get().is_empty() {
                    o.remove();
                }
            }
            MapEntry::Vacant(_) => {
                before.entry(prefix).or_insert(None);
            }
        }
    }

    fn offer(&mut self, mut c: Candidate, before: &mut BTreeMap<IpNetwork, Option<Candidate>>) {
        c.prefix = normalize(c.prefix);
        // One search of the (large) table per prefix: the entry serves the note too
        // (an empty vector just inserted means "nothing before").
        let cs = self.routes.entry(c.prefix).or_default();
        if let MapEntry::Vacant(v) = before.entry(c.prefix) {
            v.insert(cs.first().cloned());
        }
        if cs.contains(&c) {
            return;
        }
        cs.retain(|o| !o.source.same_protocol(c.source));
        let at = cs.partition_point(|o| o.preference() <= c.preference());
        cs.insert(at, c);
    }

    /// Compares each touched prefix's best route with what it was, pushes the next-hop
    /// differences to the FIB in one batch, and reports the best-route differences.
    fn commit(&mut self, before: BTreeMap<IpNetwork, Option<Candidate>>) -> Vec<RibChange> {
        let mut changes = Vec::new();
        let mut batch = Vec::new();
        for (prefix, old) in before {
            let new = self.routes.get(&prefix).and_then(|cs| cs.first()).cloned();
            if old == new {
                continue;
            }
            let old_nh = old.as_ref().map(|c| &c.next_hop);
            let new_nh = new.as_ref().map(|c| &c.next_hop);
            if old_nh != new_nh {
                batch.push(match new_nh {
                    Some(nh) => FibChange::Upsert(prefix, nh.clone()),
                    None => FibChange::Remove(prefix),
                });
            }
            changes.push(RibChange { prefix, old, new });
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
        assert_eq!(changes[0].old, None);
        assert_eq!(
            r.best(net("10.0.0.0/8")).map(|c| c.source),
            Some(RouteSource::Static)
        );
        assert_eq!(
            fib_tunnel(&r, "10.1.1.1"),
            Some(Egress::Tunnel(TunnelId(3)))
        );
        assert_eq!(r.candidates().count(), 3);

        // Same protocol replaces: a lower OSPF metric does not beat static...
        r.update(vec![cand("10.0.0.0/8", RouteSource::Ospf, 4, 1)], vec![]);
        assert_eq!(r.candidates().count(), 3);
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
        assert_eq!(r.candidates().count(), 2);
        assert_eq!(r.best(net("10.0.0.0/8")).map(|c| c.source), Some(EBGP));
        assert_fib_reflects_rib(&r);
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
                .filter(|c| c.source == RouteSource::Ospf)
                .count(),
            1
        );
        assert_fib_reflects_rib(&r);

        // Empty set withdraws everything static.
        r.replace_source(RouteSource::Static, vec![]);
        assert!(r.candidates().all(|c| c.source == RouteSource::Ospf));
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
        assert_eq!(r.best(net("10.1.0.0/16")).map(|c| &c.next_hop), Some(&ecmp));
        assert_eq!(r.best(net("10.1.9.9/16")).map(|c| c.metric), Some(20));
        assert_fib_reflects_rib(&r);
        r.update(vec![], vec![(net("10.1.0.0/16"), RouteSource::Ospf)]);
        assert!(r.is_empty());
        assert!(r.fib().is_empty());
    }
}
