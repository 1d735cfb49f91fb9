//! OSPF areas with a third-party router: wgrd as the area border router between a wgrd
//! in the backbone and BIRD 2 in area 1 (a normal area, then a stub area), BIRD over a
//! wireguard-go tunnel, in network namespaces.
//!
//! ```text
//! lanA 10.1.0.2 — rA: wgrd 10.255.0.1, area 0 ═══ rH: wgrd 10.255.0.3, ABR ═══ rB: wireguard-go
//!   (192.168.71.0/24)  169.254.1.1 ─ 169.254.1.0   (lanH 10.3.0.2)  169.254.2.0 ─ 169.254.2.1
//!                                                  area 0 | area 1      + BIRD, area 1 — lanB 10.2.0.2
//! ```
//!
//! Checks: BIRD reaches Full with the ABR in area 1; BIRD installs the backbone's LANs
//! from wgrd's summary-LSAs (type 3) and rA's redistributed route through wgrd's
//! ASBR-summary (type 4); rA installs BIRD's LAN and external through the ABR; LAN-to-LAN
//! ping crosses both tunnels. As a stub area: BIRD installs wgrd's default summary, gets
//! no AS-external-LSA, and reaches lanA on the default.
//!
//! And the other way round: BIRD as the ABR (rH, two wireguard-go tunnels) between wgrd
//! in the backbone (rA) and wgrd in area 1 (rB): the area-1 wgrd computes inter-area
//! routes from BIRD's summaries and reaches rA's external through BIRD's ASBR-summary
//! (as a stub area: BIRD's default summary). Namespace tests: WGRD_NETNS_TESTS=1 as root.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};
use wgrd_tests::{
    netns_test, ping, topo, wait_ping, wait_until, wgrctl_json, Bird, Keypair, WgGo, WgGoConf,
    WgPeer, Wgrd, WgrdConf, WgrdTunnel,
};

const CONVERGE: Duration = Duration::from_secs(30);

fn bird_conf(stub: bool) -> String {
    // A router only in a stub area cannot be an AS boundary router: no export then.
    let (area_opts, export) = if stub {
        ("stub;", "none")
    } else {
        ("", "where source = RTS_STATIC")
    };
    format!(
        r#"
log stderr all;
router id 10.255.0.2;
protocol device {{ scan time 1; }}
protocol static {{
    ipv4;
    route 192.168.222.0/24 blackhole;
}}
protocol kernel {{
    ipv4 {{
        import none;
        export filter {{
            if source = RTS_OSPF || source = RTS_OSPF_IA || source = RTS_OSPF_EXT1
                || source = RTS_OSPF_EXT2 then accept;
            reject;
        }};
    }};
}}
protocol ospf v2 {{
    ipv4 {{
        import all;
        export {export};
    }};
    area 0.0.0.1 {{
        {area_opts}
        interface "wg0" {{ type ptp; hello 1; dead 4; }};
        interface "eth-lan" {{ stub; }};
    }};
}}
"#
    )
}

/// A wgrd config: `conf`, then each tunnel's `ospf = { ... }` (by name), then `[ospf]`
/// with `ospf_extra` and the control socket `<dir>/<name>.sock`.
fn wgrd_toml(
    dir: &Path,
    name: &str,
    conf: &WgrdConf,
    tunnels: &[(&str, &str)],
    ospf_extra: &str,
) -> Result<String> {
    let key_file = dir.join(format!("{name}.key"));
    std::fs::write(&key_file, format!("{}\n", conf.key.private))?;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    let mut toml = conf.to_toml(&key_file);
    for (tunnel, ospf) in tunnels {
        toml = toml.replace(
            &format!("name = \"{tunnel}\"\n"),
            &format!("name = \"{tunnel}\"\nospf = {{ {ospf} }}\n"),
        );
    }
    let socket = dir.join(format!("{name}.sock"));
    Ok(toml
        + "\n[control]\n"
        + &format!("socket = \"{}\"\n", socket.display())
        + "\n[ospf]\nprofile = \"fast\"\n"
        + ospf_extra)
}

