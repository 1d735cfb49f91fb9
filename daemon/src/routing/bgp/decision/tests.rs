//! Decision process tests: small scenarios, one tie-breaking step each, plus Adj-RIB-In
//! handling of UPDATEs.

use super::*;
use crate::dataplane::TunnelId;
use crate::routing::bgp::attr::{
    Aggregator, AttrFault, Family, Faults, MpNextHop, MpReach, MpUnreach, AS_TRANS,
};
use std::net::Ipv6Addr;

const LOCAL_AS: u32 = 65001;

fn net(s: &str) -> IpNetwork {
    s.parse().expect("prefix")
}

/// Peer n: address 192.0.2.n, router id 10.0.0.n, tunnel n.
fn peer(n: u8, asn: u32) -> PeerInfo {
    PeerInfo {
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
        router_id: Ipv4Addr::new(10, 0, 0, n),
        asn,
        ebgp: asn != LOCAL_AS,
        four_octet_as: true,
        rr_client: false,
    }
}

/// Resolves 192.0.2.n to tunnel n at cost n*10 (overridable), everything else: None.
fn resolver(costs: &[(u8, u32)]) -> impl Fn(&PeerInfo, IpAddr) -> Option<Resolution> + '_ {
    move |_, nh| match nh {
        IpAddr::V4(a) if a.octets()[..3] == [192, 0, 2] => {
            let n = a.octets()[3];
            let cost = costs
                .iter()
                .find(|(m, _)| *m == n)
                .map_or(u32::from(n) * 10, |(_, c)| *c);
            Some(Resolution {
                next_hop: NextHop::Tunnel(TunnelId(u32::from(n))),
                igp_cost: cost,
                via: None,
            })
        }
        IpAddr::V6(a) if a.segments()[0] == 0xfe80 => Some(Resolution {
            next_hop: NextHop::Tunnel(TunnelId(99)),
            igp_cost: 1,
            via: None,
        }),
        _ => None,
    }
}

struct Route {
    path: Vec<u32>,
    local_pref: Option<u32>,
    med: Option<u32>,
    origin: Origin,
    next_hop: Ipv4Addr,
}

fn route(path: &[u32], nh: u8) -> Route {
    Route {
        path: path.to_vec(),
        local_pref: None,
        med: None,
        origin: Origin::Igp,
        next_hop: Ipv4Addr::new(192, 0, 2, nh),
    }
}

fn announce(prefix: &str, r: Route) -> UpdateRepr {
    UpdateRepr {
        attrs: PathAttrs {
            origin: Some(r.origin),
            as_path: Some(AsPath::sequence(&r.path)),
            next_hop: Some(r.next_hop),
            med: r.med,
            local_pref: r.local_pref,
            ..PathAttrs::default()
        },
        nlri: vec![net(prefix)],
        ..UpdateRepr::default()
    }
}

/// Builds a decision with peers, each announcing 10.9.0.0/16 with its route.
fn scenario(peers: Vec<(PeerInfo, Route)>, config: DecisionConfig) -> Decision {
    let mut d = Decision::new(LOCAL_AS, config);
    for (p, r) in peers {
        let addr = p.addr;
        d.peer_up(p);
        let applied = d.update(addr, &announce("10.9.0.0/16", r));
        assert_eq!(applied.changed.len(), 1, "route from {addr} accepted");
    }
    d
}

fn winner(d: &Decision) -> Option<IpAddr> {
    d.select(&net("10.9.0.0/16"), &resolver(&[]))
        .map(|s| s.best.peer.addr)
}

fn addr(n: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)))
}

#[test]
fn local_pref_beats_shorter_as_path() {
    let mut long = route(&[65010, 65011, 65012], 1);
    long.local_pref = Some(200);
    let d = scenario(
        vec![
            (peer(1, LOCAL_AS), long),
            (peer(2, LOCAL_AS), route(&[65010], 2)),
        ],
        DecisionConfig::default(),
    );
    assert_eq!(winner(&d), addr(1));
}

