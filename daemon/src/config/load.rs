//! TOML text -> [`Config`](super::Config), with validation.
//! (Placeholder: the config work fills this in; see docs/config.md.)

use super::Config;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a config file: where, which field, why. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line of the offending value, when it is known.
    pub line: Option<usize>,
    /// Dotted path of the field, e.g. `tunnel[2].endpoint` or `router.private-key-file`.
    pub field: String,
    pub why: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}: {}", self.file.display(), line, self.field, self.why),
            None => write!(f, "{}: {}: {}", self.file.display(), self.field, self.why),
        }
    }
}

/// Every problem found in one config, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Parse and validate config text. `file` names the source in errors and anchors relative
/// key-file paths (they are relative to the config file's directory).
pub fn parse_str(_text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    Err(ConfigErrors(vec![ConfigError {
        file: file.to_owned(),
        line: None,
        field: String::new(),
        why: "config loading is not implemented yet".into(),
    }]))
}

/// Read, parse and validate a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_str(&text, path),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: path.to_owned(),
            line: None,
            field: String::new(),
            why: format!("cannot read: {e}"),
        }])),
    }
}
