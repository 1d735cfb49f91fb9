//! Persistence against `kill -9`, with the real `wgrd` binary: a change made over the API
//! with `[control] persist = true` survives SIGKILL and a restart, and killing the daemon
//! at random moments while it saves again and again never leaves a config file (or its
//! `.bak`) that does not load, nor one that holds anything but the state before or after
//! the change in flight.
//!
//! No root: no `[host]`, `listen-port = 0` on loopback, the API on a Unix socket in a
//! temporary directory. Each daemon is killed by a guard when the test ends, pass or fail.

use hyper_util::rt::TokioIo;
use rand::Rng as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint, Uri};
use wgrd::config::{self, RouteVia};
use wgrd::keys::PrivateKey;
use wgrd_proto::v1 as pb;

const WGRD: &str = env!("CARGO_BIN_EXE_wgrd");
const WAIT: Duration = Duration::from_secs(10);

/// A directory with a key file and a config that persists every change.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("r1.key");
        std::fs::write(&key, PrivateKey::generate().to_base64()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let site = Site { dir };
        let text = format!(
            "# persisted by the API\n\
             [router]\n\
             router-id = \"10.255.0.1\"\n\
             private-key-file = \"r1.key\"\n\
             listen-port = 0\n\
             listen-address = \"127.0.0.1\"\n\
             \n\
             [control]\n\
             socket = \"{}\"\n\
             persist = true\n",
            site.socket().display()
        );
        std::fs::write(site.config(), text).unwrap();
        std::fs::set_permissions(site.config(), std::fs::Permissions::from_mode(0o600)).unwrap();
        site
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("r1.toml")
    }

    fn backup(&self) -> PathBuf {
        self.dir.path().join("r1.toml.bak")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("s.sock")
    }
}

/// A running `wgrd run`; SIGKILLed and reaped on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
    channel: Channel,
}

