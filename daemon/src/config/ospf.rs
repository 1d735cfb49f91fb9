//! `[ospf]` and a tunnel's `ospf = { ... }`: TOML -> model with validation in the style
//! of [`super::load`], and the way back for [`super::save`]. The speaker itself is
//! `crate::routing::ospf`; this file only checks values and fills defaults.

use super::bgp::{prefix_list_entry, PrefixListEntry};
use super::model::*;
use super::source::{Cx, Field, Section};
use std::net::Ipv4Addr;
use std::path::Path;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

const OSPF_KEYS: &[&str] = &[
    "enabled",
    "area",
    "areas",
    "profile",
    "redistribute",
    "liveness-ms",
];
const AREA_KEYS: &[&str] = &["id", "stub", "no-summary", "default-cost", "ranges"];
const REDISTRIBUTE_KEYS: &[&str] = &["from", "metric", "type", "prefix-list"];
const TUNNEL_OSPF_KEYS: &[&str] = &[
    "enabled",
    "area",
    "cost",
    "hello",
    "dead",
    "profile",
    "auth",
    "liveness-ms",
];
const AUTH_KEYS: &[&str] = &["key-id", "key-file", "type"];
/// RFC 2328 D.3: an MD5 key is at most 16 bytes.
const MD5_KEY_MAX: usize = 16;

fn profile(cx: &mut Cx, f: &Field) -> Option<OspfProfile> {
    match f.str(cx)? {
        "default" => Some(OspfProfile::Default),
        "fast" => Some(OspfProfile::Fast),
        _ => {
            cx.err(f.line, &f.path, "expected \"default\" or \"fast\"");
            None
        }
    }
}

/// `liveness-ms = 300`: milliseconds, [`LIVENESS_MS_MIN`]..=[`LIVENESS_MS_MAX`], or 0 for
/// no liveness detection.
fn liveness_ms(cx: &mut Cx, f: &Field) -> Option<u32> {
    let n = f.int(cx, 0, i64::from(LIVENESS_MS_MAX))? as u32;
    if n != 0 && n < LIVENESS_MS_MIN {
        cx.err(
            f.line,
            &f.path,
            format!("must be 0 (off) or {LIVENESS_MS_MIN}..={LIVENESS_MS_MAX}, got {n}"),
        );
        return None;
    }
    Some(n)
}

/// An area id: dotted like "0.0.0.1" or a number.
fn area_id(cx: &mut Cx, f: &Field) -> Option<Ipv4Addr> {
    let area = match (f.item.as_str(), f.item.as_integer()) {
        (Some(text), _) => text.parse::<Ipv4Addr>().ok(),
        (_, Some(n)) => u32::try_from(n).ok().map(Ipv4Addr::from),
        _ => None,
    };
    if area.is_none() {
        cx.err(f.line, &f.path, "expected an area id like \"0.0.0.0\" or 0");
    }
    area
}

