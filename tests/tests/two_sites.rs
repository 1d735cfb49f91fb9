//! End-to-end data-plane tests with real TUN devices in network namespaces:
//! two sites joined by wgrd, wgrd against wireguard-go in both who-initiates
//! directions, and a hub carrying spoke-to-spoke traffic between its tunnels.
//!
//! Layouts: `wgrd_tests::topo`. Each router's kernel sends the remote LANs to the
//! daemon's TUN `wgrd0` (explicit `ip route`, except in the export-routes test), and the
//! daemon picks the tunnel from its own FIB (static routes below). Namespace tests: set
//! WGRD_NETNS_TESTS=1 and run as root (see README.md).

use anyhow::{bail, Result};
use std::time::Duration;
use wgrd_tests::wait_until;
use wgrd_tests::{
    iperf, netns_test, ping, topo, wait_ping, Keypair, Lab, WgGo, WgGoConf, WgPeer, Wgrd, WgrdConf,
    WgrdTunnel,
};

const HANDSHAKE_WAIT: Duration = Duration::from_secs(15);

/// Ping both ways (the first direction waits for the handshake), then a 2 s TCP
/// transfer A -> B.
fn lan_to_lan(
    lab: &Lab,
    first: (&str, &str),
    second: (&str, &str),
    tcp: (&str, &str, &str),
) -> Result<()> {
    wait_ping(lab.ns(first.0), first.1, HANDSHAKE_WAIT)?;
    ping(lab.ns(first.0), first.1, 3)?;
    wait_ping(lab.ns(second.0), second.1, HANDSHAKE_WAIT)?;
    ping(lab.ns(second.0), second.1, 3)?;
    let r = iperf(lab.ns(tcp.0), lab.ns(tcp.1), tcp.2, 2)?;
    println!("TCP {} -> {}: {:.3} Gbit/s", tcp.0, tcp.1, r.gbps());
    Ok(())
}

#[test]
fn wgrd_to_wgrd_lan_to_lan() -> Result<()> {
    let Some(_t) = netns_test("wgrd_to_wgrd_lan_to_lan", &["wg", "iperf3"]) else {
        return Ok(());
    };
    let lab = topo::two_sites()?;
    let (ka, kb) = (Keypair::generate()?, Keypair::generate()?);
    let ra = Wgrd::start(
        lab.ns("rA"),
        &WgrdConf::new("10.255.0.1", &ka)
            .tunnel(
                WgrdTunnel::new("to-rB", &kb.public, Some("192.168.77.2:51820"))
                    .addresses(&["169.254.0.0/31"])
                    .keepalive(25),
            )
            .route("10.2.0.0/24", "to-rB")
            .route("10.1.0.0/24", "host"),
    )?;
    let rb = Wgrd::start(
        lab.ns("rB"),
        &WgrdConf::new("10.255.0.2", &kb)
            .tunnel(
                WgrdTunnel::new("to-rA", &ka.public, Some("192.168.77.1:51820"))
                    .addresses(&["169.254.0.1/31"])
                    .keepalive(25),
            )
            .route("10.1.0.0/24", "to-rA")
            .route("10.2.0.0/24", "host"),
    )?;
    lab.route("rA", "10.2.0.0/24 dev wgrd0")?;
    lab.route("rB", "10.1.0.0/24 dev wgrd0")?;
    lan_to_lan(
        &lab,
        ("lanA", "10.2.0.2"),
        ("lanB", "10.1.0.2"),
        ("lanA", "lanB", "10.2.0.2"),
    )?;
    ra.stop()?;
    rb.stop()?;
    Ok(())
}

