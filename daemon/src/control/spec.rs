//! API input -> a validated [`Config`], by the same validation as a config file.
//!
//! A typed `Config` message is written out as TOML (in memory only) and parsed by
//! [`config::parse_str`], so the API and the file can never disagree about what is valid,
//! and problems carry the file's field paths (`tunnel[2].endpoint`). Secrets left out
//! (or sent back as `redacted`) keep the running key: a client can take `GetConfig`,
//! change something, and apply it. TOML input may likewise say `"(redacted)"` where
//! `wgrctl config show` printed it. What the message has no fields for (`[forwarding]`,
//! `[nat]`, `[ospf]` and a tunnel's `ospf`, `[bgp]`, `[[policy]]`, `[[prefix-list]]`) is
//! carried over from the running config unchanged.
//!
//! The intermediate text holds keys; it is never logged, stored or put in a message
//! (the loader's messages never quote values).

use crate::config::save::REDACTED;
use crate::config::{self, Config, ConfigError, ControlConfig};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::path::{Path, PathBuf};
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};
use wgrd_proto::v1 as pb;

/// Where API input is said to come from when the daemon runs without a config file.
pub(crate) const API_SOURCE: &str = "api";

/// A problem with input, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub field: String,
    pub why: String,
    pub line: Option<usize>,
}

impl Problem {
    pub(crate) fn new(field: impl Into<String>, why: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            why: why.into(),
            line: None,
        }
    }
}

fn problems(errors: Vec<ConfigError>, keep_lines: bool) -> Vec<Problem> {
    errors
        .into_iter()
        .map(|e| Problem {
            field: e.field,
            why: e.why,
            line: if keep_lines { e.line } else { None },
        })
        .collect()
}

/// The path validation anchors relative key files to.
fn source_path(config_file: Option<&Path>) -> PathBuf {
    config_file
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from(API_SOURCE))
}

/// Validate TOML text (with `"(redacted)"` keys taken from `current`).
pub(crate) fn from_toml(
    text: &str,
    current: &Config,
    config_file: Option<&Path>,
) -> Result<Config, Vec<Problem>> {
    let text = fill_redacted(text, current).unwrap_or_else(|| text.to_owned());
    config::parse_str(&text, &source_path(config_file)).map_err(|e| problems(e.0, true))
}

/// Validate a typed config.
pub(crate) fn from_message(
    c: &pb::Config,
    current: &Config,
    config_file: Option<&Path>,
) -> Result<Config, Vec<Problem>> {
    let text = to_toml(c, current);
    config::parse_str(&text, &source_path(config_file)).map_err(|e| problems(e.0, false))
}

/// Replace `"(redacted)"` keys in a TOML text by the running ones. None: not TOML (the
/// loader reports why).
fn fill_redacted(text: &str, current: &Config) -> Option<String> {
    let mut doc: DocumentMut = text.parse().ok()?;
    let is_redacted = |t: &Table, key: &str| t.get(key).and_then(Item::as_str) == Some(REDACTED);
    if let Some(Item::Table(r)) = doc.get_mut("router") {
        if is_redacted(r, "private-key") {
            r.remove("private-key");
            put_key(r, "private-key", &current_router_key(current));
        }
    }
    if let Some(Item::ArrayOfTables(tunnels)) = doc.get_mut("tunnel") {
        for t in tunnels.iter_mut() {
            if !is_redacted(t, "preshared-key") {
                continue;
            }
            t.remove("preshared-key");
            let name = t.get("name").and_then(Item::as_str).unwrap_or_default();
            if let Some(k) = current_psk(current, name) {
                put_key(t, "preshared-key", &k);
            }
        }
    }
    Some(doc.to_string())
}

/// A key to write: inline base64 or a file path.
enum Key {
    Inline(String),
    File(String),
}

fn current_router_key(c: &Config) -> Key {
    match &c.router.private_key_file {
        Some(f) => Key::File(f.display().to_string()),
        None => Key::Inline(c.router.private_key.to_base64()),
    }
}

fn current_psk(c: &Config, tunnel: &str) -> Option<Key> {
    let t = c.tunnel(tunnel)?;
    let k = t.preshared_key.as_ref()?;
    Some(match &t.preshared_key_file {
        Some(f) => Key::File(f.display().to_string()),
        None => Key::Inline(BASE64.encode(k.0)),
    })
}

