//! [`Config`] -> TOML: writing the running config back to its file, and rendering it for
//! display with keys redacted.
//!
//! Saving edits the existing file in place with `toml_edit`, so comments and the order of
//! keys survive: tunnels are matched by name and routes by prefix, a key is rewritten only
//! when its value changed, and a key left at its default that the file does not mention
//! stays unmentioned. Comments attached to a tunnel or route that is removed go with it.
//!
//! The write is atomic: the new text goes to a temporary file in the same directory, is
//! fsynced, the previous file is copied to `FILE.bak`, and the temporary file is renamed
//! over `FILE` (then the directory is fsynced). A crash at any point leaves either the old
//! or the new file, never a truncated one. The new file keeps the old one's mode.
//!
//! Secrets: a key that came from a file is saved as the same file reference. A key the
//! file already holds inline stays inline. Any other key (given inline over the API) is
//! never written into the config: it goes to a key file of its own, mode 0600, in
//! `STEM.keys/` beside the config, and the config refers to that file.

use super::keyfile::{read_key_file, resolve};
use super::model::*;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table, Value};

/// What [`save`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub path: PathBuf,
    /// The previous file, kept; None when there was none.
    pub backup: Option<PathBuf>,
    /// Key files written for keys that were only known inline.
    pub key_files_written: Vec<PathBuf>,
}

/// Why a save failed; the config file is then unchanged. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Shown instead of an inline key by [`render_redacted`].
pub const REDACTED: &str = "(redacted)";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SaveError + '_ {
    move |source| SaveError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Write `config` to `path` atomically, keeping the previous file as `path.bak`.
pub fn save(path: &Path, config: &Config) -> Result<Saved, SaveError> {
    let old_text = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(path)(e)),
    };
    // A file that no longer parses is not edited but replaced (it is kept as .bak).
    let mut doc = old_text
        .as_deref()
        .and_then(|t| t.parse::<DocumentMut>().ok())
        .unwrap_or_default();
    let dir = path.parent().map(Path::to_owned).unwrap_or_default();
    let mut keys = KeyWriter::Files {
        dir: dir.clone(),
        stem: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "wgrd".into()),
        written: Vec::new(),
    };
    update(&mut doc, config, &dir, &mut keys)?;
    let backup = write_atomic(path, &doc.to_string(), old_text.is_some(), false)?;
    let KeyWriter::Files { written, .. } = keys else {
        unreachable!("constructed as Files above")
    };
    Ok(Saved {
        path: path.to_owned(),
        backup,
        key_files_written: written,
    })
}

/// The config as TOML with every inline key shown as `"(redacted)"` (key file references
/// are shown). Relative paths are given relative to `dir` when they lie under it.
pub fn render_redacted(config: &Config, dir: &Path) -> String {
    let mut doc = DocumentMut::new();
    match update(&mut doc, config, dir, &mut KeyWriter::Redact) {
        Ok(()) => doc.to_string(),
        Err(_) => unreachable!("redacting writes no files"),
    }
}

/// What to do with a key the file does not already hold.
enum KeyWriter {
    /// Write it to its own file.
    Files {
        dir: PathBuf,
        stem: String,
        written: Vec<PathBuf>,
    },
    /// Show "(redacted)" in its place.
    Redact,
}

/// A key and where the model says it came from.
struct KeyRef<'a> {
    base64: String,
    file: Option<&'a Path>,
}

