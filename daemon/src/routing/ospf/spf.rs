//! The routing table calculation (RFC 2328 16): Dijkstra over router-LSAs with
//! point-to-point links and transit networks (the network-LSAs of other routers' LANs)
//! (16.1, with the two-way check of 16.1 (2b)), stub networks
//! (16.1 (2)), inter-area routes from summary-LSAs (16.2) and AS-external routes of
//! type 1 and 2 (16.4), with equal-cost multipath: a route's next hop is the set of
//! tunnels of every shortest path. Also the SPF throttle (delay, then an exponentially
//! growing hold time while changes keep coming).
//!
//! Pure: reads an LSDB snapshot and the root's own adjacencies, returns routes. The root
//! itself is never on a transit network (wgrd's interfaces are all point-to-point).

use super::lsa::{LinkKind, LsType, Lsa, LsaBody, LsaKey, FLAG_E, LS_INFINITY};
use super::lsdb::Lsdb;
use crate::dataplane::TunnelId;
use ipnetwork::Ipv4Network;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// One of the root's own adjacencies: a Full neighbor on a point-to-point interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjacency {
    pub neighbor: Ipv4Addr,
    pub tunnel: TunnelId,
    pub cost: u16,
}

/// Path types in order of preference (RFC 2328 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathType {
    IntraArea,
    InterArea,
    External1,
    External2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: Ipv4Network,
    pub path_type: PathType,
    /// Total cost; for type 2 externals the external metric.
    pub cost: u32,
    /// For type 2 externals: the cost to the ASBR (tie breaker). Zero otherwise.
    pub cost2: u32,
    pub next_hops: BTreeSet<TunnelId>,
}

impl Route {
    fn rank(&self) -> (PathType, u32, u32) {
        (self.path_type, self.cost, self.cost2)
    }
}

/// What one SPF run found: routers reached (with cost and next hops) and routes.
#[derive(Debug, Clone, Default)]
pub struct SpfResult {
    pub routers: BTreeMap<Ipv4Addr, (u32, BTreeSet<TunnelId>)>,
    pub routes: Vec<Route>,
}

fn router_lsa(lsdb: &Lsdb, rid: Ipv4Addr, now: Instant) -> Option<&Lsa> {
    let e = lsdb.get(&LsaKey {
        ls_type: LsType::Router,
        id: rid,
        adv_router: rid,
    })?;
    (!e.is_max_age(now)).then_some(&e.lsa)
}

/// True if `lsa` (a router-LSA) has a point-to-point link back to `to`.
fn links_back(lsa: &Lsa, to: Ipv4Addr) -> bool {
    match &lsa.body {
        LsaBody::Router(r) => r
            .links
            .iter()
            .any(|l| l.kind == LinkKind::PointToPoint && l.id == to),
        _ => false,
    }
}

fn prefix_of(id: Ipv4Addr, mask: Ipv4Addr) -> Option<Ipv4Network> {
    let len = ipnetwork::ipv4_mask_to_prefix(mask).ok()?;
    let net = u32::from(id) & u32::from(mask);
    Ipv4Network::new(net.into(), len).ok()
}

/// Keeps the better of two routes to one prefix, or unites next hops on a tie.
fn offer(table: &mut HashMap<Ipv4Network, Route>, route: Route) {
    if route.next_hops.is_empty() {
        return;
    }
    match table.get_mut(&route.prefix) {
        None => {
            table.insert(route.prefix, route);
        }
        Some(old) => match route.rank().cmp(&old.rank()) {
            std::cmp::Ordering::Less => *old = route,
            std::cmp::Ordering::Equal => old.next_hops.extend(route.next_hops),
            std::cmp::Ordering::Greater => {}
        },
    }
}

/// Next hops: the root's tunnels of every shortest path.
pub type Hops = BTreeSet<TunnelId>;

/// One area's shortest-path tree (RFC 2328 16.1).
#[derive(Debug, Clone, Default)]
pub struct AreaTree {
    /// Routers reached, with cost and next hops (the root itself not included).
    pub routers: BTreeMap<Ipv4Addr, (u32, Hops)>,
    /// Routers reached whose router-LSA has the E bit (AS boundary routers).
    pub asbrs: BTreeSet<Ipv4Addr>,
    /// Stub networks of the reached routers, best per prefix.
    pub intra: Vec<Route>,
    /// The root's own stub networks in this area (connected: no route, but an area
    /// border router summarizes them into its other areas).
    pub local: Vec<(Ipv4Network, u32)>,
}

/// A vertex of the shortest-path tree (RFC 2328 16.1): a router (by router id) or a
/// transit network (by its DR's interface address, the network-LSA's link state id).
/// The order of equal-cost vertices does not matter here: the root is never on a
/// transit network, so a network's next hops are always inherited from its parents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Vertex {
    Router(Ipv4Addr),
    Network(Ipv4Addr),
}

/// The live network-LSAs of `lsdb` by link state id (there may be more than one per id
/// for a while, when the DR changes: each is tried).
fn network_lsas(lsdb: &Lsdb, now: Instant) -> HashMap<Ipv4Addr, Vec<&Lsa>> {
    let mut map: HashMap<Ipv4Addr, Vec<&Lsa>> = HashMap::new();
    for lsa in lsdb.live(now) {
        if lsa.header.ls_type == LsType::Network.to_u8() {
            map.entry(lsa.header.id).or_default().push(lsa);
        }
    }
    map
}

