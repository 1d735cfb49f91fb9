//! OSPF flooding of a whole database to a new neighbor: two `Instance`s (the
//! deterministic machine of `routing::ospf::instance`), A holding ~10,000 LSAs and B
//! empty, brought up by handing each one's output packets to the other's input in
//! memory until both are Full and their databases are identical. Measures the protocol
//! work per LSA (hello, DD exchange, link state requests, updates, acks): the time spent
//! inside `Instance::handle` of A and B, the packets and bytes each way, and the number
//! of one-way trips on the critical path (what a real link's round-trip time multiplies).
//!
//! How A gets its database: A is first adjacent to a scaffold instance S; LSU packets
//! claiming to come from S carry the generated LSAs (`ospf_common::database`: half
//! router-LSAs of a degree-~4 mesh, half AS-external-LSAs) into A through the normal
//! receive path. Then B appears on A's second tunnel. The clock is simulated: it stands
//! still while packets are in flight and moves in 10 ms steps (timer ticks) only when
//! nothing is; the exchange up to Full needs no tick at all.
//!
//! The same run times a baseline, `Lsa::parse` (checksum, decode, copy) of every LSA of
//! A's database once, so the result reads as a ratio. Sizes on the command line
//! (default 1,000, 10,000 and 30,000 LSAs; per-LSA work that grows with the size would
//! be a quadratic spot); `OSPF_FLOOD_RUNS` runs per size (default 3). Results are in
//! docs/ospf.md ("LSDB memory and flooding").

mod ospf_common;

use std::collections::{BTreeMap, VecDeque};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ipnetwork::Ipv4Network;
use ospf_common::{database, Counting, Heap};
use wgrd::dataplane::TunnelId;
use wgrd::routing::ospf::instance::{
    Input, Instance, InstanceConfig, InterfaceConfig, Output, Timers,
};
use wgrd::routing::ospf::lsa::{Lsa, LsaKey};
use wgrd::routing::ospf::neighbor::State;
use wgrd::routing::ospf::packet::{Auth, Body, PacketRepr, ALL_SPF_ROUTERS};

#[global_allocator]
static ALLOC: Counting = Counting;

const A: usize = 0;
const S: usize = 1;
const B: usize = 2;
const MTU: u16 = 1420;
const STEP: Duration = Duration::from_millis(10);
/// (node, tunnel) pairs joined by a link: A-S on A's tunnel 1, A-B on A's tunnel 2.
const LINKS: [((usize, u32), (usize, u32)); 2] = [((A, 1), (S, 1)), ((A, 2), (B, 1))];

fn router(node: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 16, 0, node as u8 + 1)
}

fn config(node: usize, tunnels: &[u32]) -> InstanceConfig {
    InstanceConfig {
        router_id: router(node),
        area: Ipv4Addr::UNSPECIFIED,
        areas: BTreeMap::new(),
        interfaces: tunnels
            .iter()
            .map(|&t| InterfaceConfig {
                tunnel: TunnelId(t),
                name: format!("t{t}"),
                area: Ipv4Addr::UNSPECIFIED,
                address: None,
                cost: 10,
                hello: 10,
                dead: 40,
                retransmit: Duration::from_secs(5),
                mtu: MTU,
                auth: None,
            })
            .collect(),
        stubs: vec![(Ipv4Network::new(router(node), 32).unwrap(), 0)],
        externals: vec![],
        timers: Timers::default(),
    }
}

/// Packets and OSPF bytes (no IP header) sent, per sender and packet type (1..=5).
#[derive(Default, Clone, Copy)]
struct Tally {
    packets: [u64; 6],
    bytes: [u64; 6],
}

struct Net {
    now: Instant,
    nodes: [Option<Instance>; 3],
    /// Packets in flight: (to, input, one-way trips since the last tick).
    queue: VecDeque<(usize, Input, u32)>,
    /// Time inside `handle`, per node.
    busy: [Duration; 3],
    sent: [Tally; 3],
    /// The most one-way trips a packet needed since the last tick.
    trips: u32,
}

impl Net {
    fn handle(&mut self, node: usize, input: Input, trip: u32) {
        let now = self.now;
        let Some(inst) = self.nodes[node].as_mut() else {
            return;
        };
        let t = Instant::now();
        let out = inst.handle(now, input);
        self.busy[node] += t.elapsed();
        for o in out {
            let Output::Send {
                tunnel,
                dst,
                packet,
            } = o
            else {
                continue;
            };
            let kind = usize::from(packet[1]).min(5);
            self.sent[node].packets[kind] += 1;
            self.sent[node].bytes[kind] += packet.len() as u64;
            let Some(&(to, t)) = LINKS.iter().find_map(|(a, b)| {
                if *a == (node, tunnel.0) {
                    Some(b)
                } else if *b == (node, tunnel.0) {
                    Some(a)
                } else {
                    None
                }
            }) else {
                continue;
            };
            if self.nodes[to].is_none() {
                continue;
            }
            self.trips = self.trips.max(trip + 1);
            self.queue.push_back((
                to,
                Input::Packet {
                    tunnel: TunnelId(t),
                    src: router(node),
                    dst,
                    bytes: packet,
                },
                trip + 1,
            ));
        }
    }

