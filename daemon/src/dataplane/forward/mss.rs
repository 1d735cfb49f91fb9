//! TCP MSS clamping: lowers the maximum-segment-size option of a TCP SYN (or SYN-ACK)
//! so that the segments the other side sends fit the tunnel they will cross, even when
//! ICMP "fragmentation needed" / "packet too big" is filtered somewhere on the path
//! (a PMTU black hole).
//!
//! Pure functions over the bytes of one TCP segment, called by the forwarding decision
//! for packets it forwards into or out of a tunnel. Owns no state and knows nothing about
//! routes or tunnels: the caller says what the largest acceptable MSS is.
//!
//! Implements: RFC 9293 section 3.7.1 (the MSS option is the largest segment the sender
//! of the SYN accepts; a SYN without it implies 536 for IPv4, RFC 8200 / RFC 9293 1220 for
//! IPv6, both at or below any clamp this function is asked for, so nothing is added),
//! RFC 6691 (MSS = MTU - fixed IP and TCP headers: 40 bytes for IPv4, 60 for IPv6) and
//! RFC 1624 (the TCP checksum is updated incrementally, not recomputed).

use crate::wire::checksum;

/// IPv4 and TCP fixed headers: MSS = MTU - 40.
pub const V4_OVERHEAD: u16 = 40;
/// IPv6 and TCP fixed headers: MSS = MTU - 60.
pub const V6_OVERHEAD: u16 = 60;

/// The IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;

mod field {
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const CHECKSUM: core::ops::Range<usize> = 16..18;
    pub const OPTIONS: usize = 20;
}

const FLAG_SYN: u8 = 0x02;
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const OPT_MSS_LEN: u8 = 4;

/// What [`clamp_segment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clamp {
    /// Not a SYN, truncated, or its options could not be walked: left alone.
    NotApplicable,
    /// A SYN whose MSS (if any) already fits.
    Fits,
    /// The MSS option was lowered from `from` to `to` and the checksum patched.
    Clamped { from: u16, to: u16 },
}

/// The largest MSS for packets that cross a link of `mtu` bytes (never below 0).
pub fn max_mss(mtu: u16, ipv6: bool) -> u16 {
    mtu.saturating_sub(if ipv6 { V6_OVERHEAD } else { V4_OVERHEAD })
}

/// Lower the MSS option of `tcp` (a TCP header and whatever follows it, up to the end of
/// the IP payload) to at most `max`, when the segment is a SYN. Malformed options are
/// left untouched: the receiver judges them, not the router.
pub fn clamp_segment(tcp: &mut [u8], max: u16) -> Clamp {
    if tcp.len() < field::OPTIONS || tcp[field::FLAGS] & FLAG_SYN == 0 {
        return Clamp::NotApplicable;
    }
    let header_len = usize::from(tcp[field::DATA_OFF] >> 4) * 4;
    if header_len < field::OPTIONS || header_len > tcp.len() {
        return Clamp::NotApplicable;
    }
    // Walk every option first: a list that cannot be walked is left whole.
    let mut mss_at = None;
    let mut i = field::OPTIONS;
    while i < header_len {
        match tcp[i] {
            OPT_END => break,
            OPT_NOP => i += 1,
            kind => {
                if i + 1 >= header_len {
                    return Clamp::NotApplicable;
                }
                let len = usize::from(tcp[i + 1]);
                if len < 2 || i + len > header_len {
                    return Clamp::NotApplicable;
                }
                if kind == OPT_MSS && len == usize::from(OPT_MSS_LEN) && mss_at.is_none() {
                    mss_at = Some(i + 2);
                }
                i += len;
            }
        }
    }
    let Some(at) = mss_at else {
        return Clamp::Fits;
    };
    let mss = u16::from_be_bytes([tcp[at], tcp[at + 1]]);
    if mss <= max {
        return Clamp::Fits;
    }
    write_u16(tcp, at, max);
    Clamp::Clamped { from: mss, to: max }
}

