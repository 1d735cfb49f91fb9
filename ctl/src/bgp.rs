//! `wgrctl bgp summary|neighbors|routes|announce|withdraw|reset`: the `Bgp` service.
//! Tables for people, JSON with stable snake_case names for scripts; the rendering
//! functions are pure over the service's messages.

use crate::render::{duration, table};
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::time::Duration;
use tonic::transport::Channel;
use wgrd_proto::v1 as pb;

#[derive(Subcommand)]
pub enum BgpCommand {
    /// The speaker (AS, router id, counts) and one line per neighbor.
    Summary,
    /// Every neighbor in detail (or one): state, counters, negotiated capabilities.
    Neighbors {
        /// Only this neighbor.
        address: Option<String>,
    },
    /// Paths of the Loc-RIB (* marks the best) or of one neighbor's Adj-RIB-In/Out;
    /// adj-in-pre: what the neighbor sent before import policy (keep-received-routes).
    Routes {
        #[arg(long, value_enum, default_value = "loc-rib")]
        table: TableArg,
        /// The neighbor (required for adj-in, adj-in-pre and adj-out; with loc-rib: only
        /// its paths).
        #[arg(long, value_name = "ADDR", required_if_eq_any = [("table", "adj-in"), ("table", "adj-in-pre"), ("table", "adj-out")])]
        neighbor: Option<String>,
        /// Only this prefix.
        prefix: Option<String>,
    },
    /// Originate a prefix (again: replaces its attributes). Not saved to the config.
    Announce {
        prefix: String,
        /// A community ASN:VALUE or no-export, no-advertise, no-export-subconfed; repeat
        /// for more.
        #[arg(long = "community", value_name = "A:B")]
        communities: Vec<String>,
        /// A large community GLOBAL:LOCAL1:LOCAL2; repeat for more.
        #[arg(long = "large-community", value_name = "A:B:C")]
        large_communities: Vec<String>,
        #[arg(long)]
        med: Option<u32>,
        #[arg(long)]
        local_pref: Option<u32>,
        /// AS numbers to start the path with, like "65010 65011".
        #[arg(long, value_name = "\"ASN ...\"", value_parser = parse_as_path)]
        as_path: Option<AsPathArg>,
        #[arg(long, value_enum, default_value = "igp")]
        origin: OriginArg,
    },
    /// Stop originating a prefix announced with `announce`.
    Withdraw { prefix: String },
    /// Reset one neighbor's session or all: hard (Cease, then start again) unless
    /// --soft-in (import policy again: from the routes kept with keep-received-routes,
    /// else ask for its routes again) or --soft-out (send ours again).
    Reset {
        /// The neighbor's address.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        address: Option<String>,
        /// Every neighbor.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        soft_in: bool,
        #[arg(long)]
        soft_out: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TableArg {
    LocRib,
    AdjIn,
    AdjInPre,
    AdjOut,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OriginArg {
    Igp,
    Egp,
    Incomplete,
}

/// AS numbers given on the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct AsPathArg(pub Vec<u32>);

/// "65010 65011" or "65010,65011" -> AS numbers.
pub fn parse_as_path(text: &str) -> Result<AsPathArg, String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| format!("\"{s}\" is not an AS number"))
        })
        .collect::<Result<_, _>>()
        .map(AsPathArg)
}

