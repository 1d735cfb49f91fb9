//! `[bgp]`, `[[bgp.neighbor]]` and `[[policy]]`: the model types and TOML -> model with
//! validation in the style of [`super::load`] (every problem as `FILE:LINE: field: why`,
//! unknown keys refused with a suggestion, secrets never echoed).
//!
//! Policies are top-level (`[[policy]]`, [`Config::policies`]) rather than inside `[bgp]`:
//! they are named route filters that neighbors refer to by name, written at the top level
//! of the file, and they are checked even when `[bgp]` is absent.
//!
//! The speaker itself is `crate::routing::bgp`; `routing::bgp::setup` turns these types
//! into what its layers take. This file only checks values and fills defaults.

use super::load::tables_of;
use super::model::TunnelConfig;
use super::source::{at_line, Cx, Field, Section};
use super::suggest::did_you_mean;
use ipnetwork::IpNetwork;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

mod save;
pub(crate) use save::{save_bgp, save_policies, save_prefix_lists};

/// `hold-time` when neither `[bgp]` nor the neighbor sets one (RFC 4271 10).
pub const DEFAULT_BGP_HOLD_TIME: u16 = 90;
/// `connect-retry` in seconds. RFC 4271 suggests 120 s; a wgrd router has few neighbors,
/// mostly across its own tunnels, where a retry costs one SYN, so it retries sooner.
pub const DEFAULT_BGP_CONNECT_RETRY: u16 = 5;
/// `max-paths`: 1, no multipath, unless asked for.
pub const DEFAULT_BGP_MAX_PATHS: u8 = 1;
/// Largest `max-paths`.
pub const MAX_BGP_MAX_PATHS: u8 = 64;
/// `graceful-restart.restart-time` (RFC 4724: a 12-bit field).
pub const DEFAULT_RESTART_TIME: u16 = 120;
pub const DEFAULT_BGP_PORT: u16 = 179;
/// Linux `TCP_MD5SIG_MAXKEYLEN`.
pub const MAX_TCP_MD5_KEY: usize = 80;
/// AS_TRANS (RFC 6793): stands in for a 4-octet AS on 2-octet sessions, never a real AS.
const AS_TRANS: i64 = 23456;

const BGP_KEYS: &[&str] = &[
    "asn",
    "router-id",
    "networks",
    "redistribute",
    "max-paths",
    "multipath-relax",
    "hold-time",
    "connect-retry",
    "graceful-restart",
    "neighbor",
];
const GR_KEYS: &[&str] = &["enabled", "restart-time"];
const NEIGHBOR_KEYS: &[&str] = &[
    "tunnel",
    "address",
    "remote-as",
    "port",
    "local-address",
    "import",
    "export",
    "passive",
    "hold-time",
    "next-hop-self",
    "route-reflector-client",
    "allow-without-policy",
    "keep-received-routes",
    "prefix-limit",
    "description",
    "password-file",
    "ttl-security",
];
const PREFIX_LIMIT_KEYS: &[&str] = &["max", "action"];
const POLICY_KEYS: &[&str] = &["name", "default", "rules"];
const PREFIX_LIST_KEYS: &[&str] = &["name", "entries"];
const RULE_KEYS: &[&str] = &["match", "set", "action"];
const MATCH_KEYS: &[&str] = &[
    "prefix-list",
    "family",
    "as-path-contains",
    "neighbor-as",
    "origin-as",
    "as-path-max-len",
    "community",
    "large-community",
    "not",
];
const SET_KEYS: &[&str] = &[
    "local-pref",
    "med",
    "prepend",
    "add-community",
    "remove-community",
    "add-large-community",
    "remove-large-community",
];

// ---------------------------------------------------------------------------------------
// Model

/// `[bgp]`: the BGP speaker. Absent: no BGP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpConfig {
    /// Our AS, 1..=4294967295 except 23456 (AS_TRANS).
    pub asn: u32,
    /// `router-id`, or `[router] router-id` when not given.
    pub router_id: Ipv4Addr,
    /// Prefixes originated as they are (origin IGP), whether or not the RIB has them.
    pub networks: Vec<IpNetwork>,
    /// Other sources whose routes are originated into BGP, in file order, each once.
    pub redistribute: Vec<BgpRedistribute>,
    /// Largest ECMP set over several neighbors (1: no multipath).
    pub max_paths: u8,
    /// Let routes from different neighbor ASes share a multipath set.
    pub multipath_relax: bool,
    /// Proposed hold time of neighbors that set none (0 or 3..=65535 s; keepalive = 1/3).
    pub hold_time: u16,
    /// Seconds between connection attempts.
    pub connect_retry: u16,
    pub graceful_restart: GracefulRestart,
    /// `[[bgp.neighbor]]`, in file order.
    pub neighbors: Vec<BgpNeighborConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BgpRedistribute {
    Connected,
    Static,
    Ospf,
}

impl BgpRedistribute {
    pub fn name(self) -> &'static str {
        match self {
            BgpRedistribute::Connected => "connected",
            BgpRedistribute::Static => "static",
            BgpRedistribute::Ospf => "ospf",
        }
    }
}

/// `graceful-restart = { enabled, restart-time }` (RFC 4724); off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestart {
    pub enabled: bool,
    /// Seconds, 1..=4095.
    pub restart_time: u16,
}

impl Default for GracefulRestart {
    fn default() -> Self {
        GracefulRestart {
            enabled: false,
            restart_time: DEFAULT_RESTART_TIME,
        }
    }
}

/// One `[[bgp.neighbor]]`. Exactly one of two kinds:
/// - a tunnel neighbor (`tunnel` set): the other end of that tunnel, reached through the
///   userspace TCP stack; `address` is optional (derived from the tunnel's /31, /30 or
///   /127, see [`derive_peer_address`]);
/// - an address neighbor (`tunnel` absent, `address` set): reached over kernel TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpNeighborConfig {
    pub tunnel: Option<String>,
    /// As written; `None` only for a tunnel neighbor whose address is derived.
    pub address: Option<IpAddr>,
    /// The peer's AS (`"internal"` is stored as our own).
    pub remote_as: u32,
    pub port: u16,
    pub local_address: Option<IpAddr>,
    /// Names of `[[policy]]` entries (validated to exist).
    pub import: Option<String>,
    pub export: Option<String>,
    pub passive: bool,
    /// None: `[bgp] hold-time`.
    pub hold_time: Option<u16>,
    pub next_hop_self: bool,
    pub route_reflector_client: bool,
    /// RFC 8212 opt-out: an eBGP neighbor without policy exchanges everything.
    pub allow_without_policy: bool,
    /// Keep every received route before import policy (pre-policy Adj-RIB-In): listed
    /// as adj-in-pre, and a soft reset inbound or a policy change re-applies import
    /// policy from it without asking the peer (FRR's soft-reconfiguration inbound).
    pub keep_received_routes: bool,
    pub prefix_limit: Option<BgpPrefixLimit>,
    pub description: Option<String>,
    /// TCP-MD5 (RFC 2385), address neighbors only.
    pub password: Option<TcpMd5Password>,
    /// GTSM (RFC 5082), address neighbors only.
    pub ttl_security: bool,
}

impl BgpNeighborConfig {
    /// A neighbor with every optional key at its default.
    pub fn new(remote_as: u32) -> Self {
        BgpNeighborConfig {
            tunnel: None,
            address: None,
            remote_as,
            port: DEFAULT_BGP_PORT,
            local_address: None,
            import: None,
            export: None,
            passive: false,
            hold_time: None,
            next_hop_self: false,
            route_reflector_client: false,
            allow_without_policy: false,
            keep_received_routes: false,
            prefix_limit: None,
            description: None,
            password: None,
            ttl_security: false,
        }
    }
}

/// `prefix-limit = { max, action }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BgpPrefixLimit {
    pub max: u32,
    pub action: PrefixLimitOnExceed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrefixLimitOnExceed {
    /// Close the session (Cease, RFC 4486 subcode 1) until it is started again.
    #[default]
    Stop,
    /// Log once and keep the session.
    Warn,
}

/// `password-file`: the file as written and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpMd5Password {
    pub file: String,
    pub key: TcpMd5Key,
}

/// A TCP-MD5 key whose `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct TcpMd5Key(pub Vec<u8>);

impl std::fmt::Debug for TcpMd5Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One `[[policy]]`: rules tried in order; the first with an action decides, else
/// `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    pub name: String,
    pub default: PolicyAction,
    pub rules: Vec<PolicyRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyAction {
    Accept,
    Reject,
}

/// `{ match = {...}, set = {...}, action = "..." }`: when every condition of `matches`
/// holds, `set` edits the route and `action` (if any) decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRule {
    pub matches: PolicyMatch,
    pub set: PolicySet,
    pub action: Option<PolicyAction>,
}

/// The conditions of a rule; all must hold. Empty: matches every route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyMatch {
    /// The prefix matches one of the entries. With `prefix_list_name` these are the
    /// named list's entries, resolved at load: the speaker builds from them, and an edit
    /// of the list changes this policy as an edit of an inline list would.
    pub prefix_list: Vec<PrefixListEntry>,
    /// `prefix-list = "NAME"`: the `[[prefix-list]]` that `prefix_list` came from (kept
    /// so a saved config refers to the list again). `None`: the entries were inline.
    pub prefix_list_name: Option<String>,
    pub family: Option<PolicyFamily>,
    /// Every one of these ASes appears in the AS path.
    pub as_path_contains: Vec<u32>,
    pub neighbor_as: Option<u32>,
    pub origin_as: Option<u32>,
    pub as_path_max_len: Option<u32>,
    /// The route carries every one of these communities.
    pub community: Vec<Community>,
    pub large_community: Vec<LargeCommunityValue>,
    /// `not = { ... }`: none of these conditions holds (no `not` inside).
    pub not: Option<Box<PolicyMatch>>,
}

/// One `[[prefix-list]]`: entries that policies share by name (`match = { prefix-list =
/// "NAME" }`), as FRR's `ip prefix-list` or BIRD's `define ... = [ ... ]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixListConfig {
    pub name: String,
    /// At least one; a prefix matches the list when it matches any entry.
    pub entries: Vec<PrefixListEntry>,
}

/// `"PREFIX [ge N] [le N]"`: without bounds the exact prefix; otherwise lengths
/// `ge` (default the prefix's own) to `le` (default the family maximum) inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixListEntry {
    pub prefix: IpNetwork,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyFamily {
    Ipv4,
    Ipv6,
}

