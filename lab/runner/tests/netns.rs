//! Namespace tests of the runner (root; `WGRD_NETNS_TESTS=1`, and `WGRD_REQUIRE_NETNS=1`
//! turns a skip into a failure, like the tests/ harness whose policy and lock they use):
//! every shipped topology comes up, traffic crosses between its LAN hosts, and `down`
//! leaves no namespace, veth or process behind; a failing node command is reported with
//! the node's name and output and rolls everything back.
//!
//! Each test renames its lab (`t<pid>-<name>`) so a lab a person has running (the demo)
//! is never touched, and keeps its state in a temporary directory.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wgrd_lab::faults;
use wgrd_lab::lab::{exec_capture, LabState, Options};
use wgrd_lab::{LabError, Topology, NS_PREFIX};

fn topology(name: &str) -> Topology {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../topologies")
        .join(name)
        .join(format!("{name}.clab.yml"));
    let mut t = Topology::load(&file).unwrap_or_else(|e| panic!("{e}"));
    t.name = format!("t{}-{name}", std::process::id());
    t
}

fn options(state_dir: &Path) -> Options {
    let wgrd = wgrd_tests::wgrd::wgrd_bin().expect("wgrd binary");
    Options {
        state_dir: state_dir.to_path_buf(),
        path_dirs: vec![wgrd.parent().unwrap().to_path_buf()],
        verbose: true,
    }
}

/// What exists before a lab, to compare with after it.
struct Before {
    host_links: Vec<String>,
}

impl Before {
    fn take() -> Before {
        let mut host_links = wgrd_lab::sys::host_links();
        host_links.sort();
        Before { host_links }
    }

    /// Nothing of lab `lab` is left: no namespace with its prefix, no new interface in
    /// the host namespace, no process from its recorded pids or naming its directory.
    fn assert_clean(&self, lab: &str, state_dir: &Path, recorded: &[wgrd_lab::lab::Proc]) {
        let prefix = format!("{NS_PREFIX}{lab}-");
        let left: Vec<String> = std::fs::read_dir("/run/netns")
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| n.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "namespaces left: {left:?}");
        let mut links = wgrd_lab::sys::host_links();
        links.sort();
        let new: Vec<&String> = links
            .iter()
            .filter(|l| !self.host_links.contains(l))
            .collect();
        assert!(
            new.is_empty(),
            "new interfaces in the host namespace: {new:?}"
        );
        for p in recorded {
            assert!(!p.alive(), "process {} still running", p.pid);
        }
        let dir = state_dir.join(lab);
        let mentioning = processes_mentioning(&dir.to_string_lossy());
        assert!(
            mentioning.is_empty(),
            "processes still using {}: {mentioning:?}",
            dir.display()
        );
        assert!(!dir.exists(), "{} left", dir.display());
    }
}

/// Pids whose command line mentions `needle` (node commands carry their node's paths).
fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmd.contains(needle) {
                found.push((pid, cmd));
            }
        }
    }
    found
}

fn recorded(state: &LabState) -> Vec<wgrd_lab::lab::Proc> {
    state
        .nodes
        .iter()
        .flat_map(|n| [n.holder, n.cmd])
        .flatten()
        .collect()
}

