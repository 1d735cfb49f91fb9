//! From the validated config (`[bgp]`, `[[bgp.neighbor]]`, `[[policy]]`, see
//! `config::bgp`) to what the BGP layers take: [`Policy`], [`PeerConfig`],
//! [`DecisionConfig`], the originated routes, and the whole [`InstanceConfig`]. Pure: no
//! I/O, no validation (the loader did it; a reference that cannot be resolved here is a
//! bug upstream and yields `None` or an empty value, never a panic).

use super::attr::{AsPath, Family, LargeCommunity, Origin, PathAttrs};
use super::decision::DecisionConfig;
use super::export::LocalAddrs;
use super::fsm::{PeerConfig, PrefixLimit, PrefixLimitAction};
use super::instance::{InstanceConfig, NeighborConfig};
use super::policy::{Match, Policy, PrefixMatch, Set, Term, Verdict};
use crate::config::bgp::derive_peer_address;
use crate::config::{
    BgpConfig, BgpNeighborConfig, Config, LargeCommunityValue, PolicyAction, PolicyConfig,
    PolicyFamily, PolicyMatch, PrefixLimitOnExceed,
};
use ipnetwork::IpNetwork;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

fn verdict(a: PolicyAction) -> Verdict {
    match a {
        PolicyAction::Accept => Verdict::Accept,
        PolicyAction::Reject => Verdict::Reject,
    }
}

fn large(c: LargeCommunityValue) -> LargeCommunity {
    LargeCommunity {
        global: c.0,
        local1: c.1,
        local2: c.2,
    }
}

/// The conditions of one `match` table, each a [`Match`] (a term needs all of them).
/// `not = { ... }` becomes one `Not` per inner condition: none of them may hold.
fn matches(m: &PolicyMatch) -> Vec<Match> {
    let mut out = Vec::new();
    if !m.prefix_list.is_empty() {
        out.push(Match::PrefixList(
            m.prefix_list
                .iter()
                .map(|e| PrefixMatch {
                    prefix: e.prefix,
                    ge: e.ge,
                    le: e.le,
                })
                .collect(),
        ));
    }
    if let Some(f) = m.family {
        out.push(Match::Family(match f {
            PolicyFamily::Ipv4 => Family::Ipv4Unicast,
            PolicyFamily::Ipv6 => Family::Ipv6Unicast,
        }));
    }
    out.extend(m.as_path_contains.iter().map(|&a| Match::AsPathContains(a)));
    out.extend(m.neighbor_as.map(Match::NeighborAs));
    out.extend(m.origin_as.map(Match::OriginAs));
    out.extend(
        m.as_path_max_len
            .map(|n| Match::AsPathLenAtMost(n as usize)),
    );
    out.extend(m.community.iter().map(|c| Match::Community(c.0)));
    out.extend(
        m.large_community
            .iter()
            .map(|&c| Match::LargeCommunity(large(c))),
    );
    if let Some(not) = &m.not {
        out.extend(matches(not).into_iter().map(|m| Match::Not(Box::new(m))));
    }
    out
}

/// A `[[policy]]` as the policy layer runs it. `local_as` is the AS that `prepend` adds.
pub fn policy(p: &PolicyConfig, local_as: u32) -> Policy {
    let terms = p
        .rules
        .iter()
        .map(|r| {
            let s = &r.set;
            let mut sets = Vec::new();
            sets.extend(s.local_pref.map(Set::LocalPref));
            sets.extend(s.med.map(Set::Med));
            sets.extend(s.prepend.map(|count| Set::Prepend {
                asn: local_as,
                count,
            }));
            // Removals first, so that remove + add of one value leaves it present.
            sets.extend(s.remove_community.iter().map(|c| Set::RemoveCommunity(c.0)));
            sets.extend(s.add_community.iter().map(|c| Set::AddCommunity(c.0)));
            sets.extend(
                s.remove_large_community
                    .iter()
                    .map(|&c| Set::RemoveLargeCommunity(large(c))),
            );
            sets.extend(
                s.add_large_community
                    .iter()
                    .map(|&c| Set::AddLargeCommunity(large(c))),
            );
            Term {
                matches: matches(&r.matches),
                sets,
                verdict: r.action.map(verdict),
            }
        })
        .collect();
    Policy {
        terms,
        default: verdict(p.default),
    }
}

