//! The `Bgp` service: the BGP speaker's status, its tables, and the few commands an
//! operator gives it (originate or withdraw a prefix, reset a session), over a
//! [`BgpClient`]. Everything the caller sends is checked here before the speaker is asked,
//! so a refused call changes nothing; the speaker's own refusals (unknown neighbor, a
//! prefix not announced) map to NOT_FOUND.
//!
//! Also the Events stream's BGP part: [`neighbor_events`] turns two successive statuses
//! into neighbor change events.

use super::service::Control;
use crate::routing::bgp::attr::{AsPath, LargeCommunity, Origin, PathAttrs, SegmentType};
use crate::routing::bgp::fsm::State;
use crate::routing::bgp::io::{BgpClient, BgpError, BgpStatus, NeighborStatus, PathInfo, Table};
use crate::routing::bgp::scope;
use ipnetwork::IpNetwork;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tonic::{Request, Response, Status};
use wgrd_proto::v1 as pb;

const NOT_ENABLED: &str = "BGP is not enabled";

pub struct BgpService(pub Arc<Control>);

impl BgpService {
    /// The speaker's client and status, when it runs.
    fn speaker(&self) -> Result<(&BgpClient, BgpStatus), Status> {
        let client = self
            .0
            .bgp
            .as_ref()
            .ok_or_else(|| Status::failed_precondition(NOT_ENABLED))?;
        let status = client.status();
        if !status.running {
            return Err(Status::failed_precondition(NOT_ENABLED));
        }
        Ok((client, status))
    }
}

/// The speaker's refusals as gRPC statuses.
fn refused(e: BgpError) -> Status {
    match e {
        BgpError::NotRunning => Status::failed_precondition(NOT_ENABLED),
        BgpError::NotKept(_) => Status::failed_precondition(e.to_string()),
        BgpError::AmbiguousNeighbor(_) => Status::invalid_argument(e.to_string()),
        BgpError::NoSuchNeighbor(_) | BgpError::NotAnnounced(_) => Status::not_found(e.to_string()),
    }
}

/// A prefix as the API takes it: an address with a length and no host bits (a bare
/// address is a host route).
pub fn parse_prefix(field: &str, text: &str) -> Result<IpNetwork, String> {
    let net: IpNetwork = text.trim().parse().map_err(|_| {
        format!("{field}: \"{text}\" is not a prefix (like 192.0.2.0/24 or 2001:db8::/48)")
    })?;
    let canonical = IpNetwork::new(net.network(), net.prefix()).unwrap_or(net);
    if canonical.ip() != net.ip() {
        return Err(format!(
            "{field}: \"{text}\" has host bits set (the prefix is {canonical})"
        ));
    }
    Ok(net)
}

/// The neighbor a request names by `fe80::1%to-r2` or a plain address (enough unless a
/// link-local address is on several tunnels); its key for the speaker.
fn neighbor_key(s: &BgpStatus, field: &str, text: &str) -> Result<IpAddr, Status> {
    let Some((addr, zone)) = scope::parse_with_zone(text) else {
        return Err(invalid(vec![format!(
            "{field}: \"{text}\" is not an IP address (a link-local one may end in %TUNNEL)"
        )]));
    };
    let mut same = s
        .neighbors
        .iter()
        .filter(|n| n.address == addr && zone.is_none_or(|z| n.tunnel.as_deref() == Some(z)));
    match (same.next(), same.next()) {
        (Some(n), None) => Ok(n.key),
        (Some(_), Some(_)) => Err(refused(BgpError::AmbiguousNeighbor(addr))),
        _ => Err(refused(BgpError::NoSuchNeighbor(addr))),
    }
}

/// A neighbor's key as the API shows a path's peer: `fe80::1%to-r2` when it is scoped to
/// a tunnel, the address otherwise.
fn peer_text(s: &BgpStatus, key: IpAddr) -> String {
    let tunnel = s
        .neighbors
        .iter()
        .find(|n| n.key == key)
        .and_then(|n| n.tunnel.clone());
    scope::describe(key, |_| tunnel.clone())
}

fn invalid(problems: Vec<String>) -> Status {
    Status::invalid_argument(problems.join("\n"))
}

/// "65000:666" or a well-known name -> the community as one number.
pub fn parse_community(text: &str) -> Option<u32> {
    match text {
        "no-export" => return Some(0xffff_ff01),
        "no-advertise" => return Some(0xffff_ff02),
        "no-export-subconfed" => return Some(0xffff_ff03),
        _ => {}
    }
    let (asn, value) = text.split_once(':')?;
    Some(u32::from(asn.parse::<u16>().ok()?) << 16 | u32::from(value.parse::<u16>().ok()?))
}

