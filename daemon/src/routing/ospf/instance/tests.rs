//! Deterministic tests of whole instances: a simulated network of instances whose
//! packets are handed over in memory, with a clock that only moves when the test says.
//! No sockets, no sleeping: the same inputs always give the same outputs.

use super::*;
use crate::routing::ospf::lsa::NetworkLsa;
use crate::routing::ospf::spf::PathType;
use std::collections::VecDeque;

fn rid(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 255, 0, n as u8)
}

fn net(s: &str) -> Ipv4Network {
    s.parse().unwrap()
}

struct Link {
    a: (usize, TunnelId),
    b: (usize, TunnelId),
    up: bool,
}

struct Lab {
    t0: Instant,
    now: Instant,
    nodes: Vec<Instance>,
    cfgs: Vec<InstanceConfig>,
    links: Vec<Link>,
    queue: VecDeque<(usize, Input)>,
    routes: Vec<Vec<Route>>,
    changes: Vec<(usize, Ipv4Addr, State)>,
    sent: u64,
}

fn iface(tunnel: TunnelId, cost: u16) -> InterfaceConfig {
    InterfaceConfig {
        tunnel,
        name: format!("t{}", tunnel.0),
        area: Ipv4Addr::UNSPECIFIED,
        address: None,
        cost,
        hello: 1,
        dead: 3,
        retransmit: Duration::from_secs(1),
        mtu: 1420,
        auth: None,
    }
}

impl Lab {
    /// Routers 1..=n (index 0 unused in ids: node i has router id 10.255.0.(i+1)),
    /// linked by `edges` (a, b, cost); each router also has a stub 10.(i+1).0.0/24.
    fn new(n: usize, edges: &[(usize, usize, u16)]) -> Lab {
        let now = Instant::now();
        let mut cfgs: Vec<InstanceConfig> = (0..n)
            .map(|i| InstanceConfig {
                router_id: rid(i + 1),
                area: Ipv4Addr::UNSPECIFIED,
                areas: BTreeMap::new(),
                interfaces: vec![],
                stubs: vec![
                    (Ipv4Network::new(rid(i + 1), 32).unwrap(), 0),
                    (
                        Ipv4Network::new(Ipv4Addr::new(10, i as u8 + 1, 0, 0), 24).unwrap(),
                        1,
                    ),
                ],
                externals: vec![],
                timers: Timers::default(),
            })
            .collect();
        let mut links = Vec::new();
        for &(a, b, cost) in edges {
            let ta = TunnelId(cfgs[a].interfaces.len() as u32 + 1);
            let tb = TunnelId(cfgs[b].interfaces.len() as u32 + 1);
            cfgs[a].interfaces.push(iface(ta, cost));
            cfgs[b].interfaces.push(iface(tb, cost));
            links.push(Link {
                a: (a, ta),
                b: (b, tb),
                up: true,
            });
        }
        let nodes = cfgs.iter().map(|c| Instance::new(c.clone(), now)).collect();
        Lab {
            t0: now,
            now,
            nodes,
            cfgs,
            links,
            queue: VecDeque::new(),
            routes: vec![vec![]; n],
            changes: vec![],
            sent: 0,
        }
    }

    fn deliver(&mut self, node: usize, outputs: Vec<Output>) {
        for o in outputs {
            if std::env::var("OSPF_TRACE").is_ok() {
                if let Output::Send { packet, .. } = &o {
                    eprintln!(
                        "{:?} node {node} sends {:?}",
                        self.now - self.t0,
                        PacketRepr::parse_bytes(packet).map(|p| p.body)
                    );
                }
            }
            match o {
                Output::Send {
                    tunnel,
                    packet,
                    dst,
                    ..
                } => {
                    self.sent += 1;
                    let Some(l) = self
                        .links
                        .iter()
                        .find(|l| l.a == (node, tunnel) || l.b == (node, tunnel))
                    else {
                        continue;
                    };
                    if !l.up {
                        continue;
                    }
                    let (to, t) = if l.a == (node, tunnel) { l.b } else { l.a };
                    self.queue.push_back((
                        to,
                        Input::Packet {
                            tunnel: t,
                            src: rid(node + 1),
                            dst,
                            bytes: packet,
                        },
                    ));
                }
                Output::Routes(r) => self.routes[node] = r,
                Output::NeighborChanged { router_id, to, .. } => {
                    if std::env::var("OSPF_TRACE").is_ok() {
                        eprintln!(
                            "{:?} node {node} nbr {router_id} -> {to:?}",
                            self.now - self.t0
                        );
                    }
                    self.changes.push((node, router_id, to))
                }
            }
        }
    }

    fn input(&mut self, node: usize, input: Input) {
        let out = self.nodes[node].handle(self.now, input);
        self.deliver(node, out);
        self.drain();
    }

    fn drain(&mut self) {
        let mut budget = 100_000;
        while let Some((node, input)) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "packet storm");
            let out = self.nodes[node].handle(self.now, input);
            self.deliver(node, out);
        }
    }

    /// Advance the clock by `dt`, firing every node's timers.
    fn step(&mut self, dt: Duration) {
        self.now += dt;
        for n in 0..self.nodes.len() {
            let out = self.nodes[n].handle(self.now, Input::Timer);
            self.deliver(n, out);
        }
        self.drain();
    }

    /// Steps of 10 ms until `cond` holds; returns the simulated time it took.
    fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Lab) -> bool) -> Duration {
        let start = self.now;
        while !cond(self) {
            assert!(
                self.now - start < limit,
                "condition not met within {limit:?}"
            );
            self.step(Duration::from_millis(10));
        }
        self.now - start
    }

    fn all_full(&self) -> bool {
        self.nodes.iter().enumerate().all(|(i, n)| {
            let want = self.cfgs[i].interfaces.len();
            let full = n
                .neighbors()
                .iter()
                .filter(|(_, _, s)| *s == State::Full)
                .count();
            let up_links = self
                .links
                .iter()
                .filter(|l| l.up && (l.a.0 == i || l.b.0 == i))
                .count();
            full == up_links && want >= up_links
        })
    }

    fn route(&self, node: usize, prefix: &str) -> Option<&Route> {
        let p = net(prefix);
        self.routes[node].iter().find(|r| r.prefix == p)
    }

    fn hops(&self, node: usize, prefix: &str) -> Vec<u32> {
        self.route(node, prefix)
            .map(|r| r.next_hops.iter().map(|t| t.0).collect())
            .unwrap_or_default()
    }

    fn cut(&mut self, link: usize) {
        self.links[link].up = false;
        let (a, b) = (self.links[link].a, self.links[link].b);
        self.input(a.0, Input::PeerSilent(a.1));
        self.input(b.0, Input::PeerSilent(b.1));
    }

    fn lsdb_digest(&self, node: usize) -> Vec<(Scope, LsaKey, i32, u16)> {
        self.nodes[node]
            .lsdbs()
            .flat_map(|(scope, db)| {
                db.iter()
                    .map(move |(k, e)| (scope, *k, e.lsa.header.seq, e.lsa.header.checksum))
            })
            .collect()
    }
}

