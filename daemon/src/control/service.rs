//! The gRPC services (System, Tunnels, Routes, Events) over one [`Control`].
//!
//! Every change goes through [`Control::change`]: under one lock it reads the running
//! config, builds the desired one, validates it as a whole (all problems listed), refuses
//! changes that need a restart, applies it to the router (which keeps unchanged tunnels'
//! sessions), and saves the file when `persist` is on. A refused change changes nothing.

use super::convert;
use super::spec::{self, Problem};
use crate::config::save;
use crate::config::Config;
use crate::router::{ApplyError, ApplyErrorKind, Router};
use prost::Message as _;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::codegen::Bytes;
use tonic::{Code, Request, Response, Status};
use wgrd_proto::v1 as pb;

/// What the services share: the router, where its config lives, and the change lock.
pub struct Control {
    router: Arc<Router>,
    config_file: Option<PathBuf>,
    change: tokio::sync::Mutex<()>,
    /// Cancelled when the server stops, so that open Watch streams end.
    stopping: CancellationToken,
    /// The OSPF speaker's status, when the daemon runs one (see [`Control::with_ospf`]).
    pub(super) ospf: Option<tokio::sync::watch::Receiver<crate::routing::ospf::OspfStatus>>,
    /// The BGP speaker, when the daemon runs one (see [`Control::with_bgp`]).
    pub(super) bgp: Option<crate::routing::bgp::io::BgpClient>,
}

impl Control {
    /// `config_file`: where SaveConfig (and `persist`) write, and what relative key-file
    /// paths in API input are relative to. None: no file (SaveConfig fails).
    pub fn new(router: Arc<Router>, config_file: Option<PathBuf>) -> Self {
        Control {
            router,
            config_file,
            change: tokio::sync::Mutex::new(()),
            stopping: CancellationToken::new(),
            ospf: None,
            bgp: None,
        }
    }

    /// Serves the `Ospf` service from this speaker's status (`OspfHandle::watch`).
    pub fn with_ospf(
        mut self,
        status: tokio::sync::watch::Receiver<crate::routing::ospf::OspfStatus>,
    ) -> Self {
        self.ospf = Some(status);
        self
    }

    /// Serves the `Bgp` service through this speaker (`BgpHandle::client`), and puts its
    /// neighbor changes on the Events stream.
    pub fn with_bgp(mut self, client: crate::routing::bgp::io::BgpClient) -> Self {
        self.bgp = Some(client);
        self
    }

    pub(crate) fn stop_streams(&self) {
        self.stopping.cancel();
    }

    /// Validate `build`'s config, apply it (unless `dry_run`), save it if `persist`.
    async fn change(
        &self,
        dry_run: bool,
        build: impl FnOnce(&Config) -> Result<Result<Config, Vec<Problem>>, Status>,
    ) -> Result<pb::ApplyConfigResponse, Status> {
        let _one_at_a_time = self.change.lock().await;
        let current = self.router.config().await;
        let new = build(&current)?.map_err(|p| invalid(Code::InvalidArgument, &p))?;
        let restart = spec::control_restart_problems(&current.control, &new.control);
        if !restart.is_empty() {
            return Err(invalid(Code::FailedPrecondition, &restart));
        }
        if dry_run {
            // The router's own plan, so a dry run predicts exactly what an apply does.
            let summary = self
                .router
                .apply_dry_run(&new)
                .await
                .map_err(apply_refused)?;
            return Ok(pb::ApplyConfigResponse {
                summary: Some(convert::summary(&summary)),
                saved: false,
            });
        }
        let persist = new.control.persist && new != current;
        let summary = self.router.apply(new).await.map_err(apply_refused)?;
        let mut saved = false;
        if persist {
            if let Some(path) = &self.config_file {
                let config = self.router.config().await;
                save::save(path, &config).map_err(|e| {
                    tracing::error!(error = %e, "saving the config after a change failed");
                    Status::internal(format!("the change is applied but could not be saved: {e}"))
                })?;
                saved = true;
            }
        }
        Ok(pb::ApplyConfigResponse {
            summary: Some(convert::summary(&summary)),
            saved,
        })
    }

