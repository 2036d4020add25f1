//! Progress (resume points): the `viewOffset` of library items.
//!
//! A resume point is written as a "stopped" `/:/timeline` report, the way a client
//! reports playback; clearing one reports `time=0`. Plex documents `/:/timeline` only as
//! playback reporting, so two things are guarded:
//!
//! - **A report near the end counts a play.** Where is a server setting: the played
//!   threshold `LibraryVideoPlayedThreshold` (percent, default 90), or a credits marker,
//!   as `LibraryVideoPlayedAtBehaviour` says (`0` at the threshold, `1` at the final
//!   credits marker, `2` at the first, `3` — the default — at the earlier of the threshold
//!   and the first marker; the threshold when an item has no markers). Every write call
//!   that has a resume point to write reads `/:/prefs` once and keeps every resume point
//!   [`PLAYED_MARGIN_PCT`] points below the point the server may count a play at:
//!   below `threshold - 5` % with behaviour `0`; otherwise (markers may count, or the
//!   settings cannot be read) below `min(threshold, 80) - 5` %, assuming end credits start
//!   no earlier than [`CREDITS_FLOOR_PCT`] % of the runtime. A resume point past that, or
//!   on an item of unknown runtime, is `Unresolved { unsupported }`: ferry never turns a
//!   resume point into a play.
//! - **A 2xx is not proof.** After the reports of a call, the written items are read back
//!   (`/library/metadata/{ids}`, [`READ_BACK_CHUNK`] comma-separated rating keys per
//!   request) and a write is `Confirmed` only when the server shows the new `viewOffset`
//!   (none after a clear); otherwise it is `Unresolved { unconfirmed }` with what the
//!   server shows.

use std::collections::HashMap;

use ferry_core::{
    Context, Entry, ErrorKind, Feature, Outcome, Payload, Result, Snapshot, UnresolvedReason,
    WriteReport,
};
use serde_json::Value;

use crate::outcome::{Outcomes, unmatched, wrong_payload};
use crate::paging::{media_container, str_field, u64_field};
use crate::{LIBRARY_IDENTIFIER, PLAYABLE, PlexProvider};

/// Plex's default `LibraryVideoPlayedThreshold` (percent).
pub(crate) const DEFAULT_PLAYED_THRESHOLD_PCT: u64 = 90;
/// Percentage points a resume point stays below where the server may count a play.
pub(crate) const PLAYED_MARGIN_PCT: u64 = 5;
/// When the server may count a play at a credits marker: the earliest point (percent of
/// the runtime) ferry assumes end credits can start.
pub(crate) const CREDITS_FLOOR_PCT: u64 = 80;
/// Rating keys per read-back request.
pub(crate) const READ_BACK_CHUNK: usize = 50;
/// How far a stored resume point may be from the one sent and still be the same (ms).
const SAME_OFFSET_MS: u64 = 1000;

/// Up to which point of the runtime ferry writes resume points on this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlayedRule {
    /// Resume points at or past this percentage of the runtime are not written.
    pub(crate) limit_pct: u64,
    /// Why, for the outcome's detail.
    pub(crate) why: String,
}

