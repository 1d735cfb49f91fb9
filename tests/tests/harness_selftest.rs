//! Tests of the harness itself, against wireguard-go only (no wgrd needed): two
//! wireguard-go instances in two namespaces talk to each other, the two-site layout
//! carries LAN-to-LAN traffic through them, and a lab is torn down completely even
//! when the test body panics.
//!
//! Namespace tests: set WGRD_NETNS_TESTS=1 and run as root (see README.md).

use anyhow::Result;
use std::time::Duration;
use wgrd_tests::netns::{list_namespaces, own_namespaces};
use wgrd_tests::{iperf, netns_test, ping, topo, wait_ping, Keypair, Lab, WgGo, WgGoConf, WgPeer};

fn wg_conf(key: &Keypair, addr: &str, peer: WgPeer) -> WgGoConf {
    WgGoConf {
        interface: "wg0".into(),
        key: key.clone(),
        listen_port: 51820,
        addresses: vec![addr.into()],
        peers: vec![peer],
        mtu: 1420,
    }
}

#[test]
fn wireguard_go_pair_pings() -> Result<()> {
    let Some(_t) = netns_test("wireguard_go_pair_pings", &["wireguard-go", "wg"]) else {
        return Ok(());
    };
    let mut lab = Lab::new();
    lab.add("n1")?;
    lab.add("n2")?;
    lab.link("n1", "eth0", "n2", "eth0")?;
    lab.addr("n1", "eth0", "192.168.77.1/24")?;
    lab.addr("n2", "eth0", "192.168.77.2/24")?;
    let (k1, k2) = (Keypair::generate()?, Keypair::generate()?);
    // n1 knows n2's endpoint, n2 waits for n1 to dial in.
    let wg1 = WgGo::start(
        lab.ns("n1"),
        &wg_conf(
            &k1,
            "169.254.0.0/31",
            WgPeer::any(&k2.public, Some("192.168.77.2:51820")),
        ),
    )?;
    let wg2 = WgGo::start(
        lab.ns("n2"),
        &wg_conf(&k2, "169.254.0.1/31", WgPeer::any(&k1.public, None)),
    )?;
    wait_ping(lab.ns("n1"), "169.254.0.1", Duration::from_secs(10))?;
    ping(lab.ns("n1"), "169.254.0.1", 3)?;
    ping(lab.ns("n2"), "169.254.0.0", 3)?;
    wg1.wait_handshake(&k2.public, Duration::from_secs(5))?;
    wg2.wait_handshake(&k1.public, Duration::from_secs(5))?;
    Ok(())
}

#[test]
fn wireguard_go_two_sites_lan_to_lan() -> Result<()> {
    let Some(_t) = netns_test(
        "wireguard_go_two_sites_lan_to_lan",
        &["wireguard-go", "wg", "iperf3"],
    ) else {
        return Ok(());
    };
    let lab = topo::two_sites()?;
    let (ka, kb) = (Keypair::generate()?, Keypair::generate()?);
    let _wa = WgGo::start(
        lab.ns("rA"),
        &wg_conf(
            &ka,
            "169.254.0.0/31",
            WgPeer::any(&kb.public, Some("192.168.77.2:51820")),
        ),
    )?;
    let _wb = WgGo::start(
        lab.ns("rB"),
        &wg_conf(&kb, "169.254.0.1/31", WgPeer::any(&ka.public, None)),
    )?;
    lab.route("rA", "10.2.0.0/24 dev wg0")?;
    lab.route("rB", "10.1.0.0/24 dev wg0")?;
    wait_ping(lab.ns("lanA"), "10.2.0.2", Duration::from_secs(10))?;
    ping(lab.ns("lanA"), "10.2.0.2", 3)?;
    ping(lab.ns("lanB"), "10.1.0.2", 3)?;
    let r = iperf(lab.ns("lanA"), lab.ns("lanB"), "10.2.0.2", 2)?;
    println!("wireguard-go LAN-to-LAN: {:.3} Gbit/s", r.gbps());
    Ok(())
}

#[test]
fn lab_teardown_survives_panic() {
    let Some(_t) = netns_test("lab_teardown_survives_panic", &[]) else {
        return;
    };
    let created = std::sync::Mutex::new((Vec::<String>::new(), 0i32));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = topo::two_sites().expect("lab");
        let child = lab
            .ns("rA")
            .spawn(&["sleep", "600"], std::path::Path::new("/dev/null"), &[])
            .expect("spawn");
        {
            let mut c = created.lock().unwrap();
            c.0 = lab.names();
            c.1 = child.id() as i32;
        }
        // Leak the Child handle on purpose: the namespace guard must kill the process
        // by itself.
        std::mem::forget(child);
        panic!("deliberate panic inside a lab");
    }));
    assert!(result.is_err(), "the body should have panicked");
    let (names, pid) = created.into_inner().unwrap();
    assert_eq!(names.len(), 4);
    let left = list_namespaces();
    for n in &names {
        assert!(!left.contains(n), "namespace {n} left behind");
    }
    assert!(
        own_namespaces().is_empty(),
        "leftover namespaces: {:?}",
        own_namespaces()
    );
    // The forgotten child is a zombie of ours at most: not running anymore.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next();
    assert!(
        matches!(state, None | Some("Z") | Some("X")),
        "process {pid} still alive: {stat}"
    );
    // Reap it.
    // SAFETY: waitpid on our own child pid.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
}
