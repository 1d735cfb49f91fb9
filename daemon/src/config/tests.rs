//! Validation tests: each error the loader knows, with its line, field and reason, and a
//! full example that must load into exactly the expected model.

use super::load::{MAX_TUNNEL_MTU, MIN_MTU_V6};
use super::*;
use crate::keys::{PresharedKey, PrivateKey, PublicKey};
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// A directory holding a config file's key files, and keys to put in configs.
struct Fixture {
    dir: tempfile::TempDir,
    own: PrivateKey,
    peers: Vec<PublicKey>,
    psk: String,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let own = PrivateKey::generate();
        let psk = PrivateKey::generate().to_base64();
        let f = Fixture {
            dir,
            own,
            peers: (0..3)
                .map(|_| PrivateKey::generate().public_key())
                .collect(),
            psk,
        };
        f.write_key("r1.key", &f.own.to_base64(), 0o600);
        f.write_key("r1-r2.psk", &f.psk, 0o640);
        f
    }

    fn write_key(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, format!("{text}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("r1.toml")
    }

    /// `{P0}`..`{P2}` become peer public keys, `{OWN}` our private key, `{OWNPUB}` its
    /// public key, `{PSK}` the preshared key.
    fn text(&self, template: &str) -> String {
        let mut t = template
            .replace("{OWNPUB}", &self.own.public_key().to_base64())
            .replace("{OWN}", &self.own.to_base64())
            .replace("{PSK}", &self.psk);
        for (i, p) in self.peers.iter().enumerate() {
            t = t.replace(&format!("{{P{i}}}"), &p.to_base64());
        }
        t
    }

    fn parse(&self, template: &str) -> Result<Config, ConfigErrors> {
        parse_str(&self.text(template), &self.config_path())
    }

    fn ok(&self, template: &str) -> Config {
        match self.parse(template) {
            Ok(c) => c,
            Err(e) => panic!("expected the config to load, got:\n{e}"),
        }
    }

    fn errors(&self, template: &str) -> Vec<ConfigError> {
        let errors = match self.parse(template) {
            Ok(_) => panic!("expected errors, the config loaded"),
            Err(e) => e.0,
        };
        // Whatever the test, no message may carry key material.
        let secrets = [self.own.to_base64(), self.psk.clone()];
        for e in &errors {
            let shown = e.to_string();
            for s in &secrets {
                assert!(!shown.contains(s.as_str()), "key leaked in: {shown}");
            }
        }
        errors
    }

    /// The one error the config has; asserts its field and line.
    fn only_error(&self, template: &str, field: &str, line: usize) -> ConfigError {
        let errors = self.errors(template);
        assert_eq!(errors.len(), 1, "expected one error, got: {errors:#?}");
        let e = errors.into_iter().next().unwrap();
        assert_eq!(e.field, field, "{e}");
        assert_eq!(e.line, Some(line), "{e}");
        e
    }
}

/// The smallest valid config, as the first lines of most tests (router on lines 1-3).
const ROUTER: &str = "[router]\nrouter-id = \"10.255.0.1\"\nprivate-key-file = \"r1.key\"\n";

fn with_router(rest: &str) -> String {
    format!("{ROUTER}{rest}")
}

fn assert_why(e: &ConfigError, needle: &str) {
    assert!(e.why.contains(needle), "{e:?} should say {needle:?}");
}

#[test]
fn full_example_loads_into_the_expected_model() {
    let f = Fixture::new();
    let config = f.ok(r#"
[router]
router-id = "10.255.0.1"
private-key-file = "r1.key"
listen-port = 51820
listen-address = "0.0.0.0"

[host]
interface = "wgrd0"
addresses = ["10.1.0.1/24", "fd01::1/64"]
export-routes = true
mtu = 1400

[[tunnel]]
name = "to-r2"
peer-public-key = "{P0}"
preshared-key-file = "r1-r2.psk"
endpoint = "192.168.77.2:51820"
persistent-keepalive = 25
addresses = ["169.254.0.0/31", "fd00::/127"]
mtu = 1420

[[tunnel]]
name = "road.warrior_1"
peer-public-key = "{P1}"
preshared-key = "{PSK}"
addresses = ["169.254.0.2/31"]
listen-port = 51821

[[route]]
prefix = "10.2.0.0/16"
via = "to-r2"

[[route]]
prefix = "fd02::/48"
via = "host"

[[route]]
prefix = "192.0.2.0/24"
via = "blackhole"
"#);
    let dir = f.dir.path();
    let psk = PresharedKey::from_base64(&f.psk).unwrap();
    let expected = Config {
        router: RouterConfig {
            router_id: "10.255.0.1".parse().unwrap(),
            private_key: f.own.clone(),
            private_key_file: Some(dir.join("r1.key")),
            listen_port: 51820,
            listen_address: Some("0.0.0.0".parse().unwrap()),
        },
        host: Some(HostConfig {
            interface: "wgrd0".into(),
            addresses: vec![
                "10.1.0.1/24".parse().unwrap(),
                "fd01::1/64".parse().unwrap(),
            ],
            export_routes: true,
            mtu: 1400,
        }),
        tunnels: vec![
            TunnelConfig {
                name: "to-r2".into(),
                peer_public_key: f.peers[0],
                preshared_key: Some(psk.clone()),
                preshared_key_file: Some(dir.join("r1-r2.psk")),
                endpoint: Some("192.168.77.2:51820".parse().unwrap()),
                persistent_keepalive: Some(25),
                addresses: vec![
                    "169.254.0.0/31".parse().unwrap(),
                    "fd00::/127".parse().unwrap(),
                ],
                mtu: 1420,
                listen_port: None,
                ospf: None,
            },
            TunnelConfig {
                name: "road.warrior_1".into(),
                peer_public_key: f.peers[1],
                preshared_key: Some(psk),
                preshared_key_file: None,
                endpoint: None,
                persistent_keepalive: None,
                addresses: vec!["169.254.0.2/31".parse().unwrap()],
                mtu: DEFAULT_TUNNEL_MTU,
                listen_port: Some(51821),
                ospf: None,
            },
        ],
        routes: vec![
            StaticRoute {
                prefix: "10.2.0.0/16".parse().unwrap(),
                via: RouteVia::Tunnel("to-r2".into()),
            },
            StaticRoute {
                prefix: "fd02::/48".parse().unwrap(),
                via: RouteVia::Host,
            },
            StaticRoute {
                prefix: "192.0.2.0/24".parse().unwrap(),
                via: RouteVia::Blackhole,
            },
        ],
        control: ControlConfig::default(),
        forwarding: ForwardingConfig::default(),
        nat: NatConfig::default(),
        ospf: None,
        bgp: None,
        policies: vec![],
        prefix_lists: vec![],
    };
    assert_eq!(config, expected);
}

#[test]
fn defaults_apply_when_optional_keys_are_omitted() {
    let f = Fixture::new();
    let c = f.ok(&with_router(
        "[host]\n[[tunnel]]\nname = \"t\"\npeer-public-key = \"{P0}\"\n",
    ));
    assert_eq!(c.router.listen_port, DEFAULT_LISTEN_PORT);
    assert_eq!(c.router.listen_address, None);
    let host = c.host.unwrap();
    assert_eq!(host.interface, DEFAULT_HOST_INTERFACE);
    assert_eq!(host.mtu, DEFAULT_HOST_MTU);
    assert!(!host.export_routes);
    assert!(host.addresses.is_empty());
    let t = &c.tunnels[0];
    assert_eq!(t.mtu, DEFAULT_TUNNEL_MTU);
    assert_eq!(
        (t.endpoint, t.persistent_keepalive, t.listen_port),
        (None, None, None)
    );
    assert!(t.preshared_key.is_none() && t.addresses.is_empty());
    assert!(c.routes.is_empty());

    let bare = f.ok(ROUTER);
    assert!(bare.host.is_none() && bare.tunnels.is_empty());
}

#[test]
fn inline_private_key_and_array_of_inline_tables_are_accepted() {
    let f = Fixture::new();
    let c = f.ok(r#"
router = { router-id = "10.0.0.1", private-key = "{OWN}" }
tunnel = [{ name = "a", peer-public-key = "{P0}" }, { name = "b", peer-public-key = "{P1}" }]
route = [{ prefix = "10.9.0.0/16", via = "b" }]
"#);
    assert_eq!(c.router.private_key, f.own);
    assert_eq!(c.router.private_key_file, None);
    assert_eq!(c.tunnels.len(), 2);
    assert_eq!(c.routes[0].via, RouteVia::Tunnel("b".into()));
}

#[test]
fn syntax_error_reports_its_line() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router("[host]\naddresses = [\"10.0.0.1/24\"\n"),
        "syntax",
        5,
    );
    assert!(!e.why.is_empty());
    let e = f.only_error(&with_router("[[tunnel]]\nname = \"to-r2\n"), "syntax", 5);
    assert_why(&e, "string");
}