/// The neighbor's address: `address` when given, else the other end of its tunnel's
/// /31, /30 or /127 (the first such address of the tunnel, in order).
pub fn peer_address(config: &Config, n: &BgpNeighborConfig) -> Option<IpAddr> {
    if let Some(a) = n.address {
        return Some(a);
    }
    let tunnel = config.tunnel(n.tunnel.as_deref()?)?;
    derive_peer_address(&tunnel.addresses)
}

/// This side's addresses toward the neighbor, for next-hop-self: `local-address` when
/// given, and for a tunnel neighbor the tunnel's own addresses (first IPv4, first global
/// IPv6, first link-local IPv6). An address neighbor without `local-address` gets what
/// its TCP connection's local address turns out to be (the transport fills it in).
pub fn local_addrs(config: &Config, n: &BgpNeighborConfig) -> LocalAddrs {
    let tunnel = n.tunnel.as_deref().and_then(|t| config.tunnel(t));
    local_addrs_of(
        n.local_address.into_iter().chain(
            tunnel
                .into_iter()
                .flat_map(|t| t.addresses.iter().map(|a| a.ip())),
        ),
    )
}

/// The first IPv4, first global IPv6 and first link-local IPv6 address of `ips`.
pub fn local_addrs_of(ips: impl IntoIterator<Item = IpAddr>) -> LocalAddrs {
    let mut local = LocalAddrs::default();
    for ip in ips {
        match ip {
            IpAddr::V4(v4) => {
                local.v4.get_or_insert(v4);
            }
            IpAddr::V6(v6) if v6.is_unicast_link_local() => {
                local.v6_link_local.get_or_insert(v6);
            }
            IpAddr::V6(v6) => {
                local.v6_global.get_or_insert(v6);
            }
        }
    }
    local
}

/// The session's parameters: hold time (the neighbor's, else `[bgp]`'s), connect retry,
/// passive, prefix limit, both unicast families, RFC 8950 extended next hop offered
/// when the session runs over IPv6 (`peer` is [`peer_address`]), and the RFC 4724
/// graceful restart capability with `[bgp] graceful-restart`'s restart time when enabled.
pub fn neighbor_session(bgp: &BgpConfig, n: &BgpNeighborConfig, peer: IpAddr) -> PeerConfig {
    let mut s = PeerConfig::new(bgp.asn, n.remote_as, bgp.router_id);
    s.hold_time = n.hold_time.unwrap_or(bgp.hold_time);
    s.connect_retry = Duration::from_secs(bgp.connect_retry.into());
    s.passive = n.passive;
    s.families = vec![Family::Ipv4Unicast, Family::Ipv6Unicast];
    s.extended_next_hop = peer.is_ipv6();
    s.prefix_limit = n.prefix_limit.map(|l| PrefixLimit {
        max: l.max,
        action: match l.action {
            PrefixLimitOnExceed::Stop => PrefixLimitAction::Stop,
            PrefixLimitOnExceed::Warn => PrefixLimitAction::Warn,
        },
    });
    let gr = bgp.graceful_restart;
    s.graceful_restart = gr.enabled.then_some(gr.restart_time);
    s
}

/// `max-paths` and `multipath-relax`.
pub fn decision_config(bgp: &BgpConfig) -> DecisionConfig {
    DecisionConfig {
        max_paths: bgp.max_paths.into(),
        multipath_relax: bgp.multipath_relax,
        cluster_id: None,
    }
}

/// `networks` as originated routes: origin IGP, empty AS path (export adds our AS and
/// the next hop).
pub fn originated_networks(bgp: &BgpConfig) -> BTreeMap<IpNetwork, PathAttrs> {
    bgp.networks
        .iter()
        .map(|&net| {
            let attrs = PathAttrs {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::default()),
                ..PathAttrs::default()
            };
            (net, attrs)
        })
        .collect()
}