/// Runs one `bgp` command and prints its answer.
pub async fn run(
    channel: Channel,
    command: BgpCommand,
    json: bool,
    err: impl Fn(tonic::Status) -> anyhow::Error,
) -> anyhow::Result<()> {
    let mut c = pb::bgp_client::BgpClient::new(channel);
    let (text, value) = match command {
        BgpCommand::Summary => {
            let s = c
                .get_bgp(pb::GetBgpRequest {})
                .await
                .map_err(&err)?
                .into_inner();
            let n = c
                .list_neighbors(pb::ListBgpNeighborsRequest::default())
                .await
                .map_err(&err)?
                .into_inner();
            (summary(&s, &n), summary_json(&s, &n))
        }
        BgpCommand::Neighbors { address } => {
            let n = c
                .list_neighbors(pb::ListBgpNeighborsRequest {
                    address: address.unwrap_or_default(),
                })
                .await
                .map_err(&err)?
                .into_inner();
            (neighbors(&n), neighbors_json(&n))
        }
        BgpCommand::Routes {
            table: t,
            neighbor,
            prefix,
        } => {
            let table = match t {
                TableArg::LocRib => pb::BgpTable::LocRib,
                TableArg::AdjIn => pb::BgpTable::AdjIn,
                TableArg::AdjInPre => pb::BgpTable::AdjInPre,
                TableArg::AdjOut => pb::BgpTable::AdjOut,
            };
            let r = c
                .list_paths(pb::ListBgpPathsRequest {
                    table: table.into(),
                    neighbor: neighbor.unwrap_or_default(),
                    prefix: prefix.unwrap_or_default(),
                })
                .await
                .map_err(&err)?
                .into_inner();
            (paths(&r), paths_json(&r))
        }
        BgpCommand::Announce {
            prefix,
            communities,
            large_communities,
            med,
            local_pref,
            as_path,
            origin,
        } => {
            let as_path = as_path.map(|p| p.0).unwrap_or_default();
            let attributes = pb::BgpPathAttributes {
                origin: match origin {
                    OriginArg::Igp => "igp",
                    OriginArg::Egp => "egp",
                    OriginArg::Incomplete => "incomplete",
                }
                .into(),
                as_path,
                med,
                local_pref,
                communities,
                large_communities,
            };
            c.add_path(pb::AddBgpPathRequest {
                prefix: prefix.clone(),
                attributes: Some(attributes),
            })
            .await
            .map_err(&err)?;
            (format!("announced {prefix}"), json!({"announced": prefix}))
        }
        BgpCommand::Withdraw { prefix } => {
            c.delete_path(pb::DeleteBgpPathRequest {
                prefix: prefix.clone(),
            })
            .await
            .map_err(&err)?;
            (format!("withdrew {prefix}"), json!({"withdrawn": prefix}))
        }
        BgpCommand::Reset {
            address,
            all,
            soft_in,
            soft_out,
        } => {
            let r = c
                .reset_neighbor(pb::ResetBgpNeighborRequest {
                    address: address.unwrap_or_default(),
                    all,
                    soft_in,
                    soft_out,
                })
                .await
                .map_err(&err)?
                .into_inner();
            let kind = match (soft_in, soft_out) {
                (false, false) => "hard",
                (true, false) => "soft inbound",
                (false, true) => "soft outbound",
                (true, true) => "soft",
            };
            let text = if r.neighbors.is_empty() {
                "no BGP neighbors to reset".into()
            } else {
                format!("{kind} reset: {}", r.neighbors.join(", "))
            };
            (text, json!({"reset": kind, "neighbors": r.neighbors}))
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{text}");
    }
    Ok(())
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_owned()
    }
}

fn state_time(n: &pb::BgpNeighbor) -> String {
    duration(Duration::from_secs(n.state_seconds))
}

pub fn summary(s: &pb::GetBgpResponse, n: &pb::ListBgpNeighborsResponse) -> String {
    let mut out = format!(
        "BGP AS {}, router id {}, {} neighbors ({} established), {} routes, {} originated\n",
        s.asn, s.router_id, s.neighbors, s.neighbors_established, s.routes, s.originated
    );
    for e in &s.listen_errors {
        out.push_str(&format!("listen error: {e}\n"));
    }
    if n.neighbors.is_empty() {
        out.push_str("no BGP neighbors");
        return out;
    }
    let rows: Vec<Vec<String>> = n
        .neighbors
        .iter()
        .map(|x| {
            vec![
                x.address.clone(),
                x.remote_as.to_string(),
                x.state_name.clone(),
                state_time(x),
                x.prefixes_received.to_string(),
                x.prefixes_advertised.to_string(),
                dash(&x.tunnel),
                dash(&x.description),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "NEIGHBOR",
            "AS",
            "STATE",
            "FOR",
            "RCVD",
            "SENT",
            "TUNNEL",
            "DESCRIPTION",
        ],
        &rows,
    ));
    out
}