#[test]
fn syntax_error_on_a_key_line_does_not_echo_the_key() {
    let f = Fixture::new();
    // An unterminated string holding the key: the message must not quote the line.
    let errors = f.errors("[router]\nrouter-id = \"10.0.0.1\"\nprivate-key = \"{OWN}\n");
    assert_eq!(errors[0].field, "syntax");
    assert_eq!(errors[0].line, Some(3));
}

#[test]
fn duplicate_toml_key_is_a_syntax_error_with_line() {
    let f = Fixture::new();
    f.only_error(
        &with_router("listen-port = 1\nlisten-port = 2\n"),
        "syntax",
        5,
    );
}

#[test]
fn unknown_key_suggests_the_closest_known_key() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router(
            "[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P0}\"\nendpont = \"1.2.3.4:5\"\n",
        ),
        "tunnel[1].endpont",
        7,
    );
    assert_eq!(e.why, "unknown key; did you mean endpoint?");
    let e = f.only_error(&with_router("listen_port = 5\n"), "router.listen_port", 4);
    assert_eq!(e.why, "unknown key; did you mean listen-port?");
}

#[test]
fn unknown_key_far_from_any_lists_the_known_keys() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router("[host]\ncolour = \"blue\"\n"),
        "host.colour",
        5,
    );
    assert_why(
        &e,
        "known keys here: interface, addresses, export-routes, mtu",
    );
}

#[test]
fn unknown_section_is_reported() {
    let f = Fixture::new();
    let e = f.only_error(&with_router("[[tunnels]]\nname = \"a\"\n"), "tunnels", 4);
    assert_why(&e, "did you mean tunnel?");
}

#[test]
fn wrong_types_say_what_was_expected_and_found() {
    let f = Fixture::new();
    let errors = f.errors(&with_router(
        r#"listen-port = "51820"
[host]
export-routes = "yes"
addresses = "10.0.0.1/24"
mtu = 1400.0
[tunnel]
name = "a"
"#,
    ));
    let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let file = f.config_path().display().to_string();
    assert_eq!(
        shown,
        vec![
            format!("{file}:4: router.listen-port: expected an integer 0..=65535, found a string"),
            format!("{file}:6: host.export-routes: expected true or false, found a string"),
            format!("{file}:7: host.addresses: expected an array of strings, found a string"),
            format!("{file}:8: host.mtu: expected an integer 576..=65535, found a float"),
            format!("{file}:9: tunnel: expected an array of tables [[tunnel]], found a single table or value"),
        ]
    );
}

#[test]
fn array_element_of_wrong_type_names_its_index() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router("[host]\naddresses = [\n  \"10.0.0.1/24\",\n  42,\n]\n"),
        "host.addresses[2]",
        7,
    );
    assert_why(&e, "expected a string, found integer");
}

#[test]
fn missing_router_section_is_reported() {
    let f = Fixture::new();
    let errors = f.errors("[host]\n");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "router");
    assert_eq!(errors[0].line, None);
    assert_eq!(
        errors[0].to_string(),
        format!(
            "{}: router: missing required section [router]",
            f.config_path().display()
        )
    );
}

#[test]
fn missing_required_keys_point_at_their_section() {
    let f = Fixture::new();
    let errors = f.errors("\n[router]\nlisten-port = 1\n\n[[tunnel]]\nmtu = 1400\n\n[[route]]\n");
    let got: Vec<(Option<usize>, &str)> =
        errors.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (Some(2), "router.router-id"),
            (Some(2), "router.private-key-file"),
            (Some(5), "tunnel[1].name"),
            (Some(5), "tunnel[1].peer-public-key"),
            (Some(8), "route[1].prefix"),
            (Some(8), "route[1].via"),
        ]
    );
    assert_why(&errors[0], "missing required key");
    assert_why(&errors[1], "private-key-file (or private-key)");
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let f = Fixture::new();
    let errors = f.errors(&with_router(
        r#"listen-port = 70000
[[tunnel]]
name = "bad name"
peer-public-key = "nope"
endpoint = "nowhere"
[[route]]
prefix = "10.0.0.1/8"
via = "nothing"
"#,
    ));
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "router.listen-port",
            "tunnel[1].name",
            "tunnel[1].peer-public-key",
            "tunnel[1].endpoint",
            "route[1].prefix",
            "route[1].via",
        ]
    );
    // In file order, each on its own line.
    let lines: Vec<usize> = errors.iter().map(|e| e.line.unwrap()).collect();
    assert_eq!(lines, vec![4, 6, 7, 8, 10, 11]);
}

#[test]
fn duplicate_tunnel_names_are_refused() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router(
            "[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P0}\"\n[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P1}\"\n",
        ),
        "tunnel[2].name",
        8,
    );
    assert_eq!(
        e.why,
        "duplicate tunnel name \"a\"; first used by tunnel[1].name (line 5)"
    );
}

#[test]
fn bad_tunnel_names_are_refused() {
    let f = Fixture::new();
    for (name, why) in [
        ("", "1..15"),
        ("sixteen-chars-xx", "1..15"),
        ("to r2", "A-Z a-z 0-9 _ . -"),
        ("to/r2", "A-Z a-z 0-9 _ . -"),
        ("host", "reserved"),
        ("blackhole", "reserved"),
    ] {
        let text = with_router(&format!(
            "[[tunnel]]\nname = \"{name}\"\npeer-public-key = \"{{P0}}\"\n"
        ));
        let e = f.only_error(&text, "tunnel[1].name", 5);
        assert_why(&e, why);
    }
}

#[test]
fn duplicate_peer_public_keys_are_refused_without_echoing_them() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router(
            "[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P0}\"\n[[tunnel]]\nname = \"b\"\npeer-public-key = \"{P0}\"\n",
        ),
        "tunnel[2].peer-public-key",
        9,
    );
    assert_why(
        &e,
        "same peer public key as tunnel[1].peer-public-key (line 6)",
    );
    assert!(!e.to_string().contains(&f.peers[0].to_base64()));
}

#[test]
fn peer_key_equal_to_own_public_key_is_refused() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router("[[tunnel]]\nname = \"a\"\npeer-public-key = \"{OWNPUB}\"\n"),
        "tunnel[1].peer-public-key",
        6,
    );
    assert_why(&e, "own public key");
}

