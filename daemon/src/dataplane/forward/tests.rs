//! Unit tests of the forwarding decision with literal packets. Replies are checked byte
//! for byte where the literal is short, and through smoltcp's parsers (an independent
//! checksum implementation) otherwise.

use super::*;
use crate::dataplane::TunnelId;
use crate::wire::checksum;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, Ipv4Packet as SIpv4, Ipv6Packet as SIpv6,
};
use std::sync::atomic::AtomicU64;

pub(super) const T1: TunnelId = TunnelId(1);
pub(super) const T2: TunnelId = TunnelId(2);

/// ICMP echo request 10.0.0.2 -> 10.0.0.1, TTL 64, DF, ident 1 seq 1, "abcdefgh".
pub(super) const ECHO: [u8; 36] = [
    0x45, 0x00, 0x00, 0x24, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x14, 0xa3, //
    0x0a, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x01, 0x08, 0x00, 0x66, 0x68, //
    0x00, 0x01, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
];
/// The reply the router must send: from the pinged address, TTL 64, ident 0 (first).
pub(super) const ECHO_REPLY: [u8; 36] = [
    0x45, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01, 0x66, 0xd7, //
    0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x00, 0x6e, 0x68, //
    0x00, 0x01, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
];
/// ICMPv6 echo request 2001:db8:1::2 -> 2001:db8::1, hop limit 64, ident 7 seq 1, "abcd".
pub(super) const ECHO6: [u8; 52] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x3a, 0x40, 0x20, 0x01, 0x0d, 0xb8, //
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, //
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0x5f, 0x74, 0x00, 0x07, 0x00, 0x01, //
    0x61, 0x62, 0x63, 0x64,
];
pub(super) const ECHO6_REPLY: [u8; 52] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x3a, 0x40, 0x20, 0x01, 0x0d, 0xb8, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x02, 0x81, 0x00, 0x5e, 0x74, 0x00, 0x07, 0x00, 0x01, //
    0x61, 0x62, 0x63, 0x64,
];
/// UDP 192.0.2.10:1234 -> 198.51.100.20:53, DF, TTL 64, 8 bytes of data.
pub(super) const UDP4: [u8; 36] = [
    0x45, 0x00, 0x00, 0x24, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x11, 0xa2, 0xa9, //
    0xc0, 0x00, 0x02, 0x0a, 0xc6, 0x33, 0x64, 0x14, 0x04, 0xd2, 0x00, 0x35, //
    0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
];
/// The same with TTL 1.
pub(super) const UDP4_TTL1: [u8; 36] = [
    0x45, 0x00, 0x00, 0x24, 0xab, 0xcd, 0x40, 0x00, 0x01, 0x11, 0xe1, 0xa9, //
    0xc0, 0x00, 0x02, 0x0a, 0xc6, 0x33, 0x64, 0x14, 0x04, 0xd2, 0x00, 0x35, //
    0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// 10.0.0.0/24, 192.0.2.0/24 and 2001:db8:1::/48 behind tunnel 1; 198.51.100.0/24 and
/// 2001:db8:2::/48 behind tunnel 2; 100.127.0.0/16 local; 203.0.113.0/24 blackholed.
pub(super) fn routes(dst: IpAddr, _hash: u32) -> Option<Egress> {
    match dst {
        IpAddr::V4(a) => match a.octets() {
            [10, 0, 0, _] | [192, 0, 2, _] => Some(Egress::Tunnel(T1)),
            [198, 51, 100, _] => Some(Egress::Tunnel(T2)),
            [100, 127, _, _] => Some(Egress::Local),
            [203, 0, 113, _] => Some(Egress::Blackhole),
            [172, 16, _, _] => Some(Egress::Host),
            _ => None,
        },
        IpAddr::V6(a) => match a.segments() {
            [0x2001, 0xdb8, 1, ..] => Some(Egress::Tunnel(T1)),
            [0x2001, 0xdb8, 2, ..] => Some(Egress::Tunnel(T2)),
            [0x2001, 0xdb8, 0xdead, ..] => Some(Egress::Blackhole),
            _ => None,
        },
    }
}

pub(super) fn mtu(_: Egress) -> u16 {
    1420
}

pub(super) fn local() -> LocalAddresses {
    LocalAddresses::new([])
        .with_router_id(Ipv4Addr::new(192, 0, 2, 1))
        .with_interface(Ingress::Tunnel(T1), ip("10.0.0.1"))
        .with_interface(Ingress::Tunnel(T1), ip("fe80::1"))
        .with_interface(Ingress::Tunnel(T1), ip("2001:db8::1"))
}

fn manual_clock() -> (Arc<AtomicU64>, Clock) {
    let t = Arc::new(AtomicU64::new(1_000_000_000));
    let c = Arc::clone(&t);
    (t, Box::new(move || c.load(Ordering::Relaxed)))
}

fn forwarder() -> Forwarder {
    Forwarder::new(local()).with_clock(manual_clock().1)
}

fn decide(f: &Forwarder, ingress: Ingress, packet: &mut [u8], out: &mut [u8]) -> Decision {
    f.decide(ingress, packet, &routes, mtu, out)
}

/// Rewrites the IPv4 header checksum after a test edited the header.
pub(super) fn fix_v4(p: &mut [u8]) {
    let hl = usize::from(p[0] & 0xf) * 4;
    p[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&p[..hl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

/// A UDP datagram of `len` bytes between the given addresses.
pub(super) fn udp4(src: [u8; 4], dst: [u8; 4], ttl: u8, df: bool, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[6] = if df { 0x40 } else { 0 };
    p[8] = ttl;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p[20..24].copy_from_slice(&[0x30, 0x39, 0x00, 0x35]);
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    fix_v4(&mut p);
    p
}

/// A UDP datagram over IPv6 with `payload` bytes after the IPv6 header.
pub(super) fn udp6(src: &str, dst: &str, hop: u8, payload: usize) -> Vec<u8> {
    let mut p = vec![0u8; 40 + payload];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(payload as u16).to_be_bytes());
    p[6] = 17;
    p[7] = hop;
    p[8..24].copy_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
    p[24..40].copy_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
    for (i, b) in p[40..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

/// Parses a generated ICMPv4 packet with smoltcp (checksums verified) and returns
/// (ip src, ip dst, icmp bytes).
fn icmp4(out: &[u8]) -> (Ipv4Addr, Ipv4Addr, Vec<u8>) {
    let ipp = SIpv4::new_checked(out).unwrap();
    assert!(ipp.verify_checksum());
    assert_eq!(ipp.total_len() as usize, out.len());
    let icmp = Icmpv4Packet::new_checked(ipp.payload()).unwrap();
    assert!(icmp.verify_checksum());
    (ipp.src_addr(), ipp.dst_addr(), ipp.payload().to_vec())
}

fn icmp6(out: &[u8]) -> (Ipv6Addr, Ipv6Addr, Vec<u8>) {
    let ipp = SIpv6::new_checked(out).unwrap();
    assert_eq!(ipp.total_len(), out.len());
    let (s, d) = (ipp.src_addr(), ipp.dst_addr());
    let icmp = Icmpv6Packet::new_checked(ipp.payload()).unwrap();
    assert!(icmp.verify_checksum(&s, &d));
    (s, d, ipp.payload().to_vec())
}

#[test]
fn v4_echo_request_answered_exactly() {
    let f = forwarder();
    let mut p = ECHO;
    let mut out = [0u8; 1500];
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut out);
    assert_eq!(
        d,
        Decision::Reply {
            len: 36,
            to: Egress::Tunnel(T1)
        }
    );
    assert_eq!(out[..36], ECHO_REPLY);
    let (_, _, msg) = icmp4(&out[..36]);
    let repr = Icmpv4Repr::parse(
        &Icmpv4Packet::new_checked(&msg[..]).unwrap(),
        &ChecksumCapabilities::default(),
    )
    .unwrap();
    assert_eq!(
        repr,
        Icmpv4Repr::EchoReply {
            ident: 1,
            seq_no: 1,
            data: b"abcdefgh"
        }
    );
    assert_eq!(p, ECHO, "the request is not modified");
    assert_eq!(f.counters().get(Event::EchoReplySent), 1);
}

#[test]
fn v6_echo_request_answered_exactly() {
    let f = forwarder();
    let mut p = ECHO6;
    let mut out = [0u8; 1500];
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut out);
    assert_eq!(
        d,
        Decision::Reply {
            len: 52,
            to: Egress::Tunnel(T1)
        }
    );
    assert_eq!(out[..52], ECHO6_REPLY);
    let (s, dst, msg) = icmp6(&out[..52]);
    let repr = Icmpv6Repr::parse(
        &s,
        &dst,
        &Icmpv6Packet::new_checked(&msg[..]).unwrap(),
        &ChecksumCapabilities::default(),
    )
    .unwrap();
    assert_eq!(
        repr,
        Icmpv6Repr::EchoReply {
            ident: 7,
            seq_no: 1,
            data: b"abcd"
        }
    );
}

#[test]
fn echo_with_bad_checksum_dropped() {
    let f = forwarder();
    let mut p = ECHO;
    p[30] ^= 1;
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 1500]);
    assert_eq!(d, Decision::Drop(DropReason::BadIcmp));
    let mut p = ECHO6;
    p[50] ^= 1;
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 1500]);
    assert_eq!(d, Decision::Drop(DropReason::BadIcmp));
    assert_eq!(f.counters().drops(DropReason::BadIcmp), 2);
}