fn has_route(lab: &wgrd_tests::Lab, ns: &str, prefix: &str, dev: &str) -> bool {
    lab.ns(ns)
        .ip(&["-4", "route", "show", prefix])
        .is_ok_and(|s| s.contains(dev))
}

/// The neighbor of `socket`'s wgrd on `tunnel`, as `wgrctl ospf neighbors --json`.
fn neighbor(socket: &Path, tunnel: &str) -> serde_json::Value {
    wgrctl_json(socket, &["ospf", "neighbors"])
        .ok()
        .and_then(|v| {
            v.as_array()?
                .iter()
                .find(|n| n["tunnel"] == tunnel)
                .cloned()
        })
        .unwrap_or_default()
}

fn abr_with_bird_in_area_1(name: &str, stub: bool) -> Result<()> {
    let Some(_t) = netns_test(name, &["wireguard-go", "wg", "bird", "birdc"]) else {
        return Ok(());
    };
    wgrd_tests::wgrd::wgrd_bin()?;
    wgrd_tests::wgrd::wgrctl_bin()?;
    let lab = topo::hub_spoke()?;
    let (ka, kh, kb) = (
        Keypair::generate()?,
        Keypair::generate()?,
        Keypair::generate()?,
    );
    let dir = tempfile::Builder::new()
        .prefix("wgrdt-ospf-areas-")
        .tempdir()?;
    let (sock_a, sock_h) = (dir.path().join("rA.sock"), dir.path().join("rH.sock"));

    // rH: the ABR, its LAN as a stub, to-a in the backbone, to-bird in area 1.
    let hub = WgrdConf::new("10.255.0.3", &kh)
        .tunnel(
            WgrdTunnel::new("to-a", &ka.public, None)
                .addresses(&["169.254.1.0/31"])
                .keepalive(5),
        )
        .tunnel(
            WgrdTunnel::new("to-bird", &kb.public, Some("192.168.72.2:51820"))
                .addresses(&["169.254.2.0/31"])
                .keepalive(5),
        )
        .route("10.3.0.0/24", "host")
        .export_routes(true);
    let area1 = if stub {
        "\n[[ospf.areas]]\nid = \"0.0.0.1\"\nstub = true\ndefault-cost = 5\n"
    } else {
        ""
    };
    let hub_toml = wgrd_toml(
        dir.path(),
        "rH",
        &hub,
        &[
            ("to-a", "area = \"0.0.0.0\""),
            ("to-bird", "area = \"0.0.0.1\", hello = 1, dead = 4"),
        ],
        area1,
    )?;
    // rA: backbone only, its LAN and a redistributed static route (E2).
    let a = WgrdConf::new("10.255.0.1", &ka)
        .tunnel(
            WgrdTunnel::new("to-hub", &kh.public, Some("192.168.71.1:51820"))
                .addresses(&["169.254.1.1/31"])
                .keepalive(5),
        )
        .route("10.1.0.0/24", "host")
        .route("192.168.111.0/24", "blackhole")
        .export_routes(true);
    let a_toml = wgrd_toml(
        dir.path(),
        "rA",
        &a,
        &[],
        "redistribute = [{ from = \"static\" }]\n",
    )?;

    let _wg = WgGo::start(
        lab.ns("rB"),
        &WgGoConf {
            interface: "wg0".into(),
            key: kb.clone(),
            listen_port: 51820,
            addresses: vec!["169.254.2.1/31".into()],
            peers: vec![WgPeer::any(&kh.public, None)],
            mtu: 1420,
        },
    )?;
    let bird = Bird::start(lab.ns("rB"), &bird_conf(stub))?;
    let started = Instant::now();
    let wh = Wgrd::start_raw(lab.ns("rH"), &hub_toml)?;
    let wa = Wgrd::start_raw(lab.ns("rA"), &a_toml)?;
    let diag = || {
        format!(
            "bird neighbors: {:?}\nbird lsadb: {:?}\nbird routes: {:?}\nrH database: {:?}\n\
             rH interfaces: {:?}\nrA routes: {:?}\nrB kernel: {:?}\nrH log:\n{}",
            bird.birdc("show ospf neighbors"),
            bird.birdc("show ospf lsadb"),
            bird.birdc("show route"),
            wgrctl_json(&sock_h, &["ospf", "database"]),
            wgrctl_json(&sock_h, &["ospf", "interfaces"]),
            wgrctl_json(&sock_a, &["ospf", "routes"]),
            lab.ns("rB").ip(&["-4", "route"]),
            wh.log()
        )
    };

    wait_until("Full in both areas", CONVERGE, || {
        neighbor(&sock_h, "to-a")["state"] == "full"
            && neighbor(&sock_h, "to-bird")["state"] == "full"
            && bird
                .birdc("show ospf neighbors")
                .is_ok_and(|s| s.contains("Full"))
    })
    .with_context(diag)?;
    let full = started.elapsed();
    assert_eq!(
        neighbor(&sock_h, "to-bird")["area"],
        "0.0.0.1",
        "{}",
        diag()
    );
    assert_eq!(neighbor(&sock_h, "to-a")["area"], "0.0.0.0", "{}", diag());

    // The backbone's networks in BIRD's kernel from wgrd's summaries, BIRD's LAN in rA's
    // through the ABR.
    wait_until("inter-area routes in BIRD's kernel", CONVERGE, || {
        has_route(&lab, "rB", "10.1.0.0/24", "wg0") && has_route(&lab, "rB", "10.3.0.0/24", "wg0")
    })
    .with_context(diag)?;
    let in_bird = started.elapsed();
    wait_until("BIRD's LAN in rA's kernel", CONVERGE, || {
        has_route(&lab, "rA", "10.2.0.0/24", "wgrd0")
    })
    .with_context(diag)?;
    let in_a = started.elapsed();
    println!(
        "areas{}: Full after {full:?}; backbone LANs in BIRD's kernel after {in_bird:?}; \
         BIRD's LAN in rA's kernel after {in_a:?}",
        if stub { " (stub)" } else { "" }
    );
    let route = bird.birdc("show route 10.1.0.0/24 all")?;
    assert!(
        route.contains("OSPF-IA") || route.contains(" IA "),
        "{route}"
    );

    // The ABR's database: its summaries in area 1, and (not stub) the externals at AS
    // scope; its interfaces in their areas.
    let db = wgrctl_json(&sock_h, &["ospf", "database"])?;
    let lsas = db.as_array().cloned().unwrap_or_default();
    let own_summary_into_1 = |id: &str| {
        lsas.iter().any(|l| {
            l["type"] == 3
                && l["area"] == "0.0.0.1"
                && l["id"] == id
                && l["adv_router"] == "10.255.0.3"
        })
    };
    assert!(own_summary_into_1("10.1.0.0"), "{db}");
    assert!(!own_summary_into_1("10.2.0.0"), "area 1's own LAN: {db}");
    let ifaces = wgrctl_json(&sock_h, &["ospf", "interfaces"])?;
    assert_eq!(ifaces["abr"], true, "{ifaces}");
    assert_eq!(
        ifaces["counters"]["options_mismatch"],
        serde_json::Value::Null,
        "{ifaces}"
    );

    if stub {
        // The default summary instead of the externals.
        wait_until("the default in BIRD's kernel", CONVERGE, || {
            lab.ns("rB")
                .ip(&["-4", "route", "show", "default"])
                .is_ok_and(|s| s.contains("wg0"))
        })
        .with_context(diag)?;
        assert!(own_summary_into_1("0.0.0.0"), "{db}");
        assert!(
            !has_route(&lab, "rB", "192.168.111.0/24", "wg0"),
            "{}",
            diag()
        );
        let lsadb = bird.birdc("show ospf lsadb")?;
        assert!(
            !lsadb.contains("192.168.111.0"),
            "a type-5 in the stub area: {lsadb}"
        );
        println!(
            "stub: default in BIRD's kernel after {:?}",
            started.elapsed()
        );
    } else {
        // Externals cross the ABR both ways: BIRD reaches rA through wgrd's type 4.
        wait_until("the externals both ways", CONVERGE, || {
            has_route(&lab, "rB", "192.168.111.0/24", "wg0")
                && has_route(&lab, "rA", "192.168.222.0/24", "wgrd0")
        })
        .with_context(diag)?;
        assert!(
            lsas.iter()
                .any(|l| l["type"] == 4 && l["area"] == "0.0.0.1" && l["id"] == "10.255.0.1"),
            "{db}"
        );
        assert!(
            lsas.iter()
                .any(|l| l["type"] == 5 && l["area"] == "" && l["id"] == "192.168.111.0"),
            "{db}"
        );
        println!("externals both ways after {:?}", started.elapsed());
    }

    // Traffic crosses both tunnels and the ABR's userspace transit.
    wait_ping(lab.ns("lanA"), "10.2.0.2", Duration::from_secs(10)).with_context(diag)?;
    ping(lab.ns("lanB"), "10.1.0.2", 3)?;
    ping(lab.ns("lanB"), "10.3.0.2", 3)?;

    // BIRD and its tunnel go away: the ABR withdraws BIRD's LAN from the backbone.
    let cut = Instant::now();
    drop(bird);
    drop(_wg);
    wait_until("rA to drop BIRD's LAN", Duration::from_secs(15), || {
        !has_route(&lab, "rA", "10.2.0.0/24", "wgrd0")
    })?;
    println!(
        "BIRD's LAN gone from rA {:?} after BIRD stopped (dead interval 4 s)",
        cut.elapsed()
    );
    wa.stop()?;
    wh.stop()?;
    Ok(())
}

