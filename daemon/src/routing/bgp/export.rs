//! What goes to one peer (RFC 4271 9.1.3 and 5.1): from the Loc-RIB's best paths and the
//! locally originated routes, the [`Export`] map that `AdjRibOut::sync` turns into
//! UPDATEs. Rules: no route back to the peer it came from; an iBGP-learned route goes to
//! an iBGP peer only by route reflection (RFC 4456 6: a client's route to every other
//! iBGP peer, a non-client's to clients only; ORIGINATOR_ID set if absent, our cluster id
//! prepended to CLUSTER_LIST, next hop, AS path and LOCAL_PREF untouched); to eBGP the
//! local AS is prepended, LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST are stripped, a MED
//! learned from another AS is not passed on (5.1.4) and the next hop is this side's
//! address on the session; to iBGP LOCAL_PREF is always present (5.1.5) and the next hop
//! is kept unless `next_hop_self`. RFC 1997 well-known communities
//! NO_EXPORT and NO_ADVERTISE are honoured; unknown non-transitive attributes never travel
//! and unknown transitive ones get the Partial bit (RFC 4271 5).
//!
//! Pure; export policy (filters, prepends, community edits) comes after this, not here.

use super::adj_out::Export;
use super::attr::{AsPath, MpNextHop, PathAttrs, Segment, SegmentType, FLAG_PARTIAL};
use super::decision::{Path, PeerInfo, DEFAULT_LOCAL_PREF};
use ipnetwork::IpNetwork;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// RFC 1997 well-known communities.
pub const NO_EXPORT: u32 = 0xFFFF_FF01;
pub const NO_ADVERTISE: u32 = 0xFFFF_FF02;

/// This side's addresses on the session (what "next hop self" means for it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalAddrs {
    pub v4: Option<Ipv4Addr>,
    pub v6_global: Option<Ipv6Addr>,
    pub v6_link_local: Option<Ipv6Addr>,
}

impl LocalAddrs {
    fn v6(&self) -> Option<MpNextHop> {
        match (self.v6_global, self.v6_link_local) {
            (None, None) => None,
            (g, ll) => Some(MpNextHop::V6 {
                global: g.unwrap_or(Ipv6Addr::UNSPECIFIED),
                link_local: ll,
            }),
        }
    }

    /// The next hop for a prefix: IPv4 for IPv4 if there is one, else IPv6 (RFC 8950;
    /// `AdjRibOut` drops it if the session did not negotiate that).
    fn for_prefix(&self, p: &IpNetwork) -> Option<MpNextHop> {
        match p {
            IpNetwork::V4(_) => self.v4.map(MpNextHop::V4).or_else(|| self.v6()),
            IpNetwork::V6(_) => self.v6(),
        }
    }
}

/// The peer routes are exported to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportPeer {
    pub addr: IpAddr,
    pub ebgp: bool,
    pub local_as: u32,
    pub local: LocalAddrs,
    /// iBGP: replace the next hop with our own (always the case on eBGP; applies to
    /// reflected routes too, so leave it off on a route reflector's client sessions).
    pub next_hop_self: bool,
    /// A route reflection client (RFC 4456): gets every iBGP route, and its routes are
    /// reflected to the other iBGP peers.
    pub rr_client: bool,
    /// Our cluster id, prepended to CLUSTER_LIST when reflecting.
    pub cluster_id: Ipv4Addr,
}

/// Prepends `asn` to a path (into a leading AS_SEQUENCE if it has room).
pub fn prepend(path: &AsPath, asn: u32) -> AsPath {
    let mut out = path.clone();
    match out.segments.first_mut() {
        Some(s) if s.kind == SegmentType::Sequence && s.asns.len() < 255 => s.asns.insert(0, asn),
        _ => out.segments.insert(
            0,
            Segment {
                kind: SegmentType::Sequence,
                asns: vec![asn],
            },
        ),
    }
    out
}