impl PlayedRule {
    /// The rule for the server's settings: `threshold` (`LibraryVideoPlayedThreshold`) and
    /// `behaviour` (`LibraryVideoPlayedAtBehaviour`), or `Err` with why `/:/prefs` could
    /// not be read.
    pub(crate) fn new(
        settings: std::result::Result<(Option<u64>, Option<String>), String>,
    ) -> Self {
        let (threshold, behaviour, unreadable) = match settings {
            Ok((t, b)) => (t, b, None),
            Err(e) => (None, None, Some(e)),
        };
        let threshold = threshold
            .filter(|t| (1..=100).contains(t))
            .unwrap_or(DEFAULT_PLAYED_THRESHOLD_PCT);
        if unreadable.is_none() && behaviour.as_deref() == Some("0") {
            let limit_pct = threshold.saturating_sub(PLAYED_MARGIN_PCT);
            return PlayedRule {
                limit_pct,
                why: format!(
                    "the server counts a play at {threshold} % (LibraryVideoPlayedThreshold); ferry writes resume points below {limit_pct} %"
                ),
            };
        }
        let limit_pct = threshold
            .min(CREDITS_FLOOR_PCT)
            .saturating_sub(PLAYED_MARGIN_PCT);
        let cause = match (unreadable, behaviour) {
            (Some(e), _) => format!(
                "the server's played settings could not be read ({e}), so a play may count at {threshold} % or at a credits marker"
            ),
            (None, Some(b)) => format!(
                "the server may count a play at a credits marker (LibraryVideoPlayedAtBehaviour={b}) or at {threshold} %"
            ),
            (None, None) => format!(
                "the server does not say where it counts a play (no LibraryVideoPlayedAtBehaviour; by default the earlier of {threshold} % and the first credits marker)"
            ),
        };
        PlayedRule {
            limit_pct,
            why: format!(
                "{cause}; assuming credits start no earlier than {CREDITS_FLOOR_PCT} %, ferry writes resume points below {limit_pct} %"
            ),
        }
    }

    fn allows(&self, position_ms: u64, duration_ms: u64) -> bool {
        u128::from(position_ms) * 100 < u128::from(duration_ms) * u128::from(self.limit_pct)
    }
}

/// A setting's `value`, which Plex sends as a number, a string or a boolean.
fn setting_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `(LibraryVideoPlayedThreshold, LibraryVideoPlayedAtBehaviour)` of a `/:/prefs` answer.
pub(crate) fn played_settings(body: Value) -> Result<(Option<u64>, Option<String>)> {
    let mc = media_container(body, "server preferences")?;
    let settings = match mc.get("Setting") {
        Some(Value::Array(s)) => s.as_slice(),
        _ => &[],
    };
    let value = |id: &str| {
        settings
            .iter()
            .find(|s| s.get("id").and_then(Value::as_str) == Some(id))
            .and_then(|s| s.get("value"))
            .and_then(setting_text)
    };
    let threshold = value("LibraryVideoPlayedThreshold").and_then(|t| {
        t.parse::<u64>()
            .ok()
            .or_else(|| t.parse::<f64>().ok().map(|f| f.ceil() as u64))
    });
    Ok((threshold, value("LibraryVideoPlayedAtBehaviour")))
}

/// One timeline report sent: the entry, the item, the resume point wanted (`None`: cleared)
/// and the item's play count before.
struct Sent {
    index: usize,
    rating_key: String,
    want: Option<u64>,
    views_before: u64,
}

fn unconfirmed(detail: String) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unconfirmed,
        detail: Some(detail),
    }
}

fn unsupported(detail: String) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unsupported,
        detail: Some(detail),
    }
}

impl PlexProvider {
    pub(crate) async fn progress_index(&self, cx: &Context) -> Result<Snapshot> {
        let lib = self.library(cx).await?;
        let mut snap = Snapshot::unproven_legacy(Feature::Progress);
        for li in lib
            .items
            .iter()
            .filter(|li| PLAYABLE.contains(&li.item.kind))
        {
            if let Some(pos) = li.view_offset {
                snap.insert(Entry::progress(li.item.clone(), pos, li.duration, None));
            }
        }
        for p in lib.partial {
            snap.mark_partial(p);
        }
        Ok(snap)
    }

    /// The played rule of this server: one `/:/prefs` request. A failed read gives the
    /// conservative rule (a cancelled one is an error).
    async fn played_rule(&self, cx: &Context) -> Result<PlayedRule> {
        let read = self
            .pms
            .get("GET /:/prefs", "/:/prefs")
            .send_json::<Value>(cx)
            .await
            .and_then(played_settings);
        match read {
            Ok(s) => Ok(PlayedRule::new(Ok(s))),
            Err(e) if e.kind() == ErrorKind::Cancelled => Err(e),
            Err(e) => Ok(PlayedRule::new(Err(e.to_string()))),
        }
    }

