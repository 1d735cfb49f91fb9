//! Running commands with bounded time and readable errors, the skip/require policy for
//! namespace tests, and the lock that serializes them.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Env switch that enables namespace tests; without it they print why and pass, so a
/// plain `cargo test` stays fast and rootless.
pub const ENV_ENABLE: &str = "WGRD_NETNS_TESTS";
/// Env switch that turns every skip into a failure (CI sets it: nothing is skipped there
/// without anyone noticing).
pub const ENV_REQUIRE: &str = "WGRD_REQUIRE_NETNS";

fn env_on(name: &str) -> bool {
    matches!(
        std::env::var(name).as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// Held for the duration of one namespace test: the lock that keeps namespace tests from
/// running at the same time (they are CPU-heavy and timing-sensitive on two cores).
pub struct NetnsTest {
    _lock: File,
    pub name: String,
}

/// Decide whether namespace test `name` runs. Returns `None` (after printing the reason)
/// when it should be skipped; panics instead when `WGRD_REQUIRE_NETNS=1`.
/// `tools` are programs that must be on PATH (for example `"wireguard-go"`, `"iperf3"`).
pub fn netns_test(name: &str, tools: &[&str]) -> Option<NetnsTest> {
    let reason = skip_reason(tools);
    if let Some(reason) = reason {
        if env_on(ENV_REQUIRE) {
            panic!("{name}: cannot run ({reason}) and {ENV_REQUIRE}=1 forbids skipping");
        }
        println!("SKIPPED {name}: {reason}");
        eprintln!("SKIPPED {name}: {reason}");
        return None;
    }
    let lock = lock_file().expect("namespace test lock");
    Some(NetnsTest {
        _lock: lock,
        name: name.to_string(),
    })
}

fn skip_reason(tools: &[&str]) -> Option<String> {
    if !env_on(ENV_ENABLE) {
        return Some(format!(
            "namespace test; set {ENV_ENABLE}=1 (as root) to run it"
        ));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (network namespaces, TUN)".into());
    }
    let mut needed = vec!["ip", "nsenter", "unshare", "ping", "ss", "timeout"];
    needed.extend_from_slice(tools);
    let missing: Vec<&str> = needed.into_iter().filter(|t| which(t).is_none()).collect();
    if !missing.is_empty() {
        return Some(format!(
            "missing tools: {} (Debian: wireguard-go wireguard-tools iperf3 iproute2 iputils-ping)",
            missing.join(", ")
        ));
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    None
}

/// One lock file for all namespace tests of all test binaries (and the lab scripts do
/// not take it; they are not run concurrently with the tests).
fn lock_file() -> Result<File> {
    let path = std::env::temp_dir().join("wgrd-netns-tests.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    // flock conflicts between separate open() calls even inside one process, so this
    // serializes the parallel test threads of one binary too.
    // SAFETY: a valid fd owned by `file`.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        bail!(
            "flock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(file)
}

/// The first `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Run a command to completion, bounded by `timeout` (the command is killed after it).
/// `what` names the context for the error message (for example the namespace).
pub fn run(what: &str, args: &[&str], timeout: Duration) -> Result<String> {
    let out = run_output(args, timeout, None)?;
    check(what, args, &out)
}

/// Like [`run`], with `stdin` fed to the command.
pub fn run_stdin(what: &str, args: &[&str], stdin: &str, timeout: Duration) -> Result<String> {
    let out = run_output(args, timeout, Some(stdin))?;
    check(what, args, &out)
}

/// Run and return the raw output, whatever the exit status.
pub fn run_output(args: &[&str], timeout: Duration, stdin: Option<&str>) -> Result<Output> {
    // coreutils `timeout` bounds the command without a watchdog thread here; -k makes
    // sure a command that ignores SIGTERM still ends.
    let secs = format!("{:.1}", timeout.as_secs_f64());
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "2", &secs]).args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawn `{}`", args.join(" ")))?;
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(input.as_bytes())?;
    }
    Ok(child.wait_with_output()?)
}

fn check(what: &str, args: &[&str], out: &Output) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status = match out.status.code() {
        Some(124) => "timed out".to_string(),
        Some(c) => format!("exit {c}"),
        None => format!("{}", out.status),
    };
    bail!(
        "{what}: `{}` failed ({status})\nstderr: {}\nstdout: {}",
        args.join(" "),
        stderr.trim(),
        stdout.trim()
    )
}

/// Poll `cond` every 100 ms until it returns true or `timeout` passes; the error says
/// what was awaited.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    loop {
        if cond() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Send `sig` to `pid` and wait up to `grace` for the process to exit (`child` reaped if
/// given); SIGKILL after that. Returns whether it exited within the grace time.
pub fn terminate(child: &mut std::process::Child, sig: i32, grace: Duration) -> bool {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return true;
    }
    // SAFETY: plain kill(2) on a pid we spawned and have not reaped yet.
    unsafe { libc::kill(child.id() as i32, sig) };
    let start = Instant::now();
    while start.elapsed() < grace {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}
