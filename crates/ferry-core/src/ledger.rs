//! One write ledger for services whose change checkpoints cannot see ferry's own writes
//! (Jellyfin, Emby, Plex): a counter of write calls per (instance, feature) in the
//! provider's key-value store, appended to the service's checkpoint, so a write ferry
//! makes through one pair moves the checkpoint every other pair compares with.

use std::sync::Arc;

use crate::error::Result;
use crate::feature::Feature;
use crate::ops::Context;
use crate::report::{Outcome, UnresolvedReason, WriteReport};
use crate::store::KvStore;

/// The write counters of one provider instance.
#[derive(Debug, Clone)]
pub struct WriteLedger {
    kv: Arc<dyn KvStore>,
    namespace: String,
    instance: String,
}

impl WriteLedger {
    /// Counters under namespace `<provider>.writes`, keyed `<instance>/<feature>`.
    pub fn new(kv: Arc<dyn KvStore>, provider: &str, instance: &str) -> Self {
        WriteLedger {
            kv,
            namespace: format!("{provider}.writes"),
            instance: instance.to_owned(),
        }
    }

    fn key(&self, feature: Feature) -> String {
        format!("{}/{}", self.instance, feature.as_str())
    }

    /// How many write calls this instance has sent for `feature`.
    pub fn count(&self, feature: Feature) -> u64 {
        self.kv
            .get(&self.namespace, &self.key(feature))
            .ok()
            .flatten()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Counts one write call that may have changed `feature` (best effort: a failure to
    /// record is a warning, and the feature is then read in full as if unchanged).
    pub fn note(&self, cx: &Context, feature: Feature) {
        let n = self.count(feature).wrapping_add(1);
        if let Err(e) = self
            .kv
            .put(&self.namespace, &self.key(feature), &n.to_string())
        {
            cx.emitter.warn(&format!(
                "{}: could not record a write for the {feature} checkpoint: {e}",
                self.instance
            ));
        }
    }

    /// Counts a finished `add`/`remove` call if it may have changed the service: an
    /// error (other than cancellation), or any outcome but "nothing to do".
    pub fn note_result(&self, cx: &Context, feature: Feature, r: &Result<WriteReport>) {
        let touched = match r {
            Err(e) => e.kind() != crate::error::ErrorKind::Cancelled,
            Ok(rep) => rep.items.iter().any(|i| {
                matches!(
                    i.outcome,
                    Outcome::Confirmed
                        | Outcome::Failed { .. }
                        | Outcome::Unresolved {
                            reason: UnresolvedReason::Unconfirmed,
                            ..
                        }
                )
            }),
        };
        if touched {
            self.note(cx, feature);
        }
    }

    /// The service's checkpoint with this instance's counter appended.
    pub fn stamp(&self, feature: Feature, server: &str) -> String {
        format!("{server}|w{}", self.count(feature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};
    use crate::store::MemoryKvStore;

    #[test]
    fn only_calls_that_may_have_changed_the_service_move_the_stamp() {
        let l = WriteLedger::new(Arc::new(MemoryKvStore::new()), "jellyfin", "jf");
        let cx = Context::default();
        let f = Feature::Watchlist;
        assert_eq!(l.stamp(f, "a"), "a|w0");
        let mut nothing = WriteReport::new();
        nothing.push_key("k", Outcome::AlreadyPresent);
        l.note_result(&cx, f, &Ok(nothing));
        l.note_result(&cx, f, &Err(Error::cancelled()));
        assert_eq!(l.count(f), 0);
        let mut wrote = WriteReport::new();
        wrote.push_key("k", Outcome::Confirmed);
        l.note_result(&cx, f, &Ok(wrote));
        l.note_result(&cx, f, &Err(Error::new(ErrorKind::Unavailable, "503")));
        assert_eq!(l.stamp(f, "a"), "a|w2");
        assert_eq!(l.count(Feature::History), 0);
    }
}
