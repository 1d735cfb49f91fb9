//! The gRPC API, in process: two routers over loopback UDP (no root, no TUN), the API
//! served on a temporary Unix socket, every RPC driven through the generated clients.
//!
//! Router 1 is started from a config file (so SaveConfig and `persist` have somewhere to
//! write) and serves the API; router 2 is its peer, dialing in over tunnel `to-r1`, and
//! carries traffic while router 1's config is changed.

use hyper_util::rt::TokioIo;
use prost::Message as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;
use wgrd::config::{self, Config, RouteVia, StaticRoute, TunnelConfig};
use wgrd::control::{Control, ControlServer, ListenError};
use wgrd::keys::PrivateKey;
use wgrd::router::Router;
use wgrd_proto::v1 as pb;

mod common;

const WAIT: Duration = Duration::from_secs(10);

/// Every log line of this test binary, to check that no key is ever logged.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(Arc::clone(&buf));
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    })
}

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Router 1 (from a file, with the API) and router 2 (its peer).
struct Lab {
    dir: tempfile::TempDir,
    r1: Arc<Router>,
    r2: Router,
    server: Option<ControlServer>,
    channel: Channel,
    r1_key: PrivateKey,
    r2_key: PrivateKey,
    /// An inline preshared key of tunnel `spare` (must never be shown).
    spare_psk: String,
}

fn config_text(r2_pub: &str, spare_pub: &str, psk: &str, extra: &str) -> String {
    format!(
        "# router 1\n\
         [router]\n\
         router-id = \"10.255.0.1\"\n\
         private-key-file = \"r1.key\"\n\
         listen-port = 0\n\
         listen-address = \"127.0.0.1\"\n\
         \n\
         [[tunnel]]\n\
         name = \"to-r2\" # carries the traffic\n\
         peer-public-key = \"{r2_pub}\"\n\
         addresses = [\"169.254.1.0/31\"]\n\
         \n\
         [[tunnel]]\n\
         name = \"spare\"\n\
         peer-public-key = \"{spare_pub}\"\n\
         preshared-key = \"{psk}\"\n\
         addresses = [\"169.254.3.0/31\"]\n\
         \n\
         [[route]]\n\
         prefix = \"10.255.0.2/32\"\n\
         via = \"to-r2\"\n\
         \n\
         [control]\n\
         socket = \"api.sock\"\n\
         {extra}"
    )
}

impl Lab {
    async fn start(extra: &str) -> Lab {
        logs();
        let dir = tempfile::tempdir().unwrap();
        let r1_key = PrivateKey::generate();
        let r2_key = PrivateKey::generate();
        let key_file = dir.path().join("r1.key");
        std::fs::write(&key_file, r1_key.to_base64()).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let spare_psk = PrivateKey::generate().to_base64();
        let text = config_text(
            &r2_key.public_key().to_base64(),
            &PrivateKey::generate().public_key().to_base64(),
            &spare_psk,
            extra,
        );
        let path = dir.path().join("r1.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = config::load_file(&path).unwrap();
        let settings = config.control.clone();
        let r1 = Arc::new(Router::start(config).await.unwrap());
        let r1_addr: SocketAddr = (Ipv4Addr::LOCALHOST, r1.local_ports()[0]).into();
        let r2 = Router::start(r2_config(&r2_key, &r1_key, r1_addr))
            .await
            .unwrap();
        let control = Arc::new(Control::new(Arc::clone(&r1), Some(path)));
        let server = ControlServer::start(control, &settings).await.unwrap();
        let channel = unix_channel(server.socket()).await;
        Lab {
            dir,
            r1,
            r2,
            server: Some(server),
            channel,
            r1_key,
            r2_key,
            spare_psk,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("r1.toml")
    }

    fn system(&self) -> pb::system_client::SystemClient<Channel> {
        pb::system_client::SystemClient::new(self.channel.clone())
    }
    fn tunnels(&self) -> pb::tunnels_client::TunnelsClient<Channel> {
        pb::tunnels_client::TunnelsClient::new(self.channel.clone())
    }
    fn routes(&self) -> pb::routes_client::RoutesClient<Channel> {
        pb::routes_client::RoutesClient::new(self.channel.clone())
    }
    fn events(&self) -> pb::events_client::EventsClient<Channel> {
        pb::events_client::EventsClient::new(self.channel.clone())
    }

    async fn running_config(&self) -> Config {
        self.r1.config().await
    }

    async fn tunnel(&self, name: &str) -> pb::Tunnel {
        self.tunnels()
            .get(pb::GetTunnelRequest { name: name.into() })
            .await
            .unwrap()
            .into_inner()
    }

    /// Every secret of the lab as text (base64 as configured).
    fn secrets(&self) -> Vec<String> {
        vec![
            self.r1_key.to_base64(),
            self.r2_key.to_base64(),
            self.spare_psk.clone(),
        ]
    }

    fn assert_no_secret_in_logs(&self) {
        let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
        for s in self.secrets() {
            assert!(!text.contains(&s), "a key is in the logs");
        }
    }

    async fn stop(mut self) {
        self.assert_no_secret_in_logs();
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        self.r2.shutdown().await;
        self.r1.shutdown().await;
    }
}

fn r2_config(own: &PrivateKey, r1: &PrivateKey, r1_addr: SocketAddr) -> Config {
    Config {
        router: config::RouterConfig {
            router_id: Ipv4Addr::new(10, 255, 0, 2),
            private_key: own.clone(),
            private_key_file: None,
            listen_port: 0,
            listen_address: Some(Ipv4Addr::LOCALHOST.into()),
        },
        host: None,
        tunnels: vec![TunnelConfig {
            name: "to-r1".into(),
            peer_public_key: r1.public_key(),
            preshared_key: None,
            preshared_key_file: None,
            endpoint: Some(r1_addr),
            persistent_keepalive: Some(1),
            addresses: vec!["169.254.1.1/31".parse().unwrap()],
            mtu: 1420,
            listen_port: None,
            ospf: None,
        }],
        routes: vec![StaticRoute {
            prefix: "10.255.0.1/32".parse().unwrap(),
            via: RouteVia::Tunnel("to-r1".into()),
        }],
        control: Default::default(),
        forwarding: Default::default(),
        nat: Default::default(),
        ospf: None,
        bgp: None,
        policies: vec![],
        prefix_lists: vec![],
    }
}

async fn unix_channel(path: &Path) -> Channel {
    let path = path.to_owned();
    Endpoint::try_from("http://wgrd.sock")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(&path).await?))
            }
        }))
        .await
        .unwrap()
}