#[test]
fn shorter_as_path_wins_and_sets_count_one() {
    let d = scenario(
        vec![
            (peer(1, 65002), route(&[65002, 65010, 65011], 1)),
            (peer(2, 65003), route(&[65003, 65010], 2)),
        ],
        DecisionConfig::default(),
    );
    assert_eq!(winner(&d), addr(2));
    // An AS_SET counts as one.
    let p = AsPath {
        segments: vec![
            crate::routing::bgp::attr::Segment {
                kind: crate::routing::bgp::attr::SegmentType::Sequence,
                asns: vec![1],
            },
            crate::routing::bgp::attr::Segment {
                kind: crate::routing::bgp::attr::SegmentType::Set,
                asns: vec![2, 3, 4],
            },
        ],
    };
    assert_eq!(p.decision_len(), 2);
}

#[test]
fn lower_origin_wins() {
    let mut inc = route(&[65002], 1);
    inc.origin = Origin::Incomplete;
    let d = scenario(
        vec![(peer(1, 65002), inc), (peer(2, 65003), route(&[65003], 2))],
        DecisionConfig::default(),
    );
    assert_eq!(winner(&d), addr(2));
}

#[test]
fn med_compared_only_within_the_same_neighbor_as() {
    // Same neighbor AS: the lower MED wins although its router id is higher.
    let mut a = route(&[65002], 1);
    a.med = Some(50);
    let mut b = route(&[65002], 2);
    b.med = Some(10);
    let d = scenario(
        vec![(peer(1, 65002), a), (peer(2, 65002), b)],
        DecisionConfig::default(),
    );
    assert_eq!(winner(&d), addr(2));

    // Different neighbor ASes: MED is not compared; IGP cost decides (peer 1 is closer).
    let mut a = route(&[65002], 1);
    a.med = Some(50);
    let mut b = route(&[65003], 2);
    b.med = Some(10);
    let d = scenario(
        vec![(peer(1, 65002), a), (peer(2, 65003), b)],
        DecisionConfig::default(),
    );
    assert_eq!(winner(&d), addr(1));

    // A missing MED counts as 0.
    let mut a = route(&[65002], 1);
    a.med = Some(1);
    let d = scenario(
        vec![(peer(1, 65002), a), (peer(2, 65002), route(&[65002], 2))],
        DecisionConfig::default(),
    );
    assert_eq!(winner(&d), addr(2));
}

#[test]
fn ebgp_beats_ibgp() {
    let d = scenario(
        vec![
            (peer(1, LOCAL_AS), route(&[65010], 1)),
            (peer(2, 65010), route(&[65010], 2)),
        ],
        DecisionConfig::default(),
    );
    assert_eq!(winner(&d), addr(2));
    let c = d
        .candidate(&net("10.9.0.0/16"), &resolver(&[]))
        .expect("route");
    assert_eq!(c.source, RouteSource::Bgp { ebgp: true });
}

#[test]
fn igp_cost_then_router_id_then_peer_address() {
    let peers = || {
        vec![
            (peer(1, LOCAL_AS), route(&[65010], 1)),
            (peer(2, LOCAL_AS), route(&[65010], 2)),
        ]
    };
    let d = scenario(peers(), DecisionConfig::default());
    let pick = |costs: &[(u8, u32)]| {
        d.select(&net("10.9.0.0/16"), &resolver(costs))
            .map(|s| s.best.peer.addr)
    };
    assert_eq!(pick(&[(1, 30), (2, 20)]), addr(2), "IGP cost");
    assert_eq!(pick(&[(1, 20), (2, 20)]), addr(1), "router id");

    // Same router id (two sessions to one router): the lower peer address.
    let mut p3 = peer(3, LOCAL_AS);
    p3.router_id = Ipv4Addr::new(10, 0, 0, 9);
    let mut p4 = peer(4, LOCAL_AS);
    p4.router_id = Ipv4Addr::new(10, 0, 0, 9);
    let d = scenario(
        vec![(p4, route(&[65010], 4)), (p3, route(&[65010], 3))],
        DecisionConfig::default(),
    );
    let w = d
        .select(&net("10.9.0.0/16"), &resolver(&[(3, 5), (4, 5)]))
        .map(|s| s.best.peer.addr);
    assert_eq!(w, addr(3));
}