impl Daemon {
    /// Start wgrd on the site's config and wait until its API answers.
    async fn start(site: &Site, round: usize) -> Daemon {
        let log = site.dir.path().join(format!("wgrd-{round}.log"));
        let child = Command::new(WGRD)
            .args(["run", "-c", site.config().to_str().unwrap()])
            .args(["--log-level", "info"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start wgrd");
        let mut daemon = Daemon {
            child,
            log,
            channel: Endpoint::from_static("http://unused").connect_lazy(),
        };
        // The socket of a killed predecessor may still be on disk: only a connection
        // that the new daemon answers counts.
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("wgrd exited ({status}); log:\n{}", daemon.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "wgrd's API did not answer; log:\n{}",
                daemon.log_text()
            );
            if let Some(channel) = try_connect(&site.socket()).await {
                let mut system = pb::system_client::SystemClient::new(channel.clone());
                if system.version(pb::VersionRequest {}).await.is_ok() {
                    daemon.channel = channel;
                    return daemon;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn tunnels(&self) -> pb::tunnels_client::TunnelsClient<Channel> {
        pb::tunnels_client::TunnelsClient::new(self.channel.clone())
    }

    fn routes(&self) -> pb::routes_client::RoutesClient<Channel> {
        pb::routes_client::RoutesClient::new(self.channel.clone())
    }

    /// SIGKILL: no handler runs, nothing is flushed or cleaned up.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn try_connect(path: &Path) -> Option<Channel> {
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
        .ok()
}

fn blackhole(prefix: String) -> pb::AddStaticRequest {
    pb::AddStaticRequest {
        route: Some(pb::StaticRoute {
            prefix,
            via: Some(pb::static_route::Via::Blackhole(true)),
        }),
        dry_run: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_survives_kill_9_and_a_restart() {
    let site = Site::new();
    let daemon = Daemon::start(&site, 0).await;
    let added = daemon
        .tunnels()
        .add(pb::AddTunnelRequest {
            tunnel: Some(pb::TunnelSettings {
                name: "to-r9".into(),
                peer_public_key: PrivateKey::generate().public_key().to_base64(),
                endpoint: Some("127.0.0.1:9".into()),
                addresses: vec!["169.254.9.0/31".into()],
                ..Default::default()
            }),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(added.saved, "persist = true must save");
    let routed = daemon
        .routes()
        .add_static(pb::AddStaticRequest {
            route: Some(pb::StaticRoute {
                prefix: "10.9.0.0/16".into(),
                via: Some(pb::static_route::Via::Tunnel("to-r9".into())),
            }),
            dry_run: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(routed.saved);
    daemon.kill9();

    let daemon = Daemon::start(&site, 1).await;
    let tunnels = daemon
        .tunnels()
        .list(pb::ListTunnelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .tunnels;
    let names: Vec<&str> = tunnels.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["to-r9"], "log:\n{}", daemon.log_text());
    assert_eq!(tunnels[0].addresses, ["169.254.9.0/31"]);
    let routes = daemon
        .routes()
        .list(pb::ListRoutesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .routes;
    assert!(
        routes
            .iter()
            .any(|r| r.prefix == "10.9.0.0/16" && r.source == "static" && r.best),
        "{routes:?}"
    );
    // The comment at the top of the file survived both saves.
    let text = std::fs::read_to_string(site.config()).unwrap();
    assert!(text.starts_with("# persisted by the API\n"), "{text}");
}

/// The n-th route the churn adds (distinct for n < 65536).
fn nth_prefix(n: usize) -> String {
    format!("10.77.{}.{}/32", n / 256 % 256, n % 256)
}

/// How many churn routes a config file holds, if they are exactly the first n of them.
fn churn_state(path: &Path) -> usize {
    let config = config::load_file(path)
        .unwrap_or_else(|e| panic!("{} does not load after kill -9: {e:?}", path.display()));
    let n = config.routes.len();
    for (i, r) in config.routes.iter().enumerate() {
        assert_eq!(r.prefix.to_string(), nth_prefix(i), "{}", path.display());
        assert_eq!(r.via, RouteVia::Blackhole);
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_saving_leaves_the_old_or_the_new_file() {
    const ROUNDS: usize = 6;
    /// Bounds one round's churn should the kill come late.
    const MAX_APPLIES: usize = 400;
    let site = Site::new();
    let mut rng = rand::thread_rng();
    let mut total_acked = 0;
    for round in 0..ROUNDS {
        let start = churn_state(&site.config());
        let daemon = Daemon::start(&site, round).await;
        // Applies answered with `saved`, counted from `start`.
        let acked = Arc::new(AtomicUsize::new(start));
        let churn = {
            let mut routes = daemon.routes();
            let acked = Arc::clone(&acked);
            tokio::spawn(async move {
                for n in start..start + MAX_APPLIES {
                    match routes.add_static(blackhole(nth_prefix(n))).await {
                        Ok(r) => {
                            assert!(r.into_inner().saved);
                            acked.store(n + 1, Ordering::SeqCst);
                        }
                        // The daemon is gone.
                        Err(_) => return,
                    }
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..300))).await;
        let log = daemon.log_text();
        daemon.kill9();
        tokio::time::timeout(WAIT, churn).await.unwrap().unwrap();

        let last_acked = acked.load(Ordering::SeqCst);
        total_acked += last_acked - start;
        // The last answered change is on disk; the one in flight may be too.
        let on_disk = churn_state(&site.config());
        eprintln!("round {round}: acknowledged {start}..{last_acked}, on disk {on_disk}");
        assert!(
            on_disk == last_acked || on_disk == last_acked + 1,
            "round {round}: file has {on_disk} routes, {last_acked} were acknowledged; log:\n{log}"
        );
        if site.backup().exists() {
            // The .bak is the file before the last save (or, killed between writing the
            // .bak and the rename, the same as the file).
            let backup = churn_state(&site.backup());
            assert!(
                backup + 1 == on_disk || backup == on_disk,
                "round {round}: .bak has {backup} routes, the file {on_disk}"
            );
        } else {
            assert_eq!(on_disk, 0, "no .bak after a save");
        }
    }
    assert!(total_acked > 0, "no change was ever acknowledged");
    // Still a daemon that starts from what is left.
    let daemon = Daemon::start(&site, ROUNDS).await;
    let expected = churn_state(&site.config());
    let routes = daemon
        .routes()
        .list(pb::ListRoutesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .routes;
    let statics = routes.iter().filter(|r| r.source == "static").count();
    assert_eq!(statics, expected);
}
