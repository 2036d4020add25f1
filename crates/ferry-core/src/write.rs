//! The batch writer (OpenDAL's `BatchDelete`, for watch state): one outcome per entry,
//! in input order, whatever happens on the way.
//!
//! A provider drives it: [`BatchWriter::next_chunk`] hands out the indices of the next
//! chunk of entries still to send (declared batch size; 1 for item-by-item services),
//! the provider sends them, and [`BatchWriter::record`] takes the answer:
//!
//! ```text
//! let mut w = BatchWriter::new(cx, entries);
//! for (i, e) in entries.iter().enumerate() { if bad(e) { w.settle(i, outcome) } }
//! while let Some(chunk) = w.next_chunk(batch_size)? {
//!     let answer = send(&chunk).await;          // Result<ChunkAnswer>
//!     w.record(&chunk, answer);
//! }
//! Ok(w.finish())
//! ```
//!
//! The one policy: an error becomes each chunk entry's outcome through
//! [`Outcome::from_error`]; an error that stops the batch (auth, rate limit, the service
//! down, cancellation: [`Error::stops_batch`]) settles every entry not yet sent the same
//! way and ends the loop; cancellation before anything was sent is an error, after it the
//! rest is settled as failed. An entry the answer does not cover, or one only "accepted"
//! and never confirmed, is `Unresolved(Unconfirmed)`, never `Confirmed`.

use crate::error::{Error, Result};
use crate::identity::Ids;
use crate::item::Entry;
use crate::ops::Context;
use crate::report::{Outcome, UnresolvedReason, WriteReport};
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Pending,
    /// Sent and accepted; waiting for a confirmation ([`BatchWriter::confirm`]).
    Sent,
    Done(Outcome),
}

/// What the service answered for one chunk, entry by entry (in chunk order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkAnswer {
    items: Vec<Slot>,
}

impl ChunkAnswer {
    /// An answer that covers nothing yet (`len` entries).
    pub fn new(len: usize) -> Self {
        ChunkAnswer {
            items: vec![Slot::Pending; len],
        }
    }

    /// Every entry with the same outcome.
    pub fn all(len: usize, o: Outcome) -> Self {
        ChunkAnswer {
            items: vec![Slot::Done(o); len],
        }
    }

    /// Every entry accepted, each to be confirmed by a re-read ([`BatchWriter::confirm`]).
    pub fn accepted(len: usize) -> Self {
        ChunkAnswer {
            items: vec![Slot::Sent; len],
        }
    }

    pub fn set(&mut self, j: usize, o: Outcome) {
        if let Some(s) = self.items.get_mut(j) {
            *s = Slot::Done(o);
        }
    }

    /// An answer that counts what the service did (`done`: written, or already so) and
    /// echoes what it did not find (`echoed`), as the Trakt-style `/sync` APIs answer:
    /// when the count accounts for every entry and nothing was echoed, each is confirmed;
    /// otherwise each is only accepted (a re-read confirms it: see
    /// [`BatchWriter::awaits_confirmation`]) and the echoed ones are not found.
    pub fn counted(chunk: &[&Entry], done: u64, echoed: &[Ids]) -> Self {
        let mut a = if echoed.is_empty() && done == chunk.len() as u64 {
            ChunkAnswer::all(chunk.len(), Outcome::Confirmed)
        } else {
            ChunkAnswer::accepted(chunk.len())
        };
        a.not_found(chunk, echoed);
        a
    }

    /// The service echoed these ids as not found: each chunk entry sharing one of its
    /// own ids with one of them is `Unresolved(NotFound)`. A show's ids count only for
    /// an entry that has no ids of its own (an episode sent as show + numbers): one
    /// unknown episode must not take its siblings with it.
    pub fn not_found(&mut self, chunk: &[&Entry], echoed: &[Ids]) {
        for (j, e) in chunk.iter().enumerate() {
            let own = if e.item.ids.is_empty() {
                &e.item.show_ids
            } else {
                &e.item.ids
            };
            let hit = echoed
                .iter()
                .any(|ids| ids.iter().any(|(k, v)| own.get(k) == Some(v)));
            if hit {
                self.set(
                    j,
                    Outcome::Unresolved {
                        reason: UnresolvedReason::NotFound,
                        detail: Some("the service echoed it as not found".into()),
                    },
                );
            }
        }
    }
}