#[test]
fn bad_base64_and_wrong_key_length_are_refused_without_echo() {
    let f = Fixture::new();
    // 31 bytes of a real key: right alphabet, wrong length.
    let short = base64_of(&[7u8; 31]);
    let e = f.only_error(
        &format!("[router]\nrouter-id = \"10.0.0.1\"\nprivate-key = \"{short}\"\n"),
        "router.private-key",
        3,
    );
    assert_eq!(
        e.why,
        "not a WireGuard key: decodes to 31 bytes, a WireGuard key is 32"
    );
    assert!(!e.to_string().contains(&short));

    let secretish = "c2VjcmV0IGtleSBtYXRlcmlhbCEhIQ==!!";
    let e = f.only_error(
        &with_router(&format!(
            "[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P}\"\npreshared-key = \"{secretish}\"\n",
            P = f.peers[0]
        )),
        "tunnel[1].preshared-key",
        7,
    );
    assert_eq!(e.why, "not a WireGuard key: not valid base64");
    assert!(!e.to_string().contains(secretish));
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn key_material_never_appears_in_any_message() {
    let f = Fixture::new();
    let own = f.own.to_base64();
    // The private key pasted into every place a string goes, valid or not for that key.
    let text = format!(
        r#"[router]
router-id = "{own}"
private-key = "{own}"
private-key-file = "r1.key"
listen-address = "{own}"
[host]
interface = "{own}"
addresses = ["{own}"]
[[tunnel]]
name = "{own}"
peer-public-key = "{own}x"
preshared-key = "{own}"
endpoint = "{own}:51820"
addresses = ["{own}"]
[[route]]
prefix = "{own}"
via = "{own}"
"{own}" = 1
"#
    );
    let errors = parse_str(&text, &f.config_path()).unwrap_err();
    assert!(errors.0.len() >= 10, "{errors}");
    let shown = errors.to_string();
    assert!(!shown.contains(&own), "key leaked:\n{shown}");
    // Nor any long run of it (a message quoting part of the value).
    assert!(!shown.contains(&own[..12]), "key prefix leaked:\n{shown}");
}

#[test]
fn inline_key_and_key_file_together_are_refused() {
    let f = Fixture::new();
    let e = f.only_error(
        &format!("{ROUTER}private-key = \"{{OWN}}\"\n"),
        "router.private-key-file",
        3,
    );
    assert_why(&e, "either private-key or private-key-file, not both");
}

#[test]
fn world_readable_key_file_is_refused() {
    let f = Fixture::new();
    f.write_key("open.key", &f.own.to_base64(), 0o644);
    let e = f.only_error(
        "[router]\nrouter-id = \"10.0.0.1\"\nprivate-key-file = \"open.key\"\n",
        "router.private-key-file",
        3,
    );
    assert_why(&e, "readable by everyone (mode 0644); run: chmod o-rwx");
    // Group-readable is allowed (a key shared with a service group).
    f.write_key("group.key", &f.own.to_base64(), 0o640);
    f.ok("[router]\nrouter-id = \"10.0.0.1\"\nprivate-key-file = \"group.key\"\n");
}

#[test]
fn missing_key_file_is_reported_with_the_resolved_path() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router("[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P0}\"\npreshared-key-file = \"keys/none.psk\"\n"),
        "tunnel[1].preshared-key-file",
        7,
    );
    let resolved = f.dir.path().join("keys/none.psk");
    assert_why(&e, &format!("cannot read {}", resolved.display()));
}

#[test]
fn key_file_paths_are_relative_to_the_config_directory() {
    let f = Fixture::new();
    fs::create_dir(f.dir.path().join("keys")).unwrap();
    let key = f.write_key("keys/r1.key", &f.own.to_base64(), 0o600);
    let c = f.ok("[router]\nrouter-id = \"10.0.0.1\"\nprivate-key-file = \"keys/r1.key\"\n");
    assert_eq!(c.router.private_key_file, Some(key.clone()));
    // Absolute paths are taken as they are.
    let c = f.ok(&format!(
        "[router]\nrouter-id = \"10.0.0.1\"\nprivate-key-file = \"{}\"\n",
        key.display()
    ));
    assert_eq!(c.router.private_key, f.own);
}

#[test]
fn key_file_with_garbage_is_refused_without_echo() {
    let f = Fixture::new();
    let garbage = "this is not a key but it is secret";
    f.write_key("bad.psk", garbage, 0o600);
    let e = f.only_error(
        &with_router("[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P0}\"\npreshared-key-file = \"bad.psk\"\n"),
        "tunnel[1].preshared-key-file",
        7,
    );
    assert_why(&e, "does not hold a WireGuard key: not valid base64");
    assert!(!e.to_string().contains("secret"));
}

#[test]
fn key_file_that_is_a_directory_is_refused() {
    let f = Fixture::new();
    fs::create_dir(f.dir.path().join("adir")).unwrap();
    let e = f.only_error(
        "[router]\nrouter-id = \"10.0.0.1\"\nprivate-key-file = \"adir\"\n",
        "router.private-key-file",
        3,
    );
    assert_why(&e, "not a regular file");
}

#[test]
fn overlapping_addresses_across_tunnels_are_refused() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router(
            r#"[[tunnel]]
name = "a"
peer-public-key = "{P0}"
addresses = ["169.254.0.0/31", "fd00::/127"]
[[tunnel]]
name = "b"
peer-public-key = "{P1}"
addresses = ["169.254.0.2/31", "fd00::1/64"]
"#,
        ),
        "tunnel[2].addresses[2]",
        11,
    );
    assert_eq!(
        e.why,
        "fd00::1/64 overlaps fd00::/127 of tunnel \"a\" at tunnel[1].addresses[2] (line 7)"
    );
}

#[test]
fn tunnel_address_overlapping_host_address_is_refused() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router(
            "[host]\naddresses = [\"10.1.0.1/24\"]\n[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P0}\"\naddresses = [\"10.1.0.200/30\"]\n",
        ),
        "tunnel[1].addresses[1]",
        9,
    );
    assert_why(
        &e,
        "overlaps 10.1.0.1/24 of [host] at host.addresses[1] (line 5)",
    );
}

#[test]
fn same_address_twice_on_one_interface_is_refused_but_same_subnet_is_not() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router("[host]\naddresses = [\"10.1.0.1/24\", \"10.1.0.1/16\"]\n"),
        "host.addresses[2]",
        5,
    );
    assert_why(&e, "the same address as 10.1.0.1/24");
    f.ok(&with_router(
        "[host]\naddresses = [\"10.1.0.1/24\", \"10.1.0.2/24\"]\n",
    ));
}

#[test]
fn ipv6_link_local_addresses_may_repeat_across_tunnels() {
    let f = Fixture::new();
    f.ok(&with_router(
        r#"[[tunnel]]
name = "a"
peer-public-key = "{P0}"
addresses = ["fe80::1/64"]
[[tunnel]]
name = "b"
peer-public-key = "{P1}"
addresses = ["fe80::1/64"]
"#,
    ));
}

#[test]
fn bad_addresses_are_refused() {
    let f = Fixture::new();
    for (addr, why) in [
        ("10.0.0.1/33", "address with prefix length"),
        ("banana", "address with prefix length"),
        ("0.0.0.0/0", "unicast"),
        ("224.0.0.5/32", "unicast"),
        ("127.0.0.1/8", "unicast"),
    ] {
        let e = f.only_error(
            &with_router(&format!("[host]\naddresses = [\"{addr}\"]\n")),
            "host.addresses[1]",
            5,
        );
        assert_why(&e, why);
    }
}

#[test]
fn unknown_via_is_refused_with_a_suggestion() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router(
            "[[route]]\nprefix = \"10.2.0.0/16\"\nvia = \"to-r3\"\n[[tunnel]]\nname = \"to-r2\"\npeer-public-key = \"{P0}\"\n",
        ),
        "route[1].via",
        6,
    );
    assert_eq!(e.why, "no tunnel named \"to-r3\"; did you mean \"to-r2\"?");
    let e = f.only_error(
        &with_router("[[route]]\nprefix = \"10.2.0.0/16\"\nvia = \"elsewhere\"\n"),
        "route[1].via",
        6,
    );
    assert_why(&e, "via is a tunnel name, \"host\" or \"blackhole\"");
}

#[test]
fn route_via_a_tunnel_defined_later_is_fine() {
    let f = Fixture::new();
    let c = f.ok(&with_router(
        "[[route]]\nprefix = \"10.2.0.0/16\"\nvia = \"b\"\n[[tunnel]]\nname = \"b\"\npeer-public-key = \"{P0}\"\n",
    ));
    assert_eq!(c.routes[0].via, RouteVia::Tunnel("b".into()));
}