/// The network-LSA for the transit network `dr` that lists `router` (16.1 (2b), the
/// two-way check from the router's side), if any.
fn network_listing<'a>(
    networks: &HashMap<Ipv4Addr, Vec<&'a Lsa>>,
    dr: Ipv4Addr,
    router: Ipv4Addr,
) -> Option<&'a Lsa> {
    networks
        .get(&dr)?
        .iter()
        .copied()
        .find(|l| matches!(&l.body, LsaBody::Network(n) if n.attached.contains(&router)))
}

/// True if `lsa` (a router-LSA) has a transit link to the network `dr`.
fn links_to_network(lsa: &Lsa, dr: Ipv4Addr) -> bool {
    match &lsa.body {
        LsaBody::Router(r) => r
            .links
            .iter()
            .any(|l| l.kind == LinkKind::Transit && l.id == dr),
        _ => false,
    }
}

/// Dijkstra over `lsdb` (one area's router- and network-LSAs) from `root`, then the stub
/// networks (16.1). `adjacencies` are the root's Full point-to-point neighbors in this
/// area. Transit networks (other routers' LANs, with a DR and a network-LSA) are
/// vertices: a router reaches one through its transit link (at the link's cost) if the
/// network-LSA lists the router; the network reaches each router it lists at cost 0 if
/// that router's LSA has a transit link back. The root is never on a transit network, so
/// a network and what lies beyond it inherit the next hops of their parents.
pub fn area_tree(lsdb: &Lsdb, root: Ipv4Addr, adjacencies: &[Adjacency], now: Instant) -> AreaTree {
    let networks = network_lsas(lsdb, now);
    // Dijkstra over vertices; a vertex's next hops are the union over its shortest paths.
    let mut best: HashMap<Vertex, (u32, Hops)> = HashMap::new();
    let mut done: BTreeMap<Vertex, (u32, Hops)> = BTreeMap::new();
    let mut heap = BinaryHeap::new();
    let root_lsa = router_lsa(lsdb, root, now);
    for a in adjacencies {
        let Some(lsa) = router_lsa(lsdb, a.neighbor, now) else {
            continue;
        };
        if !links_back(lsa, root) || root_lsa.is_none() {
            continue;
        }
        let cost = u32::from(a.cost);
        let v = Vertex::Router(a.neighbor);
        let e = best.entry(v).or_insert((u32::MAX, BTreeSet::new()));
        if cost < e.0 {
            *e = (cost, BTreeSet::from([a.tunnel]));
            heap.push(Reverse((cost, v)));
        } else if cost == e.0 {
            e.1.insert(a.tunnel);
        }
    }
    done.insert(Vertex::Router(root), (0, BTreeSet::new()));
    // Network vertices reached, with their network-LSA (for the prefix).
    let mut reached_networks: Vec<(&Lsa, u32, Hops)> = Vec::new();
    while let Some(Reverse((cost, v))) = heap.pop() {
        if done.contains_key(&v) {
            continue;
        }
        let Some(entry) = best.get(&v).cloned() else {
            continue;
        };
        if entry.0 != cost {
            continue;
        }
        done.insert(v, entry.clone());
        // The vertices adjacent to v with the cost of the edge.
        let mut edges: Vec<(Vertex, u32)> = Vec::new();
        match v {
            Vertex::Router(rid) => {
                let Some(lsa) = router_lsa(lsdb, rid, now) else {
                    continue;
                };
                let LsaBody::Router(r) = &lsa.body else {
                    continue;
                };
                for l in &r.links {
                    match l.kind {
                        LinkKind::PointToPoint => {
                            let Some(wlsa) = router_lsa(lsdb, l.id, now) else {
                                continue;
                            };
                            if links_back(wlsa, rid) {
                                edges.push((Vertex::Router(l.id), u32::from(l.metric)));
                            }
                        }
                        LinkKind::Transit if network_listing(&networks, l.id, rid).is_some() => {
                            edges.push((Vertex::Network(l.id), u32::from(l.metric)));
                        }
                        _ => {}
                    }
                }
            }
            Vertex::Network(dr) => {
                // The network-LSA that let us in: it lists the parent router.
                let Some(nlsa) = networks.get(&dr).and_then(|ls| {
                    ls.iter().copied().find(|l| {
                        matches!(&l.body, LsaBody::Network(n)
                            if n.attached.iter().any(|a| done.contains_key(&Vertex::Router(*a))))
                    })
                }) else {
                    continue;
                };
                let LsaBody::Network(n) = &nlsa.body else {
                    continue;
                };
                reached_networks.push((nlsa, cost, entry.1.clone()));
                for a in &n.attached {
                    if router_lsa(lsdb, *a, now).is_some_and(|l| links_to_network(l, dr)) {
                        edges.push((Vertex::Router(*a), 0));
                    }
                }
            }
        }
        for (w, metric) in edges {
            if done.contains_key(&w) {
                continue;
            }
            let c = cost.saturating_add(metric);
            let e = best.entry(w).or_insert((u32::MAX, BTreeSet::new()));
            if c < e.0 {
                *e = (c, entry.1.clone());
                heap.push(Reverse((c, w)));
            } else if c == e.0 {
                e.1.extend(entry.1.iter().copied());
            }
        }
    }
    let mut done: BTreeMap<Ipv4Addr, (u32, Hops)> = done
        .into_iter()
        .filter_map(|(v, e)| match v {
            Vertex::Router(rid) => Some((rid, e)),
            Vertex::Network(_) => None,
        })
        .collect();

    // Stub networks of every reached router (the root's own are local, not routes).
    let mut table: HashMap<Ipv4Network, Route> = HashMap::new();
    // Transit networks: their prefix at the network vertex's cost (16.1 (4)).
    for (nlsa, cost, hops) in reached_networks {
        let LsaBody::Network(n) = &nlsa.body else {
            continue;
        };
        if let Some(prefix) = prefix_of(nlsa.header.id, n.mask) {
            offer(
                &mut table,
                Route {
                    prefix,
                    path_type: PathType::IntraArea,
                    cost,
                    cost2: 0,
                    next_hops: hops,
                },
            );
        }
    }
    let mut asbrs = BTreeSet::new();
    let mut local = Vec::new();
    for (rid, (cost, hops)) in done.iter() {
        let Some(LsaBody::Router(r)) = router_lsa(lsdb, *rid, now).map(|l| &l.body) else {
            continue;
        };
        if *rid == root {
            local = r
                .links
                .iter()
                .filter(|l| l.kind == LinkKind::Stub)
                .filter_map(|l| Some((prefix_of(l.id, l.data)?, u32::from(l.metric))))
                .collect();
            continue;
        }
        if r.flags & FLAG_E != 0 {
            asbrs.insert(*rid);
        }
        for l in r.links.iter().filter(|l| l.kind == LinkKind::Stub) {
            if let Some(prefix) = prefix_of(l.id, l.data) {
                offer(
                    &mut table,
                    Route {
                        prefix,
                        path_type: PathType::IntraArea,
                        cost: cost.saturating_add(u32::from(l.metric)),
                        cost2: 0,
                        next_hops: hops.clone(),
                    },
                );
            }
        }
    }
    done.remove(&root);
    let mut intra: Vec<Route> = table.into_values().collect();
    intra.sort_by_key(|r| (r.prefix.network(), r.prefix.prefix()));
    AreaTree {
        routers: done,
        asbrs,
        intra,
        local,
    }
}

