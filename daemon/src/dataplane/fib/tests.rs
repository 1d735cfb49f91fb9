//! FIB tests: fixed cases, seeded random comparisons against a brute-force reference,
//! ECMP stability, and readers running while a writer applies a large batch.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ipnetwork::IpNetwork;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{mask4, mask6, Fib, FibChange};
use crate::dataplane::{Egress, NextHop, TunnelId};

fn net(s: &str) -> IpNetwork {
    s.parse().expect("test prefix")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn t(n: u32) -> NextHop {
    NextHop::Tunnel(TunnelId(n))
}

#[test]
fn empty_fib_has_no_route() {
    let fib = Fib::new();
    assert!(fib.is_empty());
    assert_eq!(fib.lookup(ip("1.2.3.4"), 0), None);
    assert_eq!(fib.lookup(ip("2001:db8::1"), 0), None);
    assert_eq!(fib.longest_match(ip("1.2.3.4")), None);
}

#[test]
fn longest_prefix_wins_and_removal_falls_back() {
    let fib = Fib::new();
    fib.apply([
        FibChange::Upsert(net("0.0.0.0/0"), NextHop::Host),
        FibChange::Upsert(net("10.0.0.0/8"), t(1)),
        FibChange::Upsert(net("10.1.0.0/16"), t(2)),
        FibChange::Upsert(net("10.1.2.0/24"), t(3)),
        FibChange::Upsert(net("10.1.2.128/25"), t(4)),
        FibChange::Upsert(net("10.1.2.129/32"), NextHop::Local),
        FibChange::Upsert(net("::/0"), NextHop::Blackhole),
        FibChange::Upsert(net("2001:db8::/32"), t(5)),
        FibChange::Upsert(net("2001:db8:1::/48"), t(6)),
        FibChange::Upsert(net("2001:db8:1::1/128"), NextHop::Local),
    ]);
    assert_eq!(fib.len(), 10);
    let tun = |n| Some(Egress::Tunnel(TunnelId(n)));
    assert_eq!(fib.lookup(ip("8.8.8.8"), 0), Some(Egress::Host));
    assert_eq!(fib.lookup(ip("10.9.9.9"), 0), tun(1));
    assert_eq!(fib.lookup(ip("10.1.9.9"), 0), tun(2));
    assert_eq!(fib.lookup(ip("10.1.2.3"), 0), tun(3));
    assert_eq!(fib.lookup(ip("10.1.2.200"), 0), tun(4));
    assert_eq!(fib.lookup(ip("10.1.2.129"), 0), Some(Egress::Local));
    assert_eq!(fib.lookup(ip("3000::1"), 0), Some(Egress::Blackhole));
    assert_eq!(fib.lookup(ip("2001:db8:2::1"), 0), tun(5));
    assert_eq!(fib.lookup(ip("2001:db8:1::2"), 0), tun(6));
    assert_eq!(fib.lookup(ip("2001:db8:1::1"), 0), Some(Egress::Local));
    assert_eq!(
        fib.longest_match(ip("10.1.2.200")),
        Some((net("10.1.2.128/25"), t(4)))
    );
    assert_eq!(
        fib.longest_match(ip("2001:db8:1::1")),
        Some((net("2001:db8:1::1/128"), NextHop::Local))
    );
    assert_eq!(
        fib.longest_match(ip("9.9.9.9")),
        Some((net("0.0.0.0/0"), NextHop::Host))
    );

    fib.apply([
        FibChange::Remove(net("10.1.2.128/25")),
        FibChange::Remove(net("10.1.0.0/16")),
        FibChange::Remove(net("2001:db8:1::/48")),
        FibChange::Remove(net("::/0")),
    ]);
    assert_eq!(fib.lookup(ip("10.1.2.200"), 0), tun(3));
    assert_eq!(fib.lookup(ip("10.1.2.129"), 0), Some(Egress::Local));
    assert_eq!(fib.lookup(ip("10.1.9.9"), 0), tun(1));
    assert_eq!(fib.lookup(ip("2001:db8:1::2"), 0), tun(5));
    assert_eq!(fib.lookup(ip("2001:db8:1::1"), 0), Some(Egress::Local));
    assert_eq!(fib.lookup(ip("3000::1"), 0), None);
    assert_eq!(fib.len(), 6);
}

#[test]
fn prefixes_are_normalized_and_upsert_replaces() {
    let fib = Fib::new();
    fib.apply([FibChange::Upsert(net("10.1.2.3/8"), t(1))]);
    fib.apply([FibChange::Upsert(net("10.0.0.0/8"), t(2))]);
    assert_eq!(fib.entries(), vec![(net("10.0.0.0/8"), t(2))]);
    fib.apply([FibChange::Remove(net("10.200.0.0/8"))]);
    assert!(fib.is_empty());
    assert_eq!(fib.lookup(ip("10.0.0.1"), 0), None);
}

#[test]
fn ecmp_member_is_stable_per_hash_and_order_independent() {
    let fib = Fib::new();
    let members = vec![TunnelId(7), TunnelId(3), TunnelId(5), TunnelId(3)];
    fib.apply([
        FibChange::Upsert(net("10.0.0.0/8"), NextHop::Ecmp(members)),
        FibChange::Upsert(
            net("2001:db8::/32"),
            NextHop::Ecmp(vec![TunnelId(5), TunnelId(3), TunnelId(7)]),
        ),
    ]);
    // Canonical form: sorted, distinct.
    assert_eq!(
        fib.longest_match(ip("10.0.0.1")).map(|(_, nh)| nh),
        Some(NextHop::Ecmp(vec![TunnelId(3), TunnelId(5), TunnelId(7)]))
    );
    let mut seen = std::collections::HashSet::new();
    for h in (0..1000u32).map(|i| i.wrapping_mul(0x9e37_79b9)) {
        let a = fib.lookup(ip("10.1.1.1"), h);
        assert_eq!(a, fib.lookup(ip("10.200.0.9"), h), "same hash, same member");
        assert_eq!(a, fib.lookup(ip("2001:db8::9"), h), "same set, same member");
        for _ in 0..3 {
            assert_eq!(fib.lookup(ip("10.1.1.1"), h), a);
        }
        seen.insert(a);
    }
    assert_eq!(seen.len(), 3, "every member gets flows: {seen:?}");

    // An ECMP set of one is that tunnel; an empty set drops.
    fib.apply([
        FibChange::Upsert(net("10.0.0.0/8"), NextHop::Ecmp(vec![TunnelId(9)])),
        FibChange::Upsert(net("11.0.0.0/8"), NextHop::Ecmp(vec![])),
    ]);
    assert_eq!(
        fib.lookup(ip("10.0.0.1"), 12345),
        Some(Egress::Tunnel(TunnelId(9)))
    );
    assert_eq!(fib.lookup(ip("11.0.0.1"), 1), Some(Egress::Blackhole));
}

/// Brute-force reference: scan every prefix.
fn reference_v4(r: &BTreeMap<(u32, u8), u32>, a: u32) -> Option<(u8, u32)> {
    r.iter()
        .filter(|(&(p, l), _)| a & mask4(l) == p)
        .max_by_key(|(&(_, l), _)| l)
        .map(|(&(_, l), &v)| (l, v))
}

fn reference_v6(r: &BTreeMap<(u128, u8), u32>, a: u128) -> Option<(u8, u32)> {
    r.iter()
        .filter(|(&(p, l), _)| a & mask6(l) == p)
        .max_by_key(|(&(_, l), _)| l)
        .map(|(&(_, l), &v)| (l, v))
}

fn egress_of(v: u32) -> Egress {
    Egress::Tunnel(TunnelId(v))
}

/// Addresses clustered around a few bases so prefixes overlap and nest deeply.
fn clustered_v4(rng: &mut StdRng, bases: &[u32]) -> u32 {
    let b = bases[rng.gen_range(0..bases.len())];
    b ^ (rng.gen::<u32>() >> rng.gen_range(0..32))
}

fn clustered_v6(rng: &mut StdRng, bases: &[u128]) -> u128 {
    let b = bases[rng.gen_range(0..bases.len())];
    b ^ (rng.gen::<u128>() >> rng.gen_range(0..128))
}

#[test]
fn random_v4_matches_brute_force() {
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let bases: Vec<u32> = (0..3).map(|_| rng.gen()).collect();
        let fib = Fib::new();
        let mut reference: BTreeMap<(u32, u8), u32> = BTreeMap::new();
        for _round in 0..12 {
            let mut batch = Vec::new();
            for _ in 0..rng.gen_range(1..40) {
                // Short prefixes cover up to 2^24 slots each, which is slow in debug
                // builds; /0 and friends are covered in `extremes_zero_and_full_length`.
                let len = match rng.gen_range(0..40) {
                    0 => rng.gen_range(0..=8),
                    1..=4 => rng.gen_range(9..=12),
                    5..=16 => rng.gen_range(13..=24),
                    17..=28 => 24,
                    _ => rng.gen_range(25..=32),
                };
                let p = clustered_v4(&mut rng, &bases) & mask4(len);
                let existing: Vec<_> = reference.keys().copied().collect();
                if rng.gen_bool(0.3) && !existing.is_empty() {
                    let k = existing[rng.gen_range(0..existing.len())];
                    reference.remove(&k);
                    let n =
                        ipnetwork::Ipv4Network::new(Ipv4Addr::from_bits(k.0), k.1).expect("valid");
                    batch.push(FibChange::Remove(IpNetwork::V4(n)));
                } else {
                    let v = rng.gen_range(0..6);
                    reference.insert((p, len), v);
                    // Host bits set on purpose: the FIB must clear them.
                    let raw = p | (rng.gen::<u32>() & !mask4(len));
                    let n =
                        ipnetwork::Ipv4Network::new(Ipv4Addr::from_bits(raw), len).expect("valid");
                    batch.push(FibChange::Upsert(IpNetwork::V4(n), t(v)));
                }
            }
            fib.apply(batch);
            assert_eq!(fib.len(), reference.len());
            let mut probes: Vec<u32> = (0..300).map(|_| clustered_v4(&mut rng, &bases)).collect();
            probes.extend((0..50).map(|_| rng.gen::<u32>()));
            for &(p, l) in reference.keys() {
                probes.push(p);
                probes.push(p | !mask4(l));
            }
            for a in probes {
                let want = reference_v4(&reference, a);
                let got = fib.lookup_v4(Ipv4Addr::from_bits(a), 0);
                assert_eq!(
                    got,
                    want.map(|(_, v)| egress_of(v)),
                    "seed {seed} addr {a:#x}"
                );
                let lm = fib.longest_match(IpAddr::V4(Ipv4Addr::from_bits(a)));
                assert_eq!(lm.map(|(n, _)| n.prefix()), want.map(|(l, _)| l));
            }
        }
        let entries: Vec<_> = fib.entries();
        assert_eq!(entries.len(), reference.len());
        for (n, nh) in entries {
            let IpNetwork::V4(n) = n else {
                panic!("v4 only")
            };
            let v = reference[&(n.network().to_bits(), n.prefix())];
            assert_eq!(nh, t(v));
        }
    }
}

