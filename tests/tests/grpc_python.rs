//! The gRPC API driven by a client that is not Rust: Python `grpcio`, with stubs generated
//! from proto/proto/wgrd/v1/wgrd.proto at test time (`grpc_tools.protoc`), against a real
//! `wgrd run` (no root: UDP port 0 on loopback, no `[host]`, the API on a Unix socket in a
//! temporary directory). The client (tests/py/wgrd_orchestrator.py) lists tunnels, applies
//! a config that adds one, lists again and sees it, and gets an invalid config refused.
//!
//! The Python is `$WGRD_PYTHON` if set, else `<workspace>/target/py-venv/bin/python`
//! (what .ci/run creates: `/usr/bin/python3 -m venv target/py-venv &&
//! target/py-venv/bin/pip install grpcio grpcio-tools`). Without one that can import
//! `grpc` and `grpc_tools` the test prints why and passes, unless `WGRD_REQUIRE_NETNS=1`
//! (CI), where it fails.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wgrd_tests::util::{run_output, terminate, wait_until, ENV_REQUIRE};
use wgrd_tests::wgrd::wgrd_bin;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The Python to use and whether it has grpcio and grpcio-tools; Err is the skip reason.
fn python() -> std::result::Result<PathBuf, String> {
    let py = match std::env::var_os("WGRD_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => workspace().join("target/py-venv/bin/python"),
    };
    if !py.is_file() {
        return Err(format!(
            "no Python with grpcio at {} (set WGRD_PYTHON, or: /usr/bin/python3 -m venv \
             target/py-venv && target/py-venv/bin/pip install grpcio grpcio-tools; Debian: \
             python3-venv)",
            py.display()
        ));
    }
    let p = py.to_string_lossy().to_string();
    match run_output(
        &[&p, "-c", "import grpc, grpc_tools.protoc"],
        Duration::from_secs(60),
        None,
    ) {
        Ok(o) if o.status.success() => Ok(py),
        Ok(o) => Err(format!(
            "{} cannot import grpc/grpc_tools (pip install grpcio grpcio-tools): {}",
            py.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{}: {e:#}", py.display())),
    }
}

fn env_on(name: &str) -> bool {
    matches!(
        std::env::var(name).as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// `wgrd run` as a child process, stopped (SIGTERM, then SIGKILL) on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        terminate(&mut self.child, libc::SIGTERM, Duration::from_secs(10));
        eprintln!(
            "---- wgrd log ----\n{}\n---- end of wgrd log ----",
            self.log()
        );
    }
}

#[test]
fn python_grpc_client_lists_and_applies() -> Result<()> {
    let name = "python_grpc_client_lists_and_applies";
    let py = match python() {
        Ok(py) => py,
        Err(reason) => {
            if env_on(ENV_REQUIRE) {
                panic!("{name}: cannot run ({reason}) and {ENV_REQUIRE}=1 forbids skipping");
            }
            println!("SKIPPED {name}: {reason}");
            eprintln!("SKIPPED {name}: {reason}");
            return Ok(());
        }
    };
    let bin = wgrd_bin()?;
    let dir = tempfile::Builder::new().prefix("wgrdt-py-").tempdir()?;
    let key = dir.path().join("r1.key");
    // Test-only keys (from `wg genkey | tee k | wg pubkey`): no `wg` needed.
    std::fs::write(&key, "aAnMB/ASofkPZpB49s7jfNOVXZUtE7/AA1+4qSNTFEE=\n")?;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    let socket = dir.path().join("wgrd.sock");
    let config = dir.path().join("r1.toml");
    std::fs::write(
        &config,
        format!(
            "[router]\n\
             router-id = \"10.255.0.1\"\n\
             private-key-file = \"r1.key\"\n\
             listen-port = 0\n\
             listen-address = \"127.0.0.1\"\n\
             \n\
             [[tunnel]]\n\
             name = \"to-r2\"\n\
             peer-public-key = \"5h/2eU3rSLtBLh6BvDPqafdf+ytscrYPH2ZAXQymxVY=\"\n\
             addresses = [\"169.254.1.0/31\"]\n\
             \n\
             [control]\n\
             socket = \"{}\"\n",
            socket.display()
        ),
    )?;
    let log = dir.path().join("wgrd.log");
    let log_file = std::fs::File::create(&log)?;
    let child = Command::new(&bin)
        .args(["run", "-c"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    let mut daemon = Daemon { child, log };
    let up = wait_until("the API socket", Duration::from_secs(10), || {
        socket.exists() || matches!(daemon.child.try_wait(), Ok(Some(_)))
    });
    if up.is_err() || !socket.exists() {
        bail!("wgrd did not open its API socket; log:\n{}", daemon.log());
    }

    let script = workspace().join("tests/py/wgrd_orchestrator.py");
    let stubs = dir.path().join("stubs");
    std::fs::create_dir(&stubs)?;
    let args: Vec<String> = vec![
        py.to_string_lossy().into(),
        script.to_string_lossy().into(),
        socket.to_string_lossy().into(),
        workspace().join("proto/proto").to_string_lossy().into(),
        stubs.to_string_lossy().into(),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_output(&refs, Duration::from_secs(120), None)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if !out.status.success() || !stdout.lines().any(|l| l == "py: OK") {
        bail!(
            "the Python client failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nwgrd log:\n{}",
            out.status,
            daemon.log()
        );
    }
    // The daemon is still serving after all that.
    if !matches!(daemon.child.try_wait(), Ok(None)) {
        bail!("wgrd exited; log:\n{}", daemon.log());
    }
    Ok(())
}
