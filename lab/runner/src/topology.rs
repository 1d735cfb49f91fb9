//! The part of containerlab's topology format (`*.clab.yml`) that the runner plays:
//! `name`, `topology.nodes.<node>` of kind `linux` with `image`, `binds`, `env`, `cmd`
//! and `exec`, and `topology.links` with `endpoints: ["a:eth1", "b:eth1"]`.
//!
//! Keys the runner does not implement but that do not change what a node is (labels,
//! mgmt settings, ...) are reported as warnings; anything that would make the lab behave
//! differently from containerlab (another kind, host or bridge endpoints) is an error.

use crate::error::LabError;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest Linux interface name.
const IFNAMSIZ_MAX: usize = 15;

/// A parsed, validated topology.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The lab name (`name:`).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Nodes in name order.
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    /// Keys that were ignored, as `path: why`.
    pub warnings: Vec<String>,
}

/// One node.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub image: Option<String>,
    pub binds: Vec<Bind>,
    pub env: BTreeMap<String, String>,
    /// The node's main (long-running) process, split into words.
    pub cmd: Option<Vec<String>>,
    /// Commands run to completion after the links exist, in order, split into words.
    pub exec: Vec<Vec<String>>,
}

/// `host:container[:ro|rw]`, the host side resolved against the topology's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub host: PathBuf,
    /// Absolute path inside the node, without a trailing slash.
    pub container: String,
    pub read_only: bool,
}

/// A point-to-point link: a veth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub a: Endpoint,
    pub b: Endpoint,
}

/// `node:interface`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub node: String,
    pub iface: String,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.node, self.iface)
    }
}

#[derive(Deserialize)]
struct RawFile {
    name: Option<String>,
    topology: Option<RawTopology>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize)]
struct RawTopology {
    #[serde(default)]
    nodes: BTreeMap<String, Option<RawNode>>,
    #[serde(default)]
    links: Vec<RawLink>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize, Default)]
struct RawNode {
    kind: Option<String>,
    image: Option<String>,
    #[serde(default)]
    binds: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cmd: Option<String>,
    #[serde(default)]
    exec: Vec<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize)]
struct RawLink {
    endpoints: Option<Vec<String>>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml::Value>,
}

/// Node keys that only matter to Docker/containerlab and change nothing in a namespace.
const HARMLESS_NODE_KEYS: &[&str] = &["labels", "mgmt-ipv4", "mgmt-ipv6", "group", "memory", "cpu"];

