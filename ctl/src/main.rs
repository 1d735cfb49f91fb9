//! `wgrctl`: the command-line client of wgrd's gRPC API (docs/api.md).
//!
//! Exit codes: 0 ok, 1 the daemon refused or failed, 2 usage, 3 cannot connect.
//! Secrets are never taken from the command line (other users can read it): a preshared
//! key is given as a file on the daemon's machine or on standard input.

mod bgp;
mod connect;
mod ospf;
mod render;

use anyhow::{bail, Context as _};
use clap::{CommandFactory as _, Parser, Subcommand};
use connect::{CannotConnect, Target, TlsFiles};
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;
use wgrd_proto::v1 as pb;

const DEFAULT_SOCKET: &str = "/run/wgrd/wgrd.sock";

#[derive(Parser)]
#[command(name = "wgrctl", version, about = "Control and observe a running wgrd")]
struct Cli {
    /// The daemon's Unix socket.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "WGRD_SOCKET",
        conflicts_with = "addr"
    )]
    socket: Option<PathBuf>,
    /// The daemon's TCP address instead, like https://router1:9771 (http:// for loopback
    /// plaintext).
    #[arg(long, global = true, value_name = "URL")]
    addr: Option<String>,
    /// CA certificate (PEM) the daemon's certificate must chain to.
    #[arg(long, global = true, value_name = "FILE", requires_all = ["addr", "tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// This client's certificate (PEM).
    #[arg(long, global = true, value_name = "FILE", requires = "tls_ca")]
    tls_cert: Option<PathBuf>,
    /// This client's private key (PEM).
    #[arg(long, global = true, value_name = "FILE", requires = "tls_ca")]
    tls_key: Option<PathBuf>,
    /// Print JSON (read commands) with stable field names.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Version, uptime, router id, counts and counters.
    Status,
    /// Masquerading and port forwarding: wgrd's nftables table, counters per rule, sysctls.
    Nat,
    /// Every tunnel, one line each.
    Tunnels,
    /// Show, add, delete or change one tunnel.
    Tunnel {
        #[command(subcommand)]
        command: TunnelCommand,
    },
    /// The RIB (every candidate, * marks the best) or the FIB.
    Routes {
        #[arg(long, conflicts_with = "fib")]
        rib: bool,
        #[arg(long)]
        fib: bool,
    },
    /// Look up, add or delete a route.
    Route {
        #[command(subcommand)]
        command: RouteCommand,
    },
    /// Show, check, apply or save the config.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The OSPF speaker: interfaces, neighbors, the link state database, routes.
    Ospf {
        #[command(subcommand)]
        command: OspfCommand,
    },
    /// The BGP speaker: summary, neighbors, routes; announce, withdraw, reset.
    Bgp {
        #[command(subcommand)]
        command: bgp::BgpCommand,
    },
    /// Print the current state, then every change as it happens (Ctrl-C ends).
    Watch,
    /// Print a shell completion script, e.g. `wgrctl completions bash > /etc/bash_completion.d/wgrctl`.
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum OspfCommand {
    /// Router id, area, SPF runs, drop counters, and every OSPF interface (tunnel).
    Interfaces,
    /// Every neighbor with its state and uptime.
    Neighbors,
    /// Every LSA, decoded.
    Database,
    /// The routes of the last SPF run.
    Routes,
}

