//! Reaching the daemon: its Unix socket (default), or TCP with TLS (client certificate)
//! or plaintext on loopback. A failure here is exit code 3, with a message that says
//! where it tried and how to start wgrd.

use anyhow::Context as _;
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

/// Where to find the daemon, from the command line.
pub enum Target {
    Unix(PathBuf),
    Tcp { url: String, tls: Option<TlsFiles> },
}

pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Tcp { url, .. } => f.write_str(url),
        }
    }
}

/// Could not reach the daemon (exit code 3).
#[derive(Debug)]
pub struct CannotConnect(pub String);

impl std::fmt::Display for CannotConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CannotConnect {}

pub fn hint(target: &Target, why: &str) -> CannotConnect {
    let how = match target {
        Target::Unix(_) => {
            "is wgrd running? Start it with `wgrd run -c /etc/wgrd/wgrd.toml`; \
             the socket is [control] socket in its config (or pass --socket PATH)"
        }
        Target::Tcp { .. } => {
            "is wgrd running with [control] listen set to this address, and do the TLS \
             files match its tls-client-ca?"
        }
    };
    CannotConnect(format!("cannot connect to wgrd at {target}: {why}\n{how}"))
}

pub async fn connect(target: &Target) -> anyhow::Result<Channel> {
    let result = match target {
        Target::Unix(path) => unix(path).await,
        Target::Tcp { url, tls } => tcp(url, tls.as_ref()).await,
    };
    result.map_err(|e| {
        let mut why = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            let more = s.to_string();
            if !why.contains(&more) {
                why = format!("{why}: {more}");
            }
            source = s.source();
        }
        hint(target, &why).into()
    })
}

async fn unix(path: &Path) -> Result<Channel, Box<dyn std::error::Error + Send + Sync>> {
    let path = path.to_owned();
    // The URI is required by the API and unused: the connector ignores it.
    let channel = Endpoint::try_from("http://wgrd.sock")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(&path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await?;
    Ok(channel)
}

async fn tcp(
    url: &str,
    tls: Option<&TlsFiles>,
) -> Result<Channel, Box<dyn std::error::Error + Send + Sync>> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())?;
    if let Some(files) = tls {
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&files.ca)?))
            .identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?));
        endpoint = endpoint.tls_config(config)?;
    }
    Ok(endpoint.connect().await?)
}
