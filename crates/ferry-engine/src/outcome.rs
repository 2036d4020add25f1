//! What a write is and what became of it: the kind of a write op and the per-item
//! outcomes of one op against one target. Below both `apply` (which produces them) and
//! `commit` (which turns them into state), so neither depends on the other.

use std::collections::BTreeMap;

use ferry_core::{Entry, ErrorKind, Outcome, UnresolvedReason};
use ferry_state::UnresolvedOp;
use serde::{Deserialize, Serialize};

/// The kind of a settled write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteKind {
    Add,
    Update,
    Remove,
}

impl WriteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteKind::Add => "add",
            WriteKind::Update => "update",
            WriteKind::Remove => "remove",
        }
    }

    /// The op an unsettled write of this kind is recorded under.
    pub(crate) fn unresolved_op(self) -> UnresolvedOp {
        match self {
            WriteKind::Add => UnresolvedOp::Add,
            WriteKind::Update => UnresolvedOp::Update,
            WriteKind::Remove => UnresolvedOp::Remove,
        }
    }
}

/// The outcome of one op against one target.
#[derive(Debug, Default)]
pub(crate) struct OpResult {
    pub(crate) items: Vec<(Entry, Outcome)>,
}

impl OpResult {
    pub(crate) fn settled(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.items
            .iter()
            .filter(|(_, o)| o.is_settled())
            .map(|(e, _)| e)
    }

    pub(crate) fn confirmed(&self) -> usize {
        self.items
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Confirmed))
            .count()
    }

    pub(crate) fn unchanged(&self) -> usize {
        self.items
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::AlreadyPresent | Outcome::AlreadyAbsent))
            .count()
    }

    pub(crate) fn unresolved_by_reason(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (_, o) in &self.items {
            if let Some(r) = reason_of(o) {
                *m.entry(r).or_default() += 1;
            }
        }
        m
    }
}

/// The reason string an unsettled outcome is recorded under.
pub(crate) fn reason_of(o: &Outcome) -> Option<String> {
    match o {
        Outcome::Confirmed | Outcome::AlreadyPresent | Outcome::AlreadyAbsent => None,
        Outcome::Unresolved { reason, .. } => Some(reason.as_str().to_owned()),
        Outcome::Failed { kind, .. } => Some(format!("failed:{kind}")),
    }
}

pub(crate) fn detail_of(o: &Outcome) -> Option<String> {
    match o {
        Outcome::Unresolved { detail, .. } => detail.clone(),
        Outcome::Failed { message, .. } => Some(message.clone()),
        _ => None,
    }
}

/// Whether a failed write says something about the item (counts toward the blackbox),
/// rather than about the service being unavailable.
pub(crate) fn counts_as_failure(o: &Outcome) -> bool {
    match o {
        Outcome::Unresolved { reason, .. } => matches!(
            reason,
            UnresolvedReason::NotFound
                | UnresolvedReason::Unsupported
                | UnresolvedReason::Conflict
                | UnresolvedReason::Unconfirmed
        ),
        Outcome::Failed { kind, .. } => matches!(
            kind,
            ErrorKind::NotFound
                | ErrorKind::InvalidInput
                | ErrorKind::MalformedResponse
                | ErrorKind::Conflict
                | ErrorKind::Unsupported
                | ErrorKind::Unexpected
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_do_not_count_toward_the_blackbox() {
        assert!(counts_as_failure(&Outcome::unresolved(
            UnresolvedReason::NotFound
        )));
        assert!(!counts_as_failure(&Outcome::unresolved(
            UnresolvedReason::ProviderDown
        )));
        assert!(!counts_as_failure(&Outcome::unresolved(
            UnresolvedReason::AccountLimit
        )));
        assert!(!counts_as_failure(&Outcome::Failed {
            kind: ErrorKind::Unavailable,
            message: String::new()
        }));
    }
}