#[derive(clap::Args)]
struct TunnelOptions {
    /// The peer's public key (base64).
    #[arg(long, value_name = "KEY")]
    peer: Option<String>,
    /// The peer's IP:port or hostname:port; "none" makes the peer dial in.
    #[arg(long, value_name = "ADDR")]
    endpoint: Option<String>,
    /// This router's address on the tunnel, like 169.254.0.1/31; repeat for more
    /// (replaces the list).
    #[arg(long = "address", value_name = "ADDR/LEN")]
    addresses: Vec<String>,
    #[arg(long)]
    mtu: Option<u32>,
    /// Seconds between keepalives; 0 is off.
    #[arg(long, value_name = "SECONDS")]
    keepalive: Option<u32>,
    /// A UDP port of the tunnel's own.
    #[arg(long)]
    listen_port: Option<u32>,
    /// Preshared key file on the daemon's machine.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["psk_stdin", "no_psk"])]
    psk_file: Option<String>,
    /// Read the preshared key (base64) from standard input.
    #[arg(long, conflicts_with = "no_psk")]
    psk_stdin: bool,
    /// Remove the preshared key.
    #[arg(long)]
    no_psk: bool,
    /// Validate and show what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Subcommand)]
enum TunnelCommand {
    /// One tunnel in detail.
    Show { name: String },
    /// Add a tunnel.
    Add {
        name: String,
        #[command(flatten)]
        options: TunnelOptions,
    },
    /// Change a tunnel: only the options given change.
    Set {
        name: String,
        #[command(flatten)]
        options: TunnelOptions,
    },
    /// Delete a tunnel.
    Del {
        name: String,
        /// Also delete the static routes via this tunnel.
        #[arg(long)]
        with_routes: bool,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum RouteCommand {
    /// Which FIB entry a packet to ADDR would match.
    Lookup { address: String },
    /// Add a static route: `route add 10.2.0.0/16 via to-r2` (or via host / blackhole).
    Add {
        prefix: String,
        #[arg(value_parser = ["via"], hide_possible_values = true)]
        _via: String,
        target: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete a static route.
    Del {
        prefix: String,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// The running config as TOML, keys redacted (or the typed config with --json).
    Show,
    /// Validate a config file against the daemon (nothing changes).
    Check { file: PathBuf },
    /// Make the daemon run this config file; only what differs changes.
    Apply {
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the running config to the daemon's config file.
    Save,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "wgrctl", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wgrctl: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(c) = e.downcast_ref::<CannotConnect>() {
                eprintln!("wgrctl: {c}");
                return ExitCode::from(3);
            }
            if let Some(u) = e.downcast_ref::<Usage>() {
                eprintln!("wgrctl: {}", u.0);
                return ExitCode::from(2);
            }
            if let Some(s) = e.downcast_ref::<tonic::Status>() {
                eprintln!("wgrctl: {}", status_text(s));
                return ExitCode::from(1);
            }
            eprintln!("wgrctl: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A usage problem found after parsing (exit code 2).
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn status_text(s: &tonic::Status) -> String {
    use tonic::Code;
    let what = match s.code() {
        Code::InvalidArgument => "refused",
        Code::FailedPrecondition => "cannot do that now",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        _ => "error",
    };
    let message = s.message();
    if message.contains('\n') {
        format!("{what}:\n  {}", message.replace('\n', "\n  "))
    } else {
        format!("{what}: {message}")
    }
}

fn target(cli: &Cli) -> Target {
    match &cli.addr {
        Some(url) => Target::Tcp {
            url: url.clone(),
            tls: match (&cli.tls_ca, &cli.tls_cert, &cli.tls_key) {
                (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                    ca: ca.clone(),
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
        },
        None => Target::Unix(
            cli.socket
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
        ),
    }
}

/// A failed call: an unreachable daemon is exit 3, anything else the daemon's answer.
fn call_error(target: &Target) -> impl Fn(tonic::Status) -> anyhow::Error + '_ {
    move |s| {
        if s.code() == tonic::Code::Unavailable {
            connect::hint(target, s.message()).into()
        } else {
            s.into()
        }
    }
}

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let target = target(&cli);
    let channel = connect::connect(&target).await?;
    let err = call_error(&target);
    let json = cli.json;
    let now = SystemTime::now();
    let mut system = pb::system_client::SystemClient::new(channel.clone());
    let mut tunnels = pb::tunnels_client::TunnelsClient::new(channel.clone());
    let mut routes = pb::routes_client::RoutesClient::new(channel.clone());
    match cli.command {
        Command::Completions { .. } => unreachable!("handled before connecting"),
        Command::Status => {
            let version = system
                .version(pb::VersionRequest {})
                .await
                .map_err(&err)?
                .into_inner();
            let s = system
                .status(pb::StatusRequest {})
                .await
                .map_err(&err)?
                .into_inner();
            if json {
                print_json(&render::status_json(&s, &version.version))?;
            } else {
                println!("{}", render::status(&s, &version.version));
            }
        }
        Command::Ospf { command } => {
            let mut c = pb::ospf_client::OspfClient::new(channel.clone());
            let (text, value) = match command {
                OspfCommand::Interfaces => {
                    let r = c
                        .interfaces(pb::OspfInterfacesRequest {})
                        .await
                        .map_err(&err)?
                        .into_inner();
                    (ospf::interfaces(&r), ospf::interfaces_json(&r))
                }
                OspfCommand::Neighbors => {
                    let r = c
                        .neighbors(pb::OspfNeighborsRequest {})
                        .await
                        .map_err(&err)?
                        .into_inner();
                    (ospf::neighbors(&r), ospf::neighbors_json(&r))
                }
                OspfCommand::Database => {
                    let r = c
                        .database(pb::OspfDatabaseRequest {})
                        .await
                        .map_err(&err)?
                        .into_inner();
                    (ospf::database(&r), ospf::database_json(&r))
                }
                OspfCommand::Routes => {
                    let r = c
                        .routes(pb::OspfRoutesRequest {})
                        .await
                        .map_err(&err)?
                        .into_inner();
                    (ospf::routes(&r), ospf::routes_json(&r))
                }
            };
            if json {
                print_json(&value)?;
            } else {
                println!("{text}");
            }
        }
        Command::Bgp { command } => {
            bgp::run(channel.clone(), command, json, &err).await?;
        }
        Command::Nat => {
            let n = system
                .nat_status(pb::NatStatusRequest {})
                .await
                .map_err(&err)?
                .into_inner();
            if json {
                print_json(&render::nat_json(&n))?;
            } else {
                println!("{}", render::nat(&n));
            }
        }
        Command::Tunnels => {
            let list = tunnels
                .list(pb::ListTunnelsRequest {})
                .await
                .map_err(&err)?
                .into_inner()
                .tunnels;
            if json {
                print_json(&list.iter().map(render::tunnel_json).collect())?;
            } else {
                println!("{}", render::tunnels(&list, now));
            }
        }
        Command::Tunnel { command } => match command {
            TunnelCommand::Show { name } => {
                let t = tunnels
                    .get(pb::GetTunnelRequest { name })
                    .await
                    .map_err(&err)?
                    .into_inner();
                if json {
                    print_json(&render::tunnel_json(&t))?;
                } else {
                    println!("{}", render::tunnel_detail(&t, now));
                }
            }
            TunnelCommand::Add { name, options } => {
                let mut t = pb::TunnelSettings {
                    name,
                    ..Default::default()
                };
                if options.peer.is_none() {
                    return Err(Usage("tunnel add needs --peer KEY".into()).into());
                }
                let dry_run = options.dry_run;
                apply_options(&mut t, options)?;
                let r = tunnels
                    .add(pb::AddTunnelRequest {
                        tunnel: Some(t),
                        dry_run,
                    })
                    .await
                    .map_err(&err)?
                    .into_inner();
                print_change(&r, json, dry_run)?;
            }
            TunnelCommand::Set { name, options } => {
                let config = system
                    .get_config(pb::GetConfigRequest {})
                    .await
                    .map_err(&err)?
                    .into_inner()
                    .config
                    .unwrap_or_default();
                let Some(mut t) = config.tunnels.into_iter().find(|t| t.name == name) else {
                    return Err(
                        tonic::Status::not_found(format!("no tunnel named \"{name}\"")).into(),
                    );
                };
                let dry_run = options.dry_run;
                apply_options(&mut t, options)?;
                let r = tunnels
                    .update(pb::UpdateTunnelRequest {
                        tunnel: Some(t),
                        dry_run,
                    })
                    .await
                    .map_err(&err)?
                    .into_inner();
                print_change(&r, json, dry_run)?;
            }
            TunnelCommand::Del {
                name,
                with_routes,
                dry_run,
            } => {
                let r = tunnels
                    .delete(pb::DeleteTunnelRequest {
                        name,
                        with_routes,
                        dry_run,
                    })
                    .await
                    .map_err(&err)?
                    .into_inner();
                print_change(&r, json, dry_run)?;
            }
        },
        Command::Routes { rib: _, fib } => {
            let table = if fib {
                pb::RouteTable::Fib
            } else {
                pb::RouteTable::Rib
            };
            let list = routes
                .list(pb::ListRoutesRequest {
                    table: table.into(),
                })
                .await
                .map_err(&err)?
                .into_inner()
                .routes;
            if json {
                print_json(&list.iter().map(render::route_json).collect())?;
            } else {
                println!("{}", render::routes(&list, fib));
            }
        }
        Command::Route { command } => match command {
            RouteCommand::Lookup { address } => {
                let r = routes
                    .lookup(pb::LookupRequest { address })
                    .await
                    .map_err(&err)?
                    .into_inner();
                if json {
                    print_json(&serde_json::json!({
                        "found": r.found,
                        "prefix": r.found.then_some(&r.prefix),
                        "next_hop": render::next_hop_json(r.next_hop.as_ref()),
                    }))?;
                } else if r.found {
                    println!("{} via {}", r.prefix, render::next_hop(r.next_hop.as_ref()));
                } else {
                    println!("no route");
                }
            }
            RouteCommand::Add {
                prefix,
                target,
                dry_run,
                ..
            } => {
                use pb::static_route::Via;
                let via = match target.as_str() {
                    "host" => Via::Host(true),
                    "blackhole" => Via::Blackhole(true),
                    name => Via::Tunnel(name.into()),
                };
                let r = routes
                    .add_static(pb::AddStaticRequest {
                        route: Some(pb::StaticRoute {
                            prefix,
                            via: Some(via),
                        }),
                        dry_run,
                    })
                    .await
                    .map_err(&err)?
                    .into_inner();
                print_change(&r, json, dry_run)?;
            }
            RouteCommand::Del { prefix, dry_run } => {
                let r = routes
                    .delete_static(pb::DeleteStaticRequest { prefix, dry_run })
                    .await
                    .map_err(&err)?
                    .into_inner();
                print_change(&r, json, dry_run)?;
            }
        },
        Command::Config { command } => match command {
            ConfigCommand::Show => {
                let r = system
                    .get_config(pb::GetConfigRequest {})
                    .await
                    .map_err(&err)?
                    .into_inner();
                if json {
                    print_json(&serde_json::json!({ "toml": r.toml }))?;
                } else {
                    print!("{}", r.toml);
                }
            }
            ConfigCommand::Check { file } => {
                let text = read_file(&file)?;
                let r = system
                    .validate_config(pb::ValidateConfigRequest {
                        input: Some(toml_input(text)),
                    })
                    .await
                    .map_err(&err)?
                    .into_inner();
                if json {
                    let problems: Vec<_> = r
                        .problems
                        .iter()
                        .map(|p| serde_json::json!({"field": p.field, "why": p.why, "line": (p.line > 0).then_some(p.line)}))
                        .collect();
                    print_json(&serde_json::json!({"valid": r.valid, "problems": problems}))?;
                } else if r.valid {
                    println!("{}: ok", file.display());
                } else {
                    for p in &r.problems {
                        match p.line {
                            0 => println!("{}: {}: {}", file.display(), p.field, p.why),
                            l => println!("{}:{l}: {}: {}", file.display(), p.field, p.why),
                        }
                    }
                }
                if !r.valid {
                    bail!("{} is not valid", file.display());
                }
            }
            ConfigCommand::Apply { file, dry_run } => {
                let text = read_file(&file)?;
                let r = system
                    .apply_config(pb::ApplyConfigRequest {
                        input: Some(toml_input(text)),
                        dry_run,
                    })
                    .await
                    .map_err(&err)?
                    .into_inner();
                print_change(&r, json, dry_run)?;
            }
            ConfigCommand::Save => {
                let r = system
                    .save_config(pb::SaveConfigRequest {})
                    .await
                    .map_err(&err)?
                    .into_inner();
                if json {
                    print_json(
                        &serde_json::json!({"path": r.path, "backup": r.backup, "key_files_written": r.key_files_written}),
                    )?;
                } else {
                    println!("saved {}", r.path);
                    if !r.backup.is_empty() {
                        println!("previous kept as {}", r.backup);
                    }
                    for k in &r.key_files_written {
                        println!("key written to {k}");
                    }
                }
            }
        },
        Command::Watch => {
            let mut events = pb::events_client::EventsClient::new(channel)
                .watch(pb::WatchRequest {})
                .await
                .map_err(&err)?
                .into_inner();
            while let Some(e) = events.message().await.map_err(&err)? {
                if json {
                    println!("{}", render::event_json(&e));
                } else {
                    println!("{}", render::event_line(&e));
                }
            }
        }
    }
    Ok(())
}

fn toml_input(text: String) -> pb::ConfigInput {
    pb::ConfigInput {
        source: Some(pb::config_input::Source::Toml(text)),
    }
}

fn read_file(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn print_change(r: &pb::ApplyConfigResponse, json: bool, dry_run: bool) -> anyhow::Result<()> {
    let s = r.summary.clone().unwrap_or_default();
    if json {
        print_json(&render::summary_json(&s, r.saved))
    } else {
        println!("{}", render::summary(&s, r.saved, dry_run));
        Ok(())
    }
}

/// Apply the options given on the command line to a tunnel's settings.
fn apply_options(t: &mut pb::TunnelSettings, o: TunnelOptions) -> anyhow::Result<()> {
    use pb::secret::Source;
    if let Some(p) = o.peer {
        t.peer_public_key = p;
    }
    if let Some(e) = o.endpoint {
        t.endpoint = (e != "none").then_some(e);
    }
    if !o.addresses.is_empty() {
        t.addresses = o.addresses;
    }
    if o.mtu.is_some() {
        t.mtu = o.mtu;
    }
    if let Some(k) = o.keepalive {
        t.persistent_keepalive = (k > 0).then_some(k);
    }
    if o.listen_port.is_some() {
        t.listen_port = o.listen_port;
    }
    let source = if let Some(f) = o.psk_file {
        Some(Source::File(f))
    } else if o.psk_stdin {
        let mut text = String::new();
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut text)
            .context("reading the preshared key from standard input")?;
        Some(Source::Value(text.trim().to_owned()))
    } else if o.no_psk {
        Some(Source::None(true))
    } else {
        None
    };
    if let Some(source) = source {
        t.preshared_key = Some(pb::Secret {
            source: Some(source),
        });
    }
    Ok(())
}
