//! The site-gateway strategy of docs/nat.md with no static route on the site: wgrd on
//! the VPN router speaks eBGP (kernel TCP, TCP-MD5) with the site's router, BIRD 2, over
//! the LAN. wgrd announces the remote endpoint's prefix, BIRD announces the site's LAN;
//! the site host and the endpoint then reach each other in both directions with their own
//! addresses, and no NAT anywhere.
//!
//! ```text
//! ep: wireguard-go wg0 10.77.0.1/24 [eth-wan 192.168.77.2] ═══ [192.168.77.1 eth-wan] vpn: wgrd (TUN wgrd0 10.9.0.1)
//!                                                                                      [eth1 192.168.50.2]
//!                                                                                           |  eBGP 65010 <-> 65020
//!                                                                               site: [eth-lan 192.168.50.1] BIRD 2
//!                                                                                     [eth-site 192.168.60.1]
//!                                                                                           |
//!                                                                               host: eth0 192.168.60.10 (default via .1)
//! ```
//!
//! What is configured by hand, and where: the endpoint routes the site's LAN into its
//! tunnel (its `AllowedIPs`); wgrd has the endpoint's prefix via the tunnel and the LAN
//! via the host (both in its config); the VPN router's kernel has its LAN gateway (the
//! site router) as default route, as any host on that LAN would; the site host has its
//! default gateway. The site router has no static route: it learns 10.77.0.0/24 from wgrd.
//!
//! Namespace test: WGRD_NETNS_TESTS=1 as root.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};
use wgrd_tests::{
    fetch, netns_test, ping, wait_ping, wait_until, wgrctl_json, who_server, Bird, Keypair, Lab,
    Netns, WgGo, WgGoConf, WgPeer, Wgrd,
};

const CONVERGE: Duration = Duration::from_secs(30);
const MD5_PASSWORD: &str = "site-gateway-md5";

/// The site's router: eBGP with wgrd, its LAN 192.168.60.0/24 out (a `direct` route),
/// everything from wgrd in, BGP routes into the kernel. No `static` protocol.
fn bird_conf(password: &str) -> String {
    format!(
        r#"
log stderr all;
router id 192.168.50.1;
protocol device {{ scan time 1; }}
protocol direct {{ ipv4; interface "eth-site"; }}
protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}
protocol bgp wgrd {{
    local 192.168.50.1 as 65020;
    neighbor 192.168.50.2 as 65010;
    password "{password}";
    connect delay time 1;
    connect retry time 5;
    error wait time 1, 10;
    ipv4 {{ import all; export where net = 192.168.60.0/24; }};
}}
"#
    )
}

/// wgrd on the VPN router: the tunnel to the endpoint and its prefix (static, via the
/// tunnel), the LAN via the host, and eBGP with the site router over kernel TCP with
/// TCP-MD5. Static routes are redistributed; the export policy lets only the endpoints'
/// prefixes out (not the LAN route); the import policy takes what the site sends.
fn wgrd_toml(dir: &Path, kv: &Keypair, ke: &Keypair) -> Result<String> {
    let secret = |name: &str, text: &str| -> Result<String> {
        let p = dir.join(name);
        std::fs::write(&p, format!("{text}\n"))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
        Ok(p.display().to_string())
    };
    let key_file = secret("vpn.key", &kv.private)?;
    let md5_file = secret("bgp-site.key", MD5_PASSWORD)?;
    let socket = dir.join("wgrd.sock");
    Ok(format!(
        r#"[router]
router-id = "10.255.0.1"
private-key-file = "{key_file}"

[host]
interface = "wgrd0"
addresses = ["10.9.0.1/32"]
export-routes = true

[[tunnel]]
name = "to-ep"
peer-public-key = "{ep_pub}"
endpoint = "192.168.77.2:51820"
persistent-keepalive = 5
addresses = ["169.254.0.0/31"]

[[route]]
prefix = "10.77.0.0/24"
via = "to-ep"

[bgp]
asn = 65010
redistribute = ["static"]

[[bgp.neighbor]]
address = "192.168.50.1"
remote-as = 65020
password-file = "{md5_file}"
import = "all"
export = "endpoints"

[[policy]]
name = "all"
default = "accept"

[[policy]]
name = "endpoints"
rules = [{{ match = {{ prefix-list = ["10.77.0.0/16 le 32"] }}, action = "accept" }}]

[control]
socket = "{socket}"
"#,
        ep_pub = ke.public,
        socket = socket.display(),
    ))
}

/// TcpExt TCPMD5Failure of `ns`: segments dropped for a wrong TCP-MD5 signature.
fn md5_failures(ns: &Netns) -> Result<u64> {
    let text = ns.exec(&["cat", "/proc/net/netstat"])?;
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    anyhow::ensure!(lines.len() == 2, "TcpExt in /proc/net/netstat: {text}");
    let names = lines[0].split_whitespace();
    let values = lines[1].split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == "TCPMD5Failure")
        .context("no TCPMD5Failure counter")?
        .1
        .parse()
        .context("TCPMD5Failure")
}

