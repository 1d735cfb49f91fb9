//! Bringing a topology up in network namespaces and taking it down again.
//!
//! What a node is here:
//! - a network namespace `wgrdlab-<lab>-<node>` (refused if it exists: the runner never
//!   adopts or deletes a namespace it did not create);
//! - a *holder* process (`sleep infinity`) inside it that owns the node's private mount
//!   namespace, with a private tmpfs on `/run` — like a container's own `/run`, so
//!   daemons that keep sockets there (wgrd's `/run/wgrd/wgrd.sock`, wireguard-go's
//!   `/run/wireguard`) do not collide between nodes. Every node command joins the
//!   holder's network and mount namespaces (`nsenter -t HOLDER -n -m`);
//! - a directory `<state-dir>/<lab>/<node>/`: `root/` holds a copy of every bind at its
//!   container path (`root/etc/wgrd/...`), and command arguments that name a container
//!   path are rewritten to the copy (see [`crate::words::rewrite`]); commands run with
//!   `root/` as working directory. Logs go next to `root/`.
//!
//! `up` builds namespaces, holders, links (veth pairs created directly inside the two
//! namespaces, never in the host's), then starts each node's `cmd` in the background
//! (log `cmd.log`) and runs its `exec` commands to completion (bounded, output in
//! `exec.log`). Every step is recorded in `state.json` before the next one, and a failure
//! rolls back everything recorded. `down` stops every process inside the lab's namespaces
//! (SIGTERM, then SIGKILL after a grace period), deletes the namespaces (their veths go
//! with them) and the lab directory, and checks that nothing is left.

use crate::error::LabError;
use crate::sys::{self, SYS_TIMEOUT};
use crate::topology::{Node, Topology};
use crate::words;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Prefix of every namespace the runner creates.
pub const NS_PREFIX: &str = "wgrdlab-";
/// How long an `exec` command may run.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// How long processes get to exit after SIGTERM at `down`.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long after starting a `cmd` it must still be running for `up` to go on.
const CMD_SETTLE: Duration = Duration::from_millis(300);

/// Where state lives and which programs node commands find first.
#[derive(Debug, Clone)]
pub struct Options {
    /// `<state_dir>/<lab>/` holds the state file, node directories and logs. Not under
    /// `/run` (every node mounts its own `/run`, which would hide it).
    pub state_dir: PathBuf,
    /// Directories put in front of `PATH` for node commands (where `wgrd` and `wgrctl`
    /// are, when they are not installed).
    pub path_dirs: Vec<PathBuf>,
    /// Print progress to stderr.
    pub verbose: bool,
}

impl Options {
    /// The default state directory: `$WGRD_LAB_DIR`, else `/tmp/wgrd-lab`.
    pub fn default_state_dir() -> PathBuf {
        std::env::var_os("WGRD_LAB_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/wgrd-lab"))
    }
}

/// A process the runner started, identified by pid and start time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
}

impl Proc {
    fn of(pid: u32) -> Option<Proc> {
        let pid = pid as i32;
        sys::start_time(pid).map(|start| Proc { pid, start })
    }

    pub fn alive(&self) -> bool {
        sys::alive(self.pid, self.start)
    }
}

/// What `up` made for one node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub netns: String,
    /// Set once `ip netns add` succeeded: only then does `down` delete it.
    pub netns_created: bool,
    /// The node's directory (logs; `root/` holds the binds).
    pub dir: PathBuf,
    pub holder: Option<Proc>,
    pub cmd: Option<Proc>,
}

impl NodeState {
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
}

/// Everything one lab made; saved as `<state_dir>/<lab>/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub lab: String,
    pub file: PathBuf,
    pub dir: PathBuf,
    pub nodes: Vec<NodeState>,
    /// `a:if <-> b:if`, for status.
    pub links: Vec<String>,
    /// (container, host) path pairs per node, for rewriting `exec` commands later.
    pub binds: Vec<(String, Vec<(String, String)>)>,
    pub path_dirs: Vec<PathBuf>,
}