/// Inter-area routes (16.2) from the summary-LSAs (type 3) of an area whose tree is
/// `tree`, offered into `table`; and the AS boundary routers the area's ASBR-summaries
/// (type 4) reach, offered into `asbrs`. Summaries of the root itself are skipped.
fn inter_area(
    lsdb: &Lsdb,
    root: Ipv4Addr,
    tree: &AreaTree,
    now: Instant,
    table: &mut HashMap<Ipv4Network, Route>,
    asbrs: &mut BTreeMap<Ipv4Addr, (u32, Hops)>,
) {
    for lsa in lsdb.live(now) {
        let adv = lsa.header.adv_router;
        if adv == root {
            continue;
        }
        let Some((dist, hops)) = tree.routers.get(&adv) else {
            continue;
        };
        let LsaBody::Summary(s) = &lsa.body else {
            continue;
        };
        if s.metric >= LS_INFINITY {
            continue;
        }
        let cost = dist.saturating_add(s.metric);
        match lsa.header.ls_type {
            3 => {
                if let Some(prefix) = prefix_of(lsa.header.id, s.mask) {
                    offer(
                        table,
                        Route {
                            prefix,
                            path_type: PathType::InterArea,
                            cost,
                            cost2: 0,
                            next_hops: hops.clone(),
                        },
                    );
                }
            }
            4 if lsa.header.id != root => offer_router(asbrs, lsa.header.id, cost, hops),
            _ => {}
        }
    }
}

/// Keeps the cheaper path to a router, uniting next hops on a tie.
fn offer_router(map: &mut BTreeMap<Ipv4Addr, (u32, Hops)>, rid: Ipv4Addr, cost: u32, hops: &Hops) {
    if hops.is_empty() {
        return;
    }
    match map.get_mut(&rid) {
        None => {
            map.insert(rid, (cost, hops.clone()));
        }
        Some(old) if cost < old.0 => *old = (cost, hops.clone()),
        Some(old) if cost == old.0 => old.1.extend(hops.iter().copied()),
        Some(_) => {}
    }
}

/// AS-external routes (16.4) from the type-5 LSAs of `lsdb`, each through its
/// advertising router as found in `asbrs`; a forwarding address must be reached by an
/// intra-area route of `intra`.
fn externals(
    lsdb: &Lsdb,
    root: Ipv4Addr,
    asbrs: &BTreeMap<Ipv4Addr, (u32, Hops)>,
    intra: &[Route],
    now: Instant,
    table: &mut HashMap<Ipv4Network, Route>,
) {
    for lsa in lsdb.live(now) {
        let adv = lsa.header.adv_router;
        if adv == root || lsa.header.ls_type != 5 {
            continue;
        }
        let Some((dist, hops)) = asbrs.get(&adv) else {
            continue;
        };
        let LsaBody::External(e) = &lsa.body else {
            continue;
        };
        if e.metric >= LS_INFINITY {
            continue;
        }
        let Some(prefix) = prefix_of(lsa.header.id, e.mask) else {
            continue;
        };
        let (dist, hops) = if e.forwarding.is_unspecified() {
            (*dist, hops.clone())
        } else {
            match intra
                .iter()
                .filter(|r| r.prefix.contains(e.forwarding))
                .max_by_key(|r| r.prefix.prefix())
            {
                Some(r) => (r.cost, r.next_hops.clone()),
                None => continue,
            }
        };
        let route = if e.e2 {
            Route {
                prefix,
                path_type: PathType::External2,
                cost: e.metric,
                cost2: dist,
                next_hops: hops,
            }
        } else {
            Route {
                prefix,
                path_type: PathType::External1,
                cost: dist.saturating_add(e.metric),
                cost2: 0,
                next_hops: hops,
            }
        };
        offer(table, route);
    }
}

