//! OSPF interoperability: wgrd's OSPF speaker adjacent to BIRD 2 over a wireguard-go
//! tunnel, in network namespaces.
//!
//! ```text
//! lanA 10.1.0.2 — rA: wgrd (wgrd0, tunnel to-bird 169.254.0.0/31) ═══ WireGuard over
//!   192.168.77.0/24 ═══ rB: wireguard-go wg0 169.254.0.1/31 + BIRD (ptp, hello 1, dead 4)
//!   — lanB 10.2.0.2
//! ```
//!
//! Checks: the adjacency reaches Full on both sides, each side learns the other's LAN
//! (wgrd from BIRD's stub, BIRD from wgrd's stub; wgrd exports its routes to the kernel,
//! BIRD too) and a redistributed static route (type-5, which BIRD only exports to the
//! kernel when its filter accepts RTS_OSPF_EXT2), LAN-to-LAN ping crosses, and when BIRD
//! stops, wgrd drops the routes. Namespace test: WGRD_NETNS_TESTS=1 as root.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};
use wgrd_tests::{
    netns_test, ping, topo, wait_ping, wait_until, Keypair, Netns, WgGo, WgGoConf, WgPeer, Wgrd,
    WgrdConf, WgrdTunnel,
};

const CONVERGE: Duration = Duration::from_secs(30);

/// BIRD 2 in a namespace, with its own config, socket and log; killed on drop.
struct Bird {
    child: std::process::Child,
    dir: tempfile::TempDir,
    ns: String,
}

impl Bird {
    fn start(ns: &Netns, conf: &str) -> Result<Bird> {
        let dir = tempfile::Builder::new().prefix("wgrdt-bird-").tempdir()?;
        let conf_path = dir.path().join("bird.conf");
        std::fs::write(&conf_path, conf)?;
        let sock = dir.path().join("bird.ctl");
        let log = dir.path().join("bird.log");
        let child = ns.spawn(
            &[
                "bird",
                "-f",
                "-c",
                &conf_path.to_string_lossy(),
                "-s",
                &sock.to_string_lossy(),
                "-P",
                &dir.path().join("bird.pid").to_string_lossy(),
            ],
            &log,
            &[],
        )?;
        let b = Bird {
            child,
            dir,
            ns: ns.name().to_string(),
        };
        wait_until("bird's control socket", Duration::from_secs(10), || {
            sock.exists()
        })?;
        Ok(b)
    }

    fn birdc(&self, cmd: &str) -> Result<String> {
        let sock = self.dir.path().join("bird.ctl");
        let mut args = vec!["birdc", "-s"];
        let sock_s = sock.to_string_lossy().to_string();
        args.push(&sock_s);
        args.extend(cmd.split_whitespace());
        wgrd_tests::util::run("birdc", &args, Duration::from_secs(5))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bird.log")).unwrap_or_default()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- bird log ({}) ---\n{}", self.ns, self.log());
        }
    }
}

fn bird_conf() -> String {
    r#"
log stderr all;
router id 10.255.0.2;
protocol device { scan time 1; }
protocol static {
    ipv4;
    route 192.168.222.0/24 blackhole;
}
protocol kernel {
    ipv4 {
        import none;
        export filter {
            if source = RTS_OSPF || source = RTS_OSPF_EXT1 || source = RTS_OSPF_EXT2 then accept;
            reject;
        };
    };
}
protocol ospf v2 {
    ipv4 {
        import all;
        export where source = RTS_STATIC;
    };
    area 0 {
        interface "wg0" { type ptp; hello 1; dead 4; };
        interface "eth-lan" { stub; };
    };
}
"#
    .to_string()
}