    fn desired(
        &self,
        input: Option<pb::ConfigInput>,
        current: &Config,
    ) -> Result<Result<Config, Vec<Problem>>, Status> {
        use pb::config_input::Source;
        match input.and_then(|i| i.source) {
            Some(Source::Toml(text)) => {
                Ok(spec::from_toml(&text, current, self.config_file.as_deref()))
            }
            Some(Source::Config(c)) => {
                Ok(spec::from_message(&c, current, self.config_file.as_deref()))
            }
            None => Err(Status::invalid_argument(
                "input: missing; set input.config or input.toml",
            )),
        }
    }

    /// The running config as a message with its keys, changed by `edit`, validated.
    fn edited(
        &self,
        current: &Config,
        edit: impl FnOnce(&mut pb::Config) -> Result<(), Status>,
    ) -> Result<Result<Config, Vec<Problem>>, Status> {
        let mut c = convert::config_with_keys(current);
        edit(&mut c)?;
        Ok(spec::from_message(&c, current, self.config_file.as_deref()))
    }
}

/// The router refused a valid config: FAILED_PRECONDITION when only a restart can make
/// the change, INTERNAL when making it failed (nothing was changed either way).
fn apply_refused(errors: Vec<ApplyError>) -> Status {
    let code = if errors
        .iter()
        .all(|e| e.kind == ApplyErrorKind::NeedsRestart)
    {
        Code::FailedPrecondition
    } else {
        Code::Internal
    };
    let problems: Vec<Problem> = errors
        .into_iter()
        .map(|e| Problem::new(e.field, e.why))
        .collect();
    invalid(code, &problems)
}

/// A status listing every problem (message: one "field: why" per line; details: a
/// `ConfigProblems`).
fn invalid(code: Code, problems: &[Problem]) -> Status {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| match p.line {
            Some(l) => format!("line {l}: {}: {}", p.field, p.why),
            None => format!("{}: {}", p.field, p.why),
        })
        .collect();
    let details = pb::ConfigProblems {
        problems: problems.iter().map(problem).collect(),
    };
    Status::with_details(code, lines.join("\n"), Bytes::from(details.encode_to_vec()))
}

fn problem(p: &Problem) -> pb::ConfigProblem {
    pb::ConfigProblem {
        field: p.field.clone(),
        why: p.why.clone(),
        line: p.line.and_then(|l| u32::try_from(l).ok()).unwrap_or(0),
    }
}

fn tunnel_not_found(name: &str) -> Status {
    Status::not_found(format!("no tunnel named \"{}\"", printable(name)))
}

/// A name from a request, safe to echo: only plain characters, and short. Anything else
/// may be a key pasted in the wrong field.
fn printable(name: &str) -> String {
    if name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/'))
    {
        name.to_owned()
    } else {
        "(not shown)".into()
    }
}

/// The System service.
pub struct SystemService(pub Arc<Control>);

