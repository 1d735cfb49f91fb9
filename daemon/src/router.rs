//! The wiring: builds tunnels, sockets, the FIB, the RIB and the host TUN from a
//! [`Config`], runs them as tasks, and tears them down on shutdown.
//! (Being written; the API below is what `main` and tests use.)

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running router. Dropping it without [`Router::shutdown`] still stops its tasks.
pub struct Router {
    _config: Config,
}

impl Router {
    /// Bring up everything the config describes.
    pub async fn start(config: Config) -> Result<Router, RouterError> {
        Ok(Router { _config: config })
    }

    /// Stop every task and remove what the router created (TUN, kernel routes).
    pub async fn shutdown(self) {}
}
