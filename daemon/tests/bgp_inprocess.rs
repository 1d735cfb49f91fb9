//! In-process BGP lab: three routers in one test process, in a triangle of WireGuard
//! tunnels over loopback UDP, each running its BGP speaker over the userspace TCP stack.
//! No root, no TUN: pings enter through the router's local-send path.
//!
//! The three tunnels use the three addressings a tunnel session must work on: IPv4 /31
//! (r1-r2), IPv6 /127 (r2-r3) and IPv6 link-local (r1-r3). Checks: every session reaches
//! Established, each router learns the others' networks (IPv4 and IPv6) by the shortest
//! AS path, an import policy rejects what it should, routes announced over the API
//! propagate and are withdrawn, and when the direct r1-r3 tunnel goes silent, r1 reroutes
//! to r3 through r2 (liveness, not the hold timer).

use ipnetwork::IpNetwork;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wgrd::config::{
    BgpNeighborConfig, Community, Config, PolicyAction, PolicyConfig, PolicyMatch, PolicyRule,
    PolicySet, PrefixListEntry,
};
use wgrd::keys::PrivateKey;
use wgrd::router::Router;
use wgrd::routing::bgp::attr::PathAttrs;
use wgrd::routing::bgp::fsm::State;
use wgrd::routing::bgp::io::{self as bgp, BgpHandle, FastFailover, Table};

mod common;

const WAIT: Duration = Duration::from_secs(20);

fn id(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 255, 4, n)
}

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

fn router_config(n: u8, key: &PrivateKey) -> Config {
    let mut c = common::loopback_router(id(n), key);
    let v6 = format!("2001:db8:{n}::/48");
    c.bgp = Some(common::bgp(
        65000 + u32::from(n),
        id(n),
        &[&format!("{}/32", id(n)), &v6],
    ));
    c.policies = vec![
        common::accept_all(),
        // Refuses 198.51.100.0/22 more specifics tagged 65000:666, accepts the rest.
        PolicyConfig {
            name: "no-tagged".into(),
            default: PolicyAction::Accept,
            rules: vec![PolicyRule {
                matches: PolicyMatch {
                    community: vec![Community(65000 << 16 | 666)],
                    prefix_list: vec![PrefixListEntry {
                        prefix: net("198.51.100.0/22"),
                        ge: Some(24),
                        le: Some(24),
                    }],
                    ..Default::default()
                },
                set: PolicySet::default(),
                action: Some(PolicyAction::Reject),
            }],
        },
    ];
    c
}

use common::loopback_tunnel as tunnel;

