//! Applying writes: provider-sized batches, a journal row committed before each batch is
//! sent and its outcomes after, `apply:*` events, a cancellation check between batches,
//! and per-item outcomes as the only source of effective counts.

use std::collections::BTreeMap;

use ferry_core::report::ItemOutcome;
use ferry_core::{
    CancelToken, Context, Emitter, Entry, ErrorKind, Feature, InventoryOps, Outcome, Payload,
    Timestamp, UnresolvedReason, WriteReport,
};
use ferry_state::{JournalBatch, JournalState, StateStore};
use serde_json::json;

use crate::events::{
    ApplyCancelled, ApplyDone, ApplyProgress, ApplyStart, ApplyUnresolved, UNRESOLVED_PREVIEW,
    WritesSkipped, emit, preview,
};
use crate::outcome::{OpResult, WriteKind, reason_of};

/// Why writes to a target stopped (or never started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Cancelled,
    /// The target answered as unavailable (or was down from the start).
    Down,
    RateLimited,
    Auth,
}

impl Stop {
    /// The outcome of an item that was not sent because of this stop. None of them counts
    /// toward the blackbox.
    fn outcome(self) -> Outcome {
        match self {
            Stop::Cancelled => Outcome::Failed {
                kind: ErrorKind::Cancelled,
                message: "the run was cancelled before this batch".into(),
            },
            Stop::Down => Outcome::Unresolved {
                reason: UnresolvedReason::ProviderDown,
                detail: Some("the provider is down".into()),
            },
            Stop::RateLimited => Outcome::Unresolved {
                reason: UnresolvedReason::RateLimited,
                detail: Some("deferred: rate limited".into()),
            },
            Stop::Auth => Outcome::Failed {
                kind: ErrorKind::Auth,
                message: "the provider refused the credentials".into(),
            },
        }
    }

    fn from_error(kind: ErrorKind) -> Option<Stop> {
        match kind {
            ErrorKind::Unavailable => Some(Stop::Down),
            ErrorKind::RateLimited => Some(Stop::RateLimited),
            ErrorKind::Auth | ErrorKind::Locked => Some(Stop::Auth),
            ErrorKind::Cancelled => Some(Stop::Cancelled),
            _ => None,
        }
    }
}

/// Shared context of one pair/feature apply.
pub(crate) struct ApplyCx<'a> {
    pub(crate) em: &'a Emitter,
    pub(crate) state: &'a StateStore,
    pub(crate) run_id: Option<i64>,
    pub(crate) dry_run: bool,
    pub(crate) pair: &'a str,
    pub(crate) feature: Feature,
    pub(crate) cancel: &'a CancelToken,
    pub(crate) now: Timestamp,
}

/// One target being written to.
pub(crate) struct Target<'a> {
    pub(crate) provider: &'a dyn InventoryOps,
    pub(crate) instance: &'a str,
    pub(crate) batch_size: usize,
    /// Set when writes must not (or can no longer) be sent.
    pub(crate) stop: Option<Stop>,
    pub(crate) calls: u64,
}

/// Matches a provider's report to the entries sent: by position when it has one outcome
/// per entry, otherwise by key; an entry without an outcome is unconfirmed.
pub(crate) fn outcomes_for(entries: &[Entry], report: WriteReport) -> Vec<Outcome> {
    if report.items.len() == entries.len() {
        return report.items.into_iter().map(|i| i.outcome).collect();
    }
    let mut by_key: BTreeMap<String, Vec<Outcome>> = BTreeMap::new();
    for i in report.items.into_iter().rev() {
        by_key.entry(i.key).or_default().push(i.outcome);
    }
    entries
        .iter()
        .map(|e| {
            by_key
                .get_mut(&e.key())
                .and_then(Vec::pop)
                .unwrap_or_else(|| Outcome::Unresolved {
                    reason: UnresolvedReason::Unconfirmed,
                    detail: Some("the provider reported no outcome for this item".into()),
                })
        })
        .collect()
}

/// Puts `entries` in the order their batches are sent. History plays go out oldest first
/// (stable: plays at the same time keep the plan's order), so each batch covers one
/// stretch of time: a target that must read the plays around new ones before writing them
/// (Trakt, which does not deduplicate) then reads one short window per batch instead of
/// scattered windows or its whole history. Which batch a play travels in means nothing
/// else; every other feature keeps the plan's order.
pub(crate) fn in_write_order(feature: Feature, entries: &mut [Entry]) {
    if feature == Feature::History {
        entries.sort_by_key(|e| match e.payload {
            Payload::Watch { watched_at } => Some(watched_at),
            _ => None,
        });
    }
}

