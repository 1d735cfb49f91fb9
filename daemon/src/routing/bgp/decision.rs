//! Adj-RIB-In per peer and the decision process (RFC 4271 9.1): UPDATEs applied to a
//! peer's table (withdrawals, implicit replacement, RFC 7606 treat-as-withdraw, RFC 6793
//! AS4_PATH merge, AS loop, first-AS and martian next hop checks, LOCAL_PREF ignored from
//! eBGP, RFC 4456 ORIGINATOR_ID and CLUSTER_LIST loop checks), then best path selection
//! per prefix (9.1.2.1 next hop resolvability, 9.1.2.2 tie breaking: local pref, AS path
//! length, origin, MED among routes from the same neighbor AS, eBGP over iBGP, IGP cost
//! to the next hop, router id or ORIGINATOR_ID, shorter CLUSTER_LIST, peer address) and
//! the multipath set for ECMP.
//!
//! Graceful restart (RFC 4724, receiving side): a peer's routes can outlive its session
//! as *stale* ([`Decision::peer_down_graceful`]); they keep competing until the peer
//! refreshes them, its End-of-RIB sweeps the rest ([`Decision::sweep_stale`]), or the
//! instance gives up on it.
//!
//! The output is `crate::routing::rib::Candidate`s with `RouteSource::Bgp { ebgp }`. Next
//! hops are resolved through a caller-supplied function (the FIB/IGP view), so this stays
//! pure; nothing here sends, installs or sleeps. Policy (import/export filters) is not here
//! yet: routes enter post-policy as received.

use super::attr::{AsPath, Family, MpNextHop, Origin, PathAttrs};
use super::message::UpdateRepr;
use crate::dataplane::NextHop;
use crate::prefix_map::PrefixMap;
use crate::routing::rib::{Candidate, RouteSource};
use ipnetwork::IpNetwork;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// RFC 4271 5.1.5: what a route without LOCAL_PREF (or from eBGP) gets.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The facts about a peer the decision process compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub addr: IpAddr,
    pub router_id: Ipv4Addr,
    pub asn: u32,
    pub ebgp: bool,
    /// The session negotiated 4-octet AS; otherwise AS4_PATH is merged in.
    pub four_octet_as: bool,
    /// A route reflection client of ours (RFC 4456; iBGP only).
    pub rr_client: bool,
}

/// This speaker's identity, for the loop checks on receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalIds {
    pub asn: u32,
    /// Routes with this ORIGINATOR_ID are our own, reflected back (RFC 4456 8).
    pub router_id: Option<Ipv4Addr>,
    /// Routes with this in their CLUSTER_LIST went around the cluster (RFC 4456 8).
    pub cluster_id: Option<Ipv4Addr>,
}

/// The family a prefix belongs to.
pub fn family_of(p: &IpNetwork) -> Family {
    match p {
        IpNetwork::V4(_) => Family::Ipv4Unicast,
        IpNetwork::V6(_) => Family::Ipv6Unicast,
    }
}

/// One route as received (post-merge): shared attributes and its next hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub attrs: Arc<PathAttrs>,
    pub next_hop: IpAddr,
}

impl Path {
    fn as_path(&self) -> Option<&AsPath> {
        self.attrs.as_path.as_ref()
    }
}

/// Where a next hop leads and at what IGP cost (None: unresolvable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub next_hop: NextHop,
    pub igp_cost: u32,
    /// The FIB route the next hop matched (None: resolved without the FIB, e.g. the
    /// peer across its tunnel). The instance refuses a resolution through one of its
    /// own routes: a BGP next hop must not depend on BGP.
    pub via: Option<IpNetwork>,
}

/// What an UPDATE did to a peer's table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Prefixes whose entry was added, replaced or removed, in the UPDATE's order (a
    /// prefix both withdrawn and announced may appear twice).
    pub changed: Vec<IpNetwork>,
    /// Announcements refused by the loop, first-AS or next hop checks.
    pub rejected: usize,
}

