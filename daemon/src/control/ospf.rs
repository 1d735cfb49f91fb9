//! The `Ospf` service: the OSPF speaker's status (interfaces, neighbors, the LSDB with
//! every LSA decoded, routes) as API messages. Read only; reads the speaker's watch
//! channel, never the instance itself. Authentication keys are not in the status at all.

use super::service::Control;
use crate::routing::ospf::instance::Scope;
use crate::routing::ospf::lsa::{LinkKind, LsaBody, FLAG_B, FLAG_E, FLAG_V};
use crate::routing::ospf::spf::PathType;
use crate::routing::ospf::{LsdbEntry, NeighborInfo, OspfStatus};
use ipnetwork::Ipv4Network;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};
use wgrd_proto::v1 as pb;

pub struct OspfService(pub Arc<Control>);

impl OspfService {
    fn status(&self) -> Result<OspfStatus, Status> {
        let status = self
            .0
            .ospf
            .as_ref()
            .map(|w| w.borrow().clone())
            .filter(|s| s.running);
        status.ok_or_else(|| Status::failed_precondition("OSPF is not enabled"))
    }
}

/// The prefix an LSA names: its id (a network-LSA's is the DR's address, a summary's
/// may have host bits set, RFC 2328 appendix E) masked.
fn prefix(id: Ipv4Addr, mask: Ipv4Addr) -> String {
    let net = Ipv4Addr::from(u32::from(id) & u32::from(mask));
    match ipnetwork::ipv4_mask_to_prefix(mask)
        .ok()
        .and_then(|len| Ipv4Network::new(net, len).ok())
    {
        Some(n) => n.to_string(),
        None => format!("{id} mask {mask}"),
    }
}

/// The LSA's body in one line.
pub fn lsa_summary(e: &LsdbEntry) -> String {
    let h = &e.lsa.header;
    match &e.lsa.body {
        LsaBody::Router(r) => {
            let mut parts: Vec<String> = Vec::new();
            let flags: String = [(FLAG_V, 'V'), (FLAG_E, 'E'), (FLAG_B, 'B')]
                .iter()
                .filter(|(f, _)| r.flags & f != 0)
                .map(|(_, c)| *c)
                .collect();
            if !flags.is_empty() {
                parts.push(format!("flags {flags}"));
            }
            for l in &r.links {
                parts.push(match l.kind {
                    LinkKind::PointToPoint => format!("p2p {} cost {}", l.id, l.metric),
                    LinkKind::Transit => format!("transit {} cost {}", l.id, l.metric),
                    LinkKind::Stub => format!("stub {} cost {}", prefix(l.id, l.data), l.metric),
                    LinkKind::Virtual => format!("virtual {} cost {}", l.id, l.metric),
                });
            }
            parts.join(", ")
        }
        LsaBody::Network(n) => {
            let attached: Vec<String> = n.attached.iter().map(|a| a.to_string()).collect();
            format!("{} attached {}", prefix(h.id, n.mask), attached.join(" "))
        }
        LsaBody::Summary(s) if h.ls_type == 4 => format!("ASBR {} metric {}", h.id, s.metric),
        LsaBody::Summary(s) => format!("{} metric {}", prefix(h.id, s.mask), s.metric),
        LsaBody::External(x) => {
            let mut s = format!(
                "{} {} metric {}",
                prefix(h.id, x.mask),
                if x.e2 { "E2" } else { "E1" },
                x.metric
            );
            if !x.forwarding.is_unspecified() {
                s += &format!(" forwarding {}", x.forwarding);
            }
            if x.tag != 0 {
                s += &format!(" tag {}", x.tag);
            }
            s
        }
    }
}

fn type_name(t: u8) -> &'static str {
    match t {
        1 => "router",
        2 => "network",
        3 => "summary",
        4 => "asbr-summary",
        5 => "external",
        _ => "unknown",
    }
}

fn path_type(p: PathType) -> &'static str {
    match p {
        PathType::IntraArea => "intra",
        PathType::InterArea => "inter",
        PathType::External1 => "E1",
        PathType::External2 => "E2",
    }
}

