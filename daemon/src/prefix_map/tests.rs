use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Insert(u32, u32),
    Remove(u32),
    GetOrInsert(u32, u32),
    /// Drop the keys divisible by this.
    RetainNotDivisible(u32),
    Range(u32, u32),
}

fn op(keys: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        4 => (0..keys).prop_map(Op::Remove),
        2 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        1 => (2..50u32).prop_map(Op::RetainNotDivisible),
        1 => (0..keys, 0..keys).prop_map(|(a, b)| Op::Range(a.min(b), a.max(b))),
    ]
}

fn same(map: &ChunkMap<u32, u32>, model: &BTreeMap<u32, u32>) {
    assert_eq!(map.len(), model.len());
    assert!(map
        .iter()
        .map(|(k, v)| (*k, *v))
        .eq(model.iter().map(|(k, v)| (*k, *v))));
    // The run index agrees with the runs and no run is empty or over-full.
    for (first, run) in map.firsts.iter().zip(&map.chunks) {
        assert_eq!(Some(first), run.keys.first());
        assert!(run.len() <= CHUNK);
        assert_eq!(run.keys.len(), run.vals.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every operation answers as `BTreeMap` does, through enough entries to split and
    /// merge runs.
    #[test]
    fn chunk_map_behaves_like_btree_map(ops in prop::collection::vec(op(3000), 1..4000)) {
        let mut map = ChunkMap::new();
        let mut model = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => prop_assert_eq!(map.insert(k, v), model.insert(k, v)),
                Op::Remove(k) => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                Op::GetOrInsert(k, v) => {
                    let had = model.contains_key(&k);
                    let want = *model.entry(k).or_insert(v);
                    let (got, inserted) = map.get_or_insert_with(k, || v);
                    prop_assert_eq!(*got, want);
                    prop_assert_eq!(inserted, !had);
                }
                Op::RetainNotDivisible(d) => {
                    map.retain(|k, _| k % d != 0);
                    model.retain(|k, _| k % d != 0);
                }
                Op::Range(a, b) => {
                    let got: Vec<_> = map.range(a..=b).map(|(k, v)| (*k, *v)).collect();
                    let want: Vec<_> = model.range(a..=b).map(|(k, v)| (*k, *v)).collect();
                    prop_assert_eq!(got, want);
                    let got: Vec<_> = map.range(a..b).map(|(k, _)| *k).collect();
                    let want: Vec<_> = model.range(a..b).map(|(k, _)| *k).collect();
                    prop_assert_eq!(got, want);
                }
            }
        }
        same(&map, &model);
        for k in 0..3000 {
            prop_assert_eq!(map.get(&k), model.get(&k));
        }
    }
}

/// A table loaded in key order fills its runs: the point of the structure.
#[test]
fn in_order_load_packs_full_runs() {
    let n = 100 * CHUNK + 7;
    let map: ChunkMap<u64, u8> = (0..n as u64).map(|k| (k, 0)).collect();
    assert_eq!(map.len(), n);
    assert_eq!(map.chunks.len(), 101);
    assert!(map.chunks[..100].iter().all(|r| r.len() == CHUNK));
    // Withdrawing most of it gives the runs back.
    let mut map = map;
    map.retain(|k, _| k % 100 == 0);
    assert_eq!(map.len(), n.div_ceil(100));
    for k in 0..n as u64 {
        map.remove(&k);
    }
    assert!(map.is_empty() && map.chunks.is_empty() && map.firsts.is_empty());
}

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

/// Prefixes come back exactly as inserted (host bits too) and in `IpNetwork` order.
#[test]
fn prefix_map_keeps_ipnetwork_order_and_values() {
    let prefixes = [
        "2001:db8::/32",
        "10.0.0.0/8",
        "10.0.0.0/24",
        "10.0.0.1/24",
        "0.0.0.0/0",
        "::/0",
        "2001:db8::/48",
        "255.255.255.255/32",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
        "fe80::1/64",
    ];
    let mut map = PrefixMap::new();
    let mut model = BTreeMap::new();
    for (i, p) in prefixes.iter().enumerate() {
        map.insert(net(p), i);
        model.insert(net(p), i);
    }
    let got: Vec<(IpNetwork, usize)> = map.iter().map(|(p, v)| (p, *v)).collect();
    let want: Vec<(IpNetwork, usize)> = model.iter().map(|(p, v)| (*p, *v)).collect();
    assert_eq!(got, want);
    assert_eq!(map.get(&net("10.0.0.1/24")), Some(&3));
    assert_eq!(map.get(&net("10.0.0.0/16")), None);
    assert_eq!(map.remove(&net("fe80::1/64")), Some(9));
    assert_eq!(map.len(), 9);
    let all: Vec<(IpNetwork, usize)> = map.into_entries().collect();
    assert_eq!(all.len(), 9);
    assert_eq!(all[0].0, net("0.0.0.0/0"));
}

proptest! {
    /// The packed keys sort exactly as the prefixes do (the maps' order is `IpNetwork`'s)
    /// and give back the same prefix.
    #[test]
    fn packed_keys_keep_prefix_order(a in any::<u128>(), la in 0u8..=128, b in any::<u128>(), lb in 0u8..=128,
                                     c in any::<u32>(), lc in 0u8..=32, d in any::<u32>(), ld in 0u8..=32) {
        let (a, b) = (
            Ipv6Network::new(Ipv6Addr::from(a), la).unwrap(),
            Ipv6Network::new(Ipv6Addr::from(b), lb).unwrap(),
        );
        prop_assert_eq!(v6_key(a).cmp(&v6_key(b)), a.cmp(&b));
        prop_assert_eq!(v6_net(v6_key(a)), a);
        let (c, d) = (
            Ipv4Network::new(Ipv4Addr::from(c), lc).unwrap(),
            Ipv4Network::new(Ipv4Addr::from(d), ld).unwrap(),
        );
        prop_assert_eq!(v4_key(c).cmp(&v4_key(d)), c.cmp(&d));
        prop_assert_eq!(v4_net(v4_key(c)), c);
    }
}
