//! The per-packet forwarding decision: `Forwarder::decide` on an arbitrary packet, called
//! as the data path and the forwarding proptests (daemon/src/dataplane/forward/
//! fuzz_tests.rs) call it.
//!
//! Input: byte 0 picks the ingress (bits 0-1), whether to repair the IPv4 header
//! checksum (bit 2), MSS clamping (bit 3) and IPv4 fragmentation (bit 4); bytes 1-2 are
//! the egress MTU, byte 3 the reply buffer size (in 8-byte units); the rest is the packet.
//! Routes are chosen by the destination's last byte so every egress kind is reachable.
//!
//! Checks: no panic; the packet keeps its length; a forward fits the MTU and carries a
//! valid IPv4 header checksum; fragments verify; a reply fits its buffer and the MTU and
//! has right IP and ICMP checksums and lengths.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};
use wgrd::dataplane::forward::{Decision, Forwarder, ForwarderConfig, LocalAddresses};
use wgrd::dataplane::{Egress, Ingress, TunnelId};
use wgrd::wire::checksum;
use wgrd::wire::icmp::v6_checksum_ok;
use wgrd::wire::ipv4::{Ipv4Fragmenter, Ipv4Packet};
use wgrd::wire::ipv6::Ipv6Packet;

const T1: TunnelId = TunnelId(1);
const T2: TunnelId = TunnelId(2);

fn routes(dst: IpAddr, hash: u32) -> Option<Egress> {
    let b = match dst {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15],
    };
    match b % 6 {
        0 => None,
        1 => Some(Egress::Blackhole),
        2 => Some(Egress::Local),
        3 => Some(Egress::Host),
        _ => Some(Egress::Tunnel(TunnelId(hash % 3))),
    }
}

fn local() -> LocalAddresses {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    LocalAddresses::new([])
        .with_router_id(Ipv4Addr::new(192, 0, 2, 1))
        .with_interface(Ingress::Tunnel(T1), ip("10.0.0.1"))
        .with_interface(Ingress::Tunnel(T1), ip("fe80::1"))
        .with_interface(Ingress::Tunnel(T1), ip("2001:db8::1"))
        .with_interface(Ingress::Host, ip("192.168.1.1"))
}

fn fix_v4(p: &mut [u8]) {
    let hl = usize::from(p[0] & 0xf) * 4;
    if p.len() < 20 || hl < 20 || hl > p.len() {
        return;
    }
    p[10..12].copy_from_slice(&[0, 0]);
    let c = !fold(
        p[..hl]
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
            .sum(),
    );
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let sel = data[0];
    let mtu = u16::from_be_bytes([data[1], data[2]]);
    let out_len = usize::from(data[3]) * 8;
    let mut packet = data[4..].to_vec();
    let ingress = match sel & 3 {
        0 => Ingress::Tunnel(T1),
        1 => Ingress::Tunnel(T2),
        2 => Ingress::Host,
        _ => Ingress::Local,
    };
    if sel & 4 != 0 && packet.first().is_some_and(|b| b >> 4 == 4) {
        fix_v4(&mut packet);
    }
    let config = ForwarderConfig {
        mss_clamp: sel & 8 != 0,
        fragment_ipv4: sel & 16 == 0,
        ..ForwarderConfig::default()
    };
    // A fixed clock: each input starts with full rate-limiter buckets, so runs replay.
    let f = Forwarder::with_config(local(), config).with_clock(Box::new(|| 1_000_000_000));
    let orig_len = packet.len();
    let mut out = vec![0u8; out_len];
    let d = f.decide(ingress, &mut packet, &routes, |_| mtu, &mut out);
    assert_eq!(packet.len(), orig_len);
    match d {
        Decision::Forward { to, len } => {
            assert!(len <= packet.len());
            assert!(len <= usize::from(mtu) || to == Egress::Local);
            if packet[0] >> 4 == 4 {
                let hl = usize::from(packet[0] & 0xf) * 4;
                assert!(
                    checksum::verifies(&packet[..hl]),
                    "forwarded IPv4 header checksum"
                );
            }
        }
        Decision::Fragment { mtu: m, .. } => {
            let mut frag = Ipv4Fragmenter::new(&packet, m).expect("decide checked");
            let mut buf = vec![0u8; usize::from(m)];
            let mut n = 0;
            while let Some(len) = frag.next_into(&mut buf) {
                let p = Ipv4Packet::new_checked(&buf[..len]).unwrap();
                assert!(p.verify_checksum());
                n += 1;
                assert!(n < 10_000);
            }
            assert!(n >= 2);
        }
        Decision::Reply { len, to } => {
            assert!(len <= out.len());
            assert!(to == Egress::Local || len <= usize::from(mtu));
            let reply = &out[..len];
            match reply[0] >> 4 {
                4 => {
                    let p = Ipv4Packet::new_checked(reply).unwrap();
                    assert!(p.verify_checksum());
                    assert_eq!(p.total_len(), len);
                    assert!(checksum::verifies(p.payload()));
                }
                6 => {
                    let p = Ipv6Packet::new_checked(reply).unwrap();
                    assert_eq!(p.total_len(), len);
                    let (s, d) = (p.src_addr(), p.dst_addr());
                    assert!(v6_checksum_ok(&s, &d, &reply[40..]));
                }
                v => panic!("reply of version {v}"),
            }
        }
        Decision::Deliver | Decision::Drop(_) => {}
    }
});