/// Store `value` at byte `at` of the segment and patch the TCP checksum for it (RFC 1624).
/// The checksum sums 16-bit words from the start of the TCP header (which starts on an
/// even offset of the pseudo-header sum), so a value at an odd offset straddles two words.
fn write_u16(tcp: &mut [u8], at: usize, value: u16) {
    let word_at = at & !1;
    let words = if at & 1 == 0 { 1 } else { 2 };
    let end = (word_at + 2 * words).min(tcp.len());
    let mut old = [0u8; 4];
    old[..end - word_at].copy_from_slice(&tcp[word_at..end]);
    tcp[at..at + 2].copy_from_slice(&value.to_be_bytes());
    let mut new = [0u8; 4];
    new[..end - word_at].copy_from_slice(&tcp[word_at..end]);
    let mut sum = u16::from_be_bytes([tcp[field::CHECKSUM.start], tcp[field::CHECKSUM.end - 1]]);
    for w in 0..words {
        let o = u16::from_be_bytes([old[2 * w], old[2 * w + 1]]);
        let n = u16::from_be_bytes([new[2 * w], new[2 * w + 1]]);
        sum = checksum::update(sum, o, n);
    }
    tcp[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::{fold, pseudo_header_v6, sum};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SRC4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
    const DST4: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 2);
    const DST6: Ipv6Addr = Ipv6Addr::new(0xfd02, 0, 0, 0, 0, 0, 0, 2);

    /// A TCP segment with `flags`, `options` (already padded to 4 bytes) and `payload`;
    /// the checksum is left 0 for [`fill_checksum`].
    fn segment(flags: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0, "options must be padded");
        let header_len = 20 + options.len();
        let mut t = vec![0u8; header_len];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
        t[12] = ((header_len / 4) as u8) << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&64240u16.to_be_bytes());
        t[20..].copy_from_slice(options);
        t.extend_from_slice(payload);
        t
    }

    fn pseudo_v4(len: usize) -> u64 {
        sum(&SRC4.octets()) + sum(&DST4.octets()) + u64::from(PROTO_TCP) + len as u64
    }

    fn pseudo_v6(len: usize) -> u64 {
        pseudo_header_v6(&SRC6, &DST6, len as u32, PROTO_TCP)
    }

    fn fill_checksum(t: &mut [u8], pseudo: u64) {
        t[16..18].copy_from_slice(&[0, 0]);
        let c = !fold(pseudo + sum(t));
        t[16..18].copy_from_slice(&c.to_be_bytes());
    }

    fn verifies(t: &[u8], pseudo: u64) -> bool {
        fold(pseudo + sum(t)) == 0xffff
    }

    fn mss_of(t: &[u8]) -> Option<u16> {
        let hl = usize::from(t[12] >> 4) * 4;
        let mut i = 20;
        while i < hl {
            match t[i] {
                0 => break,
                1 => i += 1,
                2 => return Some(u16::from_be_bytes([t[i + 2], t[i + 3]])),
                _ => i += usize::from(t[i + 1]),
            }
        }
        None
    }

    /// A Linux SYN's options: MSS, SACK permitted, timestamps, NOP, window scale.
    fn linux_syn_options(mss: u16) -> Vec<u8> {
        let [hi, lo] = mss.to_be_bytes();
        vec![
            2, 4, hi, lo, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ]
    }

    #[test]
    fn v4_syn_is_clamped_and_checksum_still_verifies() {
        let mut t = segment(FLAG_SYN, &linux_syn_options(1460), &[]);
        let pseudo = pseudo_v4(t.len());
        fill_checksum(&mut t, pseudo);
        let max = max_mss(1420, false);
        assert_eq!(max, 1380);
        assert_eq!(
            clamp_segment(&mut t, max),
            Clamp::Clamped {
                from: 1460,
                to: 1380
            }
        );
        assert_eq!(mss_of(&t), Some(1380));
        assert!(verifies(&t, pseudo));
    }

    #[test]
    fn v6_syn_ack_is_clamped_and_checksum_still_verifies() {
        let mut t = segment(FLAG_SYN | 0x10, &linux_syn_options(1440), &[]);
        let pseudo = pseudo_v6(t.len());
        fill_checksum(&mut t, pseudo);
        let max = max_mss(1420, true);
        assert_eq!(max, 1360);
        assert_eq!(
            clamp_segment(&mut t, max),
            Clamp::Clamped {
                from: 1440,
                to: 1360
            }
        );
        assert_eq!(mss_of(&t), Some(1360));
        assert!(verifies(&t, pseudo));
    }

    #[test]
    fn mss_at_an_odd_offset_patches_both_words() {
        // NOP first puts the MSS value at bytes 23..25 (odd).
        let mut t = segment(FLAG_SYN, &[1, 2, 4, 0x05, 0xb4, 1, 1, 1], b"x");
        let pseudo = pseudo_v4(t.len());
        fill_checksum(&mut t, pseudo);
        assert_eq!(
            clamp_segment(&mut t, 1200),
            Clamp::Clamped {
                from: 1460,
                to: 1200
            }
        );
        assert_eq!(mss_of(&t), Some(1200));
        assert!(verifies(&t, pseudo));
    }

    #[test]
    fn small_mss_is_left_alone() {
        let mut t = segment(FLAG_SYN, &linux_syn_options(1200), &[]);
        let pseudo = pseudo_v4(t.len());
        fill_checksum(&mut t, pseudo);
        let before = t.clone();
        assert_eq!(clamp_segment(&mut t, 1380), Clamp::Fits);
        assert_eq!(t, before);
    }

    #[test]
    fn syn_without_options_is_left_alone() {
        // The implied MSS (536 / 1220) is below every clamp, so nothing is added.
        let mut t = segment(FLAG_SYN, &[], &[]);
        let pseudo = pseudo_v6(t.len());
        fill_checksum(&mut t, pseudo);
        let before = t.clone();
        assert_eq!(clamp_segment(&mut t, 1360), Clamp::Fits);
        assert_eq!(t, before);
    }

    #[test]
    fn non_syn_is_not_touched() {
        // An ACK that happens to carry bytes looking like an MSS option.
        let mut t = segment(0x10, &linux_syn_options(1460), b"data");
        let pseudo = pseudo_v4(t.len());
        fill_checksum(&mut t, pseudo);
        let before = t.clone();
        assert_eq!(clamp_segment(&mut t, 1000), Clamp::NotApplicable);
        assert_eq!(t, before);
    }

    #[test]
    fn malformed_options_are_not_touched() {
        let cases: [&[u8]; 4] = [
            // Length 0 would loop forever if trusted.
            &[8, 0, 2, 4, 5, 0xb4, 0, 0],
            // Runs past the header.
            &[2, 4, 5, 0xb4, 8, 10, 0, 0],
            // Kind without its length byte at the very end.
            &[1, 1, 1, 8],
            // Length 1.
            &[3, 1, 2, 4],
        ];
        for opts in cases {
            let mut t = segment(FLAG_SYN, opts, &[]);
            let before = t.clone();
            assert_eq!(
                clamp_segment(&mut t, 1000),
                Clamp::NotApplicable,
                "{opts:?}"
            );
            assert_eq!(t, before, "options {opts:?}");
        }
    }

    #[test]
    fn bad_data_offset_and_truncation() {
        let mut t = segment(FLAG_SYN, &linux_syn_options(1460), &[]);
        t[12] = 0xf0; // 60 bytes claimed, 40 present
        assert_eq!(clamp_segment(&mut t, 1000), Clamp::NotApplicable);
        t[12] = 0x40; // 16 bytes: below the fixed header
        assert_eq!(clamp_segment(&mut t, 1000), Clamp::NotApplicable);
        assert_eq!(clamp_segment(&mut t[..19], 1000), Clamp::NotApplicable);
        assert_eq!(clamp_segment(&mut [], 1000), Clamp::NotApplicable);
    }

    #[test]
    fn end_of_options_stops_the_walk() {
        // EOL before an MSS: whatever follows is not an option.
        let mut t = segment(FLAG_SYN, &[0, 0, 0, 0, 2, 4, 5, 0xb4], &[]);
        let before = t.clone();
        assert_eq!(clamp_segment(&mut t, 1000), Clamp::Fits);
        assert_eq!(t, before);
    }

    #[test]
    fn max_mss_saturates() {
        assert_eq!(max_mss(1280, true), 1220);
        assert_eq!(max_mss(576, false), 536);
        assert_eq!(max_mss(10, true), 0);
    }
}