#[test]
fn two_routers_go_through_every_state_to_full() {
    let mut lab = Lab::new(2, &[(0, 1, 10)]);
    let took = lab.run_until(Duration::from_secs(5), Lab::all_full);
    // The router with the higher id (node 1) is master; both pass through each state.
    let states = |node: usize| -> Vec<State> {
        lab.changes
            .iter()
            .filter(|c| c.0 == node)
            .map(|c| c.2)
            .collect()
    };
    for node in 0..2 {
        let s = states(node);
        assert_eq!(
            &s[..3],
            &[State::Init, State::ExStart, State::Exchange],
            "{s:?}"
        );
        assert_eq!(*s.last().unwrap(), State::Full);
    }
    assert!(took < Duration::from_millis(100), "took {took:?}");
    // Routes follow once the new router-LSAs (MinLSInterval after the first ones) arrive.
    let took = lab.run_until(Duration::from_secs(2), |l| !l.routes[0].is_empty());
    assert!(took <= Duration::from_millis(300), "routes took {took:?}");
    assert_eq!(lab.lsdb_digest(0), lab.lsdb_digest(1));
    assert_eq!(lab.hops(0, "10.255.0.2/32"), vec![1]);
    assert_eq!(lab.hops(1, "10.1.0.0/24"), vec![1]);
    assert_eq!(lab.route(1, "10.1.0.0/24").unwrap().cost, 11);
}

#[test]
fn triangle_converges_to_lowest_cost_and_reroutes_on_a_silent_peer() {
    // 1 -10- 2, 2 -10- 3, 1 -50- 3: node 0 reaches node 2 via node 1 (cost 20).
    let mut lab = Lab::new(3, &[(0, 1, 10), (1, 2, 10), (0, 2, 50)]);
    lab.run_until(Duration::from_secs(5), Lab::all_full);
    lab.run_until(Duration::from_secs(2), |l| {
        l.route(0, "10.255.0.3/32").is_some_and(|r| r.cost == 20)
    });
    assert_eq!(lab.hops(0, "10.255.0.3/32"), vec![1]);
    assert_eq!(lab.hops(0, "10.3.0.0/24"), vec![1]);
    assert_eq!(lab.route(0, "10.3.0.0/24").unwrap().cost, 21);
    for n in 0..3 {
        assert_eq!(lab.lsdb_digest(n), lab.lsdb_digest(0), "LSDBs differ");
        assert_eq!(lab.routes[n].len(), 4, "{:?}", lab.routes[n]);
    }
    // Failures come in steady state: let the SPF hold time relax first.
    for _ in 0..100 {
        lab.step(Duration::from_millis(100));
    }
    let runs_before: u64 = lab.nodes.iter().map(|n| n.spf_runs()).sum();

    // Cut 1-2 silently; the tunnels report it and traffic moves to the direct link.
    lab.cut(0);
    let took = lab.run_until(Duration::from_secs(2), |l| {
        l.hops(0, "10.255.0.3/32") == vec![2] && l.hops(1, "10.255.0.1/32") == vec![2]
    });
    assert!(took <= Duration::from_millis(20), "reroute took {took:?}");
    assert_eq!(lab.route(0, "10.255.0.3/32").unwrap().cost, 50);
    assert_eq!(lab.route(1, "10.255.0.1/32").unwrap().cost, 60);
    // Quiet afterwards: a bounded number of SPF runs, none while nothing changes.
    lab.run_until(Duration::from_secs(3), |_| false_after(3));
    let runs_after: u64 = lab.nodes.iter().map(|n| n.spf_runs()).sum();
    assert!(
        runs_after - runs_before <= 12,
        "{} SPF runs",
        runs_after - runs_before
    );
    let settled: u64 = lab.nodes.iter().map(|n| n.spf_runs()).sum();
    for _ in 0..200 {
        lab.step(Duration::from_millis(10));
    }
    assert_eq!(lab.nodes.iter().map(|n| n.spf_runs()).sum::<u64>(), settled);

    // The link comes back: the adjacency re-forms and the cheap path returns.
    lab.links[0].up = true;
    lab.run_until(Duration::from_secs(5), |l| {
        l.hops(0, "10.255.0.3/32") == vec![1]
    });
}

