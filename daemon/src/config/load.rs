//! TOML text -> [`Config`](super::Config), with validation.
//!
//! Every problem in a file is reported, not just the first, each as
//! `FILE:LINE: field: why` (docs/config.md lists the keys and the rules). Field paths
//! name array entries 1-based, in file order: the first `[[tunnel]]` is `tunnel[1]`, the
//! second address of its `addresses` is `tunnel[1].addresses[2]` — the same counting a
//! person uses reading the file, and the line number is given as well.
//!
//! No message ever contains key material: the checks describe what is wrong with a key
//! (not base64, wrong length, same as another) and never quote the value.

use super::keyfile::{read_key_file, resolve};
use super::model::*;
use super::source::{at_line, Cx, Field, Section};
use crate::keys::{KeyError, PresharedKey, PrivateKey, PublicKey};
use ipnetwork::IpNetwork;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// One problem in a config file: where, which field, why. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line of the offending value, when it is known.
    pub line: Option<usize>,
    /// Dotted path of the field, e.g. `tunnel[2].endpoint` or `router.private-key-file`.
    pub field: String,
    pub why: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{}:{}: {}: {}",
                self.file.display(),
                line,
                self.field,
                self.why
            ),
            None => write!(f, "{}: {}: {}", self.file.display(), self.field, self.why),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one config, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

const TOP_KEYS: &[&str] = &[
    "router",
    "host",
    "tunnel",
    "route",
    "control",
    "forwarding",
    "nat",
    "ospf",
    "bgp",
    "policy",
    "prefix-list",
];
const ROUTER_KEYS: &[&str] = &[
    "router-id",
    "private-key",
    "private-key-file",
    "listen-port",
    "listen-address",
];
const HOST_KEYS: &[&str] = &["interface", "addresses", "export-routes", "mtu"];
const TUNNEL_KEYS: &[&str] = &[
    "name",
    "peer-public-key",
    "preshared-key",
    "preshared-key-file",
    "endpoint",
    "persistent-keepalive",
    "addresses",
    "mtu",
    "listen-port",
    "ospf",
];
const ROUTE_KEYS: &[&str] = &["prefix", "via"];
const CONTROL_KEYS: &[&str] = &[
    "socket",
    "listen",
    "tls-cert",
    "tls-key",
    "tls-client-ca",
    "plaintext",
    "persist",
];

/// Smallest MTU of a link that carries IPv4 only: every IPv4 host must accept 576 bytes.
pub const MIN_MTU_V4: u16 = 576;
/// Smallest MTU of a link that carries IPv6 (RFC 8200 section 5).
pub const MIN_MTU_V6: u16 = 1280;
/// Largest tunnel MTU: an encapsulated packet adds 32 bytes of WireGuard data header and
/// 48 of UDP/IPv6 (80 in all), and the result must still fit an IP packet's 65535 bytes.
pub const MAX_TUNNEL_MTU: u16 = 65535 - 80;
/// Largest host TUN MTU: the largest IP packet.
pub const MAX_HOST_MTU: u16 = 65535;