/// Set `inline_key` / `file_key` of `t` so that they give `key`, following the module's
/// rules. `file_name` names a key file written for it.
fn put_key(
    t: &mut Table,
    inline_key: &str,
    file_key: &str,
    key: &KeyRef,
    dir: &Path,
    file_name: &str,
    keys: &mut KeyWriter,
) -> Result<(), SaveError> {
    if let Some(file) = key.file {
        t.remove(inline_key);
        set_path(t, file_key, file, dir);
        return Ok(());
    }
    // Already there, inline or in a file holding the same key: leave it.
    let same_inline = t
        .get(inline_key)
        .and_then(Item::as_str)
        .is_some_and(|s| s.trim() == key.base64);
    let same_file = t.get(file_key).and_then(Item::as_str).is_some_and(|p| {
        read_key_file(&resolve(dir, p)).is_ok_and(|text| text.trim() == key.base64)
    });
    if (same_inline && !t.contains_key(file_key)) || (same_file && !t.contains_key(inline_key)) {
        return Ok(());
    }
    match keys {
        KeyWriter::Redact => {
            t.remove(file_key);
            set(t, inline_key, REDACTED);
        }
        KeyWriter::Files {
            dir: kdir,
            stem,
            written,
        } => {
            let folder = kdir.join(format!("{stem}.keys"));
            std::fs::create_dir_all(&folder).map_err(io(&folder))?;
            std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700))
                .map_err(io(&folder))?;
            let path = folder.join(file_name);
            write_atomic(&path, &format!("{}\n", key.base64), false, false)?;
            written.push(path.clone());
            t.remove(inline_key);
            set_path(t, file_key, &path, dir);
        }
    }
    Ok(())
}