/// One peer's Adj-RIB-In.
#[derive(Clone, Debug, Default)]
pub struct AdjRibIn {
    /// The prefixes of one UPDATE with one next hop share one `Path`: an entry is the
    /// prefix and a pointer.
    routes: PrefixMap<Arc<Path>>,
    /// Routes kept from a previous session (RFC 4724) and not announced or withdrawn since.
    stale: BTreeSet<IpNetwork>,
}

impl AdjRibIn {
    pub fn len(&self) -> usize {
        self.routes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
    pub fn get(&self, prefix: &IpNetwork) -> Option<&Path> {
        self.routes.get(prefix).map(|p| &**p)
    }
    pub fn iter(&self) -> impl Iterator<Item = (IpNetwork, &Path)> {
        self.routes.iter().map(|(p, path)| (p, &**path))
    }
    /// Whether a prefix's route is stale (graceful restart).
    pub fn is_stale(&self, prefix: &IpNetwork) -> bool {
        self.stale.contains(prefix)
    }
    pub fn stale_len(&self) -> usize {
        self.stale.len()
    }

    /// Applies one UPDATE from `peer`; `local` holds this speaker's AS, router id and
    /// cluster id (loop checks).
    pub fn apply(&mut self, u: &UpdateRepr, peer: &PeerInfo, local: &LocalIds) -> Applied {
        self.apply_from(u, peer, local, false)
    }

    /// [`AdjRibIn::apply`]; `imported`: the UPDATE went through import policy, which
    /// already dropped an eBGP peer's LOCAL_PREF and may have set its own (kept).
    fn apply_from(
        &mut self,
        u: &UpdateRepr,
        peer: &PeerInfo,
        local: &LocalIds,
        imported: bool,
    ) -> Applied {
        let mut out = Applied::default();
        for p in u.withdrawals() {
            self.stale.remove(p);
            if self.routes.remove(p).is_some() {
                out.changed.push(*p);
            }
        }
        let announced = u.announced().count();
        if announced == 0 {
            return out;
        }
        // The prefix lists are this UPDATE's, not the route's: kept, they would make one
        // route differ from the same route announced in another UPDATE, and hold every
        // prefix of the message once more.
        let mut attrs = u.attrs.without_prefixes();
        if !peer.four_octet_as {
            if let (Some(p), Some(p4)) = (&attrs.as_path, &attrs.as4_path) {
                attrs.as_path = Some(p.merge_as4(p4));
            }
            if let (Some(a), Some(a4)) = (attrs.aggregator, attrs.as4_aggregator) {
                if a.asn == u32::from(super::attr::AS_TRANS) {
                    attrs.aggregator = Some(a4);
                }
            }
        }
        attrs.as4_path = None;
        attrs.as4_aggregator = None;
        if peer.ebgp {
            if !imported {
                attrs.local_pref = None;
            }
            // RFC 7606 7.9, 7.10: route reflection attributes from outside are disregarded.
            attrs.originator_id = None;
            attrs.cluster_list.clear();
        }
        let path = attrs.as_path.clone().unwrap_or_default();
        let withdraw = u.faults.withdraws(peer.ebgp);
        // RFC 4271 9.1.2: routes with our own AS are looped; RFC 4271 6.3 / RFC 7606 the
        // first AS of an eBGP route must be the peer's; RFC 4456 8: our own route
        // reflected back, or one that went around our cluster.
        let reflected_loop = (local.router_id.is_some() && attrs.originator_id == local.router_id)
            || local
                .cluster_id
                .is_some_and(|c| attrs.cluster_list.contains(&c));
        let refuse = withdraw
            || path.contains(local.asn)
            || (peer.ebgp && path.first_as() != Some(peer.asn))
            || reflected_loop;
        if refuse && !withdraw {
            out.rejected = announced;
        }
        let attrs = Arc::new(attrs);
        let mp_nh = u.attrs.mp_reach.as_ref().map(|r| match r.next_hop {
            MpNextHop::V4(a) => IpAddr::V4(a),
            // Prefer the global address; a link-local one only when that is all there is.
            MpNextHop::V6 { global, link_local } => {
                if global.is_unspecified() || is_link_local(global) {
                    IpAddr::V6(link_local.unwrap_or(global))
                } else {
                    IpAddr::V6(global)
                }
            }
        });
        let v4_nh = u.attrs.next_hop.map(IpAddr::V4);
        // RFC 4271 6.3 / RFC 7606 7.3: a martian next hop is treat-as-withdraw.
        let path_via = |nh: Option<IpAddr>| {
            nh.filter(|&a| usable_next_hop(a)).map(|next_hop| {
                Arc::new(Path {
                    attrs: attrs.clone(),
                    next_hop,
                })
            })
        };
        let (v4_path, mp_path) = (path_via(v4_nh), path_via(mp_nh));
        let mp_nlri = u.attrs.mp_reach.iter().flat_map(|r| r.nlri.iter());
        let entries = u
            .nlri
            .iter()
            .map(|p| (p, &v4_path))
            .chain(mp_nlri.map(|p| (p, &mp_path)));
        for (prefix, path) in entries {
            self.stale.remove(prefix);
            if path.is_none() && !refuse {
                out.rejected += 1;
            }
            match (refuse, path) {
                (false, Some(new)) => {
                    // One search of the table per prefix.
                    let (slot, inserted) = self.routes.get_or_insert_with(*prefix, || new.clone());
                    if inserted {
                        out.changed.push(*prefix);
                    } else if slot != new {
                        *slot = new.clone();
                        out.changed.push(*prefix);
                    }
                }
                _ => {
                    if self.routes.remove(prefix).is_some() {
                        out.changed.push(*prefix);
                    }
                }
            }
        }
        out
    }

    /// Session down: every route goes. Returns the prefixes that were present.
    pub fn clear(&mut self) -> BTreeSet<IpNetwork> {
        self.stale.clear();
        std::mem::take(&mut self.routes)
            .into_entries()
            .map(|(p, _)| p)
            .collect()
    }

    /// Graceful restart: the routes of `keep` become stale, the others go (returned).
    pub fn mark_stale(&mut self, keep: &[Family]) -> BTreeSet<IpNetwork> {
        let gone: BTreeSet<IpNetwork> = self
            .routes
            .keys()
            .filter(|p| !keep.contains(&family_of(p)))
            .collect();
        for p in &gone {
            self.routes.remove(p);
        }
        self.stale = self.routes.keys().collect();
        gone
    }

    /// Removes the stale routes (of one family, or all); returns their prefixes.
    pub fn sweep_stale(&mut self, family: Option<Family>) -> BTreeSet<IpNetwork> {
        let gone: BTreeSet<IpNetwork> = self
            .stale
            .iter()
            .filter(|p| family.is_none_or(|f| family_of(p) == f))
            .copied()
            .collect();
        for p in &gone {
            self.stale.remove(p);
            self.routes.remove(p);
        }
        gone
    }

    /// Forgets every route that is not stale (a new session starts from these).
    fn keep_only_stale(&mut self) -> BTreeSet<IpNetwork> {
        let stale = &self.stale;
        let gone: BTreeSet<IpNetwork> = self.routes.keys().filter(|p| !stale.contains(p)).collect();
        self.routes.retain(|p, _| stale.contains(&p));
        gone
    }
}

/// Not unspecified, loopback, multicast or broadcast (the receiver's own addresses are
/// the instance's to check: it knows them).
pub fn usable_next_hop(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => {
            !(v.is_unspecified() || v.is_loopback() || v.is_multicast() || v.is_broadcast())
        }
        IpAddr::V6(v) => !(v.is_unspecified() || v.is_loopback() || v.is_multicast()),
    }
}