/// The namespace name of `node` in `lab`.
pub fn netns_name(lab: &str, node: &str) -> String {
    format!("{NS_PREFIX}{lab}-{node}")
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

impl LabState {
    /// Load the state of lab `lab`.
    pub fn load(opts: &Options, lab: &str) -> Result<LabState, LabError> {
        let dir = opts.state_dir.join(lab);
        let file = state_file(&dir);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LabError::Refused(format!("lab {lab} is not up (no {})", file.display()))
            } else {
                LabError::io(format!("read {}", file.display()), e)
            }
        })?;
        serde_json::from_str(&text)
            .map_err(|e| LabError::Refused(format!("{}: unreadable state: {e}", file.display())))
    }

    /// Names of the labs that have state in `opts.state_dir`.
    pub fn list(opts: &Options) -> Vec<String> {
        let mut labs: Vec<String> = std::fs::read_dir(&opts.state_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| state_file(&e.path()).is_file())
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        labs.sort();
        labs
    }

    fn save(&self) -> Result<(), LabError> {
        let file = state_file(&self.dir);
        let tmp = self.dir.join("state.json.tmp");
        let text = serde_json::to_string_pretty(self).expect("state serializes");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &file))
            .map_err(|e| LabError::io(format!("write {}", file.display()), e))
    }

    /// The state of node `name`.
    pub fn node(&self, name: &str) -> Result<&NodeState, LabError> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            LabError::Refused(format!(
                "lab {} has no node {name} (nodes: {})",
                self.lab,
                self.nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn bind_map(&self, node: &str) -> &[(String, String)] {
        self.binds
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, m)| m.as_slice())
            .unwrap_or(&[])
    }

    /// PATH for node commands.
    fn path_env(&self) -> String {
        let mut dirs: Vec<PathBuf> = self.path_dirs.clone();
        if let Some(p) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&p));
        } else {
            dirs.extend(
                [
                    "/usr/local/sbin",
                    "/usr/local/bin",
                    "/usr/sbin",
                    "/usr/bin",
                    "/sbin",
                    "/bin",
                ]
                .map(PathBuf::from),
            );
        }
        std::env::join_paths(dirs)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The argv that runs `argv` inside node `node` (network and mount namespace, working
    /// directory its root), container paths rewritten.
    pub fn node_argv(&self, node: &str, argv: &[String]) -> Result<Vec<String>, LabError> {
        let n = self.node(node)?;
        let holder = n.holder.filter(Proc::alive).ok_or_else(|| {
            LabError::Refused(format!(
                "node {node} of lab {} is not running (its holder process is gone)",
                self.lab
            ))
        })?;
        let map = self.bind_map(node);
        let mut full = vec![
            "nsenter".to_string(),
            "-t".to_string(),
            holder.pid.to_string(),
            "-n".to_string(),
            "-m".to_string(),
            format!("--wd={}", n.root().display()),
            "--".to_string(),
        ];
        full.extend(argv.iter().map(|w| words::rewrite(w, map)));
        Ok(full)
    }

    /// Environment for node commands: PATH and the node's `env`.
    pub fn node_env(&self, topo_env: &[(String, String)]) -> Vec<(String, String)> {
        let mut env = vec![("PATH".to_string(), self.path_env())];
        env.extend(topo_env.iter().cloned());
        env
    }

    /// A `Command` that runs `argv` in node `node` with the inherited stdio.
    pub fn command(&self, node: &str, argv: &[String]) -> Result<Command, LabError> {
        let full = self.node_argv(node, argv)?;
        let mut cmd = Command::new(&full[0]);
        cmd.args(&full[1..]);
        cmd.envs(self.node_env(&[]));
        Ok(cmd)
    }
}

fn log(opts: &Options, msg: &str) {
    if opts.verbose {
        eprintln!("{msg}");
    }
}