/// Make `doc` describe `config`, touching only what differs.
fn update(
    doc: &mut DocumentMut,
    config: &Config,
    dir: &Path,
    keys: &mut KeyWriter,
) -> Result<(), SaveError> {
    // [router]
    let r = &config.router;
    let router = section(doc, "router");
    set(router, "router-id", r.router_id.to_string());
    put_key(
        router,
        "private-key",
        "private-key-file",
        &KeyRef {
            base64: r.private_key.to_base64(),
            file: r.private_key_file.as_deref(),
        },
        dir,
        "router.key",
        keys,
    )?;
    set_unless_default(
        router,
        "listen-port",
        i64::from(r.listen_port),
        r.listen_port == DEFAULT_LISTEN_PORT,
    );
    match r.listen_address {
        Some(a) => set(router, "listen-address", a.to_string()),
        None => drop(router.remove("listen-address")),
    }

    // [host]
    match &config.host {
        None => drop(doc.remove("host")),
        Some(h) => {
            let host = section(doc, "host");
            set_unless_default(
                host,
                "interface",
                h.interface.clone(),
                h.interface == DEFAULT_HOST_INTERFACE,
            );
            set_strings(host, "addresses", h.addresses.iter().map(|a| a.to_string()));
            set_unless_default(host, "export-routes", h.export_routes, !h.export_routes);
            set_unless_default(host, "mtu", i64::from(h.mtu), h.mtu == DEFAULT_HOST_MTU);
        }
    }

    // [[tunnel]], matched by name.
    let mut old = tables_by(doc, "tunnel", "name");
    let mut tunnels = ArrayOfTables::new();
    for tc in &config.tunnels {
        let mut t = old.remove(&tc.name).unwrap_or_default();
        set(&mut t, "name", tc.name.clone());
        set(&mut t, "peer-public-key", tc.peer_public_key.to_base64());
        match &tc.preshared_key {
            Some(k) => put_key(
                &mut t,
                "preshared-key",
                "preshared-key-file",
                &KeyRef {
                    base64: BASE64.encode(k.0),
                    file: tc.preshared_key_file.as_deref(),
                },
                dir,
                &format!("{}.psk", tc.name),
                keys,
            )?,
            None => {
                t.remove("preshared-key");
                t.remove("preshared-key-file");
            }
        }
        match tc.endpoint {
            Some(e) => {
                // A hostname written in the file resolved to this address: keep the name.
                let resolves_same = t
                    .get("endpoint")
                    .and_then(Item::as_str)
                    .and_then(|s| std::net::ToSocketAddrs::to_socket_addrs(s).ok())
                    .is_some_and(|mut found| found.any(|a| a == e));
                if !resolves_same {
                    set(&mut t, "endpoint", e.to_string());
                }
            }
            None => drop(t.remove("endpoint")),
        }
        match tc.persistent_keepalive {
            Some(k) => set(&mut t, "persistent-keepalive", i64::from(k)),
            None => {
                // 0 and absent both mean off.
                if t.get("persistent-keepalive")
                    .and_then(Item::as_integer)
                    .is_some_and(|n| n != 0)
                {
                    t.remove("persistent-keepalive");
                }
            }
        }
        set_strings(
            &mut t,
            "addresses",
            tc.addresses.iter().map(|a| a.to_string()),
        );
        set_unless_default(
            &mut t,
            "mtu",
            i64::from(tc.mtu),
            tc.mtu == DEFAULT_TUNNEL_MTU,
        );
        match tc.listen_port {
            Some(p) => set(&mut t, "listen-port", i64::from(p)),
            None => drop(t.remove("listen-port")),
        }
        super::ospf::save_tunnel_ospf(&mut t, &tc.ospf);
        tunnels.push(t);
    }
    put_array(doc, "tunnel", tunnels);

    // [[route]], matched by prefix.
    let mut old = tables_by(doc, "route", "prefix");
    let mut routes = ArrayOfTables::new();
    for rc in &config.routes {
        let prefix = rc.prefix.to_string();
        let mut t = old.remove(&prefix).unwrap_or_default();
        set(&mut t, "prefix", prefix);
        let via = match &rc.via {
            RouteVia::Tunnel(name) => name.clone(),
            RouteVia::Host => "host".into(),
            RouteVia::Blackhole => "blackhole".into(),
        };
        set(&mut t, "via", via);
        routes.push(t);
    }
    put_array(doc, "route", routes);

    update_nat(doc, config);
    super::ospf::save_ospf(doc, config);
    super::bgp::save_bgp(doc, config);
    super::bgp::save_prefix_lists(doc, config);
    super::bgp::save_policies(doc, config);

    // [control]
    let c = &config.control;
    if *c == ControlConfig::default() && !doc.contains_key("control") {
        return Ok(());
    }
    let control = section(doc, "control");
    if c.socket != Path::new(DEFAULT_CONTROL_SOCKET) || control.contains_key("socket") {
        set_path(control, "socket", &c.socket, dir);
    }
    match c.listen {
        Some(a) => set(control, "listen", a.to_string()),
        None => drop(control.remove("listen")),
    }
    match &c.tls {
        Some(tls) => {
            set_path(control, "tls-cert", &tls.cert, dir);
            set_path(control, "tls-key", &tls.key, dir);
            set_path(control, "tls-client-ca", &tls.client_ca, dir);
        }
        None => {
            for k in ["tls-cert", "tls-key", "tls-client-ca"] {
                control.remove(k);
            }
        }
    }
    set_unless_default(control, "plaintext", c.plaintext, !c.plaintext);
    set_unless_default(control, "persist", c.persist, !c.persist);
    Ok(())
}

/// The table `[name]`, created (or made a table) if needed.
fn section<'d>(doc: &'d mut DocumentMut, name: &str) -> &'d mut Table {
    if !doc.get(name).is_some_and(Item::is_table) {
        doc.insert(name, Item::Table(Table::new()));
    }
    match doc.get_mut(name) {
        Some(Item::Table(t)) => t,
        _ => unreachable!("inserted as a table above"),
    }
}

/// The entries of `[[name]]` by the string value of `key`; inline forms are dropped.
fn tables_by(doc: &mut DocumentMut, name: &str, key: &str) -> HashMap<String, Table> {
    let mut out = HashMap::new();
    if let Some(Item::ArrayOfTables(array)) = doc.remove(name) {
        for t in array {
            if let Some(k) = t.get(key).and_then(Item::as_str) {
                out.entry(k.to_owned()).or_insert(t);
            }
        }
    }
    out
}

fn put_array(doc: &mut DocumentMut, name: &str, array: ArrayOfTables) {
    if !array.is_empty() {
        doc.insert(name, Item::ArrayOfTables(array));
    }
}

