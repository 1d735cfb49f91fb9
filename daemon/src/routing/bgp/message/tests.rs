//! Codec tests: literal bytes laid out from RFC 4271 4, RFC 4760 3-4, RFC 5492 4,
//! RFC 8950 3, RFC 6793, both directions; every RFC 7606 case; proptests that no input
//! panics.

use super::*;
use crate::routing::bgp::attr::*;
use proptest::prelude::*;
use std::net::Ipv6Addr;

const C4: Codec = Codec {
    four_octet_as: true,
};
const C2: Codec = Codec {
    four_octet_as: false,
};

fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(ty);
    v.extend_from_slice(body);
    v
}

fn net(s: &str) -> IpNetwork {
    s.parse().expect("test prefix")
}

/// Wraps attribute bytes and NLRI into an UPDATE body.
fn update_body(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    b
}

const ORIGIN_IGP: [u8; 4] = [0x40, 1, 1, 0];
const AS_PATH_65001: [u8; 9] = [0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
const NEXT_HOP_10_0_0_1: [u8; 7] = [0x40, 3, 4, 10, 0, 0, 1];
const NLRI_10_1_0_0_24: [u8; 4] = [24, 10, 1, 0];

fn parse_update(attrs: &[u8], nlri: &[u8], codec: Codec) -> Result<UpdateRepr, Notification> {
    match Message::parse(&msg(TYPE_UPDATE, &update_body(&[], attrs, nlri)), codec)? {
        Message::Update(u) => Ok(u),
        m => panic!("not an update: {m:?}"),
    }
}

fn base_attrs() -> Vec<u8> {
    [&ORIGIN_IGP[..], &AS_PATH_65001, &NEXT_HOP_10_0_0_1].concat()
}

#[test]
fn keepalive_bytes_both_ways() {
    let bytes = msg(TYPE_KEEPALIVE, &[]);
    assert_eq!(bytes.len(), 19);
    assert_eq!(&bytes[16..], &[0x00, 0x13, 0x04]);
    assert_eq!(Message::parse(&bytes, C4), Ok(Message::Keepalive));
    assert_eq!(Message::Keepalive.emit(C4), bytes);
}

fn open_bytes() -> Vec<u8> {
    let body: Vec<u8> = [
        &[4, 0xfd, 0xe9, 0x00, 0xf0, 10, 0, 0, 1, 30, 2, 28][..],
        &[1, 4, 0, 1, 0, 1],        // multiprotocol IPv4 unicast
        &[1, 4, 0, 2, 0, 1],        // multiprotocol IPv6 unicast
        &[2, 0],                    // route refresh
        &[5, 6, 0, 1, 0, 1, 0, 2],  // extended next hop: IPv4 unicast over IPv6
        &[65, 4, 0, 0, 0xfd, 0xe9], // 4-octet AS 65001
    ]
    .concat();
    msg(TYPE_OPEN, &body)
}

fn open_repr() -> OpenRepr {
    OpenRepr {
        my_as: 65001,
        hold_time: 240,
        bgp_id: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::ExtendedNextHop(vec![(Family::Ipv4Unicast, AFI_IPV6)]),
            Capability::FourOctetAs(65001),
        ],
    }
}