/// One neighbor for the instance, with its policies resolved by name. `None` when its
/// address cannot be known (the loader refuses such a config).
pub fn neighbor_config(config: &Config, n: &BgpNeighborConfig) -> Option<NeighborConfig> {
    let bgp = config.bgp.as_ref()?;
    let addr = peer_address(config, n)?;
    let named = |name: &Option<String>| {
        let name = name.as_deref()?;
        let p = config.policies.iter().find(|p| p.name == name)?;
        Some(policy(p, bgp.asn))
    };
    Some(NeighborConfig {
        addr,
        session: neighbor_session(bgp, n, addr),
        local: local_addrs(config, n),
        import: named(&n.import),
        export: named(&n.export),
        allow_without_policy: n.allow_without_policy,
        next_hop_self: n.next_hop_self,
        rr_client: n.route_reflector_client && n.remote_as == bgp.asn,
        keep_received_routes: n.keep_received_routes,
    })
}

/// The whole speaker from `[bgp]` (None without it). Redistributed routes are not in
/// `originated` yet: they come from the RIB at run time.
pub fn instance_config(config: &Config) -> Option<InstanceConfig> {
    let bgp = config.bgp.as_ref()?;
    Some(InstanceConfig {
        local_as: bgp.asn,
        router_id: bgp.router_id,
        decision: decision_config(bgp),
        originated: originated_networks(bgp),
        neighbors: bgp
            .neighbors
            .iter()
            .filter_map(|n| neighbor_config(config, n))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::keys::PrivateKey;
    use std::net::Ipv4Addr;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn config(bgp: &str) -> Config {
        let text = format!(
            "[router]\nrouter-id = \"10.255.0.1\"\nprivate-key = \"{}\"\n\n\
             [[tunnel]]\nname = \"to-r2\"\npeer-public-key = \"{}\"\n\
             addresses = [\"fe80::1/64\", \"169.254.0.0/31\", \"fd00::/127\"]\n\n\
             [[tunnel]]\nname = \"to-r3\"\npeer-public-key = \"{}\"\n\
             addresses = [\"fd00::3/127\", \"fe80::1/64\"]\n\n{bgp}",
            PrivateKey::generate().to_base64(),
            PrivateKey::generate().public_key().to_base64(),
            PrivateKey::generate().public_key().to_base64(),
        );
        match parse_str(&text, std::path::Path::new("r1.toml")) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    const BGP: &str = r#"
[bgp]
asn = 65001
networks = ["10.1.0.0/24", "2001:db8:1::/48"]
max-paths = 4
multipath-relax = true
hold-time = 30
connect-retry = 7
graceful-restart = { enabled = true, restart-time = 90 }

[[bgp.neighbor]]
tunnel = "to-r2"
remote-as = 65002
import = "in"
export = "out"
hold-time = 9
passive = true
next-hop-self = true
prefix-limit = { max = 1000, action = "warn" }

[[bgp.neighbor]]
tunnel = "to-r3"
remote-as = "internal"
route-reflector-client = true

[[bgp.neighbor]]
address = "192.168.200.1"
remote-as = 65000
local-address = "192.168.200.2"

[[policy]]
name = "in"
rules = [
  { match = { prefix-list = ["10.0.0.0/8 le 24"], family = "ipv4" }, set = { local-pref = 200 }, action = "accept" },
  { match = { community = ["65000:1"], not = { as-path-contains = 65003, origin-as = 65010 } }, set = { med = 10, prepend = 2, add-community = ["65001:100"], remove-community = ["65000:1"] } },
  { match = { large-community = ["1:2:3"], neighbor-as = 65002, as-path-max-len = 5 }, set = { add-large-community = ["1:2:4"], remove-large-community = ["1:2:3"] }, action = "reject" },
]

[[policy]]
name = "out"
default = "accept"
"#;

    #[test]
    fn policy_maps_every_match_and_set() {
        let c = config(BGP);
        let p = policy(&c.policies[0], 65001);
        let expected = Policy {
            default: Verdict::Reject,
            terms: vec![
                Term {
                    matches: vec![
                        Match::PrefixList(vec![PrefixMatch {
                            prefix: net("10.0.0.0/8"),
                            ge: None,
                            le: Some(24),
                        }]),
                        Match::Family(Family::Ipv4Unicast),
                    ],
                    sets: vec![Set::LocalPref(200)],
                    verdict: Some(Verdict::Accept),
                },
                Term {
                    matches: vec![
                        Match::Community(65000 << 16 | 1),
                        Match::Not(Box::new(Match::AsPathContains(65003))),
                        Match::Not(Box::new(Match::OriginAs(65010))),
                    ],
                    sets: vec![
                        Set::Med(10),
                        Set::Prepend {
                            asn: 65001,
                            count: 2,
                        },
                        Set::RemoveCommunity(65000 << 16 | 1),
                        Set::AddCommunity(65001 << 16 | 100),
                    ],
                    verdict: None,
                },
                Term {
                    matches: vec![
                        Match::NeighborAs(65002),
                        Match::AsPathLenAtMost(5),
                        Match::LargeCommunity(LargeCommunity {
                            global: 1,
                            local1: 2,
                            local2: 3,
                        }),
                    ],
                    sets: vec![
                        Set::RemoveLargeCommunity(LargeCommunity {
                            global: 1,
                            local1: 2,
                            local2: 3,
                        }),
                        Set::AddLargeCommunity(LargeCommunity {
                            global: 1,
                            local1: 2,
                            local2: 4,
                        }),
                    ],
                    verdict: Some(Verdict::Reject),
                },
            ],
        };
        assert_eq!(p, expected);
        // And it runs: a /16 inside 10/8 is accepted with local pref 200.
        let mut attrs = PathAttrs::default();
        assert_eq!(p.apply(&net("10.2.0.0/16"), &mut attrs), Verdict::Accept);
        assert_eq!(attrs.local_pref, Some(200));
        assert_eq!(policy(&c.policies[1], 65001), Policy::accept_all());
    }

    /// A policy that names a `[[prefix-list]]` runs as the same policy with the entries
    /// written inline, also inside `not`.
    #[test]
    fn named_prefix_list_builds_the_inline_policy() {
        let c = config(
            r#"
[[prefix-list]]
name = "dn42"
entries = ["172.20.0.0/14 le 28", "fd00::/8 le 64"]

[[policy]]
name = "named"
rules = [
  { match = { prefix-list = "dn42" }, action = "accept" },
  { match = { family = "ipv4", not = { prefix-list = "dn42" } }, set = { med = 5 } },
]

[[policy]]
name = "inline"
rules = [
  { match = { prefix-list = ["172.20.0.0/14 le 28", "fd00::/8 le 64"] }, action = "accept" },
  { match = { family = "ipv4", not = { prefix-list = ["172.20.0.0/14 le 28", "fd00::/8 le 64"] } }, set = { med = 5 } },
]
"#,
        );
        let named = policy(&c.policies[0], 65001);
        assert_eq!(named, policy(&c.policies[1], 65001));
        let dn42 = Match::PrefixList(vec![
            PrefixMatch {
                prefix: net("172.20.0.0/14"),
                ge: None,
                le: Some(28),
            },
            PrefixMatch {
                prefix: net("fd00::/8"),
                ge: None,
                le: Some(64),
            },
        ]);
        assert_eq!(named.terms[0].matches, std::slice::from_ref(&dn42));
        assert_eq!(named.terms[1].matches[1], Match::Not(Box::new(dn42)));
        let mut attrs = PathAttrs::default();
        assert_eq!(
            named.apply(&net("172.22.1.0/24"), &mut attrs),
            Verdict::Accept
        );
        assert_eq!(named.apply(&net("10.0.0.0/8"), &mut attrs), Verdict::Reject);
    }

    #[test]
    fn peer_address_given_or_derived() {
        let c = config(BGP);
        let bgp = c.bgp.as_ref().unwrap();
        let addr = |i: usize| peer_address(&c, &bgp.neighbors[i]).unwrap().to_string();
        // to-r2: fe80::1/64 gives nothing, the /31 comes next.
        assert_eq!(addr(0), "169.254.0.1");
        assert_eq!(addr(1), "fd00::2");
        assert_eq!(addr(2), "192.168.200.1");
        let mut given = bgp.neighbors[0].clone();
        given.address = Some("fe80::2".parse().unwrap());
        assert_eq!(peer_address(&c, &given), given.address);
    }

    #[test]
    fn neighbor_session_fills_the_peer_config() {
        let c = config(BGP);
        let bgp = c.bgp.as_ref().unwrap();
        let v4: IpAddr = "169.254.0.1".parse().unwrap();
        let s = neighbor_session(bgp, &bgp.neighbors[0], v4);
        assert_eq!(s.local_as, 65001);
        assert_eq!(s.peer_as, 65002);
        assert_eq!(s.router_id, Ipv4Addr::new(10, 255, 0, 1));
        assert_eq!(s.hold_time, 9, "the neighbor's own");
        assert_eq!(s.connect_retry, Duration::from_secs(7));
        assert!(s.passive && s.ebgp());
        assert_eq!(s.families, vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
        assert!(!s.extended_next_hop, "IPv4 session");
        assert_eq!(
            s.prefix_limit,
            Some(PrefixLimit {
                max: 1000,
                action: PrefixLimitAction::Warn
            })
        );
        let s = neighbor_session(bgp, &bgp.neighbors[1], "fd00::2".parse().unwrap());
        assert_eq!(s.peer_as, 65001, "internal");
        assert!(!s.ebgp() && !s.passive);
        assert_eq!(s.hold_time, 30, "[bgp] hold-time");
        assert!(s.extended_next_hop, "IPv6 session");
        assert_eq!(s.prefix_limit, None);
        assert_eq!(s.graceful_restart, Some(90), "[bgp] graceful-restart");
        let mut off = bgp.clone();
        off.graceful_restart.enabled = false;
        let s = neighbor_session(&off, &bgp.neighbors[1], "fd00::2".parse().unwrap());
        assert_eq!(s.graceful_restart, None);
    }

    #[test]
    fn decision_config_and_originated_networks() {
        let c = config(BGP);
        let bgp = c.bgp.as_ref().unwrap();
        assert_eq!(
            decision_config(bgp),
            DecisionConfig {
                max_paths: 4,
                multipath_relax: true,
                cluster_id: None,
            }
        );
        let o = originated_networks(bgp);
        assert_eq!(
            o.keys().copied().collect::<Vec<_>>(),
            vec![net("10.1.0.0/24"), net("2001:db8:1::/48")]
        );
        for attrs in o.values() {
            assert_eq!(attrs.origin, Some(Origin::Igp));
            assert_eq!(attrs.as_path, Some(AsPath::default()));
            assert_eq!(attrs.next_hop, None);
        }
    }

    #[test]
    fn instance_config_resolves_neighbors_and_policies() {
        let c = config(BGP);
        let i = instance_config(&c).unwrap();
        assert_eq!(
            (i.local_as, i.router_id),
            (65001, Ipv4Addr::new(10, 255, 0, 1))
        );
        assert_eq!(i.neighbors.len(), 3);
        let n = &i.neighbors[0];
        assert_eq!(n.import, Some(policy(&c.policies[0], 65001)));
        assert_eq!(n.export, Some(Policy::accept_all()));
        assert!(n.next_hop_self && !n.allow_without_policy);
        assert!(!n.rr_client);
        assert!(i.neighbors[1].rr_client, "internal, route-reflector-client");
        // On an eBGP neighbor the flag means nothing.
        let mut ebgp = c.bgp.as_ref().unwrap().neighbors[0].clone();
        ebgp.route_reflector_client = true;
        assert!(!neighbor_config(&c, &ebgp).unwrap().rr_client);
        assert_eq!(
            n.local,
            LocalAddrs {
                v4: Some(Ipv4Addr::new(169, 254, 0, 0)),
                v6_global: Some("fd00::".parse().unwrap()),
                v6_link_local: Some("fe80::1".parse().unwrap()),
            }
        );
        let lan = &i.neighbors[2];
        assert_eq!(lan.import, None);
        assert_eq!(lan.local.v4, Some(Ipv4Addr::new(192, 168, 200, 2)));
        assert_eq!(lan.local.v6_global, None);
        assert!(instance_config(&config("")).is_none());
    }
}