/// An RFC 1997 community as one number (`ASN:VALUE` = ASN << 16 | VALUE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xffff_ff01);
    pub const NO_ADVERTISE: Community = Community(0xffff_ff02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xffff_ff03);
}

/// An RFC 8092 large community `GLOBAL:LOCAL1:LOCAL2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LargeCommunityValue(pub u32, pub u32, pub u32);

/// The edits of a rule: local pref, MED, prepend, then community removals before
/// additions (so removing and adding one value leaves it present).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicySet {
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// Prepend our AS this many times (1..=10).
    pub prepend: Option<u8>,
    pub add_community: Vec<Community>,
    pub remove_community: Vec<Community>,
    pub add_large_community: Vec<LargeCommunityValue>,
    pub remove_large_community: Vec<LargeCommunityValue>,
}

/// The other end of a point-to-point tunnel network: the first of `addresses` (in order)
/// that is a /31 or /127 (the other address of the pair) or a /30 whose two usable
/// addresses are ours and the peer's. Link-local and other prefixes give nothing.
pub fn derive_peer_address(addresses: &[IpNetwork]) -> Option<IpAddr> {
    addresses.iter().find_map(|net| match net {
        IpNetwork::V4(n) => {
            let ip = u32::from(n.ip());
            match n.prefix() {
                31 => Some(IpAddr::V4(Ipv4Addr::from(ip ^ 1))),
                30 => match ip & 3 {
                    1 => Some(IpAddr::V4(Ipv4Addr::from(ip + 1))),
                    2 => Some(IpAddr::V4(Ipv4Addr::from(ip - 1))),
                    _ => None,
                },
                _ => None,
            }
        }
        IpNetwork::V6(n) if n.prefix() == 127 && !is_link_local(IpAddr::V6(n.ip())) => {
            Some(IpAddr::V6((u128::from(n.ip()) ^ 1).into()))
        }
        IpNetwork::V6(_) => None,
    })
}

fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

// ---------------------------------------------------------------------------------------
// Parsing

/// What the `[bgp]` checks need from the rest of the file.
pub(super) struct Known<'a> {
    /// `[router] router-id`, if it parsed.
    pub(super) router_id: Option<Ipv4Addr>,
    /// Every tunnel name, also of tunnels that failed to parse otherwise.
    pub(super) tunnel_names: Vec<&'a str>,
    /// The tunnels that parsed.
    pub(super) tunnels: Vec<&'a TunnelConfig>,
    /// This router's addresses that a neighbor cannot have (router id, `[host]` and
    /// tunnel addresses except link-local ones), with where each was written.
    pub(super) own: Vec<(IpAddr, String)>,
    /// Every `[[policy]]` name, also of policies that failed to parse otherwise.
    pub(super) policy_names: Vec<String>,
}

fn table<'a>(cx: &mut Cx, f: &Field<'a>, what: &str) -> Option<Section<'a>> {
    match f.item.as_table_like() {
        Some(table) => Some(Section {
            table,
            line: f.line,
            path: f.path.clone(),
        }),
        None => {
            cx.err(f.line, &f.path, format!("expected a table {what}"));
            None
        }
    }
}

/// An AS number: 1..=4294967295, not AS_TRANS.
fn asn(cx: &mut Cx, f: &Field) -> Option<u32> {
    let n = f.int(cx, 1, i64::from(u32::MAX))?;
    if n == AS_TRANS {
        cx.err(
            f.line,
            &f.path,
            "23456 is AS_TRANS (RFC 6793), a placeholder, never a real AS",
        );
        return None;
    }
    Some(n as u32)
}

/// `hold-time`: 0 (no keepalives) or 3..=65535 seconds (RFC 4271 4.2).
fn hold_time(cx: &mut Cx, f: &Field) -> Option<u16> {
    let n = f.int(cx, 0, 65535)?;
    if n == 1 || n == 2 {
        cx.err(
            f.line,
            &f.path,
            format!("{n} is not allowed: a hold time is 0 (no keepalives) or at least 3 seconds"),
        );
        return None;
    }
    Some(n as u16)
}

fn flag(cx: &mut Cx, s: &Section, key: &str) -> Option<bool> {
    match s.get(cx, key) {
        Some(f) => f.bool(cx),
        None => Some(false),
    }
}

/// A prefix without host bits (the error names the normal form).
fn prefix(cx: &mut Cx, line: Option<usize>, path: &str, text: &str) -> Option<IpNetwork> {
    let Ok(net) = text.parse::<IpNetwork>() else {
        cx.err(
            line,
            path,
            "expected a prefix like 10.1.0.0/24 or 2001:db8:1::/48",
        );
        return None;
    };
    let normal = IpNetwork::new(net.network(), net.prefix()).ok()?;
    if normal.ip() != net.ip() {
        cx.err(
            line,
            path,
            format!("host bits are set; the prefix is {normal}"),
        );
        return None;
    }
    Some(net)
}

/// Names of policies: like tunnel names but up to 64 characters.
fn policy_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 64 {
        Some("name must be 1..64 characters")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        Some("name may contain only A-Z a-z 0-9 _ . -")
    } else {
        None
    }
}

/// `[bgp]`.
pub(super) fn bgp(cx: &mut Cx, f: &Field, dir: &Path, known: &Known) -> Option<BgpConfig> {
    let s = table(cx, f, "[bgp]")?;
    s.check_keys(cx, BGP_KEYS);
    let asn = s.require(cx, "asn").and_then(|f| asn(cx, &f));
    let router_id = match s.get(cx, "router-id") {
        Some(f) => super::load::router_id(cx, &f),
        // A [router] that failed has been reported already.
        None => known.router_id,
    };
    let networks = match s.get(cx, "networks") {
        Some(f) => networks(cx, &f),
        None => Some(Vec::new()),
    };
    let redistribute = match s.get(cx, "redistribute") {
        Some(f) => redistribute(cx, &f),
        None => Some(Vec::new()),
    };
    let max_paths = match s.get(cx, "max-paths") {
        Some(f) => f.int(cx, 1, MAX_BGP_MAX_PATHS.into()).map(|n| n as u8),
        None => Some(DEFAULT_BGP_MAX_PATHS),
    };
    let multipath_relax = flag(cx, &s, "multipath-relax");
    let hold = match s.get(cx, "hold-time") {
        Some(f) => hold_time(cx, &f),
        None => Some(DEFAULT_BGP_HOLD_TIME),
    };
    let connect_retry = match s.get(cx, "connect-retry") {
        Some(f) => f.int(cx, 1, 65535).map(|n| n as u16),
        None => Some(DEFAULT_BGP_CONNECT_RETRY),
    };
    let graceful_restart = match s.get(cx, "graceful-restart") {
        Some(f) => graceful_restart(cx, &f),
        None => Some(GracefulRestart::default()),
    };
    let mut neighbors = Some(Vec::new());
    if let Some(f) = s.get(cx, "neighbor") {
        let mut seen: HashMap<(Option<String>, IpAddr), String> = HashMap::new();
        for ns in tables_of(cx, &f, "[[bgp.neighbor]]") {
            let n = neighbor(cx, &ns, dir, known, asn, &mut seen);
            match (&mut neighbors, n) {
                (Some(all), Some(n)) => all.push(n),
                _ => neighbors = None,
            }
        }
    }
    Some(BgpConfig {
        asn: asn?,
        router_id: router_id?,
        networks: networks?,
        redistribute: redistribute?,
        max_paths: max_paths?,
        multipath_relax: multipath_relax?,
        hold_time: hold?,
        connect_retry: connect_retry?,
        graceful_restart: graceful_restart?,
        neighbors: neighbors?,
    })
}

fn networks(cx: &mut Cx, f: &Field) -> Option<Vec<IpNetwork>> {
    let mut out = Vec::new();
    let mut first: HashMap<IpNetwork, String> = HashMap::new();
    let mut ok = true;
    for e in f.str_array(cx)? {
        let Some(net) = prefix(cx, e.line, &e.path, e.text) else {
            ok = false;
            continue;
        };
        if let Some(at) = first.get(&net) {
            cx.err(e.line, &e.path, format!("{net} is already listed at {at}"));
            ok = false;
            continue;
        }
        first.insert(net, format!("{}{}", e.path, at_line(e.line)));
        out.push(net);
    }
    ok.then_some(out)
}

fn redistribute(cx: &mut Cx, f: &Field) -> Option<Vec<BgpRedistribute>> {
    let mut out = Vec::new();
    let mut ok = true;
    for e in f.str_array(cx)? {
        let r = match e.text {
            "connected" => BgpRedistribute::Connected,
            "static" => BgpRedistribute::Static,
            "ospf" => BgpRedistribute::Ospf,
            _ => {
                cx.err(
                    e.line,
                    &e.path,
                    "expected \"connected\", \"static\" or \"ospf\"",
                );
                ok = false;
                continue;
            }
        };
        if out.contains(&r) {
            cx.err(e.line, &e.path, format!("\"{}\" is listed twice", r.name()));
            ok = false;
            continue;
        }
        out.push(r);
    }
    ok.then_some(out)
}

fn graceful_restart(cx: &mut Cx, f: &Field) -> Option<GracefulRestart> {
    let s = table(cx, f, "like { enabled = true, restart-time = 120 }")?;
    s.check_keys(cx, GR_KEYS);
    let enabled = flag(cx, &s, "enabled");
    let restart_time = match s.get(cx, "restart-time") {
        Some(f) => f.int(cx, 1, 4095).map(|n| n as u16),
        None => Some(DEFAULT_RESTART_TIME),
    };
    Some(GracefulRestart {
        enabled: enabled?,
        restart_time: restart_time?,
    })
}

/// An IP address value (`address`, `local-address`).
fn ip(cx: &mut Cx, f: &Field) -> Option<IpAddr> {
    let text = f.str(cx)?;
    match text.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() => {
            cx.err(
                f.line,
                &f.path,
                "must be a unicast address (not unspecified, loopback or multicast)",
            );
            None
        }
        Ok(ip) => Some(ip),
        Err(_) => {
            cx.err(
                f.line,
                &f.path,
                "expected an IP address like 192.168.200.1 or fe80::2",
            );
            None
        }
    }
}

