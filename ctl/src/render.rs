//! Output: aligned tables with units for people, JSON with stable snake_case field names
//! for scripts. Pure functions over API messages.

use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wgrd_proto::v1 as pb;

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// 1536 -> "1.5 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// 75 s -> "1m 15s".
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// A Unix time in milliseconds as "12s ago"; 0 is "never".
pub fn ago_unix_ms(ms: i64, now: SystemTime) -> String {
    if ms <= 0 {
        return "never".into();
    }
    let then = UNIX_EPOCH + Duration::from_millis(ms as u64);
    match now.duration_since(then) {
        Ok(d) => format!("{} ago", duration(d)),
        Err(_) => "just now".into(),
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_owned()
    }
}

pub fn next_hop(h: Option<&pb::NextHop>) -> String {
    use pb::next_hop::Kind;
    match h.and_then(|h| h.kind.as_ref()) {
        Some(Kind::Tunnels(t)) => t.names.join(","),
        Some(Kind::Host(_)) => "host".into(),
        Some(Kind::Local(_)) => "local".into(),
        Some(Kind::Blackhole(_)) => "blackhole".into(),
        None => "-".into(),
    }
}

pub fn tunnels(list: &[pb::Tunnel], now: SystemTime) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                if t.session_up { "up" } else { "down" }.into(),
                or_dash(&t.endpoint),
                ago_unix_ms(t.last_handshake_unix_ms, now),
                bytes(t.rx_bytes),
                bytes(t.tx_bytes),
                or_dash(&t.addresses.join(",")),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "STATE",
            "ENDPOINT",
            "HANDSHAKE",
            "RX",
            "TX",
            "ADDRESSES",
        ],
        &rows,
    )
}

pub fn tunnel_detail(t: &pb::Tunnel, now: SystemTime) -> String {
    let mut rows = vec![
        ("name", t.name.clone()),
        ("state", if t.session_up { "up" } else { "down" }.into()),
        ("peer public key", t.peer_public_key.clone()),
        ("endpoint", or_dash(&t.endpoint)),
        ("configured endpoint", or_dash(&t.configured_endpoint)),
        ("last handshake", ago_unix_ms(t.last_handshake_unix_ms, now)),
        (
            "last received",
            t.last_received_ms
                .map(|ms| format!("{} ago", duration(Duration::from_millis(ms))))
                .unwrap_or_else(|| "never".into()),
        ),
        ("handshakes", t.handshakes.to_string()),
        (
            "keepalive",
            if t.persistent_keepalive == 0 {
                "off".into()
            } else {
                format!("{}s", t.persistent_keepalive)
            },
        ),
        ("addresses", or_dash(&t.addresses.join(", "))),
        ("mtu", t.mtu.to_string()),
        ("listen port", t.listen_port.to_string()),
        (
            "rx",
            format!("{} ({} packets)", bytes(t.rx_bytes), t.rx_packets),
        ),
        (
            "tx",
            format!("{} ({} packets)", bytes(t.tx_bytes), t.tx_packets),
        ),
    ];
    for d in t.drops.iter().filter(|d| d.value > 0) {
        rows.push(("drop", format!("{} {}", d.name, d.value)));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn routes(list: &[pb::Route], fib: bool) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let mut row = vec![r.prefix.clone(), next_hop(r.next_hop.as_ref())];
            if !fib {
                row.insert(0, if r.best { "*" } else { "" }.into());
                row.push(r.source.clone());
                row.push(format!("{}/{}", r.admin_distance, r.metric));
            }
            row
        })
        .collect();
    if fib {
        table(&["PREFIX", "NEXT HOP"], &rows)
    } else {
        table(&["", "PREFIX", "NEXT HOP", "SOURCE", "AD/METRIC"], &rows)
    }
}

pub fn status(s: &pb::StatusResponse, version: &str) -> String {
    let ports: Vec<String> = s.listen_ports.iter().map(u32::to_string).collect();
    let mut lines = vec![
        format!("wgrd {version}"),
        format!("router id   {}", s.router_id),
        format!("public key  {}", s.public_key),
        format!(
            "uptime      {}",
            duration(Duration::from_secs(s.uptime_seconds))
        ),
        format!("listen      udp {}", ports.join(", ")),
        format!("tunnels     {} ({} up)", s.tunnels, s.tunnels_up),
        format!(
            "routes      {} prefixes in the RIB, {} in the FIB",
            s.rib_prefixes, s.fib_routes
        ),
        format!(
            "config      {}{}",
            or_dash(&s.config_file),
            if s.persist {
                " (persist: changes are saved)"
            } else {
                ""
            }
        ),
    ];
    let nonzero: Vec<String> = s
        .counters
        .iter()
        .filter(|c| c.value > 0)
        .map(|c| format!("{} {}", c.name, c.value))
        .collect();
    if !nonzero.is_empty() {
        lines.push(format!("counters    {}", nonzero.join(", ")));
    }
    lines.join("\n")
}