#[test]
fn random_v6_matches_brute_force() {
    let mut wide_seen = false;
    for seed in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(100 + seed);
        let bases: Vec<u128> = (0..3).map(|_| rng.gen()).collect();
        let fib = Fib::new();
        let mut reference: BTreeMap<(u128, u8), u32> = BTreeMap::new();
        for _round in 0..12 {
            let mut batch = Vec::new();
            for _ in 0..rng.gen_range(1..40) {
                let len = match rng.gen_range(0..10) {
                    0 => rng.gen_range(0..=16),
                    1..=3 => rng.gen_range(17..=48),
                    4..=5 => 48,
                    6..=7 => rng.gen_range(49..=64),
                    _ => rng.gen_range(65..=128),
                };
                let p = clustered_v6(&mut rng, &bases) & mask6(len);
                let existing: Vec<_> = reference.keys().copied().collect();
                if rng.gen_bool(0.3) && !existing.is_empty() {
                    let k = existing[rng.gen_range(0..existing.len())];
                    reference.remove(&k);
                    let n =
                        ipnetwork::Ipv6Network::new(Ipv6Addr::from_bits(k.0), k.1).expect("valid");
                    batch.push(FibChange::Remove(IpNetwork::V6(n)));
                } else {
                    let v = rng.gen_range(0..6);
                    reference.insert((p, len), v);
                    let raw = p | (rng.gen::<u128>() & !mask6(len));
                    let n =
                        ipnetwork::Ipv6Network::new(Ipv6Addr::from_bits(raw), len).expect("valid");
                    batch.push(FibChange::Upsert(IpNetwork::V6(n), t(v)));
                }
            }
            fib.apply(batch);
            wide_seen |= fib.snapshot().v6.wide_count() > 0;
            assert_eq!(fib.len(), reference.len());
            let mut probes: Vec<u128> = (0..300).map(|_| clustered_v6(&mut rng, &bases)).collect();
            probes.extend((0..50).map(|_| rng.gen::<u128>()));
            for &(p, l) in reference.keys() {
                probes.push(p);
                probes.push(p | !mask6(l));
            }
            for a in probes {
                let want = reference_v6(&reference, a);
                let got = fib.lookup_v6(Ipv6Addr::from_bits(a), 0);
                assert_eq!(
                    got,
                    want.map(|(_, v)| egress_of(v)),
                    "seed {seed} addr {a:#x}"
                );
                let lm = fib.longest_match(IpAddr::V6(Ipv6Addr::from_bits(a)));
                assert_eq!(lm.map(|(n, _)| n.prefix()), want.map(|(l, _)| l));
            }
        }
    }
    assert!(wide_seen, "the wide /16 layout was never used");
}