#[test]
fn unresolvable_next_hop_is_not_eligible() {
    let mut far = route(&[65002], 1);
    far.next_hop = Ipv4Addr::new(198, 51, 100, 1);
    let d = scenario(
        vec![
            (peer(1, 65002), far),
            (peer(2, 65003), route(&[65003, 65004, 65005], 2)),
        ],
        DecisionConfig::default(),
    );
    assert_eq!(winner(&d), addr(2));
    let d = scenario(
        vec![(peer(1, 65002), {
            let mut r = route(&[65002], 1);
            r.next_hop = Ipv4Addr::new(198, 51, 100, 1);
            r
        })],
        DecisionConfig::default(),
    );
    assert!(d.candidates(&resolver(&[])).is_empty());
}

#[test]
fn multipath_over_two_tunnels() {
    let peers = || {
        vec![
            (peer(1, 65002), route(&[65002, 65010], 1)),
            (peer(2, 65002), route(&[65002, 65010], 2)),
            (peer(3, 65003), route(&[65003, 65010], 3)),
        ]
    };
    let costs = [(1, 10), (2, 10), (3, 10)];
    let cfg = DecisionConfig {
        max_paths: 4,
        multipath_relax: false,
        ..DecisionConfig::default()
    };
    let d = scenario(peers(), cfg);
    let c = d
        .candidate(&net("10.9.0.0/16"), &resolver(&costs))
        .expect("route");
    assert_eq!(c.next_hop, NextHop::Ecmp(vec![TunnelId(1), TunnelId(2)]));

    // Relaxed: the third peer's equally long path joins.
    let d = scenario(
        peers(),
        DecisionConfig {
            multipath_relax: true,
            ..cfg
        },
    );
    let c = d
        .candidate(&net("10.9.0.0/16"), &resolver(&costs))
        .expect("route");
    assert_eq!(
        c.next_hop,
        NextHop::Ecmp(vec![TunnelId(1), TunnelId(2), TunnelId(3)])
    );

    // A higher IGP cost leaves the set; max_paths 1 is no multipath.
    let c = d
        .candidate(&net("10.9.0.0/16"), &resolver(&[(1, 10), (2, 11), (3, 10)]))
        .expect("route");
    assert_eq!(c.next_hop, NextHop::Ecmp(vec![TunnelId(1), TunnelId(3)]));
    let d = scenario(peers(), DecisionConfig::default());
    let c = d
        .candidate(&net("10.9.0.0/16"), &resolver(&costs))
        .expect("route");
    assert_eq!(c.next_hop, NextHop::Tunnel(TunnelId(1)));
}

#[test]
fn adj_rib_in_withdraw_and_implicit_replace() {
    let mut d = Decision::new(LOCAL_AS, DecisionConfig::default());
    let p = peer(1, 65002);
    let a = p.addr;
    d.peer_up(p);
    d.update(a, &announce("10.9.0.0/16", route(&[65002], 1)));
    // The same again changes nothing; a new path replaces.
    assert!(d
        .update(a, &announce("10.9.0.0/16", route(&[65002], 1)))
        .changed
        .is_empty());
    let ch = d.update(a, &announce("10.9.0.0/16", route(&[65002, 65003], 1)));
    assert_eq!(ch.changed.len(), 1);
    assert_eq!(
        d.adj_rib_in(a)
            .and_then(|t| t.get(&net("10.9.0.0/16")))
            .map(|p| p.attrs.as_path.clone()),
        Some(Some(AsPath::sequence(&[65002, 65003])))
    );
    let w = UpdateRepr {
        withdrawn: vec![net("10.9.0.0/16")],
        ..UpdateRepr::default()
    };
    assert_eq!(d.update(a, &w).changed.len(), 1);
    assert_eq!(d.adj_rib_in(a).map(AdjRibIn::len), Some(0));
}

