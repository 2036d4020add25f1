//! Proof for lists that declare no count: the row count of the last complete read, held
//! against the service's own change stamps.
//!
//! Some services answer a list as one whole document per request, with no total and no
//! page count (SIMKL's `/sync/all-items`), and an empty document is their ordinary
//! answer for "nothing here". A reader cannot see a row cut from such a list. What such
//! services do publish is *when* a list last changed (SIMKL's `/sync/activities`). So a
//! list may only come back shorter than its last complete read when the stamps that a
//! removal moves have moved since: a shorter list under an unchanged stamp is a read
//! that lost rows, and is partial ([`SHRANK_UNCHANGED`]). An unreadable stamp proves
//! nothing, so a shorter list is partial then too; a list that grew or kept its size
//! needs no stamp. A stamp that moves for adds as well as removals cannot tell them
//! apart, so a list that shrank under moved stamps ([`Tally::shrank`]) is read again at
//! once, and two reads that count differently are partial ([`UNSTEADY`]).
//!
//! The counts live in the provider's [`KvStore`], one record per list, written only
//! after a read was complete.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::store::KvStore;

/// The reason prefix of a list that came back shorter while the service says it did not
/// change.
pub const SHRANK_UNCHANGED: &str = "shrank_unchanged";

/// The reason prefix of a list that shrank under moved stamps, then read a different
/// number of rows when read again at once.
pub const UNSTEADY: &str = "unsteady";

/// What the last complete read of one list counted, and the stamp it was read under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Counted {
    rows: u64,
    stamp: Option<String>,
}

/// The counts of one provider instance's unpaged lists.
#[derive(Debug, Clone)]
pub struct Tally {
    kv: Option<Arc<dyn KvStore>>,
    namespace: String,
    instance: String,
}

/// One list as a read found it: its name, the rows the document held (every row
/// accounted for, decodable or not), and the service's removal stamp for it now (`None`
/// when the service gave none or it could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counting {
    pub list: String,
    pub rows: u64,
    pub stamp: Option<String>,
}

impl Tally {
    /// Records under namespace `<provider>.tally`, keyed `<instance>/<list>`. Without a
    /// store nothing is remembered, and every read stands on its own proof.
    pub fn new(kv: Option<Arc<dyn KvStore>>, provider: &str, instance: &str) -> Self {
        Tally {
            kv,
            namespace: format!("{provider}.tally"),
            instance: instance.to_owned(),
        }
    }

    fn key(&self, list: &str) -> String {
        format!("{}/{list}", self.instance)
    }

    fn last(&self, list: &str) -> Option<Counted> {
        let raw = self
            .kv
            .as_ref()?
            .get(&self.namespace, &self.key(list))
            .ok()??;
        serde_json::from_str(&raw).ok()
    }

