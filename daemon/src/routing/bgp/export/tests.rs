//! Export rules per peer kind, one scenario each.

use super::*;
use crate::routing::bgp::attr::{Origin, RawAttr, FLAG_OPTIONAL, FLAG_TRANSITIVE};

const LOCAL_AS: u32 = 65001;

fn net(s: &str) -> IpNetwork {
    s.parse().expect("prefix")
}

fn from(n: u8, asn: u32) -> PeerInfo {
    PeerInfo {
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
        router_id: Ipv4Addr::new(10, 0, 0, n),
        asn,
        ebgp: asn != LOCAL_AS,
        four_octet_as: true,
        rr_client: false,
    }
}

fn to(n: u8, ebgp: bool) -> ExportPeer {
    ExportPeer {
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
        ebgp,
        local_as: LOCAL_AS,
        local: LocalAddrs {
            v4: Some(Ipv4Addr::new(192, 0, 2, 100)),
            v6_global: None,
            v6_link_local: Some("fe80::100".parse().expect("addr")),
        },
        next_hop_self: false,
        rr_client: false,
        cluster_id: Ipv4Addr::new(10, 0, 0, 100),
    }
}

fn path(asns: &[u32], nh: u8) -> Path {
    Path {
        attrs: Arc::new(PathAttrs {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(asns)),
            med: Some(7),
            local_pref: Some(300),
            ..PathAttrs::default()
        }),
        next_hop: IpAddr::V4(Ipv4Addr::new(192, 0, 2, nh)),
    }
}

#[test]
fn ebgp_to_ebgp_prepends_and_sets_next_hop_self() {
    let (p, f) = (path(&[65002], 2), from(2, 65002));
    let best = vec![(net("10.2.0.0/16"), &f, &p)];
    let out = exports_for(&best, &BTreeMap::new(), &to(3, true));
    let e = out.get(&net("10.2.0.0/16")).expect("exported");
    assert_eq!(e.attrs.as_path, Some(AsPath::sequence(&[LOCAL_AS, 65002])));
    assert_eq!(e.next_hop, MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 100)));
    assert_eq!(e.attrs.local_pref, None);
    assert_eq!(e.attrs.med, None, "MED stays in the AS it came from");
    // Never back to the peer it came from.
    assert!(exports_for(&best, &BTreeMap::new(), &to(2, true)).is_empty());
}

#[test]
fn ibgp_rules() {
    let (p, f) = (path(&[65010], 4), from(4, LOCAL_AS));
    let ibgp_learned = vec![(net("10.4.0.0/16"), &f, &p)];
    assert!(
        exports_for(&ibgp_learned, &BTreeMap::new(), &to(5, false)).is_empty(),
        "no iBGP to iBGP without reflection"
    );
    assert_eq!(
        exports_for(&ibgp_learned, &BTreeMap::new(), &to(6, true)).len(),
        1,
        "iBGP-learned goes to eBGP"
    );

    let (p, f) = (path(&[65002], 2), from(2, 65002));
    let best = vec![(net("10.2.0.0/16"), &f, &p)];
    let out = exports_for(&best, &BTreeMap::new(), &to(5, false));
    let e = out.get(&net("10.2.0.0/16")).expect("exported");
    assert_eq!(e.attrs.as_path, Some(AsPath::sequence(&[65002])));
    assert_eq!(e.attrs.local_pref, Some(300));
    assert_eq!(e.next_hop, MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 2)));
    let mut t = to(5, false);
    t.next_hop_self = true;
    let out = exports_for(&best, &BTreeMap::new(), &t);
    assert_eq!(
        out.get(&net("10.2.0.0/16")).map(|e| e.next_hop),
        Some(MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 100)))
    );
}

#[test]
fn well_known_communities() {
    let f = from(2, 65002);
    let mut a = (*path(&[65002], 2).attrs).clone();
    a.communities = vec![NO_EXPORT];
    let p = Path {
        attrs: Arc::new(a.clone()),
        next_hop: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
    };
    let best = vec![(net("10.2.0.0/16"), &f, &p)];
    assert!(exports_for(&best, &BTreeMap::new(), &to(3, true)).is_empty());
    assert_eq!(exports_for(&best, &BTreeMap::new(), &to(5, false)).len(), 1);
    a.communities = vec![NO_ADVERTISE];
    let p = Path {
        attrs: Arc::new(a),
        next_hop: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
    };
    let best = vec![(net("10.2.0.0/16"), &f, &p)];
    assert!(exports_for(&best, &BTreeMap::new(), &to(5, false)).is_empty());
}

#[test]
fn originated_routes_and_ipv6_link_local_next_hop() {
    let attrs = PathAttrs {
        origin: Some(Origin::Igp),
        med: Some(5),
        ..PathAttrs::default()
    };
    let originated = BTreeMap::from([
        (net("10.1.0.0/24"), attrs.clone()),
        (net("2001:db8:1::/48"), attrs),
    ]);
    let out = exports_for(&[], &originated, &to(3, true));
    let v4 = out.get(&net("10.1.0.0/24")).expect("v4");
    assert_eq!(v4.attrs.as_path, Some(AsPath::sequence(&[LOCAL_AS])));
    assert_eq!(v4.attrs.med, Some(5), "our own MED may go out");
    let v6 = out.get(&net("2001:db8:1::/48")).expect("v6");
    assert_eq!(
        v6.next_hop,
        MpNextHop::V6 {
            global: Ipv6Addr::UNSPECIFIED,
            link_local: Some("fe80::100".parse().expect("addr")),
        }
    );
    let ib = exports_for(&[], &originated, &to(5, false));
    let v4 = ib.get(&net("10.1.0.0/24")).expect("v4");
    assert_eq!(v4.attrs.as_path, Some(AsPath::default()));
    assert_eq!(v4.attrs.local_pref, Some(DEFAULT_LOCAL_PREF));
    assert_eq!(v4.next_hop, MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 100)));
}

