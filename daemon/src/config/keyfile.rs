//! Key files (`private-key-file`, `preshared-key-file`): permission check, then read.
//!
//! A key file everyone may read is refused rather than warned about: by the time a
//! warning is read the key may have been copied, and `wg` itself complains about the same.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// A key file is base64 text of 44 characters plus a newline; anything much larger is not
/// a key file, and reading it whole (say, a device node given by mistake) is pointless.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Why a key file was refused. Carries no file content.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyFileError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is readable by everyone (mode {mode:04o}); run: chmod o-rwx {path}")]
    WorldReadable { path: PathBuf, mode: u32 },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} is larger than a key file can be")]
    TooLarge { path: PathBuf },
}

/// Resolve `written` against `dir` (the config file's directory) unless absolute.
pub(crate) fn resolve(dir: &Path, written: &str) -> PathBuf {
    let p = Path::new(written);
    if p.is_absolute() {
        p.to_owned()
    } else {
        dir.join(p)
    }
}

/// The text of a key file, once it has passed the permission check.
pub(crate) fn read_key_file(path: &Path) -> Result<String, KeyFileError> {
    let unreadable = |source| KeyFileError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o004 != 0 {
        return Err(KeyFileError::WorldReadable {
            path: path.to_owned(),
            mode,
        });
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(unreadable)?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

/// A shared secret named by a field (OSPF `key-file`, BGP `password-file`): the path as
/// written, where it resolved, and the content with one trailing line end dropped. Errors
/// (empty path, unreadable or world-readable file, empty content) name the field and
/// never quote the content; `what` names the secret in the "is empty" message.
pub(super) fn secret_from_field(
    cx: &mut super::source::Cx,
    f: &super::source::Field,
    dir: &Path,
    what: &str,
) -> Option<(String, PathBuf, Vec<u8>)> {
    let written = f.str(cx)?.to_owned();
    if written.is_empty() {
        cx.err(f.line, &f.path, "empty path");
        return None;
    }
    let path = resolve(dir, &written);
    let text = match read_key_file(&path) {
        Ok(t) => t,
        Err(e) => {
            cx.err(f.line, &f.path, e.to_string());
            return None;
        }
    };
    let key = text.strip_suffix('\n').unwrap_or(&text);
    let key = key.strip_suffix('\r').unwrap_or(key).as_bytes().to_vec();
    if key.is_empty() {
        cx.err(
            f.line,
            &f.path,
            format!("{} is empty; put the {what} in it", path.display()),
        );
        return None;
    }
    Some((written, path, key))
}