#[test]
fn wgrd_abr_summarizes_between_the_backbone_and_bird_in_area_1() -> Result<()> {
    abr_with_bird_in_area_1(
        "wgrd_abr_summarizes_between_the_backbone_and_bird_in_area_1",
        false,
    )
}

#[test]
fn bird_in_a_stub_area_behind_wgrd_gets_the_default_and_no_externals() -> Result<()> {
    abr_with_bird_in_area_1(
        "bird_in_a_stub_area_behind_wgrd_gets_the_default_and_no_externals",
        true,
    )
}

fn bird_abr_conf(stub: bool) -> String {
    format!(
        r#"
log stderr all;
router id 10.255.0.3;
protocol device {{ scan time 1; }}
protocol kernel {{
    ipv4 {{
        import none;
        export filter {{
            if source = RTS_OSPF || source = RTS_OSPF_IA || source = RTS_OSPF_EXT1
                || source = RTS_OSPF_EXT2 then accept;
            reject;
        }};
    }};
}}
protocol ospf v2 {{
    ipv4 {{
        import all;
        export none;
    }};
    area 0 {{
        interface "wg0" {{ type ptp; hello 1; dead 4; }};
        interface "eth-lan" {{ stub; }};
    }};
    area 0.0.0.1 {{
        {}
        interface "wg1" {{ type ptp; hello 1; dead 4; }};
    }};
}}
"#,
        if stub { "stub; default cost 7;" } else { "" }
    )
}