/// Parse and validate config text. `file` names the source in errors and anchors relative
/// key-file paths (they are relative to the config file's directory).
pub fn parse_str(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let mut cx = Cx::new(file, text);
    let doc = match toml_edit::Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let line = e.span().map(|s| cx.line_at(s.start));
            cx.err(line, "syntax", e.message().to_owned());
            return Err(ConfigErrors(cx.errors));
        }
    };
    // A bare file name has the empty parent, against which `join` keeps paths as written
    // (relative to the working directory, which is then the config's directory).
    let dir = file.parent().map(Path::to_owned).unwrap_or_default();
    let root = Section {
        table: doc.as_table(),
        line: None,
        path: String::new(),
    };
    root.check_keys(&mut cx, TOP_KEYS);

    let mut facts = Facts::default();
    let router = match root.get(&cx, "router") {
        Some(f) => {
            table_of(&mut cx, &f, "[router]").and_then(|s| router(&mut cx, &s, &dir, &mut facts))
        }
        None => {
            cx.err(None, "router", "missing required section [router]");
            None
        }
    };
    let host = match root.get(&cx, "host") {
        Some(f) => {
            facts.has_host = true;
            table_of(&mut cx, &f, "[host]").map(|s| host(&mut cx, &s, &mut facts))
        }
        None => Some(None),
    };
    let mut tunnels = Vec::new();
    if let Some(f) = root.get(&cx, "tunnel") {
        for s in tables_of(&mut cx, &f, "[[tunnel]]") {
            tunnels.push(tunnel(&mut cx, &s, &dir, &mut facts));
        }
    }
    let mut routes = Vec::new();
    if let Some(f) = root.get(&cx, "route") {
        for s in tables_of(&mut cx, &f, "[[route]]") {
            routes.push(route(&mut cx, &s, &mut facts));
        }
    }
    facts.check_routes(&mut cx);
    let control = match root.get(&cx, "control") {
        Some(f) => table_of(&mut cx, &f, "[control]").and_then(|s| control(&mut cx, &s, &dir)),
        None => Some(ControlConfig::default()),
    };
    let forwarding = match root.get(&cx, "forwarding") {
        Some(f) => {
            table_of(&mut cx, &f, "[forwarding]").and_then(|s| super::nat::forwarding(&mut cx, &s))
        }
        None => Some(ForwardingConfig::default()),
    };
    let nat = match root.get(&cx, "nat") {
        Some(f) => {
            let names: Vec<String> = facts.tunnel_names.keys().cloned().collect();
            let host_interface = host
                .as_ref()
                .and_then(|h| h.as_ref())
                .map(|h| h.interface.clone());
            let known = super::nat::Known {
                tunnel_names: names.iter().map(String::as_str).collect(),
                host_interface: match (&host_interface, facts.has_host) {
                    (Some(name), _) => Some(name.as_str()),
                    // A [host] that failed to parse: do not claim it is missing.
                    (None, true) => Some(DEFAULT_HOST_INTERFACE),
                    (None, false) => None,
                },
            };
            table_of(&mut cx, &f, "[nat]").and_then(|s| super::nat::nat(&mut cx, &s, &known))
        }
        None => Some(NatConfig::default()),
    };
    let ospf = match root.get(&cx, "ospf") {
        Some(f) => super::ospf::ospf(&mut cx, &f).map(Some),
        None => Some(None),
    };
    // Before the policies, which take the entries of the lists they name.
    let (prefix_lists, known_prefix_lists) = match root.get(&cx, "prefix-list") {
        Some(f) => super::bgp::prefix_lists(&mut cx, &f),
        None => (Some(Vec::new()), Default::default()),
    };
    let mut policy_names = Vec::new();
    let policies = match root.get(&cx, "policy") {
        Some(f) => super::bgp::policies(&mut cx, &f, &known_prefix_lists, &mut policy_names),
        None => Some(Vec::new()),
    };
    let bgp = match root.get(&cx, "bgp") {
        Some(f) => {
            let router_id = router.as_ref().map(|r| r.router_id);
            let mut own: Vec<(IpAddr, String)> = router_id
                .map(|id| (IpAddr::V4(id), "router.router-id".to_owned()))
                .into_iter()
                .collect();
            own.extend(
                facts
                    .addresses
                    .iter()
                    .filter(|a| !is_v6_link_local(a.value.ip()))
                    .map(|a| (a.value.ip(), a.where_())),
            );
            // Sorted: suggestions must not depend on hash order.
            let mut tunnel_names: Vec<&str> =
                facts.tunnel_names.keys().map(String::as_str).collect();
            tunnel_names.sort_unstable();
            let known = super::bgp::Known {
                router_id,
                tunnel_names,
                tunnels: tunnels.iter().flatten().collect(),
                own,
                policy_names,
            };
            super::bgp::bgp(&mut cx, &f, &dir, &known).map(Some)
        }
        None => Some(None),
    };

    if !cx.errors.is_empty() {
        // File order; errors without a line (a missing section) first.
        cx.errors.sort_by_key(|e| e.line);
        return Err(ConfigErrors(cx.errors));
    }
    // With no error recorded every part parsed; a `None` here would be a bug in this file.
    let (
        Some(router),
        Some(host),
        Some(tunnels),
        Some(routes),
        Some(control),
        Some(forwarding),
        Some(nat),
        Some(ospf),
        Some(bgp),
        Some(policies),
        Some(prefix_lists),
    ) = (
        router,
        host,
        tunnels.into_iter().collect::<Option<Vec<_>>>(),
        routes.into_iter().collect::<Option<Vec<_>>>(),
        control,
        forwarding,
        nat,
        ospf,
        bgp,
        policies,
        prefix_lists,
    )
    else {
        cx.err(
            None,
            "config",
            "internal error: a part failed without a reason",
        );
        return Err(ConfigErrors(cx.errors));
    };
    Ok(Config {
        router,
        host,
        tunnels,
        routes,
        control,
        forwarding,
        nat,
        ospf,
        bgp,
        policies,
        prefix_lists,
    })
}

