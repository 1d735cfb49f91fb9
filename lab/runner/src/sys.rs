//! Small system helpers: commands with a time bound, the processes inside a network
//! namespace (found through /proc, like `ip netns pids`), process start times (so a
//! recorded pid is never confused with a reused one), and signals.

use crate::error::LabError;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Bound for the runner's own configuration commands.
pub const SYS_TIMEOUT: Duration = Duration::from_secs(30);

/// Run `args` under coreutils `timeout` (SIGKILL 2 s after the bound), stdin closed.
pub fn run_output(
    args: &[String],
    timeout: Duration,
    envs: &[(String, String)],
) -> std::io::Result<Output> {
    let secs = format!("{:.1}", timeout.as_secs_f64());
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "2", &secs]).args(args);
    cmd.envs(envs.iter().map(|(k, v)| (k, v)));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.output()
}

/// How a command ended, for messages.
pub fn status_text(out: &Output, timeout: Duration) -> String {
    match out.status.code() {
        Some(124) | Some(137) => format!("timed out after {timeout:?}"),
        Some(c) => format!("exit {c}"),
        None => format!("{}", out.status),
    }
}

/// Stdout and stderr together, trimmed.
pub fn output_text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.trim_end();
    if !err.is_empty() {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(err);
    }
    s
}

/// Run one of the runner's own commands; an error names `what` and carries the output.
pub fn run(what: &str, args: &[&str]) -> Result<String, LabError> {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = run_output(&argv, SYS_TIMEOUT, &[])
        .map_err(|e| LabError::io(format!("{what}: spawn {}", args[0]), e))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(LabError::System {
        what: what.to_string(),
        command: args.join(" "),
        status: status_text(&out, SYS_TIMEOUT),
        output: output_text(&out),
    })
}

/// Path of a named network namespace.
pub fn netns_path(name: &str) -> std::path::PathBuf {
    Path::new("/run/netns").join(name)
}

/// Whether the named namespace exists.
pub fn netns_exists(name: &str) -> bool {
    netns_path(name).exists()
}

/// Pids of every process whose network namespace is the named one.
pub fn pids_in_netns(name: &str) -> Vec<i32> {
    let Ok(target) = std::fs::metadata(netns_path(name)) else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(m) = std::fs::metadata(format!("/proc/{pid}/ns/net")) {
            if m.dev() == target.dev() && m.ino() == target.ino() {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is the process recorded with `start`, still running (not a zombie).
pub fn alive(pid: i32, start: u64) -> bool {
    if start_time(pid) != Some(start) {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 2..].chars().next())
        .unwrap_or('Z');
    state != 'Z' && state != 'X'
}

/// Send `sig` to `pid`.
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; callers only pass pids of
    // processes inside namespaces this runner created.
    unsafe { libc::kill(pid, sig) };
}

/// Poll `cond` every 50 ms until it holds or `timeout` passes; whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Names of the interfaces in the calling process's (the host's) network namespace.
pub fn host_links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let t = start_time(me).expect("own stat");
        assert_eq!(start_time(me), Some(t));
        assert!(alive(me, t));
        assert!(!alive(me, t + 1));
    }
}
