//! OSPF across another router's LAN: wgrd reaches routers and prefixes behind a transit
//! network (a broadcast segment with a DR and a network-LSA) between two BIRDs.
//!
//! ```text
//! lanA 10.1.0.2 — rA: wgrd (wgrd0, tunnel to-bird 169.254.0.0/31) ═══ WireGuard over
//!   192.168.77.0/24 ═══ rB: wireguard-go wg0 169.254.0.1/31 + BIRD (ptp, hello 1, dead 4)
//!   — eth-c 172.16.23.2/24 ——— LAN (broadcast, hello 1, dead 4) ——— 172.16.23.3/24 eth-c
//!   rC: BIRD — lanC 10.3.0.2
//! ```
//!
//! Checks: BIRD's two routers elect a DR on the LAN, which originates a network-LSA;
//! wgrd holds it (decoded in `wgrctl ospf database`), computes the transit prefix
//! 172.16.23.0/24 and rC's LAN 10.3.0.0/24 through the network, installs both in its
//! kernel through the tunnel, and lanA pings lanC. Namespace test: WGRD_NETNS_TESTS=1 as
//! root.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};
use wgrd_tests::{
    netns_test, topo, wait_ping, wait_until, wgrctl_json, Bird, Keypair, WgGo, WgGoConf, WgPeer,
    Wgrd, WgrdConf, WgrdTunnel,
};

const CONVERGE: Duration = Duration::from_secs(45);

/// BIRD's config on rB (`tunnel`: its ptp interface toward wgrd) or rC (none).
fn bird_conf(router_id: &str, tunnel: bool) -> String {
    let wg = if tunnel {
        "interface \"wg0\" { type ptp; hello 1; dead 4; };"
    } else {
        ""
    };
    format!(
        r#"
log stderr all;
router id {router_id};
protocol device {{ scan time 1; }}
protocol kernel {{
    ipv4 {{
        import none;
        export where source = RTS_OSPF;
    }};
}}
protocol ospf v2 {{
    ipv4 {{ import all; export none; }};
    area 0 {{
        {wg}
        interface "eth-c" {{ type broadcast; hello 1; dead 4; }};
        interface "eth-lan" {{ stub; }};
    }};
}}
"#
    )
}

#[test]
fn wgrd_routes_through_a_transit_network_between_two_birds() -> Result<()> {
    let Some(_t) = netns_test(
        "wgrd_routes_through_a_transit_network_between_two_birds",
        &["wireguard-go", "wg", "bird", "birdc", "ping"],
    ) else {
        return Ok(());
    };
    wgrd_tests::wgrd::wgrd_bin()?;
    wgrd_tests::wgrd::wgrctl_bin()?;
    let mut lab = topo::two_sites()?;
    topo::add_site(&mut lab, "rC", "lanC", 3)?;
    lab.link("rB", "eth-c", "rC", "eth-c")?;
    lab.addr("rB", "eth-c", "172.16.23.2/24")?;
    lab.addr("rC", "eth-c", "172.16.23.3/24")?;
    let (ka, kb) = (Keypair::generate()?, Keypair::generate()?);

    // The two BIRDs first: their LAN needs a DR (the wait timer is the dead interval).
    let _wg = WgGo::start(
        lab.ns("rB"),
        &WgGoConf {
            interface: "wg0".into(),
            key: kb.clone(),
            listen_port: 51820,
            addresses: vec!["169.254.0.1/31".into()],
            peers: vec![WgPeer::any(&ka.public, None)],
            mtu: 1420,
        },
    )?;
    let bird_b = Bird::start(lab.ns("rB"), &bird_conf("10.255.0.2", true))?;
    let bird_c = Bird::start(lab.ns("rC"), &bird_conf("10.255.0.3", false))?;

    let dir = tempfile::Builder::new()
        .prefix("wgrdt-ospf-lan-")
        .tempdir()?;
    let key_file = dir.path().join("router.key");
    std::fs::write(&key_file, format!("{}\n", ka.private))?;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    let socket = dir.path().join("wgrd.sock");
    let conf = WgrdConf::new("10.255.0.1", &ka)
        .tunnel(
            WgrdTunnel::new("to-bird", &kb.public, Some("192.168.77.2:51820"))
                .addresses(&["169.254.0.0/31"])
                .keepalive(5),
        )
        .route("10.1.0.0/24", "host")
        .export_routes(true);
    let toml = conf.to_toml(&key_file).replace(
        "name = \"to-bird\"",
        "name = \"to-bird\"\nospf = { hello = 1, dead = 4, profile = \"fast\" }",
    ) + &format!("\n[ospf]\n\n[control]\nsocket = \"{}\"\n", socket.display());
    let started = Instant::now();
    let wgrd = Wgrd::start_raw(lab.ns("rA"), &toml)?;
    let diag = || {
        format!(
            "bird rB: {:?}\nbird rC: {:?}\nbird rB db: {:?}\nwgrd db: {:?}\nwgrd routes: {:?}\n\
             wgrd log:\n{}",
            bird_b.birdc("show ospf neighbors"),
            bird_c.birdc("show ospf neighbors"),
            bird_b.birdc("show ospf state"),
            wgrctl_json(&socket, &["ospf", "database"]),
            wgrctl_json(&socket, &["ospf", "routes"]),
            wgrd.log()
        )
    };

    let has_route = |ns: &str, prefix: &str, dev: &str| {
        lab.ns(ns)
            .ip(&["-4", "route", "show", prefix])
            .is_ok_and(|s| s.contains(dev))
    };
    wait_until("wgrd to install lanC and the transit LAN", CONVERGE, || {
        has_route("rA", "10.3.0.0/24", "wgrd0") && has_route("rA", "172.16.23.0/24", "wgrd0")
    })
    .with_context(diag)?;
    let to_lan_c = started.elapsed();

    // The network-LSA is in wgrd's database, decoded.
    let db = wgrctl_json(&socket, &["ospf", "database"])?;
    let network = db
        .as_array()
        .and_then(|a| a.iter().find(|l| l["type"] == 2))
        .with_context(|| format!("no network-LSA in wgrd's database: {db}"))?;
    let summary = network["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("172.16.23.0/24 attached ")
            && summary.contains("10.255.0.2")
            && summary.contains("10.255.0.3"),
        "{network}"
    );
    // Intra-area routes with the network's cost and one more hop to lanC.
    let routes = wgrctl_json(&socket, &["ospf", "routes"])?;
    let route = |p: &str| {
        routes
            .as_array()
            .and_then(|a| a.iter().find(|r| r["prefix"] == p).cloned())
            .unwrap_or_default()
    };
    let (transit, lan_c) = (route("172.16.23.0/24"), route("10.3.0.0/24"));
    assert_eq!(transit["path_type"], "intra", "{routes}");
    assert_eq!(lan_c["path_type"], "intra", "{routes}");
    assert!(
        lan_c["cost"].as_u64() > transit["cost"].as_u64(),
        "{routes}"
    );
    assert_eq!(lan_c["tunnels"][0], "to-bird", "{routes}");

    wait_ping(lab.ns("lanA"), "10.3.0.2", Duration::from_secs(30)).with_context(diag)?;
    println!(
        "wgrd through BIRD's LAN: lanC and the transit prefix in wgrd's kernel {to_lan_c:?} \
         after wgrd started, lanA -> lanC ping {:?}",
        started.elapsed()
    );
    drop(bird_c);
    drop(bird_b);
    wgrd.stop()?;
    Ok(())
}