/// Read, parse and validate a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_str(&text, path),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: path.to_owned(),
            line: None,
            field: "file".into(),
            why: format!("cannot read: {e}"),
        }])),
    }
}

/// What the cross-section checks need to know about what was parsed so far.
#[derive(Default)]
struct Facts {
    own_public: Option<PublicKey>,
    /// The router's shared port (0: the OS picks one, so nothing can collide with it).
    shared_port: Option<u16>,
    listen_address: Option<IpAddr>,
    has_host: bool,
    /// Addresses of the host TUN and of every tunnel, with the owner's name for messages.
    addresses: Vec<Placed<IpNetwork>>,
    tunnel_names: HashMap<String, Placed<()>>,
    /// Tunnel name -> whether its MTU is below the IPv6 minimum (it cannot carry IPv6).
    tunnel_v4_only_mtu: HashMap<String, bool>,
    peer_keys: HashMap<PublicKey, Placed<()>>,
    own_ports: HashMap<u16, Placed<()>>,
    prefixes: HashMap<IpNetwork, Placed<()>>,
    /// Each route's via, checked once every tunnel name is known.
    vias: Vec<ViaUse>,
}

/// One route's `via`, kept for the check that needs every tunnel parsed.
struct ViaUse {
    via: String,
    prefix: Option<IpNetwork>,
    line: Option<usize>,
    path: String,
}

/// A value and where it was written.
#[derive(Clone)]
struct Placed<T> {
    value: T,
    line: Option<usize>,
    path: String,
    /// The interface the value belongs to (`[host]`, `tunnel[2]`), for address messages.
    owner: String,
}

impl<T> Placed<T> {
    fn at(value: T, line: Option<usize>, path: &str, owner: &str) -> Self {
        Placed {
            value,
            line,
            path: path.to_owned(),
            owner: owner.to_owned(),
        }
    }

    fn where_(&self) -> String {
        format!("{}{}", self.path, at_line(self.line))
    }
}

fn table_of<'a>(cx: &mut Cx, f: &Field<'a>, what: &str) -> Option<Section<'a>> {
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

/// The entries of `[[name]]` (or of an array of inline tables), as 1-based sections.
pub(super) fn tables_of<'a>(cx: &mut Cx, f: &Field<'a>, what: &str) -> Vec<Section<'a>> {
    let mut out = Vec::new();
    if let Some(array) = f.item.as_array_of_tables() {
        for (i, t) in array.iter().enumerate() {
            out.push(Section {
                table: t,
                line: cx.line_of(t.span()).or(f.line),
                path: format!("{}[{}]", f.path, i + 1),
            });
        }
    } else if let Some(array) = f.item.as_array() {
        for (i, v) in array.iter().enumerate() {
            let line = cx.line_of(v.span()).or(f.line);
            let path = format!("{}[{}]", f.path, i + 1);
            match v.as_inline_table() {
                Some(t) => out.push(Section {
                    table: t,
                    line,
                    path,
                }),
                None => cx.err(line, &path, format!("expected a table {what}")),
            }
        }
    } else {
        cx.err(
            f.line,
            &f.path,
            format!("expected an array of tables {what}, found a single table or value"),
        );
    }
    out
}

/// A router id: a unicast IPv4 address (`[router]`, `[bgp]`).
pub(super) fn router_id(cx: &mut Cx, f: &Field) -> Option<std::net::Ipv4Addr> {
    let text = f.str(cx)?;
    match text.parse::<std::net::Ipv4Addr>() {
        Ok(ip) if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() => {
            cx.err(
                f.line,
                &f.path,
                "must be a unicast IPv4 address, not 0.0.0.0, broadcast or multicast",
            );
            None
        }
        Ok(ip) => Some(ip),
        Err(_) => {
            cx.err(f.line, &f.path, "expected an IPv4 address like 10.255.0.1");
            None
        }
    }
}

