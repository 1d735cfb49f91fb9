//! `wgrd run` with a `[bgp]` section: the binary starts the BGP speaker and serves the
//! `Bgp` service (GetBgp over the API socket shows the configured AS and network), and
//! stops it cleanly on SIGTERM. Then `wgrctl bgp ...` against it, when the wgrctl binary
//! of this build sits next to wgrd (a workspace build): summary, announce with
//! attributes, routes as a table and as JSON, withdraw, and a withdraw of what is not
//! announced (exit 1, "not found"); the adj-in-pre table needs a neighbor.
//!
//! No root: no [host] (no TUN), an OS-chosen UDP port, no address neighbors (no kernel
//! listener on port 179).

use hyper_util::rt::TokioIo;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::{Endpoint, Uri};
use wgrd_proto::v1 as pb;

const WGRD: &str = env!("CARGO_BIN_EXE_wgrd");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The wgrctl of this build, if it was built and knows `bgp`.
fn wgrctl() -> Option<PathBuf> {
    let path = Path::new(WGRD).with_file_name("wgrctl");
    let ok = Command::new(&path)
        .args(["bgp", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(path)
}

fn ctl(wgrctl: &Path, socket: &Path, args: &[&str]) -> Output {
    Command::new(wgrctl)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

/// Kills the child if the test fails before it was stopped on purpose.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; harmless if it already exited.
        unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wgrd_run_serves_bgp_and_wgrctl_drives_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = Command::new(WGRD).arg("genkey").output().unwrap();
    assert!(key.status.success());
    let key_file = dir.path().join("r1.key");
    std::fs::write(&key_file, &key.stdout).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let socket = dir.path().join("wgrd.sock");
    let config = dir.path().join("r1.toml");
    std::fs::write(
        &config,
        format!(
            "[router]\nrouter-id = \"10.0.0.1\"\nprivate-key-file = \"r1.key\"\nlisten-port = 0\nlisten-address = \"127.0.0.1\"\n\n\
             [control]\nsocket = \"{}\"\n\n\
             [bgp]\nasn = 65001\nnetworks = [\"10.9.0.0/24\"]\n",
            socket.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(WGRD)
        .args(["run", "-c", config.to_str().unwrap(), "--log-level", "info"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child.id());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log: Vec<String> = Vec::new();
    while !log.iter().any(|l| l.contains("wgrd running")) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => log.push(line),
            Err(_) => panic!("wgrd did not report running; log:\n{}", log.join("\n")),
        }
    }

    // main.rs starts the speaker and hands it to the API.
    let path = socket.clone();
    let channel = Endpoint::try_from("http://wgrd.sock")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(&path).await?))
            }
        }))
        .await
        .unwrap();
    let mut client = pb::bgp_client::BgpClient::new(channel);
    let start = Instant::now();
    let g = loop {
        match client.get_bgp(pb::GetBgpRequest {}).await {
            Ok(g) => break g.into_inner(),
            Err(e) if e.code() == tonic::Code::FailedPrecondition => {
                assert!(start.elapsed() < Duration::from_secs(10), "{e:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    assert_eq!((g.asn, g.router_id.as_str()), (65001, "10.0.0.1"));
    assert_eq!((g.neighbors, g.originated), (0, 1));

    match wgrctl() {
        None => eprintln!("no wgrctl with `bgp` next to {WGRD}: its part is skipped"),
        Some(w) => {
            let out = ctl(&w, &socket, &["bgp", "summary"]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            let summary = text(&out.stdout);
            assert!(
                summary.starts_with("BGP AS 65001, router id 10.0.0.1, 0 neighbors"),
                "{summary}"
            );
            let out = ctl(
                &w,
                &socket,
                &[
                    "bgp",
                    "announce",
                    "192.0.2.0/24",
                    "--community",
                    "65001:7",
                    "--community",
                    "no-export",
                    "--med",
                    "5",
                    "--as-path",
                    "65010 65011",
                ],
            );
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert_eq!(text(&out.stdout).trim(), "announced 192.0.2.0/24");
            let out = ctl(&w, &socket, &["bgp", "routes"]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            let routes = text(&out.stdout);
            let line = routes
                .lines()
                .find(|l| l.contains("192.0.2.0/24"))
                .unwrap_or_else(|| panic!("{routes}"));
            assert!(line.starts_with('*'), "{routes}");
            assert!(
                line.contains("local")
                    && line.contains("65010 65011 i")
                    && line.contains("65001:7 65535:65281"),
                "{routes}"
            );
            assert!(routes.contains("10.9.0.0/24"), "{routes}");
            let out = ctl(&w, &socket, &["--json", "bgp", "routes", "192.0.2.0/24"]);
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json[0]["as_path"], serde_json::json!([65010, 65011]));
            assert_eq!(json[0]["med"], 5);
            assert_eq!(json[0]["peer"], "");
            let out = ctl(&w, &socket, &["bgp", "withdraw", "192.0.2.0/24"]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            let out = ctl(&w, &socket, &["bgp", "withdraw", "192.0.2.0/24"]);
            assert_eq!(out.status.code(), Some(1));
            assert!(
                text(&out.stderr).contains("not found"),
                "{}",
                text(&out.stderr)
            );
            let out = ctl(&w, &socket, &["bgp", "announce", "192.0.2.1/24"]);
            assert_eq!(out.status.code(), Some(1));
            assert!(
                text(&out.stderr).contains("host bits"),
                "{}",
                text(&out.stderr)
            );
            let out = ctl(&w, &socket, &["bgp", "routes"]);
            assert!(!text(&out.stdout).contains("192.0.2.0/24"));
            // The pre-policy table is per neighbor (clap refuses it without one), and
            // a neighbor that is not there is not found.
            let out = ctl(&w, &socket, &["bgp", "routes", "--table", "adj-in-pre"]);
            assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
            assert!(
                text(&out.stderr).contains("--neighbor"),
                "{}",
                text(&out.stderr)
            );
            let pre = [
                "bgp",
                "routes",
                "--table",
                "adj-in-pre",
                "--neighbor",
                "192.0.2.9",
            ];
            let out = ctl(&w, &socket, &pre);
            assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
            assert!(
                text(&out.stderr).contains("no BGP neighbor 192.0.2.9"),
                "{}",
                text(&out.stderr)
            );
        }
    }

    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "wgrd did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::mem::forget(guard);
    log.extend(rx.try_iter());
    assert_eq!(status.code(), Some(0), "log:\n{}", log.join("\n"));
}