    /// Why this read of a list is not proved whole, if it is not: it holds fewer rows
    /// than the last complete read, and the service's removal stamp has not moved since
    /// (or cannot be read).
    pub fn judge(&self, now: &Counting) -> Option<String> {
        let last = self.last(&now.list)?;
        if now.rows >= last.rows {
            return None;
        }
        let moved = match (&now.stamp, &last.stamp) {
            (Some(now), Some(then)) => now != then,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if moved {
            return None;
        }
        let why = match &now.stamp {
            Some(s) => format!("the service reports no removal since ({s})"),
            None => "the service's change stamps could not be read".to_owned(),
        };
        Some(format!(
            "{SHRANK_UNCHANGED}: {}: {} rows where the last complete read had {}, and {why}",
            now.list, now.rows, last.rows
        ))
    }

    /// Whether this read of a list holds fewer rows than the last complete read. A list
    /// that shrank under moved stamps ([`Tally::judge`] lets it stand) is worth reading
    /// again: a real removal reads the same twice, a lost answer seldom does.
    pub fn shrank(&self, now: &Counting) -> bool {
        self.last(&now.list)
            .is_some_and(|last| now.rows < last.rows)
    }

    /// Why a list read twice in a row is not proved whole, if it is not: the two reads
    /// counted different rows.
    pub fn unsteady(first: &Counting, again: &Counting) -> Option<String> {
        (first.rows != again.rows).then(|| {
            format!(
                "{UNSTEADY}: {}: {} rows, then {} when read again at once",
                first.list, first.rows, again.rows
            )
        })
    }

    /// Remembers the lists of a complete read (best effort: a list not recorded is only
    /// judged less strictly next time). Returns how many records could not be written.
    pub fn record(&self, lists: &[Counting]) -> usize {
        let Some(kv) = &self.kv else {
            return 0;
        };
        let mut failed = 0;
        for l in lists {
            let c = Counted {
                rows: l.rows,
                stamp: l.stamp.clone(),
            };
            let v = serde_json::to_string(&c).unwrap_or_default();
            if kv.put(&self.namespace, &self.key(&l.list), &v).is_err() {
                failed += 1;
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryKvStore;

    fn tally() -> Tally {
        Tally::new(Some(Arc::new(MemoryKvStore::new())), "svc", "one")
    }

    fn c(rows: u64, stamp: Option<&str>) -> Counting {
        Counting {
            list: "shows".into(),
            rows,
            stamp: stamp.map(str::to_owned),
        }
    }

    #[test]
    fn a_shrunk_list_is_steady_only_when_read_the_same_twice() {
        let t = tally();
        assert!(!t.shrank(&c(3, Some("a"))), "nothing recorded yet");
        assert_eq!(t.record(&[c(5, Some("a"))]), 0);
        assert!(t.shrank(&c(3, Some("b"))));
        assert!(!t.shrank(&c(5, Some("b"))));
        assert_eq!(Tally::unsteady(&c(3, None), &c(3, None)), None);
        let why = Tally::unsteady(&c(0, None), &c(5, None)).unwrap();
        assert!(
            why.starts_with(UNSTEADY) && why.contains("0 rows, then 5"),
            "{why}"
        );
    }

    #[test]
    fn a_first_read_has_nothing_to_be_held_against() {
        assert_eq!(tally().judge(&c(0, Some("t1"))), None);
    }

    #[test]
    fn a_shorter_list_under_the_same_stamp_is_not_proved() {
        let t = tally();
        assert_eq!(t.record(&[c(5, Some("t1"))]), 0);
        let why = t.judge(&c(0, Some("t1"))).expect("partial");
        assert!(why.starts_with(SHRANK_UNCHANGED), "{why}");
        assert!(
            why.contains("shows: 0 rows") && why.contains("had 5"),
            "{why}"
        );
        // Unknown stamps prove nothing either.
        assert!(t.judge(&c(4, None)).is_some());
    }

    #[test]
    fn a_moved_stamp_or_a_list_that_did_not_shrink_is_fine() {
        let t = tally();
        t.record(&[c(5, Some("t1"))]);
        assert_eq!(t.judge(&c(3, Some("t2"))), None);
        assert_eq!(t.judge(&c(5, Some("t1"))), None);
        assert_eq!(t.judge(&c(9, None)), None);
        t.record(&[c(5, None)]);
        assert_eq!(t.judge(&c(3, Some("t2"))), None);
    }

    #[test]
    fn without_a_store_nothing_is_held() {
        let t = Tally::new(None, "svc", "one");
        assert_eq!(t.record(&[c(5, Some("t1"))]), 0);
        assert_eq!(t.judge(&c(0, Some("t1"))), None);
    }

    #[test]
    fn instances_do_not_share_counts() {
        let kv: Arc<dyn KvStore> = Arc::new(MemoryKvStore::new());
        let a = Tally::new(Some(kv.clone()), "svc", "a");
        let b = Tally::new(Some(kv), "svc", "b");
        a.record(&[c(5, Some("t1"))]);
        assert_eq!(b.judge(&c(0, Some("t1"))), None);
        assert!(a.judge(&c(0, Some("t1"))).is_some());
    }
}
