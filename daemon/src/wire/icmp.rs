//! ICMP for IPv4 (RFC 792) and ICMPv6 (RFC 4443): the message types a router answers or
//! generates, which types count as errors, and emitters that build a complete IP packet
//! (header + ICMP message, checksums filled) into a caller buffer without allocating.
//!
//! Owns the message layouts only; *when* to send (RFC 1812 section 4.3.2.7, RFC 4443
//! section 2.4 rules, rate limits, source address choice) is `dataplane::forward`'s.

use super::checksum;
use super::ipv4::{self, Ipv4Repr};
use super::ipv6::{self, next_header, Ipv6Repr};
use std::net::{Ipv4Addr, Ipv6Addr};

/// ICMP header length: type, code, checksum and the 4-byte "rest of header".
pub const HEADER_LEN: usize = 8;
/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// An ICMPv4 error never makes a datagram longer than this (RFC 1812 section 4.3.2.3).
pub const V4_ERROR_MAX: usize = 576;
/// An ICMPv6 error never exceeds the minimum IPv6 MTU (RFC 4443 section 2.4 (c)).
pub const V6_ERROR_MAX: usize = ipv6::MIN_MTU;

pub mod v4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    /// Codes of destination unreachable.
    pub const NET_UNREACHABLE: u8 = 0;
    pub const FRAG_NEEDED: u8 = 4;
    /// Code of time exceeded.
    pub const TTL_EXCEEDED: u8 = 0;
}

pub mod v6 {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const REDIRECT: u8 = 137;
    /// Code of destination unreachable.
    pub const NO_ROUTE: u8 = 0;
    /// Code of time exceeded.
    pub const HOP_LIMIT_EXCEEDED: u8 = 0;
}

/// True unless `ty` is a known ICMPv4 query. Unknown types count as errors so the router
/// stays silent about them: a missed error is harmless, an error about an error can loop
/// (RFC 1812 section 4.3.2.7).
pub fn v4_is_error(ty: u8) -> bool {
    !matches!(ty, 0 | 8 | 9 | 10 | 13 | 14 | 15 | 16 | 17 | 18)
}

/// True for ICMPv6 error messages (types 0..=127, RFC 4443 section 2.1) and for redirects,
/// about which RFC 4443 section 2.4 (e.2) also forbids errors.
pub fn v6_is_error_or_redirect(ty: u8) -> bool {
    ty < 128 || ty == v6::REDIRECT
}

