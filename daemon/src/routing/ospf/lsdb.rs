//! The link state database of one area (RFC 2328 12.2, 14): every LSA instance by
//! (type, id, advertising router), with the time it was installed so that its age can
//! be read at any instant without a ticking task (14: aging is computed, not counted).
//!
//! Owns storage and age arithmetic only; flooding, origination and flushing decisions
//! are the instance's. Time is always passed in.

use super::lsa::{Lsa, LsaHeader, LsaKey, MAX_AGE};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Entry {
    pub lsa: Lsa,
    pub installed: Instant,
    /// Received by flooding (RFC 2328 13 (5a)): only such a copy holds off a newer
    /// instance for MinLSArrival. Own LSAs and answers to our link state requests (the
    /// database exchange) are not.
    pub flooded: bool,
}

impl Entry {
    /// The age now: the age it arrived with plus the seconds since, capped at MaxAge.
    pub fn age(&self, now: Instant) -> u16 {
        let elapsed = now.saturating_duration_since(self.installed).as_secs();
        let age = u64::from(self.lsa.header.age) + elapsed;
        age.min(u64::from(MAX_AGE)) as u16
    }

    /// The header with the current age.
    pub fn header(&self, now: Instant) -> LsaHeader {
        LsaHeader {
            age: self.age(now),
            ..self.lsa.header
        }
    }

    /// A copy to put on the wire: current age plus InfTransDelay (1 s), capped.
    pub fn for_flooding(&self, now: Instant) -> Lsa {
        let mut lsa = self.lsa.clone();
        lsa.set_age((self.age(now) + 1).min(MAX_AGE));
        lsa
    }

    pub fn is_max_age(&self, now: Instant) -> bool {
        self.age(now) >= MAX_AGE
    }
}

#[derive(Debug, Default, Clone)]
pub struct Lsdb {
    entries: BTreeMap<LsaKey, Entry>,
}

impl Lsdb {
    pub fn get(&self, key: &LsaKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Installs `lsa` (replacing any other instance), as not received by flooding.
    /// Returns true if the contents changed in a way that matters to SPF (RFC 2328 13.2:
    /// body, options or MaxAge-ness differ, or the LSA is new).
    pub fn install(&mut self, lsa: Lsa, now: Instant) -> bool {
        self.install_received(lsa, now, false)
    }

    /// [`Lsdb::install`], saying whether the instance came by flooding.
    pub fn install_received(&mut self, lsa: Lsa, now: Instant, flooded: bool) -> bool {
        let key = lsa.key();
        let changed = match self.entries.get(&key) {
            None => true,
            Some(old) => {
                old.lsa.body != lsa.body
                    || old.lsa.header.options != lsa.header.options
                    || old.is_max_age(now) != (lsa.header.age >= MAX_AGE)
            }
        };
        self.entries.insert(
            key,
            Entry {
                lsa,
                installed: now,
                flooded,
            },
        );
        changed
    }

    pub fn remove(&mut self, key: &LsaKey) -> Option<Entry> {
        self.entries.remove(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&LsaKey, &Entry)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// LSAs (not MaxAge) usable by SPF.
    pub fn live(&self, now: Instant) -> impl Iterator<Item = &Lsa> {
        self.entries
            .values()
            .filter(move |e| !e.is_max_age(now))
            .map(|e| &e.lsa)
    }
}

#[cfg(test)]
mod tests {
    use super::super::lsa::{LsaBody, SummaryLsa};
    use super::*;
    use std::time::Duration;

    fn lsa(seq: i32, age: u16, metric: u32) -> Lsa {
        let mut l = Lsa::build(
            LsaHeader {
                age: 0,
                options: 2,
                ls_type: 3,
                id: "10.0.0.0".parse().unwrap(),
                adv_router: "1.1.1.1".parse().unwrap(),
                seq,
                checksum: 0,
                length: 0,
            },
            LsaBody::Summary(SummaryLsa {
                mask: "255.0.0.0".parse().unwrap(),
                metric,
            }),
        );
        l.set_age(age);
        l
    }

    #[test]
    fn age_is_computed_from_install_time_and_capped() {
        let t0 = Instant::now();
        let mut db = Lsdb::default();
        assert!(db.install(lsa(1, 10, 5), t0));
        let e = db.get(&lsa(1, 10, 5).key()).unwrap();
        assert_eq!(e.age(t0 + Duration::from_millis(2500)), 12);
        assert_eq!(e.for_flooding(t0).header.age, 11);
        assert_eq!(e.age(t0 + Duration::from_secs(9999)), MAX_AGE);
        assert!(e.is_max_age(t0 + Duration::from_secs(3590)));
    }

    #[test]
    fn install_reports_content_changes_only() {
        let t0 = Instant::now();
        let mut db = Lsdb::default();
        assert!(db.install(lsa(1, 0, 5), t0));
        assert!(
            !db.install(lsa(2, 0, 5), t0),
            "a refresh changes nothing for SPF"
        );
        assert!(db.install(lsa(3, 0, 6), t0));
        assert!(db.install(lsa(4, MAX_AGE, 6), t0), "a flush is a change");
        assert_eq!(db.live(t0).count(), 0);
    }
}
