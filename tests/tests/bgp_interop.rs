//! BGP interoperability: wgrd's BGP speaker against BIRD 2, GoBGP and FRR's bgpd over a
//! wireguard-go tunnel, in network namespaces.
//!
//! ```text
//! lanA 10.1.0.2 — rA: wgrd (wgrd0, tunnel to-peer) ═══ WireGuard over 192.168.77.0/24
//!   ═══ rB: wireguard-go wg0 + BIRD (or gobgpd) — lanB 10.2.0.2
//! ```
//!
//! wgrd is AS 65001 and originates its LAN with `networks`; BIRD is AS 65002 and exports
//! its LAN (a `direct` route on eth-lan). Both sides need a policy (RFC 8212): wgrd a
//! `[[policy]]` accepting everything, BIRD import/export filters. The session runs over
//! wgrd's userspace TCP on the tunnel's addresses:
//!
//! - IPv4 /31 (169.254.0.0/31), IPv4 routes;
//! - IPv6 link-local only (fe80::1 / fe80::2, dn42 style): one session carries IPv6
//!   routes and IPv4 routes with an IPv6 next hop (extended next hop, RFC 8950);
//! - failover: the underlay is cut silently in BIRD's namespace; wireguard-go does not
//!   probe, so wgrd's tunnel liveness is never armed and the hold timer (9 s) ends the
//!   session.
//!
//! Namespace tests: WGRD_NETNS_TESTS=1 as root.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wgrd_tests::frr::frr_version;
use wgrd_tests::{
    netns_test, ping, topo, wait_ping, wait_until, wgrctl_json, Bird, Frr, Keypair, Lab, Netns,
    WgGo, WgGoConf, WgPeer, Wgrd, WgrdConf, WgrdTunnel,
};

const CONVERGE: Duration = Duration::from_secs(30);

/// gobgpd in a namespace with a TOML config; its gRPC API on 127.0.0.1:50051 of that
/// namespace, which `gobgp` reaches from inside it.
struct GoBgp {
    child: std::process::Child,
    dir: tempfile::TempDir,
    ns: String,
}

impl GoBgp {
    fn start(ns: &Netns, conf: &str) -> Result<GoBgp> {
        let dir = tempfile::Builder::new().prefix("wgrdt-gobgp-").tempdir()?;
        let conf_path = dir.path().join("gobgpd.toml");
        std::fs::write(&conf_path, conf)?;
        let log = dir.path().join("gobgpd.log");
        let child = ns.spawn(
            &[
                "gobgpd",
                "-f",
                &conf_path.to_string_lossy(),
                "-t",
                "toml",
                "-p",
                "--api-hosts=127.0.0.1:50051",
                "--pprof-disable",
            ],
            &log,
            &[],
        )?;
        let g = GoBgp {
            child,
            dir,
            ns: ns.name().to_string(),
        };
        ns.wait_tcp_listen(50051, Duration::from_secs(10))
            .with_context(|| g.log())?;
        Ok(g)
    }

    fn gobgp(&self, ns: &Netns, args: &[&str]) -> Result<String> {
        let mut all = vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"];
        all.extend_from_slice(args);
        ns.exec_timeout(&all, Duration::from_secs(10))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gobgpd.log")).unwrap_or_default()
    }
}

impl Drop for GoBgp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- gobgpd log ({}) ---\n{}", self.ns, self.log());
        }
    }
}

/// How the tunnel is addressed and what the session carries.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// 169.254.0.0/31 (wgrd) and .1 (peer): an IPv4 session, IPv4 routes.
    V4Slash31,
    /// fe80::1 (wgrd) and fe80::2 (peer) only: an IPv6 session with extended next hop,
    /// IPv4 and IPv6 routes.
    LinkLocal,
}

/// BIRD's config for `mode`: its LAN from `direct`, BGP routes into the kernel.
fn bird_conf(mode: Mode) -> String {
    let session = match mode {
        Mode::V4Slash31 => {
            "    local 169.254.0.1 as 65002;\n    neighbor 169.254.0.0 as 65001;\n    \
             ipv4 { import all; export where net = 10.2.0.0/24; };\n"
        }
        Mode::LinkLocal => {
            "    local fe80::2 as 65002;\n    neighbor fe80::1 as 65001;\n    \
             interface \"wg0\";\n    enable extended messages on;\n    \
             ipv4 { extended next hop on; import all; export where net = 10.2.0.0/24; };\n    \
             ipv6 { import all; export where net = fd02::/64; };\n"
        }
    };
    format!(
        r#"
log stderr all;
router id 10.255.0.2;
protocol device {{ scan time 1; }}
protocol direct {{ ipv4; ipv6; interface "eth-lan"; }}
protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}
protocol kernel {{ ipv6 {{ import none; export where source = RTS_BGP; }}; }}
protocol bgp wgrd {{
{session}}}
"#
    )
}

