//! OSPF interoperability with FRR: wgrd's OSPF speaker adjacent to FRR's ospfd (with
//! zebra, run as the `frr` user) over a wireguard-go tunnel, in network namespaces.
//!
//! ```text
//! lanA 10.1.0.2 — rA: wgrd (wgrd0, tunnel to-frr 169.254.0.0/31) ═══ WireGuard over
//!   192.168.77.0/24 ═══ rB: wireguard-go wg0 169.254.0.1/31 + zebra/ospfd
//!   (point-to-point, hello 1, dead 4) — lanB 10.2.0.2
//! ```
//!
//! Each case checks: Full on both sides (wgrd's `Ospf` API through wgrctl, FRR's `show ip
//! ospf neighbor json`), the same database on both sides (type, id, advertising router
//! and sequence number of every LSA), routes both ways (stub LANs and a redistributed
//! external each way, in both kernels and in wgrd's OSPF routes), LAN-to-LAN ping both
//! ways; then the WAN link goes down and wgrd withdraws FRR's routes. The second case
//! does all of it with cryptographic authentication: keyed MD5 (RFC 2328 D.3), since the
//! ospfd of FRR 8.4 has no HMAC-SHA (`ip ospf authentication key-chain` came later).
//! Namespace tests: WGRD_NETNS_TESTS=1 as root.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};
use wgrd_tests::frr::frr_version;
use wgrd_tests::{
    netns_test, ping, topo, wait_ping, wait_until, wgrctl_json, Frr, Keypair, WgGo, WgGoConf,
    WgPeer, Wgrd, WgrdConf, WgrdTunnel,
};

const CONVERGE: Duration = Duration::from_secs(30);
/// The shared MD5 key (at most 16 bytes).
const MD5_KEY: &str = "wgrd-frr-md5-k1";

/// ospfd on wg0 with wgrd's fast-profile hello and dead intervals and FRR's default
/// retransmit interval (5 s). FRR re-originates its router-LSA the moment the adjacency
/// is Full, right after answering wgrd's LS request; wgrd takes that instance at once
/// (MinLSArrival holds off only instances after a flooded copy), so routes toward FRR do
/// not wait for FRR's retransmission.
fn ospfd_conf(auth: bool) -> String {
    let auth_lines = if auth {
        format!(
            " ip ospf authentication message-digest\n ip ospf message-digest-key 1 md5 {MD5_KEY}\n"
        )
    } else {
        String::new()
    };
    format!(
        "hostname rB\n\
         !\n\
         interface wg0\n \
         ip ospf network point-to-point\n \
         ip ospf hello-interval 1\n \
         ip ospf dead-interval 4\n\
         {auth_lines}\
         !\n\
         router ospf\n \
         ospf router-id 10.255.0.2\n \
         network 169.254.0.0/31 area 0.0.0.0\n \
         network 10.2.0.0/24 area 0.0.0.0\n \
         passive-interface eth-lan\n \
         redistribute kernel\n\
         !\n"
    )
}