fn router(cx: &mut Cx, s: &Section, dir: &Path, facts: &mut Facts) -> Option<RouterConfig> {
    s.check_keys(cx, ROUTER_KEYS);
    let router_id = s.require(cx, "router-id").and_then(|f| router_id(cx, &f));
    let key = key_from(
        cx,
        s,
        dir,
        "private-key",
        "private-key-file",
        PrivateKey::from_base64,
    );
    let private = match key {
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            cx.err(
                s.line,
                &s.child("private-key-file"),
                "missing: set private-key-file (or private-key)",
            );
            None
        }
        Err(()) => None,
    };
    facts.own_public = private.as_ref().map(|(k, _)| k.public_key());
    let listen_port = match s.get(cx, "listen-port") {
        Some(f) => f.port(cx),
        None => Some(DEFAULT_LISTEN_PORT),
    };
    facts.shared_port = listen_port;
    let listen_address = match s.get(cx, "listen-address") {
        Some(f) => f.str(cx).and_then(|t| match t.parse::<IpAddr>() {
            Ok(ip) => Some(Some(ip)),
            Err(_) => {
                cx.err(f.line, &f.path, "expected an IP address like 0.0.0.0 or ::");
                None
            }
        }),
        None => Some(None),
    };
    facts.listen_address = listen_address.flatten();
    let ((private_key, private_key_file), router_id, listen_port, listen_address) =
        (private?, router_id?, listen_port?, listen_address?);
    Some(RouterConfig {
        router_id,
        private_key,
        private_key_file,
        listen_port,
        listen_address,
    })
}

/// A key given either inline (`inline`) or as a file (`file_key`), never both.
/// `Ok(None)`: neither given. `Err(())`: a problem, already reported.
fn key_from<K>(
    cx: &mut Cx,
    s: &Section,
    dir: &Path,
    inline: &str,
    file_key: &str,
    decode: fn(&str) -> Result<K, KeyError>,
) -> Result<Option<(K, Option<PathBuf>)>, ()> {
    let inline_f = s.get(cx, inline);
    let file_f = s.get(cx, file_key);
    match (inline_f, file_f) {
        (None, None) => Ok(None),
        (Some(_), Some(f)) => {
            cx.err(
                f.line,
                &f.path,
                format!("set either {inline} or {file_key}, not both"),
            );
            Err(())
        }
        (Some(f), None) => {
            let text = f.str(cx).ok_or(())?;
            match decode(text) {
                Ok(k) => Ok(Some((k, None))),
                Err(e) => {
                    cx.err(f.line, &f.path, format!("not a WireGuard key: {e}"));
                    Err(())
                }
            }
        }
        (None, Some(f)) => {
            let written = f.str(cx).ok_or(())?;
            if written.is_empty() {
                cx.err(f.line, &f.path, "empty path");
                return Err(());
            }
            let path = resolve(dir, written);
            let text = match read_key_file(&path) {
                Ok(t) => t,
                Err(e) => {
                    cx.err(f.line, &f.path, e.to_string());
                    return Err(());
                }
            };
            match decode(&text) {
                Ok(k) => Ok(Some((k, Some(path)))),
                Err(e) => {
                    cx.err(
                        f.line,
                        &f.path,
                        format!("{} does not hold a WireGuard key: {e}", path.display()),
                    );
                    Err(())
                }
            }
        }
    }
}

fn host(cx: &mut Cx, s: &Section, facts: &mut Facts) -> Option<HostConfig> {
    s.check_keys(cx, HOST_KEYS);
    let interface = match s.get(cx, "interface") {
        Some(f) => f.str(cx).and_then(|name| match ifname_problem(name) {
            None => Some(name.to_owned()),
            Some(why) => {
                cx.err(f.line, &f.path, why);
                None
            }
        }),
        None => Some(DEFAULT_HOST_INTERFACE.to_owned()),
    };
    let addresses = addresses(cx, s, "[host]", facts);
    let export_routes = match s.get(cx, "export-routes") {
        Some(f) => f.bool(cx),
        None => Some(false),
    };
    let mtu = mtu(cx, s, addresses.as_deref(), DEFAULT_HOST_MTU, MAX_HOST_MTU);
    Some(HostConfig {
        interface: interface?,
        addresses: addresses?,
        export_routes: export_routes?,
        mtu: mtu?,
    })
}

