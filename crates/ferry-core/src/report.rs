//! Per-item write outcomes. Counts are always derived from these, never from a
//! provider's bare "count" claim (CrossWatch's applier had to guess; ferry does not).

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::feature::Feature;
use crate::item::Entry;

/// Why an item could not be written, in terms a user can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnresolvedReason {
    /// The provider has no such title (no match for any of its ids).
    NotFound,
    /// An account cap was reached (Trakt 420): the list is full.
    AccountLimit,
    /// The provider cannot hold this kind of item in this feature.
    Unsupported,
    /// The provider was down; the write was not attempted.
    ProviderDown,
    /// The provider's list could not be read whole, so the title could not be looked up
    /// on it; the write was not attempted. Not an outage: the service answered.
    PartialRead,
    /// A rate-limit wait would have exceeded the run's budget; deferred to the next run.
    RateLimited,
    /// The service refused the write because of its own state (409).
    Conflict,
    /// The account is locked (Trakt 423).
    Locked,
    /// The service accepted the request but did not confirm this item.
    Unconfirmed,
}

impl UnresolvedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnresolvedReason::NotFound => "not_found",
            UnresolvedReason::AccountLimit => "account_limit",
            UnresolvedReason::Unsupported => "unsupported",
            UnresolvedReason::ProviderDown => "provider_down",
            UnresolvedReason::PartialRead => "partial_read",
            UnresolvedReason::RateLimited => "rate_limited",
            UnresolvedReason::Conflict => "conflict",
            UnresolvedReason::Locked => "locked",
            UnresolvedReason::Unconfirmed => "unconfirmed",
        }
    }
}

/// What happened to one item of a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The provider confirmed the write for this item.
    Confirmed,
    /// `add`: the item was already there with this payload; nothing changed.
    AlreadyPresent,
    /// `remove`: the item was not there; nothing changed.
    AlreadyAbsent,
    /// Not written, for a reason that a later run (or the user) may resolve.
    Unresolved {
        reason: UnresolvedReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The write failed with an error.
    Failed { kind: ErrorKind, message: String },
}

impl Outcome {
    pub fn unresolved(reason: UnresolvedReason) -> Self {
        Outcome::Unresolved {
            reason,
            detail: None,
        }
    }

    pub fn failed(err: &Error) -> Self {
        Outcome::Failed {
            kind: err.kind(),
            message: err.to_string(),
        }
    }

    /// The outcome of one item whose write failed with `err`: what a later run may resolve
    /// (not found, conflict, rate limit, server down, locked, account limit) is
    /// `Unresolved`, anything else `Failed`.
    pub fn from_error(err: &Error) -> Self {
        let reason = match err.kind() {
            ErrorKind::NotFound => UnresolvedReason::NotFound,
            ErrorKind::Conflict => UnresolvedReason::Conflict,
            ErrorKind::RateLimited => UnresolvedReason::RateLimited,
            ErrorKind::Unavailable => UnresolvedReason::ProviderDown,
            ErrorKind::Locked => UnresolvedReason::Locked,
            ErrorKind::AccountLimit => UnresolvedReason::AccountLimit,
            _ => return Outcome::failed(err),
        };
        Outcome::Unresolved {
            reason,
            detail: Some(err.to_string()),
        }
    }

    /// An entry the provider cannot write (a media type, an id or a payload the service
    /// does not take): what is missing, for the user.
    pub fn unsupported(detail: impl Into<String>) -> Self {
        Outcome::Unresolved {
            reason: UnresolvedReason::Unsupported,
            detail: Some(detail.into()),
        }
    }

    /// `AlreadyPresent` for an add, `AlreadyAbsent` for a removal: the entry is already
    /// as the write wants it.
    pub fn already(add: bool) -> Self {
        if add {
            Outcome::AlreadyPresent
        } else {
            Outcome::AlreadyAbsent
        }
    }

    /// An entry whose payload belongs to another feature than the one being written.
    pub fn wrong_payload(e: &Entry, feature: Feature) -> Self {
        Outcome::Unresolved {
            reason: UnresolvedReason::Unsupported,
            detail: Some(format!("a {} entry sent to {feature}", e.feature())),
        }
    }

