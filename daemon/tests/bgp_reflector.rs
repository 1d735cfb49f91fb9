//! In-process BGP lab with a route reflector and multipath: four routers over loopback
//! tunnels, no root.
//!
//! ```text
//!            r1 (AS 65001, route reflector, max-paths 2)
//!           /  \        iBGP, r2 and r3 are its clients
//!         r2    r3      (AS 65001, next-hop-self toward r1)
//!           \  /        eBGP
//!            r4 (AS 65004, max-paths 2)
//! ```
//!
//! Checks: r4's network reaches r1 twice (through r2 and through r3, each reflected to the
//! other client with ORIGINATOR_ID and CLUSTER_LIST) and r1 installs both as an ECMP
//! set; r1's network reaches r4 over both eBGP sessions, again as ECMP; a withdrawal at
//! r4 propagates to every router; a route announced at r2 is reflected to r3 by r1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wgrd::config::{BgpNeighborConfig, Config};
use wgrd::keys::PrivateKey;
use wgrd::router::view::NextHopInfo;
use wgrd::router::Router;
use wgrd::routing::bgp::attr::PathAttrs;
use wgrd::routing::bgp::fsm::State;
use wgrd::routing::bgp::io::{self as bgp, BgpHandle, Table};

mod common;

const WAIT: Duration = Duration::from_secs(20);

fn id(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 255, 9, n)
}

fn router(n: u8, key: &PrivateKey, asn: u32) -> Config {
    let mut c = common::loopback_router(id(n), key);
    let mut b = common::bgp(asn, id(n), &[&format!("{}/32", id(n))]);
    b.max_paths = 2;
    c.bgp = Some(b);
    c.policies = vec![common::accept_all()];
    c
}

fn neighbor(tunnel: &str, remote_as: u32) -> BgpNeighborConfig {
    let mut n = BgpNeighborConfig::new(remote_as);
    n.tunnel = Some(tunnel.into());
    n.import = Some("all".into());
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

fn via(r: &Router, dst: Ipv4Addr) -> Option<NextHopInfo> {
    r.lookup(IpAddr::V4(dst)).map(|l| l.next_hop)
}

fn tunnels(names: &[&str]) -> Option<NextHopInfo> {
    Some(NextHopInfo::Tunnels(
        names.iter().map(|n| n.to_string()).collect(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_with_two_clients_and_ecmp_both_ways() {
    let keys: Vec<PrivateKey> = (0..4).map(|_| PrivateKey::generate()).collect();
    let t = common::loopback_tunnel;

    let mut c1 = router(1, &keys[0], 65001);
    c1.tunnels = vec![
        t("to-r2", &keys[1], None, "169.254.12.0/31"),
        t("to-r3", &keys[2], None, "169.254.13.0/31"),
    ];
    let clients = ["to-r2", "to-r3"].map(|name| {
        let mut n = neighbor(name, 65001);
        n.route_reflector_client = true;
        // The clients only know their own tunnels: reflected routes get r1 as next hop
        // (as in the hub-spoke lab).
        n.next_hop_self = true;
        n
    });
    c1.bgp.as_mut().unwrap().neighbors = clients.to_vec();
    let r1 = Arc::new(Router::start(c1).await.unwrap());
    let r1_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r1.local_ports()[0]).into();

    let mut c4 = router(4, &keys[3], 65004);
    c4.tunnels = vec![
        t("to-r2", &keys[1], None, "169.254.24.1/31"),
        t("to-r3", &keys[2], None, "169.254.34.1/31"),
    ];
    c4.bgp.as_mut().unwrap().neighbors = vec![neighbor("to-r2", 65001), neighbor("to-r3", 65001)];
    let r4 = Arc::new(Router::start(c4).await.unwrap());
    let r4_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r4.local_ports()[0]).into();

    let client = |n: u8, key: &PrivateKey| {
        let mut c = router(n, key, 65001);
        c.tunnels = vec![
            t(
                "to-r1",
                &keys[0],
                Some(r1_addr),
                &format!("169.254.1{n}.1/31"),
            ),
            t(
                "to-r4",
                &keys[3],
                Some(r4_addr),
                &format!("169.254.{n}4.0/31"),
            ),
        ];
        let mut up = neighbor("to-r1", 65001);
        // r1 only knows its own tunnels: what r2/r3 learned from r4 goes up with them as
        // the next hop.
        up.next_hop_self = true;
        c.bgp.as_mut().unwrap().neighbors = vec![up, neighbor("to-r4", 65004)];
        c
    };
    let r2 = Arc::new(Router::start(client(2, &keys[1])).await.unwrap());
    let r3 = Arc::new(Router::start(client(3, &keys[2])).await.unwrap());

    let b: Vec<BgpHandle> = [&r1, &r2, &r3, &r4]
        .iter()
        .map(|r| bgp::spawn(Arc::clone(r)))
        .collect();
    let took = wait_for("all eight sessions established", || {
        b.iter().all(|h| established(h) == 2)
    })
    .await;
    eprintln!("sessions established in {took:?}");

    // Multipath at the reflector: r4's network through both clients.
    let took = wait_for("r1 reaches r4 over both clients", || {
        via(&r1, id(4)) == tunnels(&["to-r2", "to-r3"])
    })
    .await;
    eprintln!("r1 has the ECMP route {took:?} after the sessions");
    // And at r4: r1's network over both eBGP sessions.
    wait_for("r4 reaches r1 over both sessions", || {
        via(&r4, id(1)) == tunnels(&["to-r2", "to-r3"])
    })
    .await;
    // Reflection between the clients: r2 has r3's network (r1 reflects it; r2 also has
    // it through r4, one AS longer), and r2's best is the reflected one.
    wait_for("r2 reaches r3's network through r1", || {
        via(&r2, id(3)) == tunnels(&["to-r1"])
    })
    .await;
    let reflected = b[1]
        .client()
        .paths(
            Table::AdjIn(IpAddr::V4(Ipv4Addr::new(169, 254, 12, 0))),
            Some(format!("{}/32", id(3)).parse().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(reflected.len(), 1, "{reflected:?}");
    let attrs = &reflected[0].attrs;
    assert_eq!(
        attrs.originator_id,
        Some(id(3)),
        "ORIGINATOR_ID is r3: {attrs:?}"
    );
    assert_eq!(
        attrs.cluster_list,
        vec![id(1)],
        "CLUSTER_LIST is r1's id: {attrs:?}"
    );

    // A route announced at r4 reaches r1 (through both clients), then a withdrawal
    // reaches everybody.
    let prefix = "192.0.2.0/24".parse().unwrap();
    b[3].client()
        .announce(prefix, PathAttrs::default())
        .await
        .unwrap();
    let probe = Ipv4Addr::new(192, 0, 2, 1);
    wait_for("the announcement reaches r1", || {
        via(&r1, probe) == tunnels(&["to-r2", "to-r3"])
    })
    .await;
    let withdrawn = Instant::now();
    b[3].client().withdraw(prefix).await.unwrap();
    wait_for("the withdrawal reaches r1, r2 and r3", || {
        [&r1, &r2, &r3].iter().all(|r| via(r, probe).is_none())
    })
    .await;
    eprintln!("withdrawal propagated in {:?}", withdrawn.elapsed());

    for h in b {
        h.shutdown().await;
    }
    for r in [r1, r2, r3, r4] {
        r.shutdown().await;
    }
}