/// Why `name` cannot be a Linux interface name (the kernel's `dev_valid_name` rules).
pub(super) fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 15 {
        Some("interface name must be 1..15 bytes long")
    } else if name == "." || name == ".." {
        Some("interface name cannot be . or ..")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        Some("interface name cannot contain '/', ':', whitespace or control characters")
    } else {
        None
    }
}

/// `addresses` of `[host]` or a tunnel: the router's own addresses on that interface.
fn addresses(cx: &mut Cx, s: &Section, owner: &str, facts: &mut Facts) -> Option<Vec<IpNetwork>> {
    let Some(f) = s.get(cx, "addresses") else {
        return Some(Vec::new());
    };
    let elems = f.str_array(cx)?;
    let mut out = Vec::new();
    let mut ok = true;
    for e in elems {
        let net = match e.text.parse::<IpNetwork>() {
            Ok(n) => n,
            Err(_) => {
                cx.err(
                    e.line,
                    &e.path,
                    "expected an address with prefix length, like 10.0.0.1/24 or fd00::1/64",
                );
                ok = false;
                continue;
            }
        };
        let ip = net.ip();
        if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
            cx.err(
                e.line,
                &e.path,
                "must be a unicast address (not unspecified, loopback or multicast)",
            );
            ok = false;
            continue;
        }
        for other in &facts.addresses {
            let same_owner = other.owner == owner;
            // Link-local addresses are per link: only the same interface can clash.
            if is_v6_link_local(ip) && !same_owner {
                continue;
            }
            let why = if other.value.ip() == ip {
                format!(
                    "{net} is the same address as {} at {}",
                    other.value,
                    other.where_()
                )
            } else if !same_owner && overlaps(net, other.value) {
                format!(
                    "{net} overlaps {} of {} at {}",
                    other.value,
                    other.owner,
                    other.where_()
                )
            } else {
                continue;
            };
            cx.err(e.line, &e.path, why);
            ok = false;
        }
        facts
            .addresses
            .push(Placed::at(net, e.line, &e.path, owner));
        out.push(net);
    }
    ok.then_some(out)
}

/// IPv6 link-local addresses (fe80::/10) are scoped to their link: the same one on every
/// tunnel is normal (routing protocols peer over them) and never enters the FIB.
fn is_v6_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

fn overlaps(a: IpNetwork, b: IpNetwork) -> bool {
    match (a, b) {
        (IpNetwork::V4(a), IpNetwork::V4(b)) => a.overlaps(b),
        (IpNetwork::V6(a), IpNetwork::V6(b)) => a.overlaps(b),
        _ => false,
    }
}

/// `mtu`: at least 576, or 1280 when the interface has an IPv6 address.
fn mtu(
    cx: &mut Cx,
    s: &Section,
    addresses: Option<&[IpNetwork]>,
    default: u16,
    max: u16,
) -> Option<u16> {
    let has_v6 = addresses.is_some_and(|a| a.iter().any(|n| n.is_ipv6()));
    let min = if has_v6 { MIN_MTU_V6 } else { MIN_MTU_V4 };
    let Some(f) = s.get(cx, "mtu") else {
        return Some(default);
    };
    let n = f.int(cx, MIN_MTU_V4.into(), max.into())?;
    if n < min.into() {
        cx.err(
            f.line,
            &f.path,
            format!("{n} is below {MIN_MTU_V6}, the minimum for a link with IPv6 addresses"),
        );
        return None;
    }
    Some(n as u16)
}

/// Tunnel names: short (they appear in interface-like places and logs) and plain.
fn tunnel_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 15 {
        Some("name must be 1..15 characters".into())
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        Some("name may contain only A-Z a-z 0-9 _ . -".into())
    } else if name == "host" || name == "blackhole" {
        Some(format!(
            "\"{name}\" is reserved: it means something else in a route's via"
        ))
    } else {
        None
    }
}