#[test]
fn open_with_capabilities_bytes_both_ways() {
    let bytes = open_bytes();
    assert_eq!(bytes.len(), 59);
    let m = Message::parse(&bytes, C2).expect("open parses");
    assert_eq!(m, Message::Open(open_repr()));
    assert_eq!(m.emit(C2), bytes);
    assert_eq!(m.buffer_len(C2), bytes.len());
    let o = open_repr();
    assert_eq!(o.asn(), 65001);
    assert_eq!(o.families(), vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
}

#[test]
fn open_four_octet_as_uses_capability() {
    let mut o = open_repr();
    o.my_as = AS_TRANS;
    o.capabilities = vec![Capability::FourOctetAs(4_200_000_001)];
    assert_eq!(o.asn(), 4_200_000_001);
    assert_eq!(o.families(), vec![Family::Ipv4Unicast]);
}

#[test]
fn open_unknown_capability_is_kept_verbatim() {
    let body = [4, 0, 1, 0, 90, 1, 1, 1, 1, 6, 2, 4, 64, 2, 0x80, 0x78];
    let m = Message::parse(&msg(TYPE_OPEN, &body), C2).expect("parses");
    let Message::Open(o) = &m else { panic!() };
    assert_eq!(
        o.capabilities,
        vec![Capability::Other {
            code: 64,
            data: vec![0x80, 0x78]
        }]
    );
    assert_eq!(m.emit(C2), msg(TYPE_OPEN, &body));
}

#[test]
fn open_with_one_parameter_per_capability() {
    // FRR and others put each capability in its own optional parameter.
    let body = [
        &[4, 0xfd, 0xea, 0, 3, 10, 0, 0, 2, 16][..],
        &[2, 6, 1, 4, 0, 2, 0, 1],
        &[2, 6, 65, 4, 0, 0, 0xfd, 0xea],
    ]
    .concat();
    let Message::Open(o) = Message::parse(&msg(TYPE_OPEN, &body), C2).expect("parses") else {
        panic!()
    };
    assert_eq!(
        o.capabilities,
        vec![
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::FourOctetAs(65002)
        ]
    );
    assert_eq!(o.hold_time, 3);
    assert_eq!(o.families(), vec![Family::Ipv6Unicast]);
}

#[test]
fn open_extended_parameters_length_rfc9072() {
    let mut o = open_repr();
    for i in 0..60u8 {
        o.capabilities.push(Capability::Other {
            code: 200,
            data: vec![i; 3],
        });
    }
    let bytes = Message::Open(o.clone()).emit(C2);
    assert_eq!(bytes[19 + 9], 255);
    assert_eq!(bytes[19 + 10], 255);
    assert_eq!(Message::parse(&bytes, C2), Ok(Message::Open(o.clone())));
    assert_eq!(Message::Open(o).buffer_len(C2), bytes.len());
}

#[test]
fn open_errors() {
    let mut b = open_bytes();
    b[19] = 3;
    assert_eq!(
        Message::parse(&b, C2),
        Err(Notification::with_data(
            OPEN_ERROR,
            OPEN_BAD_VERSION,
            &[0, 4]
        ))
    );
    let mut b = open_bytes();
    b[22..24].copy_from_slice(&[0, 2]);
    assert_eq!(
        Message::parse(&b, C2),
        Err(Notification::new(OPEN_ERROR, OPEN_BAD_HOLD_TIME))
    );
    let mut b = open_bytes();
    b[29] = 1; // optional parameter type 1 (deprecated authentication)
    assert_eq!(
        Message::parse(&b, C2),
        Err(Notification::new(OPEN_ERROR, OPEN_UNSUPPORTED_PARAM))
    );
    let mut b = open_bytes();
    b[28] = 29; // parameters length off by one
    assert_eq!(
        Message::parse(&b, C2).map(|_| ()).unwrap_err().code,
        OPEN_ERROR
    );
    // Too short for the fixed fields.
    let b = msg(TYPE_OPEN, &[4, 0, 1, 0, 90, 1, 1, 1]);
    assert_eq!(
        Message::parse(&b, C2).unwrap_err(),
        Notification::with_data(HEADER_ERROR, HDR_BAD_LENGTH, &[0, 27])
    );
}

#[test]
fn header_errors() {
    let mut b = msg(TYPE_KEEPALIVE, &[]);
    b[3] = 0;
    assert_eq!(
        Message::parse(&b, C4),
        Err(Notification::new(HEADER_ERROR, HDR_NOT_SYNCHRONIZED))
    );
    assert_eq!(
        Message::parse(&msg(TYPE_KEEPALIVE, &[0]), C4),
        Err(Notification::with_data(
            HEADER_ERROR,
            HDR_BAD_LENGTH,
            &[0, 20]
        ))
    );
    assert_eq!(
        Message::parse(&msg(9, &[]), C4),
        Err(Notification::with_data(HEADER_ERROR, HDR_BAD_TYPE, &[9]))
    );
    assert_eq!(
        Message::parse(&msg(TYPE_UPDATE, &vec![0; 4078]), C4),
        Err(Notification::with_data(
            HEADER_ERROR,
            HDR_BAD_LENGTH,
            &[0x10, 0x01]
        ))
    );
    assert_eq!(
        Message::parse(&msg(TYPE_ROUTE_REFRESH, &[0, 1, 0]), C4)
            .unwrap_err()
            .code,
        ROUTE_REFRESH_ERROR
    );
}

#[test]
fn notification_and_route_refresh_both_ways() {
    let n = msg(TYPE_NOTIFICATION, &[6, 2, 5, b'b', b'y', b'e', b'!', b'!']);
    let m = Message::parse(&n, C4).expect("parses");
    assert_eq!(
        m,
        Message::Notification(Notification::with_data(
            6,
            2,
            &[5, b'b', b'y', b'e', b'!', b'!']
        ))
    );
    assert_eq!(m.emit(C4), n);
    let rr = msg(TYPE_ROUTE_REFRESH, &[0, 2, 0, 1]);
    let m = Message::parse(&rr, C4).expect("parses");
    assert_eq!(
        m,
        Message::RouteRefresh(RouteRefreshRepr {
            afi: 2,
            subtype: 0,
            safi: 1
        })
    );
    assert_eq!(m.emit(C4), rr);
}

#[test]
fn ipv4_update_bytes_both_ways() {
    let attrs: Vec<u8> = [
        &ORIGIN_IGP[..],
        &AS_PATH_65001,
        &NEXT_HOP_10_0_0_1,
        &[0x80, 4, 4, 0, 0, 0, 100],     // MED 100
        &[0xc0, 8, 4, 0xfd, 0xe9, 0, 1], // community 65001:1
    ]
    .concat();
    let bytes = msg(TYPE_UPDATE, &update_body(&[], &attrs, &NLRI_10_1_0_0_24));
    assert_eq!(bytes.len(), 61);
    let m = Message::parse(&bytes, C4).expect("parses");
    let want = UpdateRepr {
        withdrawn: vec![],
        attrs: PathAttrs {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(&[65001])),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            med: Some(100),
            communities: vec![0xfde9_0001],
            ..PathAttrs::default()
        },
        nlri: vec![net("10.1.0.0/24")],
        faults: Faults::default(),
    };
    assert_eq!(m, Message::Update(want));
    assert_eq!(m.emit(C4), bytes);
}

