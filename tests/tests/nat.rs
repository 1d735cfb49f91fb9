//! Point-to-site strategies end to end (docs/nat.md): masquerading and port forwarding
//! from `[nat]` (the kernel's nftables, in wgrd's own table `inet wgrd`), and TCP MSS
//! clamping in wgrd's data path when ICMP is filtered on the path.
//!
//! Layout (everything inside namespaces this test creates; `nft` runs only inside them):
//!
//! ```text
//! ep: wireguard-go wg0 10.0.0.1/24 [eth-wan 192.168.77.2] ——— [192.168.77.1 eth-wan] vpn: wgrd (TUN wgrd0 10.9.0.1)
//!                                                                                       [eth-lan 192.168.1.1]
//!                                                                                            |
//!                                                                                 site: eth0 192.168.1.2
//! ```
//!
//! Namespace tests: set WGRD_NETNS_TESTS=1 and run as root (see README.md).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Duration;
use wgrd_tests::{
    fetch, iperf, netns_test, wait_ping, wait_until, who_server, Keypair, Lab, Netns, WgGo,
    WgGoConf, WgPeer, Wgrd,
};

const HANDSHAKE_WAIT: Duration = Duration::from_secs(15);

/// The endpoint, the VPN router and the site host, wired but with no daemon yet.
fn lab() -> Result<Lab> {
    let mut lab = Lab::new();
    lab.add("ep")?;
    lab.add("vpn")?;
    lab.add("site")?;
    // Forwarding and rp_filter stay at the namespace defaults (off / as created): wgrd
    // must report or set what it needs.
    lab.ns("vpn").sysctl("net.ipv4.conf.all.rp_filter", "0")?;
    lab.ns("vpn")
        .sysctl("net.ipv4.conf.default.rp_filter", "0")?;
    lab.link("ep", "eth-wan", "vpn", "eth-wan")?;
    lab.addr("ep", "eth-wan", "192.168.77.2/24")?;
    lab.addr("vpn", "eth-wan", "192.168.77.1/24")?;
    lab.link("site", "eth0", "vpn", "eth-lan")?;
    lab.addr("site", "eth0", "192.168.1.2/24")?;
    lab.addr("vpn", "eth-lan", "192.168.1.1/24")?;
    Ok(lab)
}

/// wireguard-go on the endpoint: wg0 10.0.0.1/24, MTU `mtu`, accepting everything from
/// the VPN router.
fn endpoint(lab: &Lab, ep: &Keypair, vpn: &Keypair, mtu: u16) -> Result<WgGo> {
    WgGo::start(
        lab.ns("ep"),
        &WgGoConf {
            interface: "wg0".into(),
            key: ep.clone(),
            listen_port: 51820,
            addresses: vec!["10.0.0.1/24".into()],
            peers: vec![WgPeer::any(&vpn.public, None)],
            mtu,
        },
    )
}

/// wgrd's config on the VPN router: one tunnel to the endpoint, `extra` appended.
fn vpn_config(dir: &Path, key: &Keypair, ep: &Keypair, extra: &str) -> Result<String> {
    let key_file = dir.join("vpn.key");
    std::fs::write(&key_file, format!("{}\n", key.private))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    Ok(format!(
        r#"[router]
router-id = "10.255.0.1"
private-key-file = "{}"

[host]
interface = "wgrd0"
addresses = ["10.9.0.1/32"]
export-routes = true
mtu = 1500

[[tunnel]]
name = "to-ep"
peer-public-key = "{}"
endpoint = "192.168.77.2:51820"
persistent-keepalive = 5
addresses = ["169.254.0.0/31"]

[[route]]
prefix = "10.0.0.0/24"
via = "to-ep"

[[route]]
prefix = "192.168.1.0/24"
via = "host"
{extra}"#,
        key_file.display(),
        ep.public
    ))
}

fn start_wgrd(ns: &Netns, toml: &str) -> Result<Wgrd> {
    let w = Wgrd::start_raw(ns, toml)?;
    ns.wait_link_up("wgrd0", Duration::from_secs(10))
        .with_context(|| format!("wgrd did not come up; log:\n{}", w.log()))?;
    Ok(w)
}

fn nft(ns: &Netns, args: &[&str]) -> Result<String> {
    let mut full = vec!["nft"];
    full.extend_from_slice(args);
    ns.exec(&full)
}

