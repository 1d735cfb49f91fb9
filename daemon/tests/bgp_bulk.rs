//! A full table's worth of routes over one BGP session across a tunnel: two in-process
//! routers joined by a WireGuard tunnel over loopback UDP (a /31), eBGP on the userspace
//! TCP stack. r1 originates many /24s; the UPDATEs fill the receiver's TCP window again
//! and again while r2 works through them, which is where a userspace TCP stalls if its
//! zero-window handling is wrong (smoltcp 0.13.1 did with scaled windows; see
//! docs/bgp.md, Transport). Checks: every route arrives, in r2's Adj-RIB-In and FIB,
//! and is withdrawn again when r1 stops announcing it; the session never drops.

use ipnetwork::IpNetwork;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wgrd::config::{BgpNeighborConfig, Config};
use wgrd::keys::PrivateKey;
use wgrd::router::Router;
use wgrd::routing::bgp::fsm::State;
use wgrd::routing::bgp::io::{self as bgp, BgpHandle};

mod common;

/// Routes r1 originates: enough for the transfer to take many windows.
const ROUTES: u32 = 40_000;
/// Generous: a debug build on two loaded cores.
const WAIT: Duration = Duration::from_secs(180);

fn id(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 255, 9, n)
}

/// The i-th /24 of 10.0.0.0/8 (10.a.b.0/24).
fn prefix(i: u32) -> IpNetwork {
    let [_, _, a, b] = i.to_be_bytes();
    format!("10.{a}.{b}.0/24").parse().unwrap()
}

fn config(n: u8, key: &PrivateKey, peer: &PrivateKey, endpoint: Option<SocketAddr>) -> Config {
    let mut neighbor = BgpNeighborConfig::new(if n == 1 { 65002 } else { 65001 });
    neighbor.tunnel = Some("to-peer".into());
    neighbor.import = Some("all".into());
    neighbor.export = Some("all".into());
    let mut c = common::loopback_router(id(n), key);
    let addr = format!("169.254.72.{}/31", n - 1);
    c.tunnels = vec![common::loopback_tunnel("to-peer", peer, endpoint, &addr)];
    let mut bgp = common::bgp(65000 + u32::from(n), id(n), &[]);
    if n == 1 {
        bgp.networks = (0..ROUTES).map(prefix).collect();
    }
    bgp.neighbors = vec![neighbor];
    c.bgp = Some(bgp);
    c.policies = vec![common::accept_all()];
    c
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// (state, prefixes received, times Established) of the one neighbor, once the speaker
/// shows it.
fn session(h: &BgpHandle) -> Option<(State, usize, u32)> {
    let s = h.status();
    let n = s.neighbors.first()?;
    Some((n.state, n.prefixes_received, n.established_transitions))
}

fn routed(router: &Router, i: u32) -> bool {
    let IpNetwork::V4(p) = prefix(i) else {
        unreachable!()
    };
    let dst = IpAddr::V4(Ipv4Addr::from(u32::from(p.network()) + 1));
    router.lookup(dst).is_some_and(|l| l.prefix == prefix(i))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_thousand_routes_cross_a_tunnel_session_and_are_withdrawn() {
    let (k1, k2) = (PrivateKey::generate(), PrivateKey::generate());
    let r2 = Arc::new(Router::start(config(2, &k2, &k1, None)).await.unwrap());
    let r2_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r2.local_ports()[0]).into();
    let r1 = Arc::new(
        Router::start(config(1, &k1, &k2, Some(r2_addr)))
            .await
            .unwrap(),
    );
    let b2 = bgp::spawn(Arc::clone(&r2));
    let b1 = bgp::spawn(Arc::clone(&r1));

    let up = wait_for("the session", || {
        session(&b2).is_some_and(|s| s.0 == State::Established)
    })
    .await;
    let transfer = wait_for("every route in r2's Adj-RIB-In", || {
        session(&b2).is_some_and(|s| s.1 == ROUTES as usize)
    })
    .await;
    let fib = wait_for("every route in r2's FIB", || {
        (0..ROUTES).step_by(997).all(|i| routed(&r2, i)) && routed(&r2, ROUTES - 1)
    })
    .await;
    println!(
        "{ROUTES} routes: session up {up:?}, in r2's Adj-RIB-In {transfer:?} later, \
         in its FIB {fib:?} after that"
    );
    let established = session(&b2).unwrap().2;
    assert_eq!(established, 1, "the session dropped during the transfer");

    // r1 stops announcing them all: r2 withdraws them all, on the same session.
    let mut c1 = r1.config().await;
    c1.bgp.as_mut().unwrap().networks.clear();
    r1.apply(c1).await.unwrap();
    let withdrawn = wait_for("every route gone from r2", || {
        session(&b2).is_some_and(|s| s.1 == 0) && !routed(&r2, 0) && !routed(&r2, ROUTES - 1)
    })
    .await;
    println!("withdrawn from r2 {withdrawn:?} after the apply");
    assert_eq!(session(&b2), Some((State::Established, 0, 1)));

    b1.shutdown().await;
    b2.shutdown().await;
}
