//! `wgrd`: the router daemon and its offline helpers.
//!
//! - `wgrd run -c FILE`: run the router and its gRPC API (`[control]`) until SIGTERM or
//!   SIGINT.
//! - `wgrd check -c FILE`: validate a config and print every problem.
//! - `wgrd genkey` / `wgrd pubkey` / `wgrd genpsk`: key helpers compatible with `wg`.
//!
//! Errors become `anyhow` only here, at the edge; the library keeps typed errors.

use anyhow::{bail, Context as _};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wgrd::config::{self, Config};
use wgrd::keys::PrivateKey;

#[derive(Parser)]
#[command(name = "wgrd", version, about = "A userspace WireGuard router")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router until SIGTERM or SIGINT.
    Run {
        /// The config file (TOML; see docs/config.md).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Log filter when RUST_LOG is not set: error, warn, info, debug, trace, or
        /// a tracing filter like `info,wgrd::dataplane=debug`.
        #[arg(long, value_name = "FILTER", default_value = "info")]
        log_level: String,
    },
    /// Validate a config file; print every problem as FILE:LINE: field: why.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print a new private key (base64), like `wg genkey`.
    Genkey,
    /// Read a private key on stdin, print its public key, like `wg pubkey`.
    Pubkey,
    /// Print a new preshared key (base64), like `wg genpsk`.
    Genpsk,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, log_level } => run(&config, &log_level),
        Command::Check { config } => Ok(check(&config)),
        Command::Genkey => print_line(&PrivateKey::generate().to_base64()),
        Command::Pubkey => pubkey(),
        Command::Genpsk => genpsk(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wgrd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Load a config, printing every error on failure. `None` when it did not load.
fn load(path: &Path) -> Option<Config> {
    match config::load_file(path) {
        Ok(config) => {
            warn_inline_keys(path, &config);
            Some(config)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            None
        }
    }
}

/// Key files that everyone may read are refused; a config holding keys inline gets the
/// same scrutiny, but only as a warning, because such a config is often a test fixture.
fn warn_inline_keys(path: &Path, config: &Config) {
    let inline = config.router.private_key_file.is_none()
        || config
            .tunnels
            .iter()
            .any(|t| t.preshared_key.is_some() && t.preshared_key_file.is_none());
    let world_readable = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o004 != 0)
        .unwrap_or(false);
    if inline && world_readable {
        eprintln!(
            "{}: warning: holds keys inline and is readable by everyone; \
             run chmod o-rwx on it or use private-key-file / preshared-key-file",
            path.display()
        );
    }
}

fn check(path: &Path) -> ExitCode {
    match load(path) {
        Some(config) => {
            println!(
                "{}: ok ({} tunnels, {} routes)",
                path.display(),
                config.tunnels.len(),
                config.routes.len()
            );
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

fn print_line(text: &str) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush())?;
    Ok(ExitCode::SUCCESS)
}

fn pubkey() -> anyhow::Result<ExitCode> {
    let mut text = String::new();
    // Bounded: a key is 44 characters; a pipe of anything else is not worth reading whole.
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .context("reading a private key from stdin")?;
    // The message says what is wrong, never what was read: stdin holds a secret.
    let key = PrivateKey::from_base64(&text)
        .map_err(|e| anyhow::anyhow!("stdin is not a private key: {e}"))?;
    print_line(&key.public_key().to_base64())
}

fn genpsk() -> anyhow::Result<ExitCode> {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .context("reading random bytes")?;
    print_line(&BASE64.encode(bytes))
}

/// glibc gives threads that allocate at the same time arenas of their own (up to eight
/// per core), and an arena keeps what was freed in it. The routing tasks move between
/// tokio's worker threads, so a table load leaves free space behind in several arenas:
/// at a million routes that was 10-20 MB of resident memory (docs/performance.md). Two
/// arenas cover wgrd's threads (the packet path does not allocate per packet).
/// `MALLOC_ARENA_MAX` in the environment still decides when set.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator settings; called before the runtime's
        // threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn run(path: &Path, log_level: &str) -> anyhow::Result<ExitCode> {
    // Absolute, so that paths in the config (resolved against its directory) and in API
    // input later resolve the same way whatever the working directory.
    let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let Some(config) = load(path) else {
        return Ok(ExitCode::FAILURE);
    };
    init_tracing(log_level)?;
    limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wgrd")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        // Install the handlers before starting, so a signal during start-up is not lost
        // (the default action would kill the process without cleaning up).
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        let control_settings = config.control.clone();
        let router = std::sync::Arc::new(
            wgrd::router::Router::start(config)
                .await
                .context("starting the router")?,
        );
        // The OSPF speaker runs while the config has an enabled [ospf] section.
        let ospf = wgrd::routing::ospf::spawn(std::sync::Arc::clone(&router));
        // The BGP speaker runs while the config has a [bgp] section.
        let bgp = wgrd::routing::bgp::io::spawn(std::sync::Arc::clone(&router));
        let control = std::sync::Arc::new(
            wgrd::control::Control::new(std::sync::Arc::clone(&router), Some(path.to_owned()))
                .with_ospf(ospf.watch())
                .with_bgp(bgp.client()),
        );
        // A socket the config names must work. The default one may be taken by another
        // wgrd on the same machine (network-namespace labs) or be out of reach of a user
        // without root: the router then runs without its API rather than not at all.
        let default_only = control_settings.socket == Path::new(config::DEFAULT_CONTROL_SOCKET)
            && control_settings.listen.is_none();
        let api = match wgrd::control::ControlServer::start(control, &control_settings).await {
            Ok(api) => Some(api),
            Err(e) if default_only => {
                tracing::error!(
                    error = %e,
                    "the API is not available; set [control] socket to a path of this wgrd's own"
                );
                None
            }
            Err(e) => {
                bgp.shutdown().await;
                ospf.shutdown().await;
                router.shutdown().await;
                return Err(anyhow::Error::new(e).context("starting the API"));
            }
        };
        tracing::info!(config = %path.display(), "wgrd running");
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = which, "shutting down");
        if let Some(api) = api {
            api.shutdown().await;
        }
        bgp.shutdown().await;
        ospf.shutdown().await;
        router.shutdown().await;
        tracing::info!("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr; RUST_LOG, when set, wins over `--log-level`.
fn init_tracing(log_level: &str) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(&env).context("bad RUST_LOG")?,
        _ => EnvFilter::try_new(log_level).context("bad --log-level")?,
    };
    if tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .is_err()
    {
        bail!("a log subscriber is already installed");
    }
    Ok(())
}
