//! The write pipeline: batched POSTs, then per-item outcomes from a re-read.
//!
//! SIMKL's write answers carry counts and a `not_found` echo, never a per-item "done", and
//! some writes answer with an empty body. So an item is `Confirmed` only when a read after
//! the write shows it in the requested state; `not_found` echoes become
//! `Unresolved(NotFound)`; everything else the service accepted is
//! `Unresolved(Unconfirmed)`.

use std::collections::{HashMap, HashSet};

use ferry_core::{
    Context, Entry, Error, ErrorKind, Ids, Outcome, Result, UnresolvedReason, WriteReport,
};
use serde_json::{Map, Value};

use crate::api::{Api, error_outcome};
use crate::convert::ids_from;

/// Titles per write request (SIMKL's documented batch size for list and history writes).
pub const BATCH_SIZE: usize = 100;

/// One title of a write request, with the entries it carries.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    /// `movies` or `shows`.
    pub(crate) group: &'static str,
    pub(crate) body: Value,
    /// The ids the title was sent with (to map `not_found` echoes back).
    pub(crate) ids: Ids,
    /// Indices of the entries this title carries.
    pub(crate) idxs: Vec<usize>,
}

/// What happened to the requests.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Entries in requests the service accepted.
    pub(crate) accepted: Vec<usize>,
    /// Entries in requests that failed (they may still have been applied), with the
    /// outcome the failure means.
    pub(crate) errored: Vec<(usize, Outcome)>,
    /// Entries never sent, with their outcome.
    pub(crate) unsent: Vec<(usize, Outcome)>,
    /// Entries the service echoed in `not_found`.
    pub(crate) not_found: HashSet<usize>,
}

impl Sent {
    pub(crate) fn any_sent(&self) -> bool {
        !self.accepted.is_empty() || !self.errored.is_empty()
    }
}

/// Sends `wires` in batches of [`BATCH_SIZE`] titles. Cancellation is checked between
/// batches; an auth failure or a rate limit past the budget stops the rest.
pub(crate) async fn post_batches(
    api: &Api,
    cx: &Context,
    op: &str,
    path: &str,
    wires: Vec<Wire>,
) -> Result<Sent> {
    let mut sent = Sent::default();
    let mut stop: Option<Outcome> = None;
    let batches: Vec<Vec<Wire>> = wires.chunks(BATCH_SIZE).map(<[Wire]>::to_vec).collect();
    for batch in batches {
        let idxs = || batch.iter().flat_map(|w| w.idxs.iter().copied());
        if let Some(o) = &stop {
            sent.unsent.extend(idxs().map(|i| (i, o.clone())));
            continue;
        }
        if cx.cancel.is_cancelled() {
            if !sent.any_sent() {
                return Err(Error::cancelled());
            }
            let o = Outcome::failed(&Error::cancelled());
            sent.unsent.extend(idxs().map(|i| (i, o.clone())));
            stop = Some(o);
            continue;
        }
        let mut body = Map::new();
        for w in &batch {
            if let Some(a) = body
                .entry(w.group)
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
            {
                a.push(w.body.clone());
            }
        }
        match api.post(op, path).json(&Value::Object(body)).send(cx).await {
            Ok(resp) => {
                sent.accepted.extend(idxs());
                // The body is informative only (it may be empty).
                if let Ok(v) = resp.json_value() {
                    sent.not_found.extend(not_found(&v, &batch));
                }
            }
            Err(e) if e.kind() == ErrorKind::Cancelled => {
                if !sent.any_sent() {
                    return Err(e);
                }
                let o = Outcome::failed(&e);
                sent.unsent.extend(idxs().map(|i| (i, o.clone())));
                stop = Some(o);
            }
            Err(e) => {
                let o = error_outcome(&e);
                if matches!(e.kind(), ErrorKind::Auth | ErrorKind::RateLimited) {
                    stop = Some(o.clone());
                }
                sent.errored.extend(idxs().map(|i| (i, o.clone())));
            }
        }
    }
    Ok(sent)
}

/// Entries whose title SIMKL echoed under `not_found`.
fn not_found(v: &Value, batch: &[Wire]) -> Vec<usize> {
    let mut out = Vec::new();
    let Some(nf) = v.get("not_found").and_then(Value::as_object) else {
        return out;
    };
    for rows in nf.values().filter_map(Value::as_array) {
        for row in rows {
            let echoed = ids_from(row.get("ids"));
            for w in batch {
                if echoed.iter().any(|(k, v)| w.ids.get(k) == Some(v)) {
                    out.extend(w.idxs.iter().copied());
                }
            }
        }
    }
    out
}

/// Builds the report: outcomes decided before sending, then for sent entries the verdict
/// of the re-read (`confirm`, `None` when the re-read failed with `reread_error`).
pub(crate) fn finalize(
    entries: &[Entry],
    decided: Vec<Option<Outcome>>,
    sent: Sent,
    confirm: Option<&dyn Fn(usize) -> bool>,
    reread_error: Option<String>,
) -> WriteReport {
    let mut outcome: Vec<Option<Outcome>> = decided;
    outcome.resize(entries.len(), None);
    for (i, o) in sent.unsent {
        outcome[i] = Some(o);
    }
    let errors: HashMap<usize, Outcome> = sent.errored.into_iter().collect();
    let attempted = sent.accepted.iter().copied().chain(errors.keys().copied());
    for i in attempted.collect::<Vec<_>>() {
        let o = if confirm.is_some_and(|c| c(i)) {
            Outcome::Confirmed
        } else if sent.not_found.contains(&i) {
            Outcome::Unresolved {
                reason: UnresolvedReason::NotFound,
                detail: Some("SIMKL found no title with these ids".into()),
            }
        } else if let Some(o) = errors.get(&i) {
            o.clone()
        } else {
            Outcome::Unresolved {
                reason: UnresolvedReason::Unconfirmed,
                detail: Some(reread_error.clone().unwrap_or_else(|| {
                    "SIMKL accepted the write, but a re-read does not show it".into()
                })),
            }
        };
        outcome[i] = Some(o);
    }
    let mut report = WriteReport::new();
    for (e, o) in entries.iter().zip(outcome) {
        report.push(
            e,
            o.unwrap_or(Outcome::Unresolved {
                reason: UnresolvedReason::Unconfirmed,
                detail: Some("not written".into()),
            }),
        );
    }
    report
}

/// `Unresolved(Unsupported)` with a reason.
pub(crate) fn unsupported(detail: impl Into<String>) -> Option<Outcome> {
    Some(Outcome::Unresolved {
        reason: UnresolvedReason::Unsupported,
        detail: Some(detail.into()),
    })
}

/// `Unresolved(Conflict)` with a reason.
pub(crate) fn conflict(detail: impl Into<String>) -> Option<Outcome> {
    Some(Outcome::Unresolved {
        reason: UnresolvedReason::Conflict,
        detail: Some(detail.into()),
    })
}
