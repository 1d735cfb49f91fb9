//! FIB lookup benchmark: wgrd's `Fib` against the `poptrie` and `prefix-trie` crates on
//! the same tables and the same destinations, one core.
//!
//! Tables (seeded, so every run and every implementation sees the same data):
//! - IPv4, 1M prefixes: ~60% /24, ~20% /22-/23, ~18% /16-/21, ~1.5% /8-/15, ~0.5%
//!   /25-/32, in 1.0.0.0-223.255.255.255;
//! - IPv6, 200k prefixes inside 40k /32 allocations under ~600 /16s of 2000::/3: ~50% /48,
//!   ~35% /32-/44, ~10% /56-/64, the rest /17-/31 and /45-/47.
//!
//! Destinations: 1M pre-generated addresses; IPv4 uniformly random, IPv6 90% inside a
//! random table prefix and 10% random in 2000::/3 (uniform IPv6 addresses would almost
//! never reach below the first levels). Results are in docs/fib.md.

use std::collections::HashSet;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipnetwork::IpNetwork;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgrd::dataplane::fib::{Fib, FibChange};
use wgrd::dataplane::{Egress, NextHop, TunnelId};

const V4_PREFIXES: usize = 1_000_000;
const V6_PREFIXES: usize = 200_000;
const DESTINATIONS: usize = 1_000_000;

fn v4_len(rng: &mut StdRng) -> u8 {
    match rng.gen_range(0..1000) {
        0..=599 => 24,
        600..=799 => rng.gen_range(22..=23),
        800..=979 => rng.gen_range(16..=21),
        980..=994 => rng.gen_range(8..=15),
        _ => rng.gen_range(25..=32),
    }
}

fn v6_len(rng: &mut StdRng) -> u8 {
    match rng.gen_range(0..100) {
        0..=49 => 48,
        50..=64 => 32,
        65..=84 => rng.gen_range(33..=44),
        85..=89 => 56,
        90..=94 => rng.gen_range(57..=64),
        95..=97 => rng.gen_range(17..=31),
        _ => rng.gen_range(45..=47),
    }
}

fn mask4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// 64 tunnels; 1 route in 20 uses one of 16 ECMP sets. Values are small indices so the
/// reference tries store the same kind of thing the FIB does.
fn next_hop(v: u32) -> NextHop {
    if v < 64 {
        NextHop::Tunnel(TunnelId(v))
    } else {
        let k = v - 64;
        NextHop::Ecmp((0..2 + k % 3).map(|m| TunnelId((k * 5 + m) % 64)).collect())
    }
}

fn pick_value(rng: &mut StdRng) -> u32 {
    if rng.gen_range(0..20) == 0 {
        64 + rng.gen_range(0..16)
    } else {
        rng.gen_range(0..64)
    }
}

fn v4_table(rng: &mut StdRng) -> Vec<(u32, u8, u32)> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(V4_PREFIXES);
    while out.len() < V4_PREFIXES {
        let len = v4_len(rng);
        let addr = rng.gen_range(0x0100_0000u32..0xe000_0000) & mask4(len);
        if seen.insert((addr, len)) {
            out.push((addr, len, pick_value(rng)));
        }
    }
    out
}

fn v6_table(rng: &mut StdRng) -> Vec<(u128, u8, u32)> {
    let slash16: Vec<u128> = (0..600)
        .map(|i| {
            // 2001::/16 and 2a00-2a0f, 2400-240f, 2600-260f, 2800-280f, 2c0f-like blocks.
            let top = if i == 0 {
                0x2001
            } else {
                [0x2400u128, 0x2600, 0x2800, 0x2a00, 0x2c00][i % 5] + (i as u128 / 5) % 0x40
            };
            top << 112
        })
        .collect();
    let allocations: Vec<u128> = (0..40_000)
        .map(|i| {
            // A third of the allocations sit in 2001::/16, as in real tables.
            let base = if i % 3 == 0 {
                slash16[0]
            } else {
                slash16[rng.gen_range(0..slash16.len())]
            };
            base | (u128::from(rng.gen::<u16>()) << 96)
        })
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(V6_PREFIXES);
    while out.len() < V6_PREFIXES {
        let len = v6_len(rng);
        let alloc = allocations[rng.gen_range(0..allocations.len())];
        let addr = (alloc | (rng.gen::<u128>() >> 32)) & mask6(len);
        if seen.insert((addr, len)) {
            out.push((addr, len, pick_value(rng)));
        }
    }
    out
}