#[tonic::async_trait]
impl pb::ospf_server::Ospf for OspfService {
    async fn interfaces(
        &self,
        _: Request<pb::OspfInterfacesRequest>,
    ) -> Result<Response<pb::OspfInterfacesResponse>, Status> {
        let s = self.status()?;
        Ok(Response::new(pb::OspfInterfacesResponse {
            router_id: s.router_id.map(|r| r.to_string()).unwrap_or_default(),
            area: s.area.map(|a| a.to_string()).unwrap_or_default(),
            spf_runs: s.spf_runs,
            counters: s
                .counters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            areas: s
                .areas
                .iter()
                .map(|(id, a)| pb::OspfArea {
                    id: id.to_string(),
                    stub: a.stub,
                    no_summary: a.no_summary,
                    default_cost: a.default_cost,
                    ranges: a.ranges.iter().map(|r| r.to_string()).collect(),
                })
                .collect(),
            abr: s.abr,
            interfaces: s
                .interfaces
                .iter()
                .map(|i| pb::OspfInterface {
                    tunnel: i.tunnel.clone(),
                    area: i.area.to_string(),
                    address: i.address.map(|a| a.to_string()).unwrap_or_default(),
                    cost: u32::from(i.cost),
                    hello_interval: u32::from(i.hello),
                    dead_interval: i.dead,
                    auth: i.auth.map_or("none", |a| a.0).to_owned(),
                    auth_key_id: i.auth.map_or(0, |a| u32::from(a.1)),
                    liveness_ms: i
                        .liveness
                        .map_or(0, |l| u32::try_from(l.as_millis()).unwrap_or(u32::MAX)),
                    neighbor_router_id: i.neighbor.map(|n| n.0.to_string()).unwrap_or_default(),
                    neighbor_state: i
                        .neighbor
                        .map(|n| n.1.name().to_owned())
                        .unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn neighbors(
        &self,
        _: Request<pb::OspfNeighborsRequest>,
    ) -> Result<Response<pb::OspfNeighborsResponse>, Status> {
        let s = self.status()?;
        let now = Instant::now();
        Ok(Response::new(pb::OspfNeighborsResponse {
            neighbors: s.neighbors.iter().map(|n| neighbor(n, now)).collect(),
        }))
    }

    async fn database(
        &self,
        _: Request<pb::OspfDatabaseRequest>,
    ) -> Result<Response<pb::OspfDatabaseResponse>, Status> {
        let s = self.status()?;
        let now = Instant::now();
        Ok(Response::new(pb::OspfDatabaseResponse {
            lsas: s
                .lsdb
                .iter()
                .map(|e| {
                    let h = &e.lsa.header;
                    pb::OspfLsa {
                        r#type: u32::from(h.ls_type),
                        type_name: type_name(h.ls_type).to_owned(),
                        id: h.id.to_string(),
                        adv_router: h.adv_router.to_string(),
                        seq: h.seq as u32,
                        age: u32::from(e.age(now)),
                        checksum: u32::from(h.checksum),
                        length: u32::from(h.length),
                        summary: lsa_summary(e),
                        area: match e.scope {
                            Scope::Area(a) => a.to_string(),
                            Scope::As => String::new(),
                        },
                    }
                })
                .collect(),
        }))
    }

    async fn routes(
        &self,
        _: Request<pb::OspfRoutesRequest>,
    ) -> Result<Response<pb::OspfRoutesResponse>, Status> {
        let s = self.status()?;
        let name = |id| {
            s.interfaces
                .iter()
                .find(|i| i.id == id)
                .map_or_else(|| id.to_string(), |i| i.tunnel.clone())
        };
        Ok(Response::new(pb::OspfRoutesResponse {
            routes: s
                .routes
                .iter()
                .map(|r| pb::OspfRoute {
                    prefix: r.prefix.to_string(),
                    path_type: path_type(r.path_type).to_owned(),
                    cost: r.cost,
                    cost2: r.cost2,
                    tunnels: r.next_hops.iter().map(|t| name(*t)).collect(),
                })
                .collect(),
        }))
    }
}

/// The initial state of every OSPF neighbor, for Watch.
pub(super) fn neighbor_states(s: &OspfStatus) -> Vec<pb::Event> {
    let now = Instant::now();
    s.neighbors
        .iter()
        .map(|n| pb::Event {
            kind: Some(pb::event::Kind::OspfNeighborState(neighbor(n, now))),
        })
        .collect()
}

fn neighbor(n: &NeighborInfo, now: Instant) -> pb::OspfNeighbor {
    pb::OspfNeighbor {
        tunnel: n.tunnel.clone(),
        area: n.area.to_string(),
        router_id: n.router_id.to_string(),
        address: n.address.to_string(),
        state: n.state.name().to_owned(),
        uptime_ms: now.saturating_duration_since(n.since).as_millis() as u64,
        fast_failover: n.fast_failover.name().into(),
        liveness_ms: n
            .fast_failover
            .interval()
            .map_or(0, |d| d.as_millis() as u32),
    }
}

/// What changed between two samples of the speaker's neighbors, keyed by tunnel.
pub(super) fn neighbor_events(old: &OspfStatus, new: &OspfStatus) -> Vec<pb::Event> {
    use std::collections::BTreeMap;
    let by_tunnel = |s: &OspfStatus| -> BTreeMap<String, (String, &'static str, Instant)> {
        s.neighbors
            .iter()
            .map(|n| {
                (
                    n.tunnel.clone(),
                    (n.router_id.to_string(), n.state.name(), n.since),
                )
            })
            .collect()
    };
    let (before, after) = (by_tunnel(old), by_tunnel(new));
    let event = |tunnel: &str, router_id: &str, state: &str, previous: &str, restarted| pb::Event {
        kind: Some(pb::event::Kind::OspfNeighborChanged(
            pb::OspfNeighborChanged {
                tunnel: tunnel.to_owned(),
                router_id: router_id.to_owned(),
                state: state.to_owned(),
                previous_state: previous.to_owned(),
                restarted,
            },
        )),
    };
    let mut out = Vec::new();
    for (tunnel, (rid, state, since)) in &after {
        match before.get(tunnel) {
            None => out.push(event(tunnel, rid, state, "none", false)),
            Some((old_rid, old_state, old_since)) => {
                // `since` moves with every state change; a restart is a move back to an
                // earlier state, or the same state entered again.
                let moved = since != old_since;
                if old_state != state || old_rid != rid || moved {
                    let restarted = moved && (old_state == state || rank(state) < rank(old_state));
                    out.push(event(tunnel, rid, state, old_state, restarted));
                }
            }
        }
    }
    for (tunnel, (rid, state, _)) in &before {
        if !after.contains_key(tunnel) {
            out.push(event(tunnel, rid, "gone", state, false));
        }
    }
    out
}

/// The order of the neighbor states (RFC 2328 10.1), to tell progress from a restart.
fn rank(state: &str) -> u8 {
    match state {
        "down" => 0,
        "init" => 2,
        "2-way" => 3,
        "exstart" => 4,
        "exchange" => 5,
        "loading" => 6,
        "full" => 7,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::ospf::lsa::{Lsa, LsaHeader, NetworkLsa};

    #[test]
    fn a_network_lsa_shows_its_prefix_and_attached_routers() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let lsa = Lsa::build(
            LsaHeader {
                age: 0,
                options: 2,
                ls_type: 2,
                // The DR's interface address: host bits set.
                id: ip("172.16.23.3"),
                adv_router: ip("10.255.0.3"),
                seq: 0x8000_0001_u32 as i32,
                checksum: 0,
                length: 0,
            },
            LsaBody::Network(NetworkLsa {
                mask: ip("255.255.255.0"),
                attached: vec![ip("10.255.0.3"), ip("10.255.0.2")],
            }),
        );
        let e = LsdbEntry {
            scope: Scope::Area(Ipv4Addr::UNSPECIFIED),
            lsa,
            installed: Instant::now(),
        };
        assert_eq!(
            lsa_summary(&e),
            "172.16.23.0/24 attached 10.255.0.3 10.255.0.2"
        );
        assert_eq!(type_name(2), "network");
    }
}