fn tunnel(cx: &mut Cx, s: &Section, dir: &Path, facts: &mut Facts) -> Option<TunnelConfig> {
    s.check_keys(cx, TUNNEL_KEYS);
    let name = s.require(cx, "name").and_then(|f| {
        let name = f.str(cx)?;
        if let Some(why) = tunnel_name_problem(name) {
            cx.err(f.line, &f.path, why);
            return None;
        }
        if let Some(first) = facts.tunnel_names.get(name) {
            cx.err(
                f.line,
                &f.path,
                format!(
                    "duplicate tunnel name \"{name}\"; first used by {}",
                    first.where_()
                ),
            );
            return None;
        }
        facts
            .tunnel_names
            .insert(name.to_owned(), Placed::at((), f.line, &f.path, &s.path));
        Some(name.to_owned())
    });
    let peer_public_key = s.require(cx, "peer-public-key").and_then(|f| {
        let key = match PublicKey::from_base64(f.str(cx)?) {
            Ok(k) => k,
            Err(e) => {
                cx.err(f.line, &f.path, format!("not a WireGuard key: {e}"));
                return None;
            }
        };
        if facts.own_public == Some(key) {
            cx.err(
                f.line,
                &f.path,
                "is this router's own public key (from router.private-key); use the peer's",
            );
            return None;
        }
        if let Some(first) = facts.peer_keys.get(&key) {
            cx.err(
                f.line,
                &f.path,
                format!(
                    "same peer public key as {}; each peer needs exactly one tunnel",
                    first.where_()
                ),
            );
            return None;
        }
        facts
            .peer_keys
            .insert(key, Placed::at((), f.line, &f.path, &s.path));
        Some(key)
    });
    let psk = key_from(
        cx,
        s,
        dir,
        "preshared-key",
        "preshared-key-file",
        PresharedKey::from_base64,
    );
    let endpoint = match s.get(cx, "endpoint") {
        Some(f) => f
            .str(cx)
            .and_then(|text| endpoint(cx, &f, text, facts.listen_address).map(Some)),
        None => Some(None),
    };
    let persistent_keepalive = match s.get(cx, "persistent-keepalive") {
        // 0 means off, as in wg(8), so configs translated from wg-quick keep working.
        Some(f) => f.int(cx, 0, 65535).map(|n| (n > 0).then_some(n as u16)),
        None => Some(None),
    };
    let owner = match &name {
        Some(n) => format!("tunnel \"{n}\""),
        None => s.path.clone(),
    };
    let addresses = addresses(cx, s, &owner, facts);
    let mtu = mtu(
        cx,
        s,
        addresses.as_deref(),
        DEFAULT_TUNNEL_MTU,
        MAX_TUNNEL_MTU,
    );
    if let (Some(name), Some(mtu)) = (&name, mtu) {
        facts
            .tunnel_v4_only_mtu
            .insert(name.clone(), mtu < MIN_MTU_V6);
    }
    let listen_port = match s.get(cx, "listen-port") {
        Some(f) => f
            .port(cx)
            .and_then(|p| own_port(cx, &f, p, facts).map(Some)),
        None => Some(None),
    };
    let ospf = match s.get(cx, "ospf") {
        Some(f) => super::ospf::tunnel_ospf(cx, &f, dir).map(Some),
        None => Some(None),
    };
    let (preshared_key, preshared_key_file) = match psk {
        Ok(Some((k, path))) => (Some(k), path),
        Ok(None) => (None, None),
        Err(()) => return None,
    };
    Some(TunnelConfig {
        name: name?,
        peer_public_key: peer_public_key?,
        preshared_key,
        preshared_key_file,
        endpoint: endpoint?,
        persistent_keepalive: persistent_keepalive?,
        addresses: addresses?,
        mtu: mtu?,
        listen_port: listen_port?,
        ospf: ospf?,
    })
}

/// A tunnel's own UDP port: not the shared one, not another tunnel's. 0 (the OS picks)
/// never collides.
fn own_port(cx: &mut Cx, f: &Field, port: u16, facts: &mut Facts) -> Option<u16> {
    if port == 0 {
        return Some(0);
    }
    if facts.shared_port == Some(port) {
        cx.err(
            f.line,
            &f.path,
            format!("{port} is router.listen-port; omit listen-port to share the router's socket"),
        );
        return None;
    }
    if let Some(first) = facts.own_ports.get(&port) {
        cx.err(
            f.line,
            &f.path,
            format!("{port} is already the listen-port of {}", first.where_()),
        );
        return None;
    }
    facts
        .own_ports
        .insert(port, Placed::at((), f.line, &f.path, ""));
    Some(port)
}