#[test]
fn echo_to_router_id_and_fib_local_answered_from_pinged_address() {
    let f = forwarder();
    for dst in [[192, 0, 2, 1], [100, 127, 0, 9]] {
        let mut p = ECHO;
        p[16..20].copy_from_slice(&dst);
        fix_v4(&mut p);
        p[22..24].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&p[20..]);
        p[22..24].copy_from_slice(&c.to_be_bytes());
        let mut out = [0u8; 100];
        let d = decide(&f, Ingress::Host, &mut p, &mut out);
        assert!(matches!(d, Decision::Reply { len: 36, .. }), "{d:?}");
        assert_eq!(icmp4(&out[..36]).0, Ipv4Addr::from(dst));
    }
}

#[test]
fn forwards_and_decrements_ttl() {
    let f = forwarder();
    let mut p = [&UDP4[..], &[0xee; 4]].concat(); // with link padding
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 1500]);
    assert_eq!(
        d,
        Decision::Forward {
            to: Egress::Tunnel(T2),
            len: 36
        }
    );
    let v = Ipv4Packet::new_checked(&p[..]).unwrap();
    assert_eq!(v.ttl(), 63);
    assert!(v.verify_checksum());
    assert_eq!(p[12..], [&UDP4[12..], &[0xee; 4]].concat()[..]);
    assert!(f.counters().snapshot().iter().all(|(_, n)| *n == 0));

    let mut p6 = udp6("2001:db8:1::2", "2001:db8:2::9", 2, 20);
    let d = decide(&f, Ingress::Tunnel(T1), &mut p6, &mut [0u8; 1500]);
    assert_eq!(
        d,
        Decision::Forward {
            to: Egress::Tunnel(T2),
            len: 60
        }
    );
    assert_eq!(p6[7], 1);
}