pub fn summary(s: &pb::ChangeSummary, saved: bool, dry_run: bool) -> String {
    if s.unchanged {
        return "no change".into();
    }
    let mut parts = Vec::new();
    for (what, names) in [
        ("added", &s.tunnels_added),
        ("removed", &s.tunnels_removed),
        ("replaced (new session)", &s.tunnels_replaced),
        ("updated (session kept)", &s.tunnels_updated),
    ] {
        if !names.is_empty() {
            parts.push(format!("tunnels {what}: {}", names.join(", ")));
        }
    }
    if s.routes_changed > 0 {
        parts.push(format!("{} route changes", s.routes_changed));
    }
    if dry_run {
        parts.insert(0, "dry run, nothing changed; would apply:".into());
    }
    if saved {
        parts.push("saved to the config file".into());
    }
    parts.join("\n")
}

// ---- JSON: stable field names -------------------------------------------------------

pub fn tunnel_json(t: &pb::Tunnel) -> Value {
    json!({
        "name": t.name,
        "peer_public_key": t.peer_public_key,
        "session_up": t.session_up,
        "endpoint": (!t.endpoint.is_empty()).then_some(&t.endpoint),
        "configured_endpoint": (!t.configured_endpoint.is_empty()).then_some(&t.configured_endpoint),
        "last_handshake_unix_ms": (t.last_handshake_unix_ms > 0).then_some(t.last_handshake_unix_ms),
        "last_received_ms": t.last_received_ms,
        "handshakes": t.handshakes,
        "persistent_keepalive": t.persistent_keepalive,
        "addresses": t.addresses,
        "mtu": t.mtu,
        "listen_port": t.listen_port,
        "rx_bytes": t.rx_bytes,
        "rx_packets": t.rx_packets,
        "tx_bytes": t.tx_bytes,
        "tx_packets": t.tx_packets,
        "drops": counters_json(&t.drops),
    })
}

fn counters_json(c: &[pb::Counter]) -> Value {
    Value::Object(
        c.iter()
            .map(|c| (c.name.clone(), Value::from(c.value)))
            .collect(),
    )
}

pub fn next_hop_json(h: Option<&pb::NextHop>) -> Value {
    use pb::next_hop::Kind;
    match h.and_then(|h| h.kind.as_ref()) {
        Some(Kind::Tunnels(t)) => json!({ "tunnels": t.names }),
        Some(Kind::Host(_)) => json!("host"),
        Some(Kind::Local(_)) => json!("local"),
        Some(Kind::Blackhole(_)) => json!("blackhole"),
        None => Value::Null,
    }
}

pub fn route_json(r: &pb::Route) -> Value {
    json!({
        "prefix": r.prefix,
        "source": r.source,
        "admin_distance": r.admin_distance,
        "metric": r.metric,
        "next_hop": next_hop_json(r.next_hop.as_ref()),
        "best": r.best,
    })
}

pub fn status_json(s: &pb::StatusResponse, version: &str) -> Value {
    json!({
        "version": version,
        "router_id": s.router_id,
        "public_key": s.public_key,
        "uptime_seconds": s.uptime_seconds,
        "listen_ports": s.listen_ports,
        "tunnels": s.tunnels,
        "tunnels_up": s.tunnels_up,
        "rib_prefixes": s.rib_prefixes,
        "fib_routes": s.fib_routes,
        "config_file": s.config_file,
        "persist": s.persist,
        "counters": counters_json(&s.counters),
    })
}

pub fn summary_json(s: &pb::ChangeSummary, saved: bool) -> Value {
    json!({
        "unchanged": s.unchanged,
        "tunnels_added": s.tunnels_added,
        "tunnels_removed": s.tunnels_removed,
        "tunnels_replaced": s.tunnels_replaced,
        "tunnels_updated": s.tunnels_updated,
        "routes_changed": s.routes_changed,
        "saved": saved,
    })
}