/// Bring `topo` up. On failure everything made so far is removed again and the error
/// returned (a failing node command names the node and carries its output).
pub fn up(topo: &Topology, opts: &Options) -> Result<LabState, LabError> {
    preflight(topo, opts)?;
    let dir = opts.state_dir.join(&topo.name);
    std::fs::create_dir_all(&dir)
        .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
    let mut state = LabState {
        lab: topo.name.clone(),
        file: topo.file.clone(),
        dir: dir.clone(),
        nodes: Vec::new(),
        links: Vec::new(),
        binds: Vec::new(),
        path_dirs: opts.path_dirs.clone(),
    };
    if let Err(e) = state.save() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    match build(topo, opts, &mut state) {
        Ok(()) => Ok(state),
        Err(e) => {
            log(opts, &format!("up failed, rolling back: {e}"));
            match down(&state, opts) {
                Ok(()) => Err(e),
                Err(r) => Err(LabError::RollbackFailed {
                    error: Box::new(e),
                    rollback: Box::new(r),
                }),
            }
        }
    }
}

/// Everything that can be refused before anything is created.
fn preflight(topo: &Topology, opts: &Options) -> Result<(), LabError> {
    if opts.state_dir.starts_with("/run") || opts.state_dir.starts_with("/var/run") {
        return Err(LabError::Refused(format!(
            "state directory {} is under /run, which every node replaces with its own; choose another (WGRD_LAB_DIR)",
            opts.state_dir.display()
        )));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LabError::Refused(
            "needs root (network and mount namespaces)".into(),
        ));
    }
    let dir = opts.state_dir.join(&topo.name);
    if state_file(&dir).exists() {
        return Err(LabError::Refused(format!(
            "lab {} is already up (state in {}); run `wgrd-lab down {}` first",
            topo.name,
            dir.display(),
            topo.name
        )));
    }
    if dir.exists() {
        return Err(LabError::Refused(format!(
            "{} exists without a state file; remove it by hand",
            dir.display()
        )));
    }
    for node in &topo.nodes {
        let ns = netns_name(&topo.name, &node.name);
        if sys::netns_exists(&ns) {
            return Err(LabError::Refused(format!(
                "namespace {ns} already exists and is not this runner's to reuse"
            )));
        }
        for b in &node.binds {
            if !b.host.exists() {
                return Err(LabError::Invalid {
                    file: topo.file.clone(),
                    msg: format!(
                        "node {}: bind source {} does not exist",
                        node.name,
                        b.host.display()
                    ),
                });
            }
        }
    }
    Ok(())
}

fn build(topo: &Topology, opts: &Options, state: &mut LabState) -> Result<(), LabError> {
    for node in &topo.nodes {
        add_node(topo, node, opts, state)?;
    }
    for link in &topo.links {
        let na = netns_name(&topo.name, &link.a.node);
        let nb = netns_name(&topo.name, &link.b.node);
        let what = format!("link {} <-> {}", link.a, link.b);
        log(opts, &format!("  {what}"));
        sys::run(
            &what,
            &[
                "ip",
                "link",
                "add",
                &link.a.iface,
                "netns",
                &na,
                "type",
                "veth",
                "peer",
                "name",
                &link.b.iface,
                "netns",
                &nb,
            ],
        )?;
        state.links.push(format!("{} <-> {}", link.a, link.b));
        state.save()?;
        sys::run(
            &what,
            &["ip", "-n", &na, "link", "set", &link.a.iface, "up"],
        )?;
        sys::run(
            &what,
            &["ip", "-n", &nb, "link", "set", &link.b.iface, "up"],
        )?;
    }
    for node in &topo.nodes {
        if let Some(cmd) = &node.cmd {
            start_cmd(node, cmd, state)?;
            state.save()?;
        }
    }
    if topo.nodes.iter().any(|n| n.cmd.is_some()) {
        std::thread::sleep(CMD_SETTLE);
    }
    for node in &topo.nodes {
        check_cmd(node, state)?;
    }
    for node in &topo.nodes {
        for argv in &node.exec {
            run_exec(node, argv, state, opts)?;
        }
    }
    for node in &topo.nodes {
        check_cmd(node, state)?;
    }
    Ok(())
}

