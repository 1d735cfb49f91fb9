//! `wgrctl ospf interfaces|neighbors|database|routes`: tables for people, JSON with stable
//! snake_case names for scripts. Pure functions over the `Ospf` service's messages.

use crate::render::{duration, table};
use serde_json::{json, Value};
use std::time::Duration;
use wgrd_proto::v1 as pb;

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_owned()
    }
}

/// "0.0.0.1 (stub, default cost 5)" for the header line.
fn area_text(a: &pb::OspfArea) -> String {
    let mut notes = Vec::new();
    match (a.stub, a.no_summary) {
        (false, _) => {}
        (true, false) => notes.push(format!("stub, default cost {}", a.default_cost)),
        (true, true) => notes.push(format!("totally stubby, default cost {}", a.default_cost)),
    }
    if !a.ranges.is_empty() {
        notes.push(format!("ranges {}", a.ranges.join(" ")));
    }
    if notes.is_empty() {
        a.id.clone()
    } else {
        format!("{} ({})", a.id, notes.join("; "))
    }
}

pub fn interfaces(r: &pb::OspfInterfacesResponse) -> String {
    let areas = if r.areas.is_empty() {
        format!("area {}", r.area)
    } else {
        let list: Vec<String> = r.areas.iter().map(area_text).collect();
        let word = if list.len() > 1 { "areas" } else { "area" };
        format!("{word} {}", list.join(", "))
    };
    let mut out = format!(
        "router id {}, {areas}{}, {} SPF runs\n",
        r.router_id,
        if r.abr { ", area border router" } else { "" },
        r.spf_runs
    );
    let rows: Vec<Vec<String>> = r
        .interfaces
        .iter()
        .map(|i| {
            vec![
                i.tunnel.clone(),
                dash(&i.area),
                dash(&i.address),
                i.cost.to_string(),
                format!("{}/{}", i.hello_interval, i.dead_interval),
                if i.auth == "none" {
                    "none".into()
                } else {
                    format!("{} key {}", i.auth, i.auth_key_id)
                },
                dash(&i.neighbor_router_id),
                dash(&i.neighbor_state),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "TUNNEL",
            "AREA",
            "ADDRESS",
            "COST",
            "HELLO/DEAD",
            "AUTH",
            "NEIGHBOR",
            "STATE",
        ],
        &rows,
    ));
    let drops: Vec<String> = r
        .counters
        .iter()
        .filter(|(k, _)| !k.starts_with("tx_") && !k.starts_with("rx_"))
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if !drops.is_empty() {
        out.push_str(&format!("\ndropped or noted: {}", drops.join(", ")));
    }
    out
}

pub fn interfaces_json(r: &pb::OspfInterfacesResponse) -> Value {
    json!({
        "router_id": r.router_id,
        "area": r.area,
        "areas": r.areas.iter().map(|a| json!({
            "id": a.id,
            "stub": a.stub,
            "no_summary": a.no_summary,
            "default_cost": a.default_cost,
            "ranges": a.ranges,
        })).collect::<Vec<_>>(),
        "abr": r.abr,
        "spf_runs": r.spf_runs,
        "counters": r.counters,
        "interfaces": r.interfaces.iter().map(|i| json!({
            "tunnel": i.tunnel,
            "area": i.area,
            "address": i.address,
            "cost": i.cost,
            "hello_interval": i.hello_interval,
            "dead_interval": i.dead_interval,
            "auth": i.auth,
            "auth_key_id": i.auth_key_id,
            "liveness_ms": i.liveness_ms,
            "neighbor_router_id": i.neighbor_router_id,
            "neighbor_state": i.neighbor_state,
        })).collect::<Vec<_>>(),
    })
}

pub fn neighbors(r: &pb::OspfNeighborsResponse) -> String {
    if r.neighbors.is_empty() {
        return "no OSPF neighbors".into();
    }
    let rows: Vec<Vec<String>> = r
        .neighbors
        .iter()
        .map(|n| {
            vec![
                n.router_id.clone(),
                n.state.clone(),
                n.tunnel.clone(),
                n.address.clone(),
                duration(Duration::from_millis(n.uptime_ms)),
                failover(n),
                dash(&n.area),
            ]
        })
        .collect();
    table(
        &[
            "ROUTER ID",
            "STATE",
            "TUNNEL",
            "ADDRESS",
            "UPTIME",
            "FAST FAILOVER",
            "AREA",
        ],
        &rows,
    )
}

/// "armed 300ms": a silence that long ends the adjacency; "waiting": the peer does not
/// probe (yet), the dead interval finds failures.
fn failover(n: &pb::OspfNeighbor) -> String {
    match n.fast_failover.as_str() {
        "armed" => format!("armed {}ms", n.liveness_ms),
        other => other.to_owned(),
    }
}

pub fn neighbors_json(r: &pb::OspfNeighborsResponse) -> Value {
    Value::Array(
        r.neighbors
            .iter()
            .map(|n| {
                json!({
                    "router_id": n.router_id,
                    "state": n.state,
                    "tunnel": n.tunnel,
                    "address": n.address,
                    "uptime_ms": n.uptime_ms,
                    "fast_failover": n.fast_failover,
                    "liveness_ms": n.liveness_ms,
                    "area": n.area,
                })
            })
            .collect(),
    )
}