/// One event: JSON object with a `type` field.
pub fn event_json(e: &pb::Event) -> Value {
    use pb::event::Kind;
    match &e.kind {
        Some(Kind::TunnelState(t)) => json!({"type": "tunnel_state", "tunnel": tunnel_json(t)}),
        Some(Kind::RouteState(r)) => json!({"type": "route_state", "route": route_json(r)}),
        Some(Kind::InitialStateDone(_)) => json!({"type": "initial_state_done"}),
        Some(Kind::TunnelUp(t)) => json!({"type": "tunnel_up", "tunnel": t.tunnel}),
        Some(Kind::TunnelDown(t)) => json!({"type": "tunnel_down", "tunnel": t.tunnel}),
        Some(Kind::PeerSilent(t)) => json!({"type": "peer_silent", "tunnel": t.tunnel}),
        Some(Kind::PeerAlive(t)) => json!({"type": "peer_alive", "tunnel": t.tunnel}),
        Some(Kind::Handshake(t)) => json!({"type": "handshake", "tunnel": t.tunnel}),
        Some(Kind::EndpointChanged(t)) => {
            json!({"type": "endpoint_changed", "tunnel": t.tunnel, "endpoint": t.endpoint})
        }
        Some(Kind::RouteChanged(r)) => json!({
            "type": "route_changed",
            "prefix": r.prefix,
            "route": r.route.as_ref().map(route_json),
        }),
        Some(Kind::TunnelConfigured(t)) => {
            json!({"type": "tunnel_configured", "tunnel": t.tunnel, "present": t.present})
        }
        Some(Kind::BgpNeighborState(n)) => {
            json!({"type": "bgp_neighbor_state", "neighbor": crate::bgp::neighbor_json(n)})
        }
        Some(Kind::BgpNeighborChanged(c)) => crate::bgp::change_json(c),
        Some(Kind::OspfNeighborState(n)) => json!({
            "type": "ospf_neighbor_state",
            "tunnel": n.tunnel,
            "router_id": n.router_id,
            "state": n.state,
            "uptime_ms": n.uptime_ms,
        }),
        Some(Kind::OspfNeighborChanged(c)) => json!({
            "type": "ospf_neighbor_changed",
            "tunnel": c.tunnel,
            "router_id": c.router_id,
            "state": c.state,
            "previous_state": c.previous_state,
            "restarted": c.restarted,
        }),
        None => json!({"type": "unknown"}),
    }
}

/// One event as a line for people.
pub fn event_line(e: &pb::Event) -> String {
    use pb::event::Kind;
    match &e.kind {
        Some(Kind::TunnelState(t)) => format!(
            "tunnel {} {} endpoint {}",
            t.name,
            if t.session_up { "up" } else { "down" },
            or_dash(&t.endpoint)
        ),
        Some(Kind::RouteState(r)) => {
            format!(
                "route {} via {} ({})",
                r.prefix,
                next_hop(r.next_hop.as_ref()),
                r.source
            )
        }
        Some(Kind::InitialStateDone(_)) => "-- initial state done; live changes follow --".into(),
        Some(Kind::TunnelUp(t)) => format!("tunnel {} up", t.tunnel),
        Some(Kind::TunnelDown(t)) => format!("tunnel {} down", t.tunnel),
        Some(Kind::PeerSilent(t)) => format!("tunnel {} peer silent", t.tunnel),
        Some(Kind::PeerAlive(t)) => format!("tunnel {} peer alive", t.tunnel),
        Some(Kind::Handshake(t)) => format!("tunnel {} handshake", t.tunnel),
        Some(Kind::EndpointChanged(t)) => {
            format!("tunnel {} endpoint {}", t.tunnel, t.endpoint)
        }
        Some(Kind::RouteChanged(r)) => match &r.route {
            Some(route) => format!(
                "route {} via {} ({})",
                r.prefix,
                next_hop(route.next_hop.as_ref()),
                route.source
            ),
            None => format!("route {} removed", r.prefix),
        },
        Some(Kind::TunnelConfigured(t)) => format!(
            "tunnel {} {}",
            t.tunnel,
            if t.present { "configured" } else { "removed" }
        ),
        Some(Kind::BgpNeighborState(n)) => {
            let mut line = format!("bgp neighbor {}", n.address);
            if !n.tunnel.is_empty() {
                line += &format!(" ({})", n.tunnel);
            }
            format!(
                "{line} {} for {}",
                n.state_name,
                duration(Duration::from_secs(n.state_seconds))
            )
        }
        Some(Kind::BgpNeighborChanged(c)) => crate::bgp::change_line(c),
        Some(Kind::OspfNeighborState(n)) => format!(
            "ospf neighbor {} ({}) {} for {}",
            n.router_id,
            n.tunnel,
            n.state,
            duration(Duration::from_millis(n.uptime_ms))
        ),
        Some(Kind::OspfNeighborChanged(c)) => {
            let mut line = format!("ospf neighbor {} ({}) ", c.router_id, c.tunnel);
            line += &match (c.state.as_str(), c.restarted) {
                ("gone", _) => "removed".to_string(),
                (state, true) => format!("{state} (restarted; was {})", c.previous_state),
                (state, false) => format!("{} -> {state}", c.previous_state),
            };
            line
        }
        None => "unknown event".into(),
    }
}