/// Router 2 (10.255.0.2) pings router 1 (10.255.0.1) through to-r1 until a reply with
/// this sequence number comes back (bounded by WAIT).
async fn ping(r2: &Router, local: &mut common::LocalRx, seq: u16) -> bool {
    let (src, dst) = (Ipv4Addr::new(10, 255, 0, 2), Ipv4Addr::new(10, 255, 0, 1));
    common::ping_until(r2, local, src, dst, seq, Duration::from_millis(300), WAIT)
        .await
        .is_some()
}

fn toml_input(text: String) -> Option<pb::ConfigInput> {
    Some(pb::ConfigInput {
        source: Some(pb::config_input::Source::Toml(text)),
    })
}

fn typed_input(c: pb::Config) -> Option<pb::ConfigInput> {
    Some(pb::ConfigInput {
        source: Some(pb::config_input::Source::Config(c)),
    })
}

/// The problems in an INVALID_ARGUMENT / FAILED_PRECONDITION status's details.
fn problems(s: &tonic::Status) -> Vec<pb::ConfigProblem> {
    pb::ConfigProblems::decode(s.details()).unwrap().problems
}

fn new_tunnel(name: &str, address: &str) -> pb::TunnelSettings {
    pb::TunnelSettings {
        name: name.into(),
        peer_public_key: PrivateKey::generate().public_key().to_base64(),
        addresses: vec![address.into()],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_version_status_and_redacted_config() {
    let lab = Lab::start("").await;
    let mut system = lab.system();
    let v = system
        .version(pb::VersionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.api, "wgrd.v1");
    assert!(!v.version.is_empty());

    let s = system
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.router_id, "10.255.0.1");
    assert_eq!(s.public_key, lab.r1_key.public_key().to_base64());
    assert_eq!(s.tunnels, 2);
    assert_eq!(s.listen_ports, vec![u32::from(lab.r1.local_ports()[0])]);
    assert!(s.fib_routes >= 3 && s.rib_prefixes >= 3);
    assert_eq!(s.config_file, lab.path().display().to_string());

    let got = system
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    let c = got.config.clone().unwrap();
    let names: Vec<_> = c.tunnels.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["to-r2", "spare"]);
    // The router key comes from a file: the file is shown. The inline psk is not.
    use pb::secret::Source;
    assert_eq!(
        c.router
            .as_ref()
            .unwrap()
            .private_key
            .as_ref()
            .unwrap()
            .source,
        Some(Source::File(
            lab.dir.path().join("r1.key").display().to_string()
        ))
    );
    assert_eq!(
        c.tunnels[1].preshared_key.as_ref().unwrap().source,
        Some(Source::Redacted(true))
    );
    assert!(
        got.toml.contains("preshared-key = \"(redacted)\""),
        "{}",
        got.toml
    );
    // No key material anywhere in the response, in any encoding we can think of.
    let bytes = got.encode_to_vec();
    let shown = format!("{got:?}");
    for secret in lab.secrets() {
        assert!(!shown.contains(&secret));
        assert!(!String::from_utf8_lossy(&bytes).contains(&secret));
    }
    let raw_psk = base64_decode(&lab.spare_psk);
    assert!(!bytes.windows(32).any(|w| w == raw_psk.as_slice()));
    lab.stop().await;
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_config_lists_every_problem_without_changing_anything() {
    let lab = Lab::start("").await;
    let before = lab.running_config().await;
    let mut system = lab.system();
    let good = std::fs::read_to_string(lab.path()).unwrap();
    let r = system
        .validate_config(pb::ValidateConfigRequest {
            input: toml_input(good.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.valid, "{:?}", r.problems);

    let bad = good
        .replace("\"169.254.3.0/31\"", "\"not an address\"")
        .replace("via = \"to-r2\"", "via = \"to-r9\"");
    let r = system
        .validate_config(pb::ValidateConfigRequest {
            input: toml_input(bad),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.valid);
    let fields: Vec<_> = r.problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["tunnel[2].addresses[1]", "route[1].via"]);
    assert!(r.problems.iter().all(|p| p.line > 0));
    assert_eq!(lab.running_config().await, before);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_config_changes_one_tunnel_while_the_other_keeps_its_session() {
    let lab = Lab::start("").await;
    // Traffic over to-r2: router 2 pings router 1 through its tunnel.
    let mut r2_local = lab.r2.take_local_packets().unwrap();
    assert!(ping(&lab.r2, &mut r2_local, 1).await, "no reply over to-r2");
    let before = lab.tunnel("to-r2").await;
    assert!(before.session_up && before.handshakes >= 1);

    // Declarative apply of the whole config, typed, as GetConfig returned it, with the
    // spare tunnel changed (its MTU: kept session) and a new route.
    let mut system = lab.system();
    let mut c = system
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    c.tunnels[1].mtu = Some(1300);
    c.routes.push(pb::StaticRoute {
        prefix: "10.99.0.0/16".into(),
        via: Some(pb::static_route::Via::Tunnel("spare".into())),
    });
    let r = system
        .apply_config(pb::ApplyConfigRequest {
            input: typed_input(c.clone()),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    let s = r.summary.unwrap();
    assert_eq!(s.tunnels_updated, ["spare"]);
    assert!(s.tunnels_replaced.is_empty() && s.tunnels_added.is_empty());
    assert!(s.routes_changed >= 1);
    assert!(!r.saved, "persist is off");
    // The redacted psk was kept.
    let running = lab.running_config().await;
    assert_eq!(
        running.tunnels[1]
            .preshared_key
            .as_ref()
            .map(|k| k.0.to_vec()),
        Some(base64_decode(&lab.spare_psk))
    );
    assert_eq!(running.tunnels[1].mtu, 1300);

    // A keepalive change on spare rebuilds spare only.
    c.tunnels[1].persistent_keepalive = Some(25);
    let s = system
        .apply_config(pb::ApplyConfigRequest {
            input: typed_input(c.clone()),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner()
        .summary
        .unwrap();
    assert_eq!(s.tunnels_replaced, ["spare"]);

    // to-r2 kept its session: same handshake count, counters still growing (not reset).
    assert!(
        ping(&lab.r2, &mut r2_local, 2).await,
        "no reply after the change"
    );
    let after = lab.tunnel("to-r2").await;
    assert!(after.rx_packets > before.rx_packets);
    assert!(after.session_up);
    assert_eq!(after.handshakes, before.handshakes);
    assert!(after.rx_bytes > before.rx_bytes);

    // Applying the same again changes nothing; a dry run predicts without changing.
    let s = system
        .apply_config(pb::ApplyConfigRequest {
            input: typed_input(c.clone()),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner()
        .summary
        .unwrap();
    assert!(s.unchanged, "{s:?}");
    c.tunnels.remove(1);
    c.routes.retain(|r| r.prefix != "10.99.0.0/16");
    let s = system
        .apply_config(pb::ApplyConfigRequest {
            input: typed_input(c),
            dry_run: true,
        })
        .await
        .unwrap()
        .into_inner()
        .summary
        .unwrap();
    assert_eq!(s.tunnels_removed, ["spare"]);
    assert_eq!(lab.running_config().await.tunnels.len(), 2);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnels_add_get_update_delete_and_their_errors() {
    let lab = Lab::start("").await;
    let mut tunnels = lab.tunnels();
    let list = tunnels
        .list(pb::ListTunnelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .tunnels;
    assert_eq!(list.len(), 2);

    let psk = PrivateKey::generate().to_base64();
    let mut t = new_tunnel("to-r3", "169.254.4.0/31");
    t.endpoint = Some("127.0.0.1:9".into());
    t.preshared_key = Some(pb::Secret {
        source: Some(pb::secret::Source::Value(psk.clone())),
    });
    let s = tunnels
        .add(pb::AddTunnelRequest {
            tunnel: Some(t.clone()),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner()
        .summary
        .unwrap();
    assert_eq!(s.tunnels_added, ["to-r3"]);
    let got = lab.tunnel("to-r3").await;
    assert_eq!(got.configured_endpoint, "127.0.0.1:9");
    assert_eq!(got.addresses, ["169.254.4.0/31"]);
    let e = tunnels
        .add(pb::AddTunnelRequest {
            tunnel: Some(t.clone()),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);

    // Update: the psk is left out, so it is kept; the MTU changes; the session is kept.
    t.preshared_key = None;
    t.mtu = Some(1280);
    let s = tunnels
        .update(pb::UpdateTunnelRequest {
            tunnel: Some(t.clone()),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner()
        .summary
        .unwrap();
    assert_eq!(s.tunnels_updated, ["to-r3"]);
    assert_eq!(lab.tunnel("to-r3").await.mtu, 1280);
    let running = lab.running_config().await;
    assert!(running.tunnel("to-r3").unwrap().preshared_key.is_some());

    // Unknown names.
    let mut ghost = t.clone();
    ghost.name = "ghost".into();
    let e = tunnels
        .update(pb::UpdateTunnelRequest {
            tunnel: Some(ghost),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = tunnels
        .get(pb::GetTunnelRequest {
            name: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("ghost"));

    // Deleting a tunnel that a route uses is refused unless the routes go too.
    let e = tunnels
        .delete(pb::DeleteTunnelRequest {
            name: "to-r2".into(),
            with_routes: false,
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(problems(&e)[0].field, "route[1].via");
    let s = tunnels
        .delete(pb::DeleteTunnelRequest {
            name: "to-r3".into(),
            with_routes: false,
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner()
        .summary
        .unwrap();
    assert_eq!(s.tunnels_removed, ["to-r3"]);
    let e = tunnels
        .delete(pb::DeleteTunnelRequest {
            name: "to-r3".into(),
            with_routes: false,
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let s = tunnels
        .delete(pb::DeleteTunnelRequest {
            name: "to-r2".into(),
            with_routes: true,
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner()
        .summary
        .unwrap();
    assert_eq!(s.tunnels_removed, ["to-r2"]);
    assert!(lab.running_config().await.routes.is_empty());
    let logs = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(!logs.contains(&psk));
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_cleanly_and_changes_nothing() {
    let lab = Lab::start("").await;
    let before = lab.running_config().await;
    let mut tunnels = lab.tunnels();
    let mut system = lab.system();

    // Two problems in one tunnel: both reported, by field path; the bad key not quoted.
    let secretish = format!("{}!", lab.r1_key.to_base64());
    let mut t = new_tunnel("bad", "169.254.9.0/31");
    t.peer_public_key = secretish.clone();
    t.endpoint = Some("no such place".into());
    let e = tunnels
        .add(pb::AddTunnelRequest {
            tunnel: Some(t),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let fields: Vec<_> = problems(&e).into_iter().map(|p| p.field).collect();
    assert_eq!(fields, ["tunnel[3].peer-public-key", "tunnel[3].endpoint"]);
    assert!(!e.message().contains(&secretish) && !e.message().contains(&lab.r1_key.to_base64()));

    // Our own public key as a peer's, an invalid preshared key.
    let mut t = new_tunnel("bad2", "169.254.9.0/31");
    t.peer_public_key = lab.r1_key.public_key().to_base64();
    t.preshared_key = Some(pb::Secret {
        source: Some(pb::secret::Source::Value("short".into())),
    });
    let e = tunnels
        .add(pb::AddTunnelRequest {
            tunnel: Some(t),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(problems(&e).len(), 2, "{}", e.message());

    // TOML that does not parse: the line is reported.
    let e = system
        .apply_config(pb::ApplyConfigRequest {
            input: toml_input("[router]\nrouter-id = \n".into()),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(problems(&e)[0].line, 2);

    // What needs a restart is refused as such.
    let text = std::fs::read_to_string(lab.path())
        .unwrap()
        .replace("listen-port = 0", "listen-port = 51999")
        .replace("socket = \"api.sock\"", "socket = \"other.sock\"");
    let e = system
        .apply_config(pb::ApplyConfigRequest {
            input: toml_input(text),
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(e.message().contains("control.socket"), "{}", e.message());

    // Missing parts of requests.
    let e = system
        .apply_config(pb::ApplyConfigRequest {
            input: None,
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = tunnels
        .add(pb::AddTunnelRequest {
            tunnel: None,
            dry_run: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = lab
        .routes()
        .lookup(pb::LookupRequest {
            address: "10.0.0.300".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Nothing changed, and the daemon still answers.
    assert_eq!(lab.running_config().await, before);
    system.version(pb::VersionRequest {}).await.unwrap();
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_list_lookup_add_and_delete_static() {
    let lab = Lab::start("").await;
    let mut routes = lab.routes();
    let rib = routes
        .list(pb::ListRoutesRequest {
            table: pb::RouteTable::Rib.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .routes;
    let find = |list: &[pb::Route], p: &str| list.iter().find(|r| r.prefix == p).cloned();
    let r = find(&rib, "10.255.0.2/32").unwrap();
    assert_eq!((r.source.as_str(), r.best), ("static", true));
    assert_eq!(find(&rib, "169.254.1.0/31").unwrap().source, "connected");
    let fib = routes
        .list(pb::ListRoutesRequest {
            table: pb::RouteTable::Fib.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .routes;
    assert!(find(&fib, "10.255.0.2/32").is_some());

    let lookup = |address: &str| {
        let mut routes = lab.routes();
        let address = address.to_owned();
        async move {
            routes
                .lookup(pb::LookupRequest { address })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let l = lookup("10.255.0.2").await;
    assert!(l.found);
    assert_eq!(
        l.next_hop.unwrap().kind,
        Some(pb::next_hop::Kind::Tunnels(pb::TunnelSet {
            names: vec!["to-r2".into()]
        }))
    );
    assert!(!lookup("10.77.1.1").await.found);

    let add = pb::AddStaticRequest {
        route: Some(pb::StaticRoute {
            prefix: "10.77.0.0/16".into(),
            via: Some(pb::static_route::Via::Blackhole(true)),
        }),
        dry_run: false,
    };
    routes.add_static(add.clone()).await.unwrap();
    let l = lookup("10.77.1.1").await;
    assert_eq!(l.prefix, "10.77.0.0/16");
    assert_eq!(
        l.next_hop.unwrap().kind,
        Some(pb::next_hop::Kind::Blackhole(true))
    );
    assert_eq!(
        routes.add_static(add).await.unwrap_err().code(),
        Code::AlreadyExists
    );
    let bad = pb::AddStaticRequest {
        route: Some(pb::StaticRoute {
            prefix: "10.78.0.1/16".into(),
            via: Some(pb::static_route::Via::Tunnel("nowhere".into())),
        }),
        dry_run: false,
    };
    let e = routes.add_static(bad).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(problems(&e).len(), 2, "{}", e.message());

    let del = pb::DeleteStaticRequest {
        prefix: "10.77.0.0/16".into(),
        dry_run: false,
    };
    routes.delete_static(del.clone()).await.unwrap();
    assert!(!lookup("10.77.1.1").await.found);
    assert_eq!(
        routes.delete_static(del).await.unwrap_err().code(),
        Code::NotFound
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_state_then_marker_then_live_changes() {
    let lab = Lab::start("").await;
    let mut stream = lab
        .events()
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    use pb::event::Kind;
    let mut tunnels = Vec::new();
    let mut routes = Vec::new();
    loop {
        let e = tokio::time::timeout(WAIT, stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match e.kind.unwrap() {
            Kind::TunnelState(t) => tunnels.push(t.name),
            Kind::RouteState(r) => routes.push(r.prefix),
            Kind::InitialStateDone(_) => break,
            // Live events may be interleaved only after the marker.
            other => panic!("live event before the marker: {other:?}"),
        }
    }
    assert_eq!(tunnels, ["to-r2", "spare"]);
    assert!(routes.contains(&"10.255.0.2/32".to_owned()), "{routes:?}");

    // A change made now arrives as a live event.
    lab.routes()
        .add_static(pb::AddStaticRequest {
            route: Some(pb::StaticRoute {
                prefix: "10.88.0.0/16".into(),
                via: Some(pb::static_route::Via::Tunnel("spare".into())),
            }),
            dry_run: false,
        })
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no live route event");
        let e = tokio::time::timeout(WAIT, stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(Kind::RouteChanged(r)) = e.kind {
            if r.prefix == "10.88.0.0/16" {
                assert_eq!(r.route.unwrap().source, "static");
                break;
            }
        }
    }
    // Stopping the server ends the stream instead of hanging shutdown.
    let mut lab = lab;
    let s = lab.server.take().unwrap();
    tokio::time::timeout(WAIT, s.shutdown()).await.unwrap();
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .unwrap();
    assert!(!matches!(end, Ok(Some(_))));
    lab.stop().await;
}

/// The next event of a Watch stream (fails the test after [`WAIT`] or at the end).
async fn next_event(stream: &mut tonic::Streaming<pb::Event>) -> pb::Event {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("no event")
        .unwrap()
        .expect("stream ended")
}

/// The n-th route of the churn below.
fn churn_prefix(n: usize) -> String {
    format!("10.90.{}.{}/32", n / 256, n % 256)
}

fn static_route(prefix: String, via: pb::static_route::Via) -> pb::AddStaticRequest {
    pb::AddStaticRequest {
        route: Some(pb::StaticRoute {
            prefix,
            via: Some(via),
        }),
        dry_run: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_started_during_route_churn_replays_to_the_final_routes() {
    use pb::event::Kind;
    use pb::static_route::Via;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    /// Changes made over the API; the watch starts after the first `WATCH_AFTER`.
    const CHURN: usize = 120;
    const WATCH_AFTER: usize = 20;
    /// Added once the churn is over: its event closes the history.
    const SENTINEL: &str = "10.99.99.0/24";
    let lab = Lab::start("").await;
    let done = Arc::new(AtomicUsize::new(0));
    let churn = {
        let mut routes = lab.routes();
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            for i in 0..CHURN {
                let via = match i % 3 {
                    0 => Via::Tunnel("spare".into()),
                    1 => Via::Tunnel("to-r2".into()),
                    _ => Via::Blackhole(true),
                };
                routes
                    .add_static(static_route(churn_prefix(i), via))
                    .await
                    .unwrap();
                // Removals too, and prefixes that come back with another next hop.
                if i % 2 == 1 {
                    routes
                        .delete_static(pb::DeleteStaticRequest {
                            prefix: churn_prefix(i - 1),
                            dry_run: false,
                        })
                        .await
                        .unwrap();
                }
                if i % 10 == 9 {
                    routes
                        .add_static(static_route(churn_prefix(i - 9), Via::Blackhole(true)))
                        .await
                        .unwrap();
                }
                done.store(i + 1, Ordering::SeqCst);
            }
            routes
                .add_static(static_route(SENTINEL.into(), Via::Blackhole(true)))
                .await
                .unwrap();
        })
    };
    let deadline = Instant::now() + WAIT;
    while done.load(Ordering::SeqCst) < WATCH_AFTER {
        assert!(Instant::now() < deadline, "the churn does not progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut stream = lab
        .events()
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    // Best route per prefix, as the watcher sees it.
    let mut seen: BTreeMap<String, pb::Route> = BTreeMap::new();
    loop {
        match next_event(&mut stream).await.kind.unwrap() {
            Kind::RouteState(r) => {
                seen.insert(r.prefix.clone(), r);
            }
            Kind::TunnelState(_) => {}
            Kind::InitialStateDone(_) => break,
            other => panic!("live event before the marker: {other:?}"),
        }
    }
    let churned_at_marker = done.load(Ordering::SeqCst);
    eprintln!("watch marker after {churned_at_marker} of {CHURN} churn steps");
    let mut live = 0;
    loop {
        let Kind::RouteChanged(change) = next_event(&mut stream).await.kind.unwrap() else {
            continue;
        };
        live += 1;
        let end = change.prefix == SENTINEL;
        match change.route {
            Some(r) => {
                assert_eq!(r.prefix, change.prefix);
                seen.insert(change.prefix, r);
            }
            None => {
                seen.remove(&change.prefix);
            }
        }
        if end {
            break;
        }
    }
    tokio::time::timeout(WAIT, churn).await.unwrap().unwrap();
    assert!(
        churned_at_marker < CHURN && live > 1,
        "the watch did not start during the churn ({churned_at_marker} changes before \
         the marker, {live} live route events)"
    );

    let listed: BTreeMap<String, pb::Route> = lab
        .routes()
        .list(pb::ListRoutesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .routes
        .into_iter()
        .filter(|r| r.best)
        .map(|r| (r.prefix.clone(), r))
        .collect();
    assert!(listed.contains_key(&churn_prefix(CHURN - 1)));
    let missing: Vec<_> = listed.keys().filter(|p| !seen.contains_key(*p)).collect();
    let extra: Vec<_> = seen.keys().filter(|p| !listed.contains_key(*p)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "replayed history differs from Routes/List: missing {missing:?}, extra {extra:?}"
    );
    assert_eq!(
        seen, listed,
        "a route differs between the history and the list"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_predicts_the_summary_of_the_real_apply() {
    use pb::static_route::Via;
    let lab = Lab::start("").await;
    let mut system = lab.system();
    let mut typed = system
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    // A new tunnel with two routes toward it, an address change that keeps a session,
    // and a static route removed: every kind of route change at once.
    typed.tunnels.push(new_tunnel("to-r4", "169.254.5.0/31"));
    typed.routes.push(pb::StaticRoute {
        prefix: "10.44.0.0/16".into(),
        via: Some(Via::Tunnel("to-r4".into())),
    });
    typed.routes.push(pb::StaticRoute {
        prefix: "10.45.0.0/16".into(),
        via: Some(Via::Blackhole(true)),
    });
    typed.tunnels[1].addresses = vec!["169.254.3.2/31".into()];
    typed.routes.retain(|r| r.prefix != "10.255.0.2/32");
    let apply = |dry_run| {
        let mut system = lab.system();
        let input = typed_input(typed.clone());
        async move {
            system
                .apply_config(pb::ApplyConfigRequest { input, dry_run })
                .await
                .unwrap()
                .into_inner()
                .summary
                .unwrap()
        }
    };
    let before = lab.running_config().await;
    let predicted = apply(true).await;
    assert_eq!(
        lab.running_config().await,
        before,
        "a dry run changed the config"
    );
    let lookup = lab
        .routes()
        .lookup(pb::LookupRequest {
            address: "10.44.1.1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!lookup.found, "a dry run changed the FIB: {lookup:?}");
    // connected 169.254.5.0/31 + .0/32, 169.254.3.0/31 + .0/32 gone, 169.254.3.2/31 +
    // .2/32 new, 10.44/16, 10.45/16 new, 10.255.0.2/32 gone.
    assert_eq!(predicted.routes_changed, 9, "{predicted:?}");
    assert_eq!(predicted.tunnels_added, ["to-r4"]);
    assert_eq!(predicted.tunnels_updated, ["spare"]);
    let applied = apply(false).await;
    assert_eq!(predicted, applied);
    // Nothing left to do: both say so.
    assert!(apply(true).await.unchanged);
    assert!(apply(false).await.unchanged);

    // Refusals are the router's too: a new listen port needs a restart.
    let mut moved = typed.clone();
    moved.tunnels[0].listen_port = Some(1);
    for dry_run in [true, false] {
        let e = system
            .apply_config(pb::ApplyConfigRequest {
                input: typed_input(moved.clone()),
                dry_run,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert_eq!(problems(&e)[0].field, "tunnel \"to-r2\".listen-port");
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_saves_every_change_and_a_restart_finds_it() {
    let lab = Lab::start("persist = true\n").await;
    let psk = PrivateKey::generate().to_base64();
    let mut t = new_tunnel("to-r3", "169.254.4.0/31");
    t.preshared_key = Some(pb::Secret {
        source: Some(pb::secret::Source::Value(psk.clone())),
    });
    let r = lab
        .tunnels()
        .add(pb::AddTunnelRequest {
            tunnel: Some(t),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.saved);
    let path = lab.path();
    let backup = path.with_file_name("r1.toml.bak");
    assert!(backup.exists());
    let text = std::fs::read_to_string(&path).unwrap();
    // Comments kept; the inline psk that was there stays; the new one went to a file.
    assert!(text.contains("# carries the traffic"), "{text}");
    assert!(text.contains(&lab.spare_psk));
    assert!(!text.contains(&psk), "{text}");
    assert!(
        text.contains("preshared-key-file = \"r1.keys/to-r3.psk\""),
        "{text}"
    );

    // SaveConfig explicitly, too.
    let saved = lab
        .system()
        .save_config(pb::SaveConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.path, path.display().to_string());
    assert_eq!(saved.backup, backup.display().to_string());

    // "Restart": stop everything, start a router from the saved file.
    let running = lab.running_config().await;
    let reloaded = config::load_file(&path).unwrap();
    let restarted = Router::start(reloaded.clone()).await.unwrap();
    assert!(restarted.tunnel("to-r3").await.is_some());
    let mut expected = running.clone();
    expected.tunnels[2].preshared_key_file = Some(path.with_file_name("r1.keys/to-r3.psk"));
    assert_eq!(reloaded, expected);
    restarted.shutdown().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_is_0660_stale_one_replaced_live_one_refused() {
    let lab = Lab::start("").await;
    let sock = lab.dir.path().join("api.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    // A second server on the same socket is refused while the first listens.
    let settings = lab.running_config().await.control;
    let control = Arc::new(Control::new(Arc::clone(&lab.r1), None));
    match ControlServer::start(Arc::clone(&control), &settings).await {
        Err(ListenError::InUse(p)) => assert_eq!(p, sock),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("two servers on one socket"),
    }
    // A stale socket (nobody listening) is replaced.
    let stale = lab.dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let mut settings2 = settings.clone();
    settings2.socket = stale.clone();
    let server = ControlServer::start(control, &settings2).await.unwrap();
    let channel = unix_channel(&stale).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "wgrd.v1.System".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // SaveConfig without a config file is a clean error.
    let e = pb::system_client::SystemClient::new(channel)
        .save_config(pb::SaveConfigRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    server.shutdown().await;
    assert!(!stale.exists());
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let lab = Lab::start("").await;
    let mut client = ServerReflectionClient::new(lab.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let r = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = r.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "wgrd.v1.System",
        "wgrd.v1.Tunnels",
        "wgrd.v1.Routes",
        "wgrd.v1.Events",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_status_and_forwarding_survive_a_typed_apply() {
    // No [nat] here: nothing may run nft (these tests run in the host's namespace).
    let lab = Lab::start("\n[forwarding]\nmss-clamp = false\n").await;
    let mut system = lab.system();
    let n = system
        .nat_status(pb::NatStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!n.installed);
    assert_eq!(n.table, "inet wgrd");
    assert!(n.rules.is_empty() && n.sysctls.is_empty() && n.notes.is_empty());
    assert!(!lab.r1.path().forwarder.mss_clamp());

    // A typed config has no [forwarding] / [nat] fields: the running ones carry over.
    let c = system
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    system
        .apply_config(pb::ApplyConfigRequest {
            input: typed_input(c),
            dry_run: false,
        })
        .await
        .unwrap();
    assert!(!lab.running_config().await.forwarding.mss_clamp);
    assert!(!lab.r1.path().forwarder.mss_clamp());

    // A TOML apply can switch it back on, at once.
    let text = std::fs::read_to_string(lab.path())
        .unwrap()
        .replace("mss-clamp = false", "mss-clamp = true");
    system
        .apply_config(pb::ApplyConfigRequest {
            input: toml_input(text),
            dry_run: false,
        })
        .await
        .unwrap();
    assert!(lab.r1.path().forwarder.mss_clamp());
    lab.stop().await;
}

/// `[bgp]` and `[[policy]]` of router 1, with comments to keep.
const BGP: &str = "persist = true\n\
    \n\
    # routing by BGP\n\
    [bgp]\n\
    asn = 65001 # ours\n\
    \n\
    [[bgp.neighbor]]\n\
    tunnel = \"to-r2\"\n\
    remote-as = 65002\n\
    import = \"in\"\n\
    export = \"out\"\n\
    \n\
    [[policy]]\n\
    name = \"in\"\n\
    default = \"accept\"\n\
    \n\
    [[policy]]\n\
    name = \"out\"\n\
    rules = [{ match = { prefix-list = [\"10.0.0.0/8 le 24\"] }, action = \"accept\" }]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bgp_survives_typed_applies_config_show_and_saves() {
    let lab = Lab::start(BGP).await;
    let before = lab.running_config().await;
    assert!(before.bgp.is_some() && before.policies.len() == 2);
    let mut system = lab.system();

    // A typed apply has no BGP fields: a tunnel change keeps [bgp] and [[policy]], and
    // the save it causes keeps them as written.
    let got = system
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut c = got.config.unwrap();
    c.tunnels[1].mtu = Some(1300);
    let r = system
        .apply_config(pb::ApplyConfigRequest {
            input: typed_input(c),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.saved);
    let running = lab.running_config().await;
    assert_eq!(running.tunnels[1].mtu, 1300);
    assert_eq!(running.bgp, before.bgp);
    assert_eq!(running.policies, before.policies);
    let text = std::fs::read_to_string(lab.path()).unwrap();
    for kept in ["# routing by BGP", "asn = 65001 # ours", "[[bgp.neighbor]]"] {
        assert!(text.contains(kept), "{kept} lost:\n{text}");
    }
    assert_eq!(config::load_file(&lab.path()).unwrap(), running);

    // So does a tunnel added through the Tunnels service.
    lab.tunnels()
        .add(pb::AddTunnelRequest {
            tunnel: Some(new_tunnel("to-r3", "169.254.4.0/31")),
            dry_run: false,
        })
        .await
        .unwrap();
    assert_eq!(lab.running_config().await.bgp, before.bgp);

    // `wgrctl config show` shows BGP; applying what it shows keeps BGP.
    let shown = system
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .toml;
    assert!(
        shown.contains("[bgp]") && shown.contains("[[policy]]"),
        "{shown}"
    );
    system
        .apply_config(pb::ApplyConfigRequest {
            input: toml_input(shown.clone()),
            dry_run: false,
        })
        .await
        .unwrap();
    let running = lab.running_config().await;
    assert_eq!(running.bgp, before.bgp);
    assert_eq!(running.policies, before.policies);

    // A BGP change through TOML is applied and saved, the rest of the file as it was.
    let changed = shown.replace("asn = 65001\n", "asn = 65001\nhold-time = 30\n");
    assert_ne!(changed, shown);
    system
        .apply_config(pb::ApplyConfigRequest {
            input: toml_input(changed),
            dry_run: false,
        })
        .await
        .unwrap();
    let running = lab.running_config().await;
    assert_eq!(running.bgp.as_ref().unwrap().hold_time, 30);
    let text = std::fs::read_to_string(lab.path()).unwrap();
    assert!(
        text.contains("asn = 65001 # ours\nhold-time = 30\n"),
        "{text}"
    );
    assert!(text.contains("# routing by BGP"), "{text}");
    assert_eq!(config::load_file(&lab.path()).unwrap(), running);
    lab.stop().await;
}