#[tonic::async_trait]
impl pb::system_server::System for SystemService {
    async fn version(
        &self,
        _: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(pb::VersionResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            api: wgrd_proto::API.into(),
        }))
    }

    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let c = &self.0;
        let status = c.router.status().await;
        let persist = c.router.config().await.control.persist;
        Ok(Response::new(convert::status(
            &status,
            c.config_file.as_deref(),
            persist,
        )))
    }

    async fn nat_status(
        &self,
        _: Request<pb::NatStatusRequest>,
    ) -> Result<Response<pb::NatStatusResponse>, Status> {
        let nat = self.0.router.nat_status().await;
        Ok(Response::new(convert::nat_status(&nat)))
    }

    async fn get_config(
        &self,
        _: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::GetConfigResponse>, Status> {
        let config = self.0.router.config().await;
        let dir = self
            .0
            .config_file
            .as_deref()
            .and_then(|p| p.parent())
            .map(PathBuf::from)
            .unwrap_or_default();
        Ok(Response::new(pb::GetConfigResponse {
            config: Some(convert::config(&config)),
            toml: save::render_redacted(&config, &dir),
        }))
    }

    async fn validate_config(
        &self,
        request: Request<pb::ValidateConfigRequest>,
    ) -> Result<Response<pb::ValidateConfigResponse>, Status> {
        let current = self.0.router.config().await;
        let problems = match self.0.desired(request.into_inner().input, &current)? {
            Ok(new) => spec::control_restart_problems(&current.control, &new.control),
            Err(p) => p,
        };
        Ok(Response::new(pb::ValidateConfigResponse {
            valid: problems.is_empty(),
            problems: problems.iter().map(problem).collect(),
        }))
    }

    async fn apply_config(
        &self,
        request: Request<pb::ApplyConfigRequest>,
    ) -> Result<Response<pb::ApplyConfigResponse>, Status> {
        let r = request.into_inner();
        let c = &self.0;
        c.change(r.dry_run, |current| c.desired(r.input, current))
            .await
            .map(Response::new)
    }

    async fn save_config(
        &self,
        _: Request<pb::SaveConfigRequest>,
    ) -> Result<Response<pb::SaveConfigResponse>, Status> {
        let c = &self.0;
        let Some(path) = &c.config_file else {
            return Err(Status::failed_precondition(
                "wgrd runs without a config file; there is nowhere to save",
            ));
        };
        let _one_at_a_time = c.change.lock().await;
        let config = c.router.config().await;
        let saved = save::save(path, &config).map_err(|e| Status::internal(e.to_string()))?;
        tracing::info!(path = %path.display(), "config saved");
        let show = |p: &std::path::Path| p.display().to_string();
        Ok(Response::new(pb::SaveConfigResponse {
            path: show(&saved.path),
            backup: saved.backup.as_deref().map(show).unwrap_or_default(),
            key_files_written: saved.key_files_written.iter().map(|p| show(p)).collect(),
        }))
    }
}

/// The Tunnels service.
pub struct TunnelsService(pub Arc<Control>);

#[tonic::async_trait]
impl pb::tunnels_server::Tunnels for TunnelsService {
    async fn list(
        &self,
        _: Request<pb::ListTunnelsRequest>,
    ) -> Result<Response<pb::ListTunnelsResponse>, Status> {
        let tunnels = self.0.router.tunnels().await;
        Ok(Response::new(pb::ListTunnelsResponse {
            tunnels: tunnels.iter().map(convert::tunnel).collect(),
        }))
    }

    async fn get(
        &self,
        request: Request<pb::GetTunnelRequest>,
    ) -> Result<Response<pb::Tunnel>, Status> {
        let name = request.into_inner().name;
        match self.0.router.tunnel(&name).await {
            Some(t) => Ok(Response::new(convert::tunnel(&t))),
            None => Err(tunnel_not_found(&name)),
        }
    }

    async fn add(
        &self,
        request: Request<pb::AddTunnelRequest>,
    ) -> Result<Response<pb::ApplyConfigResponse>, Status> {
        let r = request.into_inner();
        let t = r
            .tunnel
            .ok_or_else(|| Status::invalid_argument("tunnel: missing"))?;
        let c = &self.0;
        c.change(r.dry_run, |current| {
            c.edited(current, |cfg| {
                if cfg.tunnels.iter().any(|x| x.name == t.name) {
                    return Err(Status::already_exists(format!(
                        "a tunnel named \"{}\" exists; use Update",
                        printable(&t.name)
                    )));
                }
                cfg.tunnels.push(t);
                Ok(())
            })
        })
        .await
        .map(Response::new)
    }