#[test]
fn ipv4_withdraw_only_needs_no_attributes() {
    let bytes = msg(TYPE_UPDATE, &update_body(&[24, 10, 1, 0, 0], &[], &[]));
    let Message::Update(u) = Message::parse(&bytes, C4).expect("parses") else {
        panic!()
    };
    assert_eq!(u.withdrawn, vec![net("10.1.0.0/24"), net("0.0.0.0/0")]);
    assert!(u.faults.is_clean());
    assert_eq!(Message::Update(u).emit(C4), bytes);
}

#[test]
fn mp_reach_ipv6_with_link_local_next_hop_as_bird_sends() {
    let global: Ipv6Addr = "2001:db8::1".parse().expect("addr");
    let ll: Ipv6Addr = "fe80::1".parse().expect("addr");
    let mut mp = vec![0, 2, 1, 32];
    mp.extend_from_slice(&global.octets());
    mp.extend_from_slice(&ll.octets());
    mp.push(0);
    mp.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 1]);
    let mut attrs = vec![0x80, 14, mp.len() as u8];
    attrs.extend_from_slice(&mp);
    attrs.extend_from_slice(&ORIGIN_IGP);
    attrs.extend_from_slice(&AS_PATH_65001);
    let bytes = msg(TYPE_UPDATE, &update_body(&[], &attrs, &[]));
    let Message::Update(u) = Message::parse(&bytes, C4).expect("parses") else {
        panic!()
    };
    assert!(u.faults.is_clean(), "{:?}", u.faults);
    assert_eq!(
        u.attrs.mp_reach,
        Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: MpNextHop::V6 {
                global,
                link_local: Some(ll)
            },
            nlri: vec![net("2001:db8:1::/48")],
        })
    );
    assert_eq!(u.announced().count(), 1);
    assert_eq!(Message::Update(u).emit(C4), bytes);
}

#[test]
fn mp_reach_ipv4_over_ipv6_next_hop_rfc8950() {
    let u = UpdateRepr {
        attrs: PathAttrs {
            origin: Some(Origin::Incomplete),
            as_path: Some(AsPath::sequence(&[4_200_000_000, 65002])),
            mp_reach: Some(MpReach {
                family: Family::Ipv4Unicast,
                next_hop: MpNextHop::V6 {
                    global: "fe80::2".parse().expect("addr"),
                    link_local: None,
                },
                nlri: vec![net("172.20.0.0/14"), net("10.0.0.0/8")],
            }),
            mp_unreach: Some(MpUnreach {
                family: Family::Ipv6Unicast,
                withdrawn: vec![net("fd00::/8"), net("::/0")],
            }),
            ..PathAttrs::default()
        },
        ..UpdateRepr::default()
    };
    let bytes = Message::Update(u.clone()).emit(C4);
    assert_eq!(Message::parse(&bytes, C4), Ok(Message::Update(u.clone())));
    // MP_UNREACH is written first, then MP_REACH (RFC 7606 5.1).
    assert_eq!(bytes[23..25], [0x80, 15]);
    assert_eq!(u.withdrawals().count(), 2);
}