fn is_link_local(a: std::net::Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Decision process settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionConfig {
    /// Largest ECMP set (1: no multipath).
    pub max_paths: usize,
    /// Let routes from different neighbor ASes share a multipath set (as long as their AS
    /// paths are equally long); otherwise the set needs the best route's neighbor AS.
    pub multipath_relax: bool,
    /// RFC 4456 cluster id when reflecting routes (None: the router id).
    pub cluster_id: Option<Ipv4Addr>,
}

impl Default for DecisionConfig {
    fn default() -> Self {
        DecisionConfig {
            max_paths: 1,
            multipath_relax: false,
            cluster_id: None,
        }
    }
}

/// A route competing in the decision process.
#[derive(Clone, Debug)]
pub struct Contender<'a> {
    pub peer: &'a PeerInfo,
    pub path: &'a Path,
    pub resolved: Resolution,
}

impl Contender<'_> {
    fn local_pref(&self) -> u32 {
        self.path.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)
    }
    fn as_len(&self) -> usize {
        self.path.as_path().map_or(0, AsPath::decision_len)
    }
    fn origin(&self) -> Origin {
        self.path.attrs.origin.unwrap_or(Origin::Incomplete)
    }
    /// RFC 4271 9.1.2.2 c: a missing MED is the lowest value.
    fn med(&self) -> u32 {
        self.path.attrs.med.unwrap_or(0)
    }
    fn neighbor_as(&self) -> Option<u32> {
        self.path.as_path().and_then(AsPath::first_as)
    }
    /// RFC 4456 9: a reflected route competes with its originator's router id.
    fn router_id(&self) -> Ipv4Addr {
        self.path.attrs.originator_id.unwrap_or(self.peer.router_id)
    }

    /// Local pref and steps a, b, d, e of 9.1.2.2 (c, MED, is not a total order and
    /// runs as a filter in [`select`]).
    fn cmp_through_igp(&self, o: &Contender) -> Ordering {
        o.local_pref()
            .cmp(&self.local_pref())
            .then(self.as_len().cmp(&o.as_len()))
            .then(self.origin().cmp(&o.origin()))
            .then(o.peer.ebgp.cmp(&self.peer.ebgp))
            .then(self.resolved.igp_cost.cmp(&o.resolved.igp_cost))
    }

    fn cmp_full(&self, o: &Contender) -> Ordering {
        self.cmp_through_igp(o)
            .then(self.router_id().cmp(&o.router_id()))
            // RFC 4456 9: the shorter CLUSTER_LIST, between steps f and g.
            .then(
                self.path
                    .attrs
                    .cluster_list
                    .len()
                    .cmp(&o.path.attrs.cluster_list.len()),
            )
            .then(self.peer.addr.cmp(&o.peer.addr))
    }
}