/// "65000:1:2" -> a large community.
pub fn parse_large_community(text: &str) -> Option<LargeCommunity> {
    let mut parts = text.split(':').map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Some(global)), Some(Some(local1)), Some(Some(local2)), None) => {
            Some(LargeCommunity {
                global,
                local1,
                local2,
            })
        }
        _ => None,
    }
}

/// The API's attributes -> PathAttrs, every problem listed.
fn attributes(a: Option<&pb::BgpPathAttributes>) -> Result<PathAttrs, Vec<String>> {
    let mut attrs = PathAttrs {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        ..Default::default()
    };
    let Some(a) = a else {
        return Ok(attrs);
    };
    let mut problems = Vec::new();
    match a.origin.as_str() {
        "" | "igp" => {}
        "egp" => attrs.origin = Some(Origin::Egp),
        "incomplete" => attrs.origin = Some(Origin::Incomplete),
        other => problems.push(format!(
            "attributes.origin: \"{other}\" is not igp, egp or incomplete"
        )),
    }
    if a.as_path.contains(&0) {
        problems.push("attributes.as_path: AS 0 is reserved (RFC 7607)".into());
    }
    attrs.as_path = Some(AsPath::sequence(&a.as_path));
    attrs.med = a.med;
    attrs.local_pref = a.local_pref;
    for (i, c) in a.communities.iter().enumerate() {
        match parse_community(c) {
            Some(v) => attrs.communities.push(v),
            None => problems.push(format!(
                "attributes.communities[{}]: \"{c}\" is not \"ASN:VALUE\" (each 0..=65535) or no-export, no-advertise, no-export-subconfed",
                i + 1
            )),
        }
    }
    for (i, c) in a.large_communities.iter().enumerate() {
        match parse_large_community(c) {
            Some(v) => attrs.large_communities.push(v),
            None => problems.push(format!(
                "attributes.large_communities[{}]: \"{c}\" is not \"GLOBAL:LOCAL1:LOCAL2\" (each 0..=4294967295)",
                i + 1
            )),
        }
    }
    if problems.is_empty() {
        Ok(attrs)
    } else {
        Err(problems)
    }
}

pub fn state(s: State) -> pb::BgpState {
    match s {
        State::Idle => pb::BgpState::Idle,
        State::Connect => pb::BgpState::Connect,
        State::Active => pb::BgpState::Active,
        State::OpenSent => pb::BgpState::OpenSent,
        State::OpenConfirm => pb::BgpState::OpenConfirm,
        State::Established => pb::BgpState::Established,
    }
}

pub fn state_name(s: State) -> &'static str {
    match s {
        State::Idle => "idle",
        State::Connect => "connect",
        State::Active => "active",
        State::OpenSent => "open-sent",
        State::OpenConfirm => "open-confirm",
        State::Established => "established",
    }
}

fn family_name(f: crate::routing::bgp::attr::Family) -> &'static str {
    use crate::routing::bgp::attr::Family;
    match f {
        Family::Ipv4Unicast => "ipv4-unicast",
        Family::Ipv6Unicast => "ipv6-unicast",
    }
}

/// One neighbor as the API shows it; `now` and `wall` are the same moment.
pub fn neighbor(n: &NeighborStatus, now: Instant, wall: SystemTime) -> pb::BgpNeighbor {
    let in_state = now.saturating_duration_since(n.since);
    let since_unix = wall
        .checked_sub(in_state)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    pb::BgpNeighbor {
        address: n.address.to_string(),
        tunnel: n.tunnel.clone().unwrap_or_default(),
        description: n.description.clone().unwrap_or_default(),
        local_as: n.local_as,
        remote_as: n.remote_as,
        state: state(n.state).into(),
        state_name: state_name(n.state).into(),
        state_seconds: in_state.as_secs(),
        since_unix,
        passive: n.passive,
        messages_in: n.messages_in,
        messages_out: n.messages_out,
        updates_in: n.updates_in,
        established_transitions: n.established_transitions,
        last_error: n.last_error.clone().unwrap_or_default(),
        negotiated: n.negotiated.as_ref().map(|g| pb::BgpNegotiated {
            peer_as: g.peer_as,
            peer_id: g.peer_id.to_string(),
            hold_time: u32::from(g.hold_time),
            keepalive: g.keepalive().as_secs() as u32,
            four_octet_as: g.four_octet_as,
            families: g.families.iter().map(|f| family_name(*f).into()).collect(),
            extended_next_hop: g.extended_next_hop,
            extended_message: g.extended_message,
            route_refresh: g.route_refresh,
            ebgp: g.ebgp,
        }),
        prefixes_received: n.prefixes_received as u64,
        prefixes_kept: n.prefixes_kept.map(|k| k as u64),
        prefixes_advertised: n.prefixes_advertised as u64,
        fast_failover: n.fast_failover.name().into(),
        liveness_ms: n
            .fast_failover
            .interval()
            .map_or(0, |d| d.as_millis() as u32),
    }
}