/// Lab and node names: what is safe in a namespace name and a file name.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= IFNAMSIZ_MAX
        && s != "."
        && s != ".."
        && s != "lo"
        && !s.contains(['/', ':'])
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Topology {
    /// Read and validate a topology file.
    pub fn load(file: &Path) -> Result<Topology, LabError> {
        let text = std::fs::read_to_string(file).map_err(|e| LabError::Io {
            what: format!("read {}", file.display()),
            source: e,
        })?;
        Topology::parse(&text, file)
    }

    /// Validate `text` as the topology file `file` (binds resolve against its directory).
    pub fn parse(text: &str, file: &Path) -> Result<Topology, LabError> {
        let invalid = |msg: String| LabError::Invalid {
            file: file.to_path_buf(),
            msg,
        };
        let raw: RawFile = serde_yaml::from_str(text).map_err(|e| LabError::Invalid {
            file: file.to_path_buf(),
            msg: format!("not a containerlab topology: {e}"),
        })?;
        let mut warnings = Vec::new();
        for key in raw.other.keys() {
            if key != "prefix" && key != "mgmt" {
                warnings.push(format!("{key}: ignored"));
            }
        }
        if raw.other.contains_key("prefix") {
            return Err(invalid(
                "prefix: not supported (namespaces are always named wgrdlab-<lab>-<node>)".into(),
            ));
        }
        let name = raw.name.ok_or_else(|| invalid("name: missing".into()))?;
        if !valid_name(&name) {
            return Err(invalid(format!(
                "name: {name:?} must be 1..40 of A-Z a-z 0-9 - _, starting with a letter"
            )));
        }
        let topo = raw
            .topology
            .ok_or_else(|| invalid("topology: missing".into()))?;
        // kinds/defaults would change node settings; refuse rather than differ.
        if let Some(key) = topo.other.keys().next() {
            return Err(invalid(format!(
                "topology.{key}: not supported by the namespace runner; set it on each node"
            )));
        }
        if topo.nodes.is_empty() {
            return Err(invalid("topology.nodes: no nodes".into()));
        }
        let base = file.parent().unwrap_or(Path::new("."));
        let mut nodes = Vec::new();
        for (node_name, raw_node) in topo.nodes {
            let at = format!("topology.nodes.{node_name}");
            if !valid_name(&node_name) {
                return Err(invalid(format!(
                    "{at}: node names must be 1..40 of A-Z a-z 0-9 - _, starting with a letter"
                )));
            }
            let raw_node = raw_node.unwrap_or_default();
            match raw_node.kind.as_deref() {
                Some("linux") => {}
                Some(k) => {
                    return Err(invalid(format!(
                        "{at}.kind: {k:?}; the namespace runner plays only kind linux"
                    )))
                }
                None => return Err(invalid(format!("{at}.kind: missing (use linux)"))),
            }
            for key in raw_node.other.keys() {
                if HARMLESS_NODE_KEYS.contains(&key.as_str()) {
                    warnings.push(format!("{at}.{key}: ignored"));
                } else {
                    return Err(invalid(format!(
                        "{at}.{key}: not supported by the namespace runner"
                    )));
                }
            }
            let mut binds = Vec::new();
            for (i, b) in raw_node.binds.iter().enumerate() {
                binds.push(
                    parse_bind(b, base)
                        .map_err(|m| invalid(format!("{at}.binds[{}]: {m}", i + 1)))?,
                );
            }
            let mut seen = BTreeSet::new();
            for b in &binds {
                if !seen.insert(b.container.clone()) {
                    return Err(invalid(format!(
                        "{at}.binds: {} is bound twice",
                        b.container
                    )));
                }
            }
            let cmd = match raw_node.cmd.as_deref() {
                None => None,
                Some(c) => Some(
                    crate::words::split(c)
                        .filter(|w| !w.is_empty())
                        .ok_or_else(|| invalid(format!("{at}.cmd: empty or unbalanced quotes")))?,
                ),
            };
            let mut exec = Vec::new();
            for (i, c) in raw_node.exec.iter().enumerate() {
                exec.push(
                    crate::words::split(c)
                        .filter(|w| !w.is_empty())
                        .ok_or_else(|| {
                            invalid(format!("{at}.exec[{}]: empty or unbalanced quotes", i + 1))
                        })?,
                );
            }
            for k in raw_node.env.keys() {
                if k.is_empty() || k.contains('=') {
                    return Err(invalid(format!("{at}.env: bad variable name {k:?}")));
                }
            }
            nodes.push(Node {
                name: node_name,
                image: raw_node.image,
                binds,
                env: raw_node.env,
                cmd,
                exec,
            });
        }
        let mut links = Vec::new();
        let mut used: BTreeSet<(String, String)> = BTreeSet::new();
        for (i, l) in topo.links.iter().enumerate() {
            let at = format!("topology.links[{}]", i + 1);
            if let Some(k) = l.other.keys().next() {
                return Err(invalid(format!(
                    "{at}.{k}: not supported (only endpoints: [a:if, b:if])"
                )));
            }
            let eps = l
                .endpoints
                .as_ref()
                .ok_or_else(|| invalid(format!("{at}.endpoints: missing")))?;
            if eps.len() != 2 {
                return Err(invalid(format!(
                    "{at}.endpoints: {} entries; a link joins exactly two",
                    eps.len()
                )));
            }
            let mut parsed = Vec::new();
            for ep in eps {
                let (node, iface) = ep.split_once(':').ok_or_else(|| {
                    invalid(format!("{at}: endpoint {ep:?} is not node:interface"))
                })?;
                if matches!(
                    node,
                    "host" | "mgmt-net" | "macvlan" | "ovs-bridge" | "bridge"
                ) {
                    return Err(invalid(format!(
                        "{at}: endpoint {ep:?}: the namespace runner never touches the host's own network"
                    )));
                }
                if !nodes.iter().any(|n| n.name == node) {
                    return Err(invalid(format!("{at}: endpoint {ep:?}: no node {node:?}")));
                }
                if !valid_ifname(iface) {
                    return Err(invalid(format!(
                        "{at}: endpoint {ep:?}: {iface:?} is not a valid interface name (1..15 bytes, no / : or spaces)"
                    )));
                }
                if !used.insert((node.to_string(), iface.to_string())) {
                    return Err(invalid(format!("{at}: {ep} is used by another link")));
                }
                parsed.push(Endpoint {
                    node: node.to_string(),
                    iface: iface.to_string(),
                });
            }
            let b = parsed.pop().expect("two endpoints");
            let a = parsed.pop().expect("two endpoints");
            links.push(Link { a, b });
        }
        Ok(Topology {
            name,
            file: file.to_path_buf(),
            nodes,
            links,
            warnings,
        })
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

fn parse_bind(spec: &str, base: &Path) -> Result<Bind, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, None),
        [h, c, m] => (*h, *c, Some(*m)),
        _ => return Err(format!("{spec:?} is not host:container[:ro]")),
    };
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(m) => return Err(format!("mode {m:?}: use ro or rw")),
    };
    if host.is_empty() {
        return Err(format!("{spec:?}: empty host path"));
    }
    if !container.starts_with('/') || container.split('/').any(|c| c == "..") {
        return Err(format!(
            "{spec:?}: the container path must be absolute, without .."
        ));
    }
    let container = container.trim_end_matches('/');
    if container.is_empty() {
        return Err(format!("{spec:?}: cannot bind over /"));
    }
    let host_path = Path::new(host);
    let host = if host_path.is_absolute() {
        host_path.to_path_buf()
    } else {
        base.join(host_path)
    };
    Ok(Bind {
        host,
        container: container.to_string(),
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Topology, LabError> {
        Topology::parse(text, Path::new("/lab/t/t.clab.yml"))
    }

    #[test]
    fn parses_minimal() {
        let t = parse(
            "name: t\ntopology:\n  nodes:\n    a: {kind: linux, image: x, binds: [a/:/etc/a/:ro], exec: [\"ip addr add 10.0.0.1/24 dev eth1\"]}\n    b: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n",
        )
        .unwrap();
        assert_eq!(t.name, "t");
        assert_eq!(t.nodes.len(), 2);
        let a = t.node("a").unwrap();
        assert_eq!(
            a.binds,
            vec![Bind {
                host: PathBuf::from("/lab/t/a/"),
                container: "/etc/a".into(),
                read_only: true
            }]
        );
        assert_eq!(a.exec[0][0], "ip");
        assert_eq!(t.links[0].b.to_string(), "b:eth1");
    }

    #[test]
    fn rejects_what_it_cannot_play() {
        let cases = [
            ("name: t\ntopology:\n  nodes:\n    a: {kind: srl}\n", "kind"),
            ("topology:\n  nodes:\n    a: {kind: linux}\n", "name: missing"),
            (
                "name: t\ntopology:\n  nodes:\n    a: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"host:veth9\"]\n",
                "host",
            ),
            (
                "name: t\ntopology:\n  nodes:\n    a: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n",
                "no node",
            ),
            (
                "name: t\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"a:eth1\", \"b:eth2\"]\n",
                "used by another link",
            ),
            (
                "name: t\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [\"a:averyveryverylongname\", \"b:eth1\"]\n",
                "interface name",
            ),
            (
                "name: t\ntopology:\n  nodes:\n    a: {kind: linux, binds: [\"x:rel/path\"]}\n",
                "absolute",
            ),
            ("name: t\ntopology:\n  nodes:\n    a: {kind: linux, exec: [\"sh -c 'x\"]}\n", "quotes"),
            ("name: t\ntopology:\n  kinds: {}\n  nodes:\n    a: {kind: linux}\n", "kinds"),
            ("name: ../x\ntopology:\n  nodes:\n    a: {kind: linux}\n", "name"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}\n-> {err}\n(wanted {want:?})");
        }
    }
}
