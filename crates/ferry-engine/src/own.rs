//! Checkpoints moved by ferry's own writes.
//!
//! A provider's checkpoint moves with every change, ferry's writes included. Without care,
//! every run that writes would be followed by a full read that finds nothing new. Two
//! things prevent that without ever hiding someone else's change:
//!
//! - [`OwnWrites`]: around each write op the side's checkpoint is read again; when every
//!   move between the read before the snapshots and the last write is one of our ops, the
//!   feature commits the checkpoint after its writes (its baseline includes them).
//! - the own-writes log ([`record`], [`explained_by_own_adds`]): the checkpoint moves a
//!   feature made with *adds only*, kept per instance and feature in the state's key-value
//!   store, so another pair that uses that instance as a one-way target of watchlist or
//!   history (`source_deletes`) can tell "only ferry added to it" from a change. For such a
//!   pair, titles added to its target never create work: it adds what its target lacks and
//!   removes only what its source deleted.

use ferry_core::{CancelToken, Context, Emitter, Feature, InventoryOps, KvStore};
use serde::{Deserialize, Serialize};

use crate::config::{Mode, PairConfig, RemoveMode};

/// Whether a side's checkpoint moved only through one feature's own writes.
///
/// Before each write op the side's checkpoint is read again and must still be the one read
/// before the snapshots (or the one read after the previous op); after it, the new value is
/// expected. When the chain holds, the checkpoint after our writes is committed with the
/// baseline that includes them, so the next run is not a full read just because of our own
/// writes. Any break (a change by someone else, an unreadable checkpoint) commits the
/// checkpoint read before the snapshots, as before: the next run reads. A change made by
/// someone else *during* one write request is indistinguishable from ours; that window is
/// one request long.
#[derive(Debug)]
pub(crate) struct OwnWrites {
    /// The checkpoint read before the snapshots.
    start: Option<String>,
    expected: Option<String>,
    /// The side has a checkpoint for the feature.
    pub(crate) declared: bool,
    intact: bool,
    /// Writes were sent to this side.
    pub(crate) sent: bool,
    /// The chain saw at least one op through.
    moved: bool,
    /// Every op sent was an add.
    adds_only: bool,
}

impl OwnWrites {
    pub(crate) fn new(before_snapshots: Option<String>, declared: bool) -> Self {
        let declared = declared && before_snapshots.is_some();
        OwnWrites {
            start: before_snapshots.clone(),
            expected: before_snapshots,
            declared,
            intact: declared,
            sent: false,
            moved: false,
            adds_only: true,
        }
    }

    pub(crate) fn tracking(&self) -> bool {
        self.intact
    }

    pub(crate) fn before(&mut self, now: Option<String>) {
        if now.is_none() || now != self.expected {
            self.intact = false;
        }
    }

    /// An op of this kind was sent.
    pub(crate) fn sent(&mut self, add: bool) {
        self.sent = true;
        self.adds_only &= add;
    }

    pub(crate) fn after(&mut self, now: Option<String>) {
        match now {
            Some(cp) => {
                self.expected = Some(cp);
                self.moved = true;
            }
            None => self.intact = false,
        }
    }

    /// The checkpoint to commit when the chain held.
    pub(crate) fn settled(&self) -> Option<String> {
        (self.intact && self.moved)
            .then(|| self.expected.clone())
            .flatten()
    }

    /// The move our writes made, when it was adds only and the chain held.
    pub(crate) fn adds_transition(&self) -> Option<Transition> {
        if !self.adds_only {
            return None;
        }
        Some(Transition {
            from: self.start.clone()?,
            to: self.settled()?,
        })
    }
}

/// The provider's checkpoint for one feature right now; `None` when it cannot be read.
pub(crate) async fn checkpoint_now(
    p: &dyn InventoryOps,
    em: &Emitter,
    cancel: &CancelToken,
    feature: Feature,
) -> Option<String> {
    let cx = Context::new(
        em.with_redactions(p.secrets().iter().map(|s| s.expose().to_owned())),
        cancel.clone(),
    );
    p.activity(&cx, feature).await.ok().flatten()
}

/// A checkpoint move made by ferry's own adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Transition {
    pub(crate) from: String,
    pub(crate) to: String,
}