#[test]
fn locally_originated_packets_keep_their_ttl() {
    let f = forwarder();
    let mut p = UDP4_TTL1;
    let d = decide(&f, Ingress::Local, &mut p, &mut [0u8; 1500]);
    assert_eq!(
        d,
        Decision::Forward {
            to: Egress::Tunnel(T2),
            len: 36
        }
    );
    assert_eq!(p, UDP4_TTL1);
}

#[test]
fn ttl_1_gets_time_exceeded_quoting_the_packet() {
    let f = forwarder();
    let mut p = UDP4_TTL1;
    let mut out = [0u8; 1500];
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut out);
    // 20 IP + 8 ICMP + the whole 36-byte original.
    assert_eq!(
        d,
        Decision::Reply {
            len: 64,
            to: Egress::Tunnel(T1)
        }
    );
    let (src, dst, msg) = icmp4(&out[..64]);
    assert_eq!(
        src,
        Ipv4Addr::new(10, 0, 0, 1),
        "the ingress tunnel's address"
    );
    assert_eq!(dst, Ipv4Addr::new(192, 0, 2, 10));
    assert_eq!(msg[..2], [11, 0]);
    assert_eq!(msg[8..], UDP4_TTL1, "quoted as received");
    assert_eq!(out[1], 0xc0, "internetwork control precedence");
    assert_eq!(p, UDP4_TTL1);
    assert_eq!(f.counters().drops(DropReason::TtlExceeded), 1);
    assert_eq!(f.counters().get(Event::IcmpErrorSent), 1);
}

