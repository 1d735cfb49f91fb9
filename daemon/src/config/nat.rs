//! `[forwarding]` and `[nat]` (with `[[nat.masquerade]]` and `[[nat.port-forward]]`):
//! TOML -> model with validation, in the style of [`super::load`] (every problem
//! reported as `FILE:LINE: field: why`). The rules themselves are made by [`crate::nat`];
//! this file only checks that they can be made.

use super::load::{ifname_problem, tables_of};
use super::model::*;
use super::source::{at_line, Cx, Section};
use ipnetwork::IpNetwork;
use std::collections::HashMap;
use std::net::SocketAddr;

const FORWARDING_KEYS: &[&str] = &["mss-clamp"];
const NAT_KEYS: &[&str] = &["set-sysctls", "masquerade", "port-forward"];
const MASQUERADE_KEYS: &[&str] = &["from", "out-interface"];
const PORT_FORWARD_KEYS: &[&str] = &["in-interface", "protocol", "port", "to", "masquerade"];

/// What the NAT checks need from the rest of the file.
pub(super) struct Known<'a> {
    /// Every tunnel name parsed.
    pub tunnel_names: Vec<&'a str>,
    /// The host TUN's name, or None without a `[host]` section.
    pub host_interface: Option<&'a str>,
}

/// `[forwarding]`.
pub(super) fn forwarding(cx: &mut Cx, s: &Section) -> Option<ForwardingConfig> {
    s.check_keys(cx, FORWARDING_KEYS);
    let mss_clamp = match s.get(cx, "mss-clamp") {
        Some(f) => f.bool(cx)?,
        None => true,
    };
    Some(ForwardingConfig { mss_clamp })
}

/// `[nat]`.
pub(super) fn nat(cx: &mut Cx, s: &Section, known: &Known) -> Option<NatConfig> {
    s.check_keys(cx, NAT_KEYS);
    let mut ok = true;
    let set_sysctls = match s.get(cx, "set-sysctls") {
        Some(f) => f.bool(cx),
        None => Some(false),
    };
    let mut masquerade = Vec::new();
    if let Some(f) = s.get(cx, "masquerade") {
        for m in tables_of(cx, &f, "[[nat.masquerade]]") {
            match masquerade_rule(cx, &m, known) {
                Some(rule) => masquerade.push(rule),
                None => ok = false,
            }
        }
    }
    let mut port_forwards = Vec::new();
    // (in-interface, protocol, port, IPv6?) -> where it was first forwarded.
    let mut seen: HashMap<(String, NatProtocol, u16, bool), String> = HashMap::new();
    if let Some(f) = s.get(cx, "port-forward") {
        for p in tables_of(cx, &f, "[[nat.port-forward]]") {
            let Some(rule) = port_forward(cx, &p, known) else {
                ok = false;
                continue;
            };
            let key = (
                rule.in_interface.clone(),
                rule.protocol,
                rule.port,
                rule.to.is_ipv6(),
            );
            if let Some(first) = seen.get(&key) {
                cx.err(
                    p.line,
                    &p.child("port"),
                    format!(
                        "{} port {} on {} is already forwarded by {first}",
                        rule.protocol.name(),
                        rule.port,
                        rule.in_interface
                    ),
                );
                ok = false;
                continue;
            }
            seen.insert(key, format!("{}{}", p.path, at_line(p.line)));
            port_forwards.push(rule);
        }
    }
    let config = NatConfig {
        set_sysctls: set_sysctls?,
        masquerade,
        port_forwards,
    };
    if !config.is_empty() && known.host_interface.is_none() {
        cx.err(
            s.line,
            &s.path,
            "NAT needs a [host] section: the kernel translates traffic between its LAN \
             interfaces and wgrd's TUN",
        );
        return None;
    }
    ok.then_some(config)
}

/// An interface of the host that is not wgrd's own TUN.
fn lan_interface(cx: &mut Cx, s: &Section, key: &str, known: &Known) -> Option<String> {
    let f = s.require(cx, key)?;
    let name = f.str(cx)?;
    if let Some(why) = ifname_problem(name) {
        cx.err(f.line, &f.path, why);
        return None;
    }
    if name.contains(['"', '\\']) {
        cx.err(
            f.line,
            &f.path,
            "interface name cannot contain '\"' or '\\' here (nftables could not name it)",
        );
        return None;
    }
    if known.host_interface == Some(name) {
        cx.err(
            f.line,
            &f.path,
            format!("{name} is wgrd's own TUN ([host] interface); name the LAN interface"),
        );
        return None;
    }
    Some(name.to_owned())
}