/// `wgrctl nat`: the table, one line per config entry with its counters, then the sysctls
/// and any notes.
pub fn nat(n: &pb::NatStatusResponse) -> String {
    if n.rules.is_empty() && !n.installed {
        return "no NAT rules configured".into();
    }
    let mut out = format!(
        "table {} {}\n",
        n.table,
        if n.installed {
            "(installed)"
        } else {
            "(not installed)"
        }
    );
    let rows: Vec<Vec<String>> = n
        .rules
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.packets.to_string(),
                bytes(r.bytes),
                r.description.clone(),
            ]
        })
        .collect();
    out.push_str(&table(&["RULE", "PACKETS", "BYTES", "WHAT"], &rows));
    for s in &n.sysctls {
        let state = match (s.ok, s.set_by_wgrd) {
            (true, true) => "ok (set by wgrd)",
            (true, false) => "ok",
            (false, _) => "NOT SET",
        };
        out.push_str(&format!(
            "\nsysctl {} = {} ({state}; NAT needs {})",
            s.key,
            or_dash(&s.value),
            s.wanted
        ));
    }
    for note in &n.notes {
        out.push_str(&format!("\nnote: {note}"));
    }
    out
}

pub fn nat_json(n: &pb::NatStatusResponse) -> Value {
    json!({
        "installed": n.installed,
        "table": n.table,
        "rules": n.rules.iter().map(|r| json!({
            "name": r.name,
            "description": r.description,
            "packets": r.packets,
            "bytes": r.bytes,
        })).collect::<Vec<_>>(),
        "sysctls": n.sysctls.iter().map(|s| json!({
            "key": s.key,
            "value": s.value,
            "wanted": s.wanted,
            "ok": s.ok,
            "set_by_wgrd": s.set_by_wgrd,
        })).collect::<Vec<_>>(),
        "notes": n.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(duration(Duration::from_secs(12)), "12s");
        assert_eq!(duration(Duration::from_secs(75)), "1m 15s");
        assert_eq!(duration(Duration::from_secs(7300)), "2h 1m");
        assert_eq!(duration(Duration::from_secs(90000)), "1d 1h");
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(ago_unix_ms(988_000, now), "12s ago");
        assert_eq!(ago_unix_ms(0, now), "never");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "BB", "C"],
            &[
                vec!["long".into(), "x".into(), "end".into()],
                vec!["s".into(), "yyy".into(), "".into()],
            ],
        );
        assert_eq!(t, "A     BB   C\nlong  x    end\ns     yyy");
    }

    #[test]
    fn nat_shows_rules_sysctls_and_notes() {
        let n = pb::NatStatusResponse {
            installed: true,
            table: "inet wgrd".into(),
            rules: vec![pb::NatRule {
                name: "masquerade[1]".into(),
                description: "from tunnel:* out of eth1 as eth1's address".into(),
                packets: 3,
                bytes: 2048,
            }],
            sysctls: vec![pb::Sysctl {
                key: "net.ipv4.ip_forward".into(),
                value: "0".into(),
                wanted: "1".into(),
                ok: false,
                set_by_wgrd: false,
            }],
            notes: vec!["net.ipv4.ip_forward is 0".into()],
        };
        let text = nat(&n);
        assert!(
            text.starts_with("table inet wgrd (installed)\nRULE"),
            "{text}"
        );
        assert!(
            text.contains("masquerade[1]  3        2.0 KiB  from tunnel:*"),
            "{text}"
        );
        assert!(text.contains("sysctl net.ipv4.ip_forward = 0 (NOT SET; NAT needs 1)"));
        assert!(text.ends_with("note: net.ipv4.ip_forward is 0"));
        assert_eq!(nat_json(&n)["rules"][0]["bytes"], 2048);
        assert_eq!(
            nat(&pb::NatStatusResponse::default()),
            "no NAT rules configured"
        );
    }
}
