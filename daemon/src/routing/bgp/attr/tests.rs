//! Attribute codec tests for what `message::tests` does not cover: the RFC 4456 route
//! reflection attributes and their RFC 7606 handling.

use super::*;

const C4: Codec = Codec {
    four_octet_as: true,
};

fn reflected() -> PathAttrs {
    PathAttrs {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        local_pref: Some(100),
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(10, 0, 0, 8)],
        ..PathAttrs::default()
    }
}

/// The well-formed mandatory attributes of an iBGP announcement, then `extra`.
fn with(extra: &[u8]) -> Vec<u8> {
    let mut v = vec![
        0x40, 1, 1, 0, // ORIGIN IGP
        0x40, 2, 0, // AS_PATH empty
        0x40, 3, 4, 192, 0, 2, 1, // NEXT_HOP
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn originator_id_and_cluster_list_bytes_both_ways() {
    let mut out = Vec::new();
    emit_attrs(&reflected(), C4, &mut out);
    // After LOCAL_PREF (type 5), in type order: 9 then 10, optional non-transitive.
    let tail = [
        0x80, 9, 4, 10, 0, 0, 1, // ORIGINATOR_ID
        0x80, 10, 8, 10, 0, 0, 9, 10, 0, 0, 8, // CLUSTER_LIST
    ];
    assert!(out.ends_with(&tail), "{out:02x?}");
    let (back, faults) = parse_attrs(&out, C4, true).expect("parses");
    assert!(faults.is_clean(), "{faults:?}");
    assert_eq!(back, reflected());
}

#[test]
fn absent_reflection_attributes_are_not_written() {
    let mut attrs = reflected();
    attrs.originator_id = None;
    attrs.cluster_list.clear();
    let mut out = Vec::new();
    emit_attrs(&attrs, C4, &mut out);
    let (back, _) = parse_attrs(&out, C4, true).expect("parses");
    assert_eq!(back.originator_id, None);
    assert!(back.cluster_list.is_empty());
    assert!(!out.windows(2).any(|w| w == [0x80, 9] || w == [0x80, 10]));
}

#[test]
fn malformed_reflection_attributes_withdraw_only_from_ibgp() {
    let cases: [(&[u8], AttrFault); 6] = [
        (&[0x80, 9, 3, 1, 2, 3], AttrFault::Length(9)),
        (&[0x80, 9, 5, 1, 2, 3, 4, 5], AttrFault::Length(9)),
        (&[0xc0, 9, 4, 1, 2, 3, 4], AttrFault::Flags(9)),
        (&[0x80, 10, 0], AttrFault::Length(10)),
        (&[0x80, 10, 6, 1, 2, 3, 4, 5, 6], AttrFault::Length(10)),
        (&[0x40, 10, 4, 1, 2, 3, 4], AttrFault::Flags(10)),
    ];
    for (extra, fault) in cases {
        let (attrs, faults) = parse_attrs(&with(extra), C4, true).expect("no reset");
        assert_eq!(faults.ibgp_treat_as_withdraw, Some(fault), "{extra:?}");
        assert_eq!(faults.treat_as_withdraw, None, "{extra:?}");
        assert!(!faults.is_clean());
        assert!(faults.withdraws(false), "iBGP: treat-as-withdraw");
        assert!(!faults.withdraws(true), "eBGP: attribute discard");
        assert_eq!(attrs.originator_id, None);
        assert!(attrs.cluster_list.is_empty());
        assert_eq!(
            attrs.next_hop,
            Some(Ipv4Addr::new(192, 0, 2, 1)),
            "rest kept"
        );
    }
}

#[test]
fn repeated_reflection_attributes_keep_the_first() {
    let extra = [
        0x80, 9, 4, 10, 0, 0, 1, //
        0x80, 9, 4, 10, 0, 0, 2,
    ];
    let (attrs, faults) = parse_attrs(&with(&extra), C4, true).expect("no reset");
    assert_eq!(attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(faults.discarded, vec![AttrFault::Duplicate(9)]);
    assert!(!faults.withdraws(false));
}