pub fn database(r: &pb::OspfDatabaseResponse) -> String {
    if r.lsas.is_empty() {
        return "the OSPF database is empty".into();
    }
    let rows: Vec<Vec<String>> = r
        .lsas
        .iter()
        .map(|l| {
            vec![
                if l.area.is_empty() {
                    "AS".into()
                } else {
                    l.area.clone()
                },
                l.type_name.clone(),
                l.id.clone(),
                l.adv_router.clone(),
                format!("{:#010x}", l.seq),
                l.age.to_string(),
                l.summary.clone(),
            ]
        })
        .collect();
    table(
        &["AREA", "TYPE", "ID", "ADV ROUTER", "SEQ", "AGE", "CONTENTS"],
        &rows,
    )
}

pub fn database_json(r: &pb::OspfDatabaseResponse) -> Value {
    Value::Array(
        r.lsas
            .iter()
            .map(|l| {
                json!({
                    "type": l.r#type,
                    "type_name": l.type_name,
                    "id": l.id,
                    "adv_router": l.adv_router,
                    "seq": l.seq,
                    "age": l.age,
                    "checksum": l.checksum,
                    "length": l.length,
                    "summary": l.summary,
                    "area": l.area,
                })
            })
            .collect(),
    )
}

pub fn routes(r: &pb::OspfRoutesResponse) -> String {
    if r.routes.is_empty() {
        return "no OSPF routes".into();
    }
    let rows: Vec<Vec<String>> = r
        .routes
        .iter()
        .map(|x| {
            vec![
                x.prefix.clone(),
                x.path_type.clone(),
                if x.path_type == "E2" {
                    format!("{} ({})", x.cost, x.cost2)
                } else {
                    x.cost.to_string()
                },
                x.tunnels.join(", "),
            ]
        })
        .collect();
    table(&["PREFIX", "TYPE", "COST", "VIA"], &rows)
}

pub fn routes_json(r: &pb::OspfRoutesResponse) -> Value {
    Value::Array(
        r.routes
            .iter()
            .map(|x| {
                json!({
                    "prefix": x.prefix,
                    "path_type": x.path_type,
                    "cost": x.cost,
                    "cost2": x.cost2,
                    "tunnels": x.tunnels,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_what_matters() {
        let n = pb::OspfNeighborsResponse {
            neighbors: vec![pb::OspfNeighbor {
                tunnel: "to-r2".into(),
                router_id: "10.255.0.2".into(),
                address: "169.254.0.1".into(),
                state: "full".into(),
                uptime_ms: 75_000,
                fast_failover: "armed".into(),
                liveness_ms: 300,
                area: "0.0.0.1".into(),
            }],
        };
        let t = neighbors(&n);
        assert!(
            t.contains("10.255.0.2  full   to-r2   169.254.0.1  1m 15s  armed 300ms"),
            "{t}"
        );
        assert_eq!(neighbors_json(&n)[0]["uptime_ms"], 75_000);
        let d = pb::OspfDatabaseResponse {
            lsas: vec![pb::OspfLsa {
                r#type: 1,
                type_name: "router".into(),
                id: "10.255.0.1".into(),
                adv_router: "10.255.0.1".into(),
                seq: 0x8000_0003,
                age: 12,
                summary: "p2p 10.255.0.2 cost 10".into(),
                ..Default::default()
            }],
        };
        assert!(database(&d).contains("0x80000003  12   p2p 10.255.0.2 cost 10"));
        assert!(database(&d).starts_with("AREA"), "{}", database(&d));
        assert!(t.contains("armed 300ms    0.0.0.1"), "{t}");
        let i = pb::OspfInterfacesResponse {
            router_id: "10.255.0.1".into(),
            area: "0.0.0.0".into(),
            abr: true,
            areas: vec![
                pb::OspfArea {
                    id: "0.0.0.0".into(),
                    ..Default::default()
                },
                pb::OspfArea {
                    id: "0.0.0.1".into(),
                    stub: true,
                    default_cost: 5,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert!(
            interfaces(&i).starts_with(
                "router id 10.255.0.1, areas 0.0.0.0, 0.0.0.1 (stub, default cost 5), \
                 area border router, 0 SPF runs"
            ),
            "{}",
            interfaces(&i)
        );
        let r = pb::OspfRoutesResponse {
            routes: vec![pb::OspfRoute {
                prefix: "10.9.0.0/24".into(),
                path_type: "E2".into(),
                cost: 20,
                cost2: 10,
                tunnels: vec!["a".into(), "b".into()],
            }],
        };
        assert!(
            routes(&r).contains("10.9.0.0/24  E2    20 (10)  a, b"),
            "{}",
            routes(&r)
        );
        assert_eq!(routes(&pb::OspfRoutesResponse::default()), "no OSPF routes");
    }
}