/// The value without its surrounding whitespace and comments, for comparison.
fn bare(v: &Value) -> String {
    let mut v = v.clone();
    v.decor_mut().clear();
    v.to_string()
}

/// Set `key` to `v` unless it already has that value (keeps the line's decor).
fn set(t: &mut Table, key: &str, v: impl Into<Value>) {
    let v: Value = v.into();
    if t.get(key).and_then(Item::as_value).map(bare) == Some(bare(&v)) {
        return;
    }
    match t.get_mut(key) {
        Some(item @ Item::Value(_)) => {
            let decor = item.as_value().map(|old| old.decor().clone());
            let mut v = v;
            if let Some(d) = decor {
                *v.decor_mut() = d;
            }
            *item = Item::Value(v);
        }
        _ => {
            t.insert(key, value(v));
        }
    }
}

fn set_unless_default(t: &mut Table, key: &str, v: impl Into<Value>, is_default: bool) {
    if is_default && !t.contains_key(key) {
        return;
    }
    set(t, key, v);
}

fn set_strings(t: &mut Table, key: &str, items: impl Iterator<Item = String>) {
    let array: Array = items.collect();
    if array.is_empty() && !t.contains_key(key) {
        return;
    }
    set(t, key, array);
}

/// A path, written as the file has it if that still resolves to `path`, else relative to
/// `dir` when under it, else absolute.
fn set_path(t: &mut Table, key: &str, path: &Path, dir: &Path) {
    if t.get(key)
        .and_then(Item::as_str)
        .is_some_and(|w| resolve(dir, w) == path)
    {
        return;
    }
    let text = match path.strip_prefix(dir) {
        Ok(rel) if !dir.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
        _ => path.to_string_lossy().into_owned(),
    };
    set(t, key, text);
}

/// Replace `path` by `text` atomically; with `backup`, the old file is first copied to
/// `path.bak` (returned). `crash_before_rename` stops short of the rename, as a crash
/// would (tests).
fn write_atomic(
    path: &Path,
    text: &str,
    backup: bool,
    crash_before_rename: bool,
) -> Result<Option<PathBuf>, SaveError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io(&tmp))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        let kept = if backup {
            let bak = dir.join(format!("{name}.bak"));
            let bak_tmp = dir.join(format!(".{name}.bak.{}.tmp", std::process::id()));
            std::fs::copy(path, &bak_tmp).map_err(io(&bak_tmp))?;
            std::fs::File::open(&bak_tmp)
                .and_then(|f| f.sync_all())
                .map_err(io(&bak_tmp))?;
            std::fs::rename(&bak_tmp, &bak).map_err(io(&bak))?;
            Some(bak)
        } else {
            None
        };
        if crash_before_rename {
            return Ok(kept);
        }
        std::fs::rename(&tmp, path).map_err(io(path))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))?;
        Ok(kept)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `[forwarding]` and `[nat]`: keys at their default that the file does not mention stay
