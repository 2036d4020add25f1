//! A record kept in the [`KvStore`] as a whole ("base") plus the changes made since it
//! was written, each batch of changes under its own key, and held decoded in memory
//! between calls. Saving a batch of changes costs the size of the batch, not of the
//! record: the watchlist memo gains up to 100 entries per write batch, and rewriting it
//! whole each time made a first sync quadratic. The base is rewritten (and the changes
//! deleted) once they add up to more than it (or 64 KiB while it is smaller), so the
//! bytes written stay linear in the bytes changed and a load reads about twice the
//! record at most.
//!
//! Keys, for a record stored under `KEY`:
//!
//! - `KEY`: the base, `{"v":2,"log":"<log>","record":{..}}`; `<log>` names the changes
//!   that belong to it. Version 1 (`{"v":1, ..the record's fields}`, no changes) is still
//!   read, and the next save rewrites it as version 2.
//! - `KEY.<log>.<n>` for `n` = 0, 1, ...: the changes saved after the base, in order,
//!   `{"v":2,"changes":[..]}`. A load applies them until the first `n` that is absent.
//!   A new base starts a new `<log>`, so the changes of an older base (left behind by a
//!   crash before they were deleted) are never applied to it.
//! - `KEY.head`: `<log>.<n>` after the latest save. It tells a holder whether anyone
//!   else saved the record since (then it loads again) with one small read per call.
//!
//! A save that fails is reported and leaves the changes held in memory; the next save
//! writes the whole record, so a failed write never loses a change that was held. A
//! base or a change that cannot be read is reported and the record is taken as empty,
//! as the memo has always done with an unreadable record.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_core::KvStore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version this module writes (bases and changes).
const VERSION: u64 = 2;

/// The first version, a record stored whole with its fields at the top level.
const WHOLE_ONLY: u64 = 1;

/// Changes may add up to this much before the base is rewritten, however small it is
/// (a tiny base would otherwise be rewritten on almost every save).
const LOG_FLOOR_BYTES: usize = 64 * 1024;

/// At most this many saved batches of changes per base (each costs a read on load).
const LOG_MAX_BATCHES: u64 = 256;

/// A head that matches no stored head: the next call loads the record again.
const UNKNOWN_HEAD: &str = "?";

/// A record that takes changes one at a time.
pub(crate) trait Record: Default + Serialize + DeserializeOwned {
    type Change: Serialize + DeserializeOwned;

    fn apply(&mut self, change: Self::Change);
}

/// Reports a problem with the record: what happened ("unreadable", "not saved") and
/// the detail.
pub(crate) type Report<'a> = &'a dyn Fn(&str, &str);

/// Just the version of a stored value, read before the value itself.
#[derive(Debug, Deserialize)]
struct Versioned {
    #[serde(default)]
    v: Option<u64>,
}

#[derive(Debug, Serialize)]
struct BaseOut<'a, R> {
    v: u64,
    log: &'a str,
    record: &'a R,
}

#[derive(Debug, Deserialize)]
struct BaseIn<R> {
    log: String,
    record: R,
}

#[derive(Debug, Serialize)]
struct ChangesOut<'a, C> {
    v: u64,
    changes: &'a [C],
}

#[derive(Debug, Deserialize)]
struct ChangesIn<C> {
    v: u64,
    changes: Vec<C>,
}

/// What is held of the record, and what is known of its stored form.
#[derive(Debug)]
struct Held<R> {
    record: R,
    /// The log the next changes go to; `None` when the store holds no version-2 base
    /// (none yet, version 1, or unreadable).
    log: Option<String>,
    /// The number of changes saved in `log`.
    next: u64,
    /// What the head key holds, as far as this holder knows.
    head: Option<String>,
    base_bytes: usize,
    log_bytes: usize,
    /// The store lacks something held here (a failed save, or a head out of step):
    /// the next save writes the record whole.
    whole: bool,
}

/// One record of one instance.
pub(crate) struct RecordLog<R: Record> {
    kv: Arc<dyn KvStore>,
    namespace: &'static str,
    key: String,
    held: Option<Held<R>>,
}

