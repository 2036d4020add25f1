//! Turning per-item write errors into outcomes, and stopping a batch on errors that will
//! fail every remaining item too.

use ferry_core::{Entry, Error, ErrorKind, Outcome, UnresolvedReason, WriteReport};

/// The outcome of one item whose write failed with `err`.
pub(crate) fn outcome_for(err: &Error) -> Outcome {
    let unresolved = |reason, err: &Error| Outcome::Unresolved {
        reason,
        detail: Some(err.to_string()),
    };
    match err.kind() {
        ErrorKind::NotFound => unresolved(UnresolvedReason::NotFound, err),
        ErrorKind::Conflict => unresolved(UnresolvedReason::Conflict, err),
        ErrorKind::RateLimited => unresolved(UnresolvedReason::RateLimited, err),
        ErrorKind::Unavailable => unresolved(UnresolvedReason::ProviderDown, err),
        ErrorKind::Locked => unresolved(UnresolvedReason::Locked, err),
        ErrorKind::AccountLimit => unresolved(UnresolvedReason::AccountLimit, err),
        _ => Outcome::failed(err),
    }
}

/// Errors after which the rest of a batch is not attempted: the service is down, asked
/// us to slow down, refused the credentials, or the run was cancelled.
pub(crate) fn stops_batch(err: &Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::Auth | ErrorKind::Unavailable | ErrorKind::RateLimited | ErrorKind::Cancelled
    )
}

/// One outcome per entry, collected out of order and reported in order.
#[derive(Debug)]
pub(crate) struct Outcomes {
    slots: Vec<Option<Outcome>>,
}

impl Outcomes {
    pub(crate) fn new(n: usize) -> Self {
        Outcomes {
            slots: vec![None; n],
        }
    }

    pub(crate) fn set(&mut self, i: usize, o: Outcome) {
        self.slots[i] = Some(o);
    }

    /// Gives every entry without an outcome yet this one (a batch stopped early).
    pub(crate) fn fill(&mut self, o: &Outcome) {
        for s in self.slots.iter_mut().filter(|s| s.is_none()) {
            *s = Some(o.clone());
        }
    }

    pub(crate) fn report(self, entries: &[Entry]) -> WriteReport {
        let mut r = WriteReport::new();
        for (e, o) in entries.iter().zip(self.slots) {
            r.push(
                e,
                o.unwrap_or(Outcome::Unresolved {
                    reason: UnresolvedReason::Unconfirmed,
                    detail: Some("no outcome was recorded".into()),
                }),
            );
        }
        r
    }
}

/// The outcome for an entry whose payload does not belong to the feature being written.
pub(crate) fn wrong_payload(e: &Entry, feature: ferry_core::Feature) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unsupported,
        detail: Some(format!("a {} entry sent to {feature}", e.feature())),
    }
}

/// The outcome for an entry that matches nothing the provider read. On a complete read
/// that is "not found" (add) or "already absent" (remove); on a partial read it is
/// unknown, so the write is deferred rather than reported settled.
pub(crate) fn unmatched(partial: &[String], add: bool) -> Outcome {
    match partial.first() {
        Some(reason) => Outcome::Unresolved {
            reason: UnresolvedReason::ProviderDown,
            detail: Some(format!("the server could not be read whole ({reason})")),
        },
        None if add => Outcome::Unresolved {
            reason: UnresolvedReason::NotFound,
            detail: Some("no item in the Plex library has any of these ids".into()),
        },
        None => Outcome::AlreadyAbsent,
    }
}