/// wgrd on rA, wireguard-go on rB. `wgrd_dials`: wgrd has the endpoint and wireguard-go
/// waits; otherwise the reverse (wgrd learns the endpoint from the first handshake).
fn wgrd_and_wireguard_go(name: &str, wgrd_dials: bool) -> Result<()> {
    let Some(_t) = netns_test(name, &["wireguard-go", "wg", "iperf3"]) else {
        return Ok(());
    };
    let lab = topo::two_sites()?;
    let (ka, kb) = (Keypair::generate()?, Keypair::generate()?);
    let wgrd_endpoint = wgrd_dials.then_some("192.168.77.2:51820");
    let wggo_endpoint = (!wgrd_dials).then_some("192.168.77.1:51820");
    let ra = Wgrd::start(
        lab.ns("rA"),
        &WgrdConf::new("10.255.0.1", &ka)
            .tunnel(
                WgrdTunnel::new("to-rB", &kb.public, wgrd_endpoint).addresses(&["169.254.0.0/31"]),
            )
            .route("10.2.0.0/24", "to-rB")
            .route("10.1.0.0/24", "host"),
    )?;
    let wg = WgGo::start(
        lab.ns("rB"),
        &WgGoConf {
            interface: "wg0".into(),
            key: kb.clone(),
            listen_port: 51820,
            addresses: vec!["169.254.0.1/31".into()],
            peers: vec![WgPeer::any(&ka.public, wggo_endpoint)],
            mtu: 1420,
        },
    )?;
    lab.route("rA", "10.2.0.0/24 dev wgrd0")?;
    lab.route("rB", "10.1.0.0/24 dev wg0")?;
    // The dialing side sends first; the other side can only answer once it has
    // learned the endpoint from the handshake.
    if wgrd_dials {
        lan_to_lan(
            &lab,
            ("lanA", "10.2.0.2"),
            ("lanB", "10.1.0.2"),
            ("lanA", "lanB", "10.2.0.2"),
        )?;
    } else {
        lan_to_lan(
            &lab,
            ("lanB", "10.1.0.2"),
            ("lanA", "10.2.0.2"),
            ("lanB", "lanA", "10.1.0.2"),
        )?;
    }
    wg.wait_handshake(&ka.public, Duration::from_secs(1))?;
    ra.stop()?;
    Ok(())
}

#[test]
fn wgrd_dials_wireguard_go() -> Result<()> {
    wgrd_and_wireguard_go("wgrd_dials_wireguard_go", true)
}

#[test]
fn wireguard_go_dials_wgrd() -> Result<()> {
    wgrd_and_wireguard_go("wireguard_go_dials_wgrd", false)
}