pub fn summary_json(s: &pb::GetBgpResponse, n: &pb::ListBgpNeighborsResponse) -> Value {
    json!({
        "asn": s.asn,
        "router_id": s.router_id,
        "neighbors": s.neighbors,
        "neighbors_established": s.neighbors_established,
        "routes": s.routes,
        "originated": s.originated,
        "listen_errors": s.listen_errors,
        "neighbor_list": neighbors_json(n),
    })
}

fn capabilities(g: &pb::BgpNegotiated) -> String {
    let mut caps = Vec::new();
    if g.four_octet_as {
        caps.push("4-octet AS");
    }
    if g.route_refresh {
        caps.push("route refresh");
    }
    if g.extended_next_hop {
        caps.push("extended next hop");
    }
    if g.extended_message {
        caps.push("extended messages");
    }
    if caps.is_empty() {
        caps.push("none");
    }
    format!(
        "capabilities: {}; families: {}",
        caps.join(", "),
        dash(&g.families.join(", "))
    )
}

pub fn neighbors(r: &pb::ListBgpNeighborsResponse) -> String {
    if r.neighbors.is_empty() {
        return "no BGP neighbors".into();
    }
    let mut blocks = Vec::new();
    for n in &r.neighbors {
        let mut b = format!("neighbor {}", n.address);
        if !n.tunnel.is_empty() {
            b += &format!(" on tunnel {}", n.tunnel);
        }
        if !n.description.is_empty() {
            b += &format!(" ({})", n.description);
        }
        b += &format!(", AS {}, local AS {}", n.remote_as, n.local_as);
        if n.passive {
            b += ", passive";
        }
        b += &format!(
            "\n  state {} for {}, established {} times",
            n.state_name,
            state_time(n),
            n.established_transitions
        );
        if let Some(g) = &n.negotiated {
            b += &format!(
                "\n  {}, peer id {}, AS {}, hold {}s, keepalive {}s\n  {}",
                if g.ebgp { "eBGP" } else { "iBGP" },
                g.peer_id,
                g.peer_as,
                g.hold_time,
                g.keepalive,
                capabilities(g)
            );
        }
        b += &format!(
            "\n  messages in {}, out {}, updates in {}; prefixes received {}, advertised {}",
            n.messages_in, n.messages_out, n.updates_in, n.prefixes_received, n.prefixes_advertised
        );
        if let Some(k) = n.prefixes_kept {
            b += &format!(" (kept before policy {k})");
        }
        b += &match n.fast_failover.as_str() {
            "armed" => format!(
                "\n  fast failover: armed (session down after {} ms of tunnel silence)",
                n.liveness_ms
            ),
            "waiting" => "\n  fast failover: waiting (the peer does not probe; the hold timer finds failures)".to_string(),
            _ => String::new(),
        };
        if !n.last_error.is_empty() {
            b += &format!("\n  last error: {}", n.last_error);
        }
        blocks.push(b);
    }
    blocks.join("\n\n")
}

pub fn neighbor_json(n: &pb::BgpNeighbor) -> Value {
    json!({
        "address": n.address,
        "tunnel": n.tunnel,
        "description": n.description,
        "local_as": n.local_as,
        "remote_as": n.remote_as,
        "state": n.state_name,
        "state_seconds": n.state_seconds,
        "since_unix": n.since_unix,
        "passive": n.passive,
        "messages_in": n.messages_in,
        "messages_out": n.messages_out,
        "updates_in": n.updates_in,
        "established_transitions": n.established_transitions,
        "last_error": n.last_error,
        "negotiated": n.negotiated.as_ref().map(|g| json!({
            "peer_as": g.peer_as,
            "peer_id": g.peer_id,
            "hold_time": g.hold_time,
            "keepalive": g.keepalive,
            "four_octet_as": g.four_octet_as,
            "families": g.families,
            "extended_next_hop": g.extended_next_hop,
            "extended_message": g.extended_message,
            "route_refresh": g.route_refresh,
            "ebgp": g.ebgp,
        })),
        "prefixes_received": n.prefixes_received,
        "prefixes_advertised": n.prefixes_advertised,
        "prefixes_kept": n.prefixes_kept,
        "fast_failover": n.fast_failover,
        "liveness_ms": n.liveness_ms,
    })
}

