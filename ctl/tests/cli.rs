//! wgrctl without a daemon: exit codes and messages for usage errors and an unreachable
//! socket, and completion scripts. (Talking to a daemon is covered by daemon/tests/control.rs.)

use std::process::Command;

const WGRCTL: &str = env!("CARGO_BIN_EXE_wgrctl");

#[test]
fn no_daemon_is_exit_3_and_names_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nothing.sock");
    let out = Command::new(WGRCTL)
        .args(["--socket", sock.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(sock.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("wgrd run -c"), "{stderr}");
}

#[test]
fn usage_errors_are_exit_2() {
    for args in [
        &["bogus"][..],
        &["route", "add", "10.0.0.0/8", "to", "x"],
        &["bgp", "routes", "--table", "adj-in"],
        &["bgp", "routes", "--table", "rib-in"],
        &["bgp", "reset"],
        &["bgp", "reset", "169.254.0.1", "--all"],
        &["bgp", "announce", "192.0.2.0/24", "--as-path", "65001 x"],
        &["bgp", "announce", "192.0.2.0/24", "--origin", "bgp"],
        &[],
    ] {
        let out = Command::new(WGRCTL).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn completions_are_printed() {
    let out = Command::new(WGRCTL)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wgrctl"));
}