fn export_one(
    prefix: &IpNetwork,
    attrs: &PathAttrs,
    learned_next_hop: Option<IpAddr>,
    from: Option<&PeerInfo>,
    to: &ExportPeer,
) -> Option<Export> {
    if attrs.communities.contains(&NO_ADVERTISE) {
        return None;
    }
    if to.ebgp && attrs.communities.contains(&NO_EXPORT) {
        return None;
    }
    let mut a = attrs.clone();
    a.next_hop = None;
    a.mp_reach = None;
    a.mp_unreach = None;
    a.as4_path = None;
    a.as4_aggregator = None;
    // Optional non-transitive: they never leave the AS; inside it, only reflection sets
    // them (below).
    a.originator_id = None;
    a.cluster_list = Vec::new();
    a.unknown = attrs
        .unknown
        .iter()
        .filter(|u| u.flags & super::attr::FLAG_TRANSITIVE != 0)
        .map(|u| super::attr::RawAttr {
            flags: u.flags | FLAG_PARTIAL,
            ..u.clone()
        })
        .collect();
    let path = a.as_path.clone().unwrap_or_default();
    let next_hop = if to.ebgp {
        a.as_path = Some(prepend(&path, to.local_as));
        a.local_pref = None;
        // 5.1.4: a MED from another AS stays there; our own (originated) may go.
        if from.is_some() {
            a.med = None;
        }
        to.local.for_prefix(prefix)?
    } else {
        if let Some(f) = from.filter(|f| !f.ebgp) {
            // RFC 4456 8: iBGP to iBGP is reflection.
            a.originator_id = Some(attrs.originator_id.unwrap_or(f.router_id));
            a.cluster_list = std::iter::once(to.cluster_id)
                .chain(attrs.cluster_list.iter().copied())
                .collect();
        }
        a.as_path = Some(path);
        a.local_pref = Some(a.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
        match (to.next_hop_self, learned_next_hop) {
            (false, Some(IpAddr::V4(v4))) if prefix.is_ipv4() => MpNextHop::V4(v4),
            (false, Some(IpAddr::V6(v6))) if !is_link_local(v6) => MpNextHop::V6 {
                global: v6,
                link_local: None,
            },
            _ => to.local.for_prefix(prefix)?,
        }
    };
    Some(Export { attrs: a, next_hop })
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Whether a learned best path may go to `to` at all (RFC 4271 9.1.3, RFC 4456 6): never
/// back to its source, iBGP to iBGP only from or to a reflection client, and not when we
/// originate the prefix ourselves.
fn learned_goes_to(
    prefix: &IpNetwork,
    from: &PeerInfo,
    originated: &BTreeMap<IpNetwork, PathAttrs>,
    to: &ExportPeer,
) -> bool {
    // RFC 4456 6: iBGP to iBGP only from a client or to a client.
    let reflect = from.rr_client || to.rr_client;
    !(from.addr == to.addr
        || (!from.ebgp && !to.ebgp && !reflect)
        || originated.contains_key(prefix))
}

/// What goes to `to` for one prefix, given its best path (if any) and the originated
/// routes: the same rules as [`exports_for`], for the incremental path that only looks
/// at the prefixes an input touched.
pub fn export_prefix(
    prefix: &IpNetwork,
    best: Option<(&PeerInfo, &Path)>,
    originated: &BTreeMap<IpNetwork, PathAttrs>,
    to: &ExportPeer,
) -> Option<Export> {
    if let Some(attrs) = originated.get(prefix) {
        return export_one(prefix, attrs, None, None, to);
    }
    let (from, path) = best?;
    if !learned_goes_to(prefix, from, originated, to) {
        return None;
    }
    export_one(prefix, &path.attrs, Some(path.next_hop), Some(from), to)
}

/// The export map for `to`: originated routes (`origin`/`as_path` as given, usually IGP
/// and empty) win over learned ones for the same prefix.
pub fn exports_for(
    best: &[(IpNetwork, &PeerInfo, &Path)],
    originated: &BTreeMap<IpNetwork, PathAttrs>,
    to: &ExportPeer,
) -> BTreeMap<IpNetwork, Arc<Export>> {
    let mut out = BTreeMap::new();
    for (prefix, from, path) in best {
        if !learned_goes_to(prefix, from, originated, to) {
            continue;
        }
        if let Some(e) = export_one(prefix, &path.attrs, Some(path.next_hop), Some(from), to) {
            out.insert(*prefix, Arc::new(e));
        }
    }
    for (prefix, attrs) in originated {
        if let Some(e) = export_one(prefix, attrs, None, None, to) {
            out.insert(*prefix, Arc::new(e));
        }
    }
    out
}

#[cfg(test)]
mod tests;