/// The clamp as the forwarding decision applies it: which packets, which MTU.
#[cfg(test)]
mod decide_tests {
    use super::super::{Decision, Event, Forwarder, ForwarderConfig, LocalAddresses};
    use crate::dataplane::{Egress, Ingress, TunnelId};
    use crate::wire::checksum;
    use smoltcp::wire::{
        IpAddress, Ipv4Packet as SIpv4, Ipv6Packet as SIpv6, TcpOption, TcpPacket,
    };
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    const T1: TunnelId = TunnelId(1);
    const T2: TunnelId = TunnelId(2);

    /// 10.1.0.0/16 and fd01::/16 on the host; 10.2.0.0/16, fd02::/16 behind T1;
    /// 10.3.0.0/16 behind T2.
    fn routes(dst: IpAddr, _: u32) -> Option<Egress> {
        match dst {
            IpAddr::V4(a) => match a.octets() {
                [10, 1, ..] => Some(Egress::Host),
                [10, 2, ..] => Some(Egress::Tunnel(T1)),
                [10, 3, ..] => Some(Egress::Tunnel(T2)),
                _ => None,
            },
            IpAddr::V6(a) => match a.segments()[0] {
                0xfd01 => Some(Egress::Host),
                0xfd02 => Some(Egress::Tunnel(T1)),
                _ => None,
            },
        }
    }