#[test]
fn wgrd_and_bird_form_an_adjacency_and_exchange_routes() -> Result<()> {
    let Some(_t) = netns_test(
        "wgrd_and_bird_form_an_adjacency_and_exchange_routes",
        &["wireguard-go", "wg", "bird", "birdc"],
    ) else {
        return Ok(());
    };
    let lab = topo::two_sites()?;
    let (ka, kb) = (Keypair::generate()?, Keypair::generate()?);
    let started = Instant::now();

    // wgrd on rA: its LAN as a host route (a stub link), kernel export on, OSPF with
    // BIRD's timers on the tunnel, a static route redistributed as E2.
    let conf = WgrdConf::new("10.255.0.1", &ka)
        .tunnel(
            WgrdTunnel::new("to-bird", &kb.public, Some("192.168.77.2:51820"))
                .addresses(&["169.254.0.0/31"])
                .keepalive(5),
        )
        .route("10.1.0.0/24", "host")
        .route("192.168.111.0/24", "blackhole")
        .export_routes(true);
    let dir = tempfile::Builder::new().prefix("wgrdt-ospf-").tempdir()?;
    let key_file = dir.path().join("router.key");
    std::fs::write(&key_file, format!("{}\n", ka.private))?;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    let toml = conf.to_toml(&key_file).replace(
        "name = \"to-bird\"",
        "name = \"to-bird\"\nospf = { hello = 1, dead = 4, profile = \"fast\" }",
    ) + "\n[ospf]\nredistribute = [{ from = \"static\" }]\n";
    let wgrd = Wgrd::start_raw(lab.ns("rA"), &toml)?;
    lab.ns("rA")
        .wait_udp_listen(51820, Duration::from_secs(10))?;
    lab.ns("rA")
        .wait_link_up("wgrd0", Duration::from_secs(10))?;

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
    let bird = Bird::start(lab.ns("rB"), &bird_conf())?;

    let full = || {
        bird.birdc("show ospf neighbors")
            .map(|s| s.contains("Full"))
            .unwrap_or(false)
    };
    wait_until("BIRD to see wgrd Full", CONVERGE, full).with_context(|| {
        format!(
            "bird: {:?}\nwgrd log:\n{}",
            bird.birdc("show ospf neighbors"),
            wgrd.log()
        )
    })?;
    let adjacency = started.elapsed();

    // Routes both ways, into both kernels.
    let has_route = |ns: &str, prefix: &str, dev: &str| {
        lab.ns(ns)
            .ip(&["-4", "route", "show", prefix])
            .map(|s| s.contains(dev))
            .unwrap_or(false)
    };
    wait_until("wgrd to install BIRD's LAN", CONVERGE, || {
        has_route("rA", "10.2.0.0/24", "wgrd0")
    })
    .with_context(|| format!("wgrd log:\n{}", wgrd.log()))?;
    wait_until("BIRD to install wgrd's LAN", CONVERGE, || {
        has_route("rB", "10.1.0.0/24", "wg0")
    })
    .with_context(|| format!("bird routes: {:?}", bird.birdc("show route protocol ospf1")))?;
    let routes = started.elapsed();
    wait_until("the externals both ways", CONVERGE, || {
        has_route("rA", "192.168.222.0/24", "wgrd0") && has_route("rB", "192.168.111.0/24", "wg0")
    })
    .with_context(|| {
        format!(
            "bird: {:?}\nrA: {:?}",
            bird.birdc("show route"),
            lab.ns("rA").ip(&["-4", "route"])
        )
    })?;
    println!("adjacency Full after {adjacency:?}, LAN routes after {routes:?}");

    // BIRD's view of the database includes wgrd's router-LSA and external.
    let lsadb = bird.birdc("show ospf lsadb")?;
    assert!(lsadb.contains("10.255.0.1"), "{lsadb}");
    let state = bird.birdc("show ospf state")?;
    assert!(state.contains("10.1.0.0/24"), "{state}");
    assert!(state.contains("192.168.111.0/24"), "{state}");

    // Traffic crosses, both ways.
    wait_ping(lab.ns("lanA"), "10.2.0.2", Duration::from_secs(10))?;
    ping(lab.ns("lanB"), "10.1.0.2", 3)?;

    // BIRD goes away: the tunnel goes silent (fast profile, liveness 1 s) and wgrd
    // withdraws what it learned.
    let cut = Instant::now();
    drop(bird);
    drop(_wg);
    wait_until("wgrd to drop BIRD's LAN", Duration::from_secs(10), || {
        !has_route("rA", "10.2.0.0/24", "wgrd0")
    })?;
    println!(
        "routes withdrawn {:?} after BIRD and its tunnel stopped",
        cut.elapsed()
    );
    wgrd.stop()?;
    Ok(())
}