fn sorted(table: HashMap<Ipv4Network, Route>) -> Vec<Route> {
    let mut routes: Vec<Route> = table.into_values().collect();
    routes.sort_by_key(|r| (r.prefix.network(), r.prefix.prefix()));
    routes
}

/// Runs the calculation for `root` over one `lsdb` that holds everything (one area and
/// the AS-external-LSAs). `adjacencies` are the root's Full point-to-point neighbors
/// (which tunnel, at what cost): the first hop of every path.
pub fn run(lsdb: &Lsdb, root: Ipv4Addr, adjacencies: &[Adjacency], now: Instant) -> SpfResult {
    let tree = area_tree(lsdb, root, adjacencies, now);
    let mut table: HashMap<Ipv4Network, Route> = HashMap::new();
    for r in &tree.intra {
        offer(&mut table, r.clone());
    }
    // Every reached router may originate externals (a missing E bit is forgiven).
    let mut asbrs = tree.routers.clone();
    inter_area(lsdb, root, &tree, now, &mut table, &mut asbrs);
    externals(lsdb, root, &asbrs, &tree.intra, now, &mut table);
    SpfResult {
        routers: tree.routers,
        routes: sorted(table),
    }
}

/// One attached area as [`run_areas`] takes it.
pub struct AreaInput<'a> {
    pub id: Ipv4Addr,
    pub lsdb: &'a Lsdb,
    pub adjacencies: &'a [Adjacency],
}

/// The routing table of a router attached to several areas.
#[derive(Debug, Clone, Default)]
pub struct MultiAreaResult {
    pub trees: BTreeMap<Ipv4Addr, AreaTree>,
    /// AS boundary routers reached (intra-area in any area, or by an ASBR-summary of an
    /// examined area), for type-4 origination.
    pub asbrs: BTreeMap<Ipv4Addr, (u32, Hops)>,
    /// AS boundary routers reached by the ASBR-summaries of the examined areas only.
    pub inter_asbrs: BTreeMap<Ipv4Addr, (u32, Hops)>,
    pub routes: Vec<Route>,
}

/// The whole calculation over several areas (RFC 2328 16): one tree per area (16.1),
/// intra-area routes of every area preferred to inter-area ones, which come only from the
/// backbone's summaries when the router is an area border router attached to it (16.2;
/// otherwise from every area's), then AS-external routes from `external` (16.4) through
/// ASBRs reached inside an area or by an ASBR-summary.
pub fn run_areas(
    areas: &[AreaInput],
    external: &Lsdb,
    root: Ipv4Addr,
    now: Instant,
) -> MultiAreaResult {
    let backbone = Ipv4Addr::UNSPECIFIED;
    let mut trees = BTreeMap::new();
    let mut table: HashMap<Ipv4Network, Route> = HashMap::new();
    let mut asbrs: BTreeMap<Ipv4Addr, (u32, Hops)> = BTreeMap::new();
    let mut all_intra = Vec::new();
    for a in areas {
        let tree = area_tree(a.lsdb, root, a.adjacencies, now);
        for r in &tree.intra {
            offer(&mut table, r.clone());
        }
        all_intra.extend(tree.intra.iter().cloned());
        // As in the one-area calculation, any router reached may be an ASBR.
        for (rid, (cost, hops)) in &tree.routers {
            offer_router(&mut asbrs, *rid, *cost, hops);
        }
        trees.insert(a.id, tree);
    }
    let abr_on_backbone = areas.len() > 1 && trees.contains_key(&backbone);
    let mut summaries: HashMap<Ipv4Network, Route> = HashMap::new();
    let mut asbr_summaries: BTreeMap<Ipv4Addr, (u32, Hops)> = BTreeMap::new();
    for a in areas {
        if abr_on_backbone && a.id != backbone {
            continue;
        }
        inter_area(
            a.lsdb,
            root,
            &trees[&a.id],
            now,
            &mut summaries,
            &mut asbr_summaries,
        );
    }
    for r in summaries.into_values() {
        offer(&mut table, r);
    }
    // Intra-area paths to an ASBR first (16.4 (3)); summaries for the others.
    for (rid, (cost, hops)) in &asbr_summaries {
        if !asbrs.contains_key(rid) {
            asbrs.insert(*rid, (*cost, hops.clone()));
        }
    }
    externals(external, root, &asbrs, &all_intra, now, &mut table);
    MultiAreaResult {
        trees,
        asbrs,
        inter_asbrs: asbr_summaries,
        routes: sorted(table),
    }
}