/// Resident memory in MiB (Linux), to report how much each structure takes.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let (t, before) = (Instant::now(), rss_mib());
    let r = f();
    eprintln!(
        "build {what}: {:.2?}, +{:.0} MiB resident",
        t.elapsed(),
        rss_mib() - before
    );
    r
}

fn code(e: Option<Egress>) -> u32 {
    match e {
        Some(Egress::Tunnel(TunnelId(t))) => t,
        Some(_) => 1,
        None => 0,
    }
}

fn bench_v4(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0x5eed_0004);
    let table = v4_table(&mut rng);
    let dsts: Vec<u32> = (0..DESTINATIONS).map(|_| rng.gen()).collect();

    let fib = timed("wgrd v4 (one batch)", || {
        let fib = Fib::new();
        fib.apply(table.iter().map(|&(a, l, v)| {
            let n = IpNetwork::new(IpAddr::V4(Ipv4Addr::from_bits(a)), l)
                .expect("generated prefix is valid");
            FibChange::Upsert(n, next_hop(v))
        }));
        fib
    });
    let pop: poptrie::Poptrie<(u32, u8), u32> = timed("poptrie v4 (collect)", || {
        table.iter().map(|&(a, l, v)| ((a, l), v)).collect()
    });
    let pt: prefix_trie::PrefixMap<(u32, u8), u32> = timed("prefix-trie v4", || {
        let mut m = prefix_trie::PrefixMap::new();
        for &(a, l, v) in &table {
            m.insert((a, l), v);
        }
        m
    });

    // All three agree on which prefix length matched (values differ in representation).
    for &a in dsts.iter().take(10_000) {
        let ours = fib
            .longest_match(IpAddr::V4(Ipv4Addr::from_bits(a)))
            .map(|(n, _)| n.prefix());
        let theirs = pop.lookup_with_prefix(a).map(|(p, _)| p.1);
        let trie = pt.get_lpm(&(a, 32)).map(|(p, _)| p.1);
        assert_eq!(ours, theirs, "poptrie disagrees at {a:#x}");
        assert_eq!(ours, trie, "prefix-trie disagrees at {a:#x}");
    }

    let mut g = c.benchmark_group("v4_1M_lookup");
    g.throughput(Throughput::Elements(dsts.len() as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    let snap = fib.snapshot();
    g.bench_function("wgrd_snapshot", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &a in &dsts {
                acc = acc.wrapping_add(code(snap.lookup_v4(Ipv4Addr::from_bits(a), a)));
            }
            black_box(acc)
        })
    });
    g.bench_function("wgrd_fib_per_lookup_load", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &a in &dsts {
                acc = acc.wrapping_add(code(fib.lookup_v4(Ipv4Addr::from_bits(a), a)));
            }
            black_box(acc)
        })
    });
    g.bench_function("poptrie", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &a in &dsts {
                acc = acc.wrapping_add(pop.lookup(a).copied().unwrap_or(0));
            }
            black_box(acc)
        })
    });
    g.bench_function("prefix_trie", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &a in &dsts {
                acc = acc.wrapping_add(pt.get_lpm(&(a, 32)).map_or(0, |(_, v)| *v));
            }
            black_box(acc)
        })
    });
    g.finish();

    // Cost of publishing a small change on the full table (copy-on-write of one page).
    let mut g = c.benchmark_group("v4_1M_update");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    let net = IpNetwork::new(IpAddr::V4(Ipv4Addr::new(198, 18, 7, 0)), 24).expect("valid");
    let mut flip = false;
    g.bench_function("wgrd_one_change_batch", |b| {
        b.iter(|| {
            flip = !flip;
            fib.apply([if flip {
                FibChange::Upsert(net, NextHop::Tunnel(TunnelId(1)))
            } else {
                FibChange::Remove(net)
            }])
        })
    });
    g.finish();
    drop(snap);
}

