//! OSPFv2 LSAs: `Lsa::parse` on arbitrary bytes.
//!
//! Input: byte 0 bit 0 asks to set the length field to the input's length (rounded down
//! to 4), bit 1 to repair the Fletcher checksum, so mutations reach the body parsers;
//! the rest is the LSA (possibly followed by more bytes).
//!
//! Checks: no panic; a parsed LSA took at most the input and keeps exactly the bytes it
//! took; rebuilding it from its header and body (`Lsa::build`) gives an LSA that parses
//! back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wgrd::routing::ospf::lsa::{fletcher, Lsa, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let mut bytes = bytes.to_vec();
    if sel & 1 != 0 && bytes.len() >= HEADER_LEN {
        let len = (bytes.len() & !3).min(0xfffc) as u16;
        bytes[18..20].copy_from_slice(&len.to_be_bytes());
    }
    if sel & 2 != 0 && bytes.len() >= HEADER_LEN {
        let len = usize::from(u16::from_be_bytes([bytes[18], bytes[19]]));
        if (HEADER_LEN..=bytes.len()).contains(&len) {
            let c = fletcher(&bytes[..len]);
            bytes[16..18].copy_from_slice(&c.to_be_bytes());
        }
    }
    let Ok((lsa, used)) = Lsa::parse(&bytes) else {
        return;
    };
    assert!(used <= bytes.len());
    assert_eq!(lsa.bytes(), &bytes[..used]);
    assert_eq!(usize::from(lsa.header.length), used);

    let built = Lsa::build(lsa.header, lsa.body.clone());
    let (again, n) =
        Lsa::parse(built.bytes()).unwrap_or_else(|e| panic!("re-parse of {built:?} failed: {e:?}"));
    assert_eq!(n, built.bytes().len());
    assert_eq!(again, built, "rebuilt LSA does not parse back to itself");
});