/// When to run SPF: `delay` after the first change, then no sooner than `hold` after the
/// previous run; the hold doubles (up to `max_hold`) while runs follow each other within
/// twice the hold, and goes back to its initial value after a quieter spell.
#[derive(Debug, Clone)]
pub struct Throttle {
    pub delay: Duration,
    pub initial_hold: Duration,
    pub max_hold: Duration,
    hold: Duration,
    last_run: Option<Instant>,
    due: Option<Instant>,
    pub runs: u64,
}

impl Throttle {
    pub fn new(delay: Duration, initial_hold: Duration, max_hold: Duration) -> Throttle {
        Throttle {
            delay,
            initial_hold,
            max_hold,
            hold: initial_hold,
            last_run: None,
            due: None,
            runs: 0,
        }
    }

    /// Something changed: make sure a run is scheduled.
    pub fn schedule(&mut self, now: Instant) {
        if self.due.is_some() {
            return;
        }
        let mut at = now + self.delay;
        if let Some(last) = self.last_run {
            at = at.max(last + self.hold);
        }
        self.due = Some(at);
    }

    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// True (and the run is recorded) if a scheduled run is due at `now`.
    pub fn take_due(&mut self, now: Instant) -> bool {
        match self.due {
            Some(at) if at <= now => {
                self.due = None;
                // Busy: this run follows the previous one closely (changes keep coming).
                let busy = self
                    .last_run
                    .is_some_and(|last| now.saturating_duration_since(last) <= self.hold * 2);
                self.hold = if busy {
                    (self.hold * 2).min(self.max_hold)
                } else {
                    self.initial_hold
                };
                self.last_run = Some(now);
                self.runs += 1;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lsa::{ExternalLsa, LsaHeader, NetworkLsa, RouterLink, RouterLsa};
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn rid(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 255, 0, n)
    }

    fn header(ls_type: u8, id: Ipv4Addr, adv: Ipv4Addr) -> LsaHeader {
        LsaHeader {
            age: 0,
            options: 2,
            ls_type,
            id,
            adv_router: adv,
            seq: 0x8000_0001_u32 as i32,
            checksum: 0,
            length: 0,
        }
    }

    /// A router-LSA of router `n` with p2p links (neighbor, metric) and its /32 stub.
    fn router(n: u8, links: &[(u8, u16)]) -> Lsa {
        let mut l: Vec<RouterLink> = links
            .iter()
            .map(|&(to, metric)| RouterLink {
                kind: LinkKind::PointToPoint,
                id: rid(to),
                data: Ipv4Addr::new(0, 0, 0, to),
                metric,
            })
            .collect();
        l.push(RouterLink {
            kind: LinkKind::Stub,
            id: rid(n),
            data: ip("255.255.255.255"),
            metric: 0,
        });
        Lsa::build(
            header(1, rid(n), rid(n)),
            LsaBody::Router(RouterLsa { flags: 0, links: l }),
        )
    }

    fn db(lsas: Vec<Lsa>, now: Instant) -> Lsdb {
        let mut db = Lsdb::default();
        for l in lsas {
            db.install(l, now);
        }
        db
    }

    fn adj(n: u8, tunnel: u32, cost: u16) -> Adjacency {
        Adjacency {
            neighbor: rid(n),
            tunnel: TunnelId(tunnel),
            cost,
        }
    }

    fn route<'a>(r: &'a SpfResult, p: &str) -> &'a Route {
        let p: Ipv4Network = p.parse().unwrap();
        r.routes
            .iter()
            .find(|r| r.prefix == p)
            .unwrap_or_else(|| panic!("no route to {p}"))
    }

    fn hops(ids: &[u32]) -> BTreeSet<TunnelId> {
        ids.iter().map(|&i| TunnelId(i)).collect()
    }

    #[test]
    fn triangle_takes_the_cheaper_way_round() {
        // 1 -10- 2, 1 -10- 3, 2 -50- 3: from 1, both direct; from 2, 3 is via 1 (20 < 50).
        let now = Instant::now();
        let lsdb = db(
            vec![
                router(1, &[(2, 10), (3, 10)]),
                router(2, &[(1, 10), (3, 50)]),
                router(3, &[(1, 10), (2, 50)]),
            ],
            now,
        );
        let r = run(&lsdb, rid(2), &[adj(1, 1, 10), adj(3, 2, 50)], now);
        assert_eq!(route(&r, "10.255.0.1/32").next_hops, hops(&[1]));
        let to3 = route(&r, "10.255.0.3/32");
        assert_eq!((to3.cost, &to3.next_hops), (20, &hops(&[1])));
        assert!(r
            .routes
            .iter()
            .all(|r| r.prefix != "10.255.0.2/32".parse().unwrap()));
    }

    #[test]
    fn square_with_equal_costs_is_ecmp() {
        // 1-2, 1-3, 2-4, 3-4 all cost 10: router 1 reaches 4 over both tunnels.
        let now = Instant::now();
        let lsdb = db(
            vec![
                router(1, &[(2, 10), (3, 10)]),
                router(2, &[(1, 10), (4, 10)]),
                router(3, &[(1, 10), (4, 10)]),
                router(4, &[(2, 10), (3, 10)]),
            ],
            now,
        );
        let r = run(&lsdb, rid(1), &[adj(2, 7, 10), adj(3, 9, 10)], now);
        let to4 = route(&r, "10.255.0.4/32");
        assert_eq!((to4.cost, &to4.next_hops), (20, &hops(&[7, 9])));
        // Parallel tunnels to one neighbor at equal cost are ECMP too.
        let r = run(
            &lsdb,
            rid(1),
            &[adj(2, 7, 10), adj(2, 8, 10), adj(3, 9, 30)],
            now,
        );
        assert_eq!(route(&r, "10.255.0.4/32").next_hops, hops(&[7, 8]));
    }