/// A policy reference (`import`, `export`): a `[[policy]]` name.
fn policy_ref(cx: &mut Cx, f: &Field, known: &Known) -> Option<String> {
    let name = f.str(cx)?;
    if known.policy_names.iter().any(|n| n == name) {
        return Some(name.to_owned());
    }
    // The typed name is never quoted: a password pasted into the wrong key would pass
    // any test of what a name looks like. The line and field say where it is.
    let quoted = "no [[policy]] has this name";
    let names: Vec<&str> = known.policy_names.iter().map(String::as_str).collect();
    let why = match did_you_mean(name, &names) {
        Some(best) => format!("{quoted}; did you mean \"{best}\"?"),
        None if names.is_empty() => format!("{quoted}; the file defines no policy"),
        None => format!("{quoted}; policies: {}", names.join(", ")),
    };
    cx.err(f.line, &f.path, why);
    None
}

/// One `[[bgp.neighbor]]`. `seen` maps (tunnel, peer address) to where it was first used.
fn neighbor(
    cx: &mut Cx,
    s: &Section,
    dir: &Path,
    known: &Known,
    local_as: Option<u32>,
    seen: &mut HashMap<(Option<String>, IpAddr), String>,
) -> Option<BgpNeighborConfig> {
    s.check_keys(cx, NEIGHBOR_KEYS);
    let mut ok = true;
    let tunnel_f = s.get(cx, "tunnel");
    let address_f = s.get(cx, "address");
    if tunnel_f.is_none() && address_f.is_none() {
        cx.err(
            s.line,
            &s.child("tunnel"),
            "missing: set tunnel (a peer at the other end of a tunnel) or address (a peer reached over the kernel's TCP)",
        );
        ok = false;
    }
    // The tunnel, if it exists and parsed.
    let mut tunnel_cfg: Option<&TunnelConfig> = None;
    let tunnel = match &tunnel_f {
        Some(f) => f.str(cx).and_then(|name| {
            if let Some(t) = known.tunnels.iter().find(|t| t.name == name) {
                tunnel_cfg = Some(t);
                return Some(name.to_owned());
            }
            if known.tunnel_names.contains(&name) {
                // The tunnel failed to parse; it has been reported.
                return Some(name.to_owned());
            }
            // Not quoted, as with policy names (see `policy_ref`).
            let quoted = "no [[tunnel]] has this name";
            let why = match did_you_mean(name, &known.tunnel_names) {
                Some(best) => format!("{quoted}; did you mean \"{best}\"?"),
                None => quoted.to_owned(),
            };
            cx.err(f.line, &f.path, why);
            None
        }),
        None => None,
    };
    if tunnel_f.is_some() && tunnel.is_none() {
        ok = false;
    }
    let address = match &address_f {
        Some(f) => ip(cx, f).and_then(|a| {
            let is_tunnel = tunnel_f.is_some();
            if !is_tunnel && is_link_local(a) {
                cx.err(
                    f.line,
                    &f.path,
                    "a link-local address needs its link: set tunnel as well",
                );
                return None;
            }
            if is_link_local(a) && !matches!(a, IpAddr::V6(v6) if v6.segments()[1..4] == [0, 0, 0]) {
                cx.err(
                    f.line,
                    &f.path,
                    format!("{a}: a link-local neighbor address must be in fe80::/64 (RFC 4291 2.5.6)"),
                );
                return None;
            }
            if let Some(t) = tunnel_cfg {
                if t.addresses.iter().any(|n| n.ip() == a) {
                    cx.err(
                        f.line,
                        &f.path,
                        format!(
                            "{a} is this router's own address on tunnel \"{}\"; address is the peer's",
                            t.name
                        ),
                    );
                    return None;
                }
                let on_link = is_link_local(a) || t.addresses.iter().any(|n| n.contains(a));
                if !on_link {
                    cx.err(
                        f.line,
                        &f.path,
                        format!(
                            "{a} is in none of the networks of tunnel \"{}\" (and not link-local)",
                            t.name
                        ),
                    );
                    return None;
                }
            }
            if !is_link_local(a) {
                if let Some((_, at)) = known.own.iter().find(|(own, _)| *own == a) {
                    cx.err(
                        f.line,
                        &f.path,
                        format!("{a} is one of this router's own addresses ({at}); address is the peer's"),
                    );
                    return None;
                }
            }
            Some(a)
        }),
        None => None,
    };
    if address_f.is_some() && address.is_none() {
        ok = false;
    }
    // The peer's address, for the duplicate check and a tunnel without `address`.
    let peer = match (address, tunnel_cfg) {
        (Some(a), _) => Some(a),
        (None, Some(t)) if address_f.is_none() => {
            let derived = derive_peer_address(&t.addresses);
            if derived.is_none() {
                let f = tunnel_f.as_ref();
                cx.err(
                    f.and_then(|f| f.line),
                    &s.child("address"),
                    format!(
                        "the peer's address cannot be derived from the addresses of tunnel \"{}\" (only from a /31, /30 or /127 that is not link-local); set address",
                        t.name
                    ),
                );
                ok = false;
            }
            derived
        }
        _ => None,
    };
    if let Some(p) = peer {
        // A link-local address names a peer only on its tunnel (the speaker scopes it,
        // routing/bgp/scope.rs); any other address is one peer wherever it is written.
        let scope = if is_link_local(p) {
            tunnel.clone()
        } else {
            None
        };
        let key = (scope, p);
        let line = address_f
            .as_ref()
            .or(tunnel_f.as_ref())
            .and_then(|f| f.line)
            .or(s.line);
        if let Some(first) = seen.get(&key) {
            let on = match &tunnel {
                Some(t) => format!(" on tunnel \"{t}\""),
                None => String::new(),
            };
            cx.err(
                line,
                &s.path,
                format!("a second neighbor {p}{on}; first is {first}"),
            );
            ok = false;
        } else {
            seen.insert(key, format!("{}{}", s.path, at_line(line)));
        }
    }
    let remote_as = s.require(cx, "remote-as").and_then(|f| {
        if let Some(text) = f.item.as_str() {
            return match text {
                // Unknown local AS: reported at [bgp] asn already.
                "internal" => local_as,
                _ => {
                    cx.err(
                        f.line,
                        &f.path,
                        "expected an AS number or \"internal\" (the same AS as [bgp] asn)",
                    );
                    None
                }
            };
        }
        asn(cx, &f)
    });
    let port = match s.get(cx, "port") {
        Some(f) => f.int(cx, 1, 65535).map(|n| n as u16),
        None => Some(DEFAULT_BGP_PORT),
    };
    let local_address = match s.get(cx, "local-address") {
        Some(f) => ip(cx, &f).and_then(|a| {
            if let Some(p) = peer {
                if p.is_ipv4() != a.is_ipv4() {
                    cx.err(
                        f.line,
                        &f.path,
                        format!("{a} is not of the same family as the neighbor's address {p}"),
                    );
                    return None;
                }
            }
            if let Some(t) = tunnel_cfg {
                if !t.addresses.iter().any(|n| n.ip() == a) {
                    cx.err(
                        f.line,
                        &f.path,
                        format!("{a} is not one of the addresses of tunnel \"{}\"", t.name),
                    );
                    return None;
                }
            }
            Some(Some(a))
        }),
        None => Some(None),
    };
    let import = match s.get(cx, "import") {
        Some(f) => policy_ref(cx, &f, known).map(Some),
        None => Some(None),
    };
    let export = match s.get(cx, "export") {
        Some(f) => policy_ref(cx, &f, known).map(Some),
        None => Some(None),
    };
    let passive = flag(cx, s, "passive");
    let hold = match s.get(cx, "hold-time") {
        Some(f) => hold_time(cx, &f).map(Some),
        None => Some(None),
    };
    let next_hop_self = flag(cx, s, "next-hop-self");
    let route_reflector_client = flag(cx, s, "route-reflector-client");
    let allow_without_policy = flag(cx, s, "allow-without-policy");
    let keep_received_routes = flag(cx, s, "keep-received-routes");
    let prefix_limit = match s.get(cx, "prefix-limit") {
        Some(f) => prefix_limit(cx, &f).map(Some),
        None => Some(None),
    };
    let description = match s.get(cx, "description") {
        Some(f) => f.str(cx).and_then(|d| {
            if d.chars().count() > 80 || d.chars().any(char::is_control) {
                cx.err(
                    f.line,
                    &f.path,
                    "a description is at most 80 characters, without control characters",
                );
                return None;
            }
            Some(Some(d.to_owned()))
        }),
        None => Some(None),
    };
    let password = match s.get(cx, "password-file") {
        Some(f) if tunnel_f.is_some() => {
            cx.err(
                f.line,
                &f.path,
                "TCP-MD5 is not offered over the userspace TCP of a tunnel (the tunnel already authenticates the peer); password-file is for address neighbors",
            );
            None
        }
        Some(f) => password(cx, &f, dir).map(Some),
        None => Some(None),
    };
    let ttl_security = match s.get(cx, "ttl-security") {
        Some(f) if tunnel_f.is_some() => {
            if f.bool(cx) == Some(true) {
                cx.err(
                    f.line,
                    &f.path,
                    "GTSM is for address neighbors: a tunnel neighbor is one hop away by construction",
                );
                None
            } else {
                Some(false)
            }
        }
        Some(f) => f.bool(cx),
        None => Some(false),
    };
    if !ok {
        return None;
    }
    Some(BgpNeighborConfig {
        tunnel,
        address,
        remote_as: remote_as?,
        port: port?,
        local_address: local_address?,
        import: import?,
        export: export?,
        passive: passive?,
        hold_time: hold?,
        next_hop_self: next_hop_self?,
        route_reflector_client: route_reflector_client?,
        allow_without_policy: allow_without_policy?,
        keep_received_routes: keep_received_routes?,
        prefix_limit: prefix_limit?,
        description: description?,
        password: password?,
        ttl_security: ttl_security?,
    })
}

fn prefix_limit(cx: &mut Cx, f: &Field) -> Option<BgpPrefixLimit> {
    let s = table(cx, f, "like { max = 1000, action = \"stop\" }")?;
    s.check_keys(cx, PREFIX_LIMIT_KEYS);
    let max = s
        .require(cx, "max")
        .and_then(|f| f.int(cx, 1, i64::from(u32::MAX)).map(|n| n as u32));
    let action = match s.get(cx, "action") {
        Some(f) => match f.str(cx)? {
            "stop" => Some(PrefixLimitOnExceed::Stop),
            "warn" => Some(PrefixLimitOnExceed::Warn),
            _ => {
                cx.err(f.line, &f.path, "expected \"stop\" or \"warn\"");
                None
            }
        },
        None => Some(PrefixLimitOnExceed::default()),
    };
    Some(BgpPrefixLimit {
        max: max?,
        action: action?,
    })
}