fn add_node(
    topo: &Topology,
    node: &Node,
    opts: &Options,
    state: &mut LabState,
) -> Result<(), LabError> {
    let ns = netns_name(&topo.name, &node.name);
    log(opts, &format!("  node {} (netns {ns})", node.name));
    let dir = state.dir.join(&node.name);
    state.nodes.push(NodeState {
        name: node.name.clone(),
        netns: ns.clone(),
        netns_created: false,
        dir: dir.clone(),
        holder: None,
        cmd: None,
    });
    state.save()?;
    let what = format!("node {}", node.name);
    sys::run(&what, &["ip", "netns", "add", &ns])?;
    let idx = state.nodes.len() - 1;
    state.nodes[idx].netns_created = true;
    state.save()?;
    sys::run(&what, &["ip", "-n", &ns, "link", "set", "lo", "up"])?;

    let root = dir.join("root");
    std::fs::create_dir_all(&root)
        .map_err(|e| LabError::io(format!("create {}", root.display()), e))?;
    let mut map = Vec::new();
    for b in &node.binds {
        let dst = root.join(b.container.trim_start_matches('/'));
        copy_tree(&b.host, &dst, b.read_only).map_err(|e| {
            LabError::io(
                format!(
                    "node {}: copy bind {} -> {}",
                    node.name,
                    b.host.display(),
                    b.container
                ),
                e,
            )
        })?;
        map.push((b.container.clone(), dst.to_string_lossy().into_owned()));
    }
    state.binds.push((node.name.clone(), map));

    // The holder: owns the node's mount namespace with a private /run. nsenter and
    // unshare exec (no fork) without --fork / a pid namespace, so the spawned pid is the
    // final `sleep`.
    let hlog = dir.join("holder.log");
    let log_file = std::fs::File::create(&hlog)
        .map_err(|e| LabError::io(format!("create {}", hlog.display()), e))?;
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", sys::netns_path(&ns).display()))
        .args([
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
        ])
        .arg("mount -t tmpfs -o mode=0755 wgrdlab-run /run && exec sleep infinity")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| LabError::io("log", e))?)
        .stderr(log_file)
        .process_group(0);
    let child = cmd
        .spawn()
        .map_err(|e| LabError::io(format!("{what}: spawn holder"), e))?;
    let pid = child.id();
    // Not waited on by this process: down kills it; reap_if_child collects it.
    drop(child);
    let proc_ = Proc::of(pid);
    state.nodes[idx].holder = proc_;
    state.save()?;
    let ready = sys::wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim() == "sleep")
            .unwrap_or(false)
    });
    if !ready || proc_.is_none() {
        return Err(LabError::System {
            what: what.clone(),
            command: "holder (unshare --mount; mount tmpfs /run; sleep)".into(),
            status: "did not start".into(),
            output: std::fs::read_to_string(&hlog).unwrap_or_default(),
        });
    }
    Ok(())
}

/// Copy a file or a directory tree; `read_only` drops the write bits of the copies.
fn copy_tree(src: &Path, dst: &Path, read_only: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(src)?;
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if meta.is_dir() {
        std::fs::create_dir_all(dst)?;
        for entry in std::fs::read_dir(src)? {
            let entry = entry?;
            copy_tree(&entry.path(), &dst.join(entry.file_name()), read_only)?;
        }
        std::fs::set_permissions(dst, meta.permissions())?;
    } else if meta.is_file() {
        std::fs::copy(src, dst)?;
        let mut mode = meta.permissions().mode();
        if read_only {
            mode &= !0o222;
        }
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode))?;
    } else {
        return Err(std::io::Error::other(format!(
            "{} is neither a file nor a directory",
            src.display()
        )));
    }
    Ok(())
}