/// The result for one prefix: the best route and the ECMP set (best first).
#[derive(Clone, Debug)]
pub struct Selection<'a> {
    pub best: Contender<'a>,
    pub multipath: Vec<Contender<'a>>,
}

/// RFC 4271 9.1.2.2 over a set of resolvable routes for one prefix.
pub fn select<'a>(mut routes: Vec<Contender<'a>>, cfg: DecisionConfig) -> Option<Selection<'a>> {
    // Degree of preference (local pref), then a) shortest AS path, b) lowest origin: keep
    // only the routes tied with the best on these.
    let key = |c: &Contender| (std::cmp::Reverse(c.local_pref()), c.as_len(), c.origin());
    if routes.len() > 1 {
        let top = routes.iter().map(key).min()?;
        routes.retain(|c| key(c) == top);
        // c: drop a route when another from the same neighbor AS has a lower MED.
        let meds: Vec<(Option<u32>, u32)> =
            routes.iter().map(|c| (c.neighbor_as(), c.med())).collect();
        routes.retain(|c| {
            !meds
                .iter()
                .any(|&(asn, med)| asn == c.neighbor_as() && med < c.med())
        });
        routes.sort_by(|a, b| a.cmp_full(b));
    }
    let best = routes.first()?.clone();
    // The ECMP set, in the contenders' own vector (one allocation per prefix, not two:
    // most prefixes have a single route).
    let max = cfg.max_paths.max(1);
    let mut members = 0;
    routes.retain(|c| {
        let same_as = cfg.multipath_relax || c.neighbor_as() == best.neighbor_as();
        let keep = members == 0
            || (members < max && same_as && c.cmp_through_igp(&best) == Ordering::Equal);
        members += usize::from(keep);
        keep
    });
    Some(Selection {
        best,
        multipath: routes,
    })
}

/// The Loc-RIB's inputs: every peer's Adj-RIB-In.
#[derive(Clone, Debug)]
pub struct Decision {
    pub local_as: u32,
    pub config: DecisionConfig,
    /// Our router id (the ORIGINATOR_ID loop check and the default cluster id).
    pub router_id: Option<Ipv4Addr>,
    peers: BTreeMap<IpAddr, (PeerInfo, AdjRibIn)>,
}