/// `password-file`: same permission checks as the WireGuard key files; the content (one
/// trailing line end ignored) is the TCP-MD5 key and is never echoed.
fn password(cx: &mut Cx, f: &Field, dir: &Path) -> Option<TcpMd5Password> {
    let (written, path, key) = super::keyfile::secret_from_field(cx, f, dir, "password")?;
    if key.len() > MAX_TCP_MD5_KEY {
        cx.err(
            f.line,
            &f.path,
            format!(
                "the password in {} is {} bytes; TCP-MD5 keys are at most {MAX_TCP_MD5_KEY}",
                path.display(),
                key.len()
            ),
        );
        return None;
    }
    Some(TcpMd5Password {
        file: written,
        key: TcpMd5Key(key),
    })
}

/// The `[[prefix-list]]` tables as policies see them.
#[derive(Debug, Default)]
pub(super) struct KnownPrefixLists {
    /// The lists that parsed, by name.
    entries: HashMap<String, Vec<PrefixListEntry>>,
    /// Every readable name in file order, also of lists with other problems (a reference
    /// to one of those is not reported as well).
    names: Vec<String>,
}

/// `[[prefix-list]]`, all of them, and what policies may refer to.
pub(super) fn prefix_lists(
    cx: &mut Cx,
    f: &Field,
) -> (Option<Vec<PrefixListConfig>>, KnownPrefixLists) {
    let mut out = Some(Vec::new());
    let mut known = KnownPrefixLists::default();
    let mut first: HashMap<String, String> = HashMap::new();
    for s in tables_of(cx, f, "[[prefix-list]]") {
        s.check_keys(cx, PREFIX_LIST_KEYS);
        let name = s
            .require(cx, "name")
            .and_then(|f| unique_name(cx, &f, "prefix list", &mut first, &mut known.names));
        let entries = s.require(cx, "entries").and_then(|f| {
            let elems = f.str_array(cx)?;
            if elems.is_empty() {
                // Refused rather than read as "matches nothing": a list emptied by
                // mistake would silently turn an accept rule off.
                cx.err(f.line, &f.path, "an empty prefix list matches nothing");
                return None;
            }
            let mut entries = Some(Vec::new());
            for e in elems {
                match (prefix_list_entry(cx, e.line, &e.path, e.text), &mut entries) {
                    (Some(p), Some(all)) => all.push(p),
                    _ => entries = None,
                }
            }
            entries
        });
        match (name, entries) {
            (Some(name), Some(entries)) => {
                known.entries.insert(name.clone(), entries.clone());
                if let Some(all) = &mut out {
                    all.push(PrefixListConfig { name, entries });
                }
            }
            _ => out = None,
        }
    }
    (out, known)
}

/// A `name` of a `[[policy]]` or `[[prefix-list]]` (`kind`), unique among them: `first`
/// maps each name to where it was first used; `names` gets every valid one.
fn unique_name(
    cx: &mut Cx,
    f: &Field,
    kind: &str,
    first: &mut HashMap<String, String>,
    names: &mut Vec<String>,
) -> Option<String> {
    let name = f.str(cx)?;
    if let Some(why) = policy_name_problem(name) {
        cx.err(f.line, &f.path, why);
        return None;
    }
    if let Some(at) = first.get(name) {
        cx.err(
            f.line,
            &f.path,
            format!("duplicate {kind} name \"{name}\"; first used by {at}"),
        );
        return None;
    }
    first.insert(name.to_owned(), format!("{}{}", f.path, at_line(f.line)));
    names.push(name.to_owned());
    Some(name.to_owned())
}

/// `prefix-list = "NAME"`: the entries of that `[[prefix-list]]`.
fn prefix_list_ref(
    cx: &mut Cx,
    f: &Field,
    name: &str,
    lists: &KnownPrefixLists,
) -> Option<Vec<PrefixListEntry>> {
    if let Some(entries) = lists.entries.get(name) {
        return Some(entries.clone());
    }
    if lists.names.iter().any(|n| n == name) {
        // The list itself has an error, reported there.
        return None;
    }
    // Not quoted, as with policy names (see `policy_ref`).
    let quoted = "no [[prefix-list]] has this name";
    let names: Vec<&str> = lists.names.iter().map(String::as_str).collect();
    let why = match did_you_mean(name, &names) {
        Some(best) => format!("{quoted}; did you mean \"{best}\"?"),
        None if names.is_empty() => format!("{quoted}; the file defines no prefix list"),
        None => format!("{quoted}; prefix lists: {}", names.join(", ")),
    };
    cx.err(f.line, &f.path, why);
    None
}

/// `[[policy]]`, all of them. `names` gets every name that was readable, also of
/// policies with other problems (so references to them are not reported as well).
pub(super) fn policies(
    cx: &mut Cx,
    f: &Field,
    lists: &KnownPrefixLists,
    names: &mut Vec<String>,
) -> Option<Vec<PolicyConfig>> {
    let mut out = Some(Vec::new());
    let mut first: HashMap<String, String> = HashMap::new();
    for s in tables_of(cx, f, "[[policy]]") {
        let p = policy(cx, &s, lists, &mut first, names);
        match (&mut out, p) {
            (Some(all), Some(p)) => all.push(p),
            _ => out = None,
        }
    }
    out
}

fn action(cx: &mut Cx, f: &Field) -> Option<PolicyAction> {
    match f.str(cx)? {
        "accept" => Some(PolicyAction::Accept),
        "reject" => Some(PolicyAction::Reject),
        _ => {
            cx.err(f.line, &f.path, "expected \"accept\" or \"reject\"");
            None
        }
    }
}

fn policy(
    cx: &mut Cx,
    s: &Section,
    lists: &KnownPrefixLists,
    first: &mut HashMap<String, String>,
    names: &mut Vec<String>,
) -> Option<PolicyConfig> {
    s.check_keys(cx, POLICY_KEYS);
    let name = s
        .require(cx, "name")
        .and_then(|f| unique_name(cx, &f, "policy", first, names));
    let default = match s.get(cx, "default") {
        Some(f) => action(cx, &f),
        None => Some(PolicyAction::Reject),
    };
    let mut rules = Some(Vec::new());
    if let Some(f) = s.get(cx, "rules") {
        for rs in tables_of(cx, &f, "like { match = { ... }, action = \"accept\" }") {
            let r = rule(cx, &rs, lists);
            match (&mut rules, r) {
                (Some(all), Some(r)) => all.push(r),
                _ => rules = None,
            }
        }
    }
    Some(PolicyConfig {
        name: name?,
        default: default?,
        rules: rules?,
    })
}

fn rule(cx: &mut Cx, s: &Section, lists: &KnownPrefixLists) -> Option<PolicyRule> {
    s.check_keys(cx, RULE_KEYS);
    let matches = match s.get(cx, "match") {
        Some(f) => table(cx, &f, "of conditions like { prefix-list = [...] }")
            .and_then(|m| conditions(cx, &m, lists, true)),
        None => Some(PolicyMatch::default()),
    };
    let set = match s.get(cx, "set") {
        Some(f) => table(cx, &f, "of edits like { local-pref = 200 }").and_then(|t| sets(cx, &t)),
        None => Some(PolicySet::default()),
    };
    let action = match s.get(cx, "action") {
        Some(f) => action(cx, &f).map(Some),
        None => Some(None),
    };
    Some(PolicyRule {
        matches: matches?,
        set: set?,
        action: action?,
    })
}

