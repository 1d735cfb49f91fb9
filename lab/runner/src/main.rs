//! `wgrd-lab`: the command line of the namespace runner.
//!
//! ```text
//! wgrd-lab up FILE                  build the lab (rolled back if anything fails)
//! wgrd-lab down FILE|NAME           remove everything `up` made
//! wgrd-lab exec NAME NODE -- CMD..  run a command inside a node
//! wgrd-lab status [NAME]            labs and their nodes
//! wgrd-lab cut|heal NAME NODE IF    drop / stop dropping all traffic on an interface
//! wgrd-lab probe NAME NODE DST      ping at an interval, report the longest outage
//! ```

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wgrd_lab::{faults, lab, LabState, Options, Topology};

#[derive(Parser)]
#[command(
    name = "wgrd-lab",
    version,
    about = "Play containerlab topologies in network namespaces, without Docker"
)]
struct Cli {
    /// Where labs keep their state, node files and logs [env: WGRD_LAB_DIR; default /tmp/wgrd-lab].
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// A directory searched first for node programs (repeatable); the directory of this
    /// executable is always searched first, so a `cargo build --release` tree works as is.
    #[arg(long = "path", global = true)]
    path_dirs: Vec<PathBuf>,
    /// Less output.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Bring a topology up.
    Up { file: PathBuf },
    /// Take a lab down (by its file or its name).
    Down { lab: String },
    /// Run a command inside a node (network and mount namespace, container paths rewritten).
    Exec {
        lab: String,
        node: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Show labs (all, or one) and the state of their nodes.
    Status { lab: Option<String> },
    /// Drop all traffic on an interface of a node (nftables in the node's namespace).
    Cut {
        lab: String,
        node: String,
        iface: String,
    },
    /// Undo `cut`.
    Heal {
        lab: String,
        node: String,
        iface: String,
    },
    /// Ping from a node at an interval for a while and report the longest outage.
    Probe {
        lab: String,
        node: String,
        dst: String,
        /// Milliseconds between pings.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        /// How long to probe.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

/// A lab name, or the name inside a topology file.
fn lab_name(arg: &str) -> Result<String> {
    let p = Path::new(arg);
    if p.is_file() {
        return Ok(Topology::load(p)?.name);
    }
    Ok(arg.to_string())
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("wgrd-lab: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let mut path_dirs = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        path_dirs.push(dir);
    }
    path_dirs.extend(
        cli.path_dirs
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
    );
    let opts = Options {
        state_dir: cli
            .state_dir
            .clone()
            .unwrap_or_else(Options::default_state_dir),
        path_dirs,
        verbose: !cli.quiet,
    };
    match cli.command {
        Cmd::Up { file } => {
            let file = std::path::absolute(&file).with_context(|| format!("{}", file.display()))?;
            let topo = Topology::load(&file)?;
            for w in &topo.warnings {
                eprintln!("warning: {}: {w}", file.display());
            }
            if !cli.quiet {
                eprintln!(
                    "lab {}: {} nodes, {} links",
                    topo.name,
                    topo.nodes.len(),
                    topo.links.len()
                );
            }
            let state = lab::up(&topo, &opts)?;
            if !cli.quiet {
                eprintln!("lab {} is up; logs in {}", state.lab, state.dir.display());
            }
            Ok(0)
        }
        Cmd::Down { lab } => {
            let name = lab_name(&lab)?;
            let state = LabState::load(&opts, &name)?;
            lab::down(&state, &opts)?;
            if !cli.quiet {
                eprintln!("lab {name} is down");
            }
            Ok(0)
        }
        Cmd::Exec { lab, node, command } => {
            let state = LabState::load(&opts, &lab_name(&lab)?)?;
            let status = state
                .command(&node, &command)?
                .status()
                .with_context(|| format!("running {} in {node}", command.join(" ")))?;
            Ok(status.code().unwrap_or(128 + 15))
        }
        Cmd::Status { lab } => {
            let labs = match lab {
                Some(l) => vec![lab_name(&l)?],
                None => LabState::list(&opts),
            };
            if labs.is_empty() {
                println!("no labs in {}", opts.state_dir.display());
            }
            let mut healthy = true;
            for name in labs {
                let state = LabState::load(&opts, &name)?;
                println!("lab {name} ({})", state.file.display());
                for n in lab::status(&state) {
                    let cmd = match n.cmd_alive {
                        None => "-".to_string(),
                        Some(true) => "running".to_string(),
                        Some(false) => "EXITED".to_string(),
                    };
                    let node = if n.running && n.netns_present {
                        "up"
                    } else {
                        "DOWN"
                    };
                    healthy &= n.running && n.netns_present && n.cmd_alive != Some(false);
                    println!(
                        "  {:<10} {:<5} cmd {:<8} {:>2} processes  netns {}",
                        n.name, node, cmd, n.processes, n.netns
                    );
                }
                for l in &state.links {
                    println!("  link {l}");
                }
            }
            Ok(if healthy { 0 } else { 1 })
        }
        Cmd::Cut { lab, node, iface } => {
            let state = LabState::load(&opts, &lab_name(&lab)?)?;
            faults::cut(&state, &node, &iface)?;
            Ok(0)
        }
        Cmd::Heal { lab, node, iface } => {
            let state = LabState::load(&opts, &lab_name(&lab)?)?;
            faults::heal(&state, &node, &iface)?;
            Ok(0)
        }
        Cmd::Probe {
            lab,
            node,
            dst,
            interval_ms,
            seconds,
        } => {
            if interval_ms < 10 || seconds == 0 || seconds > 600 {
                bail!("--interval-ms must be >= 10 and --seconds 1..=600");
            }
            let state = LabState::load(&opts, &lab_name(&lab)?)?;
            let r = faults::probe(
                &state,
                &node,
                &dst,
                Duration::from_millis(interval_ms),
                Duration::from_secs(seconds),
            )?;
            println!("{r}");
            Ok(0)
        }
    }
}