impl Decision {
    pub fn new(local_as: u32, config: DecisionConfig) -> Decision {
        Decision {
            local_as,
            config,
            router_id: None,
            peers: BTreeMap::new(),
        }
    }

    /// The cluster id routes are reflected with: configured, else the router id.
    pub fn cluster_id(&self) -> Option<Ipv4Addr> {
        self.config.cluster_id.or(self.router_id)
    }

    fn local_ids(&self) -> LocalIds {
        LocalIds {
            asn: self.local_as,
            router_id: self.router_id,
            cluster_id: self.cluster_id(),
        }
    }

    /// A session came up: the peer starts with an empty table, apart from the stale
    /// routes of a graceful restart. Returns the prefixes that went.
    pub fn peer_up(&mut self, info: PeerInfo) -> BTreeSet<IpNetwork> {
        let addr = info.addr;
        match self.peers.get_mut(&addr) {
            Some((old, table)) => {
                *old = info;
                table.keep_only_stale()
            }
            None => {
                self.peers.insert(addr, (info, AdjRibIn::default()));
                BTreeSet::new()
            }
        }
    }

    /// A session went down gracefully (RFC 4724 4.2): the routes of `keep` stay, marked
    /// stale; the others go (returned).
    pub fn peer_down_graceful(&mut self, addr: IpAddr, keep: &[Family]) -> BTreeSet<IpNetwork> {
        self.peers
            .get_mut(&addr)
            .map(|(_, t)| t.mark_stale(keep))
            .unwrap_or_default()
    }

    /// Removes a peer's stale routes, of one family (End-of-RIB) or all (restart timer,
    /// gave up on the peer). Returns their prefixes.
    pub fn sweep_stale(&mut self, addr: IpAddr, family: Option<Family>) -> BTreeSet<IpNetwork> {
        self.peers
            .get_mut(&addr)
            .map(|(_, t)| t.sweep_stale(family))
            .unwrap_or_default()
    }

    /// Whether the peer still has stale routes.
    pub fn has_stale(&self, addr: IpAddr) -> bool {
        self.peers
            .get(&addr)
            .is_some_and(|(_, t)| !t.stale.is_empty())
    }

    /// A session went down: its routes go (the prefixes to re-decide are returned).
    pub fn peer_down(&mut self, addr: IpAddr) -> BTreeSet<IpNetwork> {
        self.peers
            .remove(&addr)
            .map(|(_, mut t)| t.clear())
            .unwrap_or_default()
    }

    /// An UPDATE from an established peer. Unknown peers are ignored.
    pub fn update(&mut self, addr: IpAddr, u: &UpdateRepr) -> Applied {
        let local = self.local_ids();
        match self.peers.get_mut(&addr) {
            Some((info, table)) => table.apply(u, info, &local),
            None => Applied::default(),
        }
    }

    /// [`Decision::update`] for an UPDATE that went through import policy: the eBGP
    /// peer's own LOCAL_PREF was dropped before the policy (RFC 4271 5.1.5), so a
    /// LOCAL_PREF the policy set stays.
    pub fn update_imported(&mut self, addr: IpAddr, u: &UpdateRepr) -> Applied {
        let local = self.local_ids();
        match self.peers.get_mut(&addr) {
            Some((info, table)) => table.apply_from(u, info, &local, true),
            None => Applied::default(),
        }
    }

    /// The facts of an up (or graceful-restarting) peer.
    pub fn peer_info(&self, addr: IpAddr) -> Option<&PeerInfo> {
        self.peers.get(&addr).map(|(i, _)| i)
    }

    /// The prefixes of `addr`'s Adj-RIB-In whose next hop is one of `next_hops` (the
    /// routes a change of those next hops' resolution may move).
    pub fn prefixes_via(&self, addr: IpAddr, next_hops: &HashSet<IpAddr>) -> Vec<IpNetwork> {
        self.peers.get(&addr).map_or_else(Vec::new, |(_, t)| {
            t.routes
                .iter()
                .filter(|(_, path)| next_hops.contains(&path.next_hop))
                .map(|(p, _)| p)
                .collect()
        })
    }