#[test]
fn two_octet_session_carries_as4_path() {
    let attrs = PathAttrs {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(&[65001, 4_200_000_000])),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        aggregator: Some(Aggregator {
            asn: 4_200_000_000,
            addr: Ipv4Addr::new(1, 2, 3, 4),
        }),
        ..PathAttrs::default()
    };
    let u = UpdateRepr {
        attrs,
        nlri: vec![net("192.0.2.0/24")],
        ..UpdateRepr::default()
    };
    let bytes = Message::Update(u).emit(C2);
    let Message::Update(back) = Message::parse(&bytes, C2).expect("parses") else {
        panic!()
    };
    let two = back.attrs.as_path.clone().expect("as path");
    assert_eq!(two, AsPath::sequence(&[65001, u32::from(AS_TRANS)]));
    let four = back.attrs.as4_path.clone().expect("as4 path");
    assert_eq!(
        two.merge_as4(&four),
        AsPath::sequence(&[65001, 4_200_000_000])
    );
    assert_eq!(
        back.attrs.as4_aggregator.map(|a| a.asn),
        Some(4_200_000_000)
    );
    assert_eq!(
        back.attrs.aggregator.map(|a| a.asn),
        Some(u32::from(AS_TRANS))
    );
    // Between 4-octet speakers AS4_PATH is ignored (RFC 6793 4.1).
    let Message::Update(b4) = Message::parse(
        &msg(
            TYPE_UPDATE,
            &update_body(
                &[],
                &[&base_attrs()[..], &[0xc0, 17, 6, 2, 1, 0, 0, 0, 1]].concat(),
                &NLRI_10_1_0_0_24,
            ),
        ),
        C4,
    )
    .expect("parses") else {
        panic!()
    };
    assert_eq!(b4.attrs.as4_path, None);
    assert!(b4.faults.is_clean());
}

#[test]
fn merge_as4_keeps_leading_two_octet_ases() {
    let two = AsPath::sequence(&[65001, 65002, 23456, 23456]);
    let four = AsPath::sequence(&[4_200_000_000, 4_200_000_001]);
    assert_eq!(
        two.merge_as4(&four),
        AsPath::sequence(&[65001, 65002, 4_200_000_000, 4_200_000_001])
    );
    // A longer AS4_PATH is ignored.
    let long = AsPath::sequence(&[1, 2, 3, 4, 5]);
    assert_eq!(two.merge_as4(&long), two);
}

#[test]
fn large_communities_and_atomic_aggregate_round_trip() {
    let attrs: Vec<u8> = [
        &base_attrs()[..],
        &[0x40, 6, 0],
        &[0xc0, 32, 12, 0, 0, 0xfd, 0xe9, 0, 0, 0, 1, 0, 0, 0, 2],
    ]
    .concat();
    let bytes = msg(TYPE_UPDATE, &update_body(&[], &attrs, &NLRI_10_1_0_0_24));
    let Message::Update(u) = Message::parse(&bytes, C4).expect("parses") else {
        panic!()
    };
    assert!(u.attrs.atomic_aggregate);
    assert_eq!(
        u.attrs.large_communities,
        vec![LargeCommunity {
            global: 65001,
            local1: 1,
            local2: 2
        }]
    );
    assert_eq!(Message::Update(u).emit(C4), bytes);
}

#[test]
fn extended_length_attribute_round_trips() {
    let u = UpdateRepr {
        attrs: PathAttrs {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(&[65001])),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            communities: (0..100).collect(),
            ..PathAttrs::default()
        },
        nlri: vec![net("10.0.0.0/8")],
        ..UpdateRepr::default()
    };
    let bytes = Message::Update(u.clone()).emit(C4);
    assert_eq!(Message::parse(&bytes, C4), Ok(Message::Update(u)));
}

// RFC 7606 cases, one per test line.