/// unmentioned; `[[nat.masquerade]]` and `[[nat.port-forward]]` entries are matched by
/// position, so an unchanged entry keeps its comments. Also used by the API to carry the
/// running NAT over into a config given as a message (which has no NAT fields).
pub(crate) fn update_nat(doc: &mut DocumentMut, config: &Config) {
    let fw = &config.forwarding;
    if *fw != ForwardingConfig::default() || doc.contains_key("forwarding") {
        let t = section_in(doc.as_table_mut(), "forwarding");
        set_unless_default(t, "mss-clamp", fw.mss_clamp, fw.mss_clamp);
    }

    let nat = &config.nat;
    if *nat == NatConfig::default() {
        doc.remove("nat");
        return;
    }
    let fresh = !doc.contains_key("nat");
    let t = section_in(doc.as_table_mut(), "nat");
    if fresh {
        // Only `[[nat.masquerade]]` / `[[nat.port-forward]]` headers, no empty `[nat]`.
        t.set_implicit(true);
    }
    set_unless_default(t, "set-sysctls", nat.set_sysctls, !nat.set_sysctls);

    let old = take_tables(t, "masquerade");
    let mut array = ArrayOfTables::new();
    for (i, m) in nat.masquerade.iter().enumerate() {
        let mut e = old.get(i).cloned().unwrap_or_default();
        let default_from = m.from == [NatSource::AllTunnels];
        if !default_from || e.contains_key("from") {
            set_strings(&mut e, "from", m.from.iter().map(|f| f.to_string()));
        }
        set(&mut e, "out-interface", m.out_interface.clone());
        array.push(e);
    }
    put_tables(t, "masquerade", array);

    let old = take_tables(t, "port-forward");
    let mut array = ArrayOfTables::new();
    for (i, p) in nat.port_forwards.iter().enumerate() {
        let mut e = old.get(i).cloned().unwrap_or_default();
        set(&mut e, "in-interface", p.in_interface.clone());
        set(&mut e, "protocol", p.protocol.name());
        set(&mut e, "port", i64::from(p.port));
        set(&mut e, "to", p.to.to_string());
        set_unless_default(&mut e, "masquerade", p.masquerade, p.masquerade);
        array.push(e);
    }
    put_tables(t, "port-forward", array);
}

/// `[ospf]`, each tunnel's `ospf = { ... }` (by tunnel name), `[bgp]`, `[[policy]]` and
/// `[[prefix-list]]` of
/// `config` written into `doc`: the API carries the running ones over into a config given
/// as a message, which has no fields for them.
pub(crate) fn carry_over_routing(doc: &mut DocumentMut, config: &Config) {
    super::ospf::save_ospf(doc, config);
    if let Some(Item::ArrayOfTables(tunnels)) = doc.get_mut("tunnel") {
        for t in tunnels.iter_mut() {
            let name = t.get("name").and_then(Item::as_str).unwrap_or_default();
            let ospf = config.tunnel(name).and_then(|c| c.ospf.clone());
            super::ospf::save_tunnel_ospf(t, &ospf);
        }
    }
    super::bgp::save_bgp(doc, config);
    super::bgp::save_prefix_lists(doc, config);
    super::bgp::save_policies(doc, config);
}

/// The sub-table `name` of `t`, created (or made a table) if needed.
fn section_in<'t>(t: &'t mut Table, name: &str) -> &'t mut Table {
    if !t.get(name).is_some_and(Item::is_table) {
        t.insert(name, Item::Table(Table::new()));
    }
    match t.get_mut(name) {
        Some(Item::Table(t)) => t,
        _ => unreachable!("inserted as a table above"),
    }
}

/// The entries of the array of tables `name` in `t` (removed from it); inline forms are
/// dropped.
fn take_tables(t: &mut Table, name: &str) -> Vec<Table> {
    match t.remove(name) {
        Some(Item::ArrayOfTables(array)) => array.into_iter().collect(),
        _ => Vec::new(),
    }
}