    fn drain(&mut self) {
        while let Some((node, input, trip)) = self.queue.pop_front() {
            self.handle(node, input, trip);
        }
    }

    /// Moves the clock one step and fires every node's timers.
    fn step(&mut self) {
        self.now += STEP;
        self.trips = 0;
        for n in 0..3 {
            self.handle(n, Input::Timer, 0);
        }
        self.drain();
    }

    fn full(&self, node: usize, peer: usize) -> bool {
        self.nodes[node].as_ref().is_some_and(|i| {
            i.neighbors()
                .iter()
                .any(|&(_, r, s)| r == router(peer) && s == State::Full)
        })
    }

    /// (key, sequence, checksum) of every LSA the node holds, in every scope.
    fn database(&self, node: usize) -> Vec<(LsaKey, i32, u16)> {
        let mut v: Vec<_> = self.nodes[node]
            .as_ref()
            .map(|i| {
                i.lsdbs()
                    .flat_map(|(_, db)| db.iter())
                    .map(|(k, e)| (*k, e.lsa.header.seq, e.lsa.header.checksum))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// One run's results.
struct Run {
    lsas: usize,
    /// Time inside A's and B's `handle` from B's first hello until both are Full.
    to_full: [Duration; 2],
    /// ... and from then until the databases are identical (origination, SPF).
    after_full: [Duration; 2],
    sent_to_full: [Tally; 2],
    trips: u32,
    settle_sim: Duration,
    spf_runs_b: u64,
    /// B's whole heap (measured by dropping it), and what the rest (A) kept growing.
    b_heap: Heap,
    a_heap: usize,
    lsu_packets: Vec<Vec<u8>>,
}

fn lsu_packets(lsas: &[Lsa]) -> Vec<Vec<u8>> {
    // As A would size them: IP (20) and OSPF (24) headers off the MTU, 4 for the count.
    let max = usize::from(MTU) - 44;
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut size = 4;
    let emit = |batch: Vec<Lsa>| {
        PacketRepr {
            router_id: router(S),
            area_id: Ipv4Addr::UNSPECIFIED,
            auth: Auth::Null,
            body: Body::LsUpdate(batch),
        }
        .to_bytes()
    };
    for l in lsas {
        let len = l.bytes().len();
        if !batch.is_empty() && size + len > max {
            out.push(emit(std::mem::take(&mut batch)));
            size = 4;
        }
        size += len;
        batch.push(l.clone());
    }
    if !batch.is_empty() {
        out.push(emit(batch));
    }
    out
}

fn run(count: u32) -> Run {
    let t0 = Instant::now();
    let mut net = Net {
        now: t0,
        nodes: [
            Some(Instance::new(config(A, &[1, 2]), t0)),
            Some(Instance::new(config(S, &[1]), t0)),
            None,
        ],
        queue: VecDeque::with_capacity(1 << 12),
        busy: [Duration::ZERO; 3],
        sent: [Tally::default(); 3],
        trips: 0,
    };
    // A and the scaffold S adjacent, then the generated LSAs into A as S's updates.
    while !(net.full(A, S) && net.full(S, A)) {
        assert!(net.now - t0 < Duration::from_secs(60), "A-S not Full");
        net.step();
    }
    let lsas = database(count);
    let lsu = lsu_packets(&lsas);
    drop(lsas);
    for p in &lsu {
        let input = Input::Packet {
            tunnel: TunnelId(1),
            src: router(S),
            dst: ALL_SPF_ROUTERS,
            bytes: p.clone(),
        };
        net.handle(A, input, 0);
        net.drain();
    }
    // Let A run SPF and settle.
    for _ in 0..100 {
        net.step();
    }
    let a_db = net.database(A).len();
    assert!(a_db >= count as usize, "A holds {a_db} LSAs");

    // B appears on A's tunnel 2; from its first hello to Full and identical databases.
    net.busy = [Duration::ZERO; 3];
    net.sent = [Tally::default(); 3];
    let heap = Heap::now();
    net.nodes[B] = Some(Instance::new(config(B, &[1]), net.now));
    net.trips = 0;
    net.handle(B, Input::Timer, 0);
    net.drain();
    let start = net.now;
    while !(net.full(A, B) && net.full(B, A)) {
        assert!(net.now - start < Duration::from_secs(60), "A-B not Full");
        net.step();
    }
    let to_full = [net.busy[A], net.busy[B]];
    let sent_to_full = [net.sent[A], net.sent[B]];
    let trips = net.trips;
    let full_at = net.now;
    // Both are identical right at Full already (neither has re-originated yet); give
    // them a second for their new router-LSAs and SPF, then wait for identical again.
    for _ in 0..100 {
        net.step();
    }
    while net.database(A) != net.database(B) {
        assert!(
            net.now - full_at < Duration::from_secs(60),
            "never identical"
        );
        net.step();
    }
    assert!(net
        .database(B)
        .iter()
        .any(|(k, ..)| k.adv_router == router(B)));
    let grown = Heap::now().since(heap);
    let spf_runs_b = net.nodes[B].as_ref().map_or(0, |b| b.spf_runs());
    let before_drop = Heap::now();
    let after_full = [net.busy[A] - to_full[0], net.busy[B] - to_full[1]];
    net.nodes[B] = None;
    let b_heap = before_drop.since(Heap::now());
    Run {
        lsas: a_db,
        to_full,
        after_full,
        sent_to_full,
        trips,
        settle_sim: net.now - full_at,
        spf_runs_b,
        b_heap,
        a_heap: grown.bytes.saturating_sub(b_heap.bytes),
        lsu_packets: lsu,
    }
}

/// Baseline: `Lsa::parse` of every LSA once (best of 5 passes), and the whole update
/// packets' `PacketRepr::parse_bytes` (packet checksum too).
fn baselines(lsu: &[Vec<u8>]) -> (Duration, Duration) {
    let lsas: Vec<Vec<u8>> = lsu
        .iter()
        .flat_map(|p| match PacketRepr::parse_bytes(p).map(|r| r.body) {
            Ok(Body::LsUpdate(l)) => l.into_iter().map(|l| l.bytes().to_vec()).collect(),
            _ => vec![],
        })
        .collect();
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        let t = Instant::now();
        for b in &lsas {
            black_box(Lsa::parse(black_box(b)).unwrap());
        }
        best.0 = best.0.min(t.elapsed());
        let t = Instant::now();
        for p in lsu {
            black_box(PacketRepr::parse_bytes(black_box(p)).unwrap());
        }
        best.1 = best.1.min(t.elapsed());
    }
    best
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace(['_', ','], "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 30_000]
    } else {
        sizes
    };
    let runs: usize = std::env::var("OSPF_FLOOD_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!(
        "| LSAs in A | run | to Full: A+B handle (ms) | LSAs/s | µs/LSA | parse baseline (ms) \
         | ratio | LSU parse (ms) | after Full: A+B (ms), B SPF runs, sim ms | heap B/LSA: B, A's growth |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for &n in &sizes {
        let mut last = None;
        for r in 0..runs {
            let run = run(n);
            let (parse, lsu_parse) = baselines(&run.lsu_packets);
            let work = run.to_full[0] + run.to_full[1];
            println!(
                "| {} | {} | {:.1} (A {:.1}, B {:.1}) | {:.0} | {:.2} | {:.2} | {:.1} | {:.2} \
                 | {:.1}, {}, {} | {:.0}, {:.0} |",
                run.lsas,
                r + 1,
                us(work) / 1e3,
                us(run.to_full[0]) / 1e3,
                us(run.to_full[1]) / 1e3,
                run.lsas as f64 / work.as_secs_f64(),
                us(work) / run.lsas as f64,
                us(parse) / 1e3,
                work.as_secs_f64() / parse.as_secs_f64(),
                us(lsu_parse) / 1e3,
                us(run.after_full[0] + run.after_full[1]) / 1e3,
                run.spf_runs_b,
                run.settle_sim.as_millis(),
                run.b_heap.bytes as f64 / run.lsas as f64,
                run.a_heap as f64 / run.lsas as f64,
            );
            last = Some(run);
        }
        let Some(run) = last else { continue };
        println!();
        println!(
            "{} LSAs, until both Full ({} one-way trips on the critical path, {} round \
             trips), OSPF bytes without IP headers:",
            run.lsas,
            run.trips,
            run.trips / 2
        );
        println!("| packets | A -> B | bytes | B -> A | bytes |");
        println!("| --- | --- | --- | --- | --- |");
        let names = ["", "hello", "DD", "LS request", "LS update", "LS ack"];
        let [a, b] = run.sent_to_full;
        for (k, name) in names.iter().enumerate().skip(1) {
            println!(
                "| {name} | {} | {} | {} | {} |",
                a.packets[k], a.bytes[k], b.packets[k], b.bytes[k]
            );
        }
        println!(
            "| total | {} | {} | {} | {} |",
            a.packets.iter().sum::<u64>(),
            a.bytes.iter().sum::<u64>(),
            b.packets.iter().sum::<u64>(),
            b.bytes.iter().sum::<u64>()
        );
        println!();
    }
}