#[test]
fn ttl_error_from_host_uses_router_id() {
    let f = forwarder();
    let mut p = UDP4_TTL1;
    let mut out = [0u8; 1500];
    let d = decide(&f, Ingress::Host, &mut p, &mut out);
    assert!(matches!(d, Decision::Reply { len: 64, .. }));
    assert_eq!(icmp4(&out[..64]).0, Ipv4Addr::new(192, 0, 2, 1));
}

#[test]
fn hop_limit_1_gets_v6_time_exceeded() {
    let f = forwarder();
    let mut p = udp6("2001:db8:1::2", "2001:db8:2::9", 1, 20);
    let orig = p.clone();
    let mut out = [0u8; 1500];
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut out);
    assert_eq!(
        d,
        Decision::Reply {
            len: 48 + 60,
            to: Egress::Tunnel(T1)
        }
    );
    let (src, dst, msg) = icmp6(&out[..108]);
    assert_eq!(
        src,
        "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        "global, not fe80::1"
    );
    assert_eq!(dst, "2001:db8:1::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!(msg[..2], [3, 0]);
    assert_eq!(msg[8..], orig[..]);
}

#[test]
fn no_route_gets_unreachable() {
    let f = forwarder();
    let mut p = udp4([192, 0, 2, 10], [100, 64, 0, 1], 64, true, 60);
    let mut out = [0u8; 1500];
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut out);
    assert_eq!(
        d,
        Decision::Reply {
            len: 88,
            to: Egress::Tunnel(T1)
        }
    );
    let (_, _, msg) = icmp4(&out[..88]);
    assert_eq!(msg[..2], [3, 0]);
    assert_eq!(f.counters().drops(DropReason::NoRoute), 1);

    let mut p6 = udp6("2001:db8:1::2", "2001:db8:99::1", 64, 8);
    let d = decide(&f, Ingress::Tunnel(T1), &mut p6, &mut out);
    assert_eq!(
        d,
        Decision::Reply {
            len: 96,
            to: Egress::Tunnel(T1)
        }
    );
    assert_eq!(icmp6(&out[..96]).2[..2], [1, 0]);
}

#[test]
fn blackhole_is_silent() {
    let f = forwarder();
    let mut p = udp4([192, 0, 2, 10], [203, 0, 113, 1], 64, true, 60);
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 1500]);
    assert_eq!(d, Decision::Drop(DropReason::Blackhole));
    let mut p6 = udp6("2001:db8:1::2", "2001:db8:dead::1", 64, 8);
    let d = decide(&f, Ingress::Tunnel(T1), &mut p6, &mut [0u8; 1500]);
    assert_eq!(d, Decision::Drop(DropReason::Blackhole));
    assert_eq!(f.counters().get(Event::IcmpErrorSent), 0);
}

#[test]
fn df_too_big_gets_frag_needed_with_mtu() {
    let f = forwarder();
    let mut p = udp4([192, 0, 2, 10], [198, 51, 100, 20], 64, true, 1500);
    let orig = p.clone();
    let mut out = [0u8; 1500];
    let d = f.decide(Ingress::Tunnel(T1), &mut p, &routes, |_| 1400, &mut out);
    assert_eq!(
        d,
        Decision::Reply {
            len: 576,
            to: Egress::Tunnel(T1)
        }
    );
    let (_, _, msg) = icmp4(&out[..576]);
    assert_eq!(msg[..2], [3, 4]);
    assert_eq!(
        u16::from_be_bytes([msg[6], msg[7]]),
        1400,
        "next-hop MTU (RFC 1191)"
    );
    assert_eq!(msg[8..], orig[..548], "as much as fits in 576 bytes");
    assert_eq!(p, orig, "not modified");
    assert_eq!(f.counters().drops(DropReason::TooBig), 1);
}