#[test]
fn extremes_zero_and_full_length() {
    let fib = Fib::new();
    fib.apply([
        FibChange::Upsert(net("0.0.0.0/0"), t(1)),
        FibChange::Upsert(net("255.255.255.255/32"), t(2)),
        FibChange::Upsert(net("0.0.0.0/32"), t(3)),
        FibChange::Upsert(net("::/0"), t(4)),
        FibChange::Upsert(net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), t(5)),
        FibChange::Upsert(net("::/128"), t(6)),
    ]);
    let tun = |n| Some(Egress::Tunnel(TunnelId(n)));
    assert_eq!(fib.lookup(ip("255.255.255.255"), 0), tun(2));
    assert_eq!(fib.lookup(ip("255.255.255.254"), 0), tun(1));
    assert_eq!(fib.lookup(ip("0.0.0.0"), 0), tun(3));
    assert_eq!(fib.lookup(ip("0.0.0.1"), 0), tun(1));
    assert_eq!(
        fib.lookup(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 0),
        tun(5)
    );
    assert_eq!(
        fib.lookup(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), 0),
        tun(4)
    );
    assert_eq!(fib.lookup(ip("::"), 0), tun(6));
    assert_eq!(fib.lookup(ip("::1"), 0), tun(4));
    fib.apply([
        FibChange::Remove(net("0.0.0.0/0")),
        FibChange::Remove(net("::/0")),
    ]);
    assert_eq!(fib.lookup(ip("255.255.255.254"), 0), None);
    assert_eq!(fib.lookup(ip("255.255.255.255"), 0), tun(2));
    assert_eq!(fib.lookup(ip("::1"), 0), None);
    assert_eq!(fib.lookup(ip("::"), 0), tun(6));
}