    async fn update(
        &self,
        request: Request<pb::UpdateTunnelRequest>,
    ) -> Result<Response<pb::ApplyConfigResponse>, Status> {
        let r = request.into_inner();
        let t = r
            .tunnel
            .ok_or_else(|| Status::invalid_argument("tunnel: missing"))?;
        let c = &self.0;
        c.change(r.dry_run, |current| {
            c.edited(current, |cfg| {
                let Some(slot) = cfg.tunnels.iter_mut().find(|x| x.name == t.name) else {
                    return Err(tunnel_not_found(&t.name));
                };
                *slot = t;
                Ok(())
            })
        })
        .await
        .map(Response::new)
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteTunnelRequest>,
    ) -> Result<Response<pb::ApplyConfigResponse>, Status> {
        let r = request.into_inner();
        let c = &self.0;
        c.change(r.dry_run, |current| {
            c.edited(current, |cfg| {
                let before = cfg.tunnels.len();
                cfg.tunnels.retain(|x| x.name != r.name);
                if cfg.tunnels.len() == before {
                    return Err(tunnel_not_found(&r.name));
                }
                if r.with_routes {
                    use pb::static_route::Via;
                    cfg.routes
                        .retain(|x| !matches!(&x.via, Some(Via::Tunnel(n)) if *n == r.name));
                }
                Ok(())
            })
        })
        .await
        .map(Response::new)
    }
}

/// The Routes service.
pub struct RoutesService(pub Arc<Control>);

#[tonic::async_trait]
impl pb::routes_server::Routes for RoutesService {
    async fn list(
        &self,
        request: Request<pb::ListRoutesRequest>,
    ) -> Result<Response<pb::ListRoutesResponse>, Status> {
        let routes = match request.into_inner().table() {
            pb::RouteTable::Rib => self.0.router.rib_routes().await,
            pb::RouteTable::Fib => self.0.router.fib_routes(),
        };
        Ok(Response::new(pb::ListRoutesResponse {
            routes: routes.iter().map(convert::route).collect(),
        }))
    }

    async fn lookup(
        &self,
        request: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        let text = request.into_inner().address;
        let address = text.trim().parse().map_err(|_| {
            Status::invalid_argument("address: expected an IP address like 10.0.0.1 or fd00::1")
        })?;
        Ok(Response::new(convert::lookup(
            self.0.router.lookup(address),
        )))
    }

    async fn add_static(
        &self,
        request: Request<pb::AddStaticRequest>,
    ) -> Result<Response<pb::ApplyConfigResponse>, Status> {
        let r = request.into_inner();
        let route = r
            .route
            .ok_or_else(|| Status::invalid_argument("route: missing"))?;
        let c = &self.0;
        c.change(r.dry_run, |current| {
            c.edited(current, |cfg| {
                if same_prefix_index(&cfg.routes, &route.prefix).is_some() {
                    return Err(Status::already_exists(format!(
                        "a static route for {} exists; delete it first",
                        printable(&route.prefix)
                    )));
                }
                cfg.routes.push(route);
                Ok(())
            })
        })
        .await
        .map(Response::new)
    }

    async fn delete_static(
        &self,
        request: Request<pb::DeleteStaticRequest>,
    ) -> Result<Response<pb::ApplyConfigResponse>, Status> {
        let r = request.into_inner();
        let c = &self.0;
        c.change(r.dry_run, |current| {
            c.edited(current, |cfg| {
                let Some(i) = same_prefix_index(&cfg.routes, &r.prefix) else {
                    return Err(Status::not_found(format!(
                        "no static route for {}",
                        printable(&r.prefix)
                    )));
                };
                cfg.routes.remove(i);
                Ok(())
            })
        })
        .await
        .map(Response::new)
    }
}