pub fn neighbors_json(r: &pb::ListBgpNeighborsResponse) -> Value {
    Value::Array(r.neighbors.iter().map(neighbor_json).collect())
}

fn origin_code(o: &str) -> &'static str {
    match o {
        "igp" => "i",
        "egp" => "e",
        "incomplete" => "?",
        _ => "",
    }
}

pub fn paths(r: &pb::ListBgpPathsResponse) -> String {
    if r.paths.is_empty() {
        return "no BGP paths".into();
    }
    let rows: Vec<Vec<String>> = r
        .paths
        .iter()
        .map(|p| {
            let path = [p.as_path_text.as_str(), origin_code(&p.origin)]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            let mut communities = p.communities.clone();
            communities.extend(p.large_communities.iter().cloned());
            vec![
                if p.best { "*" } else { "" }.into(),
                p.prefix.clone(),
                dash(&p.next_hop),
                if p.peer.is_empty() {
                    "local".into()
                } else {
                    p.peer.clone()
                },
                p.local_pref.map_or("-".into(), |v| v.to_string()),
                p.med.map_or("-".into(), |v| v.to_string()),
                dash(&path),
                dash(&communities.join(" ")),
            ]
        })
        .collect();
    table(
        &[
            "",
            "PREFIX",
            "NEXT HOP",
            "FROM",
            "LOCPRF",
            "MED",
            "PATH",
            "COMMUNITIES",
        ],
        &rows,
    )
}

pub fn path_json(p: &pb::BgpPath) -> Value {
    json!({
        "prefix": p.prefix,
        "peer": p.peer,
        "next_hop": p.next_hop,
        "origin": p.origin,
        "as_path": p.as_path,
        "as_path_text": p.as_path_text,
        "as_path_segments": p.as_path_segments.iter().map(|s| json!({
            "type": s.r#type,
            "asns": s.asns,
        })).collect::<Vec<_>>(),
        "med": p.med,
        "local_pref": p.local_pref,
        "communities": p.communities,
        "large_communities": p.large_communities,
        "atomic_aggregate": p.atomic_aggregate,
        "aggregator": p.aggregator,
        "best": p.best,
    })
}

pub fn paths_json(r: &pb::ListBgpPathsResponse) -> Value {
    Value::Array(r.paths.iter().map(path_json).collect())
}

/// A neighbor change on the Events stream, as one line.
pub fn change_line(c: &pb::BgpNeighborChanged) -> String {
    let who = if c.tunnel.is_empty() {
        format!("bgp neighbor {}", c.address)
    } else {
        format!("bgp neighbor {} ({})", c.address, c.tunnel)
    };
    if !c.present {
        return format!("{who} removed");
    }
    let mut line = format!("{who} {}", c.state_name);
    if !c.last_error.is_empty() && c.state_name != "established" {
        line += &format!(" (last error: {})", c.last_error);
    }
    line
}

pub fn change_json(c: &pb::BgpNeighborChanged) -> Value {
    json!({
        "type": "bgp_neighbor_changed",
        "address": c.address,
        "tunnel": c.tunnel,
        "state": c.state_name,
        "previous_state": pb::BgpState::try_from(c.previous_state)
            .map(state_name)
            .unwrap_or(""),
        "established_transitions": c.established_transitions,
        "last_error": c.last_error,
        "present": c.present,
    })
}

