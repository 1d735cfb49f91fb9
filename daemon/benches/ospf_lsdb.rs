//! OSPF LSDB memory per LSA: fills `routing::ospf::lsdb::Lsdb` with 1,000, 10,000 and
//! 100,000 generated LSAs (`ospf_common::database`: half router-LSAs of a degree-~4
//! mesh, half AS-external-LSAs) the way received LSAs get there — `Lsa::parse` of the
//! wire bytes (checksum, decoded body, a copy of the bytes), then
//! `Lsdb::install_received` — and prints the heap that the database holds per LSA,
//! next to the LSAs' size on the wire.
//!
//! Heap: a counting global allocator (bytes asked for, blocks, glibc chunk estimate)
//! and glibc's `mallinfo2` as a check. The breakdown: the copy of the wire bytes every
//! `Lsa` keeps (`raw`), the decoded router links (a `Vec<RouterLink>` per
//! router-LSA), and the rest, the BTreeMap's nodes holding key and `Entry` inline.
//! Results are in docs/ospf.md ("LSDB memory and flooding"). No criterion: one
//! deterministic pass per size, a table on stdout.

mod ospf_common;

use std::hint::black_box;
use std::mem::size_of;
use std::time::Instant;

use ospf_common::{database, malloc_in_use, Counting, Heap};
use wgrd::routing::ospf::lsa::{Lsa, LsaBody, LsaHeader, LsaKey, RouterLink};
use wgrd::routing::ospf::lsdb::{Entry, Lsdb};

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    // `cargo bench` passes `--bench`; any number on the command line picks the sizes.
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace(['_', ','], "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 100_000]
    } else {
        sizes
    };
    println!(
        "size_of: LsaKey {}, Entry {} (Lsa {} = LsaHeader {} + LsaBody {} + raw Vec 24; \
         Instant {}, flooded bool), RouterLink {}",
        size_of::<LsaKey>(),
        size_of::<Entry>(),
        size_of::<Lsa>(),
        size_of::<LsaHeader>(),
        size_of::<LsaBody>(),
        size_of::<Instant>(),
        size_of::<RouterLink>(),
    );
    println!();
    println!(
        "| LSAs | on the wire (B/LSA) | LSDB heap, asked (B/LSA) | malloc chunks est. (B/LSA) \
         | mallinfo2 (B/LSA) | blocks/LSA | raw copy | decoded links | map nodes |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let lsas = database(n);
        let count = lsas.len();
        let wire: Vec<Vec<u8>> = lsas.iter().map(|l| l.bytes().to_vec()).collect();
        let wire_bytes: usize = wire.iter().map(Vec::len).sum();
        let link_bytes: usize = lsas
            .iter()
            .map(|l| match &l.body {
                LsaBody::Router(r) => r.links.len() * size_of::<RouterLink>(),
                _ => 0,
            })
            .sum();
        drop(lsas);

        let now = Instant::now();
        let before = Heap::now();
        let malloc_before = malloc_in_use();
        let mut db = Lsdb::default();
        for b in &wire {
            let (lsa, _) = Lsa::parse(b).expect("generated LSAs parse");
            db.install_received(lsa, now, true);
        }
        let held = Heap::now().since(before);
        let malloc_held = malloc_in_use().saturating_sub(malloc_before);
        assert_eq!(db.len(), count);
        black_box(&db);

        let per = |b: usize| b as f64 / count as f64;
        let map = held.bytes.saturating_sub(wire_bytes + link_bytes);
        println!(
            "| {count} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} |",
            per(wire_bytes),
            per(held.bytes),
            per(held.chunks),
            per(malloc_held),
            per(held.blocks),
            per(wire_bytes),
            per(link_bytes),
            per(map),
        );
        drop(db);
    }
}