/// Routes of `ns` (all tables, IPv4) that neither the kernel (connected, local) nor BIRD
/// made: what someone added by hand.
fn manual_routes(ns: &Netns) -> Result<Vec<String>> {
    Ok(ns
        .ip(&["-4", "route", "show", "table", "all"])?
        .lines()
        .filter(|l| !l.contains("proto kernel") && !l.contains("proto bird"))
        .map(str::to_owned)
        .collect())
}

/// The site-gateway recipe with BGP: BIRD learns the endpoint's prefix from wgrd and
/// installs it via the VPN router, wgrd learns the site's LAN; the site host and the
/// endpoint ping each other and open TCP connections both ways, each seeing the other's
/// own address; when wgrd stops, BIRD withdraws the route.
#[test]
fn site_gateway_over_bgp_with_bird() -> Result<()> {
    let Some(_t) = netns_test(
        "site_gateway_over_bgp_with_bird",
        &["wireguard-go", "wg", "bird", "birdc", "curl"],
    ) else {
        return Ok(());
    };
    wgrd_tests::wgrd::wgrd_bin()?;
    wgrd_tests::wgrd::wgrctl_bin()?;
    let dir = tempfile::Builder::new().prefix("wgrdt-sitegw-").tempdir()?;

    let mut lab = Lab::new();
    lab.add("ep")?;
    lab.add_router("vpn")?;
    lab.add_router("site")?;
    lab.add("host")?;
    lab.link("ep", "eth-wan", "vpn", "eth-wan")?;
    lab.addr("ep", "eth-wan", "192.168.77.2/24")?;
    lab.addr("vpn", "eth-wan", "192.168.77.1/24")?;
    lab.link("vpn", "eth1", "site", "eth-lan")?;
    lab.addr("vpn", "eth1", "192.168.50.2/24")?;
    lab.addr("site", "eth-lan", "192.168.50.1/24")?;
    lab.link("site", "eth-site", "host", "eth0")?;
    lab.addr("site", "eth-site", "192.168.60.1/24")?;
    lab.addr("host", "eth0", "192.168.60.10/24")?;
    // Each host's gateway, as DHCP would give it: the site host's is the site router, and
    // so is the VPN router's (that is how its kernel reaches the site's other subnets).
    lab.route("host", "default via 192.168.60.1")?;
    lab.route("vpn", "default via 192.168.50.1")?;
    let (ep_ns, vpn_ns, site, host) = (lab.ns("ep"), lab.ns("vpn"), lab.ns("site"), lab.ns("host"));

    // The endpoint: its tunnel carries the site's LAN (wg-quick's AllowedIPs).
    let (kv, ke) = (Keypair::generate()?, Keypair::generate()?);
    let _ep = WgGo::start(
        ep_ns,
        &WgGoConf {
            interface: "wg0".into(),
            key: ke.clone(),
            listen_port: 51820,
            addresses: vec!["10.77.0.1/24".into()],
            peers: vec![WgPeer::any(&kv.public, None)],
            mtu: 1420,
        },
    )?;
    lab.route("ep", "192.168.60.0/24 dev wg0")?;

    let bird = Bird::start(site, &bird_conf(MD5_PASSWORD))?;
    let toml = wgrd_toml(dir.path(), &kv, &ke)?;
    let wgrd = Wgrd::start_raw(vpn_ns, &toml)?;
    vpn_ns
        .wait_link_up("wgrd0", Duration::from_secs(10))
        .with_context(|| format!("wgrd did not come up; log:\n{}", wgrd.log()))?;
    let socket = dir.path().join("wgrd.sock");

    // The session: BIRD says Established and installs the endpoint's prefix via the VPN
    // router's LAN address.
    let t0 = Instant::now();
    let learned = || {
        site.ip(&["-4", "route", "show", "10.77.0.0/24"])
            .unwrap_or_default()
    };
    wait_until("BIRD to install 10.77.0.0/24 from wgrd", CONVERGE, || {
        learned().contains("via 192.168.50.2")
    })
    .with_context(|| {
        format!(
            "bird: {}\nwgrd neighbors: {:?}",
            bird.birdc("show protocols all wgrd").unwrap_or_default(),
            wgrctl_json(&socket, &["bgp", "neighbors"])
        )
    })?;
    println!(
        "BIRD learned 10.77.0.0/24 in {:.1} s: {}",
        t0.elapsed().as_secs_f64(),
        learned().trim()
    );
    let route = learned();
    assert!(
        route.contains("dev eth-lan") && route.contains("proto bird"),
        "{route}"
    );
    let protocols = bird.birdc("show protocols all wgrd")?;
    assert!(protocols.contains("Established"), "{protocols}");
    // TCP-MD5: BIRD's socket carries the key for wgrd's address, and the kernel drops
    // unsigned or wrongly signed segments, so an established session means wgrd signs
    // with the right key. (Only the key's presence is checked: `ss -e` prints the key.)
    let sock = site.exec(&["ss", "-Htnie", "( sport = :179 or dport = :179 )"])?;
    assert!(
        sock.contains("ESTAB") && sock.contains("md5keys:192.168.50.2/32"),
        "no TCP-MD5 key on the site router's BGP socket"
    );
    let bird_route = bird.birdc("show route 10.77.0.0/24 all")?;
    assert!(bird_route.contains("BGP.as_path: 65010"), "{bird_route}");
    // Only the endpoints' prefixes were exported (the export policy), not the tunnel's
    // connected /31.
    let bird_all = bird.birdc("show route protocol wgrd")?;
    assert!(!bird_all.contains("169.254.0.0"), "{bird_all}");

    // Nothing on the site router was added by hand: its routes are connected or BIRD's.
    let manual = manual_routes(site)?;
    assert!(
        manual.is_empty(),
        "hand-made routes on the site router: {manual:?}"
    );

    // wgrd learned the site's LAN over BGP and installed it toward the host: its next
    // hop is the LAN neighbor itself, which the host's kernel reaches (wgrd has no route
    // for the LAN at all).
    let site_lan = |v: &serde_json::Value| -> Option<serde_json::Value> {
        v.as_array()?
            .iter()
            .find(|r| r["prefix"] == "192.168.60.0/24" && r["best"] == true)
            .cloned()
    };
    wait_until("wgrd to install 192.168.60.0/24", CONVERGE, || {
        wgrctl_json(&socket, &["routes"]).is_ok_and(|v| site_lan(&v).is_some())
    })
    .with_context(|| format!("bgp routes: {:?}", wgrctl_json(&socket, &["bgp", "routes"])))?;
    let rib = wgrctl_json(&socket, &["routes"])?;
    let lan = site_lan(&rib).context("192.168.60.0/24 in the RIB")?;
    assert_eq!(lan["source"], "ebgp", "{lan}");
    assert_eq!(lan["next_hop"], "host", "{lan}");
    println!("wgrd routes: {rib}");
    println!(
        "wgrd bgp routes: {}",
        wgrctl_json(&socket, &["bgp", "routes"])?
    );
    let neighbors = wgrctl_json(&socket, &["bgp", "neighbors"])?;
    println!("wgrd neighbors: {neighbors}");
    assert_eq!(neighbors[0]["state"], "established", "{neighbors}");
    assert_eq!(neighbors[0]["prefixes_advertised"], 1, "{neighbors}");
    // wgrd exports only routes into its tunnels to the kernel; the site's LAN is reached
    // through the kernel's own gateway (the default route above).
    println!(
        "VPN router's kernel route to the site LAN: {}",
        vpn_ns.ip(&["-4", "route", "get", "192.168.60.10"])?.trim()
    );

    // Both directions initiate: ping ...
    wait_ping(host, "10.77.0.1", CONVERGE)?;
    ping(host, "10.77.0.1", 3)?;
    ping(ep_ns, "192.168.60.10", 3)?;
    // ... and TCP, each side seeing the other's own address (no NAT).
    who_server(ep_ns, "10.77.0.1", 80, "endpoint", dir.path())?;
    who_server(host, "192.168.60.10", 7000, "site", dir.path())?;
    assert_eq!(
        fetch(host, "http://10.77.0.1:80/")?,
        "endpoint 192.168.60.10",
        "the endpoint sees the site host's own address"
    );
    assert_eq!(
        fetch(ep_ns, "http://192.168.60.10:7000/")?,
        "site 10.77.0.1",
        "the site host sees the endpoint's own address"
    );
    // No NAT table on the VPN router.
    if let Ok(rules) = vpn_ns.exec(&["nft", "list", "ruleset"]) {
        assert!(
            !rules.contains("masquerade") && !rules.contains("nat"),
            "{rules}"
        );
    }

    // The route is learned, not configured: when wgrd stops, BIRD withdraws it.
    wgrd.stop()?;
    wait_until("BIRD to withdraw 10.77.0.0/24", CONVERGE, || {
        !learned().contains("10.77.0.0/24")
    })?;

    // TCP-MD5 is enforced: with another password on BIRD's side, wgrd started again gets
    // no session and no route, and the kernels count segments with a wrong signature.
    bird.reconfigure(&bird_conf("not-the-same-key"))?;
    let failures_before = md5_failures(site)? + md5_failures(vpn_ns)?;
    let wgrd = Wgrd::start_raw(vpn_ns, &toml)?;
    vpn_ns.wait_link_up("wgrd0", Duration::from_secs(10))?;
    wait_until("segments refused for their MD5 signature", CONVERGE, || {
        md5_failures(site).unwrap_or(0) + md5_failures(vpn_ns).unwrap_or(0) > failures_before
    })?;
    std::thread::sleep(Duration::from_secs(3));
    let protocols = bird.birdc("show protocols wgrd")?;
    assert!(!protocols.contains("Established"), "{protocols}");
    assert!(!learned().contains("10.77.0.0/24"), "{}", learned());
    let neighbors = wgrctl_json(&socket, &["bgp", "neighbors"])?;
    assert_ne!(neighbors[0]["state"], "established", "{neighbors}");
    println!(
        "wrong key: {} segments refused, wgrd neighbor {}",
        md5_failures(site)? + md5_failures(vpn_ns)? - failures_before,
        neighbors[0]["state"]
    );
    wgrd.stop()?;
    Ok(())
}