/// `inline` = base64, or `inline-file` = path.
fn put_key(t: &mut Table, inline: &str, key: &Key) {
    match key {
        Key::Inline(k) => t.insert(inline, value(k.as_str())),
        Key::File(f) => t.insert(&format!("{inline}-file"), value(f.as_str())),
    };
}

/// What a Secret means for a key, given the running one.
fn resolve_secret(s: Option<&pb::Secret>, current: Option<Key>) -> Option<Key> {
    use pb::secret::Source;
    match s.and_then(|s| s.source.as_ref()) {
        None | Some(Source::Redacted(_)) => current,
        Some(Source::Value(v)) => Some(Key::Inline(v.clone())),
        Some(Source::File(f)) => Some(Key::File(f.clone())),
        Some(Source::None(_)) => None,
    }
}

fn port(n: u32) -> i64 {
    i64::from(n)
}

fn strings(items: &[String]) -> Array {
    items.iter().map(String::as_str).collect()
}

/// The TOML text a typed config stands for. Values are written as given; the loader
/// judges them.
pub(crate) fn to_toml(c: &pb::Config, current: &Config) -> String {
    let mut doc = DocumentMut::new();
    let mut router = Table::new();
    let r = c.router.clone().unwrap_or_default();
    if !r.router_id.is_empty() {
        router.insert("router-id", value(r.router_id.as_str()));
    }
    if let Some(k) = resolve_secret(r.private_key.as_ref(), Some(current_router_key(current))) {
        put_key(&mut router, "private-key", &k);
    }
    if let Some(p) = r.listen_port {
        router.insert("listen-port", value(port(p)));
    }
    if let Some(a) = &r.listen_address {
        router.insert("listen-address", value(a.as_str()));
    }
    doc.insert("router", Item::Table(router));

    if let Some(h) = &c.host {
        let mut host = Table::new();
        if !h.interface.is_empty() {
            host.insert("interface", value(h.interface.as_str()));
        }
        host.insert("addresses", value(strings(&h.addresses)));
        host.insert("export-routes", value(h.export_routes));
        if let Some(m) = h.mtu {
            host.insert("mtu", value(port(m)));
        }
        doc.insert("host", Item::Table(host));
    }

    let mut tunnels = ArrayOfTables::new();
    for t in &c.tunnels {
        let mut tt = Table::new();
        tt.insert("name", value(t.name.as_str()));
        tt.insert("peer-public-key", value(t.peer_public_key.as_str()));
        if let Some(k) = resolve_secret(t.preshared_key.as_ref(), current_psk(current, &t.name)) {
            put_key(&mut tt, "preshared-key", &k);
        }
        if let Some(e) = &t.endpoint {
            tt.insert("endpoint", value(e.as_str()));
        }
        if let Some(k) = t.persistent_keepalive {
            tt.insert("persistent-keepalive", value(port(k)));
        }
        tt.insert("addresses", value(strings(&t.addresses)));
        if let Some(m) = t.mtu {
            tt.insert("mtu", value(port(m)));
        }
        if let Some(p) = t.listen_port {
            tt.insert("listen-port", value(port(p)));
        }
        tunnels.push(tt);
    }
    if !tunnels.is_empty() {
        doc.insert("tunnel", Item::ArrayOfTables(tunnels));
    }

    let mut routes = ArrayOfTables::new();
    for r in &c.routes {
        use pb::static_route::Via;
        let mut rt = Table::new();
        rt.insert("prefix", value(r.prefix.as_str()));
        match &r.via {
            Some(Via::Tunnel(name)) => rt.insert("via", value(name.as_str())),
            Some(Via::Host(_)) => rt.insert("via", value("host")),
            Some(Via::Blackhole(_)) => rt.insert("via", value("blackhole")),
            None => None,
        };
        routes.push(rt);
    }
    if !routes.is_empty() {
        doc.insert("route", Item::ArrayOfTables(routes));
    }

    let control = c
        .control
        .clone()
        .unwrap_or_else(|| super::convert::control(&current.control));
    let mut ct = Table::new();
    if !control.socket.is_empty() {
        ct.insert("socket", value(control.socket.as_str()));
    }
    if let Some(l) = &control.listen {
        ct.insert("listen", value(l.as_str()));
    }
    for (key, v) in [
        ("tls-cert", &control.tls_cert),
        ("tls-key", &control.tls_key),
        ("tls-client-ca", &control.tls_client_ca),
    ] {
        if !v.is_empty() {
            ct.insert(key, value(v.as_str()));
        }
    }
    ct.insert("plaintext", value(control.plaintext));
    ct.insert("persist", value(control.persist));
    doc.insert("control", Item::Table(ct));
    // The message has no [forwarding] / [nat] / [ospf] / [bgp] / [[policy]] /
    // [[prefix-list]] fields, nor a tunnel's ospf: the running ones carry over.
    crate::config::save::update_nat(&mut doc, current);
    crate::config::save::carry_over_routing(&mut doc, current);
    doc.to_string()
}