impl<R: Record> fmt::Debug for RecordLog<R> {
    // The record may be large (a whole watchlist): show where it is and how it stands.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.held.as_ref();
        f.debug_struct("RecordLog")
            .field("namespace", &self.namespace)
            .field("key", &self.key)
            .field("held", &held.is_some())
            .field("log", &held.and_then(|h| h.log.as_deref()))
            .field("changes", &held.map_or(0, |h| h.next))
            .finish()
    }
}

/// A name for a new log that no earlier base of this record used: random per process,
/// distinct within it.
fn new_log() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

fn version(raw: &str) -> Option<u64> {
    serde_json::from_str::<Versioned>(raw)
        .ok()
        .and_then(|v| v.v)
}

impl<R: Record> RecordLog<R> {
    pub(crate) fn new(kv: Arc<dyn KvStore>, namespace: &'static str, key: String) -> Self {
        RecordLog {
            kv,
            namespace,
            key,
            held: None,
        }
    }

    fn head_key(&self) -> String {
        format!("{}.head", self.key)
    }

    fn change_key(&self, log: &str, n: u64) -> String {
        format!("{}.{log}.{n}", self.key)
    }

    /// The record as last saved by anyone: what is held, unless the head shows another
    /// save since (then it is loaded again). Changes go through [`RecordLog::save`] or
    /// [`RecordLog::replace`] (which may be given the record taken out of here); only
    /// what is derived from the record (and not stored) may be changed in place.
    pub(crate) fn record(&mut self, report: Report<'_>) -> &mut R {
        let fresh = match &mut self.held {
            None => false,
            Some(held) => match self.kv.get(self.namespace, &format!("{}.head", self.key)) {
                Ok(head) => head == held.head,
                Err(e) => {
                    // What is held is the best knowledge there is; make sure the store
                    // gets all of it at the next save.
                    report("unreadable", &e.to_string());
                    held.whole = true;
                    true
                }
            },
        };
        let held = match self.held.take() {
            Some(h) if fresh => h,
            _ => self.load(report),
        };
        &mut self.held.insert(held).record
    }

    fn load(&self, report: Report<'_>) -> Held<R> {
        let empty = |head: Option<String>| Held {
            record: R::default(),
            log: None,
            next: 0,
            head,
            base_bytes: 0,
            log_bytes: 0,
            whole: true,
        };
        // Read first, so a save by someone else after the base and changes were read
        // shows as a different head at the next call.
        let head = match self.kv.get(self.namespace, &self.head_key()) {
            Ok(h) => h,
            Err(_) => Some(UNKNOWN_HEAD.to_owned()),
        };
        let raw = match self.kv.get(self.namespace, &self.key) {
            Ok(Some(raw)) => raw,
            Ok(None) => return empty(head),
            Err(e) => {
                report("unreadable", &e.to_string());
                return empty(head);
            }
        };
        let (record, log) = match version(&raw) {
            Some(WHOLE_ONLY) => match serde_json::from_str::<R>(&raw) {
                Ok(r) => (r, None),
                Err(e) => {
                    report("unreadable", &e.to_string());
                    return empty(head);
                }
            },
            Some(VERSION) => match serde_json::from_str::<BaseIn<R>>(&raw) {
                Ok(b) => (b.record, Some(b.log)),
                Err(e) => {
                    report("unreadable", &e.to_string());
                    return empty(head);
                }
            },
            v => {
                report("unreadable", &format!("unknown version {v:?}"));
                return empty(head);
            }
        };
        let mut held = Held {
            record,
            log: None,
            next: 0,
            head,
            base_bytes: raw.len(),
            log_bytes: 0,
            whole: true,
        };
        let Some(log) = log else {
            return held;
        };
        loop {
            let key = self.change_key(&log, held.next);
            let raw = match self.kv.get(self.namespace, &key) {
                Ok(Some(raw)) => raw,
                Ok(None) => break,
                Err(e) => {
                    report("unreadable", &format!("{key}: {e}"));
                    return empty(held.head);
                }
            };
            match serde_json::from_str::<ChangesIn<R::Change>>(&raw) {
                Ok(c) if c.v == VERSION => {
                    for change in c.changes {
                        held.record.apply(change);
                    }
                }
                Ok(c) => {
                    report("unreadable", &format!("{key}: unknown version {}", c.v));
                    return empty(held.head);
                }
                Err(e) => {
                    report("unreadable", &format!("{key}: {e}"));
                    return empty(held.head);
                }
            }
            held.next += 1;
            held.log_bytes += raw.len();
        }
        // A head out of step (a crash between a save and its head) is set right by
        // writing the record whole at the next save.
        held.whole = held.head.as_deref() != Some(&format!("{log}.{}", held.next));
        held.log = Some(log);
        held
    }