/// `IP:port`, `[IPv6]:port`, or `hostname:port` resolved now, once, with the system
/// resolver (the tunnel then follows the peer's actual address as it roams).
fn endpoint(cx: &mut Cx, f: &Field, text: &str, listen: Option<IpAddr>) -> Option<SocketAddr> {
    let addr = match text.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            let Some((host, port)) = text.rsplit_once(':') else {
                cx.err(
                    f.line,
                    &f.path,
                    "expected IP:port, [IPv6]:port or hostname:port",
                );
                return None;
            };
            let Ok(port) = port.parse::<u16>() else {
                cx.err(f.line, &f.path, "the port must be a number 1..=65535");
                return None;
            };
            // Only hostname characters: this also keeps a pasted key (with its `+/=`)
            // out of the "cannot resolve" message below.
            let hostname_chars =
                |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
            if host.is_empty() || !host.chars().all(hostname_chars) {
                cx.err(
                    f.line,
                    &f.path,
                    "expected IP:port, [IPv6]:port or hostname:port",
                );
                return None;
            }
            let found: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
                Ok(found) => found.collect(),
                Err(e) => {
                    cx.err(f.line, &f.path, format!("cannot resolve {host}: {e}"));
                    return None;
                }
            };
            // Prefer an address the socket can reach: the listen address's family, if set.
            let fits = |a: &&SocketAddr| listen.is_none_or(|l| a.is_ipv4() == l.is_ipv4());
            match found.iter().find(fits).or(found.first()) {
                Some(a) => *a,
                None => {
                    cx.err(f.line, &f.path, format!("{host} resolves to no address"));
                    return None;
                }
            }
        }
    };
    if addr.port() == 0 {
        cx.err(f.line, &f.path, "the port must be 1..=65535");
        return None;
    }
    if addr.ip().is_unspecified() || addr.ip().is_multicast() {
        cx.err(f.line, &f.path, "must be a unicast address");
        return None;
    }
    match listen {
        Some(IpAddr::V4(_)) if addr.is_ipv6() => {
            cx.err(
                f.line,
                &f.path,
                "an IPv6 endpoint cannot be reached from the IPv4 router.listen-address",
            );
            None
        }
        Some(IpAddr::V6(l)) if !l.is_unspecified() && addr.is_ipv4() => {
            cx.err(
                f.line,
                &f.path,
                "an IPv4 endpoint cannot be reached from the IPv6 router.listen-address",
            );
            None
        }
        _ => Some(addr),
    }
}

fn route(cx: &mut Cx, s: &Section, facts: &mut Facts) -> Option<StaticRoute> {
    s.check_keys(cx, ROUTE_KEYS);
    let prefix = s.require(cx, "prefix").and_then(|f| {
        let text = f.str(cx)?;
        let Ok(net) = text.parse::<IpNetwork>() else {
            cx.err(
                f.line,
                &f.path,
                "expected a prefix like 10.2.0.0/16 or fd00:2::/48",
            );
            return None;
        };
        let normal = IpNetwork::new(net.network(), net.prefix()).ok()?;
        if normal.ip() != net.ip() {
            cx.err(
                f.line,
                &f.path,
                format!("host bits are set; the prefix is {normal}"),
            );
            return None;
        }
        if let Some(first) = facts.prefixes.get(&net) {
            cx.err(
                f.line,
                &f.path,
                format!("duplicate route for {net}; first at {}", first.where_()),
            );
            return None;
        }
        facts
            .prefixes
            .insert(net, Placed::at((), f.line, &f.path, ""));
        Some(net)
    });
    let via = s.require(cx, "via").and_then(|f| {
        let text = f.str(cx)?;
        let via = match text {
            "host" => RouteVia::Host,
            "blackhole" => RouteVia::Blackhole,
            name => RouteVia::Tunnel(name.to_owned()),
        };
        // Checked after every tunnel is known: a route may come before its tunnel.
        facts.vias.push(ViaUse {
            via: text.to_owned(),
            prefix,
            line: f.line,
            path: f.path.clone(),
        });
        Some(via)
    });
    Some(StaticRoute {
        prefix: prefix?,
        via: via?,
    })
}

