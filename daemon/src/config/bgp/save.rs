//! `[bgp]`, `[[bgp.neighbor]]`, `[[policy]]` and `[[prefix-list]]` written back for
//! [`crate::config::save`] (in place, comments kept) and for the API, which carries them
//! over into a config given as a message (that message has no BGP fields).
//!
//! The rules of the rest of the save: a key at its default that the file does not mention
//! stays unmentioned; a key is replaced only when its meaning changed (so `"internal"`,
//! `as-path-contains = 65003` or a multi-line array stay as written); neighbors are
//! matched by tunnel and address, policies and prefix lists by name, rules by position.
//! Sub-tables (`graceful-restart`, `prefix-limit`, `match`, `set`, `not`) are edited key
//! by key whether written inline or as `[bgp.graceful-restart]`.
//!
//! A neighbor's TCP-MD5 password is written as its `password-file` reference only; the
//! key itself stays in its file and never reaches the config or its redacted rendering.

use super::*;
use crate::config::model::Config;
use std::str::FromStr;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, TableLike, Value};

/// Writes `[bgp]` and its `[[bgp.neighbor]]` entries back, or removes `[bgp]`.
pub(crate) fn save_bgp(doc: &mut DocumentMut, config: &Config) {
    let Some(b) = &config.bgp else {
        doc.remove("bgp");
        return;
    };
    if !doc.get("bgp").is_some_and(Item::is_table) {
        doc.insert("bgp", Item::Table(Table::new()));
    }
    let Some(t) = doc.get_mut("bgp").and_then(Item::as_table_mut) else {
        return;
    };
    t.set_implicit(false);
    put(t, "asn", i64::from(b.asn).into(), false);
    put_parsed(
        t,
        "router-id",
        &b.router_id,
        b.router_id == config.router.router_id,
    );
    put_list(
        t,
        "networks",
        &b.networks,
        |n| n.to_string(),
        text(|s| s.parse().ok()),
    );
    put_list(
        t,
        "redistribute",
        &b.redistribute,
        |r| r.name().to_owned(),
        text(|s| {
            [
                BgpRedistribute::Connected,
                BgpRedistribute::Static,
                BgpRedistribute::Ospf,
            ]
            .into_iter()
            .find(|r| r.name() == s)
        }),
    );
    put(
        t,
        "max-paths",
        i64::from(b.max_paths).into(),
        b.max_paths == DEFAULT_BGP_MAX_PATHS,
    );
    put(
        t,
        "multipath-relax",
        b.multipath_relax.into(),
        !b.multipath_relax,
    );
    put(
        t,
        "hold-time",
        i64::from(b.hold_time).into(),
        b.hold_time == DEFAULT_BGP_HOLD_TIME,
    );
    put(
        t,
        "connect-retry",
        i64::from(b.connect_retry).into(),
        b.connect_retry == DEFAULT_BGP_CONNECT_RETRY,
    );
    let gr = b.graceful_restart;
    let keep = gr != GracefulRestart::default() || t.contains_key("graceful-restart");
    sub(t, "graceful-restart", keep, |g| {
        put(g, "enabled", gr.enabled.into(), !gr.enabled);
        put(
            g,
            "restart-time",
            i64::from(gr.restart_time).into(),
            gr.restart_time == DEFAULT_RESTART_TIME,
        );
    });

    // [[bgp.neighbor]], matched by (tunnel, address).
    let mut old: Vec<Option<Table>> = take_tables(t, "neighbor").into_iter().map(Some).collect();
    let mut array = ArrayOfTables::new();
    for n in &b.neighbors {
        let found = old.iter_mut().find(|o| {
            o.as_ref().is_some_and(|o| {
                o.get("tunnel").and_then(Item::as_str) == n.tunnel.as_deref()
                    && o.get("address")
                        .and_then(Item::as_str)
                        .map(|a| a.parse::<IpAddr>().ok())
                        == n.address.map(Some)
            })
        });
        let mut e = found.and_then(Option::take).unwrap_or_default();
        neighbor(&mut e, n, b.asn);
        array.push(e);
    }
    if !array.is_empty() {
        t.insert("neighbor", Item::ArrayOfTables(array));
    }
}

