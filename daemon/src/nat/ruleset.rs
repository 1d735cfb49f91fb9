//! Config -> the text of wgrd's nftables table, and the batches that install or remove it.
//!
//! Pure: no commands run here. Every rule carries a comment naming the config entry it
//! came from (`masquerade[1]`, `port-forward[2]`), which is how counters read back from
//! the kernel are matched to the config.

use super::{NatError, TABLE};
use crate::config::{Config, NatProtocol, NatSource, RouteVia};
use ipnetwork::IpNetwork;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// The table wgrd wants for `config`, as `nft -f` input (without the replace wrapper);
/// `None` when the config has no NAT rule. Notes say what was left out and why.
pub fn render(config: &Config) -> Result<Option<Rendered>, NatError> {
    let nat = &config.nat;
    if nat.is_empty() {
        return Ok(None);
    }
    let host = config.host.as_ref().ok_or(NatError::NoHost)?;
    let tun = quote(&host.interface)?;
    let mut pre = Vec::new();
    let mut post = Vec::new();
    let mut notes = Vec::new();

    for (i, m) in nat.masquerade.iter().enumerate() {
        let name = format!("masquerade[{}]", i + 1);
        let out = quote(&m.out_interface)?;
        for from in &m.from {
            match from {
                NatSource::AllTunnels => post.push(format!(
                    "iifname {tun} oifname {out} counter masquerade comment \"{name}\""
                )),
                NatSource::Prefix(p) => post.push(format!(
                    "{} saddr {p} oifname {out} counter masquerade comment \"{name}\"",
                    family(p)
                )),
                NatSource::Tunnel(t) => {
                    let nets = tunnel_prefixes(config, t);
                    if nets.is_empty() {
                        notes.push(format!(
                            "{name}: tunnel:{t} has no addresses and no static routes, so \
                             nothing is masqueraded for it"
                        ));
                    }
                    for n in nets {
                        post.push(format!(
                            "iifname {tun} {} saddr {n} oifname {out} counter masquerade comment \"{name}\"",
                            family(&n)
                        ));
                    }
                }
            }
        }
    }

    for (i, p) in nat.port_forwards.iter().enumerate() {
        let name = format!("port-forward[{}]", i + 1);
        let inn = quote(&p.in_interface)?;
        let proto = p.protocol.name();
        let (fam, to) = match p.to {
            SocketAddr::V4(a) => ("ip", a.to_string()),
            SocketAddr::V6(a) => ("ip6", a.to_string()),
        };
        let nfproto = if fam == "ip" { "ipv4" } else { "ipv6" };
        pre.push(format!(
            "iifname {inn} meta nfproto {nfproto} {proto} dport {} counter dnat {fam} to {to} comment \"{name}\"",
            p.port
        ));
        if p.masquerade {
            post.push(format!(
                "iifname {inn} oifname {tun} ct status dnat {fam} daddr {} {proto} dport {} counter masquerade comment \"{name}\"",
                p.to.ip(),
                p.to.port()
            ));
        }
    }

    let mut text = format!("table {TABLE} {{\n");
    for (chain, hook, priority, rules) in [
        ("prerouting", "prerouting", "dstnat", &pre),
        ("postrouting", "postrouting", "srcnat", &post),
    ] {
        let _ = writeln!(text, "\tchain {chain} {{");
        let _ = writeln!(
            text,
            "\t\ttype nat hook {hook} priority {priority}; policy accept;"
        );
        for r in rules {
            let _ = writeln!(text, "\t\t{r}");
        }
        let _ = writeln!(text, "\t}}");
    }
    text.push_str("}\n");
    Ok(Some(Rendered { table: text, notes }))
}

/// What [`render`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `table inet wgrd { ... }`.
    pub table: String,
    /// Things the operator should know (rules that match nothing).
    pub notes: Vec<String>,
}

/// One `nft -f` batch that makes the table exactly `table`, atomically: declaring the
/// table first makes the delete valid whether or not it exists, and the kernel commits
/// the delete and the new contents as one transaction (all or nothing).
pub fn replace_batch(table: &str) -> String {
    format!("{}{table}", remove_batch())
}

/// One `nft -f` batch that removes wgrd's table if it exists, and nothing else.
pub fn remove_batch() -> String {
    format!("table {TABLE}\ndelete table {TABLE}\n")
}

/// The source prefixes of `tunnel:NAME`: its own subnets and the static routes via it.
fn tunnel_prefixes(config: &Config, name: &str) -> Vec<IpNetwork> {
    let mut nets: Vec<IpNetwork> = Vec::new();
    if let Some(t) = config.tunnel(name) {
        for a in &t.addresses {
            if let Ok(n) = IpNetwork::new(a.network(), a.prefix()) {
                if !nets.contains(&n) {
                    nets.push(n);
                }
            }
        }
    }
    for r in &config.routes {
        if r.via == RouteVia::Tunnel(name.to_owned()) && !nets.contains(&r.prefix) {
            nets.push(r.prefix);
        }
    }
    nets
}

fn family(n: &IpNetwork) -> &'static str {
    if n.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

/// An interface name as an nftables string literal.
fn quote(name: &str) -> Result<String, NatError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_whitespace() || c.is_control())
    {
        return Err(NatError::BadName(name.to_owned()));
    }
    Ok(format!("\"{name}\""))
}

