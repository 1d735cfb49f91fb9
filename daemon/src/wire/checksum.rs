//! The internet checksum: the one's-complement sum of RFC 1071, its incremental update
//! (RFC 1624, eqn. 3) and the IPv6 pseudo-header (RFC 8200 section 8.1).
//!
//! Owns only arithmetic over bytes; knows nothing about which header a checksum sits in.

use std::net::Ipv6Addr;

/// One's-complement partial sum of `data` as big-endian 16-bit words, not yet folded.
/// An odd trailing byte is padded with zero (RFC 1071 section 4.1). The u64 accumulator
/// cannot overflow for any buffer that fits in memory and holds an IP packet.
pub fn sum(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a partial sum to 16 bits with end-around carry.
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum to store: the complement of the folded sum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// True when `data` (which includes its checksum field) sums to all ones, i.e. verifies.
pub fn verifies(data: &[u8]) -> bool {
    fold(sum(data)) == 0xffff
}

/// Partial sum of the IPv6 pseudo-header for an upper-layer message of `len` bytes.
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, len: u32, next_header: u8) -> u64 {
    sum(&src.octets())
        + sum(&dst.octets())
        + u64::from(len >> 16)
        + u64::from(len & 0xffff)
        + u64::from(next_header)
}

/// Incrementally updates checksum `hc` after one 16-bit word of the covered data changed
/// from `old` to `new`: HC' = ~(~HC + ~m + m') (RFC 1624, eqn. 3). Unlike eqn. 2 this never
/// turns a valid header's checksum into the one value that fails verification.
pub fn update(hc: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!hc) + u64::from(!old) + u64::from(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 0x0a, 0x00,
            0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] -= 1;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let c2 = update(c, old, new);
        hdr[10..12].copy_from_slice(&c2.to_be_bytes());
        assert!(verifies(&hdr));
    }
}