/// `[control]` changes the running daemon cannot make (the listeners are open already).
pub(crate) fn control_restart_problems(old: &ControlConfig, new: &ControlConfig) -> Vec<Problem> {
    let why = "cannot change while wgrd runs; restart wgrd to change it";
    let mut out = Vec::new();
    if old.socket != new.socket {
        out.push(Problem::new("control.socket", why));
    }
    if old.listen != new.listen {
        out.push(Problem::new("control.listen", why));
    }
    if old.tls != new.tls {
        out.push(Problem::new("control.tls-cert", why));
    }
    if old.plaintext != new.plaintext {
        out.push(Problem::new("control.plaintext", why));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use std::os::unix::fs::PermissionsExt as _;

    /// A typed message has no OSPF, BGP, policy or prefix-list fields: what runs is kept,
    /// also when a tunnel changes.
    #[test]
    fn typed_config_keeps_the_running_ospf_bgp_and_policies() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("bgp.key");
        std::fs::write(&password, "not-in-any-message\n").unwrap();
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
        let peer = || PrivateKey::generate().public_key().to_base64();
        let text = format!(
            "[router]\nrouter-id = \"10.255.0.1\"\nprivate-key = \"{}\"\n\n\
             [[tunnel]]\nname = \"to-r2\"\npeer-public-key = \"{}\"\n\
             addresses = [\"169.254.0.0/31\"]\nospf = {{ cost = 7 }}\n\n\
             [[tunnel]]\nname = \"spare\"\npeer-public-key = \"{}\"\n\
             addresses = [\"169.254.2.0/31\"]\n\n\
             [ospf]\nprofile = \"fast\"\n\n\
             [bgp]\nasn = 65001\n\n\
             [[bgp.neighbor]]\ntunnel = \"to-r2\"\nremote-as = \"internal\"\nimport = \"in\"\n\n\
             [[bgp.neighbor]]\naddress = \"192.0.2.1\"\nremote-as = 65002\n\
             password-file = \"bgp.key\"\nallow-without-policy = true\n\n\
             [[prefix-list]]\nname = \"bogons\"\nentries = [\"192.168.0.0/16 le 32\"]\n\n\
             [[policy]]\nname = \"in\"\ndefault = \"accept\"\n\
             rules = [{{ match = {{ community = [\"no-export\"] }}, action = \"reject\" }},\n\
             {{ match = {{ prefix-list = \"bogons\" }}, action = \"reject\" }}]\n",
            PrivateKey::generate().to_base64(),
            peer(),
            peer()
        );
        let file = dir.path().join("r1.toml");
        let current = config::parse_str(&text, &file).unwrap();
        assert!(current.bgp.is_some() && current.ospf.is_some());

        let mut message = super::super::convert::config_with_keys(&current);
        let same = from_message(&message, &current, Some(&file)).unwrap();
        assert_eq!(same, current);
        // The intermediate TOML holds the password's file, never the password.
        assert!(!to_toml(&message, &current).contains("not-in-any-message"));

        message.tunnels[1].mtu = Some(1300);
        let changed = from_message(&message, &current, Some(&file)).unwrap();
        assert_eq!(changed.tunnels[1].mtu, 1300);
        assert_eq!(changed.bgp, current.bgp);
        assert_eq!(changed.policies, current.policies);
        assert_eq!(changed.prefix_lists, current.prefix_lists);
        assert_eq!(changed.ospf, current.ospf);
        assert_eq!(changed.tunnels[0].ospf, current.tunnels[0].ospf);
    }
}