/// For the status: what each rule of the config does, in words.
pub fn describe(config: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, m) in config.nat.masquerade.iter().enumerate() {
        let from: Vec<String> = m.from.iter().map(|f| f.to_string()).collect();
        out.push((
            format!("masquerade[{}]", i + 1),
            format!(
                "from {} out of {} as {}'s address",
                from.join(", "),
                m.out_interface,
                m.out_interface
            ),
        ));
    }
    for (i, p) in config.nat.port_forwards.iter().enumerate() {
        let proto = match p.protocol {
            NatProtocol::Tcp => "tcp",
            NatProtocol::Udp => "udp",
        };
        out.push((
            format!("port-forward[{}]", i + 1),
            format!(
                "{proto} port {} on {} to {}{}",
                p.port,
                p.in_interface,
                p.to,
                if p.masquerade { ", masqueraded" } else { "" }
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::keys::PrivateKey;
    use std::path::Path;

    fn config(nat: &str) -> Config {
        let key = PrivateKey::generate().to_base64();
        let peer = PrivateKey::generate().public_key().to_base64();
        let text = format!(
            r#"
[router]
router-id = "10.255.0.1"
private-key = "{key}"

[host]
interface = "wgrd0"
addresses = ["10.9.0.1/24", "fd09::1/64"]

[[tunnel]]
name = "to-ep"
peer-public-key = "{peer}"
addresses = ["169.254.0.0/31"]

[[route]]
prefix = "10.0.0.0/24"
via = "to-ep"

[[route]]
prefix = "fd00::/64"
via = "to-ep"
{nat}"#
        );
        parse_str(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn no_nat_renders_nothing() {
        assert_eq!(render(&config("")).unwrap(), None);
    }

    #[test]
    fn masquerade_from_every_kind_of_source() {
        let c = config(
            r#"
[[nat.masquerade]]
from = ["tunnel:*", "tunnel:to-ep", "192.0.2.0/24", "2001:db8::/32"]
out-interface = "eth1"
"#,
        );
        let r = render(&c).unwrap().unwrap();
        let expected = "table inet wgrd {
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tiifname \"wgrd0\" oifname \"eth1\" counter masquerade comment \"masquerade[1]\"
\t\tiifname \"wgrd0\" ip saddr 169.254.0.0/31 oifname \"eth1\" counter masquerade comment \"masquerade[1]\"
\t\tiifname \"wgrd0\" ip saddr 10.0.0.0/24 oifname \"eth1\" counter masquerade comment \"masquerade[1]\"
\t\tiifname \"wgrd0\" ip6 saddr fd00::/64 oifname \"eth1\" counter masquerade comment \"masquerade[1]\"
\t\tip saddr 192.0.2.0/24 oifname \"eth1\" counter masquerade comment \"masquerade[1]\"
\t\tip6 saddr 2001:db8::/32 oifname \"eth1\" counter masquerade comment \"masquerade[1]\"
\t}
}
";
        assert_eq!(r.table, expected);
        assert!(r.notes.is_empty());
    }

    #[test]
    fn port_forwards_dnat_and_masquerade_toward_wgrd() {
        let c = config(
            r#"
[[nat.port-forward]]
in-interface = "eth1"
protocol = "tcp"
port = 8080
to = "10.0.0.1:80"

[[nat.port-forward]]
in-interface = "eth1"
protocol = "udp"
port = 5353
to = "[fd00::1]:53"
masquerade = false
"#,
        );
        let r = render(&c).unwrap().unwrap();
        assert!(r.table.contains(
            "iifname \"eth1\" meta nfproto ipv4 tcp dport 8080 counter dnat ip to 10.0.0.1:80 comment \"port-forward[1]\""
        ), "{}", r.table);
        assert!(r.table.contains(
            "iifname \"eth1\" oifname \"wgrd0\" ct status dnat ip daddr 10.0.0.1 tcp dport 80 counter masquerade comment \"port-forward[1]\""
        ), "{}", r.table);
        assert!(r.table.contains(
            "iifname \"eth1\" meta nfproto ipv6 udp dport 5353 counter dnat ip6 to [fd00::1]:53 comment \"port-forward[2]\""
        ), "{}", r.table);
        assert_eq!(r.table.matches("masquerade comment").count(), 1);
    }

    #[test]
    fn batches_replace_and_remove_only_our_table() {
        let b = replace_batch("table inet wgrd {\n}\n");
        assert_eq!(
            b,
            "table inet wgrd\ndelete table inet wgrd\ntable inet wgrd {\n}\n"
        );
        assert_eq!(remove_batch(), "table inet wgrd\ndelete table inet wgrd\n");
    }

    #[test]
    fn names_that_would_break_the_syntax_are_refused() {
        assert!(quote("eth1").is_ok());
        for bad in ["", "a\"b", "a b", "a\\b", "a\nb"] {
            assert!(matches!(quote(bad), Err(NatError::BadName(_))), "{bad:?}");
        }
    }

    #[test]
    fn descriptions_name_each_entry() {
        let c = config(
            r#"
[[nat.masquerade]]
out-interface = "eth1"

[[nat.port-forward]]
in-interface = "eth1"
protocol = "tcp"
port = 8080
to = "10.0.0.1:80"
"#,
        );
        let d = describe(&c);
        assert_eq!(d[0].0, "masquerade[1]");
        assert_eq!(d[0].1, "from tunnel:* out of eth1 as eth1's address");
        assert_eq!(d[1].1, "tcp port 8080 on eth1 to 10.0.0.1:80, masqueraded");
    }
}
