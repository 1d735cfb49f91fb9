//! A checked view over an IPv6 header (RFC 8200 section 3), a bounded walk over its
//! extension headers (RFC 8200 section 4) to find the upper-layer protocol and whether the
//! packet is a fragment, and the header emitter for packets the router originates.
//!
//! Owns byte offsets only. Hop-by-hop options are skipped, not processed (RFC 8200
//! section 4.3 allows a router to ignore them); routing policy lives in
//! `dataplane::forward`.

use super::WireError;
use std::net::Ipv6Addr;

mod field {
    pub const VER_TC_FL: core::ops::Range<usize> = 0..4;
    pub const PAYLOAD_LEN: core::ops::Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: core::ops::Range<usize> = 8..24;
    pub const DST: core::ops::Range<usize> = 24..40;
}

pub const HEADER_LEN: usize = 40;
/// Every IPv6 link carries at least this many bytes (RFC 8200 section 5).
pub const MIN_MTU: usize = 1280;

/// Extension header numbers this walk knows how to skip.
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const NO_NEXT: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
    pub const SCTP: u8 = 132;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// At most this many extension headers are walked; a longer chain is treated as
/// unparseable (RFC 8200 does not bound the chain, but nothing legitimate needs more).
const MAX_EXT_HEADERS: usize = 8;

/// Where the upper-layer header starts, as found by [`Ipv6Packet::upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The protocol of the upper-layer header (after all extension headers).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the packet. Meaningful only
    /// when `first_fragment` is true.
    pub offset: usize,
    /// A fragment header was present.
    pub fragmented: bool,
    /// The upper-layer header is in this packet: not a fragment, or the fragment at
    /// offset 0.
    pub first_fragment: bool,
}

/// An IPv6 packet whose header and payload length were checked against the buffer by
/// [`Ipv6Packet::new_checked`]; accessors after that are infallible.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps after checking the version, that the fixed header fits and that the payload
    /// length fits in the buffer. Trailing bytes are allowed and ignored. Jumbograms
    /// (payload length 0 with a hop-by-hop jumbo option) are not supported: they look
    /// like a 40-byte packet.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        let Some(&first) = b.first() else {
            return Err(WireError::Truncated);
        };
        if first >> 4 != 6 {
            return Err(WireError::BadVersion);
        }
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let plen = usize::from(u16::from_be_bytes([b[4], b[5]]));
        if HEADER_LEN + plen > b.len() {
            return Err(WireError::BadTotalLength);
        }
        Ok(Ipv6Packet { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn traffic_class(&self) -> u8 {
        let v = u32::from_be_bytes(self.b()[field::VER_TC_FL].try_into().unwrap_or([0; 4]));
        (v >> 20) as u8
    }
    pub fn payload_len(&self) -> usize {
        usize::from(u16::from_be_bytes([self.b()[4], self.b()[5]]))
    }
    /// Header plus payload, without trailing padding.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }
    pub fn next_header(&self) -> u8 {
        self.b()[field::NEXT_HEADER]
    }
    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[field::SRC]);
        Ipv6Addr::from(a)
    }
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[field::DST]);
        Ipv6Addr::from(a)
    }
    /// The packet without trailing padding.
    pub fn datagram(&self) -> &[u8] {
        &self.b()[..self.total_len()]
    }

    /// Walks the extension headers. `None` when the chain is truncated, longer than
    /// [`MAX_EXT_HEADERS`], or malformed; callers treat that as "unknown upper layer".
    pub fn upper_layer(&self) -> Option<UpperLayer> {
        let pkt = self.datagram();
        let mut proto = self.next_header();
        let mut off = HEADER_LEN;
        let mut fragmented = false;
        for _ in 0..MAX_EXT_HEADERS {
            use next_header::*;
            let len = match proto {
                HOP_BY_HOP | ROUTING | DEST_OPTS | MOBILITY | HIP | SHIM6 => {
                    (usize::from(*pkt.get(off + 1)?) + 1) * 8
                }
                AH => (usize::from(*pkt.get(off + 1)?) + 2) * 4,
                FRAGMENT => {
                    let h = pkt.get(off..off + 8)?;
                    fragmented = true;
                    if u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0 {
                        // Not the first fragment: the rest of the chain is elsewhere.
                        return Some(UpperLayer {
                            protocol: h[0],
                            offset: off + 8,
                            fragmented,
                            first_fragment: false,
                        });
                    }
                    8
                }
                _ => {
                    return Some(UpperLayer {
                        protocol: proto,
                        offset: off,
                        fragmented,
                        first_fragment: true,
                    })
                }
            };
            proto = *pkt.get(off)?;
            off += len;
            if off > pkt.len() {
                return None;
            }
        }
        None
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Decrements the hop limit; IPv6 has no header checksum to patch.
    pub fn decrement_hop_limit(&mut self) {
        let b = self.buffer.as_mut();
        b[field::HOP_LIMIT] = b[field::HOP_LIMIT].wrapping_sub(1);
    }
}