/// Three wgrd: the hub (rH, with its own LAN) has no endpoints and waits for the spokes;
/// each spoke peers only with the hub. Spoke-to-spoke traffic crosses the hub from
/// tunnel to tunnel (the spokes have no underlay path to each other at all).
#[test]
fn hub_and_spoke_transit() -> Result<()> {
    let Some(_t) = netns_test("hub_and_spoke_transit", &["wg", "iperf3"]) else {
        return Ok(());
    };
    let lab = topo::hub_spoke()?;
    let (ka, kb, kh) = (
        Keypair::generate()?,
        Keypair::generate()?,
        Keypair::generate()?,
    );
    let hub = Wgrd::start(
        lab.ns("rH"),
        &WgrdConf::new("10.255.0.3", &kh)
            .tunnel(WgrdTunnel::new("to-rA", &ka.public, None).addresses(&["169.254.1.0/31"]))
            .tunnel(WgrdTunnel::new("to-rB", &kb.public, None).addresses(&["169.254.2.0/31"]))
            .route("10.1.0.0/24", "to-rA")
            .route("10.2.0.0/24", "to-rB")
            .route("10.3.0.0/24", "host"),
    )?;
    let spoke = |ns: &str, rid: &str, key: &Keypair, hub_ep: &str, addr: &str, own_lan: &str| {
        Wgrd::start(
            lab.ns(ns),
            &WgrdConf::new(rid, key)
                .tunnel(
                    WgrdTunnel::new("to-hub", &kh.public, Some(hub_ep))
                        .addresses(&[addr])
                        .keepalive(5),
                )
                // Everything not local goes to the hub.
                .route("10.0.0.0/8", "to-hub")
                .route(own_lan, "host"),
        )
    };
    let sa = spoke(
        "rA",
        "10.255.0.1",
        &ka,
        "192.168.71.1:51820",
        "169.254.1.1/31",
        "10.1.0.0/24",
    )?;
    let sb = spoke(
        "rB",
        "10.255.0.2",
        &kb,
        "192.168.72.1:51820",
        "169.254.2.1/31",
        "10.2.0.0/24",
    )?;
    lab.route("rA", "10.2.0.0/24 dev wgrd0")?;
    lab.route("rA", "10.3.0.0/24 dev wgrd0")?;
    lab.route("rB", "10.1.0.0/24 dev wgrd0")?;
    lab.route("rB", "10.3.0.0/24 dev wgrd0")?;
    lab.route("rH", "10.1.0.0/24 dev wgrd0")?;
    lab.route("rH", "10.2.0.0/24 dev wgrd0")?;
    // Each spoke dials the hub first (the hub has no endpoints to send to before that).
    wait_ping(lab.ns("lanA"), "10.3.0.2", HANDSHAKE_WAIT)?;
    wait_ping(lab.ns("lanB"), "10.3.0.2", HANDSHAKE_WAIT)?;
    // Spoke to spoke, through the hub's tunnels only.
    lan_to_lan(
        &lab,
        ("lanA", "10.2.0.2"),
        ("lanB", "10.1.0.2"),
        ("lanA", "lanB", "10.2.0.2"),
    )?;
    // Hub to spoke as well.
    ping(lab.ns("lanH"), "10.1.0.2", 3)?;
    ping(lab.ns("lanH"), "10.2.0.2", 3)?;
    sa.stop()?;
    sb.stop()?;
    hub.stop()?;
    Ok(())
}

/// With `export-routes = true` the daemon itself installs the kernel routes toward its
/// TUN for prefixes routed to tunnels; nothing is added by the test.
#[test]
fn export_routes_into_kernel() -> Result<()> {
    let Some(_t) = netns_test("export_routes_into_kernel", &["wg"]) else {
        return Ok(());
    };
    let lab = topo::two_sites()?;
    let (ka, kb) = (Keypair::generate()?, Keypair::generate()?);
    let ra = Wgrd::start(
        lab.ns("rA"),
        &WgrdConf::new("10.255.0.1", &ka)
            .export_routes(true)
            .tunnel(
                WgrdTunnel::new("to-rB", &kb.public, Some("192.168.77.2:51820"))
                    .addresses(&["169.254.0.0/31"]),
            )
            .route("10.2.0.0/24", "to-rB")
            .route("10.1.0.0/24", "host"),
    )?;
    let rb = Wgrd::start(
        lab.ns("rB"),
        &WgrdConf::new("10.255.0.2", &kb)
            .export_routes(true)
            .tunnel(
                WgrdTunnel::new("to-rA", &ka.public, Some("192.168.77.1:51820"))
                    .addresses(&["169.254.0.1/31"]),
            )
            .route("10.1.0.0/24", "to-rA")
            .route("10.2.0.0/24", "host"),
    )?;
    for (ns, prefix) in [("rA", "10.2.0.0/24"), ("rB", "10.1.0.0/24")] {
        let node = lab.ns(ns);
        let res = wait_until(
            &format!("exported route {prefix} in {ns}"),
            Duration::from_secs(5),
            || {
                node.ip(&["route", "show", prefix])
                    .map(|o| o.contains("dev wgrd0"))
                    .unwrap_or(false)
            },
        );
        if let Err(e) = res {
            bail!("{e:#}; routes in {ns}:\n{}", node.ip(&["route"])?);
        }
    }
    wait_ping(lab.ns("lanA"), "10.2.0.2", HANDSHAKE_WAIT)?;
    ping(lab.ns("lanB"), "10.1.0.2", 3)?;
    ra.stop()?;
    rb.stop()?;
    Ok(())
}