    /// T1 has MTU 1420, T2 1300; the host TUN is not asked.
    fn mtu(e: Egress) -> u16 {
        match e {
            Egress::Tunnel(T1) => 1420,
            Egress::Tunnel(T2) => 1300,
            _ => 9000,
        }
    }

    fn forwarder() -> Forwarder {
        Forwarder::new(LocalAddresses::new([]).with_router_id(Ipv4Addr::new(10, 255, 0, 1)))
    }

    /// TCP header with SYN (and ACK when `ack`), Linux-like options with `mss`.
    fn tcp(mss: u16, ack: bool) -> Vec<u8> {
        let [hi, lo] = mss.to_be_bytes();
        let mut t = vec![
            0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 2,
            4, hi, lo, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        if ack {
            t[13] |= 0x10;
        }
        t
    }

    fn syn4(src: [u8; 4], dst: [u8; 4], mss: u16, ack: bool) -> Vec<u8> {
        let t = tcp(mss, ack);
        let len = 20 + t.len();
        let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0];
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        let c = checksum::checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&t);
        let pseudo =
            checksum::sum(&src) + checksum::sum(&dst) + 6 + t.len() as u64 + checksum::sum(&t);
        let c = !checksum::fold(pseudo);
        p[36..38].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn syn6(src: Ipv6Addr, dst: Ipv6Addr, mss: u16) -> Vec<u8> {
        let t = tcp(mss, false);
        let mut p = vec![0x60, 0, 0, 0, 0, t.len() as u8, 6, 64];
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&t);
        let pseudo = checksum::pseudo_header_v6(&src, &dst, t.len() as u32, 6) + checksum::sum(&t);
        let c = !checksum::fold(pseudo);
        p[56..58].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// The MSS of a forwarded IPv4 packet, after smoltcp verified both checksums.
    fn mss4(p: &[u8]) -> u16 {
        let ip = SIpv4::new_checked(p).unwrap();
        assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        assert!(tcp.verify_checksum(&IpAddress::Ipv4(s), &IpAddress::Ipv4(d)));
        mss_option(&tcp)
    }

    fn mss6(p: &[u8]) -> u16 {
        let ip = SIpv6::new_checked(p).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        assert!(tcp.verify_checksum(&IpAddress::Ipv6(s), &IpAddress::Ipv6(d)));
        mss_option(&tcp)
    }