/// One `add` or `remove` call's outcomes, filled chunk by chunk.
#[derive(Debug)]
pub struct BatchWriter<'a> {
    cx: &'a Context,
    entries: &'a [Entry],
    slots: Vec<Slot>,
    next: usize,
    sent_any: bool,
    stopped: bool,
}

impl<'a> BatchWriter<'a> {
    pub fn new(cx: &'a Context, entries: &'a [Entry]) -> Self {
        BatchWriter {
            cx,
            entries,
            slots: vec![Slot::Pending; entries.len()],
            next: 0,
            sent_any: false,
            stopped: false,
        }
    }

    pub fn entries(&self) -> &'a [Entry] {
        self.entries
    }

    /// Settles entry `i` without sending it (a wrong payload, nothing to do, unmatched).
    pub fn settle(&mut self, i: usize, o: Outcome) {
        if let Some(s) = self.slots.get_mut(i) {
            *s = Slot::Done(o);
        }
    }

    pub fn is_settled(&self, i: usize) -> bool {
        matches!(self.slots.get(i), Some(Slot::Done(_)))
    }

    /// The next chunk of at most `size` entries still to send, as indices; `None` when
    /// all are sent or the batch stopped. Checks cancellation first.
    pub fn next_chunk(&mut self, size: usize) -> Result<Option<Vec<usize>>> {
        if self.stopped {
            return Ok(None);
        }
        if let Err(e) = self.cx.check_cancelled() {
            if !self.sent_any {
                return Err(e);
            }
            self.stop(&e);
            return Ok(None);
        }
        let mut chunk = Vec::new();
        while self.next < self.slots.len() && chunk.len() < size.max(1) {
            if self.slots[self.next] == Slot::Pending {
                chunk.push(self.next);
            }
            self.next += 1;
        }
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    /// The entries of a chunk, in order.
    pub fn chunk_entries(&self, chunk: &[usize]) -> Vec<&'a Entry> {
        chunk.iter().map(|i| &self.entries[*i]).collect()
    }

    /// Takes the service's answer for `chunk`.
    pub fn record(&mut self, chunk: &[usize], answer: Result<ChunkAnswer>) {
        self.sent_any = true;
        match answer {
            Ok(a) => {
                for (j, i) in chunk.iter().enumerate() {
                    self.slots[*i] = match a.items.get(j) {
                        Some(Slot::Done(o)) => Slot::Done(o.clone()),
                        Some(Slot::Sent) => Slot::Sent,
                        _ => Slot::Done(unconfirmed("the service's answer did not cover it")),
                    };
                }
            }
            Err(e) => {
                let o = Outcome::from_error(&e);
                for i in chunk {
                    self.slots[*i] = Slot::Done(o.clone());
                }
                if e.stops_batch() {
                    self.stop(&e);
                }
            }
        }
    }

    /// Item-by-item: the outcome (or error) of writing entry `i` alone.
    pub fn record_one(&mut self, i: usize, r: Result<Outcome>) {
        self.record(&[i], r.map(|o| ChunkAnswer::all(1, o)));
    }

    /// Whether some entry was accepted and waits for a confirmation by re-read
    /// ([`BatchWriter::confirm`]).
    pub fn awaits_confirmation(&self) -> bool {
        self.slots.contains(&Slot::Sent)
    }

    /// Whether an error stopped the batch.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    fn stop(&mut self, e: &Error) {
        self.stopped = true;
        let o = Outcome::from_error(e);
        for s in self.slots.iter_mut().filter(|s| **s == Slot::Pending) {
            *s = Slot::Done(o.clone());
        }
    }

    /// Confirms accepted entries against a re-read after the writes: an `add` is
    /// confirmed when the entry is there, a `remove` when it is gone; anything else
    /// stays unconfirmed. `present(entry)` answers from the re-read.
    pub fn confirm(&mut self, add: bool, mut present: impl FnMut(&Entry) -> bool) {
        for (i, s) in self.slots.iter_mut().enumerate() {
            if *s == Slot::Sent {
                let held = present(&self.entries[i]);
                *s = Slot::Done(if held == add {
                    Outcome::Confirmed
                } else {
                    unconfirmed("a re-read after the write does not show it")
                });
            }
        }
    }

    /// [`BatchWriter::confirm`] against a snapshot read after the writes. After a
    /// partial re-read an absent entry proves nothing, so a remove is never confirmed
    /// from one.
    pub fn confirm_with(&mut self, add: bool, reread: &Snapshot) {
        let whole = reread.is_complete();
        self.confirm(add, |e| {
            let here = reread.contains_key(&e.key());
            if add { here } else { here || !whole }
        });
    }

    /// The report: one outcome per entry, in input order.
    pub fn finish(self) -> WriteReport {
        let mut r = WriteReport::new();
        for (e, s) in self.entries.iter().zip(self.slots) {
            r.push(
                e,
                match s {
                    Slot::Done(o) => o,
                    Slot::Sent => unconfirmed("accepted but never confirmed"),
                    Slot::Pending => unconfirmed("no outcome was recorded"),
                },
            );
        }
        r
    }
}