#[test]
fn treat_as_withdraw_removes_the_prefixes() {
    let mut d = Decision::new(LOCAL_AS, DecisionConfig::default());
    let p = peer(1, 65002);
    let a = p.addr;
    d.peer_up(p);
    d.update(a, &announce("10.9.0.0/16", route(&[65002], 1)));
    let mut bad = announce("10.9.0.0/16", route(&[65002], 1));
    bad.faults = Faults {
        treat_as_withdraw: Some(AttrFault::Value(1)),
        ..Faults::default()
    };
    let ch = d.update(a, &bad);
    assert_eq!(ch.changed.len(), 1);
    assert_eq!(ch.rejected, 0);
    assert!(d.adj_rib_in(a).is_some_and(AdjRibIn::is_empty));
}

#[test]
fn loops_and_wrong_first_as_are_rejected() {
    let mut d = Decision::new(LOCAL_AS, DecisionConfig::default());
    let p = peer(1, 65002);
    let a = p.addr;
    d.peer_up(p);
    let ch = d.update(a, &announce("10.9.0.0/16", route(&[65002, LOCAL_AS], 1)));
    assert_eq!(ch.rejected, 1);
    let ch = d.update(a, &announce("10.9.0.0/16", route(&[65099], 1)));
    assert_eq!(ch.rejected, 1);
    assert!(d.adj_rib_in(a).is_some_and(AdjRibIn::is_empty));
}

