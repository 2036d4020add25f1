//! Writes through the kit's batch writer, one title at a time (TMDB has no batch
//! route): the title's own state first (`account_states`, one request), then the write
//! only if it changes something, so a first sync of N titles costs at most 2N requests
//! and an equal value is never rewritten. One outcome per entry, in order; auth, rate
//! limits and an unreachable service stop the batch (the kit's one policy).

use ferry_core::{
    BatchWriter, Context, Entry, Feature, IdKind, Outcome, Payload, Result, UnresolvedReason,
    WriteReport,
};

use crate::api::Api;
use crate::convert::{self, Kind};

/// Where an entry goes on TMDB, or why it cannot.
fn target(e: &Entry, feature: Feature) -> std::result::Result<(Kind, u64), Outcome> {
    if e.feature() != feature {
        return Err(Outcome::wrong_payload(e, feature));
    }
    let kind =
        Kind::of(e.item.kind).ok_or_else(|| Outcome::unsupported("TMDB lists movies and shows"))?;
    let id = e.item.ids.get(IdKind::Tmdb).and_then(|v| v.parse().ok());
    let id = id.ok_or(Outcome::Unresolved {
        reason: UnresolvedReason::NotFound,
        detail: Some("no TMDB id".into()),
    })?;
    Ok((kind, id))
}

pub(crate) async fn write(
    api: &Api,
    cx: &Context,
    feature: Feature,
    entries: &[Entry],
    add: bool,
) -> Result<WriteReport> {
    let mut w = BatchWriter::new(cx, entries);
    while let Some(chunk) = w.next_chunk(1)? {
        let outcome = write_one(api, cx, &entries[chunk[0]], feature, add).await;
        w.record_one(chunk[0], outcome);
    }
    Ok(w.finish())
}

async fn write_one(
    api: &Api,
    cx: &Context,
    e: &Entry,
    feature: Feature,
    add: bool,
) -> Result<Outcome> {
    let (kind, id) = match target(e, feature) {
        Ok(t) => t,
        Err(unsent) => return Ok(unsent),
    };
    let held = api.states(cx, kind, id).await?;
    let unchanged = Outcome::already(add);
    match &e.payload {
        Payload::Watchlist { .. } if held.watchlist == add => return Ok(unchanged),
        Payload::Watchlist { .. } => api.set_watchlist(cx, kind, id, add).await?,
        Payload::Rating { rating, .. } => {
            let now = held.rated.value();
            // Equal on ferry's scale (TMDB's 7.5 reads as 8): left as the user set it.
            if add && now.and_then(convert::to_ferry) == Some(*rating) || !add && now.is_none() {
                return Ok(unchanged);
            }
            api.rate(cx, kind, id, add.then(|| convert::to_tmdb(*rating)))
                .await?
        }
        _ => return Ok(Outcome::wrong_payload(e, feature)),
    }
    Ok(Outcome::Confirmed)
}
