//! The listeners: the Unix socket (always) and an optional TCP socket (TLS with client
//! certificates, or plaintext on loopback when the config says so), each serving the
//! same services plus gRPC reflection (v1 and v1alpha) and the standard health service.
//!
//! The Unix socket is bound under a temporary name, given mode 0660, then renamed into
//! place, so it never exists with other permissions. A socket file left by a process that
//! died is removed only after a connection attempt to it is refused; a live one is an
//! error (two daemons on one socket).

use super::service::{EventsService, RoutesService, SystemService, TunnelsService};
use super::Control;
use crate::config::ControlConfig;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use wgrd_proto::v1 as pb;

/// Why the API could not start listening. Carries paths, never file contents.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{}: another process is listening on this socket (is wgrd already running?)", .0.display())]
    InUse(PathBuf),
    #[error("{}: exists and is not a socket; remove it or set [control] socket", .0.display())]
    NotASocket(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("TCP {addr}: {source}")]
    Tcp {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The running API servers. [`ControlServer::shutdown`] stops them and removes the socket.
pub struct ControlServer {
    control: Arc<Control>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    socket: PathBuf,
    tcp: Option<std::net::SocketAddr>,
}

impl ControlServer {
    /// Listen as `settings` say, serving `control`.
    pub async fn start(
        control: Arc<Control>,
        settings: &ControlConfig,
    ) -> Result<ControlServer, ListenError> {
        let stop = CancellationToken::new();
        let routes = services(&control).await;
        let mut tasks = Vec::new();

        let unix = bind_unix(&settings.socket)?;
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(unix);
        let unix_routes = routes.clone();
        let signal = stop.clone().cancelled_owned();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = Server::builder()
                .add_routes(unix_routes)
                .serve_with_incoming_shutdown(incoming, signal)
                .await
            {
                tracing::error!(error = %e, "API server on the Unix socket failed");
            }
        }));
        tracing::info!(socket = %settings.socket.display(), "API listening");

        let mut tcp = None;
        if let Some(addr) = settings.listen {
            let mut builder = Server::builder();
            if let Some(tls) = &settings.tls {
                let read = |p: &Path| {
                    std::fs::read(p).map_err(|source| ListenError::Io {
                        path: p.to_owned(),
                        source,
                    })
                };
                let config = ServerTlsConfig::new()
                    .identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?))
                    .client_ca_root(Certificate::from_pem(read(&tls.client_ca)?));
                builder = builder
                    .tls_config(config)
                    .map_err(|e| ListenError::Tls(e.to_string()))?;
            } else if !(settings.plaintext && addr.ip().is_loopback()) {
                // The loader refuses this; a config built in code must not slip through.
                return Err(ListenError::Tls(format!(
                    "{addr}: plaintext is allowed on loopback only, with plaintext = true"
                )));
            }
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ListenError::Tcp { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| ListenError::Tcp { addr, source })?;
            tcp = Some(bound);
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let signal = stop.clone().cancelled_owned();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = builder
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(incoming, signal)
                    .await
                {
                    tracing::error!(error = %e, "API server on TCP failed");
                }
            }));
            tracing::info!(%bound, tls = settings.tls.is_some(), "API listening on TCP");
        }
        Ok(ControlServer {
            control,
            stop,
            tasks,
            socket: settings.socket.clone(),
            tcp,
        })
    }

    /// The TCP address actually bound (when `listen` asked for port 0).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stop accepting, end open streams, wait for the servers, remove the socket.
    pub async fn shutdown(self) {
        self.control.stop_streams();
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Every service of the API, reflection, and health (every service marked serving).
async fn services(control: &Arc<Control>) -> Routes {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<pb::system_server::SystemServer<SystemService>>()
        .await;
    reporter
        .set_serving::<pb::tunnels_server::TunnelsServer<TunnelsService>>()
        .await;
    reporter
        .set_serving::<pb::routes_server::RoutesServer<RoutesService>>()
        .await;
    reporter
        .set_serving::<pb::events_server::EventsServer<EventsService>>()
        .await;
    reporter
        .set_serving::<pb::ospf_server::OspfServer<super::ospf::OspfService>>()
        .await;
    reporter
        .set_serving::<pb::bgp_server::BgpServer<super::bgp::BgpService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(wgrd_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1();
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(wgrd_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha();
    let mut builder = Routes::builder();
    builder
        .add_service(pb::system_server::SystemServer::new(SystemService(
            Arc::clone(control),
        )))
        .add_service(pb::tunnels_server::TunnelsServer::new(TunnelsService(
            Arc::clone(control),
        )))
        .add_service(pb::routes_server::RoutesServer::new(RoutesService(
            Arc::clone(control),
        )))
        .add_service(pb::events_server::EventsServer::new(EventsService(
            Arc::clone(control),
        )))
        .add_service(pb::ospf_server::OspfServer::new(super::ospf::OspfService(
            Arc::clone(control),
        )))
        .add_service(pb::bgp_server::BgpServer::new(super::bgp::BgpService(
            Arc::clone(control),
        )))
        .add_service(health);
    if let Ok(r) = reflection_v1 {
        builder.add_service(r);
    }
    if let Ok(r) = reflection_v1alpha {
        builder.add_service(r);
    }
    builder.routes()
}

/// Bind the Unix socket atomically with mode 0660, handling a stale one.
fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, ListenError> {
    let io = |source| ListenError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::create_dir_all(&dir).map_err(|source| ListenError::Io {
            path: dir.clone(),
            source,
        })?;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(ListenError::InUse(path.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::info!(socket = %path.display(), "removing a stale socket");
                std::fs::remove_file(path).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        },
        Ok(_) => return Err(ListenError::NotASocket(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = tokio::net::UnixListener::bind(&tmp).map_err(|source| ListenError::Io {
        path: tmp.clone(),
        source,
    })?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(listener)
}