fn neighbor(t: &mut Table, n: &BgpNeighborConfig, local_as: u32) {
    opt(t, "tunnel", n.tunnel.as_deref().map(Value::from));
    match &n.address {
        Some(a) => put_parsed(t, "address", a, false),
        None => drop(t.remove("address")),
    }
    let internal = t.get("remote-as").and_then(Item::as_str) == Some("internal");
    if !(internal && n.remote_as == local_as) {
        put(t, "remote-as", i64::from(n.remote_as).into(), false);
    }
    put(
        t,
        "port",
        i64::from(n.port).into(),
        n.port == DEFAULT_BGP_PORT,
    );
    match &n.local_address {
        Some(a) => put_parsed(t, "local-address", a, false),
        None => drop(t.remove("local-address")),
    }
    opt(t, "import", n.import.as_deref().map(Value::from));
    opt(t, "export", n.export.as_deref().map(Value::from));
    put(t, "passive", n.passive.into(), !n.passive);
    opt(t, "hold-time", n.hold_time.map(|h| i64::from(h).into()));
    for (key, on) in [
        ("next-hop-self", n.next_hop_self),
        ("route-reflector-client", n.route_reflector_client),
        ("allow-without-policy", n.allow_without_policy),
        ("keep-received-routes", n.keep_received_routes),
    ] {
        put(t, key, on.into(), !on);
    }
    sub(t, "prefix-limit", n.prefix_limit.is_some(), |p| {
        if let Some(l) = n.prefix_limit {
            put(p, "max", i64::from(l.max).into(), false);
            let stop = l.action == PrefixLimitOnExceed::Stop;
            let action = if stop { "stop" } else { "warn" };
            put(p, "action", action.into(), stop);
        }
    });
    opt(t, "description", n.description.as_deref().map(Value::from));
    // The file reference only: the key stays in its file.
    opt(
        t,
        "password-file",
        n.password.as_ref().map(|p| Value::from(p.file.as_str())),
    );
    put(t, "ttl-security", n.ttl_security.into(), !n.ttl_security);
}

/// Writes `[[policy]]` back (matched by name), or removes it.
pub(crate) fn save_policies(doc: &mut DocumentMut, config: &Config) {
    let mut old: Vec<Option<Table>> = take_tables(doc.as_table_mut(), "policy")
        .into_iter()
        .map(Some)
        .collect();
    let mut array = ArrayOfTables::new();
    for p in &config.policies {
        let found = old.iter_mut().find(|o| {
            o.as_ref()
                .is_some_and(|o| o.get("name").and_then(Item::as_str) == Some(p.name.as_str()))
        });
        let mut e = found.and_then(Option::take).unwrap_or_default();
        put(&mut e, "name", p.name.as_str().into(), false);
        put(
            &mut e,
            "default",
            action_name(p.default).into(),
            p.default == PolicyAction::Reject,
        );
        rules(&mut e, &p.rules);
        array.push(e);
    }
    if !array.is_empty() {
        doc.insert("policy", Item::ArrayOfTables(array));
    }
}

/// Writes `[[prefix-list]]` back (matched by name), or removes it.
pub(crate) fn save_prefix_lists(doc: &mut DocumentMut, config: &Config) {
    let mut old: Vec<Option<Table>> = take_tables(doc.as_table_mut(), "prefix-list")
        .into_iter()
        .map(Some)
        .collect();
    let mut array = ArrayOfTables::new();
    for l in &config.prefix_lists {
        let found = old.iter_mut().find(|o| {
            o.as_ref()
                .is_some_and(|o| o.get("name").and_then(Item::as_str) == Some(l.name.as_str()))
        });
        let mut e = found.and_then(Option::take).unwrap_or_default();
        put(&mut e, "name", l.name.as_str().into(), false);
        put_list(
            &mut e,
            "entries",
            &l.entries,
            show_prefix_list_entry,
            text(parse_prefix_list_entry),
        );
        array.push(e);
    }
    if !array.is_empty() {
        doc.insert("prefix-list", Item::ArrayOfTables(array));
    }
}

fn action_name(a: PolicyAction) -> &'static str {
    match a {
        PolicyAction::Accept => "accept",
        PolicyAction::Reject => "reject",
    }
}

