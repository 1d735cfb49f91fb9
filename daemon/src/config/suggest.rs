//! "Did you mean ...?" for misspelt keys: the closest known key by edit distance.

/// The known key closest to `typed`, if it is close enough to be a plausible typo.
pub(crate) fn did_you_mean<'k>(typed: &str, known: &[&'k str]) -> Option<&'k str> {
    // `listen_port` for `listen-port` is the most common slip; compare with '_' as '-'.
    let typed = typed.to_ascii_lowercase().replace('_', "-");
    let (best, distance) = known
        .iter()
        .map(|k| (*k, edit_distance(&typed, k)))
        .min_by_key(|(_, d)| *d)?;
    // One edit per three characters (at least one) keeps the suggestions believable:
    // `endpont` -> `endpoint`, but `mtu` never becomes `name`.
    let allowed = (typed.chars().count().max(best.len()) / 3).max(1);
    (distance <= allowed).then_some(best)
}

/// Levenshtein distance, counting a swap of two adjacent characters as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j] = distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["name", "endpoint", "listen-port", "mtu", "peer-public-key"];

    #[test]
    fn suggests_close_keys() {
        assert_eq!(did_you_mean("endpont", KNOWN), Some("endpoint"));
        assert_eq!(did_you_mean("listen_port", KNOWN), Some("listen-port"));
        assert_eq!(did_you_mean("Endpoint", KNOWN), Some("endpoint"));
        assert_eq!(
            did_you_mean("peer-pubilc-key", KNOWN),
            Some("peer-public-key")
        );
        assert_eq!(did_you_mean("mut", KNOWN), Some("mtu"));
    }

    #[test]
    fn does_not_suggest_far_keys() {
        assert_eq!(did_you_mean("colour", KNOWN), None);
        assert_eq!(did_you_mean("x", KNOWN), None);
    }
}
