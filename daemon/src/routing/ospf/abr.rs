//! Area border router: which summary-LSAs go into each attached area (RFC 2328 12.4.3),
//! with the default summary into stub areas (12.4.3.1) and none of the others into a
//! totally stubby one.
//!
//! Pure: reads the result of the multi-area calculation ([`spf::run_areas`]) and the
//! areas' settings, returns the desired summaries; the instance originates, refreshes and
//! flushes them like its other LSAs.

use super::lsa::LS_INFINITY;
use super::spf::{MultiAreaResult, PathType};
use ipnetwork::Ipv4Network;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

pub const BACKBONE: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

/// 0.0.0.0/0, the default summary's destination.
pub const DEFAULT_ROUTE: Ipv4Network = match Ipv4Network::new_checked(Ipv4Addr::UNSPECIFIED, 0) {
    Some(n) => n,
    None => unreachable!(),
};

/// What an attached area is (`[[ospf.areas]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaSettings {
    /// A stub area (3.6): no AS-external-LSAs, a default summary instead.
    pub stub: bool,
    /// Totally stubby: only the default summary goes in (stub areas only).
    pub no_summary: bool,
    /// Metric of the default summary into a stub area.
    pub default_cost: u32,
    /// Area ranges: the area's intra-area routes inside one go out of it as the range
    /// alone (at the largest cost of what it holds).
    pub ranges: Vec<Ipv4Network>,
}

impl Default for AreaSettings {
    fn default() -> Self {
        AreaSettings {
            stub: false,
            no_summary: false,
            default_cost: 1,
            ranges: vec![],
        }
    }
}

/// The summaries to originate into one area.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summaries {
    /// Type 3: prefix -> metric.
    pub networks: BTreeMap<Ipv4Network, u32>,
    /// Type 4: AS boundary router -> metric.
    pub asbrs: BTreeMap<Ipv4Addr, u32>,
}

fn keep_min<K: Ord>(map: &mut BTreeMap<K, u32>, k: K, cost: u32) {
    if cost >= LS_INFINITY {
        return;
    }
    let e = map.entry(k).or_insert(cost);
    *e = (*e).min(cost);
}

/// The summaries an area border router attached to `areas` originates into each of
/// them, from its routing table `result` (12.4.3):
/// - an area's intra-area routes (and the router's own stub networks in it) go into
///   every other area, unless the prefix is intra-area there too;
/// - inter-area routes, which an ABR learns over the backbone only, go into the
///   non-backbone areas (never back into the backbone; a router not on the backbone
///   re-advertises none);
/// - AS boundary routers reached inside an area (or over the backbone) as type 4 into
///   the other non-stub areas;
/// - a stub area gets the default 0.0.0.0/0 at its `default_cost`, and with
///   `no_summary` nothing else.
///
/// A router attached to one area is no border router: empty.
pub fn summaries(
    areas: &BTreeMap<Ipv4Addr, AreaSettings>,
    result: &MultiAreaResult,
) -> BTreeMap<Ipv4Addr, Summaries> {
    let mut out = BTreeMap::new();
    if areas.len() < 2 {
        return out;
    }
    // Intra-area prefixes by area, with their cost.
    let mut intra: BTreeMap<Ipv4Addr, BTreeMap<Ipv4Network, u32>> = BTreeMap::new();
    for (area, tree) in &result.trees {
        let m = intra.entry(*area).or_default();
        for r in &tree.intra {
            keep_min(m, r.prefix, r.cost);
        }
        for (p, cost) in &tree.local {
            keep_min(m, *p, *cost);
        }
    }
    // What each area's intra-area routes look like from outside: within an area range,
    // the range alone, at the largest cost of its components (12.4.3).
    let advertised: BTreeMap<Ipv4Addr, BTreeMap<Ipv4Network, u32>> = intra
        .iter()
        .map(|(area, m)| {
            let rs = areas.get(area).map_or(&[][..], |a| a.ranges.as_slice());
            (*area, aggregate(m, rs))
        })
        .collect();
    let on_backbone = areas.contains_key(&BACKBONE);
    let inter: Vec<_> = result
        .routes
        .iter()
        .filter(|r| r.path_type == PathType::InterArea)
        .collect();
    for (&target, settings) in areas {
        let mut s = Summaries::default();
        if settings.stub {
            s.networks.insert(DEFAULT_ROUTE, settings.default_cost);
            if settings.no_summary {
                out.insert(target, s);
                continue;
            }
        }
        let here: BTreeSet<Ipv4Network> = intra
            .get(&target)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        for (area, prefixes) in &advertised {
            if *area == target {
                continue;
            }
            for (p, cost) in prefixes {
                // The default summary of a stub area is not replaced by a real 0/0.
                let skip = here.contains(p) || (settings.stub && *p == DEFAULT_ROUTE);
                if !skip {
                    keep_min(&mut s.networks, *p, *cost);
                }
            }
        }
        if on_backbone && target != BACKBONE {
            for r in &inter {
                if !here.contains(&r.prefix) {
                    keep_min(&mut s.networks, r.prefix, r.cost);
                }
            }
        }
        if !settings.stub {
            let reached_here = |rid: &Ipv4Addr| {
                result
                    .trees
                    .get(&target)
                    .is_some_and(|t| t.routers.contains_key(rid))
            };
            for (area, tree) in &result.trees {
                if *area == target {
                    continue;
                }
                for rid in tree.asbrs.iter().filter(|r| !reached_here(r)) {
                    if let Some((cost, _)) = tree.routers.get(rid) {
                        keep_min(&mut s.asbrs, *rid, *cost);
                    }
                }
            }
            if on_backbone && target != BACKBONE {
                for (rid, (cost, _)) in &result.inter_asbrs {
                    let intra_somewhere =
                        result.trees.values().any(|t| t.routers.contains_key(rid));
                    if !intra_somewhere {
                        keep_min(&mut s.asbrs, *rid, *cost);
                    }
                }
            }
        }
        out.insert(target, s);
    }
    out
}