    /// An entry that matches nothing the provider read. On a complete read that is "not
    /// found" (add, with `not_found` as the detail) or "already absent" (remove); after a
    /// partial read (`partial` holds its reasons) it is unknown, so the write is deferred
    /// rather than reported settled.
    pub fn unmatched(partial: &[String], add: bool, not_found: &str) -> Self {
        match partial.first() {
            Some(reason) => Outcome::Unresolved {
                reason: UnresolvedReason::PartialRead,
                detail: Some(format!("the server could not be read whole ({reason})")),
            },
            None if add => Outcome::Unresolved {
                reason: UnresolvedReason::NotFound,
                detail: Some(not_found.to_owned()),
            },
            None => Outcome::AlreadyAbsent,
        }
    }

    /// Confirmed or already in the requested state: the intent holds on the provider.
    pub fn is_settled(&self) -> bool {
        matches!(
            self,
            Outcome::Confirmed | Outcome::AlreadyPresent | Outcome::AlreadyAbsent
        )
    }
}

/// The outcome for one item, identified by the [`Entry::key`] of the entry sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemOutcome {
    pub key: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The per-item report of one `add` or `remove` call: exactly one outcome per entry sent,
/// in the order sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReport {
    pub items: Vec<ItemOutcome>,
}

impl WriteReport {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, entry: &Entry, outcome: Outcome) {
        self.items.push(ItemOutcome {
            key: entry.key(),
            outcome,
        });
    }

    pub fn push_key(&mut self, key: impl Into<String>, outcome: Outcome) {
        self.items.push(ItemOutcome {
            key: key.into(),
            outcome,
        });
    }

    /// The same outcome for every entry (a whole batch failed, or was skipped).
    pub fn all(entries: &[Entry], outcome: Outcome) -> Self {
        WriteReport {
            items: entries
                .iter()
                .map(|e| ItemOutcome {
                    key: e.key(),
                    outcome: outcome.clone(),
                })
                .collect(),
        }
    }

    pub fn extend(&mut self, other: WriteReport) {
        self.items.extend(other.items);
    }

    pub fn outcome(&self, key: &str) -> Option<&Outcome> {
        self.items.iter().find(|i| i.key == key).map(|i| &i.outcome)
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.items.iter().filter(|i| f(&i.outcome)).count()
    }

    pub fn confirmed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Confirmed))
    }

    pub fn unchanged(&self) -> usize {
        self.count(|o| matches!(o, Outcome::AlreadyPresent | Outcome::AlreadyAbsent))
    }

    pub fn unresolved(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Unresolved { .. }))
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{IdKind, Ids};
    use crate::item::Item;

    #[test]
    fn counts_come_from_outcomes() {
        let e =
            |n: &str| Entry::watchlist(Item::movie("M", 2000, Ids::new().with(IdKind::Tmdb, n)));
        let mut r = WriteReport::new();
        r.push(&e("1"), Outcome::Confirmed);
        r.push(&e("2"), Outcome::AlreadyPresent);
        r.push(&e("3"), Outcome::unresolved(UnresolvedReason::AccountLimit));
        r.push(
            &e("4"),
            Outcome::Failed {
                kind: ErrorKind::Unavailable,
                message: "x".into(),
            },
        );
        assert_eq!(
            (r.confirmed(), r.unchanged(), r.unresolved(), r.failed()),
            (1, 1, 1, 1)
        );
        assert_eq!(
            r.outcome("tmdb:3"),
            Some(&Outcome::unresolved(UnresolvedReason::AccountLimit))
        );
        let json = serde_json::to_string(&r.items[2]).unwrap();
        assert_eq!(
            json,
            r#"{"key":"tmdb:3","outcome":"unresolved","reason":"account_limit"}"#
        );
    }

    #[test]
    fn errors_become_outcomes() {
        let down = Error::new(ErrorKind::Unavailable, "503");
        assert!(matches!(
            Outcome::from_error(&down),
            Outcome::Unresolved {
                reason: UnresolvedReason::ProviderDown,
                ..
            }
        ));
        assert!(down.stops_batch());
        let bad = Error::new(ErrorKind::InvalidInput, "400");
        assert!(matches!(
            Outcome::from_error(&bad),
            Outcome::Failed {
                kind: ErrorKind::InvalidInput,
                ..
            }
        ));
        assert!(!bad.stops_batch());
        assert!(
            matches!(
                Outcome::unmatched(&["page 2 failed".into()], false, "x"),
                Outcome::Unresolved {
                    reason: UnresolvedReason::PartialRead,
                    ..
                }
            ),
            "a miss on a partial read is never 'already absent'"
        );
        assert_eq!(Outcome::unmatched(&[], false, "x"), Outcome::AlreadyAbsent);
    }
}