fn bench_v6(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0x5eed_0006);
    let table = v6_table(&mut rng);
    let dsts: Vec<u128> = (0..DESTINATIONS)
        .map(|_| {
            if rng.gen_range(0..10) == 0 {
                (0x2u128 << 125) | (rng.gen::<u128>() >> 3)
            } else {
                let (a, l, _) = table[rng.gen_range(0..table.len())];
                a | (rng.gen::<u128>() & !mask6(l))
            }
        })
        .collect();

    let fib = timed("wgrd v6 (one batch)", || {
        let fib = Fib::new();
        fib.apply(table.iter().map(|&(a, l, v)| {
            let n = IpNetwork::new(IpAddr::V6(Ipv6Addr::from_bits(a)), l)
                .expect("generated prefix is valid");
            FibChange::Upsert(n, next_hop(v))
        }));
        fib
    });
    let pop: poptrie::Poptrie<(u128, u8), u32> = timed("poptrie v6 (collect)", || {
        table.iter().map(|&(a, l, v)| ((a, l), v)).collect()
    });
    let pt: prefix_trie::PrefixMap<(u128, u8), u32> = timed("prefix-trie v6", || {
        let mut m = prefix_trie::PrefixMap::new();
        for &(a, l, v) in &table {
            m.insert((a, l), v);
        }
        m
    });

    for &a in dsts.iter().take(10_000) {
        let ours = fib
            .longest_match(IpAddr::V6(Ipv6Addr::from_bits(a)))
            .map(|(n, _)| n.prefix());
        let theirs = pop.lookup_with_prefix(a).map(|(p, _)| p.1);
        let trie = pt.get_lpm(&(a, 128)).map(|(p, _)| p.1);
        assert_eq!(ours, theirs, "poptrie disagrees at {a:#x}");
        assert_eq!(ours, trie, "prefix-trie disagrees at {a:#x}");
    }

    let mut g = c.benchmark_group("v6_200k_lookup");
    g.throughput(Throughput::Elements(dsts.len() as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    let snap = fib.snapshot();
    g.bench_function("wgrd_snapshot", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &a in &dsts {
                acc = acc.wrapping_add(code(snap.lookup_v6(Ipv6Addr::from_bits(a), a as u32)));
            }
            black_box(acc)
        })
    });
    g.bench_function("wgrd_fib_per_lookup_load", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &a in &dsts {
                acc = acc.wrapping_add(code(fib.lookup_v6(Ipv6Addr::from_bits(a), a as u32)));
            }
            black_box(acc)
        })
    });
    g.bench_function("poptrie", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &a in &dsts {
                acc = acc.wrapping_add(pop.lookup(a).copied().unwrap_or(0));
            }
            black_box(acc)
        })
    });
    g.bench_function("prefix_trie", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &a in &dsts {
                acc = acc.wrapping_add(pt.get_lpm(&(a, 128)).map_or(0, |(_, v)| *v));
            }
            black_box(acc)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("v6_200k_update");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    // A /48 in the fullest /16 (2001::/16): the worst case for a subtree rebuild.
    let net = IpNetwork::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xffff, 0xeeee, 0, 0, 0, 0, 0)),
        48,
    )
    .expect("valid");
    let mut flip = false;
    g.bench_function("wgrd_one_change_batch_in_2001::/16", |b| {
        b.iter(|| {
            flip = !flip;
            fib.apply([if flip {
                FibChange::Upsert(net, NextHop::Tunnel(TunnelId(1)))
            } else {
                FibChange::Remove(net)
            }])
        })
    });
    g.finish();
    drop(snap);
}

criterion_group!(benches, bench_v4, bench_v6);
criterion_main!(benches);