    fn mss_option(tcp: &TcpPacket<&[u8]>) -> u16 {
        let mut opts = tcp.options();
        while !opts.is_empty() {
            let (rest, opt) = TcpOption::parse(opts).unwrap();
            if let TcpOption::MaxSegmentSize(m) = opt {
                return m;
            }
            opts = rest;
        }
        panic!("no MSS option")
    }

    fn forward(f: &Forwarder, ingress: Ingress, p: &mut [u8]) -> Decision {
        f.decide(ingress, p, &routes, mtu, &mut [0u8; 1500])
    }

    #[test]
    fn syn_into_a_tunnel_fits_its_mtu() {
        let f = forwarder();
        let mut p = syn4([10, 1, 0, 2], [10, 2, 0, 2], 1460, false);
        let d = forward(&f, Ingress::Host, &mut p);
        assert!(matches!(
            d,
            Decision::Forward {
                to: Egress::Tunnel(T1),
                ..
            }
        ));
        assert_eq!(mss4(&p), 1420 - 40);
        assert_eq!(p[8], 63, "TTL still decremented");
        assert_eq!(f.counters().get(Event::MssClamped), 1);
    }

    #[test]
    fn syn_ack_out_of_a_tunnel_fits_the_ingress_tunnel() {
        let f = forwarder();
        let mut p = syn4([10, 3, 0, 2], [10, 1, 0, 2], 1460, true);
        let d = forward(&f, Ingress::Tunnel(T2), &mut p);
        assert!(matches!(
            d,
            Decision::Forward {
                to: Egress::Host,
                ..
            }
        ));
        assert_eq!(mss4(&p), 1300 - 40);
    }

    #[test]
    fn transit_takes_the_smaller_tunnel() {
        let f = forwarder();
        let mut p = syn4([10, 2, 0, 2], [10, 3, 0, 2], 1460, false);
        forward(&f, Ingress::Tunnel(T1), &mut p);
        assert_eq!(mss4(&p), 1300 - 40);
        let mut p = syn4([10, 3, 0, 2], [10, 2, 0, 2], 1460, false);
        forward(&f, Ingress::Tunnel(T2), &mut p);
        assert_eq!(mss4(&p), 1300 - 40);
    }

    #[test]
    fn v6_syn_uses_60_bytes_of_headers() {
        let f = forwarder();
        let (src, dst) = ("fd01::2".parse().unwrap(), "fd02::2".parse().unwrap());
        let mut p = syn6(src, dst, 1440);
        let d = forward(&f, Ingress::Host, &mut p);
        assert!(matches!(
            d,
            Decision::Forward {
                to: Egress::Tunnel(T1),
                ..
            }
        ));
        assert_eq!(mss6(&p), 1420 - 60);
        assert_eq!(p[7], 63);
    }

    #[test]
    fn small_mss_and_switched_off_and_own_packets_are_untouched() {
        let f = forwarder();
        let mut p = syn4([10, 1, 0, 2], [10, 2, 0, 2], 1200, false);
        forward(&f, Ingress::Host, &mut p);
        assert_eq!(mss4(&p), 1200);

        f.set_mss_clamp(false);
        assert!(!f.mss_clamp());
        let mut p = syn4([10, 1, 0, 2], [10, 2, 0, 2], 1460, false);
        forward(&f, Ingress::Host, &mut p);
        assert_eq!(mss4(&p), 1460);

        let off = Forwarder::with_config(
            LocalAddresses::new([]),
            ForwarderConfig {
                mss_clamp: false,
                ..ForwarderConfig::default()
            },
        );
        assert!(!off.mss_clamp());

        let f = forwarder();
        let mut p = syn4([10, 255, 0, 1], [10, 2, 0, 2], 1460, false);
        forward(&f, Ingress::Local, &mut p);
        assert_eq!(mss4(&p), 1460, "the router's own SYNs are its own business");
        assert_eq!(f.counters().get(Event::MssClamped), 0);
    }
}
