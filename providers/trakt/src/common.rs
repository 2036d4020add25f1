//! Helpers every feature shares: per-entry outcome slots, matching entries against what
//! Trakt holds, and the checks run before any write.

use std::collections::HashMap;

use ferry_core::identity::AliasIndex;
use ferry_core::{
    Context, Entry, Error, Feature, Item, MediaType, Outcome, Result, UnresolvedReason, WriteReport,
};
use ferry_http::Response;
use serde_json::Value;

/// Items per write request (Trakt's sync endpoints take more, but smaller batches keep a
/// failure small).
pub(crate) const BATCH: usize = 100;

/// One outcome per entry, filled in any order.
#[derive(Debug)]
pub(crate) struct Slots {
    out: Vec<Option<Outcome>>,
}

impl Slots {
    pub(crate) fn new(n: usize) -> Self {
        Slots { out: vec![None; n] }
    }

    pub(crate) fn set(&mut self, i: usize, o: Outcome) {
        if let Some(slot) = self.out.get_mut(i) {
            *slot = Some(o);
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Outcome> {
        self.out.get(i).and_then(Option::as_ref)
    }

    pub(crate) fn is_set(&self, i: usize) -> bool {
        self.get(i).is_some()
    }

    /// Sets every slot not yet decided.
    pub(crate) fn fill(&mut self, o: &Outcome) {
        for slot in &mut self.out {
            if slot.is_none() {
                *slot = Some(o.clone());
            }
        }
    }

    /// The outcomes in order; anything undecided is `Unconfirmed`.
    pub(crate) fn into_outcomes(self) -> Vec<Outcome> {
        self.out
            .into_iter()
            .map(|o| {
                o.unwrap_or(Outcome::Unresolved {
                    reason: UnresolvedReason::Unconfirmed,
                    detail: Some("not processed".into()),
                })
            })
            .collect()
    }

    /// The outcomes in entry order, as a report.
    pub(crate) fn report(self, entries: &[Entry]) -> WriteReport {
        let mut r = WriteReport::new();
        for (e, o) in entries.iter().zip(self.into_outcomes()) {
            r.push(e, o);
        }
        r
    }

    /// Entries after the first write was sent see a cancellation as a failed outcome;
    /// before it, the whole call is `Err(Cancelled)` (nothing changed).
    pub(crate) fn cancelled(&mut self, cx: &Context, sent_any: bool) -> Result<bool> {
        if !cx.cancel.is_cancelled() {
            return Ok(false);
        }
        if !sent_any {
            return Err(Error::cancelled());
        }
        self.fill(&Outcome::failed(&Error::cancelled()));
        Ok(true)
    }
}

pub(crate) fn unsupported(detail: impl Into<String>) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unsupported,
        detail: Some(detail.into()),
    }
}

/// Marks entries whose payload is not `feature`'s or whose media type Trakt cannot hold
/// there; returns the positions of the rest.
pub(crate) fn valid(
    entries: &[Entry],
    feature: Feature,
    kinds: &[MediaType],
    slots: &mut Slots,
) -> Vec<usize> {
    let mut ok = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.feature() != feature {
            slots.set(
                i,
                unsupported(format!("a {} entry sent to {feature}", e.feature())),
            );
        } else if !kinds.contains(&e.item.kind) {
            slots.set(
                i,
                unsupported(format!("Trakt {feature} does not hold {}s", e.item.kind)),
            );
        } else {
            ok.push(i);
        }
    }
    ok
}

/// Finds which of Trakt's rows an entry's item is (exact key, strong ids, then aliases).
#[derive(Debug, Default)]
pub(crate) struct Matcher {
    index: AliasIndex,
    rows: HashMap<String, Vec<usize>>,
}

impl Matcher {
    pub(crate) fn new<'a>(items: impl IntoIterator<Item = &'a Item>) -> Self {
        let mut m = Matcher::default();
        for (i, item) in items.into_iter().enumerate() {
            let key = item.key();
            m.index.insert(&key, item);
            m.rows.entry(key).or_default().push(i);
        }
        m
    }

    /// Every row that is this title.
    pub(crate) fn all(&self, item: &Item) -> &[usize] {
        self.index
            .find(&item.key(), item)
            .and_then(|k| self.rows.get(k))
            .map_or(&[], Vec::as_slice)
    }

    /// The first row that is this title.
    pub(crate) fn find(&self, item: &Item) -> Option<usize> {
        self.all(item).first().copied()
    }
}

/// The JSON answer of a write, or the outcome for its entries when the answer cannot be
/// read (the write may have happened: never `Confirmed`).
pub(crate) fn answer(resp: &Response) -> std::result::Result<Value, Outcome> {
    resp.json::<Value>().map_err(|e| Outcome::Unresolved {
        reason: UnresolvedReason::Unconfirmed,
        detail: Some(format!("the answer could not be read: {e}")),
    })
}

/// Duplicates in one call: the first occurrence of each key is processed, later ones
/// copy its outcome (a second add of a confirmed item is "already present").
#[derive(Debug, Default)]
pub(crate) struct Dups {
    first: HashMap<String, usize>,
    dups: Vec<(usize, usize)>,
}

impl Dups {
    /// `true` if `i` is the first with `key`.
    pub(crate) fn first(&mut self, key: String, i: usize) -> bool {
        match self.first.get(&key) {
            Some(f) => {
                self.dups.push((i, *f));
                false
            }
            None => {
                self.first.insert(key, i);
                true
            }
        }
    }

    pub(crate) fn resolve(self, slots: &mut Slots, settled: Outcome) {
        for (d, f) in self.dups {
            let o = match slots.get(f) {
                Some(Outcome::Confirmed | Outcome::AlreadyPresent | Outcome::AlreadyAbsent) => {
                    settled.clone()
                }
                Some(o) => o.clone(),
                None => continue,
            };
            slots.set(d, o);
        }
    }
}