/// The fields of a header without extension headers that the router fills in for
/// packets it originates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub payload_len: usize,
}

impl Ipv6Repr {
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the 40-byte header (flow label 0) into `buf[..40]`.
    pub fn emit(&self, buf: &mut [u8]) {
        let h = &mut buf[..HEADER_LEN];
        let vtf = (6u32 << 28) | (u32::from(self.traffic_class) << 20);
        h[field::VER_TC_FL].copy_from_slice(&vtf.to_be_bytes());
        h[field::PAYLOAD_LEN].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
        h[field::NEXT_HEADER] = self.next_header;
        h[field::HOP_LIMIT] = self.hop_limit;
        h[field::SRC].copy_from_slice(&self.src.octets());
        h[field::DST].copy_from_slice(&self.dst.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(next: u8, payload: &[u8]) -> Vec<u8> {
        let repr = Ipv6Repr {
            src: "2001:db8::2".parse().unwrap(),
            dst: "2001:db8::1".parse().unwrap(),
            next_header: next,
            hop_limit: 64,
            traffic_class: 0,
            payload_len: payload.len(),
        };
        let mut v = vec![0u8; repr.buffer_len()];
        repr.emit(&mut v);
        v[40..].copy_from_slice(payload);
        v
    }

    #[test]
    fn emit_matches_smoltcp() {
        let v = header(58, &[0; 8]);
        let p = smoltcp::wire::Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.next_header(), smoltcp::wire::IpProtocol::Icmpv6);
    }

    #[test]
    fn checked_rejects() {
        let v = header(59, &[]);
        assert_eq!(
            Ipv6Packet::new_checked(&v[..39]).unwrap_err(),
            WireError::Truncated
        );
        let mut w = v.clone();
        w[0] = 0x40;
        assert_eq!(
            Ipv6Packet::new_checked(&w[..]).unwrap_err(),
            WireError::BadVersion
        );
        let mut w = v.clone();
        w[5] = 1;
        assert_eq!(
            Ipv6Packet::new_checked(&w[..]).unwrap_err(),
            WireError::BadTotalLength
        );
    }

    #[test]
    fn walks_extension_headers() {
        // hop-by-hop (8 bytes) -> fragment (offset 0, M) -> UDP
        let mut payload = vec![44, 0, 1, 4, 0, 0, 0, 0, 17, 0, 0, 1, 0, 0, 0, 9];
        payload.extend_from_slice(&[0x12, 0x34, 0x00, 0x35, 0, 8, 0, 0]);
        let v = header(0, &payload);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        let ul = p.upper_layer().unwrap();
        assert_eq!(
            ul,
            UpperLayer {
                protocol: 17,
                offset: 56,
                fragmented: true,
                first_fragment: true
            }
        );
    }

    #[test]
    fn non_first_fragment() {
        let payload = [58, 0, 0x00, 0x08, 0, 0, 0, 9, 1, 2, 3, 4];
        let v = header(44, &payload);
        let ul = Ipv6Packet::new_checked(&v[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert!(!ul.first_fragment);
        assert_eq!(ul.protocol, 58);
    }

    #[test]
    fn truncated_chain_is_none() {
        let v = header(0, &[58, 1, 0, 0]);
        assert_eq!(Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(), None);
    }
}