fn faults_of(attrs: &[u8], codec: Codec) -> Faults {
    parse_update(attrs, &NLRI_10_1_0_0_24, codec)
        .expect("not a session reset")
        .faults
}

#[test]
fn rfc7606_treat_as_withdraw_cases() {
    let b = base_attrs();
    let tw = |attrs: Vec<u8>| faults_of(&attrs, C4).treat_as_withdraw;
    // ORIGIN value 3, ORIGIN length 2, ORIGIN with the optional bit.
    assert_eq!(
        tw([&[0x40, 1, 1, 3][..], &b[4..]].concat()),
        Some(AttrFault::Value(1))
    );
    assert_eq!(
        tw([&[0x40, 1, 2, 0, 0][..], &b[4..]].concat()),
        Some(AttrFault::Length(1))
    );
    assert_eq!(
        tw([&[0xc0, 1, 1, 0][..], &b[4..]].concat()),
        Some(AttrFault::Flags(1))
    );
    // AS_PATH with a zero-length segment, a bad segment type, a truncated segment.
    let tail = [&ORIGIN_IGP[..], &NEXT_HOP_10_0_0_1].concat();
    assert_eq!(
        tw([&[0x40, 2, 2, 2, 0][..], &tail].concat()),
        Some(AttrFault::Value(2))
    );
    assert_eq!(
        tw([&[0x40, 2, 6, 9, 1, 0, 0, 0, 1][..], &tail].concat()),
        Some(AttrFault::Value(2))
    );
    assert_eq!(
        tw([&[0x40, 2, 4, 2, 1, 0, 0][..], &tail].concat()),
        Some(AttrFault::Value(2))
    );
    // NEXT_HOP length 5; MED length 3; LOCAL_PREF length 0.
    let no_nh = [&ORIGIN_IGP[..], &AS_PATH_65001].concat();
    assert_eq!(
        tw([&no_nh[..], &[0x40, 3, 5, 10, 0, 0, 1, 0]].concat()),
        Some(AttrFault::Length(3))
    );
    assert_eq!(
        tw([&b[..], &[0x80, 4, 3, 0, 0, 1]].concat()),
        Some(AttrFault::Length(4))
    );
    assert_eq!(
        tw([&b[..], &[0x40, 5, 0]].concat()),
        Some(AttrFault::Length(5))
    );
    // COMMUNITIES length 3 or 0; LARGE_COMMUNITY length 13.
    assert_eq!(
        tw([&b[..], &[0xc0, 8, 3, 0, 0, 1]].concat()),
        Some(AttrFault::Length(8))
    );
    assert_eq!(
        tw([&b[..], &[0xc0, 8, 0]].concat()),
        Some(AttrFault::Length(8))
    );
    let mut lc = vec![0xc0, 32, 13];
    lc.extend_from_slice(&[0; 13]);
    assert_eq!(tw([&b[..], &lc].concat()), Some(AttrFault::Length(32)));
    // Missing mandatory attributes.
    assert_eq!(tw(b[4..].to_vec()), Some(AttrFault::Missing(1)));
    assert_eq!(
        tw([&ORIGIN_IGP[..], &NEXT_HOP_10_0_0_1].concat()),
        Some(AttrFault::Missing(2))
    );
    assert_eq!(tw(no_nh.clone()), Some(AttrFault::Missing(3)));
    // An attribute that overruns the list, and a list ending in 2 stray octets; the NLRI
    // is still found through the total attribute length.
    let u = parse_update(
        &[&b[..], &[0xc0, 8, 8, 0, 0]].concat(),
        &NLRI_10_1_0_0_24,
        C4,
    )
    .expect("not a reset");
    assert_eq!(u.faults.treat_as_withdraw, Some(AttrFault::ListOverrun));
    assert_eq!(u.nlri, vec![net("10.1.0.0/24")]);
    assert_eq!(
        tw([&b[..], &[0xc0, 8]].concat()),
        Some(AttrFault::ListOverrun)
    );
}

