//! BGP path attributes: `attr::parse_attrs` on an arbitrary attribute list.
//!
//! Input: byte 0 bit 0 picks the 4-octet AS codec, bit 1 says the UPDATE has NLRI; the
//! rest is the path attributes field.
//!
//! Checks: no panic; a list that parses with no RFC 7606 fault emits (`emit_attrs`) to a
//! list that parses back, again without fault, to equal attributes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wgrd::routing::bgp::attr::{emit_attrs, parse_attrs, Codec, PathAttrs, FLAG_EXTENDED};

/// The extended-length bit of an unknown attribute follows its length when emitted.
fn normalized(mut a: PathAttrs) -> PathAttrs {
    for u in &mut a.unknown {
        u.flags &= !FLAG_EXTENDED;
    }
    a
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, list)) = data.split_first() else {
        return;
    };
    let codec = Codec {
        four_octet_as: sel & 1 != 0,
    };
    let has_nlri = sel & 2 != 0;
    let Ok((attrs, faults)) = parse_attrs(list, codec, has_nlri) else {
        return;
    };
    if !faults.is_clean() {
        return;
    }
    let mut out = Vec::new();
    emit_attrs(&attrs, codec, &mut out);
    let (again, faults2) = parse_attrs(&out, codec, has_nlri)
        .unwrap_or_else(|e| panic!("re-parse of {attrs:?} failed: {e:?}\nbytes {out:02x?}"));
    assert!(faults2.is_clean(), "re-parse found {faults2:?}");
    assert_eq!(
        normalized(again),
        normalized(attrs),
        "round trip changed the attributes"
    );
});