/// `rules`, by position, as `rules = [{ ... }, ...]` or `[[policy.rules]]` as written.
fn rules(t: &mut Table, rules: &[PolicyRule]) {
    if rules.is_empty() {
        t.remove("rules");
        return;
    }
    if let Some(Item::ArrayOfTables(array)) = t.get_mut("rules") {
        let mut old: Vec<Table> = std::mem::take(array).into_iter().collect();
        old.truncate(rules.len());
        let mut out = ArrayOfTables::new();
        for (i, r) in rules.iter().enumerate() {
            let mut e = old.get(i).cloned().unwrap_or_default();
            rule(&mut e, r);
            out.push(e);
        }
        *array = out;
        return;
    }
    let fresh = t.get("rules").and_then(Item::as_array).is_none();
    if fresh {
        let mut a = Array::new();
        a.set_trailing("\n");
        a.set_trailing_comma(true);
        t.insert("rules", toml_edit::value(a));
    }
    let Some(a) = t.get_mut("rules").and_then(Item::as_array_mut) else {
        return;
    };
    while a.len() > rules.len() {
        a.remove(a.len() - 1);
    }
    for (i, r) in rules.iter().enumerate() {
        if let Some(Value::InlineTable(e)) = a.get_mut(i) {
            rule(e, r);
            continue;
        }
        let mut e = InlineTable::new();
        rule(&mut e, r);
        let mut v = Value::InlineTable(e);
        v.decor_mut().set_prefix("\n  ");
        if i < a.len() {
            a.replace_formatted(i, v);
        } else {
            a.push_formatted(v);
        }
    }
}

fn rule(t: &mut dyn TableLike, r: &PolicyRule) {
    let keep = r.matches != PolicyMatch::default() || t.contains_key("match");
    sub(t, "match", keep, |m| conditions(m, &r.matches));
    let keep = r.set != PolicySet::default() || t.contains_key("set");
    sub(t, "set", keep, |s| edits(s, &r.set));
    opt(t, "action", r.action.map(|a| action_name(a).into()));
}

fn conditions(t: &mut dyn TableLike, m: &PolicyMatch) {
    // A named list is written as its name; its entries are in `[[prefix-list]]`.
    match &m.prefix_list_name {
        Some(name) => put(t, "prefix-list", name.as_str().into(), false),
        None => put_list(
            t,
            "prefix-list",
            &m.prefix_list,
            show_prefix_list_entry,
            text(parse_prefix_list_entry),
        ),
    }
    let family = m.family.map(|f| match f {
        PolicyFamily::Ipv4 => "ipv4".into(),
        PolicyFamily::Ipv6 => "ipv6".into(),
    });
    opt(t, "family", family);
    // One AS may be written as a bare number.
    let old_single = t.get("as-path-contains").and_then(Item::as_integer);
    let single_same =
        matches!(m.as_path_contains.as_slice(), [a] if old_single == Some(i64::from(*a)));
    if !single_same {
        put_list(
            t,
            "as-path-contains",
            &m.as_path_contains,
            |a| i64::from(*a),
            |v| v.as_integer().and_then(|n| u32::try_from(n).ok()),
        );
    }
    opt(t, "neighbor-as", m.neighbor_as.map(|a| i64::from(a).into()));
    opt(t, "origin-as", m.origin_as.map(|a| i64::from(a).into()));
    opt(
        t,
        "as-path-max-len",
        m.as_path_max_len.map(|n| i64::from(n).into()),
    );
    put_list(
        t,
        "community",
        &m.community,
        show_community,
        text(community),
    );
    put_list(
        t,
        "large-community",
        &m.large_community,
        show_large,
        text(large_community),
    );
    if let Some(not) = &m.not {
        sub(t, "not", true, |n| conditions(n, not));
    } else {
        t.remove("not");
    }
}

fn edits(t: &mut dyn TableLike, s: &PolicySet) {
    opt(t, "local-pref", s.local_pref.map(|n| i64::from(n).into()));
    opt(t, "med", s.med.map(|n| i64::from(n).into()));
    opt(t, "prepend", s.prepend.map(|n| i64::from(n).into()));
    put_list(
        t,
        "add-community",
        &s.add_community,
        show_community,
        text(community),
    );
    put_list(
        t,
        "remove-community",
        &s.remove_community,
        show_community,
        text(community),
    );
    put_list(
        t,
        "add-large-community",
        &s.add_large_community,
        show_large,
        text(large_community),
    );
    put_list(
        t,
        "remove-large-community",
        &s.remove_large_community,
        show_large,
        text(large_community),
    );
}

fn show_community(c: &Community) -> String {
    match *c {
        Community::NO_EXPORT => "no-export".into(),
        Community::NO_ADVERTISE => "no-advertise".into(),
        Community::NO_EXPORT_SUBCONFED => "no-export-subconfed".into(),
        Community(n) => format!("{}:{}", n >> 16, n & 0xffff),
    }
}

fn show_large(c: &LargeCommunityValue) -> String {
    format!("{}:{}:{}", c.0, c.1, c.2)
}