#[test]
fn martian_next_hops_are_rejected() {
    let mut d = Decision::new(LOCAL_AS, DecisionConfig::default());
    let p = peer(1, 65002);
    let a = p.addr;
    d.peer_up(p);
    d.update(a, &announce("10.9.0.0/16", route(&[65002], 1)));
    for nh in [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(224, 0, 0, 5),
        Ipv4Addr::BROADCAST,
    ] {
        let mut r = route(&[65002], 1);
        r.next_hop = nh;
        let ch = d.update(a, &announce("10.9.0.0/16", r));
        assert_eq!(ch.rejected, 1, "{nh}");
    }
    assert!(d.adj_rib_in(a).is_some_and(AdjRibIn::is_empty));
    assert!(!usable_next_hop(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
    assert!(usable_next_hop(IpAddr::V6(
        "fe80::1".parse().expect("addr")
    )));
}

#[test]
fn local_pref_from_ebgp_is_ignored() {
    let mut hi = route(&[65002, 65010], 1);
    hi.local_pref = Some(1000);
    let d = scenario(
        vec![(peer(1, 65002), hi), (peer(2, 65003), route(&[65003], 2))],
        DecisionConfig::default(),
    );
    assert_eq!(winner(&d), addr(2));
}

#[test]
fn two_octet_peer_paths_are_merged_with_as4_path() {
    let mut d = Decision::new(LOCAL_AS, DecisionConfig::default());
    let mut p = peer(1, 65002);
    p.four_octet_as = false;
    let a = p.addr;
    d.peer_up(p);
    let mut u = announce("10.9.0.0/16", route(&[65002, u32::from(AS_TRANS)], 1));
    u.attrs.as4_path = Some(AsPath::sequence(&[4_200_000_000]));
    u.attrs.aggregator = Some(Aggregator {
        asn: u32::from(AS_TRANS),
        addr: Ipv4Addr::new(1, 1, 1, 1),
    });
    u.attrs.as4_aggregator = Some(Aggregator {
        asn: 4_200_000_000,
        addr: Ipv4Addr::new(1, 1, 1, 1),
    });
    d.update(a, &u);
    let path = d
        .adj_rib_in(a)
        .and_then(|t| t.get(&net("10.9.0.0/16")))
        .expect("stored");
    assert_eq!(
        path.attrs.as_path,
        Some(AsPath::sequence(&[65002, 4_200_000_000]))
    );
    assert_eq!(path.attrs.aggregator.map(|g| g.asn), Some(4_200_000_000));
    assert_eq!(path.attrs.as4_path, None);
}

#[test]
fn mp_reach_ipv6_and_ipv4_over_link_local_next_hop() {
    let mut d = Decision::new(LOCAL_AS, DecisionConfig::default());
    let p = peer(1, 65002);
    let a = p.addr;
    d.peer_up(p);
    let ll: Ipv6Addr = "fe80::2".parse().expect("addr");
    for (family, prefix) in [
        (Family::Ipv6Unicast, "2001:db8:9::/48"),
        (Family::Ipv4Unicast, "172.20.0.0/14"),
    ] {
        let u = UpdateRepr {
            attrs: PathAttrs {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::sequence(&[65002])),
                mp_reach: Some(MpReach {
                    family,
                    // BIRD on a link-local session: the global slot holds the link-local
                    // address too (or ::); the link-local one is what resolves.
                    next_hop: MpNextHop::V6 {
                        global: Ipv6Addr::UNSPECIFIED,
                        link_local: Some(ll),
                    },
                    nlri: vec![net(prefix)],
                }),
                ..PathAttrs::default()
            },
            ..UpdateRepr::default()
        };
        assert_eq!(d.update(a, &u).changed.len(), 1);
    }
    let cands = d.candidates(&resolver(&[]));
    assert_eq!(cands.len(), 2);
    assert!(cands
        .iter()
        .all(|c| c.next_hop == NextHop::Tunnel(TunnelId(99))));
    // MP_UNREACH withdraws.
    let w = UpdateRepr {
        attrs: PathAttrs {
            mp_unreach: Some(MpUnreach {
                family: Family::Ipv6Unicast,
                withdrawn: vec![net("2001:db8:9::/48")],
            }),
            ..PathAttrs::default()
        },
        ..UpdateRepr::default()
    };
    assert_eq!(d.update(a, &w).changed.len(), 1);
    assert_eq!(d.candidates(&resolver(&[])).len(), 1);
}

#[test]
fn peer_down_removes_its_routes() {
    let mut d = scenario(
        vec![
            (peer(1, 65002), route(&[65002], 1)),
            (peer(2, 65003), route(&[65003, 65004], 2)),
        ],
        DecisionConfig::default(),
    );
    assert_eq!(winner(&d), addr(1));
    let gone = d.peer_down(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(gone, BTreeSet::from([net("10.9.0.0/16")]));
    assert_eq!(winner(&d), addr(2));
    d.peer_down(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
    assert!(d.candidates(&resolver(&[])).is_empty());
}

/// An iBGP route as a route reflector passes it on.
fn reflected(nh: u8, originator: Option<u8>, clusters: &[u8]) -> UpdateRepr {
    let mut u = announce("10.9.0.0/16", route(&[], nh));
    u.attrs.local_pref = Some(100);
    u.attrs.originator_id = originator.map(|n| Ipv4Addr::new(10, 0, 0, n));
    u.attrs.cluster_list = clusters
        .iter()
        .map(|&n| Ipv4Addr::new(10, 0, 9, n))
        .collect();
    u
}

fn reflecting_decision() -> Decision {
    let mut d = Decision::new(
        LOCAL_AS,
        DecisionConfig {
            cluster_id: Some(Ipv4Addr::new(10, 0, 9, 1)),
            ..DecisionConfig::default()
        },
    );
    d.router_id = Some(Ipv4Addr::new(10, 0, 0, 50));
    d
}

#[test]
fn reflected_loops_are_rejected() {
    let mut d = reflecting_decision();
    assert_eq!(d.cluster_id(), Some(Ipv4Addr::new(10, 0, 9, 1)));
    let p = peer(1, LOCAL_AS);
    let a = p.addr;
    d.peer_up(p);
    // Our own route, reflected back to us.
    let ch = d.update(a, &reflected(1, Some(50), &[2]));
    assert_eq!((ch.rejected, ch.changed.len()), (1, 0));
    // It went around our cluster.
    let ch = d.update(a, &reflected(1, Some(7), &[2, 1]));
    assert_eq!((ch.rejected, ch.changed.len()), (1, 0));
    // Someone else's, through other clusters: kept as received.
    let ch = d.update(a, &reflected(1, Some(7), &[2, 3]));
    assert_eq!((ch.rejected, ch.changed.len()), (0, 1));
    let path = d.adj_rib_in(a).and_then(|t| t.get(&net("10.9.0.0/16")));
    let attrs = &path.expect("kept").attrs;
    assert_eq!(attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 7)));
    assert_eq!(attrs.cluster_list.len(), 2);
    // Then a looped replacement withdraws it (implicit replacement, refused).
    let ch = d.update(a, &reflected(1, Some(50), &[]));
    assert_eq!((ch.rejected, ch.changed.len()), (1, 1));
    assert!(d.adj_rib_in(a).is_some_and(AdjRibIn::is_empty));
    // Without a configured cluster id, the router id is the cluster id.
    let mut d = Decision::new(LOCAL_AS, DecisionConfig::default());
    d.router_id = Some(Ipv4Addr::new(10, 0, 9, 4));
    assert_eq!(d.cluster_id(), d.router_id);
    d.peer_up(peer(1, LOCAL_AS));
    assert_eq!(d.update(a, &reflected(1, Some(7), &[4])).rejected, 1);
}

#[test]
fn reflection_attributes_from_ebgp_are_disregarded() {
    let mut d = reflecting_decision();
    let p = peer(1, 65002);
    let a = p.addr;
    d.peer_up(p);
    let mut u = announce("10.9.0.0/16", route(&[65002], 1));
    // Carrying our own ids would be a loop from iBGP; from eBGP they mean nothing.
    u.attrs.originator_id = Some(Ipv4Addr::new(10, 0, 0, 50));
    u.attrs.cluster_list = vec![Ipv4Addr::new(10, 0, 9, 1)];
    assert_eq!(d.update(a, &u).rejected, 0);
    let attrs = &d
        .adj_rib_in(a)
        .unwrap()
        .get(&net("10.9.0.0/16"))
        .unwrap()
        .attrs;
    assert_eq!(attrs.originator_id, None);
    assert!(attrs.cluster_list.is_empty());
    // A malformed one: attribute discard from eBGP, treat-as-withdraw from iBGP.
    u.faults.ibgp_treat_as_withdraw = Some(AttrFault::Length(9));
    assert_eq!(d.update(a, &u).rejected, 0);
    assert_eq!(d.adj_rib_in(a).map(AdjRibIn::len), Some(1));
    let q = peer(2, LOCAL_AS);
    let b = q.addr;
    d.peer_up(q);
    let mut good = reflected(2, Some(7), &[]);
    d.update(b, &good);
    assert_eq!(d.adj_rib_in(b).map(AdjRibIn::len), Some(1));
    good.faults.ibgp_treat_as_withdraw = Some(AttrFault::Length(10));
    let ch = d.update(b, &good);
    assert_eq!((ch.rejected, ch.changed.len()), (0, 1));
    assert!(d.adj_rib_in(b).is_some_and(AdjRibIn::is_empty));
}

#[test]
fn originator_id_stands_in_for_the_router_id_then_shorter_cluster_list() {
    // Peer 1 (router id 10.0.0.1) reflects a route originated by 10.0.0.9; peer 2
    // (10.0.0.2) sends its own. Without RFC 4456 9 peer 1 would win on router id.
    let mut d = reflecting_decision();
    for n in [1, 2] {
        d.peer_up(peer(n, LOCAL_AS));
    }
    d.update(addr(1).unwrap(), &reflected(1, Some(9), &[5]));
    d.update(addr(2).unwrap(), &reflected(2, None, &[]));
    let same_cost = [(1, 10), (2, 10)];
    let best = |d: &Decision| {
        d.select(&net("10.9.0.0/16"), &resolver(&same_cost))
            .map(|s| s.best.peer.addr)
    };
    assert_eq!(best(&d), addr(2));
    // Same originator through both: the shorter CLUSTER_LIST wins before the peer
    // address (peer 1 has the lower one).
    d.update(addr(1).unwrap(), &reflected(1, Some(9), &[5, 6]));
    d.update(addr(2).unwrap(), &reflected(2, Some(9), &[5]));
    assert_eq!(best(&d), addr(2));
    d.update(addr(2).unwrap(), &reflected(2, Some(9), &[5, 6]));
    assert_eq!(best(&d), addr(1), "all equal: the lower peer address");
}

#[test]
fn graceful_restart_keeps_stale_routes_until_refreshed_or_swept() {
    let mut d = Decision::new(LOCAL_AS, DecisionConfig::default());
    let p = peer(1, 65002);
    let a = p.addr;
    d.peer_up(p.clone());
    for prefix in ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"] {
        d.update(a, &announce(prefix, route(&[65002], 1)));
    }
    let v6 = UpdateRepr {
        attrs: PathAttrs {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(&[65002])),
            mp_reach: Some(MpReach {
                family: Family::Ipv6Unicast,
                next_hop: MpNextHop::V6 {
                    global: "fe80::1".parse().unwrap(),
                    link_local: None,
                },
                nlri: vec![net("2001:db8::/32"), net("2001:db9::/32")],
            }),
            ..PathAttrs::default()
        },
        ..UpdateRepr::default()
    };
    d.update(a, &v6);
    // Down gracefully, IPv4 only preserved: IPv6 goes at once.
    let gone = d.peer_down_graceful(a, &[Family::Ipv4Unicast]);
    assert_eq!(gone.len(), 2);
    let t = d.adj_rib_in(a).unwrap();
    assert_eq!((t.len(), t.stale_len()), (3, 3));
    assert!(t.is_stale(&net("10.1.0.0/16")));
    assert_eq!(
        d.candidates(&resolver(&[])).len(),
        3,
        "stale routes still count"
    );
    // Back up: the stale routes stay; one is refreshed, one withdrawn.
    assert!(d.peer_up(p).is_empty());
    assert!(d.has_stale(a));
    d.update(a, &announce("10.1.0.0/16", route(&[65002], 1)));
    let w = UpdateRepr {
        withdrawn: vec![net("10.2.0.0/16")],
        ..UpdateRepr::default()
    };
    assert_eq!(d.update(a, &w).changed.len(), 1);
    let t = d.adj_rib_in(a).unwrap();
    assert!(!t.is_stale(&net("10.1.0.0/16")));
    assert_eq!((t.len(), t.stale_len()), (2, 1));
    // End-of-RIB for IPv6 sweeps nothing of IPv4; IPv4's sweeps the rest.
    assert!(d.sweep_stale(a, Some(Family::Ipv6Unicast)).is_empty());
    assert_eq!(
        d.sweep_stale(a, Some(Family::Ipv4Unicast)),
        BTreeSet::from([net("10.3.0.0/16")])
    );
    assert!(!d.has_stale(a));
    assert_eq!(d.adj_rib_in(a).map(AdjRibIn::len), Some(1));
    // A plain peer_down still takes everything.
    d.peer_down_graceful(a, &[Family::Ipv4Unicast]);
    assert!(d.has_stale(a));
    assert_eq!(d.peer_down(a).len(), 1);
    assert!(!d.has_stale(a));
}