#[test]
fn via_host_requires_a_host_section() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router("[[route]]\nprefix = \"10.2.0.0/16\"\nvia = \"host\"\n"),
        "route[1].via",
        6,
    );
    assert_why(&e, "needs a [host] section");
}

#[test]
fn route_prefix_with_host_bits_names_the_normal_form() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router("[[route]]\nprefix = \"10.2.3.4/16\"\nvia = \"blackhole\"\n"),
        "route[1].prefix",
        5,
    );
    assert_eq!(e.why, "host bits are set; the prefix is 10.2.0.0/16");
    let e = f.only_error(
        &with_router("[[route]]\nprefix = \"fd00:1::1/32\"\nvia = \"blackhole\"\n"),
        "route[1].prefix",
        5,
    );
    assert_eq!(e.why, "host bits are set; the prefix is fd00:1::/32");
}

#[test]
fn duplicate_route_prefixes_are_refused() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router(
            "[[route]]\nprefix = \"10.2.0.0/16\"\nvia = \"blackhole\"\n[[route]]\nprefix = \"10.2.0.0/16\"\nvia = \"blackhole\"\n",
        ),
        "route[2].prefix",
        8,
    );
    assert_eq!(
        e.why,
        "duplicate route for 10.2.0.0/16; first at route[1].prefix (line 5)"
    );
}

#[test]
fn invalid_ports_are_refused() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router("listen-port = 70000\n"),
        "router.listen-port",
        4,
    );
    assert_eq!(e.why, "70000 is out of range 0..=65535");
    let e = f.only_error(&with_router("listen-port = -1\n"), "router.listen-port", 4);
    assert_eq!(e.why, "-1 is out of range 0..=65535");
}

#[test]
fn tunnel_listen_port_collisions_are_refused() {
    let f = Fixture::new();
    let errors = f.errors(&with_router(
        r#"listen-port = 5000
[[tunnel]]
name = "a"
peer-public-key = "{P0}"
listen-port = 5000
[[tunnel]]
name = "b"
peer-public-key = "{P1}"
listen-port = 5001
[[tunnel]]
name = "c"
peer-public-key = "{P2}"
listen-port = 5001
"#,
    ));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(
        (errors[0].field.as_str(), errors[0].line),
        ("tunnel[1].listen-port", Some(8))
    );
    assert_why(&errors[0], "is router.listen-port");
    assert_eq!(
        (errors[1].field.as_str(), errors[1].line),
        ("tunnel[3].listen-port", Some(16))
    );
    assert_why(
        &errors[1],
        "already the listen-port of tunnel[2].listen-port (line 12)",
    );
}

#[test]
fn endpoint_forms_are_parsed() {
    let f = Fixture::new();
    for (text, expected) in [
        ("192.168.77.2:51820", "192.168.77.2:51820"),
        ("[fd00::2]:51820", "[fd00::2]:51820"),
    ] {
        let c = f.ok(&with_router(&format!(
            "[[tunnel]]\nname = \"a\"\npeer-public-key = \"{{P0}}\"\nendpoint = \"{text}\"\n"
        )));
        assert_eq!(c.tunnels[0].endpoint, Some(expected.parse().unwrap()));
    }
    // Hostnames resolve at load time; listen-address picks the family.
    let c = f.ok(&with_router(
        "listen-address = \"127.0.0.1\"\n[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P0}\"\nendpoint = \"localhost:51820\"\n",
    ));
    assert_eq!(
        c.tunnels[0].endpoint,
        Some("127.0.0.1:51820".parse().unwrap())
    );
}

#[test]
fn bad_endpoints_are_refused() {
    let f = Fixture::new();
    for (text, why) in [
        ("192.168.77.2", "expected IP:port"),
        ("192.168.77.2:0", "1..=65535"),
        ("192.168.77.2:x", "the port must be a number"),
        ("fd00::2:51820", "expected IP:port"),
        ("0.0.0.0:51820", "unicast"),
        (
            "no-such-host.invalid:51820",
            "cannot resolve no-such-host.invalid",
        ),
    ] {
        let e = f.only_error(
            &with_router(&format!(
                "[[tunnel]]\nname = \"a\"\npeer-public-key = \"{{P0}}\"\nendpoint = \"{text}\"\n"
            )),
            "tunnel[1].endpoint",
            7,
        );
        assert_why(&e, why);
    }
}

#[test]
fn endpoint_family_must_fit_the_listen_address() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router(
            "listen-address = \"192.0.2.1\"\n[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P0}\"\nendpoint = \"[fd00::2]:51820\"\n",
        ),
        "tunnel[1].endpoint",
        8,
    );
    assert_why(&e, "IPv6 endpoint cannot be reached");
}

#[test]
fn persistent_keepalive_zero_means_off_and_range_is_checked() {
    let f = Fixture::new();
    let t = "[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P0}\"\npersistent-keepalive = ";
    let c = f.ok(&with_router(&format!("{t}0\n")));
    assert_eq!(c.tunnels[0].persistent_keepalive, None);
    let e = f.only_error(
        &with_router(&format!("{t}65536\n")),
        "tunnel[1].persistent-keepalive",
        7,
    );
    assert_why(&e, "out of range 0..=65535");
}

#[test]
fn mtu_bounds_depend_on_ipv6() {
    let f = Fixture::new();
    let t = |addr: &str, mtu: u32| {
        with_router(&format!(
            "[[tunnel]]\nname = \"a\"\npeer-public-key = \"{{P0}}\"\naddresses = [\"{addr}\"]\nmtu = {mtu}\n"
        ))
    };
    assert_eq!(f.ok(&t("10.0.0.1/31", 576)).tunnels[0].mtu, 576);
    let e = f.only_error(&t("10.0.0.1/31", 575), "tunnel[1].mtu", 8);
    assert_why(&e, "out of range 576..=65455");
    let e = f.only_error(&t("fd00::1/127", 1279), "tunnel[1].mtu", 8);
    assert_eq!(
        e.why,
        format!("1279 is below {MIN_MTU_V6}, the minimum for a link with IPv6 addresses")
    );
    let e = f.only_error(
        &t("10.0.0.1/31", u32::from(MAX_TUNNEL_MTU) + 1),
        "tunnel[1].mtu",
        8,
    );
    assert_why(&e, "out of range");
}

#[test]
fn ipv6_route_via_a_tunnel_too_small_for_ipv6_is_refused() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router(
            "[[tunnel]]\nname = \"a\"\npeer-public-key = \"{P0}\"\nmtu = 1000\n[[route]]\nprefix = \"fd00::/8\"\nvia = \"a\"\n",
        ),
        "route[1].via",
        10,
    );
    assert_why(&e, "cannot carry IPv6");
}

#[test]
fn bad_interface_names_are_refused() {
    let f = Fixture::new();
    for name in ["", "a-very-long-name", "wg 0", "wg/0", "wg:0", ".."] {
        let e = f.only_error(
            &with_router(&format!("[host]\ninterface = \"{name}\"\n")),
            "host.interface",
            5,
        );
        assert_why(&e, "interface name");
    }
    assert_eq!(
        f.ok(&with_router("[host]\ninterface = \"wgrd-lan.1\"\n"))
            .host
            .unwrap()
            .interface,
        "wgrd-lan.1"
    );
}

#[test]
fn bad_router_id_and_listen_address_are_refused() {
    let f = Fixture::new();
    let e = f.only_error(
        "[router]\nrouter-id = \"fd00::1\"\nprivate-key-file = \"r1.key\"\n",
        "router.router-id",
        2,
    );
    assert_why(&e, "IPv4 address");
    let e = f.only_error(
        "[router]\nrouter-id = \"0.0.0.0\"\nprivate-key-file = \"r1.key\"\n",
        "router.router-id",
        2,
    );
    assert_why(&e, "unicast");
    let e = f.only_error(
        &with_router("listen-address = \"any\"\n"),
        "router.listen-address",
        4,
    );
    assert_why(&e, "IP address");
}

