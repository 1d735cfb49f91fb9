//! The router's snapshots and the config model -> API messages.
//!
//! One way only (model to message): messages become a config through
//! [`super::spec`], which validates them like a config file. Key material leaves this
//! file only as `Secret::Redacted`, except through [`config_with_keys`], whose result is
//! for [`super::spec`] and never sent.

use crate::config::{Config, ControlConfig, RouteVia};
use crate::dataplane::path::TunnelEvent;
use crate::router::view::{
    LookupResult, NextHopInfo, RouteInfo, RouterEvent, RouterStatus, TunnelInfo,
};
use crate::router::ApplySummary;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ipnetwork::IpNetwork;
use std::path::Path;
use std::time::UNIX_EPOCH;
use wgrd_proto::v1 as pb;

pub(crate) fn status(
    s: &RouterStatus,
    config_file: Option<&Path>,
    persist: bool,
) -> pb::StatusResponse {
    pb::StatusResponse {
        router_id: s.router_id.to_string(),
        public_key: s.public_key.to_base64(),
        uptime_seconds: s.uptime.as_secs(),
        listen_ports: s.listen_ports.iter().map(|&p| u32::from(p)).collect(),
        tunnels: count(s.tunnels),
        tunnels_up: count(s.tunnels_up),
        rib_prefixes: count(s.rib_prefixes),
        fib_routes: count(s.fib_routes),
        counters: counters(&s.counters),
        config_file: config_file
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        persist,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn counters(c: &[(&'static str, u64)]) -> Vec<pb::Counter> {
    c.iter()
        .map(|&(name, value)| pb::Counter {
            name: name.into(),
            value,
        })
        .collect()
}

pub(crate) fn tunnel(t: &TunnelInfo) -> pb::Tunnel {
    pb::Tunnel {
        name: t.name.clone(),
        peer_public_key: t.peer_public_key.to_base64(),
        configured_endpoint: t
            .configured_endpoint
            .map(|e| e.to_string())
            .unwrap_or_default(),
        endpoint: t.endpoint.map(|e| e.to_string()).unwrap_or_default(),
        session_up: t.session_up,
        last_handshake_unix_ms: t
            .last_handshake
            .and_then(|h| h.duration_since(UNIX_EPOCH).ok())
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0),
        last_received_ms: t
            .last_received_ago
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        persistent_keepalive: t.persistent_keepalive.map(u32::from).unwrap_or(0),
        addresses: t.addresses.iter().map(|a| a.to_string()).collect(),
        mtu: u32::from(t.mtu),
        listen_port: u32::from(t.listen_port),
        rx_bytes: t.rx_bytes,
        rx_packets: t.rx_packets,
        tx_bytes: t.tx_bytes,
        tx_packets: t.tx_packets,
        handshakes: t.handshakes,
        drops: counters(&t.drops),
    }
}

pub(crate) fn next_hop(h: &NextHopInfo) -> pb::NextHop {
    use pb::next_hop::Kind;
    pb::NextHop {
        kind: Some(match h {
            NextHopInfo::Tunnels(names) => Kind::Tunnels(pb::TunnelSet {
                names: names.clone(),
            }),
            NextHopInfo::Host => Kind::Host(true),
            NextHopInfo::Local => Kind::Local(true),
            NextHopInfo::Blackhole => Kind::Blackhole(true),
        }),
    }
}

pub(crate) fn route(r: &RouteInfo) -> pb::Route {
    pb::Route {
        prefix: r.prefix.to_string(),
        source: r.source.into(),
        admin_distance: u32::from(r.admin_distance),
        metric: r.metric,
        next_hop: Some(next_hop(&r.next_hop)),
        best: r.best,
    }
}

pub(crate) fn lookup(r: Option<LookupResult>) -> pb::LookupResponse {
    match r {
        Some(r) => pb::LookupResponse {
            found: true,
            prefix: r.prefix.to_string(),
            next_hop: Some(next_hop(&r.next_hop)),
        },
        None => pb::LookupResponse::default(),
    }
}

pub(crate) fn summary(s: &ApplySummary) -> pb::ChangeSummary {
    pb::ChangeSummary {
        tunnels_added: s.tunnels_added.clone(),
        tunnels_removed: s.tunnels_removed.clone(),
        tunnels_replaced: s.tunnels_replaced.clone(),
        tunnels_updated: s.tunnels_updated.clone(),
        routes_changed: count(s.routes_changed),
        unchanged: s.is_empty(),
    }
}

/// A route change as the API shows it; `route` is None when the prefix is gone.
pub(crate) fn route_changed(prefix: IpNetwork, route: Option<&RouteInfo>) -> pb::Event {
    pb::Event {
        kind: Some(pb::event::Kind::RouteChanged(pb::RouteChanged {
            prefix: prefix.to_string(),
            route: route.map(self::route),
        })),
    }
}

/// The API events of one router event: one per tunnel event, one per route of a batch
/// (rendered as they are taken, so a big batch is never held twice).
pub(crate) fn events(e: &RouterEvent) -> Box<dyn Iterator<Item = pb::Event> + Send + '_> {
    match e {
        RouterEvent::Routes(batch) => Box::new(
            batch
                .route_infos()
                .map(|(prefix, route)| route_changed(prefix, route.as_ref())),
        ),
        other => Box::new(event(other).into_iter()),
    }
}

/// The API event of a router event that is not a route batch (see [`events`]).
fn event(e: &RouterEvent) -> Option<pb::Event> {
    use pb::event::Kind;
    let kind = match e {
        RouterEvent::Tunnel(TunnelEvent::Up { tunnel }) => Kind::TunnelUp(pb::TunnelUp {
            tunnel: tunnel.clone(),
        }),
        RouterEvent::Tunnel(TunnelEvent::Down { tunnel }) => Kind::TunnelDown(pb::TunnelDown {
            tunnel: tunnel.clone(),
        }),
        RouterEvent::Tunnel(TunnelEvent::Handshake { tunnel }) => Kind::Handshake(pb::Handshake {
            tunnel: tunnel.clone(),
        }),
        RouterEvent::Tunnel(TunnelEvent::EndpointChanged { tunnel, endpoint }) => {
            Kind::EndpointChanged(pb::EndpointChanged {
                tunnel: tunnel.clone(),
                endpoint: endpoint.to_string(),
            })
        }
        RouterEvent::Tunnel(TunnelEvent::PeerSilent { tunnel }) => {
            Kind::PeerSilent(pb::PeerSilent {
                tunnel: tunnel.clone(),
            })
        }
        RouterEvent::Tunnel(TunnelEvent::PeerAlive { tunnel }) => Kind::PeerAlive(pb::PeerAlive {
            tunnel: tunnel.clone(),
        }),
        RouterEvent::Routes(_) => return None,
        RouterEvent::TunnelConfigured { tunnel, present } => {
            Kind::TunnelConfigured(pb::TunnelConfigured {
                tunnel: tunnel.clone(),
                present: *present,
            })
        }
    };
    Some(pb::Event { kind: Some(kind) })
}

/// The config as the API shows it: every inline key redacted.
pub(crate) fn config(c: &Config) -> pb::Config {
    to_message(c, false)
}

/// The config with inline keys as values: input for [`super::spec`] only, never sent.
pub(crate) fn config_with_keys(c: &Config) -> pb::Config {
    to_message(c, true)
}

fn secret(inline: String, file: Option<&Path>, reveal: bool) -> pb::Secret {
    use pb::secret::Source;
    pb::Secret {
        source: Some(match file {
            Some(f) => Source::File(f.display().to_string()),
            None if reveal => Source::Value(inline),
            None => Source::Redacted(true),
        }),
    }
}

fn to_message(c: &Config, reveal: bool) -> pb::Config {
    let r = &c.router;
    pb::Config {
        router: Some(pb::RouterSettings {
            router_id: r.router_id.to_string(),
            private_key: Some(secret(
                if reveal {
                    r.private_key.to_base64()
                } else {
                    String::new()
                },
                r.private_key_file.as_deref(),
                reveal,
            )),
            listen_port: Some(u32::from(r.listen_port)),
            listen_address: r.listen_address.map(|a| a.to_string()),
        }),
        host: c.host.as_ref().map(|h| pb::HostSettings {
            interface: h.interface.clone(),
            addresses: h.addresses.iter().map(|a| a.to_string()).collect(),
            export_routes: h.export_routes,
            mtu: Some(u32::from(h.mtu)),
        }),
        tunnels: c
            .tunnels
            .iter()
            .map(|t| pb::TunnelSettings {
                name: t.name.clone(),
                peer_public_key: t.peer_public_key.to_base64(),
                preshared_key: t.preshared_key.as_ref().map(|k| {
                    secret(
                        if reveal {
                            BASE64.encode(k.0)
                        } else {
                            String::new()
                        },
                        t.preshared_key_file.as_deref(),
                        reveal,
                    )
                }),
                endpoint: t.endpoint.map(|e| e.to_string()),
                persistent_keepalive: t.persistent_keepalive.map(u32::from),
                addresses: t.addresses.iter().map(|a| a.to_string()).collect(),
                mtu: Some(u32::from(t.mtu)),
                listen_port: t.listen_port.map(u32::from),
            })
            .collect(),
        routes: c.routes.iter().map(static_route).collect(),
        control: Some(control(&c.control)),
    }
}

pub(crate) fn static_route(r: &crate::config::StaticRoute) -> pb::StaticRoute {
    use pb::static_route::Via;
    pb::StaticRoute {
        prefix: r.prefix.to_string(),
        via: Some(match &r.via {
            RouteVia::Tunnel(name) => Via::Tunnel(name.clone()),
            RouteVia::Host => Via::Host(true),
            RouteVia::Blackhole => Via::Blackhole(true),
        }),
    }
}

pub(crate) fn control(c: &ControlConfig) -> pb::ControlSettings {
    let path = |p: &Path| p.display().to_string();
    pb::ControlSettings {
        socket: path(&c.socket),
        listen: c.listen.map(|a| a.to_string()),
        tls_cert: c.tls.as_ref().map(|t| path(&t.cert)).unwrap_or_default(),
        tls_key: c.tls.as_ref().map(|t| path(&t.key)).unwrap_or_default(),
        tls_client_ca: c
            .tls
            .as_ref()
            .map(|t| path(&t.client_ca))
            .unwrap_or_default(),
        plaintext: c.plaintext,
        persist: c.persist,
    }
}

pub(crate) fn nat_status(n: &crate::nat::NatStatus) -> pb::NatStatusResponse {
    pb::NatStatusResponse {
        installed: n.installed,
        table: n.table.into(),
        rules: n
            .rules
            .iter()
            .map(|r| pb::NatRule {
                name: r.name.clone(),
                description: r.description.clone(),
                packets: r.packets,
                bytes: r.bytes,
            })
            .collect(),
        sysctls: n
            .sysctls
            .iter()
            .map(|s| pb::Sysctl {
                key: s.key.clone(),
                value: s.value.clone().unwrap_or_default(),
                wanted: s.wanted.clone(),
                ok: s.ok(),
                set_by_wgrd: s.set,
            })
            .collect(),
        notes: n.notes.clone(),
    }
}