fn show_prefix_list_entry(p: &PrefixListEntry) -> String {
    let mut s = p.prefix.to_string();
    if let Some(ge) = p.ge {
        s += &format!(" ge {ge}");
    }
    if let Some(le) = p.le {
        s += &format!(" le {le}");
    }
    s
}

/// `"PREFIX [ge N] [le N]"` read back for comparison only (the loader checks it).
fn parse_prefix_list_entry(text: &str) -> Option<PrefixListEntry> {
    let mut words = text.split_whitespace();
    let prefix = words.next()?.parse().ok()?;
    let (mut ge, mut le) = (None, None);
    while let Some(w) = words.next() {
        let n = words.next()?.parse().ok()?;
        match w {
            "ge" => ge = Some(n),
            "le" => le = Some(n),
            _ => return None,
        }
    }
    Some(PrefixListEntry { prefix, ge, le })
}

// ---------------------------------------------------------------------------------------
// Editing helpers, for `[table]`s and `{ inline tables }` alike.

/// Set `key` to `v` unless it already means that; a default the table does not mention
/// stays unmentioned. A replaced value keeps its line's comment.
fn put(t: &mut dyn TableLike, key: &str, mut v: Value, is_default: bool) {
    if is_default && !t.contains_key(key) {
        return;
    }
    match t.get_mut(key) {
        Some(Item::Value(old)) => {
            if same_value(old, &v) {
                return;
            }
            *v.decor_mut() = old.decor().clone();
            *old = v;
        }
        _ => {
            t.insert(key, Item::Value(v));
        }
    }
}

/// `Some`: set; `None` (the default): removed.
fn opt(t: &mut dyn TableLike, key: &str, v: Option<Value>) {
    match v {
        Some(v) => put(t, key, v, false),
        None => drop(t.remove(key)),
    }
}

/// A value written as text (an address) that stays as written while it parses to `v`.
fn put_parsed<T: FromStr + PartialEq + ToString>(
    t: &mut dyn TableLike,
    key: &str,
    v: &T,
    is_default: bool,
) {
    let same = t
        .get(key)
        .and_then(Item::as_str)
        .and_then(|s| s.parse::<T>().ok())
        .is_some_and(|old| old == *v);
    if !same {
        put(t, key, v.to_string().into(), is_default);
    }
}

/// A list whose default is empty; kept as written while its entries read back as `items`.
fn put_list<T: PartialEq, W: Into<Value>>(
    t: &mut dyn TableLike,
    key: &str,
    items: &[T],
    show: impl Fn(&T) -> W,
    read: impl Fn(&Value) -> Option<T>,
) {
    if items.is_empty() {
        t.remove(key);
        return;
    }
    let same = t.get(key).and_then(Item::as_array).is_some_and(|old| {
        old.len() == items.len()
            && old
                .iter()
                .zip(items)
                .all(|(o, i)| read(o).is_some_and(|o| o == *i))
    });
    if same {
        return;
    }
    let array: Array = items.iter().map(|i| show(i).into()).collect();
    put(t, key, array.into(), false);
}

/// Reads a list entry written as a string with `f`.
fn text<T>(f: impl Fn(&str) -> Option<T>) -> impl Fn(&Value) -> Option<T> {
    move |v| v.as_str().and_then(&f)
}

/// The table `key` of `t` edited by `fill` (created inline if absent), or removed when
/// not `keep`.
fn sub(t: &mut dyn TableLike, key: &str, keep: bool, fill: impl FnOnce(&mut dyn TableLike)) {
    if !keep {
        t.remove(key);
        return;
    }
    if let Some(inner) = t.get_mut(key).and_then(Item::as_table_like_mut) {
        fill(inner);
        return;
    }
    let mut it = InlineTable::new();
    fill(&mut it);
    t.insert(key, Item::Value(Value::InlineTable(it)));
}

/// The entries of the array of tables `key` of `t` (removed from it); an inline array of
/// tables is read as well.
fn take_tables(t: &mut Table, key: &str) -> Vec<Table> {
    match t.remove(key) {
        Some(Item::ArrayOfTables(a)) => a.into_iter().collect(),
        Some(Item::Value(Value::Array(a))) => a
            .into_iter()
            .filter_map(|v| match v {
                Value::InlineTable(it) => Some(it.into_table()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Equal in meaning as written: comments, spacing and key order aside.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Integer(x), Value::Integer(y)) => x.value() == y.value(),
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| same_value(a, b))
        }
        (Value::InlineTable(x), Value::InlineTable(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => false,
    }
}