#[test]
fn display_is_file_line_field_why() {
    let e = ConfigError {
        file: Path::new("r1.toml").into(),
        line: Some(12),
        field: "tunnel[2].endpoint".into(),
        why: "expected IP:port".into(),
    };
    assert_eq!(
        e.to_string(),
        "r1.toml:12: tunnel[2].endpoint: expected IP:port"
    );
}

#[test]
fn unreadable_config_file_is_one_error() {
    let errors = load_file(Path::new("/nonexistent/wgrd.toml")).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert!(errors
        .to_string()
        .starts_with("/nonexistent/wgrd.toml: file: cannot read"));
}

#[test]
fn docs_full_example_is_valid() {
    // The first TOML block of docs/config.md is the full example; it must stay loadable.
    let doc = include_str!("../../../docs/config.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let len = doc[start..].find("```").unwrap();
    let f = Fixture::new();
    let c = f.ok(&doc[start..start + len]);
    assert_eq!((c.tunnels.len(), c.routes.len()), (2, 3));
    assert!(c.host.is_some_and(|h| h.export_routes));
}

#[test]
fn control_defaults_and_paths() {
    let f = Fixture::new();
    let c = f.ok(ROUTER);
    assert_eq!(c.control, ControlConfig::default());
    let c = f.ok(&format!(
        "{ROUTER}[control]\nsocket = \"wgrd.sock\"\npersist = true\n\
         listen = \"127.0.0.1:9771\"\nplaintext = true\n"
    ));
    assert_eq!(c.control.socket, f.dir.path().join("wgrd.sock"));
    assert!(c.control.persist && c.control.plaintext);
    assert_eq!(c.control.listen, Some("127.0.0.1:9771".parse().unwrap()));
    let c = f.ok(&format!(
        "{ROUTER}[control]\nlisten = \"[::]:9771\"\ntls-cert = \"c.pem\"\n\
         tls-key = \"k.pem\"\ntls-client-ca = \"/etc/ca.pem\"\n"
    ));
    let tls = c.control.tls.unwrap();
    assert_eq!(tls.cert, f.dir.path().join("c.pem"));
    assert_eq!(tls.client_ca, PathBuf::from("/etc/ca.pem"));
}

#[test]
fn control_tcp_needs_tls_or_loopback_plaintext() {
    let f = Fixture::new();
    let e = f.only_error(
        &format!("{ROUTER}[control]\nlisten = \"0.0.0.0:9771\"\nplaintext = true\n"),
        "control.listen",
        5,
    );
    assert!(e.why.contains("loopback"), "{e}");
    let e = f.only_error(
        &format!("{ROUTER}[control]\nlisten = \"127.0.0.1:9771\"\n"),
        "control.listen",
        5,
    );
    assert!(e.why.contains("tls-cert"), "{e}");
    let e = f.only_error(
        &format!("{ROUTER}[control]\ntls-cert = \"c.pem\"\n"),
        "control.tls-cert",
        4,
    );
    assert!(e.why.contains("all three"), "{e}");
    f.only_error(
        &format!("{ROUTER}[control]\nlisten = \"nowhere\"\n"),
        "control.listen",
        5,
    );
}

// ------------------------------------------------------------ [forwarding] and [nat]

/// A router with a host TUN and one tunnel "to-ep" (lines 1-9); NAT text goes after.
const NAT_BASE: &str = "[router]\nrouter-id = \"10.255.0.1\"\nprivate-key-file = \"r1.key\"\n\
[host]\naddresses = [\"10.9.0.1/24\"]\n\
[[tunnel]]\nname = \"to-ep\"\npeer-public-key = \"{P0}\"\naddresses = [\"169.254.0.0/31\"]\n";

fn with_nat(rest: &str) -> String {
    format!("{NAT_BASE}{rest}")
}

#[test]
fn forwarding_and_nat_default_to_clamping_and_no_rules() {
    let f = Fixture::new();
    let c = f.ok(ROUTER);
    assert!(c.forwarding.mss_clamp);
    assert!(c.nat.is_empty() && !c.nat.set_sysctls);
    let c = f.ok(&with_router("[forwarding]\nmss-clamp = false\n"));
    assert!(!c.forwarding.mss_clamp);
}

#[test]
fn nat_rules_load_into_the_model() {
    let f = Fixture::new();
    let c = f.ok(&with_nat(
        r#"
[nat]
set-sysctls = true

[[nat.masquerade]]
out-interface = "eth1"

[[nat.masquerade]]
from = ["tunnel:to-ep", "10.0.0.0/24", "fd00::/64"]
out-interface = "eth2"

[[nat.port-forward]]
in-interface = "eth1"
protocol = "tcp"
port = 8080
to = "10.0.0.1:80"

[[nat.port-forward]]
in-interface = "eth1"
protocol = "udp"
port = 8080
to = "[fd00::1]:53"
masquerade = false
"#,
    ));
    let expected = NatConfig {
        set_sysctls: true,
        masquerade: vec![
            Masquerade {
                from: vec![NatSource::AllTunnels],
                out_interface: "eth1".into(),
            },
            Masquerade {
                from: vec![
                    NatSource::Tunnel("to-ep".into()),
                    NatSource::Prefix("10.0.0.0/24".parse().unwrap()),
                    NatSource::Prefix("fd00::/64".parse().unwrap()),
                ],
                out_interface: "eth2".into(),
            },
        ],
        port_forwards: vec![
            PortForward {
                in_interface: "eth1".into(),
                protocol: NatProtocol::Tcp,
                port: 8080,
                to: "10.0.0.1:80".parse().unwrap(),
                masquerade: true,
            },
            PortForward {
                in_interface: "eth1".into(),
                protocol: NatProtocol::Udp,
                port: 8080,
                to: "[fd00::1]:53".parse().unwrap(),
                masquerade: false,
            },
        ],
    };
    assert_eq!(c.nat, expected);
}

#[test]
fn nat_errors_name_the_field_and_line() {
    let f = Fixture::new();
    // Lines: 10 is the first after NAT_BASE.
    let e = f.only_error(
        &with_nat("[[nat.masquerade]]\nfrom = [\"tunnel:to-eq\"]\nout-interface = \"eth1\"\n"),
        "nat.masquerade[1].from[1]",
        11,
    );
    assert_why(&e, "did you mean \"tunnel:to-ep\"");
    let e = f.only_error(
        &with_nat("[[nat.masquerade]]\nfrom = [\"10.0.0.1/24\"]\nout-interface = \"eth1\"\n"),
        "nat.masquerade[1].from[1]",
        11,
    );
    assert_why(&e, "the prefix is 10.0.0.0/24");
    let e = f.only_error(
        &with_nat("[[nat.masquerade]]\nfrom = []\nout-interface = \"eth1\"\n"),
        "nat.masquerade[1].from",
        11,
    );
    assert_why(&e, "empty");
    let e = f.only_error(
        &with_nat("[[nat.masquerade]]\nout-interface = \"wgrd0\"\n"),
        "nat.masquerade[1].out-interface",
        11,
    );
    assert_why(&e, "wgrd's own TUN");
    let e = f.only_error(
        &with_nat("[[nat.masquerade]]\n"),
        "nat.masquerade[1].out-interface",
        10,
    );
    assert_why(&e, "missing");
    let e = f.only_error(
        &with_nat(
            "[[nat.masquerade]]\nout-interface = \"eth1\"\nfrom = [\"tunnel:*\", \"tunnel:*\"]\n",
        ),
        "nat.masquerade[1].from[2]",
        12,
    );
    assert_why(&e, "twice");

    let pf = |body: &str| with_nat(&format!("[[nat.port-forward]]\n{body}"));
    let e = f.only_error(
        &pf("in-interface = \"eth1\"\nprotocol = \"icmp\"\nport = 1\nto = \"10.0.0.1:80\"\n"),
        "nat.port-forward[1].protocol",
        12,
    );
    assert_why(&e, "\"tcp\" or \"udp\"");
    let e = f.only_error(
        &pf("in-interface = \"eth1\"\nprotocol = \"tcp\"\nport = 0\nto = \"10.0.0.1:80\"\n"),
        "nat.port-forward[1].port",
        13,
    );
    assert_why(&e, "out of range 1..=65535");
    let e = f.only_error(
        &pf("in-interface = \"eth1\"\nprotocol = \"tcp\"\nport = 1\nto = \"10.0.0.1\"\n"),
        "nat.port-forward[1].to",
        14,
    );
    assert_why(&e, "IP:port");
    let e = f.only_error(
        &pf("in-interface = \"eth 1\"\nprotocol = \"tcp\"\nport = 1\nto = \"10.0.0.1:80\"\n"),
        "nat.port-forward[1].in-interface",
        11,
    );
    assert_why(&e, "whitespace");
    let e = f.only_error(
        &pf("in-interface = \"eth1\"\nprotocol = \"tcp\"\nport = 1\nto = \"10.0.0.1:80\"\nmasquerad = true\n"),
        "nat.port-forward[1].masquerad",
        15,
    );
    assert_why(&e, "did you mean masquerade");
    let e = f.only_error(
        &with_nat(
            "[[nat.port-forward]]\nin-interface = \"eth1\"\nprotocol = \"tcp\"\nport = 80\nto = \"10.0.0.1:80\"\n\
             [[nat.port-forward]]\nin-interface = \"eth1\"\nprotocol = \"tcp\"\nport = 80\nto = \"10.0.0.2:80\"\n",
        ),
        "nat.port-forward[2].port",
        15,
    );
    assert_why(&e, "already forwarded by nat.port-forward[1] (line 10)");
    let e = f.only_error(
        &with_nat("[nat]\nset-sysctl = true\n"),
        "nat.set-sysctl",
        11,
    );
    assert_why(&e, "did you mean set-sysctls");
    let e = f.only_error(
        &with_router("[forwarding]\nmss-clamp = 1\n"),
        "forwarding.mss-clamp",
        5,
    );
    assert_why(&e, "true or false");
}

#[test]
fn nat_needs_a_host_section() {
    let f = Fixture::new();
    let e = f.only_error(
        &with_router("\n[[nat.masquerade]]\nout-interface = \"eth1\"\n"),
        "nat",
        5,
    );
    assert_why(&e, "needs a [host] section");
    // An empty [nat] is fine without a host.
    f.ok(&with_router("[nat]\nset-sysctls = true\n"));
}

#[test]
fn nat_and_forwarding_round_trip_through_save() {
    let f = Fixture::new();
    let text = f.text(&with_nat(
        r#"
[forwarding]
mss-clamp = false # PMTUD works here

# the LAN side
[[nat.masquerade]]
out-interface = "eth1"

[[nat.port-forward]]
in-interface = "eth1"
protocol = "tcp"
port = 8080
to = "10.0.0.1:80" # the web server
"#,
    ));
    let path = f.config_path();
    fs::write(&path, &text).unwrap();
    let mut c = load_file(&path).unwrap();
    super::save::save(&path, &c).unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        text,
        "unchanged saves as is"
    );

    c.nat.port_forwards[0].port = 8081;
    c.nat.masquerade.push(Masquerade {
        from: vec![NatSource::Prefix("192.0.2.0/24".parse().unwrap())],
        out_interface: "eth2".into(),
    });
    c.nat.set_sysctls = true;
    c.forwarding.mss_clamp = true;
    super::save::save(&path, &c).unwrap();
    let saved = fs::read_to_string(&path).unwrap();
    assert!(saved.contains("# the web server"), "{saved}");
    assert!(saved.contains("port = 8081"), "{saved}");
    assert_eq!(load_file(&path).unwrap(), c);

    c.nat = NatConfig::default();
    super::save::save(&path, &c).unwrap();
    let saved = fs::read_to_string(&path).unwrap();
    // Not just "nat": the temporary directory's random name may contain it.
    assert!(
        !saved.contains("[nat") && !saved.contains("[[nat"),
        "{saved}"
    );
    assert_eq!(load_file(&path).unwrap(), c);
}

// ------------------------------------------------------------ [ospf]

/// A router with one tunnel "to-r2" (lines 1-7); OSPF text goes after.
const OSPF_BASE: &str = "[router]\nrouter-id = \"10.255.0.1\"\nprivate-key-file = \"r1.key\"\n\
[[tunnel]]\nname = \"to-r2\"\npeer-public-key = \"{P0}\"\naddresses = [\"169.254.0.0/31\"]\n";

#[test]
fn ospf_is_off_without_its_section_and_defaults_with_it() {
    let f = Fixture::new();
    assert_eq!(f.ok(ROUTER).ospf, None);
    let c = f.ok(&format!("{OSPF_BASE}[ospf]\n"));
    assert_eq!(c.ospf, Some(OspfConfig::default()));
    let o = c.ospf.unwrap();
    assert!(o.enabled && o.area.is_unspecified() && o.profile == OspfProfile::Default);
    assert_eq!(c.tunnels[0].ospf, None);
}

#[test]
fn ospf_section_and_tunnel_keys_load_into_the_model() {
    let f = Fixture::new();
    let c = f.ok(&format!(
        "{OSPF_BASE}ospf = {{ cost = 5, profile = \"fast\", hello = 2, dead = 7 }}\n\
         [ospf]\nenabled = true\narea = \"0.0.0.0\"\nprofile = \"fast\"\n\
         redistribute = [{{ from = \"connected\" }}, {{ from = \"static\", metric = 30, type = 1 }}]\n"
    ));
    let o = c.ospf.unwrap();
    assert_eq!(o.profile, OspfProfile::Fast);
    assert_eq!(
        o.redistribute,
        vec![
            OspfRedistribute {
                from: RedistributeFrom::Connected,
                metric: DEFAULT_EXTERNAL_METRIC,
                metric_type: 2,
                prefix_list: vec![],
            },
            OspfRedistribute {
                from: RedistributeFrom::Static,
                metric: 30,
                metric_type: 1,
                prefix_list: vec![],
            },
        ]
    );
    assert_eq!(
        c.tunnels[0].ospf,
        Some(TunnelOspf {
            disabled: false,
            area: None,
            cost: Some(5),
            hello: Some(2),
            dead: Some(7),
            profile: Some(OspfProfile::Fast),
            auth: None,
            liveness_ms: None,
        })
    );
    let c = f.ok(&format!(
        "{OSPF_BASE}ospf = {{ enabled = false }}\n[ospf]\narea = 7\n"
    ));
    assert!(c.tunnels[0].ospf.as_ref().unwrap().disabled);
    assert_eq!(c.ospf.unwrap().area, std::net::Ipv4Addr::new(0, 0, 0, 7));
}

#[test]
fn ospf_errors_name_the_field_and_line() {
    let f = Fixture::new();
    let e = f.only_error(
        &format!("{OSPF_BASE}[ospf]\nprofile = \"turbo\"\n"),
        "ospf.profile",
        9,
    );
    assert_why(&e, "\"fast\"");
    let e = f.only_error(
        &format!("{OSPF_BASE}[ospf]\nredistribute = [{{ from = \"rip\" }}]\n"),
        "ospf.redistribute[1].from",
        9,
    );
    assert_why(&e, "\"bgp\"");
    f.only_error(
        &format!("{OSPF_BASE}[ospf]\nredistribute = [{{ from = \"static\", type = 3 }}]\n"),
        "ospf.redistribute[1].type",
        9,
    );
    f.only_error(
        &format!("{OSPF_BASE}[ospf]\narea = \"x\"\n"),
        "ospf.area",
        9,
    );
    f.only_error(&format!("{OSPF_BASE}[ospf]\nhello = 3\n"), "ospf.hello", 9);
    let e = f.only_error(
        &format!("{OSPF_BASE}ospf = {{ hello = 5, dead = 5 }}\n"),
        "tunnel[1].ospf.dead",
        8,
    );
    assert_why(&e, "longer than the hello");
    f.only_error(
        &format!("{OSPF_BASE}ospf = {{ cost = 0 }}\n"),
        "tunnel[1].ospf.cost",
        8,
    );
    f.only_error(
        &format!("{OSPF_BASE}ospf = {{ costs = 1 }}\n"),
        "tunnel[1].ospf.costs",
        8,
    );
}

#[test]
fn ospf_redistribute_takes_bgp_and_prefix_lists() {
    let f = Fixture::new();
    let c = f.ok(&format!(
        "{OSPF_BASE}[ospf]\n\
         redistribute = [{{ from = \"bgp\", metric = 50, prefix-list = [\"10.0.0.0/8 le 24\", \"192.168.1.0/24\", \"172.16.0.0/12 ge 20 le 28\"] }}]\n"
    ));
    let r = &c.ospf.unwrap().redistribute[0];
    assert_eq!(r.from, RedistributeFrom::Bgp);
    assert_eq!((r.metric, r.metric_type), (50, 2));
    let p = |s: &str| s.parse::<ipnetwork::IpNetwork>().unwrap();
    assert_eq!(
        r.prefix_list,
        vec![
            PrefixListEntry {
                prefix: p("10.0.0.0/8"),
                ge: None,
                le: Some(24)
            },
            PrefixListEntry {
                prefix: p("192.168.1.0/24"),
                ge: None,
                le: None
            },
            PrefixListEntry {
                prefix: p("172.16.0.0/12"),
                ge: Some(20),
                le: Some(28)
            },
        ]
    );
}

#[test]
fn ospf_redistribute_prefix_list_errors_name_the_entry_and_line() {
    let f = Fixture::new();
    let bad = |list: &str| {
        format!("{OSPF_BASE}[ospf]\nredistribute = [\n  {{ from = \"static\" }},\n  {{ from = \"bgp\", prefix-list = {list} }},\n]\n")
    };
    // Errors point at the line of the entry.
    let e = f.only_error(
        &bad("[\"10.0.0.0/8 le 40\"]"),
        "ospf.redistribute[2].prefix-list[1]",
        11,
    );
    assert_why(&e, "le 40");
    let e = f.only_error(
        &bad("[\"10.0.0.0/8\", \"10.1.0.1/16\"]"),
        "ospf.redistribute[2].prefix-list[2]",
        11,
    );
    assert_why(&e, "10.1.0.0/16");
    let e = f.only_error(
        &bad("[\"2001:db8::/32\"]"),
        "ospf.redistribute[2].prefix-list[1]",
        11,
    );
    assert_why(&e, "IPv4");
    let e = f.only_error(
        &bad("[\"10.0.0.0/8 ge 9 le 8\"]"),
        "ospf.redistribute[2].prefix-list[1]",
        11,
    );
    assert_why(&e, "greater");
    f.only_error(
        &bad("\"10.0.0.0/8\""),
        "ospf.redistribute[2].prefix-list",
        11,
    );
    f.only_error(&bad("[8]"), "ospf.redistribute[2].prefix-list[1]", 11);
}

#[test]
fn ospf_keys_survive_a_save() {
    let f = Fixture::new();
    let text = f.text(&format!(
        "{OSPF_BASE}ospf = {{ cost = 5 }} # cheap\n[ospf] # the speaker\nprofile = \"fast\"\n"
    ));
    let path = f.config_path();
    fs::write(&path, &text).unwrap();
    let mut c = load_file(&path).unwrap();
    // Unchanged: byte for byte.
    save::save(&path, &c).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    // Changed: the new values reload equal, comments kept.
    c.tunnels[0].ospf = Some(TunnelOspf {
        disabled: true,
        cost: Some(7),
        ..Default::default()
    });
    c.ospf.as_mut().unwrap().redistribute = vec![
        OspfRedistribute {
            from: RedistributeFrom::Static,
            metric: 20,
            metric_type: 1,
            prefix_list: vec![],
        },
        OspfRedistribute {
            from: RedistributeFrom::Bgp,
            metric: 20,
            metric_type: 2,
            prefix_list: vec![PrefixListEntry {
                prefix: "10.0.0.0/8".parse().unwrap(),
                ge: Some(16),
                le: Some(24),
            }],
        },
    ];
    save::save(&path, &c).unwrap();
    let saved = fs::read_to_string(&path).unwrap();
    assert!(saved.contains("# the speaker"), "{saved}");
    assert_eq!(load_file(&path).unwrap(), c);
    c.ospf = None;
    c.tunnels[0].ospf = None;
    save::save(&path, &c).unwrap();
    let saved = fs::read_to_string(&path).unwrap();
    assert!(!saved.contains("ospf"), "{saved}");
    assert_eq!(load_file(&path).unwrap(), c);
}

#[test]
fn ospf_auth_reads_the_key_file_and_never_shows_it() {
    let f = Fixture::new();
    f.write_key("ospf.key", "not-so-secret-ospf-key", 0o600);
    let c = f.ok(&format!(
        "{OSPF_BASE}ospf = {{ auth = {{ key-id = 3, key-file = \"ospf.key\" }} }}\n[ospf]\n"
    ));
    let a = c.tunnels[0].ospf.as_ref().unwrap().auth.clone().unwrap();
    assert_eq!(a.key_id, 3);
    assert_eq!(a.algorithm, OspfAuthType::HmacSha256);
    assert_eq!(a.key.0, b"not-so-secret-ospf-key");
    assert!(!format!("{c:?}").contains("not-so-secret"));
    // Saved back as written: the file name, not the key.
    let path = f.config_path();
    fs::write(&path, f.text(&format!("{OSPF_BASE}[ospf]\n"))).unwrap();
    save::save(&path, &c).unwrap();
    let saved = fs::read_to_string(&path).unwrap();
    assert!(
        saved.contains("key-file = \"ospf.key\"") && !saved.contains("not-so-secret"),
        "{saved}"
    );
    assert_eq!(load_file(&path).unwrap(), c);
    f.write_key("md5.key", "sixteen-bytes-ok", 0o600);
    let c = f.ok(&format!(
        "{OSPF_BASE}ospf = {{ auth = {{ key-id = 1, key-file = \"md5.key\", type = \"md5\" }} }}\n"
    ));
    assert_eq!(
        c.tunnels[0]
            .ospf
            .as_ref()
            .unwrap()
            .auth
            .as_ref()
            .unwrap()
            .algorithm,
        OspfAuthType::Md5
    );
}

#[test]
fn ospf_auth_problems_are_reported_without_the_key() {
    let f = Fixture::new();
    f.write_key("open.key", "open-secret", 0o644);
    let e = f.only_error(
        &format!("{OSPF_BASE}ospf = {{ auth = {{ key-id = 1, key-file = \"open.key\" }} }}\n"),
        "tunnel[1].ospf.auth.key-file",
        8,
    );
    assert_why(&e, "readable by everyone");
    f.write_key("long.key", "seventeen-bytes!!", 0o600);
    let e = f.only_error(
        &format!(
            "{OSPF_BASE}ospf = {{ auth = {{ key-id = 1, key-file = \"long.key\", type = \"md5\" }} }}\n"
        ),
        "tunnel[1].ospf.auth.key-file",
        8,
    );
    assert_why(&e, "md5 keys are at most 16");
    assert!(!e.to_string().contains("seventeen"));
    f.write_key("ok.key", "k", 0o600);
    f.only_error(
        &format!(
            "{OSPF_BASE}ospf = {{ auth = {{ key-id = 1, key-file = \"ok.key\", type = \"sha1\" }} }}\n"
        ),
        "tunnel[1].ospf.auth.type",
        8,
    );
    f.only_error(
        &format!("{OSPF_BASE}ospf = {{ auth = {{ key-id = 256, key-file = \"ok.key\" }} }}\n"),
        "tunnel[1].ospf.auth.key-id",
        8,
    );
}

#[test]
fn ospf_liveness_ms_loads_at_both_levels_and_survives_a_save() {
    let f = Fixture::new();
    let c = f.ok(&format!(
        "{OSPF_BASE}ospf = {{ liveness-ms = 300 }}\n[ospf]\nliveness-ms = 60000\n"
    ));
    assert_eq!(c.tunnels[0].ospf.as_ref().unwrap().liveness_ms, Some(300));
    assert_eq!(c.ospf.as_ref().unwrap().liveness_ms, Some(60_000));
    let c = f.ok(&format!("{OSPF_BASE}[ospf]\nliveness-ms = 100\n"));
    assert_eq!(c.ospf.as_ref().unwrap().liveness_ms, Some(100));
    // 0 turns liveness off (it is on by default).
    let c = f.ok(&format!("{OSPF_BASE}[ospf]\nliveness-ms = 0\n"));
    assert_eq!(c.ospf.as_ref().unwrap().liveness_ms, Some(0));
    assert_eq!(
        f.ok(&format!("{OSPF_BASE}[ospf]\n"))
            .ospf
            .unwrap()
            .liveness_ms,
        None
    );

    let text = f.text(&format!(
        "{OSPF_BASE}ospf = {{ liveness-ms = 300 }}\n[ospf]\nliveness-ms = 500 # quick\n"
    ));
    let path = f.config_path();
    fs::write(&path, &text).unwrap();
    let mut c = load_file(&path).unwrap();
    save::save(&path, &c).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    c.ospf.as_mut().unwrap().liveness_ms = Some(250);
    c.tunnels[0].ospf.as_mut().unwrap().liveness_ms = None;
    save::save(&path, &c).unwrap();
    let saved = fs::read_to_string(&path).unwrap();
    assert!(saved.contains("liveness-ms = 250"), "{saved}");
    assert_eq!(load_file(&path).unwrap(), c);
    c.ospf.as_mut().unwrap().liveness_ms = None;
    save::save(&path, &c).unwrap();
    let saved = fs::read_to_string(&path).unwrap();
    assert!(!saved.contains("liveness"), "{saved}");
    assert_eq!(load_file(&path).unwrap(), c);
}

#[test]
fn ospf_liveness_ms_outside_100_ms_to_60_s_is_refused() {
    let f = Fixture::new();
    for bad in ["99", "1"] {
        let e = f.only_error(
            &format!("{OSPF_BASE}[ospf]\nliveness-ms = {bad}\n"),
            "ospf.liveness-ms",
            9,
        );
        assert_why(&e, "0 (off) or 100..=60000");
    }
    for bad in ["60001", "-5"] {
        let e = f.only_error(
            &format!("{OSPF_BASE}[ospf]\nliveness-ms = {bad}\n"),
            "ospf.liveness-ms",
            9,
        );
        assert_why(&e, "0..=60000");
    }
    let e = f.only_error(
        &format!("{OSPF_BASE}ospf = {{ liveness-ms = 50 }}\n"),
        "tunnel[1].ospf.liveness-ms",
        8,
    );
    assert_why(&e, "100..=60000");
    let e = f.only_error(
        &format!("{OSPF_BASE}[ospf]\nliveness-ms = \"300ms\"\n"),
        "ospf.liveness-ms",
        9,
    );
    assert_why(&e, "integer");
}

#[test]
fn ospf_areas_and_a_tunnels_area_load_and_survive_a_save() {
    let f = Fixture::new();
    let c = f.ok(&format!(
        "{OSPF_BASE}ospf = {{ area = \"0.0.0.1\", cost = 5 }}\n[ospf]\n\
         [[ospf.areas]]\nid = \"0.0.0.1\"\nstub = true\ndefault-cost = 7\n\
         [[ospf.areas]]\nid = 2\nstub = true\nno-summary = true\n"
    ));
    assert_eq!(
        c.tunnels[0].ospf.as_ref().unwrap().area,
        Some(std::net::Ipv4Addr::new(0, 0, 0, 1))
    );
    let o = c.ospf.as_ref().unwrap();
    assert_eq!(o.area, std::net::Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        o.areas,
        vec![
            OspfArea {
                id: "0.0.0.1".parse().unwrap(),
                stub: true,
                no_summary: false,
                default_cost: 7,
                ranges: vec![],
            },
            OspfArea {
                id: "0.0.0.2".parse().unwrap(),
                stub: true,
                no_summary: true,
                default_cost: DEFAULT_STUB_DEFAULT_COST,
                ranges: vec![],
            },
        ]
    );
    // Saved and loaded again: the same model; unchanged text stays byte for byte.
    let text = f.text(&format!(
        "{OSPF_BASE}ospf = {{ area = \"0.0.0.1\" }}\n[ospf]\n\
         [[ospf.areas]] # the branch\nid = \"0.0.0.1\"\nstub = true\n"
    ));
    let path = f.config_path();
    fs::write(&path, &text).unwrap();
    let mut c = load_file(&path).unwrap();
    save::save(&path, &c).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    c.ospf.as_mut().unwrap().areas[0].default_cost = 9;
    c.ospf.as_mut().unwrap().areas.push(OspfArea {
        id: "0.0.0.3".parse().unwrap(),
        stub: false,
        no_summary: false,
        default_cost: DEFAULT_STUB_DEFAULT_COST,
        ranges: vec!["10.3.0.0/16".parse().unwrap()],
    });
    c.tunnels[0].ospf.as_mut().unwrap().area = Some("0.0.0.3".parse().unwrap());
    save::save(&path, &c).unwrap();
    let saved = fs::read_to_string(&path).unwrap();
    assert!(saved.contains("# the branch"), "{saved}");
    assert!(saved.contains("default-cost = 9"), "{saved}");
    assert!(saved.contains("ranges = [\"10.3.0.0/16\"]"), "{saved}");
    assert_eq!(load_file(&path).unwrap(), c);
    c.ospf.as_mut().unwrap().areas.clear();
    save::save(&path, &c).unwrap();
    assert!(!fs::read_to_string(&path).unwrap().contains("areas"));
    assert_eq!(load_file(&path).unwrap(), c);
}

#[test]
fn ospf_area_errors_name_the_field_and_line() {
    let f = Fixture::new();
    f.only_error(
        &format!("{OSPF_BASE}ospf = {{ area = \"zero\" }}\n"),
        "tunnel[1].ospf.area",
        8,
    );
    f.only_error(
        &format!("{OSPF_BASE}[ospf]\n[[ospf.areas]]\nid = \"0.0.0.0\"\nstub = true\n"),
        "ospf.areas[1].stub",
        11,
    );
    f.only_error(
        &format!("{OSPF_BASE}[ospf]\n[[ospf.areas]]\nid = 1\nno-summary = true\n"),
        "ospf.areas[1].no-summary",
        11,
    );
    f.only_error(
        &format!("{OSPF_BASE}[ospf]\n[[ospf.areas]]\nid = 1\ndefault-cost = 3\n"),
        "ospf.areas[1].default-cost",
        11,
    );
    f.only_error(
        &format!("{OSPF_BASE}[ospf]\n[[ospf.areas]]\nid = 1\n[[ospf.areas]]\nid = \"0.0.0.1\"\n"),
        "ospf.areas[2].id",
        11,
    );
    f.only_error(
        &format!("{OSPF_BASE}[ospf]\n[[ospf.areas]]\nstub = true\n"),
        "ospf.areas[1].id",
        9,
    );
    f.only_error(
        &format!("{OSPF_BASE}[ospf]\n[[ospf.areas]]\nid = 1\nstubby = true\n"),
        "ospf.areas[1].stubby",
        11,
    );
    f.only_error(
        &format!("{OSPF_BASE}[ospf]\n[[ospf.areas]]\nid = 1\nranges = [\"10.1.0.0/16\", \"10.1.2.3/16\"]\n"),
        "ospf.areas[1].ranges[2]",
        11,
    );
    f.only_error(
        &format!("{OSPF_BASE}[ospf]\n[[ospf.areas]]\nid = 1\nranges = [\"fd00::/8\"]\n"),
        "ospf.areas[1].ranges[1]",
        11,
    );
}
