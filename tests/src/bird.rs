//! BIRD 2 in a namespace for interop tests: its own config, control socket and log in a
//! temporary directory; killed on drop (its log is printed when the test fails).

use crate::{wait_until, Netns};
use anyhow::{bail, Result};
use std::time::Duration;

pub struct Bird {
    child: std::process::Child,
    dir: tempfile::TempDir,
    ns: String,
}

impl Bird {
    /// Starts `bird -f` with `conf` in `ns` and waits for its control socket.
    pub fn start(ns: &Netns, conf: &str) -> Result<Bird> {
        let dir = tempfile::Builder::new().prefix("wgrdt-bird-").tempdir()?;
        let conf_path = dir.path().join("bird.conf");
        std::fs::write(&conf_path, conf)?;
        let sock = dir.path().join("bird.ctl");
        let log = dir.path().join("bird.log");
        let child = ns.spawn(
            &[
                "bird",
                "-f",
                "-c",
                &conf_path.to_string_lossy(),
                "-s",
                &sock.to_string_lossy(),
                "-P",
                &dir.path().join("bird.pid").to_string_lossy(),
            ],
            &log,
            &[],
        )?;
        let mut b = Bird {
            child,
            dir,
            ns: ns.name().to_string(),
        };
        wait_until("bird's control socket", Duration::from_secs(10), || {
            sock.exists() || matches!(b.child.try_wait(), Ok(Some(_)))
        })?;
        if let Ok(Some(status)) = b.child.try_wait() {
            bail!("bird exited ({status}):\n{}", b.log());
        }
        Ok(b)
    }

    /// One `birdc` command (words split on white space).
    pub fn birdc(&self, cmd: &str) -> Result<String> {
        let sock = self.dir.path().join("bird.ctl");
        let sock_s = sock.to_string_lossy().to_string();
        let mut args = vec!["birdc", "-s", &sock_s];
        args.extend(cmd.split_whitespace());
        crate::util::run("birdc", &args, Duration::from_secs(5))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bird.log")).unwrap_or_default()
    }

    /// Replace the config and have BIRD load it.
    pub fn reconfigure(&self, conf: &str) -> Result<()> {
        std::fs::write(self.dir.path().join("bird.conf"), conf)?;
        let out = self.birdc("configure")?;
        anyhow::ensure!(out.contains("Reconfigur"), "birdc configure: {out}");
        Ok(())
    }

    /// BIRD's own view of a protocol: `show protocols NAME` says Established.
    pub fn protocol_established(&self, name: &str) -> bool {
        self.birdc(&format!("show protocols {name}"))
            .is_ok_and(|s| s.contains("Established"))
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- bird log ({}) ---\n{}", self.ns, self.log());
        }
    }
}