fn neighbor(
    tunnel: &str,
    remote_as: u32,
    address: Option<&str>,
    import: &str,
) -> BgpNeighborConfig {
    let mut n = BgpNeighborConfig::new(remote_as);
    n.tunnel = Some(tunnel.into());
    n.address = address.map(|a| a.parse().unwrap());
    n.import = Some(import.into());
    n.export = Some("all".into());
    n
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn established(h: &BgpHandle) -> usize {
    h.status()
        .neighbors
        .iter()
        .filter(|n| n.state == State::Established)
        .count()
}

fn via(router: &Router, dst: IpAddr) -> Option<String> {
    router
        .lookup(dst)
        .filter(|l| l.prefix.prefix() > 0)
        .map(|l| l.next_hop.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triangle_peers_on_v4_v6_and_link_local_learns_filters_and_reroutes() {
    let keys: Vec<PrivateKey> = (0..3).map(|_| PrivateKey::generate()).collect();
    let started = Instant::now();

    let mut c1 = router_config(1, &keys[0]);
    c1.tunnels = vec![
        tunnel("to-r2", &keys[1], None, "169.254.12.0/31"),
        tunnel("to-r3", &keys[2], None, "fe80::13:1/64"),
    ];
    c1.bgp.as_mut().unwrap().neighbors = vec![
        neighbor("to-r2", 65002, None, "all"),
        neighbor("to-r3", 65003, Some("fe80::13:3"), "no-tagged"),
    ];
    let r1 = Arc::new(Router::start(c1).await.unwrap());
    let r1_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r1.local_ports()[0]).into();

    let mut c2 = router_config(2, &keys[1]);
    c2.tunnels = vec![
        tunnel("to-r1", &keys[0], Some(r1_addr), "169.254.12.1/31"),
        tunnel("to-r3", &keys[2], None, "fd00:23::/127"),
    ];
    c2.bgp.as_mut().unwrap().neighbors = vec![
        neighbor("to-r1", 65001, None, "all"),
        neighbor("to-r3", 65003, None, "all"),
    ];
    let r2 = Arc::new(Router::start(c2).await.unwrap());
    let r2_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r2.local_ports()[0]).into();

    let mut c3 = router_config(3, &keys[2]);
    c3.tunnels = vec![
        tunnel("to-r1", &keys[0], Some(r1_addr), "fe80::13:3/64"),
        tunnel("to-r2", &keys[1], Some(r2_addr), "fd00:23::1/127"),
    ];
    c3.bgp.as_mut().unwrap().neighbors = vec![
        neighbor("to-r1", 65001, Some("fe80::13:1"), "all"),
        neighbor("to-r2", 65002, None, "all"),
    ];
    let r3 = Arc::new(Router::start(c3.clone()).await.unwrap());

    let b1 = bgp::spawn(Arc::clone(&r1));
    let b2 = bgp::spawn(Arc::clone(&r2));
    let b3 = bgp::spawn(Arc::clone(&r3));

    let took = wait_for("all six sessions established", || {
        established(&b1) == 2 && established(&b2) == 2 && established(&b3) == 2
    })
    .await;
    eprintln!(
        "sessions established in {took:?} (since start {:?})",
        started.elapsed()
    );

    // Every router reaches the others' networks, IPv4 and IPv6, by the shortest AS path.
    // The r1-r2 session runs over IPv4 only, with no IPv6 address to be a next hop: r2's
    // IPv6 network reaches r1 through r3.
    wait_for("r1 routes to r2 and r3", || {
        via(&r1, id(2).into()).as_deref() == Some("to-r2")
            && via(&r1, id(3).into()).as_deref() == Some("to-r3")
            && via(&r1, "2001:db8:3::1".parse().unwrap()).as_deref() == Some("to-r3")
            && via(&r1, "2001:db8:2::1".parse().unwrap()).as_deref() == Some("to-r3")
    })
    .await;
    wait_for(
        "r3 routes to r1 (IPv4 over a link-local next hop) and r2",
        || {
            via(&r3, id(1).into()).as_deref() == Some("to-r1")
                && via(&r3, id(2).into()).as_deref() == Some("to-r2")
        },
    )
    .await;
    let loc = b1
        .client()
        .paths(Table::LocRib, Some(net("10.255.4.3/32")))
        .await
        .unwrap();
    assert_eq!(
        loc.len(),
        2,
        "r1 knows r3's network directly and through r2: {loc:?}"
    );
    let best: Vec<_> = loc.iter().filter(|p| p.best).collect();
    assert_eq!(best.len(), 1);
    assert_eq!(best[0].attrs.as_path.as_ref().unwrap().decision_len(), 1);

    // Traffic crosses: r1 pings r3's router id and the reply comes back.
    let mut local1 = r1.take_local_packets().unwrap();
    assert!(
        common::ping_until(
            &r1,
            &mut local1,
            id(1),
            id(3),
            1,
            Duration::from_millis(200),
            WAIT
        )
        .await
        .is_some(),
        "r1 reaches r3 over BGP routes"
    );

    // Routes announced over the API propagate, with attributes; the import policy on
    // r1's r3 session rejects the tagged one, which r1 then only has through r2.
    let tagged = PathAttrs {
        communities: vec![65000 << 16 | 666],
        ..Default::default()
    };
    b3.client()
        .announce(net("198.51.100.0/24"), tagged)
        .await
        .unwrap();
    b3.client()
        .announce(net("192.0.2.0/24"), PathAttrs::default())
        .await
        .unwrap();
    wait_for("r1 learns the API routes", || {
        via(&r1, "192.0.2.1".parse().unwrap()).as_deref() == Some("to-r3")
            && via(&r1, "198.51.100.1".parse().unwrap()).as_deref() == Some("to-r2")
    })
    .await;
    let adj_in = b1
        .client()
        .paths(
            Table::AdjIn("fe80::13:3".parse().unwrap()),
            Some(net("198.51.100.0/24")),
        )
        .await
        .unwrap();
    assert!(adj_in.is_empty(), "rejected by import policy: {adj_in:?}");
    b3.client().withdraw(net("192.0.2.0/24")).await.unwrap();
    wait_for("the withdrawal reaches r1", || {
        via(&r1, "192.0.2.1".parse().unwrap()).is_none()
    })
    .await;
    assert!(
        b3.client().withdraw(net("192.0.2.0/24")).await.is_err(),
        "nothing to withdraw"
    );

    // Cut r1-r3 silently: r3 drops the tunnel; r1 hears nothing more on it and must move
    // r3's network to r2 on its own.
    // Fast failure detection needs the peer to have shown that it probes (a few
    // keepalives in a row): wait for that, as an operator would see in the status.
    let r1_to_r3 = Arc::clone(r1.path().tunnels.load().by_name("to-r3").unwrap());
    wait_for("liveness armed on r1's tunnel to r3", || {
        matches!(r1_to_r3.fast_failover(), FastFailover::Armed(_))
    })
    .await;
    wait_for("the status says fast failover is armed", || {
        b1.status().neighbors.iter().any(|n| {
            n.tunnel.as_deref() == Some("to-r3")
                && n.fast_failover == FastFailover::Armed(bgp::DEFAULT_LIVENESS)
        })
    })
    .await;
    let cut = Instant::now();
    let mut without = c3.clone();
    without.tunnels.retain(|t| t.name != "to-r1");
    without
        .bgp
        .as_mut()
        .unwrap()
        .neighbors
        .retain(|n| n.tunnel.as_deref() != Some("to-r1"));
    r3.apply(without).await.unwrap();
    let took = wait_for("r1 reroutes to r3 through r2", || {
        via(&r1, id(3).into()).as_deref() == Some("to-r2")
    })
    .await;
    eprintln!("reroute after a silent cut: {:?}", cut.elapsed());
    // Well before any BGP timer (hold 90 s): the tunnel's liveness did it.
    assert!(took < Duration::from_secs(5), "rerouted after {took:?}");
    assert!(
        common::ping_until(
            &r1,
            &mut local1,
            id(1),
            id(3),
            2,
            Duration::from_millis(200),
            WAIT
        )
        .await
        .is_some(),
        "r1 reaches r3 through r2"
    );
    // The status is published right after the routes move: wait for it, do not race it.
    let to_r3 = || {
        b1.status()
            .neighbors
            .into_iter()
            .find(|n| n.tunnel.as_deref() == Some("to-r3"))
            .unwrap()
    };
    wait_for("the session to r3 shown down", || {
        to_r3().state != State::Established
    })
    .await;
    assert_eq!(to_r3().last_error.as_deref(), Some("tunnel peer silent"));

    for b in [b1, b2, b3] {
        b.shutdown().await;
    }
    assert!(
        r1.rib_routes()
            .await
            .iter()
            .all(|r| !r.source.ends_with("bgp")),
        "shutdown withdraws BGP's routes"
    );
    for r in [r1, r2, r3] {
        r.shutdown().await;
    }
}

/// dn42 style: a hub whose every tunnel has the same link-local pair (fe80::1 here,
/// fe80::2 at each spoke). Both spokes are neighbor fe80::2, each on its own tunnel:
/// both sessions come up, each spoke's routes go to its own tunnel, the hub passes
/// each spoke's routes to the other, and the API tells the two apart by tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_link_local_address_on_two_tunnels_is_two_neighbors() {
    let keys: Vec<PrivateKey> = (0..3).map(|_| PrivateKey::generate()).collect();
    let mut c1 = router_config(1, &keys[0]);
    c1.tunnels = vec![
        tunnel("to-r2", &keys[1], None, "fe80::1/64"),
        tunnel("to-r3", &keys[2], None, "fe80::1/64"),
    ];
    c1.bgp.as_mut().unwrap().neighbors = vec![
        neighbor("to-r2", 65002, Some("fe80::2"), "all"),
        neighbor("to-r3", 65003, Some("fe80::2"), "all"),
    ];
    let r1 = Arc::new(Router::start(c1).await.unwrap());
    let r1_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r1.local_ports()[0]).into();
    let spoke = |n: u8| {
        let mut c = router_config(n, &keys[usize::from(n) - 1]);
        c.tunnels = vec![tunnel("to-r1", &keys[0], Some(r1_addr), "fe80::2/64")];
        c.bgp.as_mut().unwrap().neighbors = vec![neighbor("to-r1", 65001, Some("fe80::1"), "all")];
        c
    };
    let r2 = Arc::new(Router::start(spoke(2)).await.unwrap());
    let r3 = Arc::new(Router::start(spoke(3)).await.unwrap());
    let b1 = bgp::spawn(Arc::clone(&r1));
    let b2 = bgp::spawn(Arc::clone(&r2));
    let b3 = bgp::spawn(Arc::clone(&r3));

    wait_for("both sessions of the hub established", || {
        established(&b1) == 2 && established(&b2) == 1 && established(&b3) == 1
    })
    .await;
    wait_for(
        "each spoke's routes on its own tunnel, and across the hub",
        || {
            via(&r1, id(2).into()).as_deref() == Some("to-r2")
                && via(&r1, id(3).into()).as_deref() == Some("to-r3")
                && via(&r1, "2001:db8:2::1".parse().unwrap()).as_deref() == Some("to-r2")
                && via(&r1, "2001:db8:3::1".parse().unwrap()).as_deref() == Some("to-r3")
                && via(&r2, id(3).into()).as_deref() == Some("to-r1")
                && via(&r3, id(2).into()).as_deref() == Some("to-r1")
        },
    )
    .await;

    let status = b1.status();
    let fe80_2: IpAddr = "fe80::2".parse().unwrap();
    assert!(status.neighbors.iter().all(|n| n.address == fe80_2));
    let key_of = |tunnel: &str| {
        status
            .neighbors
            .iter()
            .find(|n| n.tunnel.as_deref() == Some(tunnel))
            .unwrap()
            .key
    };
    assert_ne!(key_of("to-r2"), key_of("to-r3"));
    // The bare address names neither; the key names one.
    let ambiguous = b1.client().paths(Table::AdjIn(fe80_2), None).await;
    assert_eq!(ambiguous, Err(bgp::BgpError::AmbiguousNeighbor(fe80_2)));
    let from_r3 = b1
        .client()
        .paths(Table::AdjIn(key_of("to-r3")), None)
        .await
        .unwrap();
    assert!(from_r3.iter().any(|p| p.prefix == net("10.255.4.3/32")));
    assert!(!from_r3.iter().any(|p| p.prefix == net("10.255.4.2/32")));

    // The pings cross: hub to each spoke.
    let mut local1 = r1.take_local_packets().unwrap();
    for n in [2, 3] {
        assert!(
            common::ping_until(
                &r1,
                &mut local1,
                id(1),
                id(n),
                u16::from(n),
                Duration::from_millis(200),
                WAIT
            )
            .await
            .is_some(),
            "r1 reaches r{n}"
        );
    }

    // Restarting one of them by key leaves the other alone.
    let before = status
        .neighbors
        .iter()
        .find(|n| n.tunnel.as_deref() == Some("to-r2"))
        .unwrap()
        .established_transitions;
    b1.client().restart(key_of("to-r3")).await.unwrap();
    wait_for("the restarted session back", || established(&b1) == 2).await;
    let after = b1.status();
    let r2_side = after
        .neighbors
        .iter()
        .find(|n| n.tunnel.as_deref() == Some("to-r2"))
        .unwrap();
    assert_eq!(
        r2_side.established_transitions, before,
        "to-r2 kept its session"
    );

    for b in [b1, b2, b3] {
        b.shutdown().await;
    }
    for r in [r1, r2, r3] {
        r.shutdown().await;
    }
}