fn put_tables(t: &mut Table, name: &str, array: ArrayOfTables) {
    if !array.is_empty() {
        t.insert(name, Item::ArrayOfTables(array));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_file, parse_str};
    use crate::keys::{PresharedKey, PrivateKey};

    const FILE: &str = "# my router\n\
        [router]\n\
        router-id = \"10.255.0.1\" # the id\n\
        private-key-file = \"r1.key\"\n\
        \n\
        # to the second site\n\
        [[tunnel]]\n\
        name = \"to-r2\"\n\
        peer-public-key = \"{P1}\"\n\
        endpoint = \"127.0.0.1:51821\"\n\
        addresses = [\"10.0.0.1/31\"]\n\
        \n\
        [[route]]\n\
        prefix = \"10.2.0.0/16\" # site 2\n\
        via = \"to-r2\"\n";

    fn fixture() -> (tempfile::TempDir, PathBuf, Config) {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate();
        let kp = dir.path().join("r1.key");
        std::fs::write(&kp, key.to_base64()).unwrap();
        std::fs::set_permissions(&kp, std::fs::Permissions::from_mode(0o600)).unwrap();
        let peer = PrivateKey::generate().public_key().to_base64();
        let path = dir.path().join("r1.toml");
        std::fs::write(&path, FILE.replace("{P1}", &peer)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let config = load_file(&path).unwrap();
        (dir, path, config)
    }

    #[test]
    fn unchanged_config_saves_byte_for_byte() {
        let (_dir, path, config) = fixture();
        let before = std::fs::read_to_string(&path).unwrap();
        let saved = save(&path, &config).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        assert_eq!(
            std::fs::read_to_string(saved.backup.unwrap()).unwrap(),
            before
        );
        assert!(saved.key_files_written.is_empty());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn changes_keep_comments_and_reload_equal() {
        let (dir, path, mut config) = fixture();
        config.tunnels[0].mtu = 1380;
        let mut t2 = config.tunnels[0].clone();
        t2.name = "to-r3".into();
        t2.peer_public_key = PrivateKey::generate().public_key();
        t2.addresses = vec!["10.0.0.2/31".parse().unwrap()];
        t2.endpoint = None;
        t2.preshared_key = Some(PresharedKey([7; 32]));
        config.tunnels.push(t2);
        config.routes.push(StaticRoute {
            prefix: "10.3.0.0/16".parse().unwrap(),
            via: RouteVia::Blackhole,
        });
        config.control.persist = true;
        let saved = save(&path, &config).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for comment in [
            "# my router",
            "# the id",
            "# to the second site",
            "# site 2",
        ] {
            assert!(text.contains(comment), "{comment} lost:\n{text}");
        }
        // The inline preshared key went to a key file, not into the config.
        assert!(!text.contains(&BASE64.encode([7u8; 32])), "{text}");
        assert_eq!(saved.key_files_written.len(), 1);
        assert!(
            text.contains("preshared-key-file = \"r1.keys/to-r3.psk\""),
            "{text}"
        );
        let mode = std::fs::metadata(&saved.key_files_written[0])
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut reloaded = load_file(&path).unwrap();
        // The reloaded model knows the file the key now lives in.
        assert_eq!(
            reloaded.tunnels[1].preshared_key_file.take(),
            Some(dir.path().join("r1.keys/to-r3.psk"))
        );
        assert_eq!(reloaded, config);
        // Saving the reloaded config again changes nothing.
        let again = std::fs::read_to_string(&path).unwrap();
        save(&path, &load_file(&path).unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), again);
    }

    #[test]
    fn removed_tunnel_and_route_disappear() {
        let (_dir, path, mut config) = fixture();
        config.tunnels.clear();
        config.routes.clear();
        save(&path, &config).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("[[tunnel]]") && !text.contains("[[route]]"),
            "{text}"
        );
        assert_eq!(load_file(&path).unwrap(), config);
    }

    #[test]
    fn crash_before_rename_leaves_the_old_file() {
        let (dir, path, config) = fixture();
        let before = std::fs::read_to_string(&path).unwrap();
        write_atomic(&path, "garbage [[[", true, true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        assert_eq!(load_file(&path).unwrap(), config);
        // The leftover temporary file does not disturb the next save.
        save(&path, &config).unwrap();
        assert_eq!(load_file(&path).unwrap(), config);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.len() <= 1);
    }

    #[test]
    fn redacted_render_shows_no_inline_key_and_loads_with_files() {
        let (dir, path, mut config) = fixture();
        config.tunnels[0].preshared_key = Some(PresharedKey([9; 32]));
        let text = render_redacted(&config, dir.path());
        assert!(!text.contains(&BASE64.encode([9u8; 32])), "{text}");
        assert!(text.contains("preshared-key = \"(redacted)\""), "{text}");
        config.tunnels[0].preshared_key = None;
        let text = render_redacted(&config, dir.path());
        assert_eq!(parse_str(&text, &path).unwrap(), config);
    }
}