#[test]
fn error_shrinks_to_return_path_mtu() {
    let f = forwarder();
    let mut p = udp4([192, 0, 2, 10], [198, 51, 100, 20], 64, true, 1500);
    let mut out = [0u8; 1500];
    let small = |e: Egress| if e == Egress::Tunnel(T1) { 100 } else { 1400 };
    let d = f.decide(Ingress::Tunnel(T1), &mut p, &routes, small, &mut out);
    assert_eq!(
        d,
        Decision::Reply {
            len: 100,
            to: Egress::Tunnel(T1)
        }
    );
    icmp4(&out[..100]);
}

#[test]
fn v6_too_big_gets_packet_too_big() {
    let f = forwarder();
    let mut p = udp6("2001:db8:1::2", "2001:db8:2::9", 64, 1460);
    let orig = p.clone();
    let mut out = [0u8; 2000];
    let d = f.decide(Ingress::Tunnel(T1), &mut p, &routes, |_| 1420, &mut out);
    assert_eq!(
        d,
        Decision::Reply {
            len: 1280,
            to: Egress::Tunnel(T1)
        }
    );
    let (_, _, msg) = icmp6(&out[..1280]);
    assert_eq!(msg[..2], [2, 0]);
    assert_eq!(u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]), 1420);
    assert_eq!(msg[8..], orig[..1280 - 48], "as much as fits in 1280 bytes");
    assert_eq!(p, orig);
}

#[test]
fn no_df_too_big_is_fragmented() {
    let f = forwarder();
    let mut p = udp4([192, 0, 2, 10], [198, 51, 100, 20], 64, false, 1500);
    let d = f.decide(
        Ingress::Tunnel(T1),
        &mut p,
        &routes,
        |_| 1420,
        &mut [0u8; 1500],
    );
    assert_eq!(
        d,
        Decision::Fragment {
            to: Egress::Tunnel(T2),
            mtu: 1420
        }
    );
    let mut frag = Ipv4Fragmenter::new(&p, 1420).unwrap();
    let mut buf = [0u8; 1420];
    let mut lens = Vec::new();
    while let Some(n) = frag.next_into(&mut buf) {
        let v = Ipv4Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!(v.ttl(), 63);
        assert!(v.verify_checksum());
        lens.push(n);
    }
    assert_eq!(lens, vec![1420, 20 + 1480 - 1400]);
    assert_eq!(f.counters().get(Event::Fragmented), 1);

    let nofrag = ForwarderConfig {
        fragment_ipv4: false,
        ..ForwarderConfig::default()
    };
    let f = Forwarder::with_config(local(), nofrag);
    let mut p = udp4([192, 0, 2, 10], [198, 51, 100, 20], 64, false, 1500);
    let d = f.decide(
        Ingress::Tunnel(T1),
        &mut p,
        &routes,
        |_| 1420,
        &mut [0u8; 1500],
    );
    assert_eq!(d, Decision::Drop(DropReason::CannotFragment));
}

/// An ICMP error (time exceeded) that itself runs out of TTL.
fn icmp_error_packet() -> Vec<u8> {
    let mut p = udp4([192, 0, 2, 10], [198, 51, 100, 20], 1, false, 56);
    p[9] = 1;
    p[20..28].copy_from_slice(&[11, 0, 0, 0, 0, 0, 0, 0]);
    fix_v4(&mut p);
    p
}

#[test]
fn no_icmp_error_about_icmp_error() {
    let f = forwarder();
    let mut p = icmp_error_packet();
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 1500]);
    assert_eq!(d, Decision::Drop(DropReason::TtlExceeded));
    assert_eq!(f.counters().get(Event::IcmpErrorForbidden), 1);

    // But an echo request in transit with TTL 1 does get one (traceroute -I).
    let mut p = icmp_error_packet();
    p[20] = 8;
    fix_v4(&mut p);
    assert!(matches!(
        decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 1500]),
        Decision::Reply { .. }
    ));

    // ICMPv6 packet too big (type 2) in transit with hop limit 1.
    let mut p6 = udp6("2001:db8:1::2", "2001:db8:2::9", 1, 16);
    p6[6] = 58;
    p6[40] = 2;
    let d = decide(&f, Ingress::Tunnel(T1), &mut p6, &mut [0u8; 1500]);
    assert_eq!(d, Decision::Drop(DropReason::TtlExceeded));
    assert_eq!(f.counters().get(Event::IcmpErrorForbidden), 2);
}