/// One AS number or an array of them.
fn asns(cx: &mut Cx, f: &Field) -> Option<Vec<u32>> {
    if f.item.as_integer().is_some() {
        return asn(cx, f).map(|a| vec![a]);
    }
    let Some(array) = f.item.as_array() else {
        cx.err(f.line, &f.path, "expected an AS number or an array of them");
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, v) in array.iter().enumerate() {
        let item = toml_edit::Item::Value(v.clone());
        let e = Field {
            item: &item,
            line: cx.line_of(v.span()).or(f.line),
            path: format!("{}[{}]", f.path, i + 1),
        };
        match asn(cx, &e) {
            Some(a) => out.push(a),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// The conditions of `match` (or of `not` inside it, when `outer` is false).
fn conditions(
    cx: &mut Cx,
    s: &Section,
    lists: &KnownPrefixLists,
    outer: bool,
) -> Option<PolicyMatch> {
    let keys: Vec<&str> = MATCH_KEYS
        .iter()
        .copied()
        .filter(|k| outer || *k != "not")
        .collect();
    s.check_keys(cx, &keys);
    let mut ok = true;
    let mut m = PolicyMatch::default();
    if let Some(f) = s.get(cx, "prefix-list") {
        if let Some(name) = f.item.as_str() {
            match prefix_list_ref(cx, &f, name, lists) {
                Some(entries) => {
                    m.prefix_list = entries;
                    m.prefix_list_name = Some(name.to_owned());
                }
                None => ok = false,
            }
        } else if !f.item.is_array() {
            cx.err(
                f.line,
                &f.path,
                "expected the name of a [[prefix-list]] or an array of entries like \"10.0.0.0/8 le 24\"",
            );
            ok = false;
        } else {
            match f.str_array(cx) {
                Some(elems) => {
                    for e in elems {
                        match prefix_list_entry(cx, e.line, &e.path, e.text) {
                            Some(p) => m.prefix_list.push(p),
                            None => ok = false,
                        }
                    }
                    if m.prefix_list.is_empty() && ok {
                        cx.err(f.line, &f.path, "an empty prefix list matches nothing");
                        ok = false;
                    }
                }
                None => ok = false,
            }
        }
    }
    if let Some(f) = s.get(cx, "family") {
        match f.str(cx) {
            Some("ipv4") => m.family = Some(PolicyFamily::Ipv4),
            Some("ipv6") => m.family = Some(PolicyFamily::Ipv6),
            Some(_) => {
                cx.err(f.line, &f.path, "expected \"ipv4\" or \"ipv6\"");
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "as-path-contains") {
        match asns(cx, &f) {
            Some(a) => m.as_path_contains = a,
            None => ok = false,
        }
    }
    for (key, slot) in [
        ("neighbor-as", &mut m.neighbor_as),
        ("origin-as", &mut m.origin_as),
    ] {
        if let Some(f) = s.get(cx, key) {
            match asn(cx, &f) {
                Some(a) => *slot = Some(a),
                None => ok = false,
            }
        }
    }
    if let Some(f) = s.get(cx, "as-path-max-len") {
        match f.int(cx, 0, 255) {
            Some(n) => m.as_path_max_len = Some(n as u32),
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "community") {
        match communities(cx, &f) {
            Some(c) => m.community = c,
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "large-community") {
        match large_communities(cx, &f) {
            Some(c) => m.large_community = c,
            None => ok = false,
        }
    }
    if outer {
        if let Some(f) = s.get(cx, "not") {
            match table(cx, &f, "of conditions like { community = [\"65000:1\"] }")
                .and_then(|n| conditions(cx, &n, lists, false))
            {
                Some(n) if n == PolicyMatch::default() && !cx_has_keys(&f) => {
                    cx.err(f.line, &f.path, "an empty not = {} would match nothing");
                    ok = false;
                }
                Some(n) => m.not = Some(Box::new(n)),
                None => ok = false,
            }
        }
    }
    ok.then_some(m)
}

/// Whether a table value has any key (an empty one is reported; one with only unknown
/// keys has been).
fn cx_has_keys(f: &Field) -> bool {
    f.item
        .as_table_like()
        .is_some_and(|t| t.iter().next().is_some())
}

/// `"PREFIX"`, `"PREFIX le N"`, `"PREFIX ge N"`, `"PREFIX ge N le M"` with
/// prefix length <= ge <= le <= family maximum.
pub(super) fn prefix_list_entry(
    cx: &mut Cx,
    line: Option<usize>,
    path: &str,
    text: &str,
) -> Option<PrefixListEntry> {
    const SHAPE: &str =
        "expected \"PREFIX [ge N] [le N]\", like \"10.0.0.0/8 le 24\" or \"2001:db8::/32 ge 48 le 64\"";
    let mut words = text.split_whitespace();
    let Some(first) = words.next() else {
        cx.err(line, path, SHAPE);
        return None;
    };
    let prefix = prefix(cx, line, path, first)?;
    let max: u8 = if prefix.is_ipv4() { 32 } else { 128 };
    let (mut ge, mut le) = (None, None);
    let rest: Vec<&str> = words.collect();
    for pair in rest.chunks(2) {
        let le_given = le.is_some();
        let (slot, word) = match pair[0] {
            "ge" => (&mut ge, "ge"),
            "le" => (&mut le, "le"),
            _ => {
                cx.err(line, path, SHAPE);
                return None;
            }
        };
        if slot.is_some() || (word == "ge" && le_given) {
            cx.err(
                line,
                path,
                format!("{SHAPE}; ge before le, each at most once"),
            );
            return None;
        }
        let Some(n) = pair.get(1).and_then(|n| n.parse::<u8>().ok()) else {
            cx.err(
                line,
                path,
                format!("{word} needs a prefix length 0..={max}"),
            );
            return None;
        };
        *slot = Some(n);
    }
    let len = prefix.prefix();
    for (word, v) in [("ge", ge), ("le", le)] {
        if let Some(n) = v {
            if n < len || n > max {
                cx.err(
                    line,
                    path,
                    format!("{word} {n} is outside {len}..={max} (from the prefix's length to the family's maximum)"),
                );
                return None;
            }
        }
    }
    if let (Some(g), Some(l)) = (ge, le) {
        if g > l {
            cx.err(line, path, format!("ge {g} is greater than le {l}"));
            return None;
        }
    }
    Some(PrefixListEntry { prefix, ge, le })
}

fn community(text: &str) -> Option<Community> {
    match text {
        "no-export" => return Some(Community::NO_EXPORT),
        "no-advertise" => return Some(Community::NO_ADVERTISE),
        "no-export-subconfed" => return Some(Community::NO_EXPORT_SUBCONFED),
        _ => {}
    }
    let (a, v) = text.split_once(':')?;
    let (a, v) = (a.parse::<u16>().ok()?, v.parse::<u16>().ok()?);
    Some(Community(u32::from(a) << 16 | u32::from(v)))
}

fn large_community(text: &str) -> Option<LargeCommunityValue> {
    let mut parts = text.split(':').map(|p| p.parse::<u32>().ok());
    let (Some(Some(g)), Some(Some(l1)), Some(Some(l2)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(LargeCommunityValue(g, l1, l2))
}

fn communities(cx: &mut Cx, f: &Field) -> Option<Vec<Community>> {
    let mut out = Vec::new();
    let mut ok = true;
    for e in f.str_array(cx)? {
        match community(e.text) {
            Some(c) => out.push(c),
            None => {
                cx.err(
                    e.line,
                    &e.path,
                    "expected a community \"ASN:VALUE\" (each 0..=65535) or no-export, no-advertise, no-export-subconfed",
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn large_communities(cx: &mut Cx, f: &Field) -> Option<Vec<LargeCommunityValue>> {
    let mut out = Vec::new();
    let mut ok = true;
    for e in f.str_array(cx)? {
        match large_community(e.text) {
            Some(c) => out.push(c),
            None => {
                cx.err(
                    e.line,
                    &e.path,
                    "expected a large community \"GLOBAL:LOCAL1:LOCAL2\" (each 0..=4294967295)",
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn sets(cx: &mut Cx, s: &Section) -> Option<PolicySet> {
    s.check_keys(cx, SET_KEYS);
    let mut ok = true;
    let mut out = PolicySet::default();
    for (key, slot) in [("local-pref", &mut out.local_pref), ("med", &mut out.med)] {
        if let Some(f) = s.get(cx, key) {
            match f.int(cx, 0, i64::from(u32::MAX)) {
                Some(n) => *slot = Some(n as u32),
                None => ok = false,
            }
        }
    }
    if let Some(f) = s.get(cx, "prepend") {
        match f.int(cx, 1, 10) {
            Some(n) => out.prepend = Some(n as u8),
            None => ok = false,
        }
    }
    for (key, slot) in [
        ("add-community", &mut out.add_community),
        ("remove-community", &mut out.remove_community),
    ] {
        if let Some(f) = s.get(cx, key) {
            match communities(cx, &f) {
                Some(c) => *slot = c,
                None => ok = false,
            }
        }
    }
    for (key, slot) in [
        ("add-large-community", &mut out.add_large_community),
        ("remove-large-community", &mut out.remove_large_community),
    ] {
        if let Some(f) = s.get(cx, key) {
            match large_communities(cx, &f) {
                Some(c) => *slot = c,
                None => ok = false,
            }
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::super::{parse_str, Config, ConfigError};
    use super::*;
    use crate::keys::PrivateKey;
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

    const PASSWORD: &str = "s3cr3t-Md5-Pa55";

    /// A temporary directory for the config and its password file, and the keys it needs.
    struct Fx {
        dir: tempfile::TempDir,
        own: PrivateKey,
        peers: [PrivateKey; 2],
    }

    /// Lines 1..=16; a test's `[bgp]` text starts on line 17.
    const BASE: &str = r#"[router]
router-id = "10.255.0.1"
private-key = "{OWN}"

[host]
addresses = ["192.168.200.2/24"]

[[tunnel]]
name = "to-r2"
peer-public-key = "{P0}"
addresses = ["169.254.0.0/31", "fe80::1/64"]

[[tunnel]]
name = "to-r3"
peer-public-key = "{P1}"
addresses = ["fe80::1/64"]
"#;
    const BASE_LINES: usize = 16;

    impl Fx {
        fn new() -> Fx {
            let fx = Fx {
                dir: tempfile::tempdir().unwrap(),
                own: PrivateKey::generate(),
                peers: [PrivateKey::generate(), PrivateKey::generate()],
            };
            fx.write("bgp-site.key", &format!("{PASSWORD}\n"), 0o600);
            fx
        }

        fn write(&self, name: &str, text: &str, mode: u32) {
            let path = self.dir.path().join(name);
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }

        /// The whole file: [`BASE`] with its keys, then `bgp`.
        fn text(&self, bgp: &str) -> String {
            BASE.replace("{OWN}", &self.own.to_base64())
                .replace("{P0}", &self.peers[0].public_key().to_base64())
                .replace("{P1}", &self.peers[1].public_key().to_base64())
                + bgp
        }

        fn path(&self) -> std::path::PathBuf {
            self.dir.path().join("r1.toml")
        }

        fn parse(&self, bgp: &str) -> Result<Config, Vec<ConfigError>> {
            parse_str(&self.text(bgp), &self.path()).map_err(|e| e.0)
        }

        fn ok(&self, bgp: &str) -> Config {
            match self.parse(bgp) {
                Ok(c) => c,
                Err(e) => panic!("expected the config to load, got: {e:#?}"),
            }
        }

        /// The one error of `bgp`, at `line` (counted within `bgp`, from 1), for `field`,
        /// whose reason contains `why`.
        fn only_error(&self, bgp: &str, field: &str, line: usize, why: &str) -> ConfigError {
            let errors = match self.parse(bgp) {
                Ok(_) => panic!("expected an error for {field}, the config loaded"),
                Err(e) => e,
            };
            for e in &errors {
                assert!(!e.to_string().contains(PASSWORD), "password leaked: {e}");
            }
            assert_eq!(errors.len(), 1, "expected one error, got: {errors:#?}");
            let e = errors.into_iter().next().unwrap();
            assert_eq!(e.field, field, "{e}");
            assert_eq!(e.line, Some(BASE_LINES + line), "{e}");
            assert!(e.why.contains(why), "{e}\n  does not say: {why}");
            e
        }
    }

    const FULL: &str = r#"
[bgp]
asn = 65001
router-id = "10.255.0.9"
networks = ["10.1.0.0/24", "2001:db8:1::/48"]
redistribute = ["connected", "static", "ospf"]
max-paths = 4
hold-time = 90
connect-retry = 5
graceful-restart = { enabled = false, restart-time = 120 }

[[bgp.neighbor]]
tunnel = "to-r2"
remote-as = 65002
address = "fe80::2"
import = "from-peers"
export = "to-peers"
passive = false
hold-time = 9
next-hop-self = false
route-reflector-client = false
allow-without-policy = false
keep-received-routes = true
prefix-limit = { max = 1000, action = "stop" }
description = "r2"

[[bgp.neighbor]]
address = "192.168.200.1"
remote-as = 65000
port = 179
local-address = "192.168.200.2"
password-file = "bgp-site.key"
ttl-security = true

[[prefix-list]]
name = "site-nets"
entries = ["10.20.0.0/16 le 24", "2001:db8:20::/48 ge 56"]

[[policy]]
name = "from-peers"
default = "reject"
rules = [
  { match = { prefix-list = ["10.0.0.0/8 le 24", "2001:db8::/32 ge 48 le 64"] }, set = { local-pref = 200 }, action = "accept" },
  { match = { as-path-contains = 65003 }, action = "reject" },
  { match = { community = ["65000:1"], large-community = ["65000:1:2"], neighbor-as = 65002, origin-as = 65010, as-path-max-len = 5, family = "ipv6" }, set = { med = 10, prepend = 2, add-community = ["65001:100"], remove-community = ["65000:1"] } },
  { match = { prefix-list = "site-nets" }, set = { local-pref = 50 } },
]

[[policy]]
name = "to-peers"
default = "accept"
rules = [{ match = { not = { community = ["no-export"] } }, set = { add-large-community = ["65001:0:1"], remove-large-community = ["65001:0:2"] } }]
"#;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn full_example_parses_into_the_model() {
        let fx = Fx::new();
        let c = fx.ok(FULL);
        let expected = BgpConfig {
            asn: 65001,
            router_id: "10.255.0.9".parse().unwrap(),
            networks: vec![net("10.1.0.0/24"), net("2001:db8:1::/48")],
            redistribute: vec![
                BgpRedistribute::Connected,
                BgpRedistribute::Static,
                BgpRedistribute::Ospf,
            ],
            max_paths: 4,
            multipath_relax: false,
            hold_time: 90,
            connect_retry: 5,
            graceful_restart: GracefulRestart {
                enabled: false,
                restart_time: 120,
            },
            neighbors: vec![
                BgpNeighborConfig {
                    tunnel: Some("to-r2".into()),
                    address: Some("fe80::2".parse().unwrap()),
                    import: Some("from-peers".into()),
                    export: Some("to-peers".into()),
                    hold_time: Some(9),
                    prefix_limit: Some(BgpPrefixLimit {
                        max: 1000,
                        action: PrefixLimitOnExceed::Stop,
                    }),
                    description: Some("r2".into()),
                    keep_received_routes: true,
                    ..BgpNeighborConfig::new(65002)
                },
                BgpNeighborConfig {
                    address: Some("192.168.200.1".parse().unwrap()),
                    local_address: Some("192.168.200.2".parse().unwrap()),
                    password: Some(TcpMd5Password {
                        file: "bgp-site.key".into(),
                        key: TcpMd5Key(PASSWORD.as_bytes().to_vec()),
                    }),
                    ttl_security: true,
                    ..BgpNeighborConfig::new(65000)
                },
            ],
        };
        assert_eq!(c.bgp, Some(expected));
        let pm = |p: &str, ge, le| PrefixListEntry {
            prefix: net(p),
            ge,
            le,
        };
        let site_nets = vec![
            pm("10.20.0.0/16", None, Some(24)),
            pm("2001:db8:20::/48", Some(56), None),
        ];
        assert_eq!(
            c.prefix_lists,
            [PrefixListConfig {
                name: "site-nets".into(),
                entries: site_nets.clone(),
            }]
        );
        let policies = vec![
            PolicyConfig {
                name: "from-peers".into(),
                default: PolicyAction::Reject,
                rules: vec![
                    PolicyRule {
                        matches: PolicyMatch {
                            prefix_list: vec![
                                pm("10.0.0.0/8", None, Some(24)),
                                pm("2001:db8::/32", Some(48), Some(64)),
                            ],
                            ..PolicyMatch::default()
                        },
                        set: PolicySet {
                            local_pref: Some(200),
                            ..PolicySet::default()
                        },
                        action: Some(PolicyAction::Accept),
                    },
                    PolicyRule {
                        matches: PolicyMatch {
                            as_path_contains: vec![65003],
                            ..PolicyMatch::default()
                        },
                        set: PolicySet::default(),
                        action: Some(PolicyAction::Reject),
                    },
                    PolicyRule {
                        matches: PolicyMatch {
                            community: vec![Community(65000 << 16 | 1)],
                            large_community: vec![LargeCommunityValue(65000, 1, 2)],
                            neighbor_as: Some(65002),
                            origin_as: Some(65010),
                            as_path_max_len: Some(5),
                            family: Some(PolicyFamily::Ipv6),
                            ..PolicyMatch::default()
                        },
                        set: PolicySet {
                            med: Some(10),
                            prepend: Some(2),
                            add_community: vec![Community(65001 << 16 | 100)],
                            remove_community: vec![Community(65000 << 16 | 1)],
                            ..PolicySet::default()
                        },
                        action: None,
                    },
                    PolicyRule {
                        matches: PolicyMatch {
                            prefix_list: site_nets.clone(),
                            prefix_list_name: Some("site-nets".into()),
                            ..PolicyMatch::default()
                        },
                        set: PolicySet {
                            local_pref: Some(50),
                            ..PolicySet::default()
                        },
                        action: None,
                    },
                ],
            },
            PolicyConfig {
                name: "to-peers".into(),
                default: PolicyAction::Accept,
                rules: vec![PolicyRule {
                    matches: PolicyMatch {
                        not: Some(Box::new(PolicyMatch {
                            community: vec![Community::NO_EXPORT],
                            ..PolicyMatch::default()
                        })),
                        ..PolicyMatch::default()
                    },
                    set: PolicySet {
                        add_large_community: vec![LargeCommunityValue(65001, 0, 1)],
                        remove_large_community: vec![LargeCommunityValue(65001, 0, 2)],
                        ..PolicySet::default()
                    },
                    action: None,
                }],
            },
        ];
        assert_eq!(c.policies, policies);
    }

    #[test]
    fn defaults_apply_when_keys_are_omitted() {
        let fx = Fx::new();
        let c = fx.ok("[bgp]\nasn = 4200000001\n\n[[bgp.neighbor]]\ntunnel = \"to-r2\"\nremote-as = \"internal\"\n");
        let bgp = c.bgp.unwrap();
        assert_eq!(bgp.router_id, c.router.router_id, "[router] router-id");
        assert_eq!(bgp.hold_time, DEFAULT_BGP_HOLD_TIME);
        assert_eq!(bgp.connect_retry, DEFAULT_BGP_CONNECT_RETRY);
        assert_eq!(bgp.max_paths, 1);
        assert_eq!(bgp.graceful_restart, GracefulRestart::default());
        assert!(bgp.networks.is_empty() && bgp.redistribute.is_empty());
        let mut n = BgpNeighborConfig::new(4_200_000_001);
        n.tunnel = Some("to-r2".into());
        assert_eq!(bgp.neighbors, vec![n]);
        assert!(c.policies.is_empty());
        // Without [bgp]: no speaker, and policies are still read and checked.
        let c = fx.ok("[[policy]]\nname = \"p\"\n");
        assert_eq!(c.bgp, None);
        assert_eq!(c.policies[0].default, PolicyAction::Reject);
        assert!(c.policies[0].rules.is_empty());
    }

    #[test]
    fn peer_addresses_derive_from_point_to_point_networks() {
        let d = |nets: &[&str]| {
            let nets: Vec<IpNetwork> = nets.iter().map(|n| net(n)).collect();
            derive_peer_address(&nets).map(|a| a.to_string())
        };
        assert_eq!(d(&["169.254.0.0/31"]).as_deref(), Some("169.254.0.1"));
        assert_eq!(d(&["169.254.0.1/31"]).as_deref(), Some("169.254.0.0"));
        assert_eq!(d(&["10.0.0.1/30"]).as_deref(), Some("10.0.0.2"));
        assert_eq!(d(&["10.0.0.2/30"]).as_deref(), Some("10.0.0.1"));
        assert_eq!(d(&["10.0.0.0/30"]), None, "the network address of a /30");
        assert_eq!(d(&["fd00::/127"]).as_deref(), Some("fd00::1"));
        assert_eq!(d(&["fd00::1/127"]).as_deref(), Some("fd00::"));
        assert_eq!(d(&["fe80::1/64", "10.0.0.1/24"]), None);
        assert_eq!(d(&["fe80::/127"]), None, "link-local is never derived");
        // The first that works, in order.
        assert_eq!(
            d(&["fe80::1/64", "fd00::/127", "169.254.0.0/31"]).as_deref(),
            Some("fd00::1")
        );
    }

    #[test]
    fn bgp_errors_name_file_line_and_field() {
        let fx = Fx::new();
        let nb = "[bgp]\nasn = 65001\n\n[[bgp.neighbor]]\n";
        let cases: &[(String, &str, usize, &str)] = &[
            ("[bgp]\nasn = 0\n".into(), "bgp.asn", 2, "0 is out of range 1..=4294967295"),
            ("[bgp]\nasn = 4294967296\n".into(), "bgp.asn", 2, "out of range"),
            ("[bgp]\nasn = 23456\n".into(), "bgp.asn", 2, "AS_TRANS"),
            ("[bgp]\n".into(), "bgp.asn", 1, "missing required key"),
            ("[bgp]\nasn = 1\nhold-time = 2\n".into(), "bgp.hold-time", 3, "0 (no keepalives) or at least 3"),
            ("[bgp]\nasn = 1\nmax-paths = 0\n".into(), "bgp.max-paths", 3, "1..=64"),
            ("[bgp]\nasn = 1\nrouter-id = \"224.0.0.1\"\n".into(), "bgp.router-id", 3, "unicast"),
            ("[bgp]\nasn = 1\nnetworks = [\"10.1.0.1/24\"]\n".into(), "bgp.networks[1]", 3, "host bits are set; the prefix is 10.1.0.0/24"),
            ("[bgp]\nasn = 1\nnetworks = [\"10.1.0.0/24\",\n  \"10.1.0.0/24\"]\n".into(), "bgp.networks[2]", 4, "already listed at bgp.networks[1] (line 19)"),
            ("[bgp]\nasn = 1\nredistribute = [\"kernel\"]\n".into(), "bgp.redistribute[1]", 3, "\"connected\", \"static\" or \"ospf\""),
            ("[bgp]\nasn = 1\ngraceful-restart = { restart-time = 5000 }\n".into(), "bgp.graceful-restart.restart-time", 3, "1..=4095"),
            ("[bgp]\nasn = 1\nhold-tme = 9\n".into(), "bgp.hold-tme", 3, "unknown key; did you mean hold-time?"),
            (format!("{nb}remote-as = 65002\n"), "bgp.neighbor[1].tunnel", 4, "set tunnel"),
            (format!("{nb}tunnel = \"to-r2\"\n"), "bgp.neighbor[1].remote-as", 4, "missing required key"),
            (format!("{nb}tunnel = \"to-r4\"\nremote-as = 2\n"), "bgp.neighbor[1].tunnel", 5, "no [[tunnel]] has this name; did you mean \"to-r2\"?"),
            (format!("{nb}tunnel = \"to-r3\"\nremote-as = 2\n"), "bgp.neighbor[1].address", 5, "cannot be derived from the addresses of tunnel \"to-r3\""),
            (format!("{nb}tunnel = \"to-r2\"\naddress = \"10.9.9.9\"\nremote-as = 2\n"), "bgp.neighbor[1].address", 6, "in none of the networks of tunnel \"to-r2\""),
            (format!("{nb}tunnel = \"to-r2\"\naddress = \"169.254.0.0\"\nremote-as = 2\n"), "bgp.neighbor[1].address", 6, "own address on tunnel \"to-r2\""),
            (format!("{nb}address = \"192.168.200.2\"\nremote-as = 2\n"), "bgp.neighbor[1].address", 5, "own addresses (host.addresses[1] (line 6))"),
            (format!("{nb}address = \"10.255.0.1\"\nremote-as = 2\n"), "bgp.neighbor[1].address", 5, "own addresses (router.router-id)"),
            (format!("{nb}address = \"fe80::2\"\nremote-as = 2\n"), "bgp.neighbor[1].address", 5, "link-local address needs its link"),
            (format!("{nb}address = \"192.0.2.1\"\nremote-as = \"external\"\n"), "bgp.neighbor[1].remote-as", 6, "\"internal\""),
            (format!("{nb}address = \"192.0.2.1\"\nremote-as = 2\nhold-time = 1\n"), "bgp.neighbor[1].hold-time", 7, "at least 3"),
            (format!("{nb}address = \"192.0.2.1\"\nremote-as = 2\nimport = \"from-peer\"\n\n[[policy]]\nname = \"from-peers\"\n"), "bgp.neighbor[1].import", 7, "no [[policy]] has this name; did you mean \"from-peers\"?"),
            (format!("{nb}address = \"192.0.2.1\"\nremote-as = 2\nexport = \"out\"\n"), "bgp.neighbor[1].export", 7, "the file defines no policy"),
            (format!("{nb}tunnel = \"to-r2\"\nremote-as = 2\npassword-file = \"bgp-site.key\"\n"), "bgp.neighbor[1].password-file", 7, "TCP-MD5 is not offered over the userspace TCP of a tunnel"),
            (format!("{nb}tunnel = \"to-r2\"\nremote-as = 2\nttl-security = true\n"), "bgp.neighbor[1].ttl-security", 7, "address neighbors"),
            (format!("{nb}address = \"192.0.2.1\"\nremote-as = 2\nkeep-received-routes = \"yes\"\n"), "bgp.neighbor[1].keep-received-routes", 7, "true or false"),
            (format!("{nb}address = \"192.0.2.1\"\nremote-as = 2\nprefix-limit = {{ max = 10, action = \"drop\" }}\n"), "bgp.neighbor[1].prefix-limit.action", 7, "\"stop\" or \"warn\""),
            (format!("{nb}address = \"192.0.2.1\"\nremote-as = 2\nlocal-address = \"fd00::1\"\n"), "bgp.neighbor[1].local-address", 7, "not of the same family"),
            (format!("{nb}tunnel = \"to-r2\"\nremote-as = 2\nlocal-address = \"169.254.0.1\"\n"), "bgp.neighbor[1].local-address", 7, "not one of the addresses of tunnel \"to-r2\""),
            (format!("{nb}address = \"192.0.2.1\"\nremote-as = 2\n\n[[bgp.neighbor]]\naddress = \"192.0.2.1\"\nremote-as = 3\n"), "bgp.neighbor[2]", 9, "a second neighbor 192.0.2.1; first is bgp.neighbor[1] (line 21)"),
            (format!("{nb}tunnel = \"to-r2\"\nremote-as = 2\n\n[[bgp.neighbor]]\ntunnel = \"to-r2\"\naddress = \"169.254.0.1\"\nremote-as = 2\n"), "bgp.neighbor[2]", 10, "a second neighbor 169.254.0.1 on tunnel \"to-r2\""),
            (format!("{nb}address = \"192.0.2.1\"\nremote-as = 2\npassword-file = \"missing.key\"\n"), "bgp.neighbor[1].password-file", 7, "cannot read"),
            (format!("{nb}tunnel = \"to-r2\"\naddress = \"fe80:0:0:1::2\"\nremote-as = 2\n"), "bgp.neighbor[1].address", 6, "must be in fe80::/64"),
            (format!("{nb}tunnel = \"to-r2\"\nremote-as = 2\n\n[[bgp.neighbor]]\naddress = \"169.254.0.1\"\nremote-as = 2\n"), "bgp.neighbor[2]", 9, "a second neighbor 169.254.0.1; first is bgp.neighbor[1]"),
        ];
        for (text, field, line, why) in cases {
            fx.only_error(text, field, *line, why);
        }
    }

    #[test]
    fn one_link_local_address_on_two_tunnels_is_two_neighbors() {
        let fx = Fx::new();
        let c = fx.ok("[bgp]\nasn = 65001\n\n[[bgp.neighbor]]\ntunnel = \"to-r2\"\naddress = \"fe80::2\"\nremote-as = 2\n\n[[bgp.neighbor]]\ntunnel = \"to-r3\"\naddress = \"fe80::2\"\nremote-as = 3\n");
        assert_eq!(c.bgp.unwrap().neighbors.len(), 2);
    }

    #[test]
    fn policy_errors_name_the_entry() {
        let fx = Fx::new();
        let p = "[[policy]]\nname = \"p\"\nrules = [\n";
        let rule = |m: &str| format!("{p}  {{ match = {{ {m} }}, action = \"accept\" }},\n]\n");
        // Lines 1..=3.
        let list = "[[prefix-list]]\nname = \"dn42\"\nentries = [\"172.20.0.0/14 le 28\"]\n";
        let cases: Vec<(String, &str, usize, &str)> = vec![
            (
                rule("prefix-list = [\"10.0.0.0/8\", \"10.0.0.0/8 le 33\"]"),
                "policy[1].rules[1].match.prefix-list[2]",
                4,
                "le 33 is outside 8..=32",
            ),
            (
                rule("prefix-list = [\"10.0.0.1/8 le 24\"]"),
                "policy[1].rules[1].match.prefix-list[1]",
                4,
                "host bits are set; the prefix is 10.0.0.0/8",
            ),
            (
                rule("prefix-list = [\"10.0.0.0/8 ge 24 le 16\"]"),
                "policy[1].rules[1].match.prefix-list[1]",
                4,
                "ge 24 is greater than le 16",
            ),
            (
                rule("prefix-list = [\"10.0.0.0/8 gt 9\"]"),
                "policy[1].rules[1].match.prefix-list[1]",
                4,
                "PREFIX [ge N] [le N]",
            ),
            (
                rule("prefix-list = [\"2001:db8::/32 le\"]"),
                "policy[1].rules[1].match.prefix-list[1]",
                4,
                "le needs a prefix length 0..=128",
            ),
            (
                rule("prefix-list = [\"10.0.0.0/8 le 24 ge 16\"]"),
                "policy[1].rules[1].match.prefix-list[1]",
                4,
                "ge before le",
            ),
            (
                rule("prefix-list = []"),
                "policy[1].rules[1].match.prefix-list",
                4,
                "matches nothing",
            ),
            (
                rule("community = [\"65536:1\"]"),
                "policy[1].rules[1].match.community[1]",
                4,
                "ASN:VALUE",
            ),
            (
                rule("large-community = [\"1:2\"]"),
                "policy[1].rules[1].match.large-community[1]",
                4,
                "GLOBAL:LOCAL1:LOCAL2",
            ),
            (
                rule("family = \"ip\""),
                "policy[1].rules[1].match.family",
                4,
                "\"ipv4\" or \"ipv6\"",
            ),
            (
                rule("as-path-contains = [1, 23456]"),
                "policy[1].rules[1].match.as-path-contains[2]",
                4,
                "AS_TRANS",
            ),
            (
                rule("not = { not = { family = \"ipv4\" } }"),
                "policy[1].rules[1].match.not.not",
                4,
                "unknown key",
            ),
            (
                rule("not = {}"),
                "policy[1].rules[1].match.not",
                4,
                "match nothing",
            ),
            (
                rule("comunity = [\"1:1\"]"),
                "policy[1].rules[1].match.comunity",
                4,
                "did you mean community?",
            ),
            (
                format!("{p}  {{ set = {{ prepend = 11 }} }},\n]\n"),
                "policy[1].rules[1].set.prepend",
                4,
                "1..=10",
            ),
            (
                format!("{p}  {{ action = \"permit\" }},\n]\n"),
                "policy[1].rules[1].action",
                4,
                "\"accept\" or \"reject\"",
            ),
            (
                "[[policy]]\nname = \"p\"\ndefault = \"deny\"\n".into(),
                "policy[1].default",
                3,
                "\"accept\" or \"reject\"",
            ),
            (
                "[[policy]]\nname = \"p q\"\n".into(),
                "policy[1].name",
                2,
                "A-Z a-z 0-9",
            ),
            (
                "[[policy]]\nname = \"p\"\n\n[[policy]]\nname = \"p\"\n".into(),
                "policy[2].name",
                5,
                "duplicate policy name \"p\"; first used by policy[1].name (line 18)",
            ),
            (
                format!("{list}\n{p}  {{ match = {{ prefix-list = \"dn24\" }}, action = \"accept\" }},\n]\n"),
                "policy[1].rules[1].match.prefix-list",
                8,
                "no [[prefix-list]] has this name; did you mean \"dn42\"?",
            ),
            (
                format!("{list}\n{p}  {{ match = {{ not = {{ prefix-list = \"other\" }} }} }},\n]\n"),
                "policy[1].rules[1].match.not.prefix-list",
                8,
                "no [[prefix-list]] has this name; prefix lists: dn42",
            ),
            (
                rule("prefix-list = \"dn42\""),
                "policy[1].rules[1].match.prefix-list",
                4,
                "the file defines no prefix list",
            ),
            (
                rule("prefix-list = 42"),
                "policy[1].rules[1].match.prefix-list",
                4,
                "expected the name of a [[prefix-list]] or an array of entries",
            ),
            (
                format!("{list}\n[[prefix-list]]\nname = \"dn42\"\nentries = [\"10.0.0.0/8\"]\n"),
                "prefix-list[2].name",
                6,
                "duplicate prefix list name \"dn42\"; first used by prefix-list[1].name (line 18)",
            ),
            (
                "[[prefix-list]]\nname = \"a\"\nentries = [\"10.0.0.0/8\",\n  \"10.0.0.0/8 le 33\"]\n".into(),
                "prefix-list[1].entries[2]",
                4,
                "le 33 is outside 8..=32",
            ),
            (
                "[[prefix-list]]\nname = \"a\"\nentries = []\n".into(),
                "prefix-list[1].entries",
                3,
                "an empty prefix list matches nothing",
            ),
            (
                "[[prefix-list]]\nname = \"a b\"\nentries = [\"10.0.0.0/8\"]\n".into(),
                "prefix-list[1].name",
                2,
                "A-Z a-z 0-9",
            ),
            (
                "[[prefix-list]]\nname = \"a\"\nentries = [\"10.0.0.0/8\"]\nentrys = []\n".into(),
                "prefix-list[1].entrys",
                4,
                "did you mean entries?",
            ),
            // A list with an error of its own: a policy naming it adds no second error.
            (
                format!("[[prefix-list]]\nname = \"a\"\nentries = [\"10.0.0.1/8\"]\n\n{p}  {{ match = {{ prefix-list = \"a\" }} }},\n]\n"),
                "prefix-list[1].entries[1]",
                3,
                "host bits are set; the prefix is 10.0.0.0/8",
            ),
        ];
        for (text, field, line, why) in &cases {
            fx.only_error(text, field, *line, why);
        }
    }

    #[test]
    fn password_never_appears_in_debug_or_errors() {
        let fx = Fx::new();
        let site = "[bgp]\nasn = 65001\n\n[[bgp.neighbor]]\naddress = \"192.0.2.1\"\nremote-as = 2\npassword-file = \"bgp-site.key\"\n";
        let c = fx.ok(site);
        let n = &c.bgp.as_ref().unwrap().neighbors[0];
        assert_eq!(n.password.as_ref().unwrap().key.0, PASSWORD.as_bytes());
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains(PASSWORD), "Debug shows the password");
        assert!(shown.contains("<redacted>"));
        // With an error elsewhere in the file.
        let errors = fx.parse(&format!("{site}hold-time = 2\n")).unwrap_err();
        assert!(!format!("{errors:?}").contains(PASSWORD));
        // A password too long, and a world-readable file: described, never quoted.
        let long = format!("{PASSWORD}{}", "x".repeat(80));
        fx.write("long.key", &long, 0o600);
        let e = fx.only_error(
            &site.replace("bgp-site.key", "long.key"),
            "bgp.neighbor[1].password-file",
            7,
            "TCP-MD5 keys are at most 80",
        );
        assert!(!format!("{e:?}").contains(PASSWORD));
        fx.write("open.key", PASSWORD, 0o644);
        let e = fx.only_error(
            &site.replace("bgp-site.key", "open.key"),
            "bgp.neighbor[1].password-file",
            7,
            "readable by everyone",
        );
        assert!(!format!("{e:?}").contains(PASSWORD));
        // Pasted into the wrong key, it is not echoed either.
        let errors = fx
            .parse(&site.replace(
                "password-file = \"bgp-site.key\"",
                &format!("import = \"{PASSWORD}\""),
            ))
            .unwrap_err();
        assert!(!format!("{errors:?}").contains(PASSWORD), "{errors:?}");
    }

    #[test]
    fn full_example_saves_unchanged_and_renders_without_the_password() {
        use crate::config::{load_file, save};
        let fx = Fx::new();
        let c = fx.ok(FULL);
        // Saving the loaded file changes nothing, byte for byte.
        let path = fx.path();
        let text = fx.text(FULL);
        fx.write("r1.toml", &text, 0o600);
        save::save(&path, &c).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        // Rendered from the model alone: [bgp], its neighbors and the policies are there,
        // the password only as its file, and the text reads back as the same model.
        let shown = save::render_redacted(&c, fx.dir.path());
        for part in [
            "[bgp]",
            "[[bgp.neighbor]]",
            "[[policy]]",
            "password-file = \"bgp-site.key\"",
        ] {
            assert!(shown.contains(part), "{part} missing:\n{shown}");
        }
        assert!(!shown.contains(PASSWORD), "{shown}");
        let with_key = shown.replace(
            &format!("private-key = \"{}\"", save::REDACTED),
            &format!("private-key = \"{}\"", fx.own.to_base64()),
        );
        assert_eq!(parse_str(&with_key, &path).unwrap(), c, "{shown}");
        // Saved into a file without BGP: the same, and the password file is untouched.
        fx.write("r1.toml", &fx.text(""), 0o600);
        save::save(&path, &c).unwrap();
        let saved = fs::read_to_string(&path).unwrap();
        assert!(!saved.contains(PASSWORD), "{saved}");
        assert_eq!(load_file(&path).unwrap(), c, "{saved}");
        assert_eq!(
            fs::read_to_string(fx.dir.path().join("bgp-site.key")).unwrap(),
            format!("{PASSWORD}\n")
        );
    }

    #[test]
    fn changed_bgp_is_saved_in_place_keeping_comments_and_forms() {
        use crate::config::{load_file, save};
        let fx = Fx::new();
        let commented = FULL
            .replace("[bgp]\n", "# our speaker\n[bgp]\n")
            .replace("asn = 65001\n", "asn = 65001 # the AS\n")
            .replace(
                "remote-as = 65002\n",
                "remote-as = \"internal\" # same AS\n",
            )
            .replace(
                "description = \"r2\"\n",
                "description = \"r2\"\n# the site\n",
            )
            .replace(
                "action = \"reject\" },\n",
                "action = \"reject\" }, # a bare number\n",
            );
        let path = fx.path();
        fx.write("r1.toml", &fx.text(&commented), 0o600);
        let mut c = load_file(&path).unwrap();
        let unchanged = fs::read_to_string(&path).unwrap();
        save::save(&path, &c).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), unchanged);

        let b = c.bgp.as_mut().unwrap();
        b.hold_time = 30;
        b.graceful_restart.enabled = true;
        b.networks.pop();
        b.neighbors[1].ttl_security = false;
        b.neighbors[0].keep_received_routes = false;
        b.neighbors[1].keep_received_routes = true;
        b.neighbors[1].prefix_limit = Some(BgpPrefixLimit {
            max: 10,
            action: PrefixLimitOnExceed::Warn,
        });
        let mut n = BgpNeighborConfig::new(65003);
        n.address = Some("192.0.2.7".parse().unwrap());
        n.passive = true;
        b.neighbors.push(n);
        c.policies[0].rules[2].set.med = None;
        // A list's entries change with the policies that hold them (the loader's
        // invariant); the policy keeps referring to the list by name.
        let added = PrefixListEntry {
            prefix: net("10.30.0.0/16"),
            ge: None,
            le: None,
        };
        c.prefix_lists[0].entries.push(added);
        c.policies[0].rules[3].matches.prefix_list.push(added);
        c.policies[1].default = PolicyAction::Reject;
        c.policies[1].rules.clear();
        c.policies.push(PolicyConfig {
            name: "new".into(),
            default: PolicyAction::Accept,
            rules: vec![PolicyRule {
                matches: PolicyMatch {
                    family: Some(PolicyFamily::Ipv4),
                    ..PolicyMatch::default()
                },
                action: Some(PolicyAction::Reject),
                ..PolicyRule::default()
            }],
        });
        save::save(&path, &c).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        for kept in [
            "# our speaker",
            "asn = 65001 # the AS",
            "remote-as = \"internal\" # same AS",
            "# the site",
            "{ match = { as-path-contains = 65003 }, action = \"reject\" }, # a bare number",
            "graceful-restart = { enabled = true, restart-time = 120 }",
            "{ match = { prefix-list = \"site-nets\" }, set = { local-pref = 50 } },",
            "entries = [\"10.20.0.0/16 le 24\", \"2001:db8:20::/48 ge 56\", \"10.30.0.0/16\"]",
        ] {
            assert!(text.contains(kept), "{kept} lost:\n{text}");
        }
        assert!(!text.contains(PASSWORD), "{text}");
        assert_eq!(load_file(&path).unwrap(), c, "{text}");
        // Saving the reloaded file again changes nothing.
        save::save(&path, &load_file(&path).unwrap()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);

        // No BGP, no policies, no prefix lists: the sections go; the rest stays.
        c.bgp = None;
        c.policies.clear();
        c.prefix_lists.clear();
        save::save(&path, &c).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("bgp") && !text.contains("[[policy]]") && !text.contains("prefix-list"),
            "{text}"
        );
        assert_eq!(load_file(&path).unwrap(), c, "{text}");
    }

    #[test]
    fn sub_tables_written_as_tables_stay_tables() {
        use crate::config::{load_file, save};
        let fx = Fx::new();
        let bgp = "[bgp]\nasn = 65001\n\n[bgp.graceful-restart]\nenabled = true # on\n\n\
                   [[policy]]\nname = \"p\"\n\n[[policy.rules]]\naction = \"accept\" # all\n";
        let path = fx.path();
        fx.write("r1.toml", &fx.text(bgp), 0o600);
        let mut c = load_file(&path).unwrap();
        c.bgp.as_mut().unwrap().graceful_restart.restart_time = 60;
        c.policies[0].rules.push(PolicyRule {
            set: PolicySet {
                local_pref: Some(50),
                ..PolicySet::default()
            },
            ..PolicyRule::default()
        });
        save::save(&path, &c).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        for kept in [
            "[bgp.graceful-restart]\nenabled = true # on\nrestart-time = 60\n",
            "[[policy.rules]]\naction = \"accept\" # all\n",
            "[[policy.rules]]\nset = { local-pref = 50 }\n",
        ] {
            assert!(text.contains(kept), "{kept} missing:\n{text}");
        }
        assert_eq!(load_file(&path).unwrap(), c, "{text}");
    }
}