/// `prefixes` with every one inside one of `ranges` replaced by that range (the first
/// that holds it), which takes the largest cost of the prefixes it holds.
pub fn aggregate(
    prefixes: &BTreeMap<Ipv4Network, u32>,
    ranges: &[Ipv4Network],
) -> BTreeMap<Ipv4Network, u32> {
    let mut out = BTreeMap::new();
    for (p, cost) in prefixes {
        let range = ranges
            .iter()
            .find(|r| r.prefix() <= p.prefix() && r.contains(p.network()));
        match range {
            Some(r) => {
                let e = out.entry(*r).or_insert(*cost);
                *e = (*e).max(*cost);
            }
            None => {
                out.insert(*p, *cost);
            }
        }
    }
    out
}

/// Link State IDs for summary-LSAs of `prefixes` (RFC 2328 appendix E): a prefix's
/// network address, except when a shorter prefix already uses it: then the network with
/// all host bits set (receivers mask the id with the LSA's mask, so both still parse to
/// their prefix). A prefix for which neither is free is left out.
pub fn summary_ids(
    prefixes: impl IntoIterator<Item = Ipv4Network>,
) -> Vec<(Ipv4Network, Ipv4Addr)> {
    let mut sorted: Vec<Ipv4Network> = prefixes.into_iter().collect();
    sorted.sort_by_key(|p| (p.prefix(), p.network()));
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for p in sorted {
        let broadcast = Ipv4Addr::from(u32::from(p.network()) | !u32::from(p.mask()));
        if let Some(id) = [p.network(), broadcast]
            .into_iter()
            .find(|id| !used.contains(id))
        {
            used.insert(id);
            out.push((p, id));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_sharing_a_network_address_get_distinct_ids() {
        let p = |s: &str| s.parse::<Ipv4Network>().unwrap();
        let ids = summary_ids([p("10.0.0.0/16"), p("10.0.0.0/8"), p("10.1.0.0/24")]);
        let id = |q: &str| {
            ids.iter()
                .find(|(x, _)| *x == p(q))
                .map(|(_, i)| i.to_string())
        };
        assert_eq!(id("10.0.0.0/8").as_deref(), Some("10.0.0.0"));
        assert_eq!(id("10.0.0.0/16").as_deref(), Some("10.0.255.255"));
        assert_eq!(id("10.1.0.0/24").as_deref(), Some("10.1.0.0"));
    }
}