/// The key-value namespace of the own-writes log.
pub(crate) const NAMESPACE: &str = "engine.own_adds";
/// Moves kept per instance and feature; an older one is forgotten (one extra read).
const KEEP: usize = 32;

fn key(instance: &str, feature: Feature) -> String {
    format!("{instance}/{}", feature.as_str())
}

/// The moves ferry's adds made to `instance`'s `feature` checkpoint (oldest first). An
/// unreadable log is an empty one: nothing is explained, the pair reads.
pub(crate) fn load(kv: &dyn KvStore, instance: &str, feature: Feature) -> Vec<Transition> {
    kv.get(NAMESPACE, &key(instance, feature))
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Appends a move (keeping the last [`KEEP`]).
pub(crate) fn record(
    kv: &dyn KvStore,
    instance: &str,
    feature: Feature,
    t: Transition,
) -> ferry_core::Result<()> {
    let mut log = load(kv, instance, feature);
    log.retain(|x| x.from != t.from);
    log.push(t);
    if log.len() > KEEP {
        let extra = log.len() - KEEP;
        log.drain(..extra);
    }
    let text = serde_json::to_string(&log).unwrap_or_else(|_| "[]".into());
    kv.put(NAMESPACE, &key(instance, feature), &text)
}

/// Whether `to` is reached from `from` by moves of ferry's own adds alone.
pub(crate) fn explained_by_own_adds(log: &[Transition], from: &str, to: &str) -> bool {
    let mut cur = from;
    for _ in 0..=log.len() {
        if cur == to {
            return true;
        }
        match log.iter().rev().find(|t| t.from == cur) {
            Some(t) => cur = &t.to,
            None => return false,
        }
    }
    false
}

/// Whether titles added to side B of this pair can never give it work for this feature:
/// a one-way pair that adds what its target lacks and removes only what its source
/// deleted, on a feature whose entries have no payload to reconcile.
pub(crate) fn target_indifferent_to_adds(pair: &PairConfig, feature: Feature) -> bool {
    pair.mode == Mode::OneWay
        && pair.remove_mode == RemoveMode::SourceDeletes
        && matches!(feature, Feature::Watchlist | Feature::History)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(from: &str, to: &str) -> Transition {
        Transition {
            from: from.into(),
            to: to.into(),
        }
    }

    #[test]
    fn chains_of_own_adds_explain_a_move_and_nothing_else_does() {
        let log = vec![t("a", "b"), t("b", "c"), t("x", "y")];
        assert!(explained_by_own_adds(&log, "a", "a"));
        assert!(explained_by_own_adds(&log, "a", "c"));
        assert!(!explained_by_own_adds(&log, "a", "y"));
        assert!(!explained_by_own_adds(&log, "c", "a"), "never backwards");
        assert!(!explained_by_own_adds(&log, "q", "c"));
        let cyclic = vec![t("a", "b"), t("b", "a")];
        assert!(!explained_by_own_adds(&cyclic, "a", "z"));
    }

    #[test]
    fn the_log_keeps_the_latest_moves() {
        let kv = ferry_core::MemoryKvStore::new();
        for i in 0..40 {
            record(
                &kv,
                "trakt",
                Feature::History,
                t(&i.to_string(), &(i + 1).to_string()),
            )
            .unwrap();
        }
        let log = load(&kv, "trakt", Feature::History);
        assert_eq!(log.len(), KEEP);
        assert!(explained_by_own_adds(&log, "8", "40"));
        assert!(
            !explained_by_own_adds(&log, "0", "40"),
            "forgotten: read once"
        );
        assert!(load(&kv, "trakt", Feature::Watchlist).is_empty());
    }

    #[test]
    fn only_chains_of_adds_that_held_are_recorded() {
        let mut o = OwnWrites::new(Some("a".into()), true);
        o.before(Some("a".into()));
        o.sent(true);
        o.after(Some("b".into()));
        assert_eq!(o.adds_transition(), Some(t("a", "b")));
        o.before(Some("b".into()));
        o.sent(false);
        o.after(Some("c".into()));
        assert_eq!(o.settled().as_deref(), Some("c"));
        assert_eq!(o.adds_transition(), None, "a removal or update was sent");
        let mut broken = OwnWrites::new(Some("a".into()), true);
        broken.before(Some("z".into()));
        broken.sent(true);
        assert_eq!(broken.settled(), None);
        assert_eq!(broken.adds_transition(), None);
    }
}