    #[test]
    fn one_way_links_are_not_used() {
        // 3 claims a link to 2, but 2 does not list 3: 3 is unreachable from 1 via 2.
        let now = Instant::now();
        let lsdb = db(
            vec![
                router(1, &[(2, 10)]),
                router(2, &[(1, 10)]),
                router(3, &[(2, 10)]),
            ],
            now,
        );
        let r = run(&lsdb, rid(1), &[adj(2, 1, 10)], now);
        assert!(r.routers.contains_key(&rid(2)));
        assert!(!r.routers.contains_key(&rid(3)));
        // And an adjacency whose neighbor has no LSA yet gives nothing.
        let r = run(&lsdb, rid(1), &[adj(3, 2, 10)], now);
        assert!(r.routes.is_empty());
    }

    #[test]
    fn partitioned_area_drops_the_far_side() {
        let now = Instant::now();
        let lsdb = db(
            vec![
                router(1, &[(2, 10)]),
                router(2, &[(1, 10)]),
                router(3, &[(4, 10)]),
                router(4, &[(3, 10)]),
            ],
            now,
        );
        let r = run(&lsdb, rid(1), &[adj(2, 1, 10)], now);
        assert_eq!(r.routers.len(), 1);
        assert_eq!(r.routes.len(), 1);
    }

    #[test]
    fn externals_type1_and_type2() {
        let now = Instant::now();
        let ext = |n: u8, prefix: &str, e2: bool, metric: u32| {
            Lsa::build(
                header(5, prefix.parse().unwrap(), rid(n)),
                LsaBody::External(ExternalLsa {
                    mask: ip("255.255.255.0"),
                    e2,
                    metric,
                    forwarding: Ipv4Addr::UNSPECIFIED,
                    tag: 0,
                }),
            )
        };
        let lsdb = db(
            vec![
                router(1, &[(2, 10), (3, 5)]),
                router(2, &[(1, 10)]),
                router(3, &[(1, 5)]),
                // Same prefix from two ASBRs as E2 metric 20: the nearer ASBR (3) wins.
                ext(2, "192.168.1.0", true, 20),
                ext(3, "192.168.1.0", true, 20),
                // E1 beats E2 whatever the metric.
                ext(2, "192.168.2.0", false, 100),
                ext(3, "192.168.2.0", true, 1),
            ],
            now,
        );
        let r = run(&lsdb, rid(1), &[adj(2, 2, 10), adj(3, 3, 5)], now);
        let a = route(&r, "192.168.1.0/24");
        assert_eq!(
            (a.path_type, a.cost, a.cost2, &a.next_hops),
            (PathType::External2, 20, 5, &hops(&[3]))
        );
        let b = route(&r, "192.168.2.0/24");
        assert_eq!(
            (b.path_type, b.cost, &b.next_hops),
            (PathType::External1, 110, &hops(&[2]))
        );
    }

    /// A router-LSA of router `n` with p2p links (neighbor, metric), transit links
    /// (DR address, own address, metric), stubs (prefix, metric) and its /32 stub.
    fn lan_router(
        n: u8,
        p2p: &[(u8, u16)],
        transit: &[(&str, &str, u16)],
        stubs: &[(&str, u16)],
    ) -> Lsa {
        let mut l = match router(n, p2p).body {
            LsaBody::Router(r) => r.links,
            _ => unreachable!(),
        };
        for &(dr, own, metric) in transit {
            l.push(RouterLink {
                kind: LinkKind::Transit,
                id: ip(dr),
                data: ip(own),
                metric,
            });
        }
        for &(prefix, metric) in stubs {
            let p: Ipv4Network = prefix.parse().unwrap();
            l.push(RouterLink {
                kind: LinkKind::Stub,
                id: p.network(),
                data: p.mask(),
                metric,
            });
        }
        Lsa::build(
            header(1, rid(n), rid(n)),
            LsaBody::Router(RouterLsa { flags: 0, links: l }),
        )
    }

    /// A network-LSA from the DR `dr_router` for the LAN whose DR address is `dr`.
    fn network(dr: &str, dr_router: u8, mask: &str, attached: &[u8]) -> Lsa {
        Lsa::build(
            header(2, ip(dr), rid(dr_router)),
            LsaBody::Network(NetworkLsa {
                mask: ip(mask),
                attached: attached.iter().map(|&n| rid(n)).collect(),
            }),
        )
    }