fn node_env(node: &Node) -> Vec<(String, String)> {
    node.env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn start_cmd(node: &Node, argv: &[String], state: &mut LabState) -> Result<(), LabError> {
    let full = state.node_argv(&node.name, argv)?;
    let ns = state.node(&node.name)?.clone();
    let logf = ns.dir.join("cmd.log");
    let file = std::fs::File::create(&logf)
        .map_err(|e| LabError::io(format!("create {}", logf.display()), e))?;
    let mut cmd = Command::new(&full[0]);
    cmd.args(&full[1..])
        .envs(state.node_env(&node_env(node)))
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| LabError::io("log", e))?)
        .stderr(file)
        .process_group(0);
    let child = cmd
        .spawn()
        .map_err(|e| LabError::io(format!("node {}: spawn `{}`", node.name, argv.join(" ")), e))?;
    let pid = child.id();
    drop(child);
    let p = Proc::of(pid);
    if let Some(n) = state.nodes.iter_mut().find(|n| n.name == node.name) {
        n.cmd = p;
    }
    Ok(())
}

/// A `cmd` that already exited is a failed node: report it with its log.
fn check_cmd(node: &Node, state: &LabState) -> Result<(), LabError> {
    let Some(argv) = &node.cmd else { return Ok(()) };
    let ns = state.node(&node.name)?;
    let alive = ns.cmd.is_some_and(|p| p.alive());
    if alive {
        return Ok(());
    }
    let status = ns
        .cmd
        .and_then(|p| reap_if_child(p.pid))
        .unwrap_or_else(|| "exited".into());
    Err(LabError::NodeCommand {
        node: node.name.clone(),
        command: argv.join(" "),
        status,
        output: std::fs::read_to_string(ns.dir.join("cmd.log")).unwrap_or_default(),
    })
}

/// If `pid` is an exited child of this process, collect it and describe how it ended.
fn reap_if_child(pid: i32) -> Option<String> {
    let mut status = 0;
    // SAFETY: waitpid on a specific pid with WNOHANG; ECHILD when it is not our child.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if rc != pid {
        return None;
    }
    if libc::WIFEXITED(status) {
        Some(format!("exit {}", libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(format!("killed by signal {}", libc::WTERMSIG(status)))
    } else {
        Some("exited".into())
    }
}

fn run_exec(
    node: &Node,
    argv: &[String],
    state: &LabState,
    opts: &Options,
) -> Result<(), LabError> {
    let full = state.node_argv(&node.name, argv)?;
    let ns = state.node(&node.name)?;
    log(opts, &format!("  {}: {}", node.name, argv.join(" ")));
    // Output goes to a file, not a pipe: a command that leaves a daemon behind (`sh -c
    // 'x &'`) must not keep the runner waiting for the pipe to close.
    let out_path = ns.dir.join("exec.last");
    let file = std::fs::File::create(&out_path)
        .map_err(|e| LabError::io(format!("create {}", out_path.display()), e))?;
    let secs = format!("{:.1}", EXEC_TIMEOUT.as_secs_f64());
    let status = Command::new("timeout")
        .args(["-k", "2", &secs])
        .args(&full)
        .envs(state.node_env(&node_env(node)))
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| LabError::io("log", e))?)
        .stderr(file)
        .status()
        .map_err(|e| LabError::io(format!("node {}: spawn", node.name), e))?;
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    if let Ok(mut logf) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ns.dir.join("exec.log"))
    {
        let _ = writeln!(logf, "$ {}\n{output}", argv.join(" "));
    }
    if status.success() {
        return Ok(());
    }
    let status = match status.code() {
        Some(124) | Some(137) => format!("timed out after {EXEC_TIMEOUT:?}"),
        Some(c) => format!("exit {c}"),
        None => format!("{status}"),
    };
    Err(LabError::NodeCommand {
        node: node.name.clone(),
        command: argv.join(" "),
        status,
        output: output.trim_end().to_string(),
    })
}

