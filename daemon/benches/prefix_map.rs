//! `wgrd::prefix_map::PrefixMap` against `BTreeMap<IpNetwork, _>` on what a BGP full
//! table does to the maps that hold it, one core:
//! - load 1M IPv4 /24s (1.0.0.0/24 upward) and 200k IPv6 /48s (2400::/48 upward) in
//!   prefix order, as a table arrives;
//! - look up every prefix once, in a seeded random order;
//! - remove every prefix, in order.
//!
//! Values are `Arc<u64>` (a pointer, like the real tables); they are made before the
//! timed part and moved in, so the timings are of the maps alone. Memory per prefix
//! after the in-order load is counted by the global allocator below and printed once
//! before the timings (bytes the map allocated, not counting the `Arc`s it points to).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput};
use ipnetwork::IpNetwork;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use wgrd::prefix_map::PrefixMap;

const V4_PREFIXES: usize = 1_000_000;
const V6_PREFIXES: usize = 200_000;

/// `System`, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments; the counter
// only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (that is, `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The table in prefix order: IPv4 /24s from 1.0.0.0/24, then IPv6 /48s from 2400::/48.
fn table() -> Vec<IpNetwork> {
    let v4 = (0..V4_PREFIXES as u32).map(|i| {
        let a = Ipv4Addr::from_bits(0x0100_0000 + (i << 8));
        IpNetwork::new(IpAddr::V4(a), 24).expect("valid /24")
    });
    let v6 = (0..V6_PREFIXES as u128).map(|i| {
        let a = Ipv6Addr::from_bits((0x2400u128 << 112) + (i << 80));
        IpNetwork::new(IpAddr::V6(a), 48).expect("valid /48")
    });
    v4.chain(v6).collect()
}

/// The entries to load: the table with one `Arc` per prefix.
fn entries(keys: &[IpNetwork]) -> Vec<(IpNetwork, Arc<u64>)> {
    keys.iter()
        .enumerate()
        .map(|(i, &k)| (k, Arc::new(i as u64)))
        .collect()
}

fn load_prefix_map(entries: Vec<(IpNetwork, Arc<u64>)>) -> PrefixMap<Arc<u64>> {
    let mut m = PrefixMap::new();
    for (k, v) in entries {
        m.insert(k, v);
    }
    m
}

fn load_btree(entries: Vec<(IpNetwork, Arc<u64>)>) -> BTreeMap<IpNetwork, Arc<u64>> {
    let mut m = BTreeMap::new();
    for (k, v) in entries {
        m.insert(k, v);
    }
    m
}

/// Bytes the allocator holds for what `build` returns, beyond what it held before.
fn bytes_of<T>(build: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    let t = build();
    (t, LIVE.load(Ordering::Relaxed).saturating_sub(before))
}

fn report_memory(keys: &[IpNetwork]) {
    let (v4, v6) = keys.split_at(V4_PREFIXES);
    println!("memory after an in-order load (map allocations only, values are Arc<u64>):");
    for (what, keys) in [
        ("all (1M v4 /24 + 200k v6 /48)", keys),
        ("v4 only (1M /24)", v4),
        ("v6 only (200k /48)", v6),
    ] {
        let input = entries(keys);
        let (pm, pm_bytes) = bytes_of(|| load_prefix_map(input.clone()));
        let (bt, bt_bytes) = bytes_of(|| load_btree(input.clone()));
        assert_eq!(pm.len(), keys.len());
        assert_eq!(bt.len(), keys.len());
        assert!(pm.keys().eq(bt.keys().copied()), "orders differ");
        let n = keys.len() as f64;
        let (pm_per, bt_per) = (pm_bytes as f64 / n, bt_bytes as f64 / n);
        println!(
            "  {what}: PrefixMap {pm_per:.1} B/prefix, BTreeMap {bt_per:.1} B/prefix, \
             ratio {:.3}",
            pm_per / bt_per
        );
    }
}

fn configure(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
}

fn bench(c: &mut Criterion, keys: &[IpNetwork]) {
    let input = entries(keys);
    let n = keys.len() as u64;

    let mut g = c.benchmark_group("prefix_map_load_in_order");
    configure(&mut g);
    g.throughput(Throughput::Elements(n));
    g.bench_function("PrefixMap", |b| {
        b.iter_batched(|| input.clone(), load_prefix_map, BatchSize::PerIteration)
    });
    g.bench_function("BTreeMap", |b| {
        b.iter_batched(|| input.clone(), load_btree, BatchSize::PerIteration)
    });
    g.finish();

    let mut shuffled = keys.to_vec();
    shuffled.shuffle(&mut StdRng::seed_from_u64(0x5eed_0024));
    let pm = load_prefix_map(input.clone());
    let bt = load_btree(input.clone());
    // The values' addresses are summed, not the values: reading 1.2M `Arc`s in random
    // order would cost both maps the same cache misses and hide the maps' own cost.
    let mut g = c.benchmark_group("prefix_map_get_random_order");
    configure(&mut g);
    g.throughput(Throughput::Elements(n));
    fn sum_found<'m>(
        keys: &[IpNetwork],
        get: impl Fn(&IpNetwork) -> Option<&'m Arc<u64>>,
    ) -> usize {
        let mut acc = 0usize;
        for k in keys {
            acc = acc.wrapping_add(Arc::as_ptr(get(k).expect("loaded")) as usize);
        }
        acc
    }
    g.bench_function("PrefixMap", |b| {
        b.iter(|| black_box(sum_found(&shuffled, |k| pm.get(k))))
    });
    g.bench_function("BTreeMap", |b| {
        b.iter(|| black_box(sum_found(&shuffled, |k| bt.get(k))))
    });
    g.finish();
    drop((pm, bt));

    // Each iteration starts from a map loaded in order (outside the timing) and empties
    // it; the values removed are dropped inside the timing, by both maps alike.
    let mut g = c.benchmark_group("prefix_map_remove_in_order");
    configure(&mut g);
    g.throughput(Throughput::Elements(n));
    // The same removal loop for both maps; the values removed are dropped inside it.
    fn remove_each<M>(
        b: &mut criterion::Bencher<'_>,
        load: impl Fn() -> M,
        keys: &[IpNetwork],
        remove: impl Fn(&mut M, &IpNetwork) -> Option<Arc<u64>>,
    ) {
        b.iter_batched(
            load,
            |mut m| {
                for k in keys {
                    black_box(remove(&mut m, k));
                }
                m
            },
            BatchSize::PerIteration,
        )
    }
    g.bench_function("PrefixMap", |b| {
        remove_each(
            b,
            || load_prefix_map(input.clone()),
            keys,
            |m, k| m.remove(k),
        )
    });
    g.bench_function("BTreeMap", |b| {
        remove_each(b, || load_btree(input.clone()), keys, |m, k| m.remove(k))
    });
    g.finish();
}

fn main() {
    let keys = table();
    report_memory(&keys);
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &keys);
    c.final_summary();
}
