//! OSPF SPF benchmark: `routing::ospf::spf::run` over generated single-area databases of
//! 100, 1,000 and 10,000 routers, one core.
//!
//! Topology (seeded, the same every run): a ring (every router to the next) plus two
//! random chords per router, so the degree is about 6; link costs are 10 or 20 only, so
//! many destinations are reached over several equal-cost paths (the route's next hops
//! are an ECMP set). Every router-LSA carries the router's /32 and a /24 stub; one
//! router in ten is an ASBR with ten type-2 externals (the same 1,000-prefix pool
//! shared by the ASBRs, so externals tie and compare too). The root has six
//! adjacencies (tunnels). Results are in docs/ospf.md.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgrd::dataplane::TunnelId;
use wgrd::routing::ospf::lsa::{
    ExternalLsa, LinkKind, LsType, Lsa, LsaBody, LsaHeader, RouterLink, RouterLsa, FLAG_E,
};
use wgrd::routing::ospf::lsdb::Lsdb;
use wgrd::routing::ospf::spf::{self, Adjacency};

const CHORDS: usize = 2;
const EXTERNALS_PER_ASBR: u32 = 10;
const EXTERNAL_POOL: u32 = 1000;

fn rid(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i)
}

fn header(ls_type: LsType, id: Ipv4Addr, adv: Ipv4Addr) -> LsaHeader {
    LsaHeader {
        age: 0,
        options: 2,
        ls_type: ls_type.to_u8(),
        id,
        adv_router: adv,
        seq: 0x8000_0001_u32 as i32,
        checksum: 0,
        length: 0,
    }
}

/// The database of an `n`-router area and the root's adjacencies.
fn area(n: u32, now: Instant) -> (Lsdb, Vec<Adjacency>) {
    let mut rng = StdRng::seed_from_u64(0x05f5 + u64::from(n));
    let mut links: Vec<BTreeSet<(u32, u16)>> = vec![BTreeSet::new(); n as usize];
    let link = |a: u32, b: u32, cost: u16, links: &mut Vec<BTreeSet<(u32, u16)>>| {
        if a != b && !links[a as usize].iter().any(|l| l.0 == b) {
            links[a as usize].insert((b, cost));
            links[b as usize].insert((a, cost));
        }
    };
    for i in 0..n {
        let cost = if rng.gen_bool(0.5) { 10 } else { 20 };
        link(i, (i + 1) % n, cost, &mut links);
        for _ in 0..CHORDS {
            let j = rng.gen_range(0..n);
            let cost = if rng.gen_bool(0.5) { 10 } else { 20 };
            link(i, j, cost, &mut links);
        }
    }
    let mut db = Lsdb::default();
    for (i, l) in links.iter().enumerate() {
        let i = i as u32;
        let asbr = i % 10 == 5;
        let mut rl: Vec<RouterLink> = l
            .iter()
            .map(|&(to, metric)| RouterLink {
                kind: LinkKind::PointToPoint,
                id: rid(to),
                data: Ipv4Addr::UNSPECIFIED,
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
        db.install(
            Lsa::build(
                header(LsType::Router, rid(i), rid(i)),
                LsaBody::Router(RouterLsa {
                    flags: if asbr { FLAG_E } else { 0 },
                    links: rl,
                }),
            ),
            now,
        );
        if asbr {
            for k in 0..EXTERNALS_PER_ASBR {
                let p = (i * EXTERNALS_PER_ASBR + k) % EXTERNAL_POOL;
                db.install(
                    Lsa::build(
                        header(
                            LsType::AsExternal,
                            Ipv4Addr::from(0xc000_0000 + (p << 8)),
                            rid(i),
                        ),
                        LsaBody::External(ExternalLsa {
                            mask: Ipv4Addr::new(255, 255, 255, 0),
                            e2: true,
                            metric: 20,
                            forwarding: Ipv4Addr::UNSPECIFIED,
                            tag: 0,
                        }),
                    ),
                    now,
                );
            }
        }
    }
    let adjacencies = links[0]
        .iter()
        .enumerate()
        .map(|(t, &(to, cost))| Adjacency {
            neighbor: rid(to),
            tunnel: TunnelId(t as u32 + 1),
            cost,
        })
        .collect();
    (db, adjacencies)
}

fn bench_spf(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("ospf_spf");
    for n in [100u32, 1000, 10_000] {
        let (db, adjs) = area(n, now);
        let r = spf::run(&db, rid(0), &adjs, now);
        let ecmp = r.routes.iter().filter(|r| r.next_hops.len() > 1).count();
        eprintln!(
            "{n} routers: {} LSAs, root degree {}, {} routers reached, {} routes, {ecmp} with ECMP",
            db.len(),
            adjs.len(),
            r.routers.len(),
            r.routes.len()
        );
        assert_eq!(r.routers.len(), n as usize - 1);
        if n >= 10_000 {
            g.sample_size(20).measurement_time(Duration::from_secs(10));
        }
        g.bench_with_input(BenchmarkId::new("routers", n), &n, |b, _| {
            b.iter(|| black_box(spf::run(black_box(&db), rid(0), &adjs, now)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_spf);
criterion_main!(benches);