fn masquerade_rule(cx: &mut Cx, s: &Section, known: &Known) -> Option<Masquerade> {
    s.check_keys(cx, MASQUERADE_KEYS);
    let from = match s.get(cx, "from") {
        None => Some(vec![NatSource::AllTunnels]),
        Some(f) => f.str_array(cx).and_then(|elems| {
            if elems.is_empty() {
                cx.err(
                    f.line,
                    &f.path,
                    "empty; omit from (or write [\"tunnel:*\"]) for traffic from every tunnel",
                );
                return None;
            }
            let mut out = Vec::new();
            let mut ok = true;
            for e in elems {
                match nat_source(e.text, known) {
                    Ok(src) if out.contains(&src) => {
                        cx.err(e.line, &e.path, "listed twice");
                        ok = false;
                    }
                    Ok(src) => out.push(src),
                    Err(why) => {
                        cx.err(e.line, &e.path, why);
                        ok = false;
                    }
                }
            }
            ok.then_some(out)
        }),
    };
    let out_interface = lan_interface(cx, s, "out-interface", known);
    Some(Masquerade {
        from: from?,
        out_interface: out_interface?,
    })
}

/// `tunnel:*`, `tunnel:NAME` or a prefix.
fn nat_source(text: &str, known: &Known) -> Result<NatSource, String> {
    if let Some(name) = text.strip_prefix("tunnel:") {
        if name == "*" {
            return Ok(NatSource::AllTunnels);
        }
        if known.tunnel_names.contains(&name) {
            return Ok(NatSource::Tunnel(name.to_owned()));
        }
        let plain = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        let quoted = if plain && !name.is_empty() && name.len() <= 15 {
            format!("no tunnel named \"{name}\"")
        } else {
            "no tunnel has that name".to_owned()
        };
        return Err(
            match super::suggest::did_you_mean(name, &known.tunnel_names) {
                Some(best) => format!("{quoted}; did you mean \"tunnel:{best}\"?"),
                None => format!("{quoted}; use \"tunnel:*\", \"tunnel:NAME\" or a prefix"),
            },
        );
    }
    let net: IpNetwork = text.parse().map_err(|_| {
        "expected \"tunnel:*\", \"tunnel:NAME\" or a prefix like 10.0.0.0/24".to_owned()
    })?;
    let normal = IpNetwork::new(net.network(), net.prefix()).map_err(|e| e.to_string())?;
    if normal.ip() != net.ip() {
        return Err(format!("host bits are set; the prefix is {normal}"));
    }
    Ok(NatSource::Prefix(net))
}

fn port_forward(cx: &mut Cx, s: &Section, known: &Known) -> Option<PortForward> {
    s.check_keys(cx, PORT_FORWARD_KEYS);
    let in_interface = lan_interface(cx, s, "in-interface", known);
    let protocol = s.require(cx, "protocol").and_then(|f| match f.str(cx)? {
        "tcp" => Some(NatProtocol::Tcp),
        "udp" => Some(NatProtocol::Udp),
        _ => {
            cx.err(f.line, &f.path, "expected \"tcp\" or \"udp\"");
            None
        }
    });
    let port = s
        .require(cx, "port")
        .and_then(|f| f.int(cx, 1, 65535).map(|n| n as u16));
    let to = s.require(cx, "to").and_then(|f| {
        let text = f.str(cx)?;
        let Ok(addr) = text.parse::<SocketAddr>() else {
            cx.err(
                f.line,
                &f.path,
                "expected IP:port or [IPv6]:port, like 10.0.0.1:80",
            );
            return None;
        };
        let ip = addr.ip();
        if addr.port() == 0 {
            cx.err(f.line, &f.path, "the port must be 1..=65535");
            None
        } else if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
            cx.err(
                f.line,
                &f.path,
                "must be a unicast address (not unspecified, loopback or multicast)",
            );
            None
        } else {
            Some(addr)
        }
    });
    let masquerade = match s.get(cx, "masquerade") {
        Some(f) => f.bool(cx),
        None => Some(true),
    };
    Some(PortForward {
        in_interface: in_interface?,
        protocol: protocol?,
        port: port?,
        to: to?,
        masquerade: masquerade?,
    })
}