/// The route with the same prefix (compared as prefixes, so `fd00::/64` finds
/// `fd00:0::/64`).
fn same_prefix_index(routes: &[pb::StaticRoute], prefix: &str) -> Option<usize> {
    let want: Option<ipnetwork::IpNetwork> = prefix.trim().parse().ok();
    routes
        .iter()
        .position(|r| match (&want, r.prefix.parse().ok()) {
            (Some(a), Some(b)) => *a == b,
            _ => r.prefix == prefix,
        })
}

/// Events queued for one watcher before it is cut off (DATA_LOSS) as too slow.
const WATCH_QUEUE: usize = 1024;

/// The Events service.
pub struct EventsService(pub Arc<Control>);

#[tonic::async_trait]
impl pb::events_server::Events for EventsService {
    type WatchStream = ReceiverStream<Result<pb::Event, Status>>;

    async fn watch(
        &self,
        _: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        use pb::event::Kind;
        use tokio::sync::broadcast::error::RecvError;
        let router = &self.0.router;
        // Subscribe first: a change made while the snapshot is read is then in the
        // snapshot, in the live events, or both, but never lost.
        let mut live = router.subscribe();
        let mut bgp = self.0.bgp.as_ref().map(|c| c.watch());
        let mut bgp_seen = bgp
            .as_mut()
            .map(|w| w.borrow_and_update().clone())
            .unwrap_or_default();
        let mut ospf = self.0.ospf.clone();
        let mut ospf_seen = ospf
            .as_mut()
            .map(|w| w.borrow_and_update().clone())
            .unwrap_or_default();
        let mut initial: Vec<pb::Event> = router
            .tunnels()
            .await
            .iter()
            .map(|t| pb::Event {
                kind: Some(Kind::TunnelState(convert::tunnel(t))),
            })
            .collect();
        initial.extend(
            router
                .rib_routes()
                .await
                .iter()
                .filter(|r| r.best)
                .map(|r| pb::Event {
                    kind: Some(Kind::RouteState(convert::route(r))),
                }),
        );
        initial.extend(super::bgp::neighbor_states(&bgp_seen));
        initial.extend(super::ospf::neighbor_states(&ospf_seen));
        initial.push(pb::Event {
            kind: Some(Kind::InitialStateDone(true)),
        });
        let (tx, rx) = tokio::sync::mpsc::channel(WATCH_QUEUE);
        let stopping = self.0.stopping.clone();
        tokio::spawn(async move {
            for e in initial {
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
            loop {
                let bgp_changed = async {
                    match bgp.as_mut() {
                        Some(w) => w.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                let ospf_changed = async {
                    match ospf.as_mut() {
                        Some(w) => w.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                let next = tokio::select! {
                    r = live.recv() => r,
                    alive = ospf_changed => {
                        let Some(w) = ospf.as_mut().filter(|_| alive) else {
                            ospf = None;
                            continue;
                        };
                        let now = w.borrow_and_update().clone();
                        for e in super::ospf::neighbor_events(&ospf_seen, &now) {
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                        ospf_seen = now;
                        continue;
                    }
                    alive = bgp_changed => {
                        let Some(w) = bgp.as_mut().filter(|_| alive) else {
                            // The speaker is gone: nothing more from it.
                            bgp = None;
                            continue;
                        };
                        let now = w.borrow_and_update().clone();
                        for e in super::bgp::neighbor_events(&bgp_seen, &now) {
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                        bgp_seen = now;
                        continue;
                    }
                    () = tx.closed() => return,
                    () = stopping.cancelled() => {
                        let _ = tx.send(Err(Status::unavailable("wgrd is stopping"))).await;
                        return;
                    }
                };
                match next {
                    // A route batch becomes one event per route, rendered as it is sent.
                    Ok(e) => {
                        for item in convert::events(&e) {
                            if tx.send(Ok(item)).await.is_err() {
                                return;
                            }
                        }
                    }
                    // A watcher that does not read makes `live` lag, and is then cut off.
                    Err(RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Status::data_loss(format!(
                                "this watcher fell {n} events behind; watch again"
                            ))))
                            .await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