#[test]
fn no_icmp_error_about_non_first_fragment() {
    let f = forwarder();
    let mut p = udp4([192, 0, 2, 10], [198, 51, 100, 20], 1, false, 60);
    p[6..8].copy_from_slice(&[0x00, 0x10]); // offset 128 bytes
    fix_v4(&mut p);
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 1500]);
    assert_eq!(d, Decision::Drop(DropReason::TtlExceeded));
    assert_eq!(f.counters().get(Event::IcmpErrorForbidden), 1);
}

#[test]
fn no_icmp_error_for_local_ingress() {
    let f = forwarder();
    let mut p = udp4([10, 0, 0, 1], [100, 64, 0, 1], 64, true, 60);
    let d = decide(&f, Ingress::Local, &mut p, &mut [0u8; 1500]);
    assert_eq!(d, Decision::Drop(DropReason::NoRoute));
}

#[test]
fn rate_limiter_caps_error_bursts() {
    let (clock, c) = manual_clock();
    let f = Forwarder::new(local()).with_clock(c);
    let mut out = [0u8; 1500];
    let mut replies = 0;
    for _ in 0..80 {
        let mut p = UDP4_TTL1;
        if let Decision::Reply { .. } = decide(&f, Ingress::Tunnel(T1), &mut p, &mut out) {
            replies += 1;
        }
    }
    assert_eq!(replies, RateLimit::ICMP_ERRORS.burst);
    assert_eq!(f.counters().get(Event::IcmpErrorRateLimited), 30);
    assert_eq!(f.counters().drops(DropReason::TtlExceeded), 80);
    // 100/s: 10 ms brings back one token, and echo replies have their own bucket.
    clock.fetch_add(10_000_000, Ordering::Relaxed);
    let mut p = UDP4_TTL1;
    assert!(matches!(
        decide(&f, Ingress::Tunnel(T1), &mut p, &mut out),
        Decision::Reply { .. }
    ));
    let mut p = UDP4_TTL1;
    assert!(matches!(
        decide(&f, Ingress::Tunnel(T1), &mut p, &mut out),
        Decision::Drop(_)
    ));
    let mut p = ECHO;
    assert!(matches!(
        decide(&f, Ingress::Tunnel(T1), &mut p, &mut out),
        Decision::Reply { .. }
    ));
}

#[test]
fn malformed_inputs_dropped_with_reason() {
    let f = forwarder();
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (vec![], DropReason::Truncated),
        (vec![0x45; 10], DropReason::Truncated),
        ([&[0x55], &UDP4[1..]].concat(), DropReason::BadVersion),
        ([&[0x44], &UDP4[1..]].concat(), DropReason::BadHeaderLength),
        ([&[0x46], &UDP4[1..]].concat(), DropReason::BadChecksum),
        ([&[0x4f], &UDP4[1..]].concat(), DropReason::Truncated),
        (UDP4[..30].to_vec(), DropReason::BadTotalLength),
        (
            [&UDP4[..11], &[0], &UDP4[12..]].concat(),
            DropReason::BadChecksum,
        ),
        (vec![0x60; 39], DropReason::Truncated),
        (
            udp6("2001:db8:1::2", "2001:db8:2::9", 64, 20)[..50].to_vec(),
            DropReason::BadTotalLength,
        ),
    ];
    for (mut p, reason) in cases {
        let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 1500]);
        assert_eq!(d, Decision::Drop(reason), "{p:02x?}");
    }
    assert_eq!(f.counters().drops(DropReason::Truncated), 4);
    assert_eq!(f.counters().get(Event::IcmpErrorSent), 0);
}