/// The route to `prefix` in the OSPF routes of `socket`'s wgrd.
fn ospf_route(socket: &Path, prefix: &str) -> serde_json::Value {
    wgrctl_json(socket, &["ospf", "routes"])
        .ok()
        .and_then(|v| {
            v.as_array()?
                .iter()
                .find(|r| r["prefix"] == prefix)
                .cloned()
        })
        .unwrap_or_default()
}

fn bird_abr_between_two_wgrds(name: &str, stub: bool) -> Result<()> {
    let Some(_t) = netns_test(name, &["wireguard-go", "wg", "bird", "birdc"]) else {
        return Ok(());
    };
    wgrd_tests::wgrd::wgrd_bin()?;
    wgrd_tests::wgrd::wgrctl_bin()?;
    let lab = topo::hub_spoke()?;
    let (ka, kh, kb) = (
        Keypair::generate()?,
        Keypair::generate()?,
        Keypair::generate()?,
    );
    let dir = tempfile::Builder::new()
        .prefix("wgrdt-ospf-bird-abr-")
        .tempdir()?;
    let (sock_a, sock_b) = (dir.path().join("rA.sock"), dir.path().join("rB.sock"));

    // BIRD's two tunnels: wg0 to rA (backbone), wg1 to rB (area 1).
    let wg = |iface: &str, port: u16, addr: &str, peer: &Keypair| WgGoConf {
        interface: iface.into(),
        key: kh.clone(),
        listen_port: port,
        addresses: vec![addr.into()],
        peers: vec![WgPeer::any(&peer.public, None)],
        mtu: 1420,
    };
    let _wg0 = WgGo::start(lab.ns("rH"), &wg("wg0", 51820, "169.254.1.0/31", &ka))?;
    let _wg1 = WgGo::start(lab.ns("rH"), &wg("wg1", 51821, "169.254.2.0/31", &kb))?;
    let bird = Bird::start(lab.ns("rH"), &bird_abr_conf(stub))?;

    let a = WgrdConf::new("10.255.0.1", &ka)
        .tunnel(
            WgrdTunnel::new("to-bird", &kh.public, Some("192.168.71.1:51820"))
                .addresses(&["169.254.1.1/31"])
                .keepalive(5),
        )
        .route("10.1.0.0/24", "host")
        .route("192.168.111.0/24", "blackhole")
        .export_routes(true);
    let a_toml = wgrd_toml(
        dir.path(),
        "rA",
        &a,
        &[("to-bird", "hello = 1, dead = 4")],
        "redistribute = [{ from = \"static\" }]\n",
    )?;
    // rB: every tunnel in area 1 through `[ospf] area`.
    let b = WgrdConf::new("10.255.0.2", &kb)
        .tunnel(
            WgrdTunnel::new("to-bird", &kh.public, Some("192.168.72.1:51821"))
                .addresses(&["169.254.2.1/31"])
                .keepalive(5),
        )
        .route("10.2.0.0/24", "host")
        .export_routes(true);
    let b_extra = if stub {
        "area = \"0.0.0.1\"\n\n[[ospf.areas]]\nid = 1\nstub = true\n"
    } else {
        "area = \"0.0.0.1\"\n"
    };
    let b_toml = wgrd_toml(
        dir.path(),
        "rB",
        &b,
        &[("to-bird", "hello = 1, dead = 4")],
        b_extra,
    )?;
    let started = Instant::now();
    let wa = Wgrd::start_raw(lab.ns("rA"), &a_toml)?;
    let wb = Wgrd::start_raw(lab.ns("rB"), &b_toml)?;
    let diag = || {
        format!(
            "bird neighbors: {:?}\nbird lsadb: {:?}\nbird routes: {:?}\nrB database: {:?}\n\
             rB routes: {:?}\nrB interfaces: {:?}\nrB log:\n{}",
            bird.birdc("show ospf neighbors"),
            bird.birdc("show ospf lsadb"),
            bird.birdc("show route"),
            wgrctl_json(&sock_b, &["ospf", "database"]),
            wgrctl_json(&sock_b, &["ospf", "routes"]),
            wgrctl_json(&sock_b, &["ospf", "interfaces"]),
            wb.log()
        )
    };
    wait_until("Full on both of BIRD's tunnels", CONVERGE, || {
        neighbor(&sock_a, "to-bird")["state"] == "full"
            && neighbor(&sock_b, "to-bird")["state"] == "full"
    })
    .with_context(diag)?;
    let full = started.elapsed();
    assert_eq!(
        neighbor(&sock_b, "to-bird")["area"],
        "0.0.0.1",
        "{}",
        diag()
    );

    // rB, in area 1, routes to the backbone through BIRD's summaries (a stub area: BIRD's
    // default is totally stubby, `summary no`, so only its default summary).
    let backbone: &[&str] = if stub {
        &["default"]
    } else {
        &["10.1.0.0/24", "10.3.0.0/24"]
    };
    wait_until("the backbone in rB's kernel", CONVERGE, || {
        backbone.iter().all(|p| has_route(&lab, "rB", p, "wgrd0"))
    })
    .with_context(diag)?;
    let in_b = started.elapsed();
    wait_until("rB's LAN in rA's kernel", CONVERGE, || {
        has_route(&lab, "rA", "10.2.0.0/24", "wgrd0")
    })
    .with_context(diag)?;
    let in_a = started.elapsed();
    println!(
        "BIRD ABR{}: Full after {full:?}; the backbone (or the default) in rB's kernel after {in_b:?}; \
         rB's LAN in rA's kernel after {in_a:?}",
        if stub { " (stub)" } else { "" }
    );
    let r = ospf_route(&sock_b, if stub { "0.0.0.0/0" } else { "10.1.0.0/24" });
    assert_eq!(r["path_type"], "inter", "{}", diag());
    let db = wgrctl_json(&sock_b, &["ospf", "database"])?;
    let lsas = db.as_array().cloned().unwrap_or_default();
    assert!(
        lsas.iter()
            .all(|l| l["area"] == "0.0.0.1" || l["area"] == ""),
        "rB holds area 1 only: {db}"
    );
    if stub {
        // 10 to BIRD plus its `default cost 7`.
        assert_eq!(ospf_route(&sock_b, "0.0.0.0/0")["cost"], 17, "{}", diag());
        assert!(ospf_route(&sock_b, "10.1.0.0/24").is_null(), "{}", diag());
        assert!(
            lsas.iter().all(|l| l["type"] != 5 && l["type"] != 4),
            "{db}"
        );
        assert!(
            ospf_route(&sock_b, "192.168.111.0/24").is_null(),
            "{}",
            diag()
        );
    } else {
        // rA's external through BIRD's ASBR-summary for rA.
        wait_until("rA's external in rB's kernel", CONVERGE, || {
            has_route(&lab, "rB", "192.168.111.0/24", "wgrd0")
        })
        .with_context(diag)?;
        let db = wgrctl_json(&sock_b, &["ospf", "database"])?;
        assert!(
            db.as_array()
                .is_some_and(|l| l.iter().any(|l| l["type"] == 4 && l["id"] == "10.255.0.1")),
            "{db}"
        );
        assert_eq!(ospf_route(&sock_b, "192.168.111.0/24")["path_type"], "E2");
        println!("rA's external in rB's kernel after {:?}", started.elapsed());
    }
    wait_ping(lab.ns("lanB"), "10.1.0.2", Duration::from_secs(10)).with_context(diag)?;
    ping(lab.ns("lanA"), "10.2.0.2", 3)?;
    ping(lab.ns("lanB"), "10.3.0.2", 3)?;
    drop(bird);
    wa.stop()?;
    wb.stop()?;
    Ok(())
}

#[test]
fn bird_abr_gives_wgrd_in_area_1_the_backbone_and_its_externals() -> Result<()> {
    bird_abr_between_two_wgrds(
        "bird_abr_gives_wgrd_in_area_1_the_backbone_and_its_externals",
        false,
    )
}

#[test]
fn bird_abr_gives_wgrd_in_a_stub_area_its_default() -> Result<()> {
    bird_abr_between_two_wgrds("bird_abr_gives_wgrd_in_a_stub_area_its_default", true)
}