/// Writes `entries` to `target` in batches. Never sends a batch whose journal row could
/// not be committed. In a dry run, emits the same events and calls nothing.
pub(crate) async fn apply_op(
    cx: &ApplyCx<'_>,
    target: &mut Target<'_>,
    kind: WriteKind,
    mut entries: Vec<Entry>,
) -> OpResult {
    in_write_order(cx.feature, &mut entries);
    let mut res = OpResult::default();
    if entries.is_empty() {
        return res;
    }
    let total = entries.len();
    if let Some(stop) = target.stop {
        skipped(cx, target.instance, kind, stop, total);
        res.items = entries.into_iter().map(|e| (e, stop.outcome())).collect();
        emit_unresolved(cx, target.instance, kind, &res);
        return res;
    }
    emit(
        cx.em,
        ApplyStart {
            pair: cx.pair.to_owned(),
            dst: target.instance.to_owned(),
            feature: cx.feature,
            count: total,
            dry_run: cx.dry_run,
        }
        .of(kind),
    );
    let provider_cx = Context::new(
        cx.em.with_redactions(
            target
                .provider
                .secrets()
                .iter()
                .map(|s| s.expose().to_owned()),
        ),
        cx.cancel.clone(),
    );
    let progress = |done: usize, ok: bool| ApplyProgress {
        pair: cx.pair.to_owned(),
        dst: target.instance.to_owned(),
        feature: cx.feature,
        done,
        total,
        ok,
        dry_run: cx.dry_run,
    };
    let size = target.batch_size.max(1);
    let mut done = 0usize;
    let mut rest = entries.into_iter().peekable();
    let mut batch_no = 0u32;
    while rest.peek().is_some() {
        let batch: Vec<Entry> = rest.by_ref().take(size).collect();
        if cx.cancel.is_cancelled() && target.stop.is_none() {
            target.stop = Some(Stop::Cancelled);
            let ev = ApplyCancelled {
                pair: cx.pair.to_owned(),
                dst: target.instance.to_owned(),
                feature: cx.feature,
                done,
                total,
            };
            emit(cx.em, ev.of(kind));
        }
        if let Some(stop) = target.stop {
            res.items
                .extend(batch.into_iter().map(|e| (e, stop.outcome())));
            continue;
        }
        let n = batch.len();
        if cx.dry_run {
            done += n;
            emit(cx.em, progress(done, true).of(kind));
            continue;
        }
        let journal = match journal_begin(cx, target, kind, &batch, batch_no) {
            Ok(journal) => journal,
            Err(failed) => {
                res.items.extend(batch.into_iter().zip(failed));
                continue;
            }
        };
        batch_no += 1;
        let outcomes = send(cx, target, kind, &batch, journal, &provider_cx).await;
        let ok = outcomes.iter().all(Outcome::is_settled);
        res.items.extend(batch.into_iter().zip(outcomes));
        done += n;
        emit(cx.em, progress(done, ok).of(kind));
    }
    emit_done(cx, target.instance, kind, done, &res);
    emit_unresolved(cx, target.instance, kind, &res);
    res
}

/// `writes:skipped` for an op a stopped target does not receive.
fn skipped(cx: &ApplyCx<'_>, instance: &str, kind: WriteKind, stop: Stop, count: usize) {
    let reason = match stop {
        Stop::Down => "provider_down",
        Stop::RateLimited => "rate_limited",
        Stop::Auth => "auth_failed",
        Stop::Cancelled => "cancelled",
    };
    emit(
        cx.em,
        WritesSkipped {
            pair: cx.pair.to_owned(),
            src: None,
            dst: instance.to_owned(),
            feature: cx.feature,
            mode: None,
            reason: reason.into(),
            src_status: None,
            op: Some(kind),
            count: Some(count),
        },
    );
}

/// The journal row of one batch, committed before it is sent (`None`: a dry run or a
/// restore, which record nothing). `Err` when it could not be written: the batch is not
/// sent, the target stops, and `Err` holds the batch's outcomes.
fn journal_begin(
    cx: &ApplyCx<'_>,
    target: &mut Target<'_>,
    kind: WriteKind,
    batch: &[Entry],
    batch_no: u32,
) -> Result<Option<i64>, Vec<Outcome>> {
    let Some(run_id) = cx.run_id else {
        return Ok(None);
    };
    let begun = cx.state.journal_begin(&JournalBatch {
        run_id,
        pair: cx.pair,
        instance: target.instance,
        feature: cx.feature,
        op: kind.unresolved_op(),
        batch: batch_no,
        entries: batch,
        at: cx.now,
    });
    match begun {
        Ok(id) => Ok(Some(id)),
        Err(e) => {
            // Never send what the journal does not know about.
            cx.em
                .err(&format!("journal write failed, not sending: {e}"));
            target.stop = Some(Stop::Down);
            let o = Outcome::Failed {
                kind: ErrorKind::Unexpected,
                message: format!("state journal: {e}"),
            };
            Err(vec![o; batch.len()])
        }
    }
}

