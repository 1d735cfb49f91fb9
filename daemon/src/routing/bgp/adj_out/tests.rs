//! Adj-RIB-Out tests: diffs become the right UPDATEs, and big tables split into messages
//! that fit and parse back to the same prefixes.

use super::*;
use crate::routing::bgp::attr::{AsPath, Origin};
use crate::routing::bgp::message::{Message, MAX_LEN};
use std::net::{Ipv4Addr, Ipv6Addr};

fn net(s: &str) -> IpNetwork {
    s.parse().expect("prefix")
}

fn session() -> OutSession {
    OutSession {
        codec: Codec {
            four_octet_as: true,
        },
        max_len: MAX_LEN,
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        extended_next_hop: false,
    }
}

fn export(path: &[u32], nh: MpNextHop) -> Arc<Export> {
    Arc::new(Export {
        attrs: PathAttrs {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(path)),
            ..PathAttrs::default()
        },
        next_hop: nh,
    })
}

fn v4nh() -> MpNextHop {
    MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1))
}

fn v6nh() -> MpNextHop {
    MpNextHop::V6 {
        global: "2001:db8::1".parse().expect("addr"),
        link_local: Some("fe80::1".parse().expect("addr")),
    }
}

#[test]
fn first_sync_announces_grouped_by_attributes() {
    let a = export(&[65001], v4nh());
    let b = export(&[65001, 65002], v4nh());
    let c = export(&[65001], v6nh());
    let wanted = BTreeMap::from([
        (net("10.1.0.0/24"), a.clone()),
        (net("10.2.0.0/24"), a.clone()),
        (net("10.3.0.0/24"), b),
        (net("2001:db8:1::/48"), c),
    ]);
    let mut out = AdjRibOut::default();
    let ups = out.sync(&wanted, &session());
    assert_eq!(ups.len(), 3);
    assert_eq!(ups[0].nlri, vec![net("10.1.0.0/24"), net("10.2.0.0/24")]);
    assert_eq!(ups[0].attrs.next_hop, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(ups[1].nlri, vec![net("10.3.0.0/24")]);
    let mp = ups[2].attrs.mp_reach.as_ref().expect("mp_reach");
    assert_eq!(mp.family, Family::Ipv6Unicast);
    assert_eq!(mp.nlri, vec![net("2001:db8:1::/48")]);
    assert_eq!(mp.next_hop, v6nh());
    assert!(ups[2].nlri.is_empty() && ups[2].attrs.next_hop.is_none());
    assert_eq!(out.len(), 4);
    // Nothing changed: nothing to send.
    assert!(out.sync(&wanted, &session()).is_empty());
}

#[test]
fn changes_and_withdrawals() {
    let a = export(&[65001], v4nh());
    let c = export(&[65001], v6nh());
    let mut wanted = BTreeMap::from([
        (net("10.1.0.0/24"), a.clone()),
        (net("10.2.0.0/24"), a),
        (net("2001:db8:1::/48"), c),
    ]);
    let mut out = AdjRibOut::default();
    out.sync(&wanted, &session());
    wanted.insert(net("10.2.0.0/24"), export(&[65001, 65009], v4nh()));
    wanted.remove(&net("10.1.0.0/24"));
    wanted.remove(&net("2001:db8:1::/48"));
    let ups = out.sync(&wanted, &session());
    assert_eq!(ups.len(), 3);
    assert_eq!(ups[0].withdrawn, vec![net("10.1.0.0/24")]);
    assert_eq!(
        ups[1].attrs.mp_unreach,
        Some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: vec![net("2001:db8:1::/48")]
        })
    );
    assert_eq!(ups[2].nlri, vec![net("10.2.0.0/24")]);
    assert_eq!(out.len(), 1);
}

#[test]
fn ipv4_over_ipv6_next_hop_needs_rfc8950() {
    let e = export(&[65001], v6nh());
    let wanted = BTreeMap::from([(net("172.20.0.0/14"), e)]);
    let mut out = AdjRibOut::default();
    assert!(out.sync(&wanted, &session()).is_empty());
    assert!(out.is_empty());
    let s = OutSession {
        extended_next_hop: true,
        ..session()
    };
    let ups = out.sync(&wanted, &s);
    let mp = ups[0].attrs.mp_reach.as_ref().expect("mp_reach");
    assert_eq!(mp.family, Family::Ipv4Unicast);
    assert_eq!(mp.nlri, vec![net("172.20.0.0/14")]);
    // The capability lost on a new session: the route is withdrawn.
    let ups = out.sync(&wanted, &session());
    assert_eq!(ups[0].withdrawn, vec![net("172.20.0.0/14")]);
}

#[test]
fn families_not_negotiated_are_skipped() {
    let wanted = BTreeMap::from([(net("2001:db8:1::/48"), export(&[65001], v6nh()))]);
    let s = OutSession {
        families: vec![Family::Ipv4Unicast],
        ..session()
    };
    assert!(AdjRibOut::default().sync(&wanted, &s).is_empty());
}

#[test]
fn big_tables_split_into_messages_that_fit() {
    let a = export(&[65001, 65002, 65003], v4nh());
    let c = export(&[65001], v6nh());
    let mut wanted = BTreeMap::new();
    for i in 0..3000u32 {
        let v4 = Ipv4Addr::from(0x0a00_0000 + (i << 8));
        wanted.insert(
            IpNetwork::V4(ipnetwork::Ipv4Network::new(v4, 24).expect("net")),
            a.clone(),
        );
        let v6 =
            Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + (u128::from(i) << 64));
        wanted.insert(
            IpNetwork::V6(ipnetwork::Ipv6Network::new(v6, 64).expect("net")),
            c.clone(),
        );
    }
    for s in [
        session(),
        OutSession {
            max_len: 512,
            ..session()
        },
    ] {
        let mut out = AdjRibOut::default();
        let ups = out.sync(&wanted, &s);
        assert!(ups.len() > 2);
        let mut seen = 0;
        for u in &ups {
            let bytes = Message::Update(u.clone()).emit(s.codec);
            assert!(bytes.len() <= s.max_len, "{} > {}", bytes.len(), s.max_len);
            let Ok(Message::Update(back)) = Message::parse_with_max(&bytes, s.codec, s.max_len)
            else {
                panic!("does not parse back")
            };
            assert!(back.faults.is_clean());
            seen += back.announced().count();
        }
        assert_eq!(seen, 6000);
        // Withdrawing everything also fits.
        for u in out.sync(&BTreeMap::new(), &s) {
            assert!(Message::Update(u).emit(s.codec).len() <= s.max_len);
        }
    }
}

#[test]
fn refresh_resends_one_family() {
    let wanted = BTreeMap::from([
        (net("10.1.0.0/24"), export(&[65001], v4nh())),
        (net("2001:db8:1::/48"), export(&[65001], v6nh())),
    ]);
    let mut out = AdjRibOut::default();
    out.sync(&wanted, &session());
    let ups = out.refresh(Family::Ipv4Unicast, &session());
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].nlri, vec![net("10.1.0.0/24")]);
}