/// Take a lab down: stop every process in its namespaces, delete them and the lab
/// directory, and check that nothing is left.
pub fn down(state: &LabState, opts: &Options) -> Result<(), LabError> {
    let ours: Vec<&NodeState> = state.nodes.iter().filter(|n| n.netns_created).collect();
    let holders: Vec<i32> = state
        .nodes
        .iter()
        .filter_map(|n| n.holder.map(|p| p.pid))
        .collect();
    let in_lab = || -> Vec<i32> {
        ours.iter()
            .flat_map(|n| sys::pids_in_netns(&n.netns))
            .collect()
    };
    // Gracefully first, holders excepted (wgrd removes its TUN and routes on SIGTERM).
    let first: Vec<i32> = in_lab()
        .into_iter()
        .filter(|p| !holders.contains(p))
        .collect();
    if !first.is_empty() {
        log(
            opts,
            &format!("  stopping {} processes (SIGTERM)", first.len()),
        );
        for &pid in &first {
            sys::signal(pid, libc::SIGTERM);
        }
        sys::wait_for(STOP_GRACE, || {
            first.iter().for_each(|&p| {
                reap_if_child(p);
            });
            in_lab().iter().all(|p| holders.contains(p))
        });
    }
    // Then everything, a few rounds in case something forks while dying.
    sys::wait_for(Duration::from_secs(5), || {
        let left = in_lab();
        for &pid in &left {
            sys::signal(pid, libc::SIGKILL);
            reap_if_child(pid);
        }
        left.is_empty()
    });
    // Recorded processes outside a namespace (should not exist), only if still the same.
    for n in &state.nodes {
        for p in [n.holder, n.cmd].into_iter().flatten() {
            if p.alive() {
                sys::signal(p.pid, libc::SIGKILL);
            }
            reap_if_child(p.pid);
        }
    }
    let mut problems = Vec::new();
    for n in &ours {
        let left = sys::pids_in_netns(&n.netns);
        if !left.is_empty() {
            problems.push(format!("processes {left:?} in {}", n.netns));
        }
        if sys::netns_exists(&n.netns) {
            if let Err(e) = sys::run(
                &format!("node {}", n.name),
                &["ip", "netns", "del", &n.netns],
            ) {
                problems.push(e.to_string());
            }
        }
        if sys::netns_exists(&n.netns) {
            problems.push(format!("namespace {}", n.netns));
        }
    }
    if !problems.is_empty() {
        return Err(LabError::Leftovers {
            lab: state.lab.clone(),
            what: problems.join("; "),
        });
    }
    if !state.dir.as_os_str().is_empty() && state.dir.ends_with(&state.lab) {
        std::fs::remove_dir_all(&state.dir)
            .map_err(|e| LabError::io(format!("remove {}", state.dir.display()), e))?;
    }
    Ok(())
}

/// One node's liveness, for `status`.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub name: String,
    pub netns: String,
    pub netns_present: bool,
    pub running: bool,
    /// `Some(alive)` when the node has a `cmd`.
    pub cmd_alive: Option<bool>,
    pub processes: usize,
}

/// The liveness of every node of a lab.
pub fn status(state: &LabState) -> Vec<NodeStatus> {
    state
        .nodes
        .iter()
        .map(|n| NodeStatus {
            name: n.name.clone(),
            netns: n.netns.clone(),
            netns_present: sys::netns_exists(&n.netns),
            running: n.holder.is_some_and(|p| p.alive()),
            cmd_alive: n.cmd.map(|p| p.alive()),
            processes: sys::pids_in_netns(&n.netns).len(),
        })
        .collect()
}

/// Run `argv` in `node` to completion (bounded) and return its output, or a
/// [`LabError::NodeCommand`] naming the node.
pub fn exec_capture(
    state: &LabState,
    node: &str,
    argv: &[&str],
    timeout: Duration,
) -> Result<String, LabError> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let full = state.node_argv(node, &argv)?;
    let out = sys::run_output(&full, timeout, &state.node_env(&[]))
        .map_err(|e| LabError::io(format!("node {node}: spawn"), e))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(LabError::NodeCommand {
        node: node.to_string(),
        command: argv.join(" "),
        status: sys::status_text(&out, timeout),
        output: sys::output_text(&out),
    })
}

/// The default bound for [`exec_capture`].
pub const CAPTURE_TIMEOUT: Duration = SYS_TIMEOUT;