#[test]
fn unknown_attributes_travel_with_partial_if_transitive() {
    let f = from(2, 65002);
    let mut a = (*path(&[65002], 2).attrs).clone();
    a.unknown = vec![
        RawAttr {
            flags: FLAG_OPTIONAL | FLAG_TRANSITIVE,
            code: 99,
            data: vec![1],
        },
        RawAttr {
            flags: FLAG_OPTIONAL,
            code: 98,
            data: vec![2],
        },
    ];
    let p = Path {
        attrs: Arc::new(a),
        next_hop: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
    };
    let best = vec![(net("10.2.0.0/16"), &f, &p)];
    let out = exports_for(&best, &BTreeMap::new(), &to(3, true));
    let e = out.get(&net("10.2.0.0/16")).expect("exported");
    assert_eq!(
        e.attrs.unknown,
        vec![RawAttr {
            flags: FLAG_OPTIONAL | FLAG_TRANSITIVE | FLAG_PARTIAL,
            code: 99,
            data: vec![1]
        }]
    );
}

#[test]
fn prepend_opens_a_new_segment_when_full_or_not_a_sequence() {
    let full = AsPath::sequence(&[1; 255]);
    let p = prepend(&full, 2);
    assert_eq!(p.segments.len(), 2);
    assert_eq!(p.segments[0].asns, vec![2]);
    let set = AsPath {
        segments: vec![Segment {
            kind: SegmentType::Set,
            asns: vec![3, 4],
        }],
    };
    assert_eq!(prepend(&set, 2).decision_len(), 2);
    assert_eq!(prepend(&AsPath::default(), 2), AsPath::sequence(&[2]));
}

fn client(n: u8) -> PeerInfo {
    PeerInfo {
        rr_client: true,
        ..from(n, LOCAL_AS)
    }
}

fn to_client(n: u8) -> ExportPeer {
    ExportPeer {
        rr_client: true,
        ..to(n, false)
    }
}

#[test]
fn route_reflection_rules() {
    let p = path(&[], 2);
    let (c2, n3) = (client(2), from(3, LOCAL_AS));
    let from_client = vec![(net("10.2.0.0/16"), &c2, &p)];
    let from_non_client = vec![(net("10.3.0.0/16"), &n3, &p)];
    let none = BTreeMap::new();
    // A client's route: to the other clients and to non-clients, never back.
    for peer in [to_client(4), to(5, false)] {
        let out = exports_for(&from_client, &none, &peer);
        let e = out.get(&net("10.2.0.0/16")).expect("reflected");
        assert_eq!(e.attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(e.attrs.cluster_list, vec![Ipv4Addr::new(10, 0, 0, 100)]);
        // Untouched: next hop, AS path, LOCAL_PREF, MED.
        assert_eq!(e.next_hop, MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(e.attrs.as_path, Some(AsPath::default()));
        assert_eq!((e.attrs.local_pref, e.attrs.med), (Some(300), Some(7)));
    }
    assert!(exports_for(&from_client, &none, &to_client(2)).is_empty());
    // A non-client's route: to clients only.
    assert_eq!(exports_for(&from_non_client, &none, &to_client(4)).len(), 1);
    assert!(exports_for(&from_non_client, &none, &to(5, false)).is_empty());

    // Already reflected once: the ORIGINATOR_ID stays, our cluster id goes in front.
    let again = Path {
        attrs: Arc::new(PathAttrs {
            originator_id: Some(Ipv4Addr::new(10, 0, 0, 9)),
            cluster_list: vec![Ipv4Addr::new(10, 0, 9, 1)],
            ..(*p.attrs).clone()
        }),
        ..p.clone()
    };
    let best = vec![(net("10.9.0.0/16"), &n3, &again)];
    let out = exports_for(&best, &none, &to_client(4));
    let e = out.get(&net("10.9.0.0/16")).expect("reflected");
    assert_eq!(e.attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 9)));
    assert_eq!(
        e.attrs.cluster_list,
        vec![Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 9, 1)]
    );
    // next-hop-self when configured applies to reflected routes too.
    let nhs = ExportPeer {
        next_hop_self: true,
        ..to_client(4)
    };
    let out = exports_for(&best, &none, &nhs);
    assert_eq!(
        out.get(&net("10.9.0.0/16")).map(|e| e.next_hop),
        Some(MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 100)))
    );
    // To eBGP the reflection attributes never go; eBGP-learned and originated routes to
    // clients carry none.
    let out = exports_for(&best, &none, &to(6, true));
    let e = out.get(&net("10.9.0.0/16")).expect("to eBGP");
    assert_eq!(e.attrs.originator_id, None);
    assert!(e.attrs.cluster_list.is_empty());
    let e2 = from(7, 65007);
    let ext = path(&[65007], 7);
    let originated = BTreeMap::from([(
        net("10.100.0.0/16"),
        PathAttrs {
            origin: Some(Origin::Igp),
            ..PathAttrs::default()
        },
    )]);
    let out = exports_for(
        &[(net("10.7.0.0/16"), &e2, &ext)],
        &originated,
        &to_client(4),
    );
    assert_eq!(out.len(), 2);
    for e in out.values() {
        assert_eq!(e.attrs.originator_id, None);
        assert!(e.attrs.cluster_list.is_empty());
    }
}
