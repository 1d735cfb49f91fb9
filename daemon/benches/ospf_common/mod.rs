//! Shared by the OSPF database benchmarks (`ospf_lsdb`, `ospf_flood`): a generated
//! single-area database and a counting global allocator. Not a bench target itself
//! (cargo only discovers `benches/*.rs` and `benches/*/main.rs`).
//!
//! The database: `n` routers in a ring plus one random chord each (degree ~4), link
//! costs 10 or 20, a /32 and a /24 stub per router; one router in ten is an ASBR with
//! ten type-2 AS-external-LSAs of its own /24s. So half the LSAs are router-LSAs of
//! 4 + 12 * (~4 + 2) body bytes, half AS-external-LSAs of 16 body bytes.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgrd::routing::ospf::lsa::{
    ExternalLsa, LinkKind, LsType, Lsa, LsaBody, LsaHeader, RouterLink, RouterLsa, FLAG_E,
    INITIAL_SEQUENCE,
};

/// The router id of generated router `i`: 10.0.0.0 + i.
pub fn rid(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i)
}

fn header(ls_type: LsType, id: Ipv4Addr, adv: Ipv4Addr) -> LsaHeader {
    LsaHeader {
        age: 0,
        options: 2,
        ls_type: ls_type.to_u8(),
        id,
        adv_router: adv,
        seq: INITIAL_SEQUENCE,
        checksum: 0,
        length: 0,
    }
}

/// About `count` LSAs (exactly `count` when it is a multiple of 20): `count / 2`
/// router-LSAs and as many AS-external-LSAs. Seeded: the same every run.
pub fn database(count: u32) -> Vec<Lsa> {
    let n = (count / 2).max(2);
    let mut rng = StdRng::seed_from_u64(0x05f5 + u64::from(n));
    let mut links: Vec<BTreeSet<(u32, u16)>> = vec![BTreeSet::new(); n as usize];
    let mut link = |a: u32, b: u32, rng: &mut StdRng| {
        let cost = if rng.gen_bool(0.5) { 10 } else { 20 };
        if a != b && !links[a as usize].iter().any(|l| l.0 == b) {
            links[a as usize].insert((b, cost));
            links[b as usize].insert((a, cost));
        }
    };
    for i in 0..n {
        link(i, (i + 1) % n, &mut rng);
        let j = rng.gen_range(0..n);
        link(i, j, &mut rng);
    }
    let mut out = Vec::with_capacity(2 * n as usize);
    for (i, l) in links.iter().enumerate() {
        let i = i as u32;
        let asbr = i % 10 == 5;
        let mut rl: Vec<RouterLink> = l
            .iter()
            .map(|&(to, metric)| RouterLink {
                kind: LinkKind::PointToPoint,
                id: rid(to),
                data: Ipv4Addr::from(i + 1),
                metric,
            })
            .collect();
        rl.push(RouterLink {
            kind: LinkKind::Stub,
            id: rid(i),
            data: Ipv4Addr::BROADCAST,
            metric: 0,
        });
        rl.push(RouterLink {
            kind: LinkKind::Stub,
            id: Ipv4Addr::from(0x6400_0000 + (i << 8)),
            data: Ipv4Addr::new(255, 255, 255, 0),
            metric: 1,
        });
        out.push(Lsa::build(
            header(LsType::Router, rid(i), rid(i)),
            LsaBody::Router(RouterLsa {
                flags: if asbr { FLAG_E } else { 0 },
                links: rl,
            }),
        ));
        if asbr {
            for k in 0..10 {
                out.push(Lsa::build(
                    header(
                        LsType::AsExternal,
                        Ipv4Addr::from(0xc000_0000 + ((i * 10 + k) << 8)),
                        rid(i),
                    ),
                    LsaBody::External(ExternalLsa {
                        mask: Ipv4Addr::new(255, 255, 255, 0),
                        e2: true,
                        metric: 20,
                        forwarding: Ipv4Addr::UNSPECIFIED,
                        tag: 0,
                    }),
                ));
            }
        }
    }
    out
}

/// The system allocator, counting what is live: bytes asked for, blocks, and an
/// estimate of what glibc's malloc really takes for them (8 bytes of chunk header,
/// rounded up to 16, at least 32).
pub struct Counting;

pub static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
pub static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);
pub static LIVE_CHUNKS: AtomicUsize = AtomicUsize::new(0);

fn chunk(size: usize) -> usize {
    ((size + 8 + 15) & !15).max(32)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Relaxed);
            LIVE_BLOCKS.fetch_add(1, Relaxed);
            LIVE_CHUNKS.fetch_add(chunk(layout.size()), Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Relaxed);
            LIVE_BLOCKS.fetch_add(1, Relaxed);
            LIVE_CHUNKS.fetch_add(chunk(layout.size()), Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Relaxed);
        LIVE_CHUNKS.fetch_sub(chunk(layout.size()), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size, Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Relaxed);
            LIVE_CHUNKS.fetch_add(chunk(new_size), Relaxed);
            LIVE_CHUNKS.fetch_sub(chunk(layout.size()), Relaxed);
        }
        p
    }
}

/// Live heap now: (bytes asked for, blocks, estimated malloc chunk bytes).
#[derive(Debug, Clone, Copy)]
pub struct Heap {
    pub bytes: usize,
    pub blocks: usize,
    pub chunks: usize,
}

impl Heap {
    pub fn now() -> Heap {
        Heap {
            bytes: LIVE_BYTES.load(Relaxed),
            blocks: LIVE_BLOCKS.load(Relaxed),
            chunks: LIVE_CHUNKS.load(Relaxed),
        }
    }

    /// What was added since `before` (saturating: a phase may also free).
    pub fn since(self, before: Heap) -> Heap {
        Heap {
            bytes: self.bytes.saturating_sub(before.bytes),
            blocks: self.blocks.saturating_sub(before.blocks),
            chunks: self.chunks.saturating_sub(before.chunks),
        }
    }
}

/// glibc's own count of bytes in use (mallinfo2 `uordblks`), to check the estimate.
pub fn malloc_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    unsafe { libc::mallinfo2() }.uordblks
}