/// The wgrd config for `mode` with a peer of `remote_as` behind tunnel `to-peer`.
fn wgrd_toml(
    dir: &Path,
    ka: &Keypair,
    kb: &Keypair,
    mode: Mode,
    remote_as: u32,
) -> Result<(String, PathBuf)> {
    let key_file = dir.join("router.key");
    std::fs::write(&key_file, format!("{}\n", ka.private))?;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    let socket = dir.join("wgrd.sock");
    let tunnel_addr = match mode {
        Mode::V4Slash31 => "169.254.0.0/31",
        Mode::LinkLocal => "fe80::1/64",
    };
    let mut conf = WgrdConf::new("10.255.0.1", ka)
        .tunnel(
            WgrdTunnel::new("to-peer", &kb.public, Some("192.168.77.2:51820"))
                .addresses(&[tunnel_addr])
                .keepalive(5),
        )
        .route("10.1.0.0/24", "host")
        .export_routes(true);
    let (networks, neighbor_addr) = match mode {
        Mode::V4Slash31 => ("\"10.1.0.0/24\"", ""),
        Mode::LinkLocal => {
            conf = conf.route("fd01::/64", "host");
            ("\"10.1.0.0/24\", \"fd01::/64\"", "address = \"fe80::2\"\n")
        }
    };
    let toml = conf.to_toml(&key_file)
        + &format!(
            "\n[control]\nsocket = \"{}\"\n\n\
             [bgp]\nasn = 65001\nnetworks = [{networks}]\n\n\
             [[bgp.neighbor]]\ntunnel = \"to-peer\"\n{neighbor_addr}remote-as = {remote_as}\n\
             hold-time = 9\nimport = \"all\"\nexport = \"all\"\n\n\
             [[policy]]\nname = \"all\"\ndefault = \"accept\"\n",
            socket.display()
        );
    Ok((toml, socket))
}