/// Builds `IPv4 header | type code cksum rest | quote` into `out` and returns its length.
/// The quote is cut so the datagram is at most `max_len` (and `out.len()`) bytes.
/// `None` if not even the two headers fit.
pub fn emit_v4_error(
    out: &mut [u8],
    ip: Ipv4Repr,
    ty: u8,
    code: u8,
    rest: [u8; 4],
    quote: &[u8],
    max_len: usize,
) -> Option<usize> {
    let cap = max_len.min(out.len()).min(usize::from(u16::MAX));
    let room = cap.checked_sub(ipv4::HEADER_LEN + HEADER_LEN)?;
    let quote = &quote[..quote.len().min(room)];
    let ip = Ipv4Repr {
        protocol: PROTO_ICMP,
        payload_len: HEADER_LEN + quote.len(),
        ..ip
    };
    let len = ip.buffer_len();
    ip.emit(out);
    let icmp = &mut out[ipv4::HEADER_LEN..len];
    icmp[0] = ty;
    icmp[1] = code;
    icmp[2..4].copy_from_slice(&[0, 0]);
    icmp[4..8].copy_from_slice(&rest);
    icmp[HEADER_LEN..].copy_from_slice(quote);
    let c = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

/// Builds an echo reply to the ICMP echo request message `request` (ICMP header and
/// data, as received) into `out`. `None` if `out` is too short.
pub fn emit_v4_echo_reply(out: &mut [u8], ip: Ipv4Repr, request: &[u8]) -> Option<usize> {
    let ip = Ipv4Repr {
        protocol: PROTO_ICMP,
        payload_len: request.len(),
        ..ip
    };
    let len = ip.buffer_len();
    if request.len() < HEADER_LEN || out.len() < len || len > usize::from(u16::MAX) {
        return None;
    }
    ip.emit(out);
    let icmp = &mut out[ipv4::HEADER_LEN..len];
    icmp.copy_from_slice(request);
    icmp[0] = v4::ECHO_REPLY;
    icmp[2..4].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

/// The ICMPv6 checksum over `msg` with the pseudo-header (RFC 4443 section 2.3).
pub fn v6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let ph = checksum::pseudo_header_v6(src, dst, msg.len() as u32, next_header::ICMPV6);
    !checksum::fold(ph + checksum::sum(msg))
}

/// True when the ICMPv6 message `msg` (checksum field included) verifies.
pub fn v6_checksum_ok(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> bool {
    let ph = checksum::pseudo_header_v6(src, dst, msg.len() as u32, next_header::ICMPV6);
    checksum::fold(ph + checksum::sum(msg)) == 0xffff
}

fn finish_v6(out: &mut [u8], ip: &Ipv6Repr) {
    let len = ip.buffer_len();
    let c = v6_checksum(&ip.src, &ip.dst, &out[ipv6::HEADER_LEN..len]);
    out[ipv6::HEADER_LEN + 2..ipv6::HEADER_LEN + 4].copy_from_slice(&c.to_be_bytes());
}

/// Builds `IPv6 header | type code cksum rest | quote` into `out`, the quote cut to keep
/// the packet within `max_len` and `out.len()`. `None` if the headers do not fit.
pub fn emit_v6_error(
    out: &mut [u8],
    ip: Ipv6Repr,
    ty: u8,
    code: u8,
    rest: [u8; 4],
    quote: &[u8],
    max_len: usize,
) -> Option<usize> {
    let cap = max_len
        .min(out.len())
        .min(ipv6::HEADER_LEN + usize::from(u16::MAX));
    let room = cap.checked_sub(ipv6::HEADER_LEN + HEADER_LEN)?;
    let quote = &quote[..quote.len().min(room)];
    let ip = Ipv6Repr {
        next_header: next_header::ICMPV6,
        payload_len: HEADER_LEN + quote.len(),
        ..ip
    };
    let len = ip.buffer_len();
    ip.emit(out);
    let icmp = &mut out[ipv6::HEADER_LEN..len];
    icmp[0] = ty;
    icmp[1] = code;
    icmp[2..4].copy_from_slice(&[0, 0]);
    icmp[4..8].copy_from_slice(&rest);
    icmp[HEADER_LEN..].copy_from_slice(quote);
    finish_v6(out, &ip);
    Some(len)
}

/// Builds an echo reply to the ICMPv6 echo request message `request` into `out`.
pub fn emit_v6_echo_reply(out: &mut [u8], ip: Ipv6Repr, request: &[u8]) -> Option<usize> {
    let ip = Ipv6Repr {
        next_header: next_header::ICMPV6,
        payload_len: request.len(),
        ..ip
    };
    let len = ip.buffer_len();
    if request.len() < HEADER_LEN || out.len() < len || request.len() > usize::from(u16::MAX) {
        return None;
    }
    ip.emit(out);
    let icmp = &mut out[ipv6::HEADER_LEN..len];
    icmp.copy_from_slice(request);
    icmp[0] = v6::ECHO_REPLY;
    icmp[2..4].copy_from_slice(&[0, 0]);
    finish_v6(out, &ip);
    Some(len)
}

/// Convenience for the v4 emitters' header fields.
pub fn v4_repr(src: Ipv4Addr, dst: Ipv4Addr, tos: u8, ident: u16, ttl: u8) -> Ipv4Repr {
    Ipv4Repr {
        src,
        dst,
        protocol: PROTO_ICMP,
        ttl,
        tos,
        ident,
        payload_len: 0,
    }
}

/// Convenience for the v6 emitters' header fields.
pub fn v6_repr(src: Ipv6Addr, dst: Ipv6Addr, traffic_class: u8, hop_limit: u8) -> Ipv6Repr {
    Ipv6Repr {
        src,
        dst,
        next_header: next_header::ICMPV6,
        hop_limit,
        traffic_class,
        payload_len: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, Ipv4Packet, Ipv6Packet,
    };

    #[test]
    fn v4_error_parses_in_smoltcp() {
        let quote = [0x45u8; 100];
        let mut out = [0u8; 200];
        let src = Ipv4Addr::new(192, 0, 2, 1);
        let dst = Ipv4Addr::new(198, 51, 100, 2);
        let n = emit_v4_error(
            &mut out,
            v4_repr(src, dst, 0xc0, 1, 64),
            v4::DEST_UNREACHABLE,
            v4::FRAG_NEEDED,
            [0, 0, 0x05, 0x78],
            &quote,
            80,
        )
        .unwrap();
        assert_eq!(n, 80);
        let ip = Ipv4Packet::new_checked(&out[..n]).unwrap();
        assert!(ip.verify_checksum());
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(
            icmp.msg_type(),
            smoltcp::wire::Icmpv4Message::DstUnreachable
        );
        assert_eq!(&icmp.into_inner()[4..8], &[0, 0, 0x05, 0x78]);
    }

    #[test]
    fn v6_error_checksum_verified_by_smoltcp() {
        let mut out = [0u8; 1500];
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
        let quote = [0x60u8; 2000];
        let n = emit_v6_error(
            &mut out,
            v6_repr(src, dst, 0, 64),
            v6::PACKET_TOO_BIG,
            0,
            1400u32.to_be_bytes(),
            &quote,
            V6_ERROR_MAX,
        )
        .unwrap();
        assert_eq!(n, 1280);
        let ip = Ipv6Packet::new_checked(&out[..n]).unwrap();
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(&src, &dst));
        assert!(v6_checksum_ok(&src, &dst, ip.payload()));
    }

    #[test]
    fn echo_replies_parse_in_smoltcp() {
        let req = [8u8, 0, 0, 0, 0, 7, 0, 1, b'h', b'i'];
        let mut out = [0u8; 64];
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let n = emit_v4_echo_reply(&mut out, v4_repr(a, b, 0, 9, 64), &req).unwrap();
        let ip = Ipv4Packet::new_checked(&out[..n]).unwrap();
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        let repr = Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(
            repr,
            Icmpv4Repr::EchoReply {
                ident: 7,
                seq_no: 1,
                data: b"hi"
            }
        );

        let req6 = [128u8, 0, 0, 0, 0, 7, 0, 1, b'h', b'i'];
        let (a6, b6): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let n = emit_v6_echo_reply(&mut out, v6_repr(a6, b6, 0, 64), &req6).unwrap();
        let ip = Ipv6Packet::new_checked(&out[..n]).unwrap();
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        let repr = Icmpv6Repr::parse(&a6, &b6, &icmp, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(
            repr,
            Icmpv6Repr::EchoReply {
                ident: 7,
                seq_no: 1,
                data: b"hi"
            }
        );
    }

    #[test]
    fn too_small_buffers_refused() {
        let mut out = [0u8; 27];
        let r = v4_repr(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 0, 0, 64);
        assert!(emit_v4_error(&mut out, r, 3, 0, [0; 4], &[1, 2, 3], 576).is_none());
        assert!(emit_v4_echo_reply(&mut out, r, &[8, 0, 0, 0, 0, 0, 0, 0]).is_none());
    }

    #[test]
    fn error_classification() {
        assert!(!v4_is_error(v4::ECHO_REQUEST));
        assert!(v4_is_error(v4::TIME_EXCEEDED));
        assert!(v4_is_error(200));
        assert!(v6_is_error_or_redirect(v6::PACKET_TOO_BIG));
        assert!(v6_is_error_or_redirect(v6::REDIRECT));
        assert!(!v6_is_error_or_redirect(v6::ECHO_REQUEST));
    }
}
