//! The runner's errors. A failing node command carries the node's name and the
//! command's output, so the report says which node failed and why.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The topology file is not one the runner can play.
    #[error("{}: {msg}", file.display())]
    Invalid { file: PathBuf, msg: String },
    /// A command the topology gave a node failed.
    #[error("node {node}: `{command}` failed ({status})\n{output}")]
    NodeCommand {
        node: String,
        command: String,
        status: String,
        output: String,
    },
    /// A command the runner itself ran (ip, nsenter, ...) failed.
    #[error("{what}: `{command}` failed ({status}): {output}")]
    System {
        what: String,
        command: String,
        status: String,
        output: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Refused before changing anything (the lab already runs, a namespace exists, ...).
    #[error("{0}")]
    Refused(String),
    /// Something went wrong after the lab was partly built, and the rollback too.
    #[error("{error}\nand rolling back failed: {rollback}")]
    RollbackFailed {
        error: Box<LabError>,
        rollback: Box<LabError>,
    },
    /// `down` could not remove everything it made.
    #[error("lab {lab}: left behind: {what}")]
    Leftovers { lab: String, what: String },
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> LabError {
        LabError::Io {
            what: what.into(),
            source,
        }
    }
}