/// Masquerading (the site sees the router; it cannot initiate toward the endpoint), port
/// forwarding (the site reaches the endpoint's service through the router's LAN address),
/// and the clean-up: wgrd's table goes, a table made before wgrd stays as it was.
#[test]
fn masquerade_and_port_forward() -> Result<()> {
    let Some(_t) = netns_test(
        "masquerade_and_port_forward",
        &["wireguard-go", "wg", "nft", "curl"],
    ) else {
        return Ok(());
    };
    let dir = tempfile::Builder::new().prefix("wgrdt-nat-").tempdir()?;
    let lab = lab()?;
    let (vpn_ns, site, ep_ns) = (lab.ns("vpn"), lab.ns("site"), lab.ns("ep"));
    // The endpoint routes the site's LAN and the router's TUN address into its tunnel; the
    // site host only knows its LAN (it does not route anything to the VPN router).
    let (kv, ke) = (Keypair::generate()?, Keypair::generate()?);
    let _ep = endpoint(&lab, &ke, &kv, 1420)?;
    lab.route("ep", "192.168.1.0/24 dev wg0")?;
    lab.route("ep", "10.9.0.0/24 dev wg0")?;

    // Somebody else's table, made before wgrd starts.
    nft(
        vpn_ns,
        &[
            "add table inet unrelated ; add chain inet unrelated input { type filter hook input priority 0 ; policy accept ; } ; add rule inet unrelated input tcp dport 9 accept",
        ],
    )?;
    let unrelated_before = nft(vpn_ns, &["list", "table", "inet", "unrelated"])?;

    let toml = vpn_config(
        dir.path(),
        &kv,
        &ke,
        r#"
[nat]
set-sysctls = true

[[nat.masquerade]]
from = ["tunnel:*"]
out-interface = "eth-lan"

[[nat.port-forward]]
in-interface = "eth-lan"
protocol = "tcp"
port = 8080
to = "10.0.0.1:80"
"#,
    )?;
    let wgrd = start_wgrd(vpn_ns, &toml)?;
    let table = nft(vpn_ns, &["list", "table", "inet", "wgrd"])?;
    assert!(table.contains("masquerade"), "{table}");
    let forward = vpn_ns.exec(&["cat", "/proc/sys/net/ipv4/ip_forward"])?;
    assert_eq!(
        forward.trim(),
        "1",
        "set-sysctls = true turns forwarding on"
    );

    who_server(site, "192.168.1.2", 7000, "site", dir.path())?;
    who_server(ep_ns, "10.0.0.1", 80, "endpoint", dir.path())?;

    // Masquerading: the endpoint initiates; the site host sees the router's LAN address.
    wait_ping(ep_ns, "192.168.1.2", HANDSHAKE_WAIT)?;
    let seen = fetch(ep_ns, "http://192.168.1.2:7000/")?;
    assert_eq!(
        seen, "site 192.168.1.1",
        "the site sees the router as the source"
    );

    // ... and the site host cannot initiate toward the endpoint.
    if let Ok(body) = fetch(site, "http://10.0.0.1:80/") {
        bail!("the site host reached the endpoint directly: {body}");
    }

    // Port forwarding: the site host reaches the endpoint's service via the router's LAN
    // address; the endpoint sees the router's TUN address (masqueraded toward wgrd).
    let seen = fetch(site, "http://192.168.1.1:8080/")?;
    assert_eq!(seen, "endpoint 10.9.0.1");

    // Counters are in the kernel, per config entry.
    let json = nft(vpn_ns, &["-j", "list", "table", "inet", "wgrd"])?;
    let v: serde_json::Value = serde_json::from_str(&json)?;
    let packets = |comment: &str| -> u64 {
        v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["rule"]["comment"] == comment)
            .flat_map(|i| i["rule"]["expr"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["counter"]["packets"].as_u64())
            .sum()
    };
    assert!(packets("masquerade[1]") > 0, "{json}");
    assert!(packets("port-forward[1]") > 0, "{json}");

    wgrd.stop()?;
    let ruleset = nft(vpn_ns, &["list", "ruleset"])?;
    assert!(!ruleset.contains("table inet wgrd"), "{ruleset}");
    let unrelated_after = nft(vpn_ns, &["list", "table", "inet", "unrelated"])?;
    assert_eq!(
        unrelated_after, unrelated_before,
        "another table was touched"
    );
    Ok(())
}