    #[test]
    fn a_transit_network_leads_to_the_routers_behind_it() {
        // 1 -10- 2 (p2p, tunnel 4); 2 and 3 on LAN 192.168.23.0/24 (DR 3 at .3, 2 at
        // .2), cost 5 from 2 and 7 from 3; 3 has the stub 10.3.0.0/24 at cost 1.
        let now = Instant::now();
        let lan = [("192.168.23.3", "192.168.23.2", 5)];
        let lsdb = db(
            vec![
                router(1, &[(2, 10)]),
                lan_router(2, &[(1, 10)], &lan, &[]),
                lan_router(
                    3,
                    &[],
                    &[("192.168.23.3", "192.168.23.3", 7)],
                    &[("10.3.0.0/24", 1)],
                ),
                network("192.168.23.3", 3, "255.255.255.0", &[3, 2]),
            ],
            now,
        );
        let r = run(&lsdb, rid(1), &[adj(2, 4, 10)], now);
        let net = route(&r, "192.168.23.0/24");
        assert_eq!(
            (net.path_type, net.cost, &net.next_hops),
            (PathType::IntraArea, 15, &hops(&[4]))
        );
        // The network reaches 3 at cost 0: 10 + 5 + 0, and its stub 1 more.
        assert_eq!(r.routers.get(&rid(3)), Some(&(15, hops(&[4]))));
        let stub = route(&r, "10.3.0.0/24");
        assert_eq!((stub.cost, &stub.next_hops), (16, &hops(&[4])));
        assert_eq!(route(&r, "10.255.0.3/32").cost, 15);
        // The network is no router: it is not among the routers reached.
        assert_eq!(r.routers.len(), 2);

        // The DR's address may be its router id too: vertices of both kinds coexist.
        let lsdb = db(
            vec![
                router(1, &[(2, 10)]),
                lan_router(2, &[(1, 10)], &[("10.255.0.3", "10.255.0.2", 5)], &[]),
                lan_router(3, &[], &[("10.255.0.3", "10.255.0.3", 7)], &[]),
                network("10.255.0.3", 3, "255.255.255.0", &[3, 2]),
            ],
            now,
        );
        let r = run(&lsdb, rid(1), &[adj(2, 4, 10)], now);
        assert_eq!(r.routers.get(&rid(3)), Some(&(15, hops(&[4]))));
        assert_eq!(route(&r, "10.255.0.0/24").cost, 15);
        assert_eq!(route(&r, "10.255.0.3/32").cost, 15);
    }

    #[test]
    fn a_transit_network_needs_the_two_way_check() {
        let now = Instant::now();
        let lan2 = [("192.168.23.3", "192.168.23.2", 5)];
        let lan3 = [("192.168.23.3", "192.168.23.3", 7)];
        let stub3 = [("10.3.0.0/24", 1)];
        // The network-LSA does not list 3: the network is reached, 3 is not.
        let lsdb = db(
            vec![
                router(1, &[(2, 10)]),
                lan_router(2, &[(1, 10)], &lan2, &[]),
                lan_router(3, &[], &lan3, &stub3),
                network("192.168.23.3", 3, "255.255.255.0", &[2]),
            ],
            now,
        );
        let r = run(&lsdb, rid(1), &[adj(2, 4, 10)], now);
        assert_eq!(route(&r, "192.168.23.0/24").cost, 15);
        assert!(!r.routers.contains_key(&rid(3)));
        assert!(r
            .routes
            .iter()
            .all(|r| r.prefix.network() != ip("10.3.0.0")));
        // 3 listed, but its router-LSA has no transit link back to the network.
        let lsdb = db(
            vec![
                router(1, &[(2, 10)]),
                lan_router(2, &[(1, 10)], &lan2, &[]),
                lan_router(3, &[], &[], &stub3),
                network("192.168.23.3", 3, "255.255.255.0", &[2, 3]),
            ],
            now,
        );
        let r = run(&lsdb, rid(1), &[adj(2, 4, 10)], now);
        assert!(!r.routers.contains_key(&rid(3)));
        // A network-LSA that does not list 2: 2 cannot enter the network at all.
        let lsdb = db(
            vec![
                router(1, &[(2, 10)]),
                lan_router(2, &[(1, 10)], &lan2, &[]),
                lan_router(3, &[], &lan3, &stub3),
                network("192.168.23.3", 3, "255.255.255.0", &[3]),
            ],
            now,
        );
        let r = run(&lsdb, rid(1), &[adj(2, 4, 10)], now);
        assert_eq!(r.routers.len(), 1);
        assert_eq!(r.routes.len(), 1, "{:?}", r.routes);
        // No network-LSA at all (the DR has not originated it yet): nothing behind.
        let lsdb = db(
            vec![
                router(1, &[(2, 10)]),
                lan_router(2, &[(1, 10)], &lan2, &[]),
                lan_router(3, &[], &lan3, &stub3),
            ],
            now,
        );
        assert_eq!(run(&lsdb, rid(1), &[adj(2, 4, 10)], now).routers.len(), 1);
        // A MaxAge network-LSA is no network.
        let mut gone = network("192.168.23.3", 3, "255.255.255.0", &[2, 3]);
        gone.set_age(super::super::lsa::MAX_AGE);
        let lsdb = db(
            vec![
                router(1, &[(2, 10)]),
                lan_router(2, &[(1, 10)], &lan2, &[]),
                lan_router(3, &[], &lan3, &stub3),
                gone,
            ],
            now,
        );
        assert_eq!(run(&lsdb, rid(1), &[adj(2, 4, 10)], now).routers.len(), 1);
    }