#[test]
fn special_destinations() {
    let f = forwarder();
    let mut out = [0u8; 1500];
    let cases: Vec<(Vec<u8>, Decision)> = vec![
        // OSPF hello to AllSPFRouters: protocol 89, TTL 1.
        (
            {
                let mut p = udp4([10, 0, 0, 2], [224, 0, 0, 5], 1, false, 64);
                p[9] = 89;
                fix_v4(&mut p);
                p
            },
            Decision::Deliver,
        ),
        // BGP over TCP to the tunnel address.
        (
            {
                let mut p = udp4([10, 0, 0, 2], [10, 0, 0, 1], 1, true, 64);
                p[9] = 6;
                fix_v4(&mut p);
                p
            },
            Decision::Deliver,
        ),
        (
            udp4([10, 0, 0, 2], [239, 1, 1, 1], 9, false, 64),
            Decision::Drop(DropReason::Multicast),
        ),
        (
            udp4([10, 0, 0, 2], [255, 255, 255, 255], 9, false, 64),
            Decision::Drop(DropReason::Broadcast),
        ),
        (
            udp4([127, 0, 0, 1], [198, 51, 100, 1], 9, false, 64),
            Decision::Drop(DropReason::MartianSource),
        ),
        (
            udp4([10, 0, 0, 2], [0, 1, 2, 3], 9, false, 64),
            Decision::Drop(DropReason::MartianDestination),
        ),
        (udp6("fe80::2", "ff02::5", 1, 8), Decision::Deliver),
        (udp6("fe80::2", "fe80::1", 1, 8), Decision::Deliver),
        (
            udp6("fe80::2", "fe80::99", 9, 8),
            Decision::Drop(DropReason::LinkLocalScope),
        ),
        (
            udp6("fe80::2", "2001:db8:2::1", 9, 8),
            Decision::Drop(DropReason::LinkLocalScope),
        ),
        (
            udp6("ff02::1", "2001:db8:2::1", 9, 8),
            Decision::Drop(DropReason::MartianSource),
        ),
        (
            udp6("2001:db8:1::2", "ff05::2", 9, 8),
            Decision::Drop(DropReason::Multicast),
        ),
        (
            udp6("2001:db8:1::2", "::1", 9, 8),
            Decision::Drop(DropReason::MartianDestination),
        ),
    ];
    for (mut p, want) in cases {
        assert_eq!(
            decide(&f, Ingress::Tunnel(T1), &mut p, &mut out),
            want,
            "{p:02x?}"
        );
    }
}

#[test]
fn local_addresses_swap() {
    let f = forwarder();
    let mut p = UDP4;
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 1500]);
    assert!(matches!(d, Decision::Forward { .. }));
    f.set_local(LocalAddresses::new([ip("198.51.100.20")]));
    let mut p = UDP4;
    assert_eq!(
        decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 1500]),
        Decision::Deliver
    );
}

#[test]
fn echo_needs_a_route_back_and_room() {
    let f = forwarder();
    let mut p = ECHO;
    p[12..16].copy_from_slice(&[100, 64, 0, 1]);
    fix_v4(&mut p);
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 1500]);
    assert_eq!(d, Decision::Drop(DropReason::EchoUnroutable));
    let mut p = ECHO;
    let d = decide(&f, Ingress::Tunnel(T1), &mut p, &mut [0u8; 30]);
    assert_eq!(d, Decision::Drop(DropReason::EchoTooBig));
}

#[test]
fn tiny_egress_mtu_drops_without_misleading_icmp() {
    let f = forwarder();
    let mut p = udp4([192, 0, 2, 10], [198, 51, 100, 20], 64, true, 100);
    let d = f.decide(
        Ingress::Tunnel(T1),
        &mut p,
        &routes,
        |_| 0,
        &mut [0u8; 1500],
    );
    assert_eq!(d, Decision::Drop(DropReason::EgressMtuTooSmall));
    let mut p6 = udp6("2001:db8:1::2", "2001:db8:2::9", 64, 1300);
    let d = f.decide(
        Ingress::Tunnel(T1),
        &mut p6,
        &routes,
        |_| 1000,
        &mut [0u8; 1500],
    );
    assert_eq!(d, Decision::Drop(DropReason::EgressMtuTooSmall));
    // Small packets still go through a small-MTU egress.
    let mut p6 = udp6("2001:db8:1::2", "2001:db8:2::9", 64, 100);
    let d = f.decide(
        Ingress::Tunnel(T1),
        &mut p6,
        &routes,
        |_| 1000,
        &mut [0u8; 1500],
    );
    assert!(matches!(d, Decision::Forward { .. }));
}

#[test]
fn forwarder_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Forwarder>();
}