/// Ping until one echo comes back (bounded), then `count` that must all come back.
fn traffic(state: &LabState, from: &str, dst: &str, timeout: Duration) {
    let start = Instant::now();
    loop {
        if exec_capture(
            state,
            from,
            &["ping", "-n", "-c", "1", "-W", "1", dst],
            Duration::from_secs(5),
        )
        .is_ok()
        {
            break;
        }
        if start.elapsed() > timeout {
            panic!(
                "{from} -> {dst}: no reply within {timeout:?}\n{}",
                logs(state)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = exec_capture(
        state,
        from,
        &["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", dst],
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(state)));
    assert!(out.contains(" 0% packet loss"), "{from} -> {dst}:\n{out}");
}

/// Every node's logs, for failure messages.
fn logs(state: &LabState) -> String {
    let mut s = String::new();
    for n in &state.nodes {
        for f in ["cmd.log", "exec.log"] {
            if let Ok(text) = std::fs::read_to_string(n.dir.join(f)) {
                s += &format!("--- {}/{f}\n{text}\n", n.name);
            }
        }
    }
    s
}

/// A lab that goes down when dropped (also when the test panics).
struct Up {
    state: Option<LabState>,
    opts: Options,
}

impl Up {
    fn new(topo: &Topology, opts: &Options) -> Up {
        let state = wgrd_lab::up(topo, opts).unwrap_or_else(|e| panic!("up {}: {e}", topo.name));
        Up {
            state: Some(state),
            opts: opts.clone(),
        }
    }

    fn state(&self) -> &LabState {
        self.state.as_ref().unwrap()
    }

    /// Take it down, checked.
    fn down(mut self) {
        let state = self.state.take().unwrap();
        wgrd_lab::down(&state, &self.opts).unwrap_or_else(|e| panic!("down: {e}"));
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            if let Err(e) = wgrd_lab::down(&state, &self.opts) {
                eprintln!("warning: down {}: {e}", state.lab);
            }
        }
    }
}

/// The tools every scenario needs.
const TOOLS: [&str; 4] = ["wireguard-go", "wg", "nft", "ping"];

/// Up, traffic between every `(from, to)` pair, optional extra checks, down, clean.
fn scenario(name: &str, pairs: &[(&str, &str)], extra: impl FnOnce(&LabState)) {
    scenario_with(name, &[], pairs, extra)
}

/// [`scenario`] for a topology whose nodes need `more_tools` too (routing daemons).
fn scenario_with(
    name: &str,
    more_tools: &[&str],
    pairs: &[(&str, &str)],
    extra: impl FnOnce(&LabState),
) {
    let tools: Vec<&str> = TOOLS.iter().chain(more_tools).copied().collect();
    let Some(_t) = wgrd_tests::netns_test(&format!("lab_{name}"), &tools) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let topo = topology(name);
    let before = Before::take();
    let up = Up::new(&topo, &opts);
    let procs = recorded(up.state());
    for (from, to) in pairs {
        traffic(up.state(), from, to, Duration::from_secs(30));
    }
    extra(up.state());
    up.down();
    before.assert_clean(&topo.name, dir.path(), &procs);
}

#[test]
fn mesh4_traffic_crosses_every_pair_cut_measured_down_clean() {
    let mut pairs = Vec::new();
    let addrs = ["10.1.0.2", "10.2.0.2", "10.3.0.2", "10.4.0.2"];
    let hosts = ["h1", "h2", "h3", "h4"];
    for (i, h) in hosts.iter().enumerate() {
        for (j, a) in addrs.iter().enumerate() {
            if i != j {
                pairs.push((*h, *a));
            }
        }
    }
    scenario("mesh4", &pairs, |state| {
        // Cutting r1's underlay toward r3 silences the r1-r3 tunnel: OSPF (fast profile,
        // 1 s tunnel liveness) drops the adjacency and h1 -> h3 reroutes through r2 or r4.
        traffic(state, "h1", "10.3.0.2", Duration::from_secs(30));
        faults::cut(state, "r1", "wan-r3").unwrap();
        let r = faults::probe(
            state,
            "h1",
            "10.3.0.2",
            Duration::from_millis(100),
            Duration::from_secs(4),
        )
        .unwrap();
        assert!(r.received > 0, "no reroute around the cut: {r}");
        assert!(
            r.outage < Duration::from_millis(2500),
            "reroute too slow: {r}"
        );
        faults::heal(state, "r1", "wan-r3").unwrap();
        traffic(state, "h1", "10.3.0.2", Duration::from_secs(30));
        let r = faults::probe(
            state,
            "h1",
            "10.3.0.2",
            Duration::from_millis(100),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(r.outage, Duration::ZERO, "{r}");
        // wgrctl is not built by this test; the daemon's socket is in the node's own /run.
        let ls = exec_capture(state, "r1", &["ls", "/run/wgrd"], Duration::from_secs(5)).unwrap();
        assert!(ls.contains("wgrd.sock"), "{ls}");
    });
}

/// The probes' interval when a cut is measured: 20 ms, the resolution of the outages the
/// READMEs report.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// How long a measuring probe runs before the cut.
const PROBE_LEAD: Duration = Duration::from_millis(500);

/// The `wgrctl` binary, by absolute path (built by the harness unless `WGRCTL_BIN`).
fn wgrctl_path() -> String {
    wgrd_tests::wgrd::wgrctl_bin()
        .expect("wgrctl binary")
        .to_string_lossy()
        .into_owned()
}

/// Runs `argv` in `node` until its output contains `want` (bounded); that output.
fn wait_output(
    state: &LabState,
    node: &str,
    argv: &[&str],
    want: &str,
    timeout: Duration,
) -> String {
    let start = Instant::now();
    loop {
        let out = exec_capture(state, node, argv, Duration::from_secs(5))
            .unwrap_or_else(|e| e.to_string());
        if out.contains(want) {
            return out;
        }
        if start.elapsed() > timeout {
            panic!(
                "{node}: `{}` did not show {want:?} within {timeout:?}:\n{out}\n{}",
                argv.join(" "),
                logs(state)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `wgrctl --json ARGS` in `node` until `cond` holds for what it prints (bounded wait);
/// that JSON. `what` names the condition in the failure message.
fn wait_wgrctl(
    state: &LabState,
    node: &str,
    args: &[&str],
    what: &str,
    timeout: Duration,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let ctl = wgrctl_path();
    let argv: Vec<&str> = [ctl.as_str(), "--json"]
        .iter()
        .chain(args)
        .copied()
        .collect();
    let start = Instant::now();
    loop {
        let out = exec_capture(state, node, &argv, Duration::from_secs(5));
        let json = out
            .as_ref()
            .ok()
            .and_then(|o| serde_json::from_str::<Value>(o).ok());
        if let Some(v) = json.filter(|v| cond(v)) {
            return v;
        }
        if start.elapsed() > timeout {
            panic!(
                "{node}: not {what} within {timeout:?}; wgrctl {}:\n{}\n{}",
                args.join(" "),
                match out {
                    Ok(o) => o,
                    Err(e) => e.to_string(),
                },
                logs(state)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// wgrd's forwarding decision in `node` for `addr` is tunnel `via` (bounded wait).
fn wait_lookup(state: &LabState, node: &str, addr: &str, via: &str, timeout: Duration) {
    wait_wgrctl(
        state,
        node,
        &["route", "lookup", addr],
        &format!("forwarding {addr} into {via}"),
        timeout,
        |v| v["next_hop"]["tunnels"] == serde_json::json!([via]),
    );
}

/// wgrd in `node` has its BGP session to `neighbor` Established with tunnel liveness
/// armed (the peer probes too), so a silent tunnel ends it within the liveness interval.
fn wait_fast_failover(state: &LabState, node: &str, neighbor: &str, timeout: Duration) {
    wait_wgrctl(
        state,
        node,
        &["bgp", "neighbors", neighbor],
        &format!("established with {neighbor}, fast failover armed"),
        timeout,
        |v| v[0]["state"] == "established" && v[0]["fast_failover"] == "armed",
    );
}

/// The BGP paths of `prefix` in `node`'s Loc-RIB hold a best one from `best_peer` and
/// another one from `backup_peer`, each passing its check (bounded wait).
fn wait_best_and_backup(
    state: &LabState,
    node: &str,
    prefix: &str,
    (best_peer, best_ok): (&str, impl Fn(&Value) -> bool),
    (backup_peer, backup_ok): (&str, impl Fn(&Value) -> bool),
) {
    wait_wgrctl(
        state,
        node,
        &["bgp", "routes"],
        &format!("{prefix} best from {best_peer}, backup from {backup_peer}"),
        Duration::from_secs(30),
        |v| {
            let paths: Vec<&Value> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["prefix"] == prefix)
                .collect();
            paths
                .iter()
                .any(|p| p["best"] == true && p["peer"] == best_peer && best_ok(p))
                && paths
                    .iter()
                    .any(|p| p["best"] == false && p["peer"] == backup_peer && backup_ok(p))
        },
    );
}

/// Pings `dst` from `host` every [`PROBE_INTERVAL`] for `window`, cutting every `(node,
/// iface)` of `cuts` silently [`PROBE_LEAD`] after the start; returns what the probe saw,
/// the cuts still in place.
/// `primary` first waits (bounded) until the traffic takes the path the cuts break. A
/// probe that lost nothing measured nothing: heal, and again (at most three times), as
/// `tests/tests/ospf_interop.rs::triangle_reroute_measured` does.
fn cut_measured(
    state: &LabState,
    cuts: &[(&str, &str)],
    (host, dst): (&str, &str),
    window: Duration,
    primary: impl Fn(),
) -> faults::ProbeReport {
    for attempt in 1..=3 {
        primary();
        // The probe runs before the cut, so the outage counts from the cut itself.
        let r = std::thread::scope(|s| {
            let probe = s.spawn(|| faults::probe(state, host, dst, PROBE_INTERVAL, window));
            std::thread::sleep(PROBE_LEAD);
            for &(node, iface) in cuts {
                faults::cut(state, node, iface).unwrap();
            }
            probe.join().unwrap()
        })
        .unwrap_or_else(|e| panic!("probe {host} -> {dst}: {e}"));
        if !r.outage.is_zero() {
            return r;
        }
        println!("attempt {attempt}: cutting {cuts:?} interrupted nothing ({r}); heal, again");
        heal_all(state, cuts);
    }
    panic!("three cuts of {cuts:?} in a row interrupted nothing");
}

fn heal_all(state: &LabState, cuts: &[(&str, &str)]) {
    for &(node, iface) in cuts {
        faults::heal(state, node, iface).unwrap();
    }
}

#[test]
fn hub_spoke_shortcut_fails_over_to_the_hub_laptop_dials_in_down_clean() {
    scenario(
        "hub-spoke",
        &[
            ("h1", "10.2.0.2"),
            ("h2", "10.1.0.2"),
            // The laptop dials in first; then the spokes' hosts reach it through the hub.
            ("laptop", "10.1.0.2"),
            ("h2", "10.200.0.10"),
        ],
        |state| {
            // No node is configured with a route to another site: what the kernels have
            // came from BGP (s1's LAN on the hub, s2's LAN on s1 through the shortcut or
            // the reflector), exported by wgrd with its protocol number.
            for (node, prefix) in [
                ("hub", "10.1.0.0/24"),
                ("s1", "10.2.0.0/24"),
                ("s2", "10.200.0.10"),
            ] {
                let r = exec_capture(
                    state,
                    node,
                    &["ip", "route", "show", prefix],
                    Duration::from_secs(5),
                )
                .unwrap();
                assert!(r.contains("proto 243"), "{node}: {prefix} not learned: {r}");
            }
            // Both copies of the other spoke's LAN are in each spoke's BGP table: the
            // shortcut's (local-pref 200, best) and the hub's reflection (the backup).
            for (node, prefix, shortcut, hub) in [
                ("s1", "10.2.0.0/24", "169.254.12.1", "169.254.1.0"),
                ("s2", "10.1.0.0/24", "169.254.12.0", "169.254.2.0"),
            ] {
                wait_best_and_backup(
                    state,
                    node,
                    prefix,
                    (shortcut, |p: &Value| p["local_pref"] == 200),
                    (hub, |p: &Value| p["local_pref"] == 100),
                );
            }
            // h1 <-> h2 takes the shortcut; the laptop stays on the hub.
            let primary = || {
                wait_lookup(state, "s1", "10.2.0.2", "to-s2", Duration::from_secs(30));
                wait_lookup(state, "s2", "10.1.0.2", "to-s1", Duration::from_secs(30));
                wait_fast_failover(state, "s1", "169.254.12.1", Duration::from_secs(30));
                wait_fast_failover(state, "s2", "169.254.12.0", Duration::from_secs(30));
            };
            // The shortcut's underlay dies silently (nftables drop in s1, no interface
            // down): tunnel liveness (300 ms, both ends wgrd) ends the iBGP session at
            // once and the hub's reflected copy, already in the table, is the route.
            let cut = [("s1", "wan-s2")];
            let r = cut_measured(
                state,
                &cut,
                ("h1", "10.2.0.2"),
                Duration::from_secs(4),
                primary,
            );
            println!("hub-spoke: shortcut cut: h1 -> h2: {r}");
            assert!(
                r.received > 0,
                "no fallback through the hub: {r}\n{}",
                logs(state)
            );
            // 0.3 s liveness and the decision (0.31-0.38 s measured); the rest is slack
            // for a loaded machine.
            assert!(
                r.outage < Duration::from_millis(1500),
                "fallback through the hub too slow: {r}"
            );
            wait_lookup(state, "s1", "10.2.0.2", "to-hub", Duration::from_secs(5));
            wait_lookup(state, "s2", "10.1.0.2", "to-hub", Duration::from_secs(5));
            traffic(state, "h2", "10.1.0.2", Duration::from_secs(5));
            traffic(state, "laptop", "10.1.0.2", Duration::from_secs(5));
            // The shortcut returns: its session comes back and wins again, without loss.
            heal_all(state, &cut);
            let back = Instant::now();
            wait_lookup(state, "s1", "10.2.0.2", "to-s2", Duration::from_secs(30));
            wait_lookup(state, "s2", "10.1.0.2", "to-s1", Duration::from_secs(30));
            println!(
                "hub-spoke: shortcut healed: back on it after {:?}",
                back.elapsed()
            );
            let r = faults::probe(
                state,
                "h1",
                "10.2.0.2",
                PROBE_INTERVAL,
                Duration::from_secs(1),
            )
            .unwrap();
            assert!(
                r.received > 0 && r.outage < Duration::from_millis(500),
                "after the heal: {r}"
            );
            traffic(state, "h2", "10.200.0.10", Duration::from_secs(5));
        },
    );
}

/// `ip route show PREFIX` in `node` names `dev` (bounded wait); the route line.
fn wait_route(state: &LabState, node: &str, prefix: &str, dev: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let r = exec_capture(
            state,
            node,
            &["ip", "-4", "route", "show", prefix],
            Duration::from_secs(5),
        )
        .unwrap_or_default();
        if r.contains(&format!("dev {dev} ")) {
            return r;
        }
        if start.elapsed() > timeout {
            panic!(
                "{node}: {prefix} not via {dev} within {timeout:?}: {r}\n{}",
                logs(state)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Full OSPF neighbors as BIRD (`birdc`) or FRR (`vtysh`) in `node` list them.
fn full_neighbors(state: &LabState, node: &str, argv: &[&str]) -> usize {
    exec_capture(state, node, argv, Duration::from_secs(5))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Full"))
        .count()
}

/// A cut of one tunnel's underlay in the interop triangle: traffic from `host` to `dst`
/// comes back on the other path (BIRD's and FRR's dead interval, 4 s, ends the
/// adjacency: wireguard-go sends no liveness probes) and `node`'s route to `prefix`
/// moves to `other_dev`; after the heal it returns to `dev` without loss.
fn interop_cut(
    state: &LabState,
    (cut_node, cut_iface): (&str, &str),
    (host, dst): (&str, &str),
    (node, prefix, dev, other_dev): (&str, &str, &str, &str),
) {
    wait_route(state, node, prefix, dev, Duration::from_secs(30));
    faults::cut(state, cut_node, cut_iface).unwrap();
    let r = faults::probe(
        state,
        host,
        dst,
        Duration::from_millis(100),
        Duration::from_secs(10),
    )
    .unwrap();
    println!("interop: cut {cut_node} {cut_iface}: {host} -> {dst}: {r}");
    assert!(
        r.received > 0,
        "no reroute around {cut_node} {cut_iface}: {r}"
    );
    assert!(
        r.outage < Duration::from_secs(8),
        "reroute around {cut_node} {cut_iface} too slow: {r}"
    );
    wait_route(state, node, prefix, other_dev, Duration::from_secs(5));
    faults::heal(state, cut_node, cut_iface).unwrap();
    let back = Instant::now();
    wait_route(state, node, prefix, dev, Duration::from_secs(30));
    println!(
        "interop: heal {cut_node} {cut_iface}: {node} routes {prefix} via {dev} again after {:?}",
        back.elapsed()
    );
    let r = faults::probe(
        state,
        host,
        dst,
        Duration::from_millis(100),
        Duration::from_secs(2),
    )
    .unwrap();
    assert!(
        r.received > 0 && r.outage < Duration::from_millis(500),
        "after the heal: {r}"
    );
}

#[test]
fn interop_wgrd_bird_frr_ospf_triangle_reroutes_down_clean() {
    let birdc = ["birdc", "show", "ospf", "neighbors"];
    let vtysh = ["vtysh", "-c", "show ip ospf neighbor"];
    scenario_with(
        "interop",
        &[
            "bird",
            "birdc",
            "vtysh",
            "/usr/lib/frr/zebra",
            "/usr/lib/frr/ospfd",
        ],
        &[],
        |state| {
            // Converged: every host reaches every other one (each pair both ways). No
            // node has a route to a remote LAN in its files: they all come from OSPF.
            let up = Instant::now();
            for (from, dst) in [
                ("h1", "10.2.0.2"),
                // w3 never dials: wgrd starts that handshake.
                ("h1", "10.3.0.2"),
                ("h2", "10.1.0.2"),
                ("h2", "10.3.0.2"),
                ("h3", "10.1.0.2"),
                ("h3", "10.2.0.2"),
            ] {
                traffic(state, from, dst, Duration::from_secs(30));
                println!("interop: {from} -> {dst} after {:?}", up.elapsed());
            }
            // Who installed what: wgrd (protocol 243) on r1, BIRD on w2, FRR's zebra
            // on w3; w2 <-> w3 on their direct tunnel (wg1), cost 10 against 20 via r1.
            for (node, prefix, dev, proto) in [
                ("r1", "10.2.0.0/24", "wgrd0", "proto 243"),
                ("r1", "10.3.0.0/24", "wgrd0", "proto 243"),
                ("w2", "10.1.0.0/24", "wg0", "proto bird"),
                ("w2", "10.3.0.0/24", "wg1", "proto bird"),
                ("w3", "10.1.0.0/24", "wg0", "proto ospf"),
                ("w3", "10.2.0.0/24", "wg1", "proto ospf"),
            ] {
                let r = wait_route(state, node, prefix, dev, Duration::from_secs(10));
                assert!(r.contains(proto), "{node}: {prefix} not from {proto}: {r}");
            }
            assert_eq!(full_neighbors(state, "w2", &birdc), 2, "BIRD's neighbors");
            assert_eq!(full_neighbors(state, "w3", &vtysh), 2, "FRR's neighbors");
            println!("interop: converged {:?} after up", up.elapsed());

            // The w2-w3 underlay dies: BIRD and FRR reroute h2 <-> h3 through wgrd.
            interop_cut(
                state,
                ("w2", "wan-w3"),
                ("h2", "10.3.0.2"),
                ("w2", "10.3.0.0/24", "wg1", "wg0"),
            );
            // The r1-w2 underlay dies: h1 <-> h2 goes wgrd -> FRR -> BIRD, via w3.
            interop_cut(
                state,
                ("r1", "wan-w2"),
                ("h1", "10.2.0.2"),
                ("w2", "10.1.0.0/24", "wg0", "wg1"),
            );
            traffic(state, "h2", "10.1.0.2", Duration::from_secs(10));
        },
    );
}

/// `ip -4 route show PREFIX` in `node` contains `want` (bounded wait); the route line.
fn wait_route_via(
    state: &LabState,
    node: &str,
    prefix: &str,
    want: &str,
    timeout: Duration,
) -> String {
    wait_output(
        state,
        node,
        &["ip", "-4", "route", "show", prefix],
        want,
        timeout,
    )
}

#[test]
fn site_gateway_bgp_with_bird_redundant_vpn_routers_fail_over_down_clean() {
    scenario_with(
        "site-gateway",
        &["bird", "birdc"],
        &[
            // The endpoint dials both VPN routers; the site host (h1) reaches it too.
            ("ep", "192.168.60.10"),
            ("h1", "10.77.0.1"),
        ],
        |state| {
            // The site router's route to the endpoints is BIRD's, learned from wgrd over
            // eBGP (no static route in its files), via vpn1's LAN address: vpn2's copy
            // is one AS longer (it prepends, the backup).
            let r = wait_route_via(
                state,
                "site",
                "10.77.0.0/24",
                "via 192.168.50.2 dev eth1 proto bird",
                Duration::from_secs(30),
            );
            println!("site-gateway: site's kernel: {}", r.trim());
            for proto in ["vpn1", "vpn2"] {
                wait_output(
                    state,
                    "site",
                    &["birdc", "show", "protocols", proto],
                    "Established",
                    Duration::from_secs(10),
                );
            }
            // BIRD has only the endpoints' prefix from each VPN router (their export
            // policy), with the endpoint's AS behind theirs. (vpn2's may come a moment
            // after vpn1's: its session with the endpoint is its own.)
            for (proto, path) in [("vpn1", "65010 65077"), ("vpn2", "65010 65010 65077")] {
                let from = wait_output(
                    state,
                    "site",
                    &["birdc", "show", "route", "protocol", proto, "all"],
                    &format!("BGP.as_path: {path}\n"),
                    Duration::from_secs(30),
                );
                assert!(
                    from.contains("10.77.0.0/24") && !from.contains("169.254."),
                    "{proto}: {from}"
                );
            }
            // Nothing on the site router was added by hand: every route is connected
            // (proto kernel) or BIRD's.
            let all = exec_capture(
                state,
                "site",
                &["ip", "-4", "route", "show", "table", "all"],
                Duration::from_secs(5),
            )
            .unwrap();
            let manual: Vec<&str> = all
                .lines()
                .filter(|l| !l.contains("proto kernel") && !l.contains("proto bird"))
                .collect();
            assert!(manual.is_empty(), "hand-made routes on site: {manual:?}");
            // Both directions go through vpn1; the endpoint has vpn2's copy as backup.
            wait_best_and_backup(
                state,
                "ep",
                "192.168.60.0/24",
                ("169.254.0.0", |p: &Value| {
                    p["as_path"] == serde_json::json!([65010, 65020])
                }),
                ("169.254.0.2", |p: &Value| {
                    p["as_path"] == serde_json::json!([65010, 65010, 65020])
                }),
            );
            let primary = || {
                wait_route_via(
                    state,
                    "site",
                    "10.77.0.0/24",
                    "via 192.168.50.2 dev eth1 proto bird",
                    Duration::from_secs(30),
                );
                wait_lookup(
                    state,
                    "ep",
                    "192.168.60.10",
                    "to-vpn1",
                    Duration::from_secs(30),
                );
                wait_fast_failover(state, "ep", "169.254.0.0", Duration::from_secs(30));
                wait_fast_failover(state, "ep", "169.254.0.2", Duration::from_secs(30));
                wait_output(
                    state,
                    "site",
                    &["birdc", "show", "protocols", "vpn2"],
                    "Established",
                    Duration::from_secs(10),
                );
            };
            // Two failures of vpn1, each measured with h1 pinging the endpoint, then healed:
            // - its Internet uplink dies: vpn1's own tunnel liveness (300 ms) ends its
            //   session with the endpoint, and it withdraws the endpoint's prefix from
            //   BIRD over the LAN session at once; the endpoint moves to vpn2 by its own
            //   liveness. No hold timer: 0.3-0.4 s.
            // - vpn1 dies (both interfaces drop everything): the endpoint moves as
            //   before, but BIRD only learns it from its hold timer (3 s, less up to
            //   25 % of jitter, less the age of vpn1's last keepalive, 0-1 s).
            // (what, cuts (node, interface), probe window, bound on the outage)
            type Failure<'a> = (&'a str, &'a [(&'a str, &'a str)], Duration, Duration);
            let failures: [Failure; 2] = [
                (
                    "uplink",
                    &[("vpn1", "wan-ep")],
                    Duration::from_secs(4),
                    Duration::from_millis(1500),
                ),
                (
                    "dead",
                    &[("vpn1", "eth1"), ("vpn1", "wan-ep")],
                    Duration::from_secs(8),
                    // The hold time, 3 s, plus slack for a loaded machine.
                    Duration::from_secs(5),
                ),
            ];
            for (what, cut, window, bound) in failures {
                let r = cut_measured(state, cut, ("h1", "10.77.0.1"), window, primary);
                println!("site-gateway: vpn1 {what}: h1 -> ep: {r}");
                assert!(
                    r.received > 0,
                    "vpn1 {what}: no failover to vpn2: {r}\n{}",
                    logs(state)
                );
                assert!(
                    r.outage < bound,
                    "vpn1 {what}: failover to vpn2 too slow: {r}"
                );
                wait_route_via(
                    state,
                    "site",
                    "10.77.0.0/24",
                    "via 192.168.50.3 dev eth1 proto bird",
                    Duration::from_secs(5),
                );
                wait_lookup(
                    state,
                    "ep",
                    "192.168.60.10",
                    "to-vpn2",
                    Duration::from_secs(5),
                );
                traffic(state, "ep", "192.168.60.10", Duration::from_secs(5));
                // vpn1 returns: BIRD and the endpoint take its shorter paths again,
                // without loss (vpn1 announces each side's prefix only once it has it
                // from the other).
                heal_all(state, cut);
                let back = Instant::now();
                wait_route_via(
                    state,
                    "site",
                    "10.77.0.0/24",
                    "via 192.168.50.2 dev eth1 proto bird",
                    Duration::from_secs(30),
                );
                wait_lookup(
                    state,
                    "ep",
                    "192.168.60.10",
                    "to-vpn1",
                    Duration::from_secs(30),
                );
                println!(
                    "site-gateway: vpn1 {what} healed: back on it after {:?}",
                    back.elapsed()
                );
                let r = faults::probe(
                    state,
                    "h1",
                    "10.77.0.1",
                    PROBE_INTERVAL,
                    Duration::from_secs(1),
                )
                .unwrap();
                assert!(
                    r.received > 0 && r.outage < Duration::from_millis(500),
                    "vpn1 {what}: after the heal: {r}"
                );
            }
            traffic(state, "ep", "192.168.60.10", Duration::from_secs(5));
        },
    );
}

fn write_topology(dir: &Path, text: &str) -> PathBuf {
    let f = dir.join("fail.clab.yml");
    std::fs::write(&f, text).unwrap();
    f
}

#[test]
fn a_failing_node_command_is_reported_with_node_and_output_and_rolled_back() {
    let Some(_t) = wgrd_tests::netns_test("lab_failing_node_command", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let lab = format!("t{}-fail", std::process::id());
    let cases = [
        // An exec command that fails, after another node's daemon started.
        (
            format!(
                "name: {lab}\ntopology:\n  nodes:\n    a:\n      kind: linux\n      exec:\n        - ip addr add 10.9.0.1/24 dev eth1\n        - sh -c 'echo boom-out; echo boom-err >&2; exit 3'\n    b:\n      kind: linux\n      cmd: sleep 987651\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"
            ),
            "a",
            "exit 3",
            vec!["boom-out", "boom-err"],
            "sleep 987651",
        ),
        // A daemon (cmd) that dies at once.
        (
            format!(
                "name: {lab}\ntopology:\n  nodes:\n    a:\n      kind: linux\n      cmd: sleep 987652\n    b:\n      kind: linux\n      cmd: sh -c 'echo daemon-died >&2; exit 7'\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"
            ),
            "b",
            "exit 7",
            vec!["daemon-died"],
            "sleep 987652",
        ),
    ];
    for (text, node, status, outputs, survivor) in cases {
        let file = write_topology(dir.path(), &text);
        let topo = Topology::load(&file).unwrap();
        let before = Before::take();
        let err = wgrd_lab::up(&topo, &opts).expect_err("up must fail");
        let msg = err.to_string();
        match &err {
            LabError::NodeCommand {
                node: n,
                status: s,
                output,
                ..
            } => {
                assert_eq!(n, node, "{msg}");
                assert_eq!(s, status, "{msg}");
                for o in &outputs {
                    assert!(output.contains(o), "{msg}");
                }
            }
            other => panic!("expected a node command error, got: {other}"),
        }
        assert!(msg.contains(&format!("node {node}")), "{msg}");
        before.assert_clean(&lab, dir.path(), &[]);
        let left = processes_mentioning(survivor);
        assert!(left.is_empty(), "rollback left {left:?}");
    }
}

#[test]
fn up_refuses_an_existing_namespace_and_touches_nothing() {
    let Some(_t) = wgrd_tests::netns_test("lab_refuses_existing_namespace", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let lab = format!("t{}-clash", std::process::id());
    let file = write_topology(
        dir.path(),
        &format!("name: {lab}\ntopology:\n  nodes:\n    a: {{kind: linux}}\n    b: {{kind: linux}}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"),
    );
    let topo = Topology::load(&file).unwrap();
    // Someone else's namespace with the name node b would get.
    let foreign = wgrd_lab::netns_name(&lab, "b");
    wgrd_lab::sys::run("test", &["ip", "netns", "add", &foreign]).unwrap();
    let result = wgrd_lab::up(&topo, &opts);
    let still_there = wgrd_lab::sys::netns_exists(&foreign);
    let a_exists = wgrd_lab::sys::netns_exists(&wgrd_lab::netns_name(&lab, "a"));
    wgrd_lab::sys::run("test", &["ip", "netns", "del", &foreign]).unwrap();
    let err = result.expect_err("must refuse").to_string();
    assert!(err.contains(&foreign), "{err}");
    assert!(still_there, "the foreign namespace was deleted");
    assert!(!a_exists, "node a was created before the refusal");
}