/// wgrd's one neighbor's state name ("established", ...), or "" if unknown.
fn wgrd_state(socket: &Path) -> String {
    wgrctl_json(socket, &["bgp", "neighbors"])
        .ok()
        .and_then(|v| v.get(0)?.get("state")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The Loc-RIB paths for `prefix` (JSON objects of `wgrctl bgp routes`).
fn wgrd_paths(socket: &Path, prefix: &str) -> Vec<serde_json::Value> {
    wgrctl_json(socket, &["bgp", "routes", prefix])
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["prefix"] == prefix)
        .collect()
}

/// Whether wgrd has a best path for `prefix` learned from `peer`.
fn wgrd_learned(socket: &Path, prefix: &str, peer: &str) -> bool {
    wgrd_paths(socket, prefix)
        .iter()
        .any(|p| p["best"] == true && p["peer"] == peer)
}

fn kernel_route(ns: &Netns, family: &str, prefix: &str) -> String {
    ns.ip(&[family, "route", "show", prefix])
        .unwrap_or_default()
}

/// One wgrd ↔ BIRD lab. Fields drop in order: the daemons before the namespaces.
struct BirdLab {
    wgrd: Wgrd,
    bird: Bird,
    _wg: WgGo,
    socket: PathBuf,
    _dir: tempfile::TempDir,
    lab: Lab,
    /// From wgrd's start to Established on both sides.
    session_up: Duration,
    /// From wgrd's start to the routes in both kernels.
    routes_up: Duration,
}

impl BirdLab {
    fn diag(&self) -> String {
        format!(
            "bird:\n{}\n{}\nwgrd neighbors: {:?}\nwgrd routes: {:?}\nwgrd log:\n{}",
            self.bird
                .birdc("show protocols all wgrd")
                .unwrap_or_else(|e| format!("{e:#}")),
            self.bird
                .birdc("show route all")
                .unwrap_or_else(|e| format!("{e:#}")),
            wgrctl_json(&self.socket, &["bgp", "neighbors"]),
            wgrctl_json(&self.socket, &["bgp", "routes"]),
            self.wgrd.log()
        )
    }
}

/// Build the two sites, start wireguard-go and BIRD in rB and wgrd in rA, and wait for
/// the session and the LAN routes in both kernels.
fn bird_lab(mode: Mode) -> Result<BirdLab> {
    wgrd_tests::wgrd::wgrd_bin()?;
    wgrd_tests::wgrd::wgrctl_bin()?;
    let lab = topo::two_sites()?;
    if mode == Mode::LinkLocal {
        // IPv6 LANs; wg0 gets only the fe80::2 we give it (no random link-local one,
        // which BIRD would otherwise pick as its next hop).
        for (ns, ifname, addr) in [
            ("lanA", "eth0", "fd01::2/64"),
            ("rA", "eth-lan", "fd01::1/64"),
            ("lanB", "eth0", "fd02::2/64"),
            ("rB", "eth-lan", "fd02::1/64"),
        ] {
            lab.ns(ns)
                .ip(&["addr", "add", addr, "dev", ifname, "nodad"])?;
        }
        lab.route("lanA", "default via fd01::1")?;
        lab.route("lanB", "default via fd02::1")?;
        lab.ns("rB")
            .sysctl("net.ipv6.conf.default.addr_gen_mode", "1")?;
    }
    let (ka, kb) = (Keypair::generate()?, Keypair::generate()?);
    let dir = tempfile::Builder::new().prefix("wgrdt-bgp-").tempdir()?;
    let (toml, socket) = wgrd_toml(dir.path(), &ka, &kb, mode, 65002)?;
    let wg_addr = match mode {
        Mode::V4Slash31 => "169.254.0.1/31",
        Mode::LinkLocal => "fe80::2/64",
    };
    let wg = WgGo::start(
        lab.ns("rB"),
        &WgGoConf {
            interface: "wg0".into(),
            key: kb.clone(),
            listen_port: 51820,
            addresses: vec![wg_addr.into()],
            peers: vec![WgPeer::any(&ka.public, None)],
            mtu: 1420,
        },
    )?;
    let bird = Bird::start(lab.ns("rB"), &bird_conf(mode))?;
    let started = Instant::now();
    let wgrd = Wgrd::start_raw(lab.ns("rA"), &toml)?;
    let mut l = BirdLab {
        wgrd,
        bird,
        _wg: wg,
        socket,
        _dir: dir,
        lab,
        session_up: Duration::ZERO,
        routes_up: Duration::ZERO,
    };
    wait_until("Established on both sides", CONVERGE, || {
        wgrd_state(&l.socket) == "established" && l.bird.protocol_established("wgrd")
    })
    .with_context(|| l.diag())?;
    l.session_up = started.elapsed();
    let (ra, rb) = (l.lab.ns("rA"), l.lab.ns("rB"));
    let mut want: Vec<(&Netns, &str, &str, &str)> = vec![
        (ra, "-4", "10.2.0.0/24", "dev wgrd0"),
        (rb, "-4", "10.1.0.0/24", "dev wg0"),
    ];
    if mode == Mode::LinkLocal {
        want.push((ra, "-6", "fd02::/64", "dev wgrd0"));
        want.push((rb, "-6", "fd01::/64", "dev wg0"));
    }
    wait_until("the LAN routes in both kernels", CONVERGE, || {
        want.iter()
            .all(|(ns, fam, prefix, dev)| kernel_route(ns, fam, prefix).contains(dev))
    })
    .with_context(|| {
        format!(
            "rA:\n{:?}\n{:?}\nrB:\n{:?}\n{:?}\n{}",
            ra.ip(&["-4", "route"]),
            ra.ip(&["-6", "route"]),
            rb.ip(&["-4", "route"]),
            rb.ip(&["-6", "route"]),
            l.diag()
        )
    })?;
    l.routes_up = started.elapsed();
    Ok(l)
}

/// eBGP over the tunnel's IPv4 /31: Established on both sides, each LAN in the other's
/// RIB and kernel, LAN-to-LAN ping both ways.
#[test]
fn wgrd_and_bird_bgp_over_an_ipv4_31_tunnel() -> Result<()> {
    let Some(_t) = netns_test(
        "wgrd_and_bird_bgp_over_an_ipv4_31_tunnel",
        &["wireguard-go", "wg", "bird", "birdc"],
    ) else {
        return Ok(());
    };
    let l = bird_lab(Mode::V4Slash31)?;
    let diag = || l.diag();

    // wgrd: BIRD's LAN learned from 169.254.0.1 with next hop 169.254.0.1, AS path 65002.
    let paths = wgrd_paths(&l.socket, "10.2.0.0/24");
    let p = paths
        .iter()
        .find(|p| p["best"] == true)
        .with_context(|| format!("no best path for 10.2.0.0/24: {paths:?}\n{}", diag()))?;
    assert_eq!(p["peer"], "169.254.0.1", "{p}");
    assert_eq!(p["next_hop"], "169.254.0.1", "{p}");
    assert_eq!(p["as_path"], serde_json::json!([65002]), "{p}");
    let n = wgrctl_json(&l.socket, &["bgp", "neighbors"])?;
    assert_eq!(n[0]["negotiated"]["ebgp"], true, "{n}");
    assert_eq!(n[0]["negotiated"]["hold_time"], 9, "{n}");
    assert_eq!(n[0]["tunnel"], "to-peer", "{n}");

    // BIRD: wgrd's LAN with AS path 65001 and next hop 169.254.0.0, in its kernel table.
    let r = l.bird.birdc("show route 10.1.0.0/24 all")?;
    assert!(r.contains("BGP.as_path: 65001"), "{r}");
    assert!(r.contains("169.254.0.0"), "{r}");
    let k = kernel_route(l.lab.ns("rB"), "-4", "10.1.0.0/24");
    assert!(k.contains("via 169.254.0.0 dev wg0"), "{k}");

    wait_ping(l.lab.ns("lanA"), "10.2.0.2", Duration::from_secs(10)).with_context(diag)?;
    ping(l.lab.ns("lanA"), "10.2.0.2", 3)?;
    ping(l.lab.ns("lanB"), "10.1.0.2", 3)?;
    println!(
        "IPv4 /31 with BIRD: Established after {:?}, routes in both kernels after {:?}",
        l.session_up, l.routes_up
    );
    let BirdLab { wgrd, bird, .. } = l;
    drop(bird);
    wgrd.stop()?;
    Ok(())
}

/// dn42 style: only fe80:: addresses on the tunnel, one IPv6 session carrying IPv6 routes
/// and IPv4 routes with an IPv6 link-local next hop (RFC 8950). Both kernels route
/// the other's LANs into the tunnel; pings cross in both families.
#[test]
fn wgrd_and_bird_bgp_over_link_local_with_extended_next_hop() -> Result<()> {
    let Some(_t) = netns_test(
        "wgrd_and_bird_bgp_over_link_local_with_extended_next_hop",
        &["wireguard-go", "wg", "bird", "birdc"],
    ) else {
        return Ok(());
    };
    let l = bird_lab(Mode::LinkLocal)?;
    let diag = || l.diag();

    let n = wgrctl_json(&l.socket, &["bgp", "neighbors"])?;
    assert_eq!(n[0]["address"], "fe80::2", "{n}");
    assert_eq!(n[0]["negotiated"]["extended_next_hop"], true, "{n}");
    // BIRD is told to offer RFC 8654 here (its default is off).
    assert_eq!(n[0]["negotiated"]["extended_message"], true, "{n}");
    // wgrd: both of BIRD's LANs from fe80::2 (on tunnel to-peer: a link-local peer is
    // named with its tunnel), with the link-local next hop.
    for prefix in ["10.2.0.0/24", "fd02::/64"] {
        assert!(
            wgrd_learned(&l.socket, prefix, "fe80::2%to-peer"),
            "{prefix}: {:?}\n{}",
            wgrd_paths(&l.socket, prefix),
            diag()
        );
    }
    for p in wgrd_paths(&l.socket, "10.2.0.0/24") {
        // RFC 8950: BIRD's IPv4 LAN with its link-local address as the next hop.
        assert_eq!(p["next_hop"], "fe80::2", "{p}");
    }
    let b = l.bird.birdc("show protocols all wgrd")?;
    assert!(b.contains("Established"), "{b}");
    // Under both "Local capabilities" and "Neighbor capabilities".
    assert_eq!(b.matches("Extended message").count(), 2, "{b}");
    // BIRD: wgrd's IPv4 LAN with an IPv6 next hop, into the kernel as `via inet6`.
    let r = l.bird.birdc("show route 10.1.0.0/24 all")?;
    assert!(r.contains("BGP.as_path: 65001"), "{r}");
    assert!(r.contains("fe80::1"), "{r}");
    let k4 = kernel_route(l.lab.ns("rB"), "-4", "10.1.0.0/24");
    assert!(k4.contains("via inet6 fe80::1 dev wg0"), "{k4}");
    let k6 = kernel_route(l.lab.ns("rB"), "-6", "fd01::/64");
    assert!(k6.contains("via fe80::1 dev wg0"), "{k6}");

    wait_ping(l.lab.ns("lanA"), "10.2.0.2", Duration::from_secs(10)).with_context(diag)?;
    wait_ping(l.lab.ns("lanA"), "fd02::2", Duration::from_secs(10)).with_context(diag)?;
    ping(l.lab.ns("lanB"), "10.1.0.2", 3)?;
    ping(l.lab.ns("lanB"), "fd01::2", 3)?;
    println!(
        "link-local + extended next hop with BIRD: Established after {:?}, IPv4 and IPv6 \
         routes in both kernels after {:?}",
        l.session_up, l.routes_up
    );
    let BirdLab { wgrd, bird, .. } = l;
    drop(bird);
    wgrd.stop()?;
    Ok(())
}

/// BIRD's side goes silent (its namespace drops the underlay UDP): wireguard-go never
/// probes, so only the hold timer (9 s, keepalives every 3 s) can notice. wgrd withdraws
/// BIRD's LAN from its RIB and the kernel within 15 s.
#[test]
fn wgrd_drops_bird_routes_on_hold_timer_after_a_silent_cut() -> Result<()> {
    let Some(_t) = netns_test(
        "wgrd_drops_bird_routes_on_hold_timer_after_a_silent_cut",
        &["wireguard-go", "wg", "bird", "birdc", "nft"],
    ) else {
        return Ok(());
    };
    let l = bird_lab(Mode::V4Slash31)?;
    let diag = || l.diag();
    wait_ping(l.lab.ns("lanA"), "10.2.0.2", Duration::from_secs(10)).with_context(diag)?;

    let cut = Instant::now();
    l.lab.ns("rB").sh("nft add table inet cut && \
         nft add chain inet cut in '{ type filter hook input priority 0; }' && \
         nft add chain inet cut out '{ type filter hook output priority 0; }' && \
         nft add rule inet cut in ip saddr 192.168.77.1 udp dport 51820 drop && \
         nft add rule inet cut out ip daddr 192.168.77.1 udp sport 51820 drop")?;
    let mut rib_gone = None;
    let mut kernel_gone = None;
    let deadline = Duration::from_secs(20);
    while cut.elapsed() < deadline && (rib_gone.is_none() || kernel_gone.is_none()) {
        if rib_gone.is_none() && !wgrd_learned(&l.socket, "10.2.0.0/24", "169.254.0.1") {
            rib_gone = Some(cut.elapsed());
        }
        if kernel_gone.is_none()
            && !kernel_route(l.lab.ns("rA"), "-4", "10.2.0.0/24").contains("wgrd0")
        {
            kernel_gone = Some(cut.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (Some(rib), Some(kernel)) = (rib_gone, kernel_gone) else {
        bail!(
            "BIRD's route still there {deadline:?} after the cut (rib {rib_gone:?}, \
             kernel {kernel_gone:?})\n{}",
            diag()
        );
    };
    let n = wgrctl_json(&l.socket, &["bgp", "neighbors"])?;
    println!(
        "silent cut toward BIRD (hold time 9 s): route out of wgrd's RIB after {rib:?}, \
         out of the kernel after {kernel:?}; neighbor now {} ({})",
        n[0]["state"], n[0]["last_error"]
    );
    assert_ne!(n[0]["state"], "established", "{n}");
    assert!(rib < Duration::from_secs(15), "{rib:?}");
    // Not the tunnel liveness (unarmed toward wireguard-go): the hold timer, so at least
    // the 6 s between the last keepalive (every 3 s) and the 9 s expiry.
    assert!(
        rib > Duration::from_secs(5),
        "{rib:?}: faster than the hold timer?"
    );
    let BirdLab { wgrd, bird, .. } = l;
    drop(bird);
    wgrd.stop()?;
    Ok(())
}

/// GoBGP (AS 65003) over the same IPv4 /31 tunnel: Established, wgrd's LAN in GoBGP's
/// RIB, a route added to GoBGP (`gobgp global rib add`) in wgrd's RIB and kernel.
#[test]
fn wgrd_and_gobgp_exchange_routes_over_a_tunnel() -> Result<()> {
    let Some(_t) = netns_test(
        "wgrd_and_gobgp_exchange_routes_over_a_tunnel",
        &["wireguard-go", "wg", "gobgpd", "gobgp"],
    ) else {
        return Ok(());
    };
    wgrd_tests::wgrd::wgrd_bin()?;
    wgrd_tests::wgrd::wgrctl_bin()?;
    let lab = topo::two_sites()?;
    let (ka, kb) = (Keypair::generate()?, Keypair::generate()?);
    let dir = tempfile::Builder::new().prefix("wgrdt-gobgp-").tempdir()?;
    let (toml, socket) = wgrd_toml(dir.path(), &ka, &kb, Mode::V4Slash31, 65003)?;
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
    let rb = lab.ns("rB");
    let gobgp = GoBgp::start(
        rb,
        r#"
[global.config]
  as = 65003
  router-id = "10.255.0.3"
  local-address-list = ["169.254.0.1"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "169.254.0.0"
    peer-as = 65001
  [neighbors.transport.config]
    local-address = "169.254.0.1"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#,
    )?;
    gobgp.gobgp(rb, &["global", "rib", "add", "-a", "ipv4", "10.2.0.0/24"])?;
    let started = Instant::now();
    let wgrd = Wgrd::start_raw(lab.ns("rA"), &toml)?;
    let diag = || {
        format!(
            "gobgp neighbor: {:?}\ngobgp rib: {:?}\nwgrd neighbors: {:?}\nwgrd routes: {:?}\n\
             wgrd log:\n{}\ngobgpd log:\n{}",
            gobgp.gobgp(rb, &["neighbor", "169.254.0.0"]),
            gobgp.gobgp(rb, &["global", "rib", "-a", "ipv4"]),
            wgrctl_json(&socket, &["bgp", "neighbors"]),
            wgrctl_json(&socket, &["bgp", "routes"]),
            wgrd.log(),
            gobgp.log()
        )
    };
    wait_until("Established on both sides", CONVERGE, || {
        wgrd_state(&socket) == "established"
            && gobgp
                .gobgp(rb, &["neighbor", "169.254.0.0"])
                .is_ok_and(|s| s.to_lowercase().contains("bgp state = established"))
    })
    .with_context(diag)?;
    let up = started.elapsed();
    wait_until("a route each way", CONVERGE, || {
        wgrd_learned(&socket, "10.2.0.0/24", "169.254.0.1")
            && gobgp
                .gobgp(rb, &["global", "rib", "-a", "ipv4", "10.1.0.0/24"])
                .is_ok_and(|s| s.contains("169.254.0.0") && s.contains("65001"))
    })
    .with_context(diag)?;
    let routes = started.elapsed();
    wait_until("GoBGP's route in rA's kernel", CONVERGE, || {
        kernel_route(lab.ns("rA"), "-4", "10.2.0.0/24").contains("dev wgrd0")
    })
    .with_context(diag)?;
    let n = wgrctl_json(&socket, &["bgp", "neighbors"])?;
    assert_eq!(n[0]["remote_as"], 65003, "{n}");
    println!("GoBGP: Established after {up:?}, a route each way after {routes:?}");
    drop(gobgp);
    wgrd.stop()?;
    Ok(())
}

/// FRR's bgpd (AS 65002) on the /31, as FRR ships it: `bgp ebgp-requires-policy` on (so
/// the neighbor has route-maps both ways) and graceful restart in its default helper
/// mode. Its LAN is originated with `network` through a route-map that tags it with a
/// community and a large community.
fn frr_bgpd_conf() -> String {
    "hostname rB\n\
     !\n\
     route-map FROM-WGRD permit 10\n\
     !\n\
     route-map TO-WGRD permit 10\n\
     !\n\
     route-map LAN permit 10\n \
     set community 65002:200\n \
     set large-community 65002:3:4\n\
     !\n\
     router bgp 65002\n \
     bgp router-id 10.255.0.2\n \
     neighbor 169.254.0.0 remote-as 65001\n \
     neighbor 169.254.0.0 timers 3 9\n \
     !\n \
     address-family ipv4 unicast\n  \
     network 10.2.0.0/24 route-map LAN\n  \
     neighbor 169.254.0.0 route-map FROM-WGRD in\n  \
     neighbor 169.254.0.0 route-map TO-WGRD out\n \
     exit-address-family\n\
     !\n"
    .to_string()
}

/// FRR's session state toward wgrd from `show bgp summary json` ("Established", ...).
fn frr_state(frr: &Frr) -> String {
    frr.json("show bgp summary json")
        .ok()
        .and_then(|v| {
            v["ipv4Unicast"]["peers"]["169.254.0.0"]["state"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// FRR's paths for `prefix` (`show bgp ipv4 unicast PREFIX json`), empty if none.
fn frr_paths(frr: &Frr, prefix: &str) -> Vec<serde_json::Value> {
    frr.json(&format!("show bgp ipv4 unicast {prefix} json"))
        .ok()
        .and_then(|v| v["paths"].as_array().cloned())
        .unwrap_or_default()
}

/// Every string in a JSON value (a list of communities, whatever its shape).
fn json_strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().flat_map(json_strings).collect(),
        serde_json::Value::Object(m) => m.values().flat_map(json_strings).collect(),
        other => vec![other.to_string()],
    }
}

/// eBGP with FRR's bgpd over the tunnel's /31: Established on both sides, each LAN in the
/// other's RIB and kernel, LAN-to-LAN ping both ways; communities and large communities
/// cross both ways (wgrd's announced with `wgrctl bgp announce`, FRR's set by a
/// route-map) and an announced prefix is withdrawn again.
#[test]
fn wgrd_and_frr_bgp_over_an_ipv4_31_tunnel_with_communities() -> Result<()> {
    let Some(_t) = netns_test(
        "wgrd_and_frr_bgp_over_an_ipv4_31_tunnel_with_communities",
        &[
            "wireguard-go",
            "wg",
            "vtysh",
            "/usr/lib/frr/zebra",
            "/usr/lib/frr/bgpd",
        ],
    ) else {
        return Ok(());
    };
    let version = frr_version().unwrap_or_else(|| "?".into());
    wgrd_tests::wgrd::wgrd_bin()?;
    wgrd_tests::wgrd::wgrctl_bin()?;
    let lab = topo::two_sites()?;
    let (ka, kb) = (Keypair::generate()?, Keypair::generate()?);
    let dir = tempfile::Builder::new()
        .prefix("wgrdt-frr-bgp-")
        .tempdir()?;
    let (toml, socket) = wgrd_toml(dir.path(), &ka, &kb, Mode::V4Slash31, 65002)?;
    let (ra, rb) = (lab.ns("rA"), lab.ns("rB"));
    let _wg = WgGo::start(
        rb,
        &WgGoConf {
            interface: "wg0".into(),
            key: kb.clone(),
            listen_port: 51820,
            addresses: vec!["169.254.0.1/31".into()],
            peers: vec![WgPeer::any(&ka.public, None)],
            mtu: 1420,
        },
    )?;
    let frr = Frr::start_bgp(rb, &frr_bgpd_conf())?;
    let started = Instant::now();
    let wgrd = Wgrd::start_raw(ra, &toml)?;
    let diag = || {
        format!(
            "frr summary: {:?}\nfrr neighbor: {:?}\nfrr rib: {:?}\nwgrd neighbors: {:?}\n\
             wgrd routes: {:?}\nrA: {:?}\nrB: {:?}\nwgrd log:\n{}\nfrr logs:\n{}",
            frr.vtysh(&["show bgp summary"]),
            frr.vtysh(&["show bgp neighbors 169.254.0.0"]),
            frr.vtysh(&["show bgp ipv4 unicast"]),
            wgrctl_json(&socket, &["bgp", "neighbors"]),
            wgrctl_json(&socket, &["bgp", "routes"]),
            ra.ip(&["-4", "route"]),
            rb.ip(&["-4", "route"]),
            wgrd.log(),
            frr.log()
        )
    };
    wait_until("Established on both sides", CONVERGE, || {
        wgrd_state(&socket) == "established" && frr_state(&frr) == "Established"
    })
    .with_context(diag)?;
    let up = started.elapsed();
    // Each direction timed on its own: (FRR's LAN in rA's kernel, wgrd's in rB's).
    let (mut in_ra, mut in_rb) = (None, None);
    wait_until("the LAN routes in both kernels", CONVERGE, || {
        if in_ra.is_none() && kernel_route(ra, "-4", "10.2.0.0/24").contains("dev wgrd0") {
            in_ra = Some(started.elapsed());
        }
        if in_rb.is_none()
            && kernel_route(rb, "-4", "10.1.0.0/24").contains("via 169.254.0.0 dev wg0")
        {
            in_rb = Some(started.elapsed());
        }
        in_ra.is_some() && in_rb.is_some()
    })
    .with_context(diag)?;
    let routes = started.elapsed();
    println!(
        "FRR's LAN in wgrd's kernel after {in_ra:?}, wgrd's LAN in FRR's kernel after {in_rb:?}"
    );
    wait_ping(lab.ns("lanA"), "10.2.0.2", Duration::from_secs(10)).with_context(diag)?;
    ping(lab.ns("lanA"), "10.2.0.2", 3)?;
    ping(lab.ns("lanB"), "10.1.0.2", 3)?;

    // What the session negotiated, as each side sees it.
    let n = wgrctl_json(&socket, &["bgp", "neighbors"])?;
    assert_eq!(n[0]["remote_as"], 65002, "{n}");
    assert_eq!(n[0]["negotiated"]["ebgp"], true, "{n}");
    assert_eq!(n[0]["negotiated"]["hold_time"], 9, "{n}");
    let fnb = frr.json("show bgp neighbors 169.254.0.0 json")?;
    let fnb = &fnb["169.254.0.0"];
    // Extended messages (RFC 8654): both sides tell the same story.
    let frr_ext = fnb["neighborCapabilities"]["extendedMessage"] == "advertisedAndReceived";
    assert_eq!(
        n[0]["negotiated"]["extended_message"], frr_ext,
        "FRR: {}; wgrd: {n}",
        fnb["neighborCapabilities"]
    );
    println!(
        "FRR {version}: graceful restart (FRR's view): {}; {}; wgrd negotiated: {}",
        fnb["gracefulRestartInfo"],
        fnb["neighborCapabilities"]["gracefulRestart"],
        n[0]["negotiated"]
    );

    // FRR -> wgrd: the LAN with the route-map's communities.
    let paths = wgrd_paths(&socket, "10.2.0.0/24");
    let p = paths
        .iter()
        .find(|p| p["best"] == true)
        .with_context(|| format!("no best path for 10.2.0.0/24: {paths:?}\n{}", diag()))?;
    println!("wgrd's path from FRR: {p}");
    assert_eq!(p["peer"], "169.254.0.1", "{p}");
    assert_eq!(p["next_hop"], "169.254.0.1", "{p}");
    assert_eq!(p["as_path"], serde_json::json!([65002]), "{p}");
    assert_eq!(json_strings(&p["communities"]), ["65002:200"], "{p}");
    assert_eq!(json_strings(&p["large_communities"]), ["65002:3:4"], "{p}");

    // wgrd -> FRR: its LAN, then an announced prefix with communities.
    let fp = frr_paths(&frr, "10.1.0.0/24");
    assert!(
        fp.iter().any(|p| p["aspath"]["string"] == "65001"),
        "{fp:?}"
    );
    let wgrctl = wgrd_tests::wgrd::wgrctl_bin()?;
    let wgrctl = wgrctl.to_string_lossy().to_string();
    let sock = socket.to_string_lossy().to_string();
    let announced = Instant::now();
    wgrd_tests::util::run(
        "wgrctl",
        &[
            &wgrctl,
            "--socket",
            &sock,
            "bgp",
            "announce",
            "10.9.0.0/24",
            "--community",
            "65001:100",
            "--large-community",
            "65001:1:2",
        ],
        Duration::from_secs(10),
    )?;
    wait_until("the announced prefix in FRR", CONVERGE, || {
        !frr_paths(&frr, "10.9.0.0/24").is_empty()
    })
    .with_context(diag)?;
    let in_frr = announced.elapsed();
    let fp = frr_paths(&frr, "10.9.0.0/24");
    println!("FRR's path for 10.9.0.0/24: {}", fp[0]);
    assert_eq!(fp[0]["community"]["string"], "65001:100", "{fp:?}");
    assert_eq!(fp[0]["largeCommunity"]["string"], "65001:1:2", "{fp:?}");
    assert_eq!(fp[0]["aspath"]["string"], "65001", "{fp:?}");
    assert_eq!(fp[0]["nexthops"][0]["ip"], "169.254.0.0", "{fp:?}");
    wait_until("the announced prefix in rB's kernel", CONVERGE, || {
        kernel_route(rb, "-4", "10.9.0.0/24").contains("via 169.254.0.0 dev wg0")
    })
    .with_context(diag)?;

    wgrd_tests::util::run(
        "wgrctl",
        &[&wgrctl, "--socket", &sock, "bgp", "withdraw", "10.9.0.0/24"],
        Duration::from_secs(10),
    )?;
    let withdrawn = Instant::now();
    wait_until("the withdrawn prefix out of FRR", CONVERGE, || {
        frr_paths(&frr, "10.9.0.0/24").is_empty()
            && kernel_route(rb, "-4", "10.9.0.0/24").is_empty()
    })
    .with_context(diag)?;
    println!(
        "FRR {version}: Established after {up:?}, LAN routes in both kernels after \
         {routes:?}; announced prefix in FRR after {in_frr:?}, withdrawn after {:?}",
        withdrawn.elapsed()
    );
    drop(frr);
    wgrd.stop()?;
    Ok(())
}