#[test]
fn rfc7606_attribute_discard_cases() {
    let b = base_attrs();
    let b2: Vec<u8> = [
        &ORIGIN_IGP[..],
        &[0x40, 2, 4, 2, 1, 0xfd, 0xe9],
        &NEXT_HOP_10_0_0_1,
    ]
    .concat();
    let f = |extra: &[u8], codec: Codec| {
        let base = if codec.four_octet_as { &b } else { &b2 };
        faults_of(&[&base[..], extra].concat(), codec)
    };
    let clean_but = |faults: Faults, fault| {
        assert_eq!(faults.treat_as_withdraw, None);
        assert_eq!(faults.discarded, vec![fault]);
    };
    clean_but(f(&[0x40, 6, 1, 0], C4), AttrFault::Length(6));
    clean_but(f(&[0xc0, 7, 6, 0, 1, 1, 2, 3, 4], C4), AttrFault::Length(7));
    clean_but(
        f(&[0xc0, 7, 8, 0, 0, 0, 1, 1, 2, 3, 4], C2),
        AttrFault::Length(7),
    );
    clean_but(f(&[0xc0, 17, 3, 2, 1, 0], C2), AttrFault::Value(17));
    clean_but(
        f(&[0xc0, 17, 6, 3, 1, 0, 0, 0, 1], C2),
        AttrFault::Value(17),
    );
    clean_but(
        f(&[0xc0, 18, 6, 0, 1, 1, 2, 3, 4], C2),
        AttrFault::Length(18),
    );
    // A repeated attribute: the first one stands.
    let u = parse_update(&[&b[..], &[0x40, 1, 1, 2]].concat(), &NLRI_10_1_0_0_24, C4)
        .expect("not a reset");
    clean_but(u.faults, AttrFault::Duplicate(1));
    assert_eq!(u.attrs.origin, Some(Origin::Igp));
}

#[test]
fn rfc7606_session_reset_cases() {
    let b = base_attrs();
    let reset = |attrs: Vec<u8>, nlri: &[u8]| parse_update(&attrs, nlri, C4).unwrap_err();
    let mp_unreach = [0x80, 15, 3, 0, 2, 1];
    // MP_UNREACH twice.
    assert_eq!(
        reset(
            [&b[..], &mp_unreach, &mp_unreach].concat(),
            &NLRI_10_1_0_0_24
        ),
        Notification::new(UPDATE_ERROR, subcode::MALFORMED_ATTR_LIST)
    );
    // MP_REACH with an IPv4 next hop for IPv6 NLRI; MP_UNREACH with a prefix length 129;
    // MP_REACH with an unknown family; MP_REACH overrunning the list.
    for mp in [
        vec![0x80, 14, 9, 0, 2, 1, 4, 10, 0, 0, 1, 0],
        vec![0x80, 15, 4, 0, 2, 1, 129],
        vec![0x80, 14, 9, 0, 3, 1, 4, 10, 0, 0, 1, 0],
        vec![0x80, 14, 40, 0, 2, 1],
    ] {
        assert_eq!(
            reset([&b[..], &mp].concat(), &[]).subcode,
            subcode::OPTIONAL_ATTR,
            "{mp:?}"
        );
    }
    // An unrecognized well-known attribute.
    assert_eq!(
        reset([&b[..], &[0x40, 99, 1, 7]].concat(), &[]),
        Notification::with_data(
            UPDATE_ERROR,
            subcode::UNRECOGNIZED_WELL_KNOWN,
            &[0x40, 99, 1, 7]
        )
    );
    // NLRI with prefix length 33, and a truncated NLRI.
    assert_eq!(
        reset(b.clone(), &[33, 1, 2, 3, 4, 5]).subcode,
        subcode::INVALID_NETWORK
    );
    assert_eq!(
        reset(b.clone(), &[24, 10, 1]).subcode,
        subcode::INVALID_NETWORK
    );
    // Withdrawn length beyond the message, total attribute length beyond the message.
    let bad = msg(TYPE_UPDATE, &[0, 9, 24, 10, 1, 0, 0, 0]);
    assert_eq!(
        Message::parse(&bad, C4).unwrap_err().subcode,
        subcode::MALFORMED_ATTR_LIST
    );
    let bad = msg(TYPE_UPDATE, &[0, 0, 0, 9, 0x40, 1, 1, 0]);
    assert_eq!(
        Message::parse(&bad, C4).unwrap_err().subcode,
        subcode::MALFORMED_ATTR_LIST
    );
}

