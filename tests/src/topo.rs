//! The namespace layouts the end-to-end tests share.
//!
//! A *site* is a LAN host namespace behind a router namespace:
//! `lanX` (eth0 10.N.0.2/24, default via 10.N.0.1) —veth— `rX` (eth-lan 10.N.0.1/24,
//! forwarding on, rp_filter off). The routers' WAN links are added per layout. Tunnel
//! daemons (wgrd, wireguard-go) are started by the tests on the routers.

use crate::netns::Lab;
use anyhow::Result;

/// Add site `n`: namespaces `router` and `lan`, LAN 10.n.0.0/24.
pub fn add_site(lab: &mut Lab, router: &str, lan: &str, n: u8) -> Result<()> {
    lab.add_router(router)?;
    lab.add(lan)?;
    lab.link(lan, "eth0", router, "eth-lan")?;
    lab.addr(lan, "eth0", &format!("10.{n}.0.2/24"))?;
    lab.addr(router, "eth-lan", &format!("10.{n}.0.1/24"))?;
    lab.route(lan, &format!("default via 10.{n}.0.1"))?;
    Ok(())
}

/// Two sites joined by one WAN link:
///
/// ```text
/// lanA 10.1.0.2 — rA [eth-wan 192.168.77.1] ——— [eth-wan 192.168.77.2] rB — lanB 10.2.0.2
/// ```
pub fn two_sites() -> Result<Lab> {
    let mut lab = Lab::new();
    add_site(&mut lab, "rA", "lanA", 1)?;
    add_site(&mut lab, "rB", "lanB", 2)?;
    lab.link("rA", "eth-wan", "rB", "eth-wan")?;
    lab.addr("rA", "eth-wan", "192.168.77.1/24")?;
    lab.addr("rB", "eth-wan", "192.168.77.2/24")?;
    Ok(lab)
}

/// A hub with its own LAN and two spokes, each spoke on its own WAN link to the hub, so
/// the spokes cannot reach each other's underlay at all: spoke-to-spoke traffic can only
/// go through the hub's tunnels.
///
/// ```text
/// lanA 10.1.0.2 — rA [192.168.71.2] ——— [192.168.71.1 eth-a] rH [eth-b 192.168.72.1] ——— [192.168.72.2] rB — lanB 10.2.0.2
///                                                             |
///                                                           lanH 10.3.0.2
/// ```
pub fn hub_spoke() -> Result<Lab> {
    let mut lab = Lab::new();
    add_site(&mut lab, "rA", "lanA", 1)?;
    add_site(&mut lab, "rB", "lanB", 2)?;
    add_site(&mut lab, "rH", "lanH", 3)?;
    lab.link("rA", "eth-wan", "rH", "eth-a")?;
    lab.addr("rA", "eth-wan", "192.168.71.2/24")?;
    lab.addr("rH", "eth-a", "192.168.71.1/24")?;
    lab.link("rB", "eth-wan", "rH", "eth-b")?;
    lab.addr("rB", "eth-wan", "192.168.72.2/24")?;
    lab.addr("rH", "eth-b", "192.168.72.1/24")?;
    Ok(lab)
}