/// One `[[ospf.areas]]` entry.
fn area(cx: &mut Cx, s: &Section) -> Option<OspfArea> {
    s.check_keys(cx, AREA_KEYS);
    let id = s.require(cx, "id").and_then(|f| area_id(cx, &f));
    let mut ok = true;
    let mut flag = |key: &str| match s.get(cx, key) {
        Some(f) => match f.bool(cx) {
            Some(b) => Some((b, f.line)),
            None => {
                ok = false;
                None
            }
        },
        None => None,
    };
    let stub = flag("stub");
    let no_summary = flag("no-summary");
    let cost = match s.get(cx, "default-cost") {
        Some(f) => match f.int(cx, 0, 0xff_fffe) {
            Some(n) => Some((n as u32, f.line)),
            None => {
                ok = false;
                None
            }
        },
        None => None,
    };
    let mut ranges: Vec<ipnetwork::Ipv4Network> = Vec::new();
    if let Some(f) = s.get(cx, "ranges") {
        match f.str_array(cx) {
            Some(elems) => {
                for e in elems {
                    match e.text.parse::<ipnetwork::Ipv4Network>() {
                        Ok(n) if n.network() != n.ip() => {
                            cx.err(
                                e.line,
                                &e.path,
                                format!(
                                    "{} has host bits set; did you mean {}/{}?",
                                    e.text,
                                    n.network(),
                                    n.prefix()
                                ),
                            );
                            ok = false;
                        }
                        Ok(n) if ranges.contains(&n) => {
                            cx.err(e.line, &e.path, format!("{n} is listed twice"));
                            ok = false;
                        }
                        Ok(n) => ranges.push(n),
                        Err(_) => {
                            cx.err(
                                e.line,
                                &e.path,
                                "expected an IPv4 prefix like \"10.1.0.0/16\"",
                            );
                            ok = false;
                        }
                    }
                }
            }
            None => ok = false,
        }
    }
    let id = id?;
    let is_stub = stub.is_some_and(|(b, _)| b);
    if is_stub && id == Ipv4Addr::UNSPECIFIED {
        let line = stub.and_then(|(_, l)| l).or(s.line);
        cx.err(
            line,
            &s.child("stub"),
            "the backbone (0.0.0.0) cannot be a stub area",
        );
        ok = false;
    }
    if !is_stub {
        if let Some((true, line)) = no_summary {
            cx.err(
                line,
                &s.child("no-summary"),
                "only a stub area (stub = true) takes no-summary",
            );
            ok = false;
        }
        if let Some((_, line)) = cost {
            cx.err(
                line,
                &s.child("default-cost"),
                "only a stub area (stub = true) gets a default summary",
            );
            ok = false;
        }
    }
    ok.then_some(OspfArea {
        id,
        stub: is_stub,
        no_summary: no_summary.is_some_and(|(b, _)| b),
        default_cost: cost.map_or(DEFAULT_STUB_DEFAULT_COST, |(c, _)| c),
        ranges,
    })
}

fn section<'a>(cx: &mut Cx, f: &Field<'a>, what: &str) -> Option<Section<'a>> {
    match f.item.as_table_like() {
        Some(table) => Some(Section {
            table,
            line: f.line,
            path: f.path.clone(),
        }),
        None => {
            cx.err(f.line, &f.path, format!("expected a table {what}"));
            None
        }
    }
}