fn unconfirmed(detail: &str) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unconfirmed,
        detail: Some(detail.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::feature::Feature;
    use crate::identity::IdKind;
    use crate::item::Item;

    fn e(n: u32) -> Entry {
        Entry::watchlist(Item::movie(
            "M",
            2000,
            Ids::new().with(IdKind::Tmdb, &n.to_string()),
        ))
    }

    #[test]
    fn a_counted_answer_confirms_only_when_the_count_covers_the_chunk() {
        let cx = Context::default();
        let entries: Vec<Entry> = (1..=3).map(e).collect();
        let mut w = BatchWriter::new(&cx, &entries);
        let c = w.next_chunk(3).unwrap().unwrap();
        w.record(&c, Ok(ChunkAnswer::counted(&w.chunk_entries(&c), 3, &[])));
        assert!(!w.awaits_confirmation());
        assert_eq!(w.finish().confirmed(), 3);
        let mut w = BatchWriter::new(&cx, &entries);
        let c = w.next_chunk(3).unwrap().unwrap();
        let gone = [Ids::new().with(IdKind::Tmdb, "2")];
        w.record(&c, Ok(ChunkAnswer::counted(&w.chunk_entries(&c), 2, &gone)));
        assert!(w.awaits_confirmation(), "the count does not say which two");
        w.confirm(true, |x| x.item.ids.get(IdKind::Tmdb) == Some("1"));
        let r = w.finish();
        assert_eq!(r.items[0].outcome, Outcome::Confirmed);
        assert!(matches!(
            r.items[1].outcome,
            Outcome::Unresolved {
                reason: UnresolvedReason::NotFound,
                ..
            }
        ));
        assert!(matches!(
            r.items[2].outcome,
            Outcome::Unresolved {
                reason: UnresolvedReason::Unconfirmed,
                ..
            }
        ));
    }

    #[test]
    fn chunks_follow_the_batch_size_and_skip_settled_entries() {
        let cx = Context::default();
        let entries: Vec<Entry> = (1..=7).map(e).collect();
        let mut w = BatchWriter::new(&cx, &entries);
        w.settle(1, Outcome::AlreadyPresent);
        let mut chunks = Vec::new();
        while let Some(c) = w.next_chunk(3).unwrap() {
            let n = c.len();
            w.record(&c, Ok(ChunkAnswer::all(n, Outcome::Confirmed)));
            chunks.push(c);
        }
        assert_eq!(chunks, vec![vec![0, 2, 3], vec![4, 5, 6]]);
        let r = w.finish();
        assert_eq!(r.len(), 7);
        assert_eq!(r.items[1].outcome, Outcome::AlreadyPresent);
        assert_eq!(r.confirmed(), 6);
    }

    #[test]
    fn an_error_that_stops_the_batch_settles_the_rest_and_others_do_not() {
        let cx = Context::default();
        let entries: Vec<Entry> = (1..=6).map(e).collect();
        let mut w = BatchWriter::new(&cx, &entries);
        let c = w.next_chunk(2).unwrap().unwrap();
        w.record(&c, Err(Error::new(ErrorKind::InvalidInput, "400")));
        let c = w.next_chunk(2).unwrap().unwrap();
        w.record(&c, Err(Error::new(ErrorKind::RateLimited, "429")));
        assert!(w.next_chunk(2).unwrap().is_none());
        let r = w.finish();
        assert!(matches!(
            r.items[0].outcome,
            Outcome::Failed {
                kind: ErrorKind::InvalidInput,
                ..
            }
        ));
        for i in 2..6 {
            assert!(
                matches!(
                    r.items[i].outcome,
                    Outcome::Unresolved {
                        reason: UnresolvedReason::RateLimited,
                        ..
                    }
                ),
                "{i}: {:?}",
                r.items[i].outcome
            );
        }
    }

    #[test]
    fn an_unknown_episode_does_not_take_its_siblings_with_it() {
        let show = Ids::new().with(IdKind::Tmdb, "7");
        let ep = |n: u32, own: &str| {
            let mut it = Item::episode("S", show.clone(), 1, n);
            it.ids = Ids::new().with(IdKind::Tmdb, own);
            Entry::watchlist(it)
        };
        let bare = Entry::watchlist(Item::episode("S", show.clone(), 1, 3));
        let chunk = [ep(1, "101"), ep(2, "102"), bare];
        let refs: Vec<&Entry> = chunk.iter().collect();
        let mut a = ChunkAnswer::new(3);
        a.not_found(&refs, &[Ids::new().with(IdKind::Tmdb, "101")]);
        assert!(matches!(a.items[0], Slot::Done(Outcome::Unresolved { .. })));
        assert!(
            !matches!(a.items[1], Slot::Done(_)),
            "a sibling is not echoed"
        );
        // The show echoed: only the entry known by the show's ids alone is not found.
        let mut a = ChunkAnswer::new(3);
        a.not_found(&refs, std::slice::from_ref(&show));
        assert!(!matches!(a.items[0], Slot::Done(_)));
        assert!(matches!(a.items[2], Slot::Done(Outcome::Unresolved { .. })));
    }

    #[test]
    fn not_found_echoes_and_uncovered_entries_are_never_confirmed() {
        let cx = Context::default();
        let entries: Vec<Entry> = (1..=3).map(e).collect();
        let mut w = BatchWriter::new(&cx, &entries);
        let c = w.next_chunk(10).unwrap().unwrap();
        let mut a = ChunkAnswer::new(3);
        a.set(0, Outcome::Confirmed);
        a.not_found(&w.chunk_entries(&c), &[Ids::new().with(IdKind::Tmdb, "2")]);
        w.record(&c, Ok(a));
        let r = w.finish();
        assert_eq!(r.items[0].outcome, Outcome::Confirmed);
        assert!(matches!(
            r.items[1].outcome,
            Outcome::Unresolved {
                reason: UnresolvedReason::NotFound,
                ..
            }
        ));
        assert!(matches!(
            r.items[2].outcome,
            Outcome::Unresolved {
                reason: UnresolvedReason::Unconfirmed,
                ..
            }
        ));
    }

    #[test]
    fn accepted_entries_are_confirmed_only_by_a_reread() {
        let cx = Context::default();
        let entries: Vec<Entry> = (1..=2).map(e).collect();
        let mut w = BatchWriter::new(&cx, &entries);
        let c = w.next_chunk(10).unwrap().unwrap();
        w.record(&c, Ok(ChunkAnswer::accepted(2)));
        let reread = Snapshot::committed_baseline(Feature::Watchlist, [e(1)]);
        w.confirm_with(true, &reread);
        let r = w.finish();
        assert_eq!(r.items[0].outcome, Outcome::Confirmed);
        assert!(matches!(
            r.items[1].outcome,
            Outcome::Unresolved {
                reason: UnresolvedReason::Unconfirmed,
                ..
            }
        ));
    }

    #[test]
    fn cancellation_is_an_error_before_any_write_and_settles_the_rest_after() {
        let cx = Context::default();
        let entries: Vec<Entry> = (1..=3).map(e).collect();
        cx.cancel.cancel();
        let mut w = BatchWriter::new(&cx, &entries);
        assert_eq!(w.next_chunk(1).unwrap_err().kind(), ErrorKind::Cancelled);
        let cx = Context::default();
        let mut w = BatchWriter::new(&cx, &entries);
        let c = w.next_chunk(1).unwrap().unwrap();
        w.record_one(c[0], Ok(Outcome::Confirmed));
        cx.cancel.cancel();
        assert!(w.next_chunk(1).unwrap().is_none());
        let r = w.finish();
        assert_eq!(r.items[0].outcome, Outcome::Confirmed);
        assert!(matches!(
            r.items[2].outcome,
            Outcome::Failed {
                kind: ErrorKind::Cancelled,
                ..
            }
        ));
    }
}