/// A run_until condition that is true on the n-th call (lets time pass).
fn false_after(_n: u32) -> bool {
    thread_local!(static CALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
    CALLS.with(|c| {
        c.set(c.get() + 1);
        c.get() % 100 == 0
    })
}

#[test]
fn square_with_equal_costs_installs_both_paths() {
    let mut lab = Lab::new(4, &[(0, 1, 10), (0, 2, 10), (1, 3, 10), (2, 3, 10)]);
    lab.run_until(Duration::from_secs(5), Lab::all_full);
    lab.run_until(Duration::from_secs(2), |l| {
        l.hops(0, "10.4.0.0/24").len() == 2
    });
    assert_eq!(lab.hops(0, "10.4.0.0/24"), vec![1, 2]);
    assert_eq!(lab.route(0, "10.4.0.0/24").unwrap().cost, 21);
}

#[test]
fn dead_interval_ends_an_adjacency_without_a_silence_report() {
    let mut lab = Lab::new(2, &[(0, 1, 10)]);
    lab.run_until(Duration::from_secs(5), Lab::all_full);
    lab.links[0].up = false;
    let took = lab.run_until(Duration::from_secs(10), |l| {
        l.nodes[0].neighbors().is_empty()
    });
    assert!(
        took >= Duration::from_secs(2) && took <= Duration::from_secs(3),
        "{took:?}"
    );
    lab.run_until(Duration::from_secs(1), |l| l.routes[0].is_empty());
    assert_eq!(lab.nodes[0].counters()["inactivity_timer"], 1);
}

#[test]
fn redistributed_externals_are_learned_and_flushed_when_withdrawn() {
    let mut lab = Lab::new(3, &[(0, 1, 10), (1, 2, 10)]);
    lab.cfgs[2].externals = vec![External {
        prefix: net("192.168.50.0/24"),
        metric: 20,
        e2: true,
    }];
    let cfg = lab.cfgs[2].clone();
    lab.input(2, Input::Configure(cfg));
    lab.run_until(Duration::from_secs(5), |l| {
        l.route(0, "192.168.50.0/24").is_some()
    });
    let r = lab.route(0, "192.168.50.0/24").unwrap();
    assert_eq!(
        (r.path_type, r.cost, r.cost2),
        (PathType::External2, 20, 20)
    );
    // The ASBR sets the E bit in its router-LSA.
    let key = LsaKey {
        ls_type: LsType::Router,
        id: rid(3),
        adv_router: rid(3),
    };
    match &lab.nodes[0].find_lsa(&key).unwrap().lsa.body {
        LsaBody::Router(r) => assert_eq!(r.flags & FLAG_E, FLAG_E),
        _ => unreachable!(),
    }

    // Withdraw: flushed with MaxAge everywhere, then removed from every LSDB.
    lab.cfgs[2].externals.clear();
    let cfg = lab.cfgs[2].clone();
    lab.input(2, Input::Configure(cfg));
    lab.run_until(Duration::from_secs(2), |l| {
        l.route(0, "192.168.50.0/24").is_none()
    });
    let ext = LsaKey {
        ls_type: LsType::AsExternal,
        id: "192.168.50.0".parse().unwrap(),
        adv_router: rid(3),
    };
    lab.run_until(Duration::from_secs(5), |l| {
        (0..3).all(|n| l.nodes[n].find_lsa(&ext).is_none())
    });
}

#[test]
fn a_restarted_router_outnumbers_its_old_lsas() {
    let mut lab = Lab::new(2, &[(0, 1, 10)]);
    lab.run_until(Duration::from_secs(5), Lab::all_full);
    // Bump router 2's LSA a few times (config changes), so its sequence is high.
    for k in 0..3u8 {
        lab.cfgs[1].stubs.push((net(&format!("10.99.{k}.0/24")), 1));
        let cfg = lab.cfgs[1].clone();
        lab.input(1, Input::Configure(cfg));
        lab.step(Duration::from_secs(1));
    }
    let key = LsaKey {
        ls_type: LsType::Router,
        id: rid(2),
        adv_router: rid(2),
    };
    let old_seq = lab.nodes[0].find_lsa(&key).unwrap().lsa.header.seq;
    assert!(old_seq > INITIAL_SEQUENCE + 2, "{old_seq:x}");

    // Restart router 2 with its original config: it starts at the initial sequence,
    // learns its old LSA from router 1 and originates above it.
    lab.cfgs[1].stubs.truncate(2);
    lab.nodes[1] = Instance::new(lab.cfgs[1].clone(), lab.now);
    lab.cut(0);
    lab.links[0].up = true;
    lab.run_until(Duration::from_secs(5), |l| {
        l.nodes[0]
            .find_lsa(&key)
            .is_some_and(|e| e.lsa.header.seq > old_seq)
            && l.lsdb_digest(0) == l.lsdb_digest(1)
    });
    assert!(lab.nodes[1].counters()["self_originated_received"] >= 1);
    lab.run_until(Duration::from_secs(2), |l| {
        l.route(0, "10.99.0.0/24").is_none()
    });
}

#[test]
fn lsas_are_retransmitted_until_acknowledged() {
    let mut lab = Lab::new(2, &[(0, 1, 10)]);
    lab.run_until(Duration::from_secs(5), Lab::all_full);
    // Drop everything from router 2 to router 1 for a moment: router 1's new LSA is
    // not acknowledged and is sent again after the retransmit interval.
    lab.cfgs[0].stubs.push((net("10.77.0.0/16"), 5));
    let cfg = lab.cfgs[0].clone();
    lab.step(Duration::from_secs(2));
    lab.links[0].up = false;
    lab.input(0, Input::Configure(cfg));
    for _ in 0..30 {
        lab.step(Duration::from_millis(10));
    }
    lab.links[0].up = true;
    lab.run_until(Duration::from_secs(3), |l| {
        l.route(1, "10.77.0.0/16").is_some()
    });
    assert!(
        lab.nodes[0]
            .counters()
            .get("lsu_retransmit")
            .copied()
            .unwrap_or(0)
            >= 1
    );
    // And once acknowledged, the retransmissions stop.
    let before = lab.nodes[0].counters().get("lsu_retransmit").copied();
    for _ in 0..300 {
        lab.step(Duration::from_millis(10));
    }
    assert_eq!(
        lab.nodes[0].counters().get("lsu_retransmit").copied(),
        before
    );
}

#[test]
fn malformed_and_foreign_packets_are_counted_and_dropped() {
    let mut lab = Lab::new(2, &[(0, 1, 10)]);
    let mut hello = PacketRepr {
        router_id: rid(9),
        area_id: Ipv4Addr::new(0, 0, 0, 1),
        auth: Auth::Null,
        body: Body::Hello(Hello {
            network_mask: Ipv4Addr::UNSPECIFIED,
            hello_interval: 1,
            options: OPT_E,
            priority: 1,
            dead_interval: 3,
            designated_router: Ipv4Addr::UNSPECIFIED,
            backup_designated_router: Ipv4Addr::UNSPECIFIED,
            neighbors: vec![],
        }),
    };
    let pkt = |bytes: Vec<u8>| Input::Packet {
        tunnel: TunnelId(1),
        src: rid(9),
        dst: ALL_SPF_ROUTERS,
        bytes,
    };
    lab.input(0, pkt(hello.to_bytes()));
    hello.area_id = Ipv4Addr::UNSPECIFIED;
    if let Body::Hello(h) = &mut hello.body {
        h.hello_interval = 10;
    }
    lab.input(0, pkt(hello.to_bytes()));
    let mut bad = hello.to_bytes();
    bad[30] ^= 0xff;
    lab.input(0, pkt(bad));
    lab.input(0, pkt(vec![2, 1, 0]));
    let c = lab.nodes[0].counters();
    assert_eq!(c["wrong_area"], 1);
    assert_eq!(c["hello_timer_mismatch"], 1);
    assert_eq!(c["bad_checksum"], 1);
    assert_eq!(c["truncated"], 1);
    assert!(lab.nodes[0].neighbors().iter().all(|n| n.1 != rid(9)));
}

#[test]
fn a_large_database_is_exchanged_over_several_dd_packets() {
    // 300 externals (more than one DD packet of headers at MTU 1420) on router 2,
    // before router 1 comes up: the exchange needs several DDs and LSRs.
    let mut lab = Lab::new(2, &[(0, 1, 10)]);
    lab.links[0].up = false;
    lab.cfgs[1].externals = (0..300u32)
        .map(|i| External {
            prefix: Ipv4Network::new(Ipv4Addr::from(0xc0a8_0000 + (i << 8)), 24).unwrap(),
            metric: 20,
            e2: true,
        })
        .collect();
    let cfg = lab.cfgs[1].clone();
    lab.input(1, Input::Configure(cfg));
    lab.step(Duration::from_secs(1));
    lab.links[0].up = true;
    lab.run_until(Duration::from_secs(5), |l| {
        l.all_full() && l.routes[0].len() >= 302
    });
    assert_eq!(lab.lsdb_digest(0), lab.lsdb_digest(1));
    assert!(lab.nodes[0].counters()["rx_dd"] >= 5);
}

#[test]
fn same_inputs_give_the_same_outputs() {
    let digest = || {
        let mut lab = Lab::new(3, &[(0, 1, 10), (1, 2, 10), (0, 2, 50)]);
        lab.run_until(Duration::from_secs(5), Lab::all_full);
        lab.step(Duration::from_secs(1));
        (lab.sent, lab.changes.clone(), lab.lsdb_digest(2))
    };
    assert_eq!(digest(), digest());
}

/// Both ends of every link with `key`; node 1 optionally with `other` instead.
fn authenticated_lab(key: AuthKey, other: Option<AuthKey>) -> Lab {
    let mut lab = Lab::new(2, &[(0, 1, 10)]);
    for (n, k) in [(0, key.clone()), (1, other.unwrap_or(key))] {
        lab.cfgs[n].interfaces[0].auth = Some(k);
        lab.nodes[n] = Instance::new(lab.cfgs[n].clone(), lab.now);
        lab.nodes[n].set_crypto_seq(1000);
    }
    lab
}

#[test]
fn hmac_sha256_and_md5_adjacencies_reach_full_with_signed_packets() {
    use crate::routing::ospf::auth::Algorithm;
    for alg in [Algorithm::HmacSha256, Algorithm::Md5] {
        let key = AuthKey::new(alg, 3, b"s3cret");
        let mut lab = authenticated_lab(key.clone(), None);
        // Every packet sent is signed: au type 2, key id 3, the digest after the packet.
        let out = lab.nodes[0].handle(lab.now, Input::Timer);
        let Some(Output::Send { packet, .. }) = out.first() else {
            panic!("no hello: {out:?}");
        };
        let plen = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        assert_eq!(packet.len(), plen + alg.digest_len());
        assert_eq!(
            &packet[12..20],
            &[0, 0, 0, 2, 0, 0, 3, alg.digest_len() as u8]
        );
        assert_eq!(u32::from_be_bytes(packet[20..24].try_into().unwrap()), 1000);
        assert!(key.verify(&packet[..plen], &packet[plen..]));
        lab.run_until(Duration::from_secs(5), Lab::all_full);
        lab.run_until(Duration::from_secs(2), |l| !l.routes[0].is_empty());
        assert_eq!(lab.hops(0, "10.255.0.2/32"), vec![1]);
        assert!(!lab.nodes[0].counters().contains_key("auth_bad_digest"));
        // The sequence number follows the clock.
        lab.step(Duration::from_secs(3));
        let out = lab.nodes[0].handle(lab.now, Input::Timer);
        let seqs: Vec<u32> = out
            .iter()
            .filter_map(|o| match o {
                Output::Send { packet, .. } => {
                    Some(u32::from_be_bytes(packet[20..24].try_into().unwrap()))
                }
                _ => None,
            })
            .collect();
        assert!(seqs.iter().all(|s| *s >= 1003), "{seqs:?}");
    }
}

#[test]
fn wrong_key_wrong_key_id_and_unauthenticated_packets_are_dropped() {
    use crate::routing::ospf::auth::Algorithm;
    let key = AuthKey::new(Algorithm::HmacSha256, 1, b"right");
    let mut lab = authenticated_lab(
        key.clone(),
        Some(AuthKey::new(Algorithm::HmacSha256, 1, b"wrong")),
    );
    for _ in 0..200 {
        lab.step(Duration::from_millis(10));
    }
    assert!(lab.nodes[0].neighbors().is_empty());
    assert!(lab.nodes[0].counters()["auth_bad_digest"] >= 2);
    assert!(lab.nodes[1].counters()["auth_bad_digest"] >= 2);
    let mut lab = authenticated_lab(
        key.clone(),
        Some(AuthKey::new(Algorithm::HmacSha256, 2, b"right")),
    );
    lab.step(Duration::from_secs(1));
    assert!(lab.nodes[0].counters()["auth_key_id"] >= 1);
    assert!(lab.nodes[0].neighbors().is_empty());
    // MD5 against HMAC-SHA-256: the digest length differs.
    let mut lab = authenticated_lab(key.clone(), Some(AuthKey::new(Algorithm::Md5, 1, b"right")));
    lab.step(Duration::from_secs(1));
    assert!(lab.nodes[0].counters()["auth_bad_length"] >= 1);
    // Authentication on one side only.
    let mut lab = Lab::new(2, &[(0, 1, 10)]);
    lab.cfgs[0].interfaces[0].auth = Some(key);
    lab.nodes[0] = Instance::new(lab.cfgs[0].clone(), lab.now);
    lab.step(Duration::from_secs(1));
    assert!(lab.nodes[0].counters()["auth_mismatch"] >= 1);
    assert!(lab.nodes[1].counters()["auth_mismatch"] >= 1);
    assert!(lab.nodes[0].neighbors().is_empty() && lab.nodes[1].neighbors().is_empty());
}

#[test]
fn replayed_and_truncated_packets_are_dropped() {
    use crate::routing::ospf::auth::Algorithm;
    let key = AuthKey::new(Algorithm::HmacSha256, 1, b"k");
    let mut lab = authenticated_lab(key, None);
    // Capture an early hello of node 1 (sequence 1000).
    let out = lab.nodes[1].handle(lab.now, Input::Timer);
    let old = out
        .iter()
        .find_map(|o| match o {
            Output::Send { packet, .. } => Some(packet.clone()),
            _ => None,
        })
        .unwrap();
    lab.deliver(1, out);
    lab.drain();
    lab.run_until(Duration::from_secs(5), Lab::all_full);
    lab.step(Duration::from_secs(2));
    let pkt = |bytes: Vec<u8>| Input::Packet {
        tunnel: TunnelId(1),
        src: rid(2),
        dst: ALL_SPF_ROUTERS,
        bytes,
    };
    lab.input(0, pkt(old.clone()));
    assert_eq!(lab.nodes[0].counters()["auth_replay"], 1);
    lab.input(0, pkt(old[..old.len() - 1].to_vec()));
    assert_eq!(lab.nodes[0].counters()["auth_truncated"], 1);
    let mut flipped = old.clone();
    flipped[30] ^= 1;
    lab.input(0, pkt(flipped));
    assert_eq!(lab.nodes[0].counters()["auth_bad_digest"], 1);
    assert!(lab.all_full());
}

/// Router 2's router-LSA one sequence number on, with an extra stub (as a neighbor
/// that re-originates the moment its adjacency is Full would send it).
fn reoriginated(lab: &Lab, node: usize, key: &LsaKey, extra: &str) -> Lsa {
    let e = lab.nodes[node].find_lsa(key).unwrap();
    let LsaBody::Router(mut body) = e.lsa.body.clone() else {
        panic!("not a router-LSA")
    };
    let n = net(extra);
    body.links.push(RouterLink {
        kind: LinkKind::Stub,
        id: n.network(),
        data: n.mask(),
        metric: 1,
    });
    let mut header = e.lsa.header;
    header.seq += 1;
    header.age = 0;
    Lsa::build(header, LsaBody::Router(body))
}

#[test]
fn an_instance_right_after_a_requested_copy_is_not_held_off_by_min_ls_arrival() {
    // Router 1 learns router 2's router-LSA in the exchange (an answer to its LS
    // request). Router 2 re-originates it at once, as FRR and BIRD do on reaching Full:
    // the new instance is installed and acknowledged in the same step, not dropped for
    // MinLSArrival and taken from a retransmission.
    let mut lab = Lab::new(2, &[(0, 1, 10)]);
    let key = LsaKey {
        ls_type: LsType::Router,
        id: rid(2),
        adv_router: rid(2),
    };
    lab.run_until(Duration::from_secs(2), |l| {
        l.nodes[0].find_lsa(&key).is_some()
    });
    let e = lab.nodes[0].find_lsa(&key).unwrap();
    assert!(!e.flooded, "the copy answered our request");
    assert_eq!(e.installed, lab.now);
    // Keep router 2's own packets (and its real re-origination) out of the way.
    lab.links[0].up = false;
    let lsu = |lsa: Lsa| Input::Packet {
        tunnel: TunnelId(1),
        src: rid(2),
        dst: ALL_SPF_ROUTERS,
        bytes: PacketRepr {
            router_id: rid(2),
            area_id: Ipv4Addr::UNSPECIFIED,
            auth: Auth::Null,
            body: Body::LsUpdate(vec![lsa]),
        }
        .to_bytes(),
    };
    let next = reoriginated(&lab, 0, &key, "10.88.0.0/16");
    let seq = next.header.seq;
    lab.input(0, lsu(next));
    let e = lab.nodes[0].find_lsa(&key).unwrap();
    assert_eq!(
        e.lsa.header.seq, seq,
        "the newer instance is installed at once"
    );
    assert!(e.flooded);
    assert_eq!(lab.nodes[0].counters().get("lsa_min_arrival"), None);
    // That copy came by flooding: one more instance within MinLSArrival is dropped
    // (RFC 2328 13 (5a) still holds for flooded copies) ...
    let again = reoriginated(&lab, 0, &key, "10.89.0.0/16");
    lab.input(0, lsu(again.clone()));
    assert_eq!(lab.nodes[0].find_lsa(&key).unwrap().lsa.header.seq, seq);
    assert_eq!(lab.nodes[0].counters()["lsa_min_arrival"], 1);
    // ... and accepted once MinLSArrival has passed.
    lab.now += Timers::default().min_ls_arrival;
    lab.input(0, lsu(again));
    assert_eq!(lab.nodes[0].find_lsa(&key).unwrap().lsa.header.seq, seq + 1);
}

#[test]
fn a_network_lsa_from_another_routers_lan_is_stored_and_flooded_on() {
    // A chain 1 - 2 - 3. Router 2 receives from 1 a network-LSA (type 2) of some DR on
    // a LAN elsewhere in the area: it installs it in the area's database, acknowledges
    // it and floods it to 3, as a router-LSA would be.
    let mut lab = Lab::new(3, &[(0, 1, 10), (1, 2, 10)]);
    lab.run_until(Duration::from_secs(5), Lab::all_full);
    let lsa = Lsa::build(
        LsaHeader {
            age: 1,
            options: 2,
            ls_type: 2,
            id: Ipv4Addr::new(192, 168, 23, 3),
            adv_router: rid(9),
            seq: 0x8000_0001_u32 as i32,
            checksum: 0,
            length: 0,
        },
        LsaBody::Network(NetworkLsa {
            mask: Ipv4Addr::new(255, 255, 255, 0),
            attached: vec![rid(9), rid(8)],
        }),
    );
    let key = lsa.key();
    lab.input(
        1,
        Input::Packet {
            tunnel: TunnelId(1),
            src: rid(1),
            dst: ALL_SPF_ROUTERS,
            bytes: PacketRepr {
                router_id: rid(1),
                area_id: Ipv4Addr::UNSPECIFIED,
                auth: Auth::Null,
                body: Body::LsUpdate(vec![lsa.clone()]),
            }
            .to_bytes(),
        },
    );
    for node in [1, 2] {
        let e = lab.nodes[node]
            .find_lsa(&key)
            .expect("network-LSA installed");
        assert_eq!(e.lsa.body, lsa.body);
        assert!(lab.nodes[node]
            .lsdb(Scope::Area(Ipv4Addr::UNSPECIFIED))
            .is_some_and(|db| db.get(&key).is_some()));
    }
    // Nothing reaches the network (no router links to it): no route from it.
    assert!(lab.route(2, "192.168.23.0/24").is_none());
}

// ---- several areas ----

const AREA1: Ipv4Addr = Ipv4Addr::new(0, 0, 0, 1);
const AREA2: Ipv4Addr = Ipv4Addr::new(0, 0, 0, 2);

impl Lab {
    /// Like [`Lab::new`], each edge in an area (a, b, cost, area); `areas` are the kinds
    /// of areas every router configures (as `[[ospf.areas]]` would).
    fn with_areas(
        n: usize,
        edges: &[(usize, usize, u16, Ipv4Addr)],
        areas: &[(Ipv4Addr, AreaSettings)],
    ) -> Lab {
        let plain: Vec<(usize, usize, u16)> = edges.iter().map(|e| (e.0, e.1, e.2)).collect();
        let mut lab = Lab::new(n, &plain);
        for (l, e) in edges.iter().enumerate() {
            let (a, b) = (lab.links[l].a, lab.links[l].b);
            for (node, tunnel) in [a, b] {
                let i = lab.cfgs[node]
                    .interfaces
                    .iter_mut()
                    .find(|i| i.tunnel == tunnel)
                    .unwrap();
                i.area = e.3;
            }
        }
        for c in &mut lab.cfgs {
            c.areas = areas.iter().cloned().collect();
        }
        lab.nodes = lab
            .cfgs
            .iter()
            .map(|c| Instance::new(c.clone(), lab.now))
            .collect();
        lab
    }

    fn reconfigure(&mut self, node: usize) {
        let cfg = self.cfgs[node].clone();
        self.input(node, Input::Configure(cfg));
    }

    /// Our LSA of `ls_type`/`id` by `adv` in `scope` of `node`'s databases.
    fn lsa_in(
        &self,
        node: usize,
        scope: Scope,
        ls_type: LsType,
        id: &str,
        adv: usize,
    ) -> Option<&Lsa> {
        let key = LsaKey {
            ls_type,
            id: id.parse().unwrap(),
            adv_router: rid(adv),
        };
        self.nodes[node]
            .lsdb(scope)?
            .get(&key)
            .filter(|e| e.lsa.header.age < MAX_AGE)
            .map(|e| &e.lsa)
    }

    fn lsas_of_type(&self, node: usize, ls_type: LsType) -> usize {
        self.nodes[node]
            .lsdbs()
            .flat_map(|(_, db)| db.iter())
            .filter(|(k, _)| k.ls_type == ls_type)
            .count()
    }
}

fn summary_metric(lsa: Option<&Lsa>) -> Option<u32> {
    match &lsa?.body {
        LsaBody::Summary(s) => Some(s.metric),
        _ => None,
    }
}

fn stub_settings(no_summary: bool) -> AreaSettings {
    AreaSettings {
        stub: true,
        no_summary,
        default_cost: 5,
        ranges: vec![],
    }
}

/// Node 0 in area 0, node 1 the border router, node 2 in area 1.
fn abr_lab(area1: Option<AreaSettings>) -> Lab {
    let areas: Vec<_> = area1.map(|s| (AREA1, s)).into_iter().collect();
    Lab::with_areas(3, &[(0, 1, 10, BACKBONE), (1, 2, 10, AREA1)], &areas)
}

#[test]
fn abr_summarizes_each_area_into_the_other_and_routers_route_through_it() {
    let mut lab = abr_lab(None);
    lab.run_until(Duration::from_secs(5), Lab::all_full);
    lab.run_until(Duration::from_secs(3), |l| {
        l.route(2, "10.1.0.0/24").is_some() && l.route(0, "10.3.0.0/24").is_some()
    });
    // Inter-area both ways, through the ABR: 10 + 10 + the stub's 1.
    for (node, prefix, cost) in [
        (2, "10.1.0.0/24", 21),
        (2, "10.255.0.1/32", 20),
        (0, "10.3.0.0/24", 21),
        (0, "10.255.0.3/32", 20),
    ] {
        let r = lab.route(node, prefix).unwrap();
        assert_eq!(
            (r.path_type, r.cost),
            (PathType::InterArea, cost),
            "{prefix}"
        );
        assert_eq!(lab.hops(node, prefix), vec![1]);
    }
    // The ABR's own networks are intra-area in both areas (its stubs are in both).
    let r = lab.route(2, "10.2.0.0/24").unwrap();
    assert_eq!((r.path_type, r.cost), (PathType::IntraArea, 11));
    // What the ABR originated: area 0's routes into area 1 and the other way round,
    // nothing of an area back into itself, B set in both router-LSAs.
    let a0 = Scope::Area(BACKBONE);
    let a1 = Scope::Area(AREA1);
    let net3 = LsType::SummaryNetwork;
    assert_eq!(
        summary_metric(lab.lsa_in(2, a1, net3, "10.1.0.0", 2)),
        Some(11)
    );
    assert_eq!(
        summary_metric(lab.lsa_in(0, a0, net3, "10.3.0.0", 2)),
        Some(11)
    );
    assert_eq!(lab.lsa_in(1, a1, net3, "10.3.0.0", 2), None);
    assert_eq!(lab.lsa_in(1, a0, net3, "10.1.0.0", 2), None);
    assert_eq!(
        lab.lsa_in(1, a0, net3, "10.2.0.0", 2),
        None,
        "own stubs are in both"
    );
    for scope in [a0, a1] {
        match &lab
            .lsa_in(1, scope, LsType::Router, "10.255.0.2", 2)
            .unwrap()
            .body
        {
            LsaBody::Router(r) => assert_eq!(r.flags & FLAG_B, FLAG_B),
            _ => unreachable!(),
        }
    }
    // The routers beside it hold one area each; the area-1 router never sees area 0's
    // router-LSAs.
    assert_eq!(lab.nodes[2].areas().count(), 1);
    assert!(lab.lsa_in(2, a1, LsType::Router, "10.255.0.1", 1).is_none());
    assert!(lab.nodes[1].is_abr() && !lab.nodes[0].is_abr());
    // Every summary-LSA in an area is the same on both ends of its link.
    let digest = |node: usize, scope: Scope| -> Vec<(LsaKey, i32)> {
        lab.nodes[node]
            .lsdb(scope)
            .unwrap()
            .iter()
            .map(|(k, e)| (*k, e.lsa.header.seq))
            .collect()
    };
    assert_eq!(digest(1, a1), digest(2, a1));
    assert_eq!(digest(1, a0), digest(0, a0));
}

#[test]
fn a_summary_is_flushed_when_its_route_goes() {
    let mut lab = abr_lab(None);
    lab.run_until(Duration::from_secs(5), |l| {
        l.route(2, "10.1.0.0/24").is_some()
    });
    // Node 0 stops advertising its LAN: the route goes in area 1 too, and the summary
    // leaves every database.
    lab.cfgs[0].stubs.retain(|(p, _)| p.prefix() == 32);
    lab.reconfigure(0);
    let took = lab.run_until(Duration::from_secs(3), |l| {
        l.route(2, "10.1.0.0/24").is_none()
    });
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(lab.route(2, "10.255.0.1/32").is_some());
    lab.run_until(Duration::from_secs(5), |l| {
        (1..3).all(|n| {
            l.nodes[n]
                .lsdb(Scope::Area(AREA1))
                .unwrap()
                .iter()
                .all(|(k, _)| k.id != Ipv4Addr::new(10, 1, 0, 0))
        })
    });
    assert!(lab.nodes[1].counters()["lsa_flushed"] >= 1);
    // The whole area 0 goes away behind a cut: the ABR's summaries of it go too.
    lab.cut(0);
    lab.run_until(Duration::from_secs(3), |l| {
        l.route(2, "10.255.0.1/32").is_none()
    });
}

#[test]
fn externals_reach_another_area_through_an_asbr_summary() {
    let mut lab = abr_lab(None);
    lab.cfgs[0].externals = vec![External {
        prefix: net("192.168.50.0/24"),
        metric: 20,
        e2: true,
    }];
    lab.reconfigure(0);
    lab.run_until(Duration::from_secs(5), |l| {
        l.route(2, "192.168.50.0/24").is_some()
    });
    let r = lab.route(2, "192.168.50.0/24").unwrap();
    assert_eq!(
        (r.path_type, r.cost, r.cost2),
        (PathType::External2, 20, 20)
    );
    assert_eq!(lab.hops(2, "192.168.50.0/24"), vec![1]);
    // Type 4 for the ASBR into area 1 (not into area 0, where it is intra-area); the
    // type-5 is one LSA of AS scope, the same in all three routers.
    let a1 = Scope::Area(AREA1);
    assert_eq!(
        summary_metric(lab.lsa_in(2, a1, LsType::SummaryAsbr, "10.255.0.1", 2)),
        Some(10)
    );
    assert!(lab
        .lsa_in(
            1,
            Scope::Area(BACKBONE),
            LsType::SummaryAsbr,
            "10.255.0.1",
            2
        )
        .is_none());
    for n in 0..3 {
        assert!(lab
            .lsa_in(n, Scope::As, LsType::AsExternal, "192.168.50.0", 1)
            .is_some());
    }
}

#[test]
fn a_stub_area_gets_a_default_summary_and_no_externals() {
    let mut lab = abr_lab(Some(stub_settings(false)));
    lab.cfgs[0].externals = vec![External {
        prefix: net("192.168.50.0/24"),
        metric: 20,
        e2: true,
    }];
    lab.reconfigure(0);
    lab.run_until(Duration::from_secs(5), |l| {
        l.route(2, "0.0.0.0/0").is_some()
            && l.route(2, "10.1.0.0/24").is_some()
            && l.route(0, "192.168.50.0/24").is_none()
            && l.route(1, "10.255.0.1/32").is_some()
    });
    for _ in 0..100 {
        lab.step(Duration::from_millis(10));
    }
    let d = lab.route(2, "0.0.0.0/0").unwrap();
    assert_eq!((d.path_type, d.cost), (PathType::InterArea, 15));
    assert_eq!(
        lab.route(2, "10.1.0.0/24").unwrap().path_type,
        PathType::InterArea
    );
    // No type 5 and no type 4 in the stub area; the ABR has the external all the same.
    assert!(lab.route(2, "192.168.50.0/24").is_none());
    assert_eq!(lab.lsas_of_type(2, LsType::AsExternal), 0);
    assert_eq!(lab.lsas_of_type(2, LsType::SummaryAsbr), 0);
    assert!(lab.route(1, "192.168.50.0/24").is_some());
    // Packets and LSAs in the stub area have E clear.
    let e = lab
        .lsa_in(2, Scope::Area(AREA1), LsType::Router, "10.255.0.3", 3)
        .unwrap();
    assert_eq!(e.header.options & OPT_E, 0);
    assert!(!lab.nodes[2].counters().contains_key("options_mismatch"));
}

#[test]
fn a_totally_stubby_area_gets_only_the_default() {
    let mut lab = abr_lab(Some(stub_settings(true)));
    lab.run_until(Duration::from_secs(5), |l| {
        l.route(2, "0.0.0.0/0").is_some()
    });
    for _ in 0..100 {
        lab.step(Duration::from_millis(10));
    }
    assert_eq!(lab.lsas_of_type(2, LsType::SummaryNetwork), 1);
    assert!(lab.route(2, "10.1.0.0/24").is_none());
    assert!(
        lab.route(0, "10.3.0.0/24").is_some(),
        "area 1 still goes into area 0"
    );
}

#[test]
fn stub_on_one_end_only_is_a_hello_mismatch_and_counted() {
    let mut lab = abr_lab(None);
    lab.cfgs[1].areas.insert(AREA1, stub_settings(false));
    lab.nodes[1] = Instance::new(lab.cfgs[1].clone(), lab.now);
    lab.run_until(Duration::from_secs(3), |l| {
        l.nodes[1]
            .counters()
            .get("options_mismatch")
            .is_some_and(|&n| n >= 2)
            && l.nodes[2]
                .counters()
                .get("options_mismatch")
                .is_some_and(|&n| n >= 2)
    });
    assert!(lab.nodes[2].neighbors().is_empty());
    assert_eq!(lab.nodes[1].neighbors().len(), 1, "area 0 is fine");
    // An area id that differs is counted as such.
    lab.cfgs[2].interfaces[0].area = AREA2;
    lab.reconfigure(2);
    lab.run_until(Duration::from_secs(3), |l| {
        l.nodes[1]
            .counters()
            .get("wrong_area")
            .is_some_and(|&n| n >= 2)
    });
    assert!(lab.nodes[2].neighbors().is_empty());
}

#[test]
fn summaries_learned_outside_the_backbone_are_not_readvertised() {
    // 0 (area 0) - 1 (ABR 0/1) - 2 (border of 1/2, no backbone) - 3 (area 2).
    let mut lab = Lab::with_areas(
        4,
        &[(0, 1, 10, BACKBONE), (1, 2, 10, AREA1), (2, 3, 10, AREA2)],
        &[],
    );
    lab.run_until(Duration::from_secs(5), |l| {
        l.route(3, "10.2.0.0/24").is_some() && l.route(2, "10.1.0.0/24").is_some()
    });
    for _ in 0..200 {
        lab.step(Duration::from_millis(10));
    }
    // Node 2 learns area 0 over area 1 (it has no backbone) but passes on only area 1's
    // own routes; node 1, on the backbone, ignores summaries from area 1.
    assert_eq!(
        lab.route(3, "10.2.0.0/24").unwrap().path_type,
        PathType::InterArea
    );
    assert!(lab.route(3, "10.1.0.0/24").is_none());
    assert!(lab.route(3, "10.255.0.1/32").is_none());
    assert!(lab.route(1, "10.4.0.0/24").is_none());
    assert!(lab.route(0, "10.4.0.0/24").is_none());
    assert!(
        lab.lsa_in(1, Scope::Area(AREA1), LsType::SummaryNetwork, "10.4.0.0", 3)
            .is_some(),
        "node 2 did summarize area 2 into area 1"
    );
}

#[test]
fn an_area_range_goes_out_as_one_summary_at_the_largest_cost() {
    // Area 1 (node 2's LAN 10.3.0.0/24 and id 10.255.0.3/32, the ABR's own stubs) is
    // summarized into the backbone as 10.0.0.0/8 alone.
    let range = AreaSettings {
        ranges: vec![net("10.0.0.0/8")],
        ..AreaSettings::default()
    };
    let mut lab = abr_lab(Some(range));
    lab.run_until(Duration::from_secs(5), |l| {
        l.route(0, "10.0.0.0/8").is_some()
    });
    for _ in 0..100 {
        lab.step(Duration::from_millis(10));
    }
    let r = lab.route(0, "10.0.0.0/8").unwrap();
    assert_eq!((r.path_type, r.cost), (PathType::InterArea, 21));
    assert!(lab.route(0, "10.3.0.0/24").is_none());
    assert!(lab.route(0, "10.255.0.3/32").is_none());
    assert_eq!(lab.lsas_of_type(0, LsType::SummaryNetwork), 1);
    // Area 0's routes still go into area 1 one by one (the range is area 1's).
    assert!(lab.route(2, "10.1.0.0/24").is_some());
    // A range change is no area restart: the adjacencies stay, the summaries follow.
    let changes = lab.changes.len();
    for c in &mut lab.cfgs[1..2] {
        c.areas.clear();
    }
    lab.reconfigure(1);
    lab.run_until(Duration::from_secs(3), |l| {
        l.route(0, "10.3.0.0/24").is_some() && l.route(0, "10.0.0.0/8").is_none()
    });
    assert_eq!(lab.changes.len(), changes, "no neighbor changed state");
}