/// `[ospf]`.
pub(super) fn ospf(cx: &mut Cx, f: &Field) -> Option<OspfConfig> {
    let s = section(cx, f, "[ospf]")?;
    s.check_keys(cx, OSPF_KEYS);
    let mut ok = true;
    let mut c = OspfConfig::default();
    if let Some(f) = s.get(cx, "enabled") {
        c.enabled = f.bool(cx).unwrap_or_else(|| {
            ok = false;
            true
        });
    }
    if let Some(f) = s.get(cx, "area") {
        match area_id(cx, &f) {
            Some(a) => c.area = a,
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "areas") {
        for a in super::load::tables_of(cx, &f, "like [[ospf.areas]] id = \"0.0.0.1\"") {
            match area(cx, &a) {
                Some(area) if c.areas.iter().any(|o| o.id == area.id) => {
                    cx.err(
                        a.line,
                        &a.child("id"),
                        format!("area {} is listed twice", area.id),
                    );
                    ok = false;
                }
                Some(area) => c.areas.push(area),
                None => ok = false,
            }
        }
    }
    if let Some(f) = s.get(cx, "profile") {
        match profile(cx, &f) {
            Some(p) => c.profile = p,
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "liveness-ms") {
        match liveness_ms(cx, &f) {
            Some(n) => c.liveness_ms = Some(n),
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "redistribute") {
        let Some(array) = f.item.as_array() else {
            cx.err(
                f.line,
                &f.path,
                "expected a list like [{ from = \"static\" }, { from = \"connected\" }]",
            );
            return None;
        };
        for (i, v) in array.iter().enumerate() {
            let path = format!("{}[{}]", f.path, i + 1);
            let Some(t) = v.as_inline_table() else {
                cx.err(
                    f.line,
                    &path,
                    "expected an inline table like { from = \"static\" }",
                );
                ok = false;
                continue;
            };
            let rs = Section {
                table: t,
                line: f.line,
                path,
            };
            match redistribute(cx, &rs) {
                Some(r) => c.redistribute.push(r),
                None => ok = false,
            }
        }
    }
    ok.then_some(c)
}

fn redistribute(cx: &mut Cx, s: &Section) -> Option<OspfRedistribute> {
    s.check_keys(cx, REDISTRIBUTE_KEYS);
    let from = s.require(cx, "from").and_then(|f| match f.str(cx)? {
        "connected" => Some(RedistributeFrom::Connected),
        "static" => Some(RedistributeFrom::Static),
        "bgp" => Some(RedistributeFrom::Bgp),
        _ => {
            cx.err(
                f.line,
                &f.path,
                "expected \"connected\", \"static\" or \"bgp\"",
            );
            None
        }
    });
    let metric = match s.get(cx, "metric") {
        Some(f) => f.int(cx, 0, 0xff_fffe).map(|n| n as u32),
        None => Some(DEFAULT_EXTERNAL_METRIC),
    };
    let metric_type = match s.get(cx, "type") {
        Some(f) => f.int(cx, 1, 2).map(|n| n as u8),
        None => Some(2),
    };
    let prefix_list = match s.get(cx, "prefix-list") {
        Some(f) => prefix_list(cx, &f),
        None => Some(vec![]),
    };
    Some(OspfRedistribute {
        from: from?,
        metric: metric?,
        metric_type: metric_type?,
        prefix_list: prefix_list?,
    })
}

/// `prefix-list = ["10.0.0.0/8 le 24", ...]`: entries as in a policy's prefix list,
/// IPv4 only (OSPFv2 carries nothing else).
fn prefix_list(cx: &mut Cx, f: &Field) -> Option<Vec<PrefixListEntry>> {
    let Some(array) = f.item.as_array() else {
        cx.err(
            f.line,
            &f.path,
            "expected a list of strings like [\"10.0.0.0/8 le 24\"]",
        );
        return None;
    };
    let mut ok = true;
    let mut entries = Vec::new();
    for (i, v) in array.iter().enumerate() {
        let path = format!("{}[{}]", f.path, i + 1);
        let Some(text) = v.as_str() else {
            cx.err(f.line, &path, "expected a string like \"10.0.0.0/8 le 24\"");
            ok = false;
            continue;
        };
        match prefix_list_entry(cx, f.line, &path, text) {
            Some(e) if !e.prefix.is_ipv4() => {
                cx.err(
                    f.line,
                    &path,
                    format!(
                        "{} is not IPv4: OSPFv2 redistributes IPv4 prefixes only",
                        e.prefix
                    ),
                );
                ok = false;
            }
            Some(e) => entries.push(e),
            None => ok = false,
        }
    }
    ok.then_some(entries)
}

/// A tunnel's `ospf = { ... }`.
pub(super) fn tunnel_ospf(cx: &mut Cx, f: &Field, dir: &Path) -> Option<TunnelOspf> {
    let s = section(cx, f, "like { cost = 10 }")?;
    s.check_keys(cx, TUNNEL_OSPF_KEYS);
    let mut ok = true;
    let mut t = TunnelOspf::default();
    if let Some(f) = s.get(cx, "enabled") {
        match f.bool(cx) {
            Some(e) => t.disabled = !e,
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "area") {
        match area_id(cx, &f) {
            Some(a) => t.area = Some(a),
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "cost") {
        match f.int(cx, 1, 65535) {
            Some(n) => t.cost = Some(n as u16),
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "hello") {
        match f.int(cx, 1, 65535) {
            Some(n) => t.hello = Some(n as u16),
            None => ok = false,
        }
    }
    let dead_f = s.get(cx, "dead");
    if let Some(f) = &dead_f {
        match f.int(cx, 1, 65535) {
            Some(n) => t.dead = Some(n as u32),
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "profile") {
        match profile(cx, &f) {
            Some(p) => t.profile = Some(p),
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "liveness-ms") {
        match liveness_ms(cx, &f) {
            Some(n) => t.liveness_ms = Some(n),
            None => ok = false,
        }
    }
    if let Some(f) = s.get(cx, "auth") {
        match auth(cx, &f, dir) {
            Some(a) => t.auth = Some(a),
            None => ok = false,
        }
    }
    if ok {
        let base = t.profile.unwrap_or_default().timers();
        let (hello, dead) = (t.hello.unwrap_or(base.0), t.dead.unwrap_or(base.1));
        if dead <= u32::from(hello) {
            let line = dead_f.as_ref().and_then(|f| f.line).or(s.line);
            cx.err(
                line,
                &s.child("dead"),
                format!("dead interval {dead} s must be longer than the hello interval {hello} s"),
            );
            ok = false;
        }
    }
    ok.then_some(t)
}

/// `auth = { key-id = 1, key-file = "ospf.key", type = "hmac-sha256" }`. The key file
/// passes the same permission check as WireGuard key files; its content is never echoed.
fn auth(cx: &mut Cx, f: &Field, dir: &Path) -> Option<OspfAuth> {
    let s = section(cx, f, "like { key-id = 1, key-file = \"ospf.key\" }")?;
    s.check_keys(cx, AUTH_KEYS);
    let key_id = s.require(cx, "key-id").and_then(|f| f.int(cx, 0, 255));
    let algorithm = match s.get(cx, "type") {
        Some(f) => match f.str(cx)? {
            "hmac-sha256" => Some(OspfAuthType::HmacSha256),
            "md5" => Some(OspfAuthType::Md5),
            _ => {
                cx.err(f.line, &f.path, "expected \"hmac-sha256\" or \"md5\"");
                None
            }
        },
        None => Some(OspfAuthType::default()),
    };
    let file = s.require(cx, "key-file")?;
    let (written, path, key) = super::keyfile::secret_from_field(cx, &file, dir, "shared key")?;
    let algorithm = algorithm?;
    if algorithm == OspfAuthType::Md5 && key.len() > MD5_KEY_MAX {
        cx.err(
            file.line,
            &file.path,
            format!(
                "the key in {} is {} bytes; md5 keys are at most {MD5_KEY_MAX}",
                path.display(),
                key.len()
            ),
        );
        return None;
    }
    Some(OspfAuth {
        key_id: key_id? as u8,
        key_file: written,
        algorithm,
        key: OspfSecret(key),
    })
}

/// Writes `[ospf]` back (keys at their default that the file does not mention stay
/// unmentioned).
pub(crate) fn save_ospf(doc: &mut DocumentMut, config: &Config) {
    let Some(o) = &config.ospf else {
        doc.remove("ospf");
        return;
    };
    if !doc.get("ospf").is_some_and(Item::is_table) {
        doc.insert("ospf", Item::Table(Table::new()));
    }
    let Some(t) = doc.get_mut("ospf").and_then(Item::as_table_mut) else {
        return;
    };
    let d = OspfConfig::default();
    let mut put = |key: &str, v: Value, is_default: bool| {
        if is_default && !t.contains_key(key) {
            return;
        }
        let same = t
            .get(key)
            .and_then(Item::as_value)
            .is_some_and(|old| same_value(old, &v));
        if !same {
            t.insert(key, value(v));
        }
    };
    put("enabled", o.enabled.into(), o.enabled == d.enabled);
    put("area", o.area.to_string().into(), o.area == d.area);
    put("profile", o.profile.name().into(), o.profile == d.profile);
    match o.liveness_ms {
        Some(ms) => put("liveness-ms", i64::from(ms).into(), false),
        None => {
            t.remove("liveness-ms");
        }
    }
    save_areas(t, &o.areas);
    if o.redistribute.is_empty() {
        t.remove("redistribute");
    } else {
        let mut array = Array::new();
        for r in &o.redistribute {
            let mut it = InlineTable::new();
            it.insert("from", r.from.name().into());
            if r.metric != DEFAULT_EXTERNAL_METRIC {
                it.insert("metric", i64::from(r.metric).into());
            }
            if r.metric_type != 2 {
                it.insert("type", i64::from(r.metric_type).into());
            }
            if !r.prefix_list.is_empty() {
                let list: Array = r.prefix_list.iter().map(prefix_list_text).collect();
                it.insert("prefix-list", Value::from(list));
            }
            array.push(it);
        }
        let same = t
            .get("redistribute")
            .and_then(Item::as_value)
            .is_some_and(|old| same_value(old, &Value::from(array.clone())));
        if !same {
            t.insert("redistribute", value(array));
        }
    }
}

/// `[[ospf.areas]]` back: entries unchanged keep their comments.
fn save_areas(t: &mut Table, areas: &[OspfArea]) {
    if areas.is_empty() {
        t.remove("areas");
        return;
    }
    let old: Vec<Table> = t
        .get("areas")
        .and_then(Item::as_array_of_tables)
        .map(|a| a.iter().cloned().collect())
        .unwrap_or_default();
    let mut array = ArrayOfTables::new();
    for a in areas {
        let mut table = old
            .iter()
            .find(|o| o.get("id").and_then(Item::as_str) == Some(a.id.to_string().as_str()))
            .cloned()
            .unwrap_or_default();
        let mut put = |key: &str, v: Option<Value>| match v {
            Some(v) => {
                let same = table
                    .get(key)
                    .and_then(Item::as_value)
                    .is_some_and(|old| same_value(old, &v));
                if !same {
                    table.insert(key, value(v));
                }
            }
            None => {
                table.remove(key);
            }
        };
        put("id", Some(a.id.to_string().into()));
        put("stub", a.stub.then(|| true.into()));
        put("no-summary", a.no_summary.then(|| true.into()));
        put(
            "default-cost",
            (a.stub && a.default_cost != DEFAULT_STUB_DEFAULT_COST)
                .then(|| i64::from(a.default_cost).into()),
        );
        put(
            "ranges",
            (!a.ranges.is_empty()).then(|| {
                let list: Array = a.ranges.iter().map(|r| r.to_string()).collect();
                Value::from(list)
            }),
        );
        array.push(table);
    }
    t.insert("areas", Item::ArrayOfTables(array));
}

/// `"PREFIX [ge N] [le N]"` as written in the file.
fn prefix_list_text(e: &PrefixListEntry) -> String {
    let mut text = e.prefix.to_string();
    if let Some(ge) = e.ge {
        text.push_str(&format!(" ge {ge}"));
    }
    if let Some(le) = e.le {
        text.push_str(&format!(" le {le}"));
    }
    text
}

/// Writes a tunnel's `ospf = { ... }` back, or removes it.
pub(crate) fn save_tunnel_ospf(t: &mut Table, o: &Option<TunnelOspf>) {
    let Some(o) = o else {
        t.remove("ospf");
        return;
    };
    let mut it = InlineTable::new();
    if o.disabled {
        it.insert("enabled", false.into());
    }
    if let Some(a) = o.area {
        it.insert("area", a.to_string().into());
    }
    if let Some(c) = o.cost {
        it.insert("cost", i64::from(c).into());
    }
    if let Some(h) = o.hello {
        it.insert("hello", i64::from(h).into());
    }
    if let Some(d) = o.dead {
        it.insert("dead", i64::from(d).into());
    }
    if let Some(p) = o.profile {
        it.insert("profile", p.name().into());
    }
    if let Some(ms) = o.liveness_ms {
        it.insert("liveness-ms", i64::from(ms).into());
    }
    if let Some(a) = &o.auth {
        let mut at = InlineTable::new();
        at.insert("key-id", i64::from(a.key_id).into());
        at.insert("key-file", a.key_file.as_str().into());
        if a.algorithm != OspfAuthType::default() {
            at.insert("type", a.algorithm.name().into());
        }
        it.insert("auth", Value::from(at));
    }
    let new = Value::from(it);
    let same = t
        .get("ospf")
        .and_then(Item::as_value)
        .is_some_and(|old| same_value(old, &new));
    if !same {
        t.insert("ospf", value(new));
    }
}

/// Equal as written, comments and surrounding space aside (so an unchanged value keeps
/// the comment after it).
fn same_value(old: &Value, new: &Value) -> bool {
    let (mut a, mut b) = (old.clone(), new.clone());
    a.decor_mut().clear();
    b.decor_mut().clear();
    a.to_string().trim() == b.to_string().trim()
}