/// wgrd's database as (type, id, advertising router, sequence number), sorted.
fn wgrd_lsdb(socket: &Path) -> Result<Vec<(u8, String, String, u32)>> {
    let v = wgrctl_json(socket, &["ospf", "database"])?;
    let mut out: Vec<_> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["type"].as_u64().unwrap_or(0) as u8,
                l["id"].as_str().unwrap_or_default().to_owned(),
                l["adv_router"].as_str().unwrap_or_default().to_owned(),
                l["seq"].as_u64().unwrap_or(0) as u32,
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

fn wgrd_neighbor_state(socket: &Path) -> String {
    wgrctl_json(socket, &["ospf", "neighbors"])
        .ok()
        .and_then(|v| v.get(0)?.get("state")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn wgrd_has_ospf_route(socket: &Path, prefix: &str) -> bool {
    wgrctl_json(socket, &["ospf", "routes"]).is_ok_and(|v| {
        v.as_array().into_iter().flatten().any(|r| {
            r["prefix"] == prefix
                && r["tunnels"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "to-frr"))
        })
    })
}

fn run_case(name: &str, auth: bool) -> Result<()> {
    let Some(_t) = netns_test(
        name,
        &[
            "wireguard-go",
            "wg",
            "vtysh",
            "/usr/lib/frr/zebra",
            "/usr/lib/frr/ospfd",
        ],
    ) else {
        return Ok(());
    };
    let version = frr_version().unwrap_or_else(|| "?".into());
    // Built before anything is timed.
    wgrd_tests::wgrd::wgrd_bin()?;
    wgrd_tests::wgrd::wgrctl_bin()?;
    let lab = topo::two_sites()?;
    let (ka, kb) = (Keypair::generate()?, Keypair::generate()?);
    // FRR redistributes this kernel route (type-5) toward wgrd.
    lab.ns("rB")
        .ip(&["route", "add", "blackhole", "192.168.222.0/24"])?;

    let dir = tempfile::Builder::new()
        .prefix("wgrdt-ospf-frr-")
        .tempdir()?;
    let key_file = dir.path().join("router.key");
    std::fs::write(&key_file, format!("{}\n", ka.private))?;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    let ospf_key = dir.path().join("ospf.key");
    std::fs::write(&ospf_key, format!("{MD5_KEY}\n"))?;
    std::fs::set_permissions(&ospf_key, std::fs::Permissions::from_mode(0o600))?;
    let socket = dir.path().join("wgrd.sock");
    let auth_conf = if auth {
        format!(
            ", auth = {{ key-id = 1, type = \"md5\", key-file = \"{}\" }}",
            ospf_key.display()
        )
    } else {
        String::new()
    };
    let conf = WgrdConf::new("10.255.0.1", &ka)
        .tunnel(
            WgrdTunnel::new("to-frr", &kb.public, Some("192.168.77.2:51820"))
                .addresses(&["169.254.0.0/31"])
                .keepalive(5),
        )
        .route("10.1.0.0/24", "host")
        .route("192.168.111.0/24", "blackhole")
        .export_routes(true);
    let toml = conf.to_toml(&key_file).replace(
        "name = \"to-frr\"",
        &format!(
            "name = \"to-frr\"\nospf = {{ hello = 1, dead = 4, profile = \"fast\"{auth_conf} }}"
        ),
    ) + &format!(
        "\n[ospf]\nredistribute = [{{ from = \"static\" }}]\n\n[control]\nsocket = \"{}\"\n",
        socket.display()
    );

    // The peer side first (wgrd dials it), then wgrd.
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
    let frr = Frr::start_ospf(lab.ns("rB"), &ospfd_conf(auth))?;
    let started = Instant::now();
    let wgrd = Wgrd::start_raw(lab.ns("rA"), &toml)?;
    let diag = || {
        format!(
            "frr neighbors: {:?}\nwgrd neighbors: {:?}\nwgrd log:\n{}",
            frr.vtysh(&["show ip ospf neighbor json"]),
            wgrctl_json(&socket, &["ospf", "neighbors"]),
            wgrd.log()
        )
    };
    // Full on both sides.
    wait_until("Full on both sides", CONVERGE, || {
        wgrd_neighbor_state(&socket) == "full"
            && frr.ospf_neighbor_states().is_ok_and(|n| {
                n.iter()
                    .any(|(id, s)| id == "10.255.0.1" && s.starts_with("Full"))
            })
    })
    .with_context(diag)?;
    let adjacency = started.elapsed();

    // Routes both ways: into both kernels, and FRR's into wgrd's OSPF routes.
    let has_route = |ns: &str, prefix: &str, dev: &str| {
        lab.ns(ns)
            .ip(&["-4", "route", "show", prefix])
            .is_ok_and(|s| s.contains(dev))
    };
    let wanted = [
        ("rA", "10.2.0.0/24", "wgrd0"),
        ("rA", "192.168.222.0/24", "wgrd0"),
        ("rB", "10.1.0.0/24", "wg0"),
        ("rB", "192.168.111.0/24", "wg0"),
    ];
    let mut seen: Vec<Option<Duration>> = vec![None; wanted.len()];
    wait_until("the LANs and externals both ways", CONVERGE, || {
        for (i, (ns, prefix, dev)) in wanted.iter().enumerate() {
            if seen[i].is_none() && has_route(ns, prefix, dev) {
                seen[i] = Some(started.elapsed());
            }
        }
        seen.iter().all(Option::is_some)
    })
    .with_context(|| {
        format!(
            "rA: {:?}\nrB: {:?}\nfrr: {:?}\n{}",
            lab.ns("rA").ip(&["-4", "route"]),
            lab.ns("rB").ip(&["-4", "route"]),
            frr.vtysh(&["show ip ospf route"]),
            diag()
        )
    })?;
    let routes = started.elapsed();
    for ((ns, prefix, _), t) in wanted.iter().zip(&seen) {
        println!("{prefix} in {ns}'s kernel after {t:?}");
    }
    assert!(wgrd_has_ospf_route(&socket, "10.2.0.0/24"));
    assert!(wgrd_has_ospf_route(&socket, "192.168.222.0/24"));

    // The same database on both sides (flooding may still be settling: wait for it).
    let mut last = (vec![], vec![]);
    wait_until("identical databases", Duration::from_secs(10), || {
        match (wgrd_lsdb(&socket), frr.ospf_lsdb()) {
            (Ok(w), Ok(f)) => {
                let same = !w.is_empty() && w == f;
                last = (w, f);
                same
            }
            _ => false,
        }
    })
    .with_context(|| format!("wgrd: {:#?}\nfrr: {:#?}", last.0, last.1))?;
    let (lsdb, _) = &last;
    // Both routers' router-LSAs and both externals are in it.
    for (ty, id, adv) in [
        (1, "10.255.0.1", "10.255.0.1"),
        (1, "10.255.0.2", "10.255.0.2"),
        (5, "192.168.111.0", "10.255.0.1"),
        (5, "192.168.222.0", "10.255.0.2"),
    ] {
        assert!(
            lsdb.iter().any(|l| l.0 == ty && l.1 == id && l.2 == adv),
            "{ty} {id} {adv} missing from {lsdb:#?}"
        );
    }

    // Authentication as configured, nothing dropped for it.
    let ifaces = wgrctl_json(&socket, &["ospf", "interfaces"])?;
    let want = if auth { "md5" } else { "none" };
    assert_eq!(ifaces["interfaces"][0]["auth"], want, "{ifaces}");
    let counters = ifaces["counters"].as_object().cloned().unwrap_or_default();
    let auth_drops: u64 = counters
        .iter()
        .filter(|(k, _)| k.starts_with("auth_"))
        .filter_map(|(_, v)| v.as_u64())
        .sum();
    assert_eq!(auth_drops, 0, "{counters:?}");
    if auth {
        let i = frr.vtysh(&["show ip ospf interface wg0"])?;
        assert!(i.to_lowercase().contains("md5"), "{i}");
    }

    // Traffic crosses, both ways.
    wait_ping(lab.ns("lanA"), "10.2.0.2", Duration::from_secs(10))?;
    ping(lab.ns("lanB"), "10.1.0.2", 3)?;
    println!(
        "FRR {version}, auth {want}: Full on both sides {adjacency:?} after wgrd started, \
         routes in both kernels after {routes:?}, {} LSAs identical",
        lsdb.len()
    );

    // The link dies: wgrd hears nothing more from FRR (wireguard-go sends no liveness
    // probes, so the dead interval, 4 s, ends the adjacency) and withdraws its routes.
    let cut = Instant::now();
    lab.ns("rB").ip(&["link", "set", "eth-wan", "down"])?;
    wait_until("wgrd to drop FRR's routes", Duration::from_secs(15), || {
        !wgrd_has_ospf_route(&socket, "10.2.0.0/24") && !has_route("rA", "10.2.0.0/24", "wgrd0")
    })
    .with_context(diag)?;
    let withdrawn = cut.elapsed();
    assert_ne!(wgrd_neighbor_state(&socket), "full");
    println!("link down: wgrd withdrew FRR's routes after {withdrawn:?}");
    drop(frr);
    wgrd.stop()?;
    Ok(())
}

#[test]
fn wgrd_and_frr_form_an_adjacency_with_identical_databases() -> Result<()> {
    run_case(
        "wgrd_and_frr_form_an_adjacency_with_identical_databases",
        false,
    )
}

#[test]
fn wgrd_and_frr_with_md5_authentication() -> Result<()> {
    run_case("wgrd_and_frr_with_md5_authentication", true)
}
