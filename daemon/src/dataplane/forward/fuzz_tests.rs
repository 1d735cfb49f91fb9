//! Property tests: any bytes, and mutations of valid packets, go through `decide` without
//! panicking, and whatever comes out is well-formed (lengths within the buffers and MTUs,
//! checksums right). This is the decoder fuzz target the design asks for; it runs in the
//! normal test suite with a bounded number of cases.

use super::tests::{fix_v4, local, udp4, udp6, ECHO, ECHO6, T1, T2, UDP4, UDP4_TTL1};
use super::*;
use crate::dataplane::TunnelId;
use crate::wire::checksum;
use proptest::prelude::*;

/// Routes chosen by the destination's last byte so all outcomes are reachable
/// (seeds pick last bytes that route to a tunnel or the host).
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

fn seeds() -> Vec<Vec<u8>> {
    let mut with_opts = udp4([192, 0, 2, 10], [198, 51, 100, 22], 5, false, 300);
    with_opts.splice(20..20, [0x83, 7, 4, 1, 2, 3, 4, 1]);
    with_opts[0] = 0x47;
    with_opts[2..4].copy_from_slice(&308u16.to_be_bytes());
    fix_v4(&mut with_opts);
    let mut ext6 = udp6("2001:db8:1::2", "2001:db8:2::9", 2, 40);
    ext6[6] = 0; // hop-by-hop, then fragment, then ICMPv6
    ext6[40..48].copy_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    ext6[48..56].copy_from_slice(&[58, 0, 0, 1, 0, 0, 0, 7]);
    ext6[56] = 128;
    vec![
        ECHO.to_vec(),
        ECHO6.to_vec(),
        UDP4.to_vec(),
        UDP4_TTL1.to_vec(),
        with_opts,
        ext6,
        udp4([10, 0, 0, 2], [100, 64, 0, 4], 1, true, 1400),
        udp4([10, 0, 0, 2], [100, 64, 0, 5], 9, false, 1400),
        udp6("2001:db8:1::2", "2001:db8:2::9", 1, 1400),
    ]
}

fn check(ingress: Ingress, mut packet: Vec<u8>, mtu: u16, out_len: usize) {
    let f = Forwarder::new(local());
    let orig_len = packet.len();
    let mut out = vec![0u8; out_len];
    let mtu_of = |_: Egress| mtu;
    let d = f.decide(ingress, &mut packet, &routes, mtu_of, &mut out);
    assert_eq!(packet.len(), orig_len);
    match d {
        Decision::Forward { to, len } => {
            assert!(len <= packet.len());
            assert!(len <= usize::from(mtu) || to == Egress::Local);
            if packet[0] >> 4 == 4 {
                assert!(checksum::verifies(
                    &packet[..usize::from(packet[0] & 0xf) * 4]
                ));
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
                    let p = crate::wire::ipv6::Ipv6Packet::new_checked(reply).unwrap();
                    assert_eq!(p.total_len(), len);
                    let (s, d) = (p.src_addr(), p.dst_addr());
                    assert!(crate::wire::icmp::v6_checksum_ok(&s, &d, &reply[40..]));
                }
                v => panic!("reply of version {v}"),
            }
        }
        Decision::Deliver | Decision::Drop(_) => {}
    }
}

fn ingress() -> impl Strategy<Value = Ingress> {
    prop_oneof![
        Just(Ingress::Tunnel(T1)),
        Just(Ingress::Tunnel(T2)),
        Just(Ingress::Host),
        Just(Ingress::Local),
    ]
}

fn mtu() -> impl Strategy<Value = u16> {
    prop_oneof![Just(1420u16), 0u16..200, 1200u16..1500, any::<u16>()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        ingress in ingress(),
        version in prop_oneof![Just(0x45u8), Just(0x60), any::<u8>()],
        mut bytes in proptest::collection::vec(any::<u8>(), 0..1600),
        mtu in mtu(),
        out_len in 0usize..2000,
    ) {
        if let Some(b) = bytes.first_mut() {
            *b = version;
        }
        check(ingress, bytes, mtu, out_len);
    }

    #[test]
    fn mutated_packets_never_panic(
        ingress in ingress(),
        seed in 0usize..9,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<u16>()),
        fix in any::<bool>(),
        mtu in mtu(),
        out_len in prop_oneof![Just(2000usize), 0usize..2000],
    ) {
        let mut p = seeds().swap_remove(seed);
        for (at, v) in edits {
            let i = usize::from(at) % p.len();
            p[i] = v;
        }
        if let Some(c) = cut {
            p.truncate(usize::from(c) % (p.len() + 1));
        }
        // Repairing the header checksum gets mutations past the first check.
        if fix && p.len() >= 20 && p[0] >> 4 == 4 {
            let hl = usize::from(p[0] & 0xf) * 4;
            if hl >= 20 && hl <= p.len() {
                fix_v4(&mut p);
            }
        }
        check(ingress, p, mtu, out_len);
    }
}