    pub fn adj_rib_in(&self, addr: IpAddr) -> Option<&AdjRibIn> {
        self.peers.get(&addr).map(|(_, t)| t)
    }

    /// The decision for one prefix. `resolve` maps (peer, BGP next hop) to a FIB next hop
    /// and IGP cost, or None if unreachable (9.1.2.1).
    pub fn select<R>(&self, prefix: &IpNetwork, resolve: &R) -> Option<Selection<'_>>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let routes = self
            .peers
            .values()
            .filter_map(|(peer, table)| {
                let path = table.get(prefix)?;
                let resolved = resolve(peer, path.next_hop)?;
                Some(Contender {
                    peer,
                    path,
                    resolved,
                })
            })
            .collect();
        select(routes, self.config)
    }

    /// The RIB candidate for one prefix (None: no usable route).
    pub fn candidate<R>(&self, prefix: &IpNetwork, resolve: &R) -> Option<Candidate>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let sel = self.select(prefix, resolve)?;
        Some(candidate_of(prefix, &sel))
    }

    /// The best route of every prefix any peer offers (the Loc-RIB), for export.
    pub fn best_paths<R>(&self, resolve: &R) -> Vec<(IpNetwork, &PeerInfo, &Path)>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let prefixes: BTreeSet<IpNetwork> = self
            .peers
            .values()
            .flat_map(|(_, t)| t.routes.keys())
            .collect();
        prefixes
            .into_iter()
            .filter_map(|p| {
                let sel = self.select(&p, resolve)?;
                Some((p, sel.best.peer, sel.best.path))
            })
            .collect()
    }

    /// Every prefix any peer offers, decided: the full set to hand to the RIB.
    pub fn candidates<R>(&self, resolve: &R) -> Vec<Candidate>
    where
        R: Fn(&PeerInfo, IpAddr) -> Option<Resolution>,
    {
        let prefixes: BTreeSet<IpNetwork> = self
            .peers
            .values()
            .flat_map(|(_, t)| t.routes.keys())
            .collect();
        prefixes
            .into_iter()
            .filter_map(|p| self.candidate(&p, resolve))
            .collect()
    }
}

/// The RIB candidate a selection makes for its prefix.
pub fn candidate_of(prefix: &IpNetwork, sel: &Selection) -> Candidate {
    installed_of(sel).candidate(*prefix)
}

/// A prefix's RIB candidate without the prefix: what a route set keyed by prefix holds
/// (the key is not repeated in every value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    pub ebgp: bool,
    pub next_hop: NextHop,
    pub metric: u32,
}

impl Installed {
    pub fn candidate(&self, prefix: IpNetwork) -> Candidate {
        Candidate {
            prefix,
            source: RouteSource::Bgp { ebgp: self.ebgp },
            next_hop: self.next_hop.clone(),
            metric: self.metric,
        }
    }
}

/// What a selection installs for its prefix ([`candidate_of`] without the prefix).
pub fn installed_of(sel: &Selection) -> Installed {
    Installed {
        ebgp: sel.best.peer.ebgp,
        next_hop: merge_next_hops(sel),
        metric: sel.best.resolved.igp_cost,
    }
}

/// ECMP over the tunnels of the multipath set; the best route alone if any member leads
/// somewhere other than a tunnel.
fn merge_next_hops(sel: &Selection) -> NextHop {
    let mut tunnels = BTreeSet::new();
    for c in &sel.multipath {
        match &c.resolved.next_hop {
            NextHop::Tunnel(t) => {
                tunnels.insert(*t);
            }
            NextHop::Ecmp(ts) => tunnels.extend(ts.iter().copied()),
            _ => return sel.best.resolved.next_hop.clone(),
        }
    }
    let v: Vec<_> = tunnels.into_iter().collect();
    match v.as_slice() {
        [one] => NextHop::Tunnel(*one),
        [] => sel.best.resolved.next_hop.clone(),
        _ => NextHop::Ecmp(v),
    }
}

#[cfg(test)]
mod tests;