/// The API's state names, for the enum.
pub fn state_name(s: pb::BgpState) -> &'static str {
    match s {
        pb::BgpState::Unspecified => "",
        pb::BgpState::Idle => "idle",
        pb::BgpState::Connect => "connect",
        pb::BgpState::Active => "active",
        pb::BgpState::OpenSent => "open-sent",
        pb::BgpState::OpenConfirm => "open-confirm",
        pb::BgpState::Established => "established",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neighbor() -> pb::BgpNeighbor {
        pb::BgpNeighbor {
            address: "169.254.12.1".into(),
            tunnel: "to-r2".into(),
            local_as: 65001,
            remote_as: 65002,
            state: pb::BgpState::Established.into(),
            state_name: "established".into(),
            state_seconds: 75,
            established_transitions: 1,
            negotiated: Some(pb::BgpNegotiated {
                peer_as: 65002,
                peer_id: "10.255.4.2".into(),
                hold_time: 90,
                keepalive: 30,
                four_octet_as: true,
                families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
                extended_next_hop: true,
                route_refresh: true,
                ebgp: true,
                extended_message: true,
            }),
            prefixes_received: 2,
            prefixes_advertised: 3,
            ..Default::default()
        }
    }

    #[test]
    fn summary_and_neighbors_show_what_matters() {
        let s = pb::GetBgpResponse {
            asn: 65001,
            router_id: "10.255.4.1".into(),
            neighbors: 1,
            neighbors_established: 1,
            routes: 4,
            originated: 2,
            listen_errors: vec![],
        };
        let n = pb::ListBgpNeighborsResponse {
            neighbors: vec![neighbor()],
        };
        let t = summary(&s, &n);
        assert!(
            t.starts_with("BGP AS 65001, router id 10.255.4.1, 1 neighbors (1 established)"),
            "{t}"
        );
        assert!(
            t.contains("169.254.12.1  65002  established  1m 15s  2     3     to-r2   -"),
            "{t}"
        );
        let d = neighbors(&n);
        assert!(
            d.contains("neighbor 169.254.12.1 on tunnel to-r2, AS 65002, local AS 65001"),
            "{d}"
        );
        assert!(
            d.contains("eBGP, peer id 10.255.4.2, AS 65002, hold 90s, keepalive 30s"),
            "{d}"
        );
        assert!(
            d.contains("capabilities: 4-octet AS, route refresh, extended next hop, extended messages; families: ipv4-unicast, ipv6-unicast"),
            "{d}"
        );
        assert!(!d.contains("kept before policy"), "{d}");
        let j = summary_json(&s, &n);
        assert_eq!(j["neighbor_list"][0]["state"], "established");
        assert_eq!(j["neighbor_list"][0]["negotiated"]["hold_time"], 90);
        assert!(j["neighbor_list"][0]["prefixes_kept"].is_null());
        // With keep-received-routes: how many routes are kept before policy.
        let mut kept = neighbor();
        kept.prefixes_kept = Some(5);
        let n = pb::ListBgpNeighborsResponse {
            neighbors: vec![kept],
        };
        let d = neighbors(&n);
        assert!(
            d.contains("prefixes received 2, advertised 3 (kept before policy 5)"),
            "{d}"
        );
        assert_eq!(summary_json(&s, &n)["neighbor_list"][0]["prefixes_kept"], 5);
    }

    #[test]
    fn paths_table_marks_the_best() {
        let r = pb::ListBgpPathsResponse {
            paths: vec![
                pb::BgpPath {
                    prefix: "10.255.4.3/32".into(),
                    peer: "169.254.13.1".into(),
                    next_hop: "169.254.13.1".into(),
                    origin: "igp".into(),
                    as_path: vec![65003],
                    as_path_text: "65003".into(),
                    communities: vec!["65000:666".into()],
                    best: true,
                    ..Default::default()
                },
                pb::BgpPath {
                    prefix: "192.0.2.0/24".into(),
                    origin: "incomplete".into(),
                    med: Some(5),
                    best: true,
                    ..Default::default()
                },
            ],
        };
        let t = paths(&r);
        assert!(
            t.contains(
                "*  10.255.4.3/32  169.254.13.1  169.254.13.1  -       -    65003 i  65000:666"
            ),
            "{t}"
        );
        assert!(
            t.contains("*  192.0.2.0/24   -             local         -       5    ?"),
            "{t}"
        );
        assert_eq!(paths_json(&r)[1]["med"], 5);
        assert_eq!(paths(&pb::ListBgpPathsResponse::default()), "no BGP paths");
    }

    #[test]
    fn as_paths_from_the_command_line() {
        assert_eq!(
            parse_as_path("65010 65011,65012").unwrap().0,
            vec![65010, 65011, 65012]
        );
        assert!(parse_as_path("65010 x").is_err());
        assert!(parse_as_path("").unwrap().0.is_empty());
    }
}