/// Sends one batch and records its outcomes in its journal row.
async fn send(
    cx: &ApplyCx<'_>,
    target: &mut Target<'_>,
    kind: WriteKind,
    batch: &[Entry],
    journal: Option<i64>,
    provider_cx: &Context,
) -> Vec<Outcome> {
    target.calls += 1;
    let answer = match kind {
        WriteKind::Add | WriteKind::Update => {
            target.provider.add(provider_cx, cx.feature, batch).await
        }
        WriteKind::Remove => target.provider.remove(provider_cx, cx.feature, batch).await,
    };
    match answer {
        Ok(report) => {
            let outs = outcomes_for(batch, report);
            if let Some(id) = journal {
                let items: Vec<ItemOutcome> = batch
                    .iter()
                    .zip(&outs)
                    .map(|(e, o)| ItemOutcome {
                        key: e.key(),
                        outcome: o.clone(),
                    })
                    .collect();
                if let Err(e) =
                    cx.state
                        .journal_finish(id, JournalState::Done, Some(&items), cx.now)
                {
                    cx.em.warn(&format!("journal update failed: {e}"));
                }
            }
            outs
        }
        Err(err) => {
            if let Some(id) = journal
                && let Err(e) = cx
                    .state
                    .journal_finish(id, JournalState::Failed, None, cx.now)
            {
                cx.em.warn(&format!("journal update failed: {e}"));
            }
            cx.em.warn(&format!(
                "{} {} batch failed: {err}",
                target.instance,
                kind.as_str()
            ));
            if let Some(stop) = Stop::from_error(err.kind()) {
                target.stop = Some(stop);
            }
            vec![Outcome::failed(&err); batch.len()]
        }
    }
}

/// `apply:<op>:done`.
fn emit_done(cx: &ApplyCx<'_>, instance: &str, kind: WriteKind, done: usize, res: &OpResult) {
    let unresolved = res.unresolved_by_reason();
    let errors = res
        .items
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Failed { .. }))
        .count();
    let confirmed = res.confirmed();
    let only = |k: WriteKind| (kind == k).then_some(confirmed);
    let ev = ApplyDone {
        pair: cx.pair.to_owned(),
        dst: instance.to_owned(),
        feature: cx.feature,
        count: confirmed,
        attempted: done,
        added: only(WriteKind::Add),
        updated: only(WriteKind::Update),
        removed: only(WriteKind::Remove),
        skipped: res.unchanged(),
        unresolved: unresolved.values().sum::<usize>() - errors,
        errors,
        dry_run: cx.dry_run,
    };
    emit(cx.em, ev.of(kind));
}

fn emit_unresolved(cx: &ApplyCx<'_>, instance: &str, kind: WriteKind, res: &OpResult) {
    let bad: Vec<(&Entry, &Outcome)> = res
        .items
        .iter()
        .filter(|(_, o)| !o.is_settled())
        .map(|(e, o)| (e, o))
        .collect();
    if bad.is_empty() {
        return;
    }
    let items: Vec<serde_json::Value> = bad
        .iter()
        .take(UNRESOLVED_PREVIEW)
        .map(|(e, o)| {
            let mut v = preview(e);
            if let Some(m) = v.as_object_mut() {
                m.insert("reason".into(), json!(reason_of(o)));
            }
            v
        })
        .collect();
    emit(
        cx.em,
        ApplyUnresolved {
            pair: cx.pair.to_owned(),
            provider: instance.to_owned(),
            feature: cx.feature,
            op: kind,
            count: bad.len(),
            total: res.items.len(),
            shown: items.len(),
            omitted: bad.len() - items.len(),
            items,
            reason_counts: res.unresolved_by_reason(),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::{IdKind, Ids, Item};

    fn e(n: &str) -> Entry {
        Entry::watchlist(Item::movie("M", 2000, Ids::new().with(IdKind::Tmdb, n)))
    }

    #[test]
    fn outcomes_by_position_then_by_key_and_missing_is_unconfirmed() {
        let sent = [e("1"), e("2"), e("3")];
        let mut r = WriteReport::new();
        r.push(&sent[2], Outcome::Confirmed);
        r.push(&sent[0], Outcome::AlreadyPresent);
        let o = outcomes_for(&sent, r);
        assert_eq!(o[0], Outcome::AlreadyPresent);
        assert!(matches!(
            o[1],
            Outcome::Unresolved {
                reason: UnresolvedReason::Unconfirmed,
                ..
            }
        ));
        assert_eq!(o[2], Outcome::Confirmed);
    }

    #[test]
    fn history_goes_out_oldest_first_and_other_features_keep_the_plan_order() {
        let play = |n: &str, at: i64| {
            Entry::watch(
                Item::movie("M", 2000, Ids::new().with(IdKind::Tmdb, n)),
                Timestamp::from_unix(at),
            )
        };
        let mut plays = vec![
            play("1", 300),
            play("2", 100),
            play("3", 300),
            play("4", 200),
        ];
        in_write_order(Feature::History, &mut plays);
        let keys: Vec<String> = plays
            .iter()
            .map(|e| e.item.ids.get(IdKind::Tmdb).unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            keys,
            ["2", "4", "1", "3"],
            "oldest first, ties in plan order"
        );
        let mut wl = vec![e("3"), e("1"), e("2")];
        in_write_order(Feature::Watchlist, &mut wl);
        assert_eq!(wl, vec![e("3"), e("1"), e("2")]);
    }
}
