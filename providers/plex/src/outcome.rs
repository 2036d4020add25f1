//! Write outcomes. The shared rules live in `ferry_core::report` (one outcome per entry,
//! errors that stop a batch); this module only names what a miss means on this server.

use ferry_core::{Entry, Error, Feature, Outcome};

pub(crate) use ferry_core::OutcomeSlots as Outcomes;

pub(crate) fn outcome_for(err: &Error) -> Outcome {
    Outcome::from_error(err)
}

pub(crate) fn wrong_payload(e: &Entry, feature: Feature) -> Outcome {
    Outcome::wrong_payload(e, feature)
}

/// A title matching nothing the server read: see [`Outcome::unmatched`].
pub(crate) fn unmatched(partial: &[String], add: bool) -> Outcome {
    Outcome::unmatched(
        partial,
        add,
        "no item in the Plex library has any of these ids",
    )
}