#[test]
fn readers_keep_answering_during_a_big_batch() {
    let fib = Arc::new(Fib::new());
    // Stable routes the batch never touches: 10.0.0.0/8 and 2001:db8::/32 space.
    let stable: Vec<(IpAddr, Egress)> = (0..200u32)
        .flat_map(|i| {
            let v4 = Ipv4Addr::from_bits(0x0a00_0000 | (i << 8) | 1);
            let v6 = Ipv6Addr::from_bits((0x2001_0db8u128 << 96) | (u128::from(i) << 80) | 1);
            [
                (IpAddr::V4(v4), Egress::Tunnel(TunnelId(i))),
                (IpAddr::V6(v6), Egress::Tunnel(TunnelId(i))),
            ]
        })
        .collect();
    fib.apply((0..200u32).flat_map(|i| {
        [
            FibChange::Upsert(
                IpNetwork::new(IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 | (i << 8))), 24)
                    .expect("valid"),
                t(i),
            ),
            FibChange::Upsert(
                IpNetwork::new(
                    IpAddr::V6(Ipv6Addr::from_bits(
                        (0x2001_0db8u128 << 96) | (u128::from(i) << 80),
                    )),
                    48,
                )
                .expect("valid"),
                t(i),
            ),
        ]
    }));

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (fib, stop, done, stable) =
                (fib.clone(), stop.clone(), done.clone(), stable.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for &(a, want) in &stable {
                        assert_eq!(fib.lookup(a, n as u32), Some(want), "{a}");
                        n += 1;
                    }
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();

    // 30k changes elsewhere (100k in release takes the same path; see the benchmark): /24s and /28s in 20.0.0.0/8, /48s and /64s in 2a00::/16.
    let mut rng = StdRng::seed_from_u64(7);
    let batch: Vec<FibChange> = (0..30_000u32)
        .map(|i| {
            let nh = t(1000 + (i % 50));
            if i % 2 == 0 {
                let len = if i % 10 == 0 { 28 } else { 24 };
                let a = 0x1400_0000 | (rng.gen::<u32>() & 0x00ff_ffff);
                let n = IpNetwork::new(IpAddr::V4(Ipv4Addr::from_bits(a)), len).expect("valid");
                FibChange::Upsert(n, nh)
            } else {
                let len = if i % 10 == 1 { 64 } else { 48 };
                let a = (0x2a00u128 << 112) | (rng.gen::<u128>() >> 16);
                let n = IpNetwork::new(IpAddr::V6(Ipv6Addr::from_bits(a)), len).expect("valid");
                FibChange::Upsert(n, nh)
            }
        })
        .collect();
    let removals: Vec<FibChange> = batch
        .iter()
        .map(|c| match c {
            FibChange::Upsert(n, _) => FibChange::Remove(*n),
            other => other.clone(),
        })
        .collect();
    fib.apply(batch);
    assert!(fib.len() > 400);
    fib.apply(removals);
    assert_eq!(fib.len(), 400);
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader panicked");
    }
    assert!(done.load(Ordering::Relaxed) > 0);
}

#[test]
fn per_thread_reader_cache_sees_every_publish_and_tells_fibs_apart() {
    let a = Fib::new();
    let b = Fib::new();
    let dst = ip("10.0.0.1");
    a.apply([FibChange::Upsert(net("10.0.0.0/8"), t(1))]);
    b.apply([FibChange::Upsert(net("10.0.0.0/8"), t(2))]);
    for n in 3..20 {
        // Alternate FIBs so each lookup finds the other FIB in the cache.
        assert_eq!(a.lookup(dst, 0), Some(Egress::Tunnel(TunnelId(n - 2))));
        assert_eq!(b.lookup(dst, 0), Some(Egress::Tunnel(TunnelId(2))));
        a.apply([FibChange::Upsert(net("10.0.0.0/8"), t(n - 1))]);
    }
    let a = Arc::new(a);
    let other = {
        let a = a.clone();
        std::thread::spawn(move || a.lookup(dst, 0))
    };
    assert_eq!(other.join().expect("reader"), a.lookup(dst, 0));
    a.apply([FibChange::Remove(net("10.0.0.0/8"))]);
    assert_eq!(a.lookup(dst, 0), None);
}