/// A change of the global timers reaches running sessions: `hold-time` (negotiated in
/// the OPEN) restarts the sessions that use it and they come back with the new value;
/// `connect-retry` alone restarts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_hold_time_change_reaches_established_sessions() {
    let keys: Vec<PrivateKey> = (0..2).map(|_| PrivateKey::generate()).collect();
    let mut c1 = router_config(1, &keys[0]);
    c1.tunnels = vec![tunnel("to-r2", &keys[1], None, "169.254.12.0/31")];
    c1.bgp.as_mut().unwrap().neighbors = vec![neighbor("to-r2", 65002, None, "all")];
    let r1 = Arc::new(Router::start(c1.clone()).await.unwrap());
    let r1_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r1.local_ports()[0]).into();
    let mut c2 = router_config(2, &keys[1]);
    c2.tunnels = vec![tunnel("to-r1", &keys[0], Some(r1_addr), "169.254.12.1/31")];
    c2.bgp.as_mut().unwrap().neighbors = vec![neighbor("to-r1", 65001, None, "all")];
    let r2 = Arc::new(Router::start(c2).await.unwrap());
    let b1 = bgp::spawn(Arc::clone(&r1));
    let b2 = bgp::spawn(Arc::clone(&r2));
    let hold = |h: &BgpHandle| {
        let s = h.status();
        let n = &s.neighbors[0];
        (n.state == State::Established)
            .then(|| n.negotiated.as_ref().map(|g| g.hold_time))
            .flatten()
    };
    let transitions = |h: &BgpHandle| h.status().neighbors[0].established_transitions;
    wait_for("the session", || {
        established(&b1) == 1 && established(&b2) == 1
    })
    .await;
    let first = hold(&b1).unwrap();

    let mut retry = c1.clone();
    retry.bgp.as_mut().unwrap().connect_retry += 7;
    r1.apply(retry.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        transitions(&b1),
        1,
        "a connect-retry change restarts nothing"
    );
    assert_eq!(hold(&b1), Some(first));

    let mut shorter = retry;
    shorter.bgp.as_mut().unwrap().hold_time = 21;
    r1.apply(shorter).await.unwrap();
    wait_for("the session back with hold time 21", || {
        hold(&b1) == Some(21) && hold(&b2) == Some(21)
    })
    .await;

    for b in [b1, b2] {
        b.shutdown().await;
    }
    for r in [r1, r2] {
        r.shutdown().await;
    }
}