#[test]
fn unknown_optional_transitive_travels_unknown_non_transitive_is_dropped() {
    let u = parse_update(
        &[&base_attrs()[..], &[0xc0, 99, 2, 1, 2], &[0x80, 98, 1, 0]].concat(),
        &NLRI_10_1_0_0_24,
        C4,
    )
    .expect("parses");
    assert!(u.faults.is_clean());
    assert_eq!(
        u.attrs.unknown,
        vec![RawAttr {
            flags: 0xc0,
            code: 99,
            data: vec![1, 2]
        }]
    );
}

#[test]
fn prefix_host_bits_are_cleared() {
    let u = parse_update(&base_attrs(), &[24, 10, 1, 7, 9, 10, 255], C4).expect("parses");
    assert_eq!(u.nlri, vec![net("10.1.7.0/24"), net("10.128.0.0/9")]);
}

#[test]
fn framer_splits_and_joins() {
    let ka = msg(TYPE_KEEPALIVE, &[]);
    let open = open_bytes();
    let stream = [&open[..], &ka, &ka].concat();
    let mut f = Framer::new();
    // Byte by byte.
    let mut out = Vec::new();
    for b in &stream {
        f.push(std::slice::from_ref(b));
        while let Some(m) = f.next_message() {
            out.push(m.expect("frames"));
        }
    }
    assert_eq!(out, vec![open.clone(), ka.clone(), ka.clone()]);
    // All at once.
    let mut f = Framer::new();
    f.push(&stream);
    assert_eq!(f.next_message(), Some(Ok(open)));
    assert_eq!(f.next_message(), Some(Ok(ka.clone())));
    assert_eq!(f.next_message(), Some(Ok(ka)));
    assert_eq!(f.next_message(), None);
}

#[test]
fn framer_errors_are_sticky() {
    let mut f = Framer::new();
    let mut bad = msg(TYPE_KEEPALIVE, &[]);
    bad[17] = 18;
    f.push(&bad);
    let e = Notification::with_data(HEADER_ERROR, HDR_BAD_LENGTH, &[0, 18]);
    assert_eq!(f.next_message(), Some(Err(e.clone())));
    f.push(&msg(TYPE_KEEPALIVE, &[]));
    assert_eq!(f.next_message(), Some(Err(e)));
    let mut f = Framer::new();
    f.push(&[0u8; 19]);
    assert_eq!(
        f.next_message(),
        Some(Err(Notification::new(HEADER_ERROR, HDR_NOT_SYNCHRONIZED)))
    );
    let mut f = Framer::new();
    f.push(&[&[0xff; 16][..], &[0x10, 0x01, 2]].concat());
    assert_eq!(
        f.next_message(),
        Some(Err(Notification::with_data(
            HEADER_ERROR,
            HDR_BAD_LENGTH,
            &[0x10, 0x01]
        )))
    );
}

fn arb_prefix_v4() -> impl Strategy<Value = IpNetwork> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| {
        let m = u32::MAX.checked_shl(32 - u32::from(l)).unwrap_or(0);
        IpNetwork::V4(ipnetwork::Ipv4Network::new(Ipv4Addr::from(a & m), l).expect("valid"))
    })
}

fn arb_prefix_v6() -> impl Strategy<Value = IpNetwork> {
    (any::<u128>(), 0u8..=128).prop_map(|(a, l)| {
        let m = u128::MAX.checked_shl(128 - u32::from(l)).unwrap_or(0);
        IpNetwork::V6(ipnetwork::Ipv6Network::new(Ipv6Addr::from(a & m), l).expect("valid"))
    })
}