    #[test]
    fn two_equal_paths_into_a_transit_network_are_ecmp() {
        // 1 -10- 2 (tunnel 7), 1 -10- 3 (tunnel 9); 2, 3 and 4 share a LAN (DR 4),
        // cost 5 each; 4 has a stub. The network and 4 are reached over both tunnels.
        let now = Instant::now();
        let dr = "172.16.0.4";
        let lsdb = db(
            vec![
                router(1, &[(2, 10), (3, 10)]),
                lan_router(2, &[(1, 10)], &[(dr, "172.16.0.2", 5)], &[]),
                lan_router(3, &[(1, 10)], &[(dr, "172.16.0.3", 5)], &[]),
                lan_router(4, &[], &[(dr, dr, 5)], &[("10.4.0.0/16", 2)]),
                network(dr, 4, "255.255.255.0", &[4, 2, 3]),
            ],
            now,
        );
        let r = run(&lsdb, rid(1), &[adj(2, 7, 10), adj(3, 9, 10)], now);
        let net = route(&r, "172.16.0.0/24");
        assert_eq!((net.cost, &net.next_hops), (15, &hops(&[7, 9])));
        let stub = route(&r, "10.4.0.0/16");
        assert_eq!((stub.cost, &stub.next_hops), (17, &hops(&[7, 9])));
        // 2 and 3 reach each other through the network at 10 + 5 + 0 = 15, more than
        // their direct 10: their own next hop stays.
        assert_eq!(r.routers.get(&rid(2)), Some(&(10, hops(&[7]))));
        // One path dearer: only the other tunnel.
        let r = run(&lsdb, rid(1), &[adj(2, 7, 10), adj(3, 9, 11)], now);
        assert_eq!(route(&r, "10.4.0.0/16").next_hops, hops(&[7]));
        assert_eq!(route(&r, "172.16.0.0/24").cost, 15);
    }

    #[test]
    fn maxage_lsas_are_ignored() {
        let now = Instant::now();
        let mut gone = router(2, &[(1, 10)]);
        gone.set_age(super::super::lsa::MAX_AGE);
        let lsdb = db(vec![router(1, &[(2, 10)]), gone], now);
        assert!(run(&lsdb, rid(1), &[adj(2, 1, 10)], now).routes.is_empty());
    }

    #[test]
    fn throttle_delays_then_holds_and_backs_off() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Throttle::new(ms(10), ms(100), ms(1000));
        t.schedule(t0);
        assert!(!t.take_due(t0 + ms(5)));
        assert!(t.take_due(t0 + ms(10)));
        // A change right after: held until 100 ms after the run, then the hold doubles.
        t.schedule(t0 + ms(20));
        assert_eq!(t.due(), Some(t0 + ms(110)));
        assert!(t.take_due(t0 + ms(110)));
        t.schedule(t0 + ms(120));
        assert_eq!(t.due(), Some(t0 + ms(310)));
        assert!(t.take_due(t0 + ms(310)));
        // Quiet for max_hold: back to the initial hold.
        t.schedule(t0 + ms(5000));
        assert!(t.take_due(t0 + ms(5010)));
        t.schedule(t0 + ms(5020));
        assert_eq!(t.due(), Some(t0 + ms(5110)));
        assert_eq!(t.runs, 4);
    }

    /// A random mesh of `n` routers with degree about 4, for the size check below.
    fn mesh(n: u32, now: Instant) -> Lsdb {
        let r = |i: u32| Ipv4Addr::from(0x0a00_0000 + i);
        let mut links: Vec<Vec<(u32, u16)>> = vec![vec![]; n as usize];
        let mut x: u64 = 12345;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..n {
            let j = (i + 1) % n;
            links[i as usize].push((j, 10));
            links[j as usize].push((i, 10));
            let k = (rnd() % u64::from(n)) as u32;
            if k != i {
                let c = 1 + (rnd() % 50) as u16;
                links[i as usize].push((k, c));
                links[k as usize].push((i, c));
            }
        }
        let mut db = Lsdb::default();
        for (i, l) in links.iter().enumerate() {
            let mut rl: Vec<RouterLink> = l
                .iter()
                .map(|&(to, metric)| RouterLink {
                    kind: LinkKind::PointToPoint,
                    id: r(to),
                    data: Ipv4Addr::UNSPECIFIED,
                    metric,
                })
                .collect();
            rl.push(RouterLink {
                kind: LinkKind::Stub,
                id: r(i as u32),
                data: ip("255.255.255.255"),
                metric: 0,
            });
            db.install(
                Lsa::build(
                    header(1, r(i as u32), r(i as u32)),
                    LsaBody::Router(RouterLsa {
                        flags: 0,
                        links: rl,
                    }),
                ),
                now,
            );
        }
        db
    }

    #[test]
    fn thousand_router_mesh_reaches_everyone() {
        let now = Instant::now();
        let lsdb = mesh(1000, now);
        let root = Ipv4Addr::from(0x0a00_0000);
        let adjs: Vec<Adjacency> = match &router_lsa(&lsdb, root, now).unwrap().body {
            LsaBody::Router(r) => r
                .links
                .iter()
                .filter(|l| l.kind == LinkKind::PointToPoint)
                .enumerate()
                .map(|(i, l)| Adjacency {
                    neighbor: l.id,
                    tunnel: TunnelId(i as u32 + 1),
                    cost: l.metric,
                })
                .collect(),
            _ => unreachable!(),
        };
        let started = std::time::Instant::now();
        let r = run(&lsdb, root, &adjs, now);
        let took = started.elapsed();
        assert_eq!(r.routers.len(), 999);
        assert_eq!(r.routes.len(), 999);
        eprintln!("SPF over 1000 routers: {took:?}");
    }
}
