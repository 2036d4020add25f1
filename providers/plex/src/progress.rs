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
//!   (`/library/metadata/{ids}`, [`crate::api::READ_BACK_CHUNK`] comma-separated rating keys per
//!   request) and a write is `Confirmed` only when the server shows the new `viewOffset`
//!   (none after a clear); otherwise it is `Unresolved { unconfirmed }` with what the
//!   server shows.

use std::collections::HashMap;

use ferry_core::{
    BatchWriter, ChunkAnswer, Context, Entry, ErrorKind, Feature, Outcome, Payload, Reader, Result,
    WriteReport,
};

use crate::api::{PLAYABLE, PlexProvider, container};
use crate::convert::setting_row;
use crate::model::{ItemState, Library, Prefs};
use crate::write::{certain, unconfirmed, unmatched, unsupported};

/// Plex's default `LibraryVideoPlayedThreshold` (percent).
pub(crate) const DEFAULT_PLAYED_THRESHOLD_PCT: u64 = 90;
/// Percentage points a resume point stays below where the server may count a play.
pub(crate) const PLAYED_MARGIN_PCT: u64 = 5;
/// When the server may count a play at a credits marker: the earliest point (percent of
/// the runtime) ferry assumes end credits can start.
pub(crate) const CREDITS_FLOOR_PCT: u64 = 80;
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

/// `(LibraryVideoPlayedThreshold, LibraryVideoPlayedAtBehaviour)` of a `/:/prefs`
/// answer; a setting row that does not decode makes the whole answer unreadable (the
/// conservative rule then applies).
pub(crate) fn played_settings(
    prefs: Prefs,
) -> std::result::Result<(Option<u64>, Option<String>), String> {
    let mut reader = Reader::new("server preferences");
    reader.rows(prefs.rows.unwrap_or_default(), &mut setting_row);
    let read = reader.finish_whole();
    if let Some(why) = read.proof().reason() {
        return Err(why);
    }
    let value = |id: &str| {
        read.rows
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.value.as_ref())
            .map(|v| v.text().trim().to_owned())
    };
    let threshold = value("LibraryVideoPlayedThreshold").and_then(|t| {
        t.parse::<u64>()
            .ok()
            .or_else(|| t.parse::<f64>().ok().map(|f| f.ceil() as u64))
    });
    Ok((threshold, value("LibraryVideoPlayedAtBehaviour")))
}

/// One timeline report sent: the item, the resume point wanted (`None`: cleared) and
/// the item's play count before.
#[derive(Debug, Clone)]
struct Sent {
    index: usize,
    rating_key: String,
    want: Option<u64>,
    views_before: u64,
}

/// What the read-back shows for one report.
fn judge(s: &Sent, now: Option<&ItemState>) -> Outcome {
    match (now, s.want) {
        (None, _) => unconfirmed(
            "Plex accepted the timeline report, but the item was not found when read back",
        ),
        (Some(st), Some(want))
            if st
                .view_offset
                .is_some_and(|h| h.abs_diff(want) < SAME_OFFSET_MS) =>
        {
            Outcome::Confirmed
        }
        (Some(st), Some(_)) if st.view_count > s.views_before => unconfirmed(format!(
            "Plex counted the timeline report as a play (viewCount {} -> {}) and kept no resume point",
            s.views_before, st.view_count
        )),
        (Some(st), Some(want)) => unconfirmed(format!(
            "Plex accepted the timeline report at {want} ms, but the item reads {}",
            st.view_offset
                .map_or("no resume point".to_owned(), |h| format!(
                    "viewOffset {h} ms"
                ))
        )),
        (Some(st), None) => match st.view_offset {
            None => Outcome::Confirmed,
            Some(have) => unconfirmed(format!(
                "Plex accepted the timeline report at 0 ms (an undocumented way to clear a resume point), but the item still reads viewOffset {have} ms"
            )),
        },
    }
}

impl PlexProvider {
    /// The played rule of this server: one `/:/prefs` request. A failed read gives the
    /// conservative rule (a cancelled one is an error).
    async fn played_rule(&self, cx: &Context) -> Result<PlayedRule> {
        let read = match self.pms.get("GET /:/prefs", "/:/prefs").send(cx).await {
            Ok(resp) => container::<Prefs>(&resp),
            Err(e) => Err(e),
        };
        match read {
            Ok(prefs) => Ok(PlayedRule::new(played_settings(prefs))),
            Err(e) if e.kind() == ErrorKind::Cancelled => Err(e),
            Err(e) => Ok(PlayedRule::new(Err(e.to_string()))),
        }
    }

    /// Writes resume points (`add`) or clears them, then reads the items back.
    pub(crate) async fn progress_write(
        &self,
        cx: &Context,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let (at, mut lib) = self.library_for_write(cx).await?;
        let r = self.progress_write_with(cx, &mut lib, entries, add).await;
        let keep = r.as_ref().is_ok_and(certain);
        if keep {
            self.cache.library.put_back(at, lib);
        }
        r
    }

