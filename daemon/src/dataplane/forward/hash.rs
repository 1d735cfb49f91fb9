//! The ECMP flow hash: a cheap hash of (source, destination, protocol, ports) so every
//! packet of a flow takes the same tunnel (RFC 2992 hash-threshold spirit; RFC 6438 for
//! why IPv6 uses the same 5-tuple).
//!
//! Owns only hashing; which ECMP member a hash picks is the FIB's business.

use crate::wire::ipv6::{next_header, Ipv6Packet};

const K: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn mix(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(K).rotate_left(29)
}

#[inline]
fn finish(mut h: u64) -> u32 {
    // murmur3's 64-bit finalizer: spreads every input bit over the output.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h as u32) ^ ((h >> 32) as u32)
}

/// Ports are hashed only for protocols that have them at the start of their header.
#[inline]
fn has_ports(proto: u8) -> bool {
    matches!(
        proto,
        next_header::TCP | next_header::UDP | next_header::SCTP
    )
}

pub(crate) fn hash_v4(seed: u32, src: u32, dst: u32, proto: u8, ports: u32) -> u32 {
    let h = mix(u64::from(seed), (u64::from(src) << 32) | u64::from(dst));
    finish(mix(h, (u64::from(proto) << 32) | u64::from(ports)))
}

pub(crate) fn hash_v6(seed: u32, src: u128, dst: u128, proto: u8, ports: u32) -> u32 {
    let mut h = mix(u64::from(seed), src as u64);
    h = mix(h, (src >> 64) as u64);
    h = mix(h, dst as u64);
    h = mix(h, (dst >> 64) as u64);
    finish(mix(h, (u64::from(proto) << 32) | u64::from(ports)))
}

fn ports_at(packet: &[u8], off: usize) -> u32 {
    packet
        .get(off..off + 4)
        .map_or(0, |p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
}

/// The 5-tuple hash of an IP packet with seed 0. See [`flow_hash_seeded`].
pub fn flow_hash(packet: &[u8]) -> u32 {
    flow_hash_seeded(packet, 0)
}

/// The 5-tuple hash of an IP packet. Fragments (v4 MF or offset, v6 fragment header) hash
/// without ports, so all fragments of a datagram follow the same path as each other.
/// Anything unparseable hashes to a constant rather than failing: the forwarding
/// decision drops it anyway. `seed` differs per router so that stacked ECMP stages do not
/// polarize (every stage making the same choice).
pub fn flow_hash_seeded(packet: &[u8], seed: u32) -> u32 {
    match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => {
            let src = u32::from_be_bytes([packet[12], packet[13], packet[14], packet[15]]);
            let dst = u32::from_be_bytes([packet[16], packet[17], packet[18], packet[19]]);
            let proto = packet[9];
            let frag = u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0;
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let ports = if !frag && has_ports(proto) {
                ports_at(packet, ihl)
            } else {
                0
            };
            hash_v4(seed, src, dst, proto, ports)
        }
        Some(6) => match Ipv6Packet::new_checked(packet) {
            Ok(p) => {
                let (proto, ports) = match p.upper_layer() {
                    Some(ul) if !ul.fragmented && has_ports(ul.protocol) => {
                        (ul.protocol, ports_at(packet, ul.offset))
                    }
                    Some(ul) => (ul.protocol, 0),
                    None => (p.next_header(), 0),
                };
                hash_v6(
                    seed,
                    u128::from(p.src_addr()),
                    u128::from(p.dst_addr()),
                    proto,
                    ports,
                )
            }
            Err(_) => seed,
        },
        _ => seed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp4(sport: u16, dport: u16) -> [u8; 28] {
        let mut p = [0u8; 28];
        p[0] = 0x45;
        p[3] = 28;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn ports_matter_and_payload_does_not() {
        let a = udp4(1000, 53);
        let mut b = a;
        b[27] = 99;
        assert_eq!(flow_hash(&a), flow_hash(&b));
        assert_ne!(flow_hash(&a), flow_hash(&udp4(1001, 53)));
    }

    #[test]
    fn spreads_over_buckets() {
        let mut buckets = [0u32; 4];
        for sport in 0..4000u16 {
            buckets[(flow_hash(&udp4(sport, 443)) % 4) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (800..1200).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn fragments_ignore_ports() {
        let mut a = udp4(1, 2);
        a[6] = 0x20; // MF
        let mut b = udp4(3, 4);
        b[6] = 0x20;
        assert_eq!(flow_hash(&a), flow_hash(&b));
    }

    #[test]
    fn garbage_does_not_panic() {
        for p in [&[][..], &[0x45], &[0x60; 39], &[0xff; 3]] {
            let _ = flow_hash(p);
        }
    }
}