impl Facts {
    fn check_routes(&self, cx: &mut Cx) {
        for at in &self.vias {
            match at.via.as_str() {
                "blackhole" => {}
                "host" if self.has_host => {}
                "host" => cx.err(at.line, &at.path, "via = \"host\" needs a [host] section"),
                name => match self.tunnel_v4_only_mtu.get(name) {
                    None if !self.tunnel_names.contains_key(name) => {
                        // Quote the text only if it could be a tunnel name: anything
                        // else may be a key pasted into the wrong place.
                        let quoted = if tunnel_name_problem(name).is_none() {
                            format!("no tunnel named \"{name}\"")
                        } else {
                            "no tunnel has that name".to_owned()
                        };
                        let mut why =
                            format!("{quoted}; via is a tunnel name, \"host\" or \"blackhole\"");
                        let names: Vec<&str> =
                            self.tunnel_names.keys().map(String::as_str).collect();
                        if let Some(best) = super::suggest::did_you_mean(name, &names) {
                            why = format!("{quoted}; did you mean \"{best}\"?");
                        }
                        cx.err(at.line, &at.path, why);
                    }
                    Some(true) if at.prefix.is_some_and(|p| p.is_ipv6()) => cx.err(
                        at.line,
                        &at.path,
                        format!(
                            "tunnel \"{name}\" has an MTU below {MIN_MTU_V6} and cannot carry IPv6"
                        ),
                    ),
                    _ => {}
                },
            }
        }
    }
}

/// `[control]`: the API's Unix socket, optional TCP listener (TLS with client
/// certificates, or plaintext on loopback only), and `persist`.
fn control(cx: &mut Cx, s: &Section, dir: &Path) -> Option<ControlConfig> {
    s.check_keys(cx, CONTROL_KEYS);
    let mut ok = true;
    let mut path_of = |cx: &mut Cx, key: &str| -> Option<PathBuf> {
        let f = s.get(cx, key)?;
        match f.str(cx) {
            Some("") => {
                cx.err(f.line, &f.path, "empty path");
                ok = false;
                None
            }
            Some(text) => Some(resolve(dir, text)),
            None => {
                ok = false;
                None
            }
        }
    };
    let socket = path_of(cx, "socket").unwrap_or_else(|| DEFAULT_CONTROL_SOCKET.into());
    let cert = path_of(cx, "tls-cert");
    let key = path_of(cx, "tls-key");
    let client_ca = path_of(cx, "tls-client-ca");
    let flag = |cx: &mut Cx, key: &str| match s.get(cx, key) {
        Some(f) => f.bool(cx),
        None => Some(false),
    };
    let (plaintext, persist) = (flag(cx, "plaintext"), flag(cx, "persist"));
    let listen_f = s.get(cx, "listen");
    let listen = match &listen_f {
        Some(f) => match f.str(cx).map(str::parse::<SocketAddr>) {
            Some(Ok(a)) => Some(Some(a)),
            Some(Err(_)) => {
                cx.err(
                    f.line,
                    &f.path,
                    "expected IP:port, like 127.0.0.1:9771 or [::1]:9771",
                );
                None
            }
            None => None,
        },
        None => Some(None),
    };
    let tls = match (cert, key, client_ca) {
        (None, None, None) => None,
        (Some(cert), Some(key), Some(client_ca)) => Some(ControlTls {
            cert,
            key,
            client_ca,
        }),
        _ => {
            cx.err(
                s.line,
                &s.child("tls-cert"),
                "TLS needs all three of tls-cert, tls-key and tls-client-ca",
            );
            ok = false;
            None
        }
    };
    if let (Some(Some(addr)), Some(f)) = (listen, &listen_f) {
        if plaintext == Some(true) {
            if tls.is_some() {
                cx.err(
                    f.line,
                    &f.path,
                    "set either plaintext = true or tls-*, not both",
                );
                ok = false;
            } else if !addr.ip().is_loopback() {
                cx.err(
                    f.line,
                    &f.path,
                    "plaintext is allowed on a loopback address only; use tls-cert, tls-key and tls-client-ca",
                );
                ok = false;
            }
        } else if tls.is_none() && ok {
            cx.err(
                f.line,
                &f.path,
                "a TCP listener needs tls-cert, tls-key and tls-client-ca (or plaintext = true on loopback)",
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    Some(ControlConfig {
        socket,
        listen: listen?,
        tls,
        plaintext: plaintext?,
        persist: persist?,
    })
}