/// A config with a bad NAT rule is refused before anything starts, naming the field;
/// nothing reaches the kernel's ruleset.
#[test]
fn bad_nat_refuses_to_start_and_leaves_nothing() -> Result<()> {
    let Some(_t) = netns_test("bad_nat_refuses_to_start_and_leaves_nothing", &["nft"]) else {
        return Ok(());
    };
    let dir = tempfile::Builder::new().prefix("wgrdt-nat-").tempdir()?;
    let lab = lab()?;
    let (kv, ke) = (Keypair::generate()?, Keypair::generate()?);
    let toml = vpn_config(
        dir.path(),
        &kv,
        &ke,
        "[[nat.port-forward]]\nin-interface = \"eth-lan\"\nprotocol = \"sctp\"\nport = 1\nto = \"10.0.0.1:80\"\n",
    )?;
    let mut w = Wgrd::start_raw(lab.ns("vpn"), &toml)?;
    wait_until("wgrd to exit", Duration::from_secs(10), || !w.is_running())?;
    let log = w.log();
    assert!(
        log.contains("nat.port-forward[1].protocol") && log.contains("\"tcp\" or \"udp\""),
        "{log}"
    );
    let ruleset = nft(lab.ns("vpn"), &["list", "ruleset"])?;
    assert!(!ruleset.contains("wgrd"), "{ruleset}");
    Ok(())
}

/// With ICMP "fragmentation needed" dropped before it reaches the site host, a bulk TCP
/// upload through a tunnel whose MTU (1300) is below both ends' links still completes,
/// because wgrd clamps the MSS of the SYN and SYN-ACK. With clamping off, the same
/// transfer stalls (the black hole this exists for).
#[test]
fn mss_clamp_survives_an_icmp_black_hole() -> Result<()> {
    let Some(_t) = netns_test(
        "mss_clamp_survives_an_icmp_black_hole",
        &["wireguard-go", "wg", "nft", "iperf3"],
    ) else {
        return Ok(());
    };
    let dir = tempfile::Builder::new().prefix("wgrdt-mss-").tempdir()?;
    let lab = lab()?;
    lab.ns("vpn").sysctl("net.ipv4.ip_forward", "1")?;
    let (kv, ke) = (Keypair::generate()?, Keypair::generate()?);
    let _ep = endpoint(&lab, &ke, &kv, 1420)?;
    lab.route("ep", "192.168.1.0/24 dev wg0")?;
    lab.route("site", "10.0.0.0/24 via 192.168.1.1")?;
    // The black hole: the site host never hears that its packets were too big.
    nft(
        lab.ns("site"),
        &["add table inet blackhole ; add chain inet blackhole input { type filter hook input priority 0 ; policy accept ; } ; add rule inet blackhole input icmp type destination-unreachable icmp code frag-needed counter drop"],
    )?;

    let run = |clamp: bool| -> Result<(Wgrd, Result<wgrd_tests::Iperf>)> {
        let extra = format!("\n[forwarding]\nmss-clamp = {clamp}\n");
        let mut toml = vpn_config(dir.path(), &kv, &ke, &extra)?;
        toml = toml.replace(
            "addresses = [\"169.254.0.0/31\"]",
            "addresses = [\"169.254.0.0/31\"]\nmtu = 1300",
        );
        let w = start_wgrd(lab.ns("vpn"), &toml)?;
        wait_ping(lab.ns("site"), "10.0.0.1", HANDSHAKE_WAIT)?;
        let r = iperf(lab.ns("site"), lab.ns("ep"), "10.0.0.1", 2);
        Ok((w, r))
    };

    let (w, clamped) = run(true)?;
    let clamped = clamped.context("upload with MSS clamping")?;
    println!(
        "with clamping: {:.3} Gbit/s, {} bytes",
        clamped.gbps(),
        clamped.bytes
    );
    assert!(clamped.bytes > 1_000_000, "{clamped:?}");
    w.stop()?;

    let (w, unclamped) = run(false)?;
    match &unclamped {
        Ok(r) => {
            println!("without clamping: {} bytes", r.bytes);
            assert!(
                r.bytes < clamped.bytes / 10,
                "without clamping the transfer should stall in the black hole: {r:?}"
            );
        }
        Err(e) => println!("without clamping the transfer failed, as expected: {e:#}"),
    }
    let dropped = nft(lab.ns("site"), &["list", "table", "inet", "blackhole"])?;
    assert!(
        !dropped.contains("packets 0 "),
        "no frag-needed was dropped: {dropped}"
    );
    w.stop()?;
    Ok(())
}