fn segment_type(t: SegmentType) -> &'static str {
    match t {
        SegmentType::Set => "set",
        SegmentType::Sequence => "sequence",
        SegmentType::ConfedSequence => "confed-sequence",
        SegmentType::ConfedSet => "confed-set",
    }
}

/// "65001 65002 {65003,65004}", confederation segments in parentheses.
pub fn as_path_text(p: &AsPath) -> String {
    let join = |asns: &[u32], sep: &str| {
        asns.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(sep)
    };
    p.segments
        .iter()
        .map(|s| match s.kind {
            SegmentType::Sequence => join(&s.asns, " "),
            SegmentType::Set => format!("{{{}}}", join(&s.asns, ",")),
            SegmentType::ConfedSequence => format!("({})", join(&s.asns, " ")),
            SegmentType::ConfedSet => format!("[{}]", join(&s.asns, ",")),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn community_text(c: u32) -> String {
    format!("{}:{}", c >> 16, c & 0xffff)
}

/// One path as the API shows it; `s` names its peer.
pub fn path(p: &PathInfo, s: &BgpStatus) -> pb::BgpPath {
    let a = &p.attrs;
    let as_path = a.as_path.clone().unwrap_or_default();
    pb::BgpPath {
        prefix: p.prefix.to_string(),
        peer: p.peer.map(|x| peer_text(s, x)).unwrap_or_default(),
        next_hop: p.next_hop.map(|x| x.to_string()).unwrap_or_default(),
        origin: match a.origin {
            Some(Origin::Igp) => "igp",
            Some(Origin::Egp) => "egp",
            Some(Origin::Incomplete) => "incomplete",
            None => "",
        }
        .into(),
        as_path_segments: as_path
            .segments
            .iter()
            .map(|s| pb::BgpAsPathSegment {
                r#type: segment_type(s.kind).into(),
                asns: s.asns.clone(),
            })
            .collect(),
        as_path: as_path
            .segments
            .iter()
            .flat_map(|s| s.asns.iter().copied())
            .collect(),
        as_path_text: as_path_text(&as_path),
        med: a.med,
        local_pref: a.local_pref,
        communities: a.communities.iter().map(|c| community_text(*c)).collect(),
        large_communities: a
            .large_communities
            .iter()
            .map(|l| format!("{}:{}:{}", l.global, l.local1, l.local2))
            .collect(),
        atomic_aggregate: a.atomic_aggregate,
        aggregator: a
            .aggregator
            .map(|g| format!("{} {}", g.asn, g.addr))
            .unwrap_or_default(),
        best: p.best,
    }
}

/// The Events stream's initial BGP state: one event per neighbor.
pub fn neighbor_states(s: &BgpStatus) -> Vec<pb::Event> {
    let (now, wall) = (Instant::now(), SystemTime::now());
    s.neighbors
        .iter()
        .map(|n| pb::Event {
            kind: Some(pb::event::Kind::BgpNeighborState(neighbor(n, now, wall))),
        })
        .collect()
}

/// The neighbor changes between two statuses: state changes (or a flap in between:
/// established_transitions grew), neighbors added and removed.
pub fn neighbor_events(old: &BgpStatus, new: &BgpStatus) -> Vec<pb::Event> {
    let before: BTreeMap<IpAddr, &NeighborStatus> =
        old.neighbors.iter().map(|n| (n.key, n)).collect();
    let after: BTreeMap<IpAddr, &NeighborStatus> =
        new.neighbors.iter().map(|n| (n.key, n)).collect();
    let event = |n: &NeighborStatus, previous: Option<State>, present: bool| pb::Event {
        kind: Some(pb::event::Kind::BgpNeighborChanged(
            pb::BgpNeighborChanged {
                address: n.address.to_string(),
                tunnel: n.tunnel.clone().unwrap_or_default(),
                state: state(n.state).into(),
                state_name: state_name(n.state).into(),
                previous_state: previous.map_or(pb::BgpState::Unspecified, state).into(),
                established_transitions: n.established_transitions,
                last_error: n.last_error.clone().unwrap_or_default(),
                present,
            },
        )),
    };
    let mut out = Vec::new();
    for (addr, n) in &after {
        match before.get(addr) {
            None => out.push(event(n, None, true)),
            Some(o)
                if o.state != n.state || o.established_transitions != n.established_transitions =>
            {
                out.push(event(n, Some(o.state), true));
            }
            Some(_) => {}
        }
    }
    for (addr, o) in &before {
        if !after.contains_key(addr) {
            out.push(event(o, Some(o.state), false));
        }
    }
    out
}

#[tonic::async_trait]
impl pb::bgp_server::Bgp for BgpService {
    async fn get_bgp(
        &self,
        _: Request<pb::GetBgpRequest>,
    ) -> Result<Response<pb::GetBgpResponse>, Status> {
        let (_, s) = self.speaker()?;
        Ok(Response::new(pb::GetBgpResponse {
            asn: s.asn,
            router_id: s.router_id.map(|r| r.to_string()).unwrap_or_default(),
            neighbors: s.neighbors.len() as u32,
            neighbors_established: s
                .neighbors
                .iter()
                .filter(|n| n.state == State::Established)
                .count() as u32,
            routes: s.routes as u32,
            originated: s.originated as u32,
            listen_errors: s.listen_errors,
        }))
    }

    async fn list_neighbors(
        &self,
        request: Request<pb::ListBgpNeighborsRequest>,
    ) -> Result<Response<pb::ListBgpNeighborsResponse>, Status> {
        let (_, s) = self.speaker()?;
        let r = request.into_inner();
        // An address on several tunnels (link-local) lists each of them.
        let only = if r.address.is_empty() {
            None
        } else {
            let Some((a, zone)) = scope::parse_with_zone(&r.address) else {
                return Err(invalid(vec![format!(
                    "address: \"{}\" is not an IP address",
                    r.address
                )]));
            };
            let named = move |n: &NeighborStatus| {
                n.address == a && zone.is_none_or(|z| n.tunnel.as_deref() == Some(z))
            };
            if !s.neighbors.iter().any(named) {
                return Err(refused(BgpError::NoSuchNeighbor(a)));
            }
            Some(named)
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        Ok(Response::new(pb::ListBgpNeighborsResponse {
            neighbors: s
                .neighbors
                .iter()
                .filter(|n| only.as_ref().is_none_or(|named| named(n)))
                .map(|n| neighbor(n, now, wall))
                .collect(),
        }))
    }

    async fn list_paths(
        &self,
        request: Request<pb::ListBgpPathsRequest>,
    ) -> Result<Response<pb::ListBgpPathsResponse>, Status> {
        let (client, s) = self.speaker()?;
        let r = request.into_inner();
        let mut problems = Vec::new();
        let table = pb::BgpTable::try_from(r.table)
            .map_err(|_| problems.push(format!("table: {} is not a table", r.table)))
            .ok();
        let neighbor_text = (!r.neighbor.is_empty()).then_some(r.neighbor.as_str());
        let prefix = if r.prefix.is_empty() {
            None
        } else {
            parse_prefix("prefix", &r.prefix)
                .map_err(|p| problems.push(p))
                .ok()
        };
        let needs_neighbor = matches!(
            table,
            Some(pb::BgpTable::AdjIn | pb::BgpTable::AdjInPre | pb::BgpTable::AdjOut)
        );
        if needs_neighbor && r.neighbor.is_empty() {
            problems.push(
                "neighbor: ADJ_IN, ADJ_IN_PRE and ADJ_OUT are per neighbor; give its address"
                    .into(),
            );
        }
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let neighbor = neighbor_text
            .map(|t| neighbor_key(&s, "neighbor", t))
            .transpose()?;
        let (table, from) = match (table, neighbor) {
            (Some(pb::BgpTable::AdjIn), Some(a)) => (Table::AdjIn(a), None),
            (Some(pb::BgpTable::AdjInPre), Some(a)) => (Table::AdjInPre(a), None),
            (Some(pb::BgpTable::AdjOut), Some(a)) => (Table::AdjOut(a), None),
            // The Loc-RIB, optionally only the paths learned from one neighbor.
            (_, from) => (Table::LocRib, from),
        };
        let paths = client.paths(table, prefix).await.map_err(refused)?;
        Ok(Response::new(pb::ListBgpPathsResponse {
            paths: paths
                .iter()
                .filter(|p| from.is_none() || p.peer == from)
                .map(|p| path(p, &s))
                .collect(),
        }))
    }

    async fn add_path(
        &self,
        request: Request<pb::AddBgpPathRequest>,
    ) -> Result<Response<pb::AddBgpPathResponse>, Status> {
        let (client, _) = self.speaker()?;
        let r = request.into_inner();
        let prefix = parse_prefix("prefix", &r.prefix);
        let attrs = attributes(r.attributes.as_ref());
        let (prefix, attrs) = match (prefix, attrs) {
            (Ok(p), Ok(a)) => (p, a),
            (p, a) => {
                let mut problems: Vec<String> = p.err().into_iter().collect();
                problems.extend(a.err().unwrap_or_default());
                return Err(invalid(problems));
            }
        };
        client.announce(prefix, attrs).await.map_err(refused)?;
        Ok(Response::new(pb::AddBgpPathResponse {}))
    }

    async fn delete_path(
        &self,
        request: Request<pb::DeleteBgpPathRequest>,
    ) -> Result<Response<pb::DeleteBgpPathResponse>, Status> {
        let (client, _) = self.speaker()?;
        let prefix =
            parse_prefix("prefix", &request.into_inner().prefix).map_err(|p| invalid(vec![p]))?;
        client.withdraw(prefix).await.map_err(refused)?;
        Ok(Response::new(pb::DeleteBgpPathResponse {}))
    }

    async fn reset_neighbor(
        &self,
        request: Request<pb::ResetBgpNeighborRequest>,
    ) -> Result<Response<pb::ResetBgpNeighborResponse>, Status> {
        let (client, s) = self.speaker()?;
        let r = request.into_inner();
        let one = match (r.all, r.address.is_empty()) {
            (true, false) => {
                return Err(invalid(vec![
                    "address: give a neighbor's address or all, not both".into(),
                ]))
            }
            (false, true) => {
                return Err(invalid(vec![
                    "address: give a neighbor's address, or all".into()
                ]))
            }
            (true, true) => None,
            (false, false) => Some(neighbor_key(&s, "address", &r.address)?),
        };
        let which: Vec<IpAddr> = match one {
            Some(a) => vec![a],
            None => s.neighbors.iter().map(|n| n.key).collect(),
        };
        if r.soft_in || r.soft_out {
            client
                .soft_reset(one, r.soft_in, r.soft_out)
                .await
                .map_err(refused)?;
        } else {
            for a in &which {
                match client.restart(*a).await {
                    Ok(()) => {}
                    // Removed by a config change since the status was read.
                    Err(BgpError::NoSuchNeighbor(_)) if one.is_none() => {}
                    Err(e) => return Err(refused(e)),
                }
            }
        }
        Ok(Response::new(pb::ResetBgpNeighborResponse {
            neighbors: which.iter().map(|k| peer_text(&s, *k)).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::bgp::attr::Segment;

    #[test]
    fn prefixes_must_be_canonical() {
        assert_eq!(
            parse_prefix("prefix", "192.0.2.0/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            parse_prefix("prefix", "2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        let e = parse_prefix("prefix", "192.0.2.1/24").unwrap_err();
        assert!(e.contains("host bits") && e.contains("192.0.2.0/24"), "{e}");
        assert!(parse_prefix("prefix", "nope").is_err());
        assert!(parse_prefix("prefix", "10.0.0.0/33").is_err());
    }

    #[test]
    fn attributes_are_checked_together() {
        let a = attributes(Some(&pb::BgpPathAttributes {
            origin: "egp".into(),
            as_path: vec![65001, 65002],
            med: Some(5),
            local_pref: None,
            communities: vec!["65000:666".into(), "no-export".into()],
            large_communities: vec!["65000:1:2".into()],
        }))
        .unwrap();
        assert_eq!(a.origin, Some(Origin::Egp));
        assert_eq!(a.as_path, Some(AsPath::sequence(&[65001, 65002])));
        assert_eq!(a.communities, vec![65000 << 16 | 666, 0xffff_ff01]);
        assert_eq!(a.large_communities[0].local2, 2);
        let problems = attributes(Some(&pb::BgpPathAttributes {
            origin: "bgp".into(),
            communities: vec!["65536:1".into()],
            large_communities: vec!["1:2".into()],
            ..Default::default()
        }))
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[1].starts_with("attributes.communities[1]:"));
        let plain = attributes(None).unwrap();
        assert_eq!(plain.origin, Some(Origin::Igp));
    }

    #[test]
    fn as_paths_as_text() {
        let p = AsPath {
            segments: vec![
                Segment {
                    kind: SegmentType::ConfedSequence,
                    asns: vec![64512],
                },
                Segment {
                    kind: SegmentType::Sequence,
                    asns: vec![65001, 65002],
                },
                Segment {
                    kind: SegmentType::Set,
                    asns: vec![65003, 65004],
                },
            ],
        };
        assert_eq!(as_path_text(&p), "(64512) 65001 65002 {65003,65004}");
        assert_eq!(community_text(65000 << 16 | 666), "65000:666");
    }

    fn neighbor_at(addr: &str, state: State, transitions: u32) -> NeighborStatus {
        NeighborStatus {
            address: addr.parse().unwrap(),
            key: addr.parse().unwrap(),
            tunnel: Some("to-r2".into()),
            description: None,
            local_as: 65001,
            remote_as: 65002,
            state,
            since: Instant::now(),
            passive: false,
            messages_in: 0,
            messages_out: 0,
            updates_in: 0,
            established_transitions: transitions,
            last_error: None,
            negotiated: None,
            prefixes_received: 0,
            prefixes_advertised: 0,
            prefixes_kept: None,
            fast_failover: crate::routing::bgp::io::FastFailover::Off,
        }
    }

    #[test]
    fn link_local_neighbors_are_named_with_their_tunnel() {
        let on = |tunnel: &str, key: &str| NeighborStatus {
            tunnel: Some(tunnel.into()),
            key: key.parse().unwrap(),
            ..neighbor_at("fe80::2", State::Established, 1)
        };
        let s = BgpStatus {
            neighbors: vec![
                on("to-r2", "fe80:0:0:1::2"),
                on("to-r3", "fe80:0:0:2::2"),
                neighbor_at("192.0.2.1", State::Idle, 0),
            ],
            ..Default::default()
        };
        let key = |t: &str| neighbor_key(&s, "address", t).map_err(|e| e.message().to_owned());
        assert_eq!(key("fe80::2%to-r3"), Ok("fe80:0:0:2::2".parse().unwrap()));
        assert_eq!(key("192.0.2.1"), Ok("192.0.2.1".parse().unwrap()));
        assert!(key("fe80::2").unwrap_err().contains("fe80::2%TUNNEL"));
        assert!(key("fe80::2%to-r9")
            .unwrap_err()
            .contains("no BGP neighbor"));
        assert!(key("fe80::2%").unwrap_err().contains("not an IP address"));
        assert_eq!(
            peer_text(&s, "fe80:0:0:1::2".parse().unwrap()),
            "fe80::2%to-r2"
        );
        assert_eq!(peer_text(&s, "192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn neighbor_changes_include_flaps_additions_and_removals() {
        let status = |n: Vec<NeighborStatus>| BgpStatus {
            running: true,
            neighbors: n,
            ..Default::default()
        };
        let a = status(vec![neighbor_at("169.254.0.1", State::Established, 1)]);
        assert!(neighbor_events(&a, &a.clone()).is_empty());
        // Down and up again between two samples: still reported.
        let flapped = status(vec![neighbor_at("169.254.0.1", State::Established, 2)]);
        let e = neighbor_events(&a, &flapped);
        assert_eq!(e.len(), 1);
        let Some(pb::event::Kind::BgpNeighborChanged(c)) = &e[0].kind else {
            panic!("{e:?}")
        };
        assert_eq!(
            (c.state_name.as_str(), c.established_transitions),
            ("established", 2)
        );
        let moved = status(vec![neighbor_at("169.254.0.3", State::Connect, 0)]);
        let e = neighbor_events(&a, &moved);
        let changes: Vec<(String, bool)> = e
            .iter()
            .map(|e| match &e.kind {
                Some(pb::event::Kind::BgpNeighborChanged(c)) => (c.address.clone(), c.present),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            changes,
            vec![("169.254.0.3".into(), true), ("169.254.0.1".into(), false)]
        );
    }
}