    /// The resume point to send for one entry (`None`: clear it) and the runtime, or
    /// the outcome without sending.
    async fn progress_target(
        &self,
        cx: &Context,
        rule: &mut Option<PlayedRule>,
        e: &Entry,
        lib: &Library,
        add: bool,
    ) -> Result<std::result::Result<Sent, Outcome>> {
        let Payload::Progress {
            position_ms,
            duration_ms,
            ..
        } = &e.payload
        else {
            return Ok(Err(Outcome::wrong_payload(e, Feature::Progress)));
        };
        let Some(li) = lib.resolve(&e.item) else {
            return Ok(Err(unmatched(lib.partial(), add)));
        };
        if !PLAYABLE.contains(&li.item.kind) {
            return Ok(Err(unsupported(
                "Plex keeps resume points of movies and episodes",
            )));
        }
        let sent = |want: Option<u64>| Sent {
            index: 0,
            rating_key: li.rating_key.clone(),
            want,
            views_before: li.state.view_count,
        };
        if !add {
            if li.state.view_offset.is_none() {
                return Ok(Err(Outcome::AlreadyAbsent));
            }
            return Ok(Ok(sent(None)));
        }
        if li
            .state
            .view_offset
            .is_some_and(|o| o.abs_diff(*position_ms) < SAME_OFFSET_MS)
        {
            return Ok(Err(Outcome::AlreadyPresent));
        }
        if *position_ms == 0 {
            return Ok(Err(unsupported(
                "a resume point at 0 ms is no resume point",
            )));
        }
        let duration = li.duration.or(*duration_ms).unwrap_or(0);
        if duration == 0 {
            return Ok(Err(unsupported(
                "the item's runtime is unknown, so ferry cannot tell whether Plex would count the resume point as a play",
            )));
        }
        if rule.is_none() {
            *rule = Some(self.played_rule(cx).await?);
        }
        let rule = rule.as_ref().expect("read above");
        if !rule.allows(*position_ms, duration) {
            let pct = *position_ms as f64 * 100.0 / duration as f64;
            return Ok(Err(unsupported(format!(
                "a resume point at {pct:.1} % ({position_ms} of {duration} ms) could make Plex count a play: {}",
                rule.why
            ))));
        }
        Ok(Ok(sent(Some(*position_ms))))
    }

    async fn progress_write_with(
        &self,
        cx: &Context,
        lib: &mut Library,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let mut rule: Option<PlayedRule> = None;
        let mut w = BatchWriter::new(cx, entries);
        let mut plan: Vec<Option<Sent>> = vec![None; entries.len()];
        for (i, e) in entries.iter().enumerate() {
            match self.progress_target(cx, &mut rule, e, lib, add).await? {
                Ok(s) => plan[i] = Some(Sent { index: i, ..s }),
                Err(o) => w.settle(i, o),
            }
        }
        let mut sent: Vec<Sent> = Vec::new();
        while let Some(chunk) = w.next_chunk(1)? {
            let i = chunk[0];
            let Some(s) = plan[i].take() else { continue };
            let duration = lib
                .get(&s.rating_key)
                .and_then(|li| li.duration)
                .unwrap_or(0);
            let duration = match &entries[i].payload {
                Payload::Progress { duration_ms, .. } if duration == 0 => duration_ms.unwrap_or(0),
                _ => duration,
            };
            match self
                .timeline(cx, &s.rating_key, s.want.unwrap_or(0), duration)
                .await
            {
                Ok(()) => {
                    sent.push(s);
                    w.record(&chunk, Ok(ChunkAnswer::accepted(1)));
                }
                Err(e) => w.record_one(i, Err(e)),
            }
        }
        if sent.is_empty() {
            return Ok(w.finish());
        }
        let mut keys: Vec<&str> = sent.iter().map(|s| s.rating_key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let (rows, failed) = self.read_back(cx, &keys).await;
        let failed: HashMap<String, String> = failed.into_iter().collect();
        let state: HashMap<String, ItemState> = rows
            .iter()
            .map(|r| (r.rating_key.0.clone(), ItemState::of(r)))
            .collect();
        for s in &sent {
            let o = match failed.get(&s.rating_key) {
                Some(err) => unconfirmed(format!(
                    "Plex accepted the timeline report, but the item could not be read back: {err}"
                )),
                None => judge(s, state.get(&s.rating_key)),
            };
            w.settle(s.index, o);
        }
        for (rk, s) in state {
            if let Some(held) = lib.state_mut(&rk) {
                *held = s;
            }
        }
        Ok(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Envelope;
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

    fn prefs(v: serde_json::Value) -> Prefs {
        serde_json::from_value::<Envelope<Prefs>>(v).unwrap().mc
    }

    #[test]
    fn prefs_values_may_be_numbers_or_strings() {
        let body = json!({"MediaContainer": {"size": 2, "Setting": [
            {"id": "LibraryVideoPlayedThreshold", "type": "int", "value": "85"},
            {"id": "LibraryVideoPlayedAtBehaviour", "type": "text", "value": 0},
        ]}});
        assert_eq!(
            played_settings(prefs(body)).unwrap(),
            (Some(85), Some("0".into()))
        );
        let none = json!({"MediaContainer": {"size": 0}});
        assert_eq!(played_settings(prefs(none)).unwrap(), (None, None));
        let bad = json!({"MediaContainer": {"Setting": [null]}});
        assert!(played_settings(prefs(bad)).is_err());
    }
}