    /// A "stopped at `time_ms`" timeline report.
    fn timeline(&self, rk: &str, time_ms: u64, duration_ms: u64) -> ferry_http::RequestBuilder<'_> {
        let mut r = self
            .pms
            .post("POST /:/timeline", "/:/timeline")
            .query("ratingKey", rk)
            .query("key", format!("/library/metadata/{rk}"))
            .query("identifier", LIBRARY_IDENTIFIER)
            .query("state", "stopped")
            .query("time", time_ms);
        if duration_ms > 0 {
            r = r.query("duration", duration_ms);
        }
        r
    }

    /// `(viewOffset, viewCount)` of these items, [`READ_BACK_CHUNK`] per request; the
    /// error text for the items of a request that failed.
    async fn view_offsets(
        &self,
        cx: &Context,
        keys: &[&str],
    ) -> (HashMap<String, (Option<u64>, u64)>, HashMap<String, String>) {
        let mut state = HashMap::new();
        let mut failed = HashMap::new();
        for chunk in keys.chunks(READ_BACK_CHUNK) {
            let read = self
                .pms
                .get(
                    "GET /library/metadata/{ids}",
                    format!("/library/metadata/{}", chunk.join(",")),
                )
                .send_json::<Value>(cx)
                .await
                .and_then(|body| media_container(body, "library items"));
            let mut mc = match read {
                Ok(mc) => mc,
                // None of them is on the server any more.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => {
                    for k in chunk {
                        failed.insert((*k).to_owned(), e.to_string());
                    }
                    continue;
                }
            };
            if let Some(Value::Array(rows)) = mc.remove("Metadata") {
                for row in rows {
                    if let Some(k) = str_field(&row, "ratingKey") {
                        let offset = u64_field(&row, "viewOffset").filter(|o| *o > 0);
                        let views = u64_field(&row, "viewCount").unwrap_or(0);
                        state.insert(k, (offset, views));
                    }
                }
            }
        }
        (state, failed)
    }

    /// Writes resume points (`add`) or clears them, then reads the items back.
    pub(crate) async fn progress_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let lib = self.library(cx).await?;
        let mut rule: Option<PlayedRule> = None;
        let mut out = Outcomes::new(entries.len());
        let mut sent: Vec<Sent> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Payload::Progress {
                position_ms,
                duration_ms,
                ..
            } = &e.payload
            else {
                out.set(i, wrong_payload(e, Feature::Progress));
                continue;
            };
            let Some(li) = lib.resolve(&e.item) else {
                out.set(i, unmatched(&lib.partial, add));
                continue;
            };
            if !PLAYABLE.contains(&li.item.kind) {
                out.set(
                    i,
                    unsupported("Plex keeps resume points of movies and episodes".into()),
                );
                continue;
            }
            let (want, duration) = if add {
                if li
                    .view_offset
                    .is_some_and(|o| o.abs_diff(*position_ms) < SAME_OFFSET_MS)
                {
                    out.set(i, Outcome::AlreadyPresent);
                    continue;
                }
                if *position_ms == 0 {
                    out.set(
                        i,
                        unsupported("a resume point at 0 ms is no resume point".into()),
                    );
                    continue;
                }
                let duration = li.duration.or(*duration_ms).unwrap_or(0);
                if duration == 0 {
                    out.set(
                        i,
                        unsupported(
                            "the item's runtime is unknown, so ferry cannot tell whether Plex would count the resume point as a play".into(),
                        ),
                    );
                    continue;
                }
                if rule.is_none() {
                    rule = Some(self.played_rule(cx).await?);
                }
                let rule = rule.as_ref().expect("read above");
                if !rule.allows(*position_ms, duration) {
                    let pct = *position_ms as f64 * 100.0 / duration as f64;
                    out.set(
                        i,
                        unsupported(format!(
                            "a resume point at {pct:.1} % ({position_ms} of {duration} ms) could make Plex count a play: {}",
                            rule.why
                        )),
                    );
                    continue;
                }
                (Some(*position_ms), duration)
            } else {
                if li.view_offset.is_none() {
                    out.set(i, Outcome::AlreadyAbsent);
                    continue;
                }
                (None, li.duration.unwrap_or(0))
            };
            if let Err(err) = cx.check_cancelled() {
                if sent.is_empty() {
                    return Err(err);
                }
                out.fill(&Outcome::failed(&err));
                break;
            }
            let rk = li.rating_key.clone();
            match self
                .timeline(&rk, want.unwrap_or(0), duration)
                .idempotent()
                .send(cx)
                .await
            {
                Ok(_) => sent.push(Sent {
                    index: i,
                    rating_key: rk,
                    want,
                    views_before: li.view_count,
                }),
                Err(err) => {
                    if out.fail(i, &err) {
                        break;
                    }
                }
            }
        }
        if sent.is_empty() {
            return Ok(out.report(entries));
        }
        let mut keys: Vec<&str> = sent.iter().map(|s| s.rating_key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let (state, failed) = self.view_offsets(cx, &keys).await;
        for s in &sent {
            let o = if let Some(err) = failed.get(&s.rating_key) {
                unconfirmed(format!(
                    "Plex accepted the timeline report, but the item could not be read back: {err}"
                ))
            } else {
                match (state.get(&s.rating_key), s.want) {
                    (None, _) => unconfirmed(
                        "Plex accepted the timeline report, but the item was not found when read back".into(),
                    ),
                    (Some((Some(have), _)), Some(want))
                        if have.abs_diff(want) < SAME_OFFSET_MS =>
                    {
                        Outcome::Confirmed
                    }
                    (Some((_, views)), Some(_)) if *views > s.views_before => {
                        unconfirmed(format!(
                            "Plex counted the timeline report as a play (viewCount {} -> {views}) and kept no resume point",
                            s.views_before
                        ))
                    }
                    (Some((have, _)), Some(want)) => unconfirmed(format!(
                        "Plex accepted the timeline report at {want} ms, but the item reads {}",
                        have.map_or("no resume point".to_owned(), |h| format!(
                            "viewOffset {h} ms"
                        ))
                    )),
                    (Some((None, _)), None) => Outcome::Confirmed,
                    (Some((Some(have), _)), None) => unconfirmed(format!(
                        "Plex accepted the timeline report at 0 ms (an undocumented way to clear a resume point), but the item still reads viewOffset {have} ms"
                    )),
                }
            };
            out.set(s.index, o);
        }
        Ok(out.report(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_played_rule_follows_the_servers_settings() {
        let only_threshold = PlayedRule::new(Ok((Some(95), Some("0".into()))));
        assert_eq!(only_threshold.limit_pct, 90);
        assert!(only_threshold.allows(89, 100));
        assert!(!only_threshold.allows(90, 100));
        // Credits markers may count a play: at most 75 %, lower with a lower threshold.
        assert_eq!(
            PlayedRule::new(Ok((Some(90), Some("3".into())))).limit_pct,
            75
        );
        assert_eq!(
            PlayedRule::new(Ok((Some(70), Some("1".into())))).limit_pct,
            65
        );
        assert_eq!(PlayedRule::new(Ok((None, None))).limit_pct, 75);
        assert_eq!(PlayedRule::new(Err("503".into())).limit_pct, 75);
        assert_eq!(
            PlayedRule::new(Ok((Some(0), Some("0".into())))).limit_pct,
            85,
            "an invalid threshold is the default"
        );
    }

    #[test]
    fn prefs_values_may_be_numbers_or_strings() {
        let body = json!({"MediaContainer": {"size": 2, "Setting": [
            {"id": "LibraryVideoPlayedThreshold", "type": "int", "value": "85"},
            {"id": "LibraryVideoPlayedAtBehaviour", "type": "text", "value": 0},
        ]}});
        assert_eq!(played_settings(body).unwrap(), (Some(85), Some("0".into())));
        let none = json!({"MediaContainer": {"size": 0}});
        assert_eq!(played_settings(none).unwrap(), (None, None));
        assert!(played_settings(json!([])).is_err());
    }
}
