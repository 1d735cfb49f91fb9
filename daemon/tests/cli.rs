//! The `wgrd` binary from the outside: exit codes and output of `check`, `genkey`,
//! `pubkey`, `genpsk`, and `run` stopping on SIGTERM. No root needed; `wg` (from
//! wireguard-tools) is used for the compatibility checks when it is installed.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const WGRD: &str = env!("CARGO_BIN_EXE_wgrd");

fn wgrd(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(WGRD)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wgrd");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// `wg` from wireguard-tools, or `None` with the reason printed (CI installs it).
fn wg() -> Option<&'static str> {
    match Command::new("wg").arg("--version").output() {
        Ok(o) if o.status.success() => Some("wg"),
        _ => {
            eprintln!(
                "skipped: `wg` (wireguard-tools) is not on PATH; apt-get install wireguard-tools"
            );
            None
        }
    }
}

fn run_wg(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("wg")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "wg {args:?} failed");
    text(&out.stdout)
}

fn genkey() -> String {
    let out = wgrd(&["genkey"], "");
    assert!(out.status.success());
    text(&out.stdout).trim_end().to_owned()
}

fn pubkey(private: &str) -> String {
    let out = wgrd(&["pubkey"], &format!("{private}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim_end().to_owned()
}

/// A directory with a private key file and a config; removed on drop.
struct Site {
    dir: tempfile::TempDir,
    private: String,
}

impl Site {
    fn new() -> Self {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
            private: genkey(),
        };
        site.write("r1.key", &format!("{}\n", site.private), 0o600);
        site
    }

    fn write(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

fn assert_base64_key(line: &str) {
    assert_eq!(line.len(), 44, "{line:?}");
    assert!(line.ends_with('='), "{line:?}");
    assert!(line
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')));
}

#[test]
fn check_ok_prints_a_summary_and_exits_zero() {
    let site = Site::new();
    let peer = pubkey(&genkey());
    let config = site.write(
        "r1.toml",
        &format!(
            r#"[router]
router-id = "10.255.0.1"
private-key-file = "r1.key"
[[tunnel]]
name = "to-r2"
peer-public-key = "{peer}"
endpoint = "192.0.2.2:51820"
addresses = ["169.254.0.0/31"]
[[route]]
prefix = "10.2.0.0/16"
via = "to-r2"
[[route]]
prefix = "10.3.0.0/16"
via = "blackhole"
"#
        ),
        0o644,
    );
    let out = wgrd(&["check", "-c", config.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{}: ok (1 tunnels, 2 routes)\n", config.display())
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn check_failure_prints_every_error_to_stderr_and_exits_one() {
    let site = Site::new();
    let config = site.write(
        "bad.toml",
        r#"[router]
router-id = "10.255.0.1"
private-key-file = "r1.key"
listen-port = 70000
[[tunnel]]
name = "to-r2"
peer-public-key = "AAAA"
endpont = "192.0.2.2:51820"
[[route]]
prefix = "10.2.0.1/16"
via = "to-r3"
"#,
        0o644,
    );
    let path = config.display().to_string();
    let out = wgrd(&["check", "-c", &path], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("{path}:4: router.listen-port: 70000 is out of range 0..=65535"),
            format!("{path}:7: tunnel[1].peer-public-key: not a WireGuard key: decodes to 3 bytes, a WireGuard key is 32"),
            format!("{path}:8: tunnel[1].endpont: unknown key; did you mean endpoint?"),
            format!("{path}:10: route[1].prefix: host bits are set; the prefix is 10.2.0.0/16"),
            format!("{path}:11: route[1].via: no tunnel named \"to-r3\"; did you mean \"to-r2\"?"),
        ]
    );
}

#[test]
fn check_reports_bad_bgp_lines_with_file_line_and_field() {
    let site = Site::new();
    site.write("bgp.key", "not-to-be-shown-Md5\n", 0o644);
    let peer = pubkey(&genkey());
    let config = site.write(
        "bgp.toml",
        &format!(
            r#"[router]
router-id = "10.255.0.1"
private-key-file = "r1.key"
[[tunnel]]
name = "to-r2"
peer-public-key = "{peer}"
addresses = ["fe80::1/64"]
[bgp]
asn = 23456
hold-tme = 9
[[bgp.neighbor]]
tunnel = "to-r2"
remote-as = 65002
[[bgp.neighbor]]
address = "192.0.2.1"
remote-as = 65003
password-file = "bgp.key"
import = "from-peer"
[[policy]]
name = "from-peers"
rules = [{{ match = {{ prefix-list = ["10.0.0.0/8 le 33"] }}, action = "accept" }}]
"#
        ),
        0o644,
    );
    let path = config.display().to_string();
    let out = wgrd(&["check", "-c", &path], "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("not-to-be-shown"), "{stderr}");
    let key = site.dir.path().join("bgp.key").display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("{path}:9: bgp.asn: 23456 is AS_TRANS (RFC 6793), a placeholder, never a real AS"),
            format!("{path}:10: bgp.hold-tme: unknown key; did you mean hold-time?"),
            format!("{path}:12: bgp.neighbor[1].address: the peer's address cannot be derived from the addresses of tunnel \"to-r2\" (only from a /31, /30 or /127 that is not link-local); set address"),
            format!("{path}:17: bgp.neighbor[2].password-file: {key} is readable by everyone (mode 0644); run: chmod o-rwx {key}"),
            format!("{path}:18: bgp.neighbor[2].import: no [[policy]] has this name; did you mean \"from-peers\"?"),
            format!("{path}:21: policy[1].rules[1].match.prefix-list[1]: le 33 is outside 8..=32 (from the prefix's length to the family's maximum)"),
        ]
    );
}

#[test]
fn check_of_a_missing_file_fails() {
    let out = wgrd(&["check", "-c", "/nonexistent/wgrd.toml"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("/nonexistent/wgrd.toml: file: cannot read"));
}

#[test]
fn check_refuses_a_world_readable_key_file() {
    let site = Site::new();
    site.write("open.key", &site.private, 0o644);
    let config = site.write(
        "r1.toml",
        "[router]\nrouter-id = \"10.0.0.1\"\nprivate-key-file = \"open.key\"\n",
        0o600,
    );
    let out = wgrd(&["check", "-c", config.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(":3: router.private-key-file: "), "{stderr}");
    assert!(stderr.contains("readable by everyone"), "{stderr}");
    assert!(!stderr.contains(&site.private));
}

#[test]
fn private_keys_never_appear_in_output() {
    let site = Site::new();
    let key = &site.private;
    // Inline key valid, but pasted into other fields as well, and a world-readable file.
    let config = site.write(
        "r1.toml",
        &format!(
            "[router]\nrouter-id = \"10.0.0.1\"\nprivate-key = \"{key}\"\n\
             [[tunnel]]\nname = \"{key}\"\npeer-public-key = \"{key}x\"\nendpoint = \"{key}:1\"\n\
             [[route]]\nprefix = \"10.0.0.0/8\"\nvia = \"{key}\"\n"
        ),
        0o600,
    );
    let out = wgrd(&["check", "-c", config.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.lines().count() >= 4, "{all}");
    assert!(!all.contains(key.as_str()), "key leaked:\n{all}");

    // A valid config with an inline key: ok, plus a warning when everyone can read it.
    let config = site.write(
        "inline.toml",
        &format!("[router]\nrouter-id = \"10.0.0.1\"\nprivate-key = \"{key}\"\n"),
        0o644,
    );
    let out = wgrd(&["check", "-c", config.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("warning: holds keys inline"), "{stderr}");
    let all = format!("{}{stderr}", text(&out.stdout));
    assert!(!all.contains(key.as_str()), "key leaked:\n{all}");
}

#[test]
fn genkey_and_genpsk_print_fresh_base64_keys() {
    for cmd in ["genkey", "genpsk"] {
        let a = wgrd(&[cmd], "");
        let b = wgrd(&[cmd], "");
        assert!(a.status.success() && b.status.success());
        let (a, b) = (text(&a.stdout), text(&b.stdout));
        assert!(a.ends_with('\n') && a.lines().count() == 1, "{a:?}");
        assert_base64_key(a.trim_end());
        assert_ne!(a, b, "{cmd} repeated itself");
    }
}

#[test]
fn pubkey_matches_a_known_wireguard_vector() {
    // Produced by `wg genkey | tee k | wg pubkey`.
    assert_eq!(
        pubkey("kMwt5CLSasFzkFUxiqkaXAwIQZt6E2E28vVxZ4/gp1w="),
        "hnn0TlOHy1Oqoj8k3AB/0cWmKRax5rDQndigw4e13B0="
    );
}

#[test]
fn genkey_and_pubkey_are_compatible_with_wg() {
    let Some(_) = wg() else { return };
    // Our private key, both public-key derivations.
    let ours = genkey();
    assert_eq!(
        run_wg(&["pubkey"], &format!("{ours}\n")).trim_end(),
        pubkey(&ours)
    );
    // wg's private key, both derivations.
    let theirs = run_wg(&["genkey"], "");
    assert_eq!(
        pubkey(theirs.trim_end()),
        run_wg(&["pubkey"], &theirs).trim_end()
    );
    // wg accepts what genpsk prints as a preshared key (`wg pubkey` parses any 32-byte key).
    let psk = text(&wgrd(&["genpsk"], "").stdout);
    run_wg(&["pubkey"], &psk);
}

#[test]
fn pubkey_refuses_bad_input_without_echoing_it() {
    for input in ["not a key but secret material\n", "c2VjcmV0\n", ""] {
        let out = wgrd(&["pubkey"], input);
        assert_eq!(out.status.code(), Some(1), "{input:?}");
        assert_eq!(text(&out.stdout), "");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("wgrd: stdin is not a private key"),
            "{stderr}"
        );
        let trimmed = input.trim();
        assert!(trimmed.is_empty() || !stderr.contains(trimmed), "{stderr}");
        assert!(!stderr.contains("secret"), "{stderr}");
    }
}

#[test]
fn run_with_a_bad_config_prints_errors_and_exits_one() {
    let site = Site::new();
    let config = site.write("bad.toml", "[router]\nrouter-id = \"x\"\n", 0o600);
    let out = wgrd(&["run", "-c", config.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(":2: router.router-id: "), "{stderr}");
    assert!(
        stderr.contains(": router.private-key-file: missing"),
        "{stderr}"
    );
}

#[test]
fn run_stops_cleanly_on_sigterm() {
    let site = Site::new();
    // No [host] (no TUN, so no root) and an OS-chosen port (no clash with anything).
    let config = site.write(
        "r1.toml",
        "[router]\nrouter-id = \"10.0.0.1\"\nprivate-key-file = \"r1.key\"\nlisten-port = 0\nlisten-address = \"127.0.0.1\"\n",
        0o600,
    );
    let mut child = Command::new(WGRD)
        .args(["run", "-c", config.to_str().unwrap(), "--log-level", "info"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child.id());
    // Read log lines on a thread so a silent child cannot hang the test.
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
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("wgrd running")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => panic!("wgrd did not report running; log:\n{}", log.join("\n")),
        }
    }
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = wait_timeout(&mut child, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("wgrd did not stop on SIGTERM; log:\n{}", log.join("\n")));
    std::mem::forget(guard);
    log.extend(rx.try_iter());
    assert_eq!(status.code(), Some(0), "log:\n{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("SIGTERM")),
        "{}",
        log.join("\n")
    );
    assert!(!log.join("\n").contains(&site.private));
}

/// Kills the child if the test fails before it was stopped on purpose.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; harmless if it already exited.
        unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
    }
}

fn wait_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
