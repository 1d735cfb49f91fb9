//! OSPFv2 packets: `PacketRepr::parse_bytes` on an arbitrary packet.
//!
//! Input: byte 0 bit 0 asks to repair the packet checksum (and, in an LS Update, each
//! LSA's Fletcher checksum) so mutations get past the integrity checks; the rest is the
//! packet.
//!
//! Checks: no panic; a packet that parses emits (`to_bytes`) to bytes that parse back to
//! an equal value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wgrd::routing::ospf::lsa;
use wgrd::routing::ospf::packet::{Packet, PacketRepr, HEADER_LEN};

fn repair(p: &mut [u8]) {
    let Ok(view) = Packet::new_checked(&*p) else {
        return;
    };
    let len = view.length();
    if view.packet_type() == 4 && len >= HEADER_LEN + 4 {
        let mut rest = &mut p[HEADER_LEN + 4..len];
        while rest.len() >= lsa::HEADER_LEN {
            let l = usize::from(u16::from_be_bytes([rest[18], rest[19]]));
            if l < lsa::HEADER_LEN || l > rest.len() {
                break;
            }
            let c = lsa::fletcher(&rest[..l]);
            rest[16..18].copy_from_slice(&c.to_be_bytes());
            rest = &mut rest[l..];
        }
    }
    if let Ok(mut view) = Packet::new_checked(&mut *p) {
        view.fill_checksum();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, packet)) = data.split_first() else {
        return;
    };
    let mut packet = packet.to_vec();
    if sel & 1 != 0 {
        repair(&mut packet);
    }
    let Ok(repr) = PacketRepr::parse_bytes(&packet) else {
        return;
    };
    let out = repr.to_bytes();
    assert_eq!(out.len(), repr.buffer_len());
    let again = PacketRepr::parse_bytes(&out)
        .unwrap_or_else(|e| panic!("re-parse of {repr:?} failed: {e:?}\nbytes {out:02x?}"));
    assert_eq!(again, repr, "round trip changed the packet");
});