proptest! {
    #[test]
    fn parsing_random_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200),
                                         ty in 0u8..7, four in any::<bool>()) {
        let codec = Codec { four_octet_as: four };
        let _ = Message::parse(&msg(ty, &body), codec);
        let _ = Message::parse(&body, codec);
        let _ = OpenRepr::parse(&body);
        let _ = UpdateRepr::parse(&body, codec);
    }

    #[test]
    fn random_attribute_lists_never_panic(attrs in proptest::collection::vec(
            (any::<u8>(), prop_oneof![Just(1u8), Just(2), Just(3), Just(4), Just(5), Just(6),
                Just(7), Just(8), Just(14), Just(15), Just(17), Just(18), Just(32), any::<u8>()],
             proptest::collection::vec(any::<u8>(), 0..40)), 0..6),
            four in any::<bool>()) {
        let mut a = Vec::new();
        for (flags, code, data) in attrs {
            a.extend_from_slice(&[flags & !FLAG_EXTENDED, code, data.len() as u8]);
            a.extend_from_slice(&data);
        }
        let _ = parse_update(&a, &NLRI_10_1_0_0_24, Codec { four_octet_as: four });
    }

    #[test]
    fn framer_on_random_chunks_never_panics(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut f = Framer::new();
        for c in chunks {
            f.push(&c);
            for _ in 0..4 {
                let _ = f.next_message();
            }
        }
    }

    #[test]
    fn updates_round_trip(nlri in proptest::collection::vec(arb_prefix_v4(), 0..10),
                          withdrawn in proptest::collection::vec(arb_prefix_v4(), 0..10),
                          v6 in proptest::collection::vec(arb_prefix_v6(), 1..10),
                          path in proptest::collection::vec(1u32.., 1..10),
                          med in proptest::option::of(any::<u32>()),
                          lp in proptest::option::of(any::<u32>()),
                          four in any::<bool>()) {
        let codec = Codec { four_octet_as: four };
        let path = if four { path } else { path.into_iter().map(|a| a & 0xffff).map(|a| a.max(1)).collect() };
        let u = UpdateRepr {
            withdrawn,
            nlri: nlri.clone(),
            attrs: PathAttrs {
                origin: Some(Origin::Egp),
                as_path: Some(AsPath::sequence(&path)),
                next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
                med,
                local_pref: lp,
                mp_reach: Some(MpReach {
                    family: Family::Ipv6Unicast,
                    next_hop: MpNextHop::V6 { global: "2001:db8::1".parse().expect("addr"), link_local: None },
                    nlri: v6,
                }),
                ..PathAttrs::default()
            },
            faults: Faults::default(),
        };
        let bytes = Message::Update(u.clone()).emit(codec);
        if bytes.len() <= MAX_LEN {
            prop_assert_eq!(Message::parse(&bytes, codec), Ok(Message::Update(u)));
        }
    }
}

/// Found by the bgp_message fuzz target: an extended next hop capability naming only
/// families we do not know used to become an empty `ExtendedNextHop`, which wrote back as
/// a different capability.
#[test]
fn extended_next_hop_of_unknown_families_round_trips() {
    let hex = "ffffffffffffffffffffffffffffffff0027010 4fde9005ac00002010a020805062d0100010002";
    let hex: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let codec = Codec::default();
    let m = Message::parse(&bytes, codec).unwrap();
    let Message::Open(o) = &m else {
        panic!("an OPEN: {m:?}")
    };
    assert!(!o.has(|c| matches!(c, Capability::ExtendedNextHop(_))));
    assert_eq!(Message::parse(&m.emit(codec), codec), Ok(m));
}

/// A malformed ROUTE-REFRESH is quoted in the NOTIFICATION (RFC 7313 5); a 4096-byte one
/// must not make a NOTIFICATION longer than a message may be.
#[test]
fn notification_quoting_a_maximal_message_still_fits() {
    let mut bytes = vec![0xff; 16];
    bytes.extend_from_slice(&4096u16.to_be_bytes());
    bytes.push(5);
    bytes.resize(4096, 0);
    let n = Message::parse(&bytes, Codec::default()).unwrap_err();
    let out = Message::Notification(n).emit(Codec::default());
    assert!(out.len() <= 4096, "{} bytes", out.len());
}

#[test]
fn extended_message_capability_and_longer_messages() {
    // Code 6, length 0 (RFC 8654 3).
    let body = [4, 0xfd, 0xe9, 0, 90, 1, 1, 1, 1, 4, 2, 2, 6, 0];
    let m = Message::parse(&msg(TYPE_OPEN, &body), C2).expect("parses");
    let Message::Open(o) = &m else { panic!() };
    assert_eq!(o.capabilities, vec![Capability::ExtendedMessage]);
    assert_eq!(m.emit(C2), msg(TYPE_OPEN, &body));

    // A 5,000-byte UPDATE frame: refused at 4096, framed at 65535.
    let mut long = vec![0xff; 16];
    long.extend_from_slice(&5000u16.to_be_bytes());
    long.push(TYPE_UPDATE);
    long.resize(5000, 0);
    let mut f = Framer::new();
    f.push(&long);
    assert!(matches!(f.next_message(), Some(Err(_))));
    let mut f = Framer::new();
    f.set_max_len(EXTENDED_MAX_LEN);
    f.push(&long);
    assert_eq!(f.next_message().map(|m| m.map(|b| b.len())), Some(Ok(5000)));
}