    /// Applies `changes` to the record and saves them (or the whole record, when the
    /// changes since its base add up to more than it). Call [`RecordLog::record`] first
    /// in the same call.
    pub(crate) fn save(&mut self, report: Report<'_>, changes: Vec<R::Change>) {
        if changes.is_empty() {
            return;
        }
        let body = serde_json::to_string(&ChangesOut {
            v: VERSION,
            changes: &changes,
        });
        if self.held.is_none() {
            // Not held yet (no `record` call first): what is stored is the base.
            self.held = Some(self.load(report));
        }
        let Some(held) = self.held.as_mut() else {
            return;
        };
        for change in changes {
            held.record.apply(change);
        }
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                report("not saved", &e.to_string());
                held.whole = true;
                return;
            }
        };
        let append = match &held.log {
            Some(log) if !held.whole => {
                let limit = held.base_bytes.max(LOG_FLOOR_BYTES);
                (held.log_bytes + body.len() <= limit && held.next < LOG_MAX_BATCHES)
                    .then(|| log.clone())
            }
            _ => None,
        };
        match append {
            Some(log) => self.append(report, &log, &body),
            None => self.write_whole(report),
        }
    }

    /// Replaces the record and writes it whole.
    pub(crate) fn replace(&mut self, report: Report<'_>, record: R) {
        let mut held = match self.held.take() {
            Some(h) => h,
            None => self.load(report),
        };
        held.record = record;
        self.held = Some(held);
        self.write_whole(report);
    }

    fn append(&mut self, report: Report<'_>, log: &str, body: &str) {
        let Some(held) = self.held.as_ref() else {
            return;
        };
        let n = held.next;
        let key = self.change_key(log, n);
        let saved = self.kv.put(self.namespace, &key, body);
        let head = format!("{log}.{}", n + 1);
        let headed = saved
            .is_ok()
            .then(|| self.kv.put(self.namespace, &self.head_key(), &head));
        let Some(held) = self.held.as_mut() else {
            return;
        };
        if let Err(e) = saved {
            report("not saved", &e.to_string());
            held.whole = true;
            return;
        }
        held.next = n + 1;
        held.log_bytes += body.len();
        match headed {
            Some(Err(e)) => {
                report("not saved", &format!("head: {e}"));
                held.head = Some(UNKNOWN_HEAD.to_owned());
                held.whole = true;
            }
            _ => held.head = Some(head),
        }
    }

    fn write_whole(&mut self, report: Report<'_>) {
        let Some(held) = self.held.as_ref() else {
            return;
        };
        let log = new_log();
        let body = match serde_json::to_string(&BaseOut {
            v: VERSION,
            log: &log,
            record: &held.record,
        }) {
            Ok(b) => b,
            Err(e) => {
                report("not saved", &e.to_string());
                if let Some(h) = self.held.as_mut() {
                    h.whole = true;
                }
                return;
            }
        };
        if let Err(e) = self.kv.put(self.namespace, &self.key, &body) {
            report("not saved", &e.to_string());
            if let Some(h) = self.held.as_mut() {
                h.whole = true;
            }
            return;
        }
        let head = format!("{log}.0");
        let headed = self.kv.put(self.namespace, &self.head_key(), &head);
        let old = held.log.clone().map(|l| (l, held.next));
        let Some(held) = self.held.as_mut() else {
            return;
        };
        held.log = Some(log);
        held.next = 0;
        held.base_bytes = body.len();
        held.log_bytes = 0;
        held.whole = false;
        match headed {
            Ok(()) => held.head = Some(head),
            Err(e) => {
                report("not saved", &format!("head: {e}"));
                held.head = Some(UNKNOWN_HEAD.to_owned());
            }
        }
        // The old changes are in the new base now; the new base no longer names their
        // log, so one left behind (a failed delete, a crash) is never applied again.
        if let Some((old, n)) = old {
            for i in 0..n {
                let _ = self.kv.delete(self.namespace, &self.change_key(&old, i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    use ferry_core::{Error, ErrorKind, Result};

    use super::*;

    const NS: &str = "test";

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Tally {
        items: BTreeMap<String, u64>,
    }

    impl Record for Tally {
        type Change = (String, u64);

        fn apply(&mut self, (k, n): (String, u64)) {
            self.items.insert(k, n);
        }
    }

    /// A store whose next `fail_puts` puts and every delete (when `fail_deletes`) fail.
    #[derive(Debug, Default)]
    struct Flaky {
        map: std::sync::Mutex<BTreeMap<(String, String), String>>,
        fail_puts: AtomicUsize,
        fail_deletes: AtomicBool,
    }

    impl Flaky {
        fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), String>> {
            self.map.lock().unwrap()
        }

        /// How many keys the store holds.
        fn len(&self) -> usize {
            self.map().len()
        }
    }

    fn k(namespace: &str, key: &str) -> (String, String) {
        (namespace.to_owned(), key.to_owned())
    }

    impl KvStore for Flaky {
        fn get(&self, namespace: &str, key: &str) -> Result<Option<String>> {
            Ok(self.map().get(&k(namespace, key)).cloned())
        }

        fn put(&self, namespace: &str, key: &str, value: &str) -> Result<()> {
            let left = self.fail_puts.load(Ordering::SeqCst);
            if left > 0 {
                self.fail_puts.store(left - 1, Ordering::SeqCst);
                return Err(Error::new(ErrorKind::Unexpected, "disk full"));
            }
            self.map().insert(k(namespace, key), value.to_owned());
            Ok(())
        }

        fn delete(&self, namespace: &str, key: &str) -> Result<()> {
            if self.fail_deletes.load(Ordering::SeqCst) {
                return Err(Error::new(ErrorKind::Unexpected, "disk full"));
            }
            self.map().remove(&k(namespace, key));
            Ok(())
        }
    }

    struct Problems(RefCell<Vec<String>>);

    impl Problems {
        fn new() -> Self {
            Problems(RefCell::new(Vec::new()))
        }

        fn report(&self) -> impl Fn(&str, &str) + '_ {
            |what: &str, detail: &str| self.0.borrow_mut().push(format!("{what}: {detail}"))
        }

        fn count(&self) -> usize {
            self.0.borrow().len()
        }
    }

    fn log(kv: &Arc<Flaky>) -> RecordLog<Tally> {
        RecordLog::new(kv.clone(), NS, "i:tally".to_owned())
    }

    fn change(n: u64) -> Vec<(String, u64)> {
        vec![(format!("k{n}"), n)]
    }

    /// What a holder loading afresh reads.
    fn loaded(kv: &Arc<Flaky>) -> Tally {
        let p = Problems::new();
        let mut fresh = log(kv);
        let t = std::mem::take(fresh.record(&p.report()));
        assert_eq!(p.count(), 0, "{:?}", p.0.borrow());
        t
    }

    fn tally(ns: impl IntoIterator<Item = u64>) -> Tally {
        Tally {
            items: ns.into_iter().map(|n| (format!("k{n}"), n)).collect(),
        }
    }

    #[test]
    fn a_version_1_record_is_read_and_rewritten_as_version_2() {
        let kv = Arc::new(Flaky::default());
        kv.put(NS, "i:tally", r#"{"v":1,"items":{"k1":1,"k2":2}}"#)
            .unwrap();
        let p = Problems::new();
        let mut l = log(&kv);
        assert_eq!(*l.record(&p.report()), tally([1, 2]));
        l.save(&p.report(), change(3));
        assert_eq!(p.count(), 0);
        let raw = kv.get(NS, "i:tally").unwrap().unwrap();
        assert_eq!(version(&raw), Some(VERSION), "{raw}");
        assert_eq!(loaded(&kv), tally([1, 2, 3]));
    }

    #[test]
    fn changes_are_saved_apart_from_the_base_until_they_outgrow_it() {
        let kv = Arc::new(Flaky::default());
        let p = Problems::new();
        let mut l = log(&kv);
        l.record(&p.report());
        l.save(&p.report(), change(0));
        let base = kv.get(NS, "i:tally").unwrap();
        for n in 1..20 {
            l.record(&p.report());
            l.save(&p.report(), change(n));
            assert_eq!(kv.get(NS, "i:tally").unwrap(), base, "the base stays");
            assert_eq!(loaded(&kv), tally(0..=n));
        }
        assert_eq!(kv.len(), 2 + 19, "base, head and 19 changes");
        // Changes past the floor: the base is rewritten and the changes deleted.
        let big: Vec<(String, u64)> = (0..LOG_FLOOR_BYTES as u64 / 10)
            .map(|n| (format!("big{n}"), n))
            .collect();
        l.record(&p.report());
        l.save(&p.report(), big);
        assert_ne!(kv.get(NS, "i:tally").unwrap(), base);
        assert_eq!(kv.len(), 2, "base and head");
        assert_eq!(loaded(&kv).items.len(), 20 + LOG_FLOOR_BYTES / 10);
        assert_eq!(p.count(), 0);
    }

    #[test]
    fn a_failed_save_is_reported_and_its_changes_go_with_the_next_save() {
        let kv = Arc::new(Flaky::default());
        let p = Problems::new();
        let mut l = log(&kv);
        l.record(&p.report());
        l.save(&p.report(), change(1));
        kv.fail_puts.store(1, Ordering::SeqCst);
        l.record(&p.report());
        l.save(&p.report(), change(2));
        assert_eq!(p.count(), 1, "reported");
        assert_eq!(loaded(&kv), tally([1]), "the store lacks change 2");
        l.record(&p.report());
        l.save(&p.report(), change(3));
        assert_eq!(loaded(&kv), tally([1, 2, 3]), "nothing held was lost");
    }

    #[test]
    fn a_save_by_another_holder_is_loaded_before_the_next_change() {
        let kv = Arc::new(Flaky::default());
        let p = Problems::new();
        let (mut a, mut b) = (log(&kv), log(&kv));
        a.record(&p.report());
        a.save(&p.report(), change(1));
        b.record(&p.report());
        b.save(&p.report(), change(2));
        assert_eq!(*a.record(&p.report()), tally([1, 2]));
        a.save(&p.report(), change(3));
        assert_eq!(*b.record(&p.report()), tally([1, 2, 3]));
        assert_eq!(loaded(&kv), tally([1, 2, 3]));
    }

    #[test]
    fn changes_left_behind_by_an_older_base_are_never_applied() {
        let kv = Arc::new(Flaky::default());
        let p = Problems::new();
        let mut l = log(&kv);
        l.record(&p.report());
        l.save(&p.report(), change(1));
        l.save(&p.report(), change(2));
        // The base is rewritten, but the old changes cannot be deleted.
        kv.fail_deletes.store(true, Ordering::SeqCst);
        l.replace(&p.report(), tally([7]));
        assert!(kv.len() > 2, "old changes are still stored");
        assert_eq!(loaded(&kv), tally([7]));
    }

    #[test]
    fn an_unreadable_change_is_reported_and_the_record_taken_as_empty() {
        let kv = Arc::new(Flaky::default());
        let p = Problems::new();
        let mut l = log(&kv);
        l.record(&p.report());
        l.save(&p.report(), change(1));
        l.save(&p.report(), change(2));
        let head = kv.get(NS, "i:tally.head").unwrap().unwrap();
        let (name, _) = head.split_once('.').unwrap();
        kv.put(NS, &format!("i:tally.{name}.0"), "{not json")
            .unwrap();
        let q = Problems::new();
        let mut fresh = log(&kv);
        assert_eq!(*fresh.record(&q.report()), Tally::default());
        assert_eq!(q.count(), 1, "{:?}", q.0.borrow());
        // The next save writes what is held whole.
        fresh.save(&q.report(), change(5));
        assert_eq!(loaded(&kv), tally([5]));
    }
}
