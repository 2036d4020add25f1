//! Writes: favourites (watchlist), played state with its date (history) and resume
//! points (progress), one request per entry through the kit's [`BatchWriter`] (one
//! outcome per entry in order; auth, rate limits and an unreachable server stop the
//! batch). Each write is checked against the user data the server answers with; an
//! answer that does not show the change is `Unresolved(Unconfirmed)`, and an answer that
//! does not decode is a failure, never a confirmation.

use ferry_core::{
    BatchWriter, Context, Entry, Error, ErrorKind, Feature, HISTORY_TOLERANCE_SECS, MediaType,
    Outcome, Payload, Result, Timestamp, UnresolvedReason, WriteReport,
};
use ferry_http::RequestBuilder;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::{Flavor, MediaServer, Method, PLAYABLE, TITLES};
use crate::convert::TICKS_PER_MS;
use crate::model::{Library, UserDataRow, UserState};
use crate::outcome::{unmatched, wrong_payload};

/// An item with its whole `UserData` record, kept as sent (Emby's read-modify-write
/// sends it back whole, fields ferry does not know included).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WithUserData {
    #[serde(default)]
    user_data: Option<Map<String, Value>>,
}

impl MediaServer {
    /// Sends one user-data write and returns the user data the server answered with
    /// (`None` when it answered with an empty body, as Emby's UserData route does).
    async fn send_user_write(
        &self,
        cx: &Context,
        req: RequestBuilder<'_>,
    ) -> Result<Option<UserState>> {
        let resp = req.send(cx).await?;
        if resp.bytes().iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let u: UserDataRow = resp.json()?;
        Ok(Some(UserState::from_wire(&u)))
    }

    fn user_data_post(&self, id: &str, body: Value) -> RequestBuilder<'_> {
        self.call(Method::Post, &self.flavor.user_data(&self.user_id, id))
            .json(&body)
            .idempotent()
    }

    /// The body of a user-data write that changes `changes` and nothing else.
    ///
    /// Jellyfin's `UpdateUserItemDataDto` is all optional: the changed fields alone.
    /// Emby's route takes the whole `UserItemDataDto` (`PlaybackPositionTicks`,
    /// `IsFavorite`, `Played`, `PlayCount` are not optional) and does not document what
    /// becomes of a field left out, so the item's current record is read first and sent
    /// back whole with the changes applied: nothing is reset whichever way Emby behaves.
    async fn user_data_body(
        &self,
        cx: &Context,
        id: &str,
        changes: &[(&str, Value)],
    ) -> Result<Value> {
        let mut record = match self.flavor {
            Flavor::Jellyfin => Map::new(),
            Flavor::Emby => self.current_user_data(cx, id).await?,
        };
        // Derived by the server from the position and the runtime, never stored.
        record.remove("PlayedPercentage");
        for (k, v) in changes {
            record.insert((*k).to_owned(), v.clone());
        }
        Ok(Value::Object(record))
    }

    /// The item's whole `UserData` record as the server holds it now (one request).
    async fn current_user_data(&self, cx: &Context, id: &str) -> Result<Map<String, Value>> {
        let mut req = self.call(Method::Get, &self.flavor.item(&self.user_id, id));
        if let Some(f) = self.flavor.user_data_fields() {
            req = req.query(self.p("fields", "Fields"), f);
        }
        let v: WithUserData = req.send(cx).await?.json()?;
        match v.user_data {
            Some(m) => Ok(m),
            _ => Err(Error::new(
                ErrorKind::MalformedResponse,
                "the item came without its user data, which a write must send back whole",
            )
            .with_provider(self.flavor.provider_id())),
        }
    }

    /// Favourites, played state and resume points: one request per entry (neither
    /// server has a batch route), resolved against the library read the feature's
    /// snapshot came from.
    pub(crate) async fn state_write(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let (at, mut lib) = self.library_for_write(cx).await?;
        let r = self
            .state_write_with(cx, &mut lib, feature, entries, add)
            .await;
        self.done_with_library(at, lib);
        r
    }

    async fn state_write_with(
        &self,
        cx: &Context,
        lib: &mut Library,
        feature: Feature,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        let mut w = BatchWriter::new(cx, entries);
        let mut targets: Vec<Option<String>> = vec![None; entries.len()];
        let types: &[MediaType] = if feature == Feature::Watchlist {
            &TITLES
        } else {
            &PLAYABLE
        };
        for (i, e) in entries.iter().enumerate() {
            if e.feature() != feature {
                w.settle(i, wrong_payload(e, feature));
            } else if !types.contains(&e.item.kind) {
                w.settle(
                    i,
                    Outcome::Unresolved {
                        reason: UnresolvedReason::Unsupported,
                        detail: Some(format!("{feature} holds no {}", e.item.kind)),
                    },
                );
            } else {
                match lib.resolve(&e.item) {
                    Some(li) => targets[i] = Some(li.id.clone()),
                    None => w.settle(i, unmatched(lib.partial(), add)),
                }
            }
        }
        while let Some(chunk) = w.next_chunk(1)? {
            let i = chunk[0];
            let (Some(id), e) = (targets[i].as_deref(), &entries[i]) else {
                continue;
            };
            let u = lib.get(id).map(|li| li.user.clone()).unwrap_or_default();
            let result = match (&e.payload, add) {
                (Payload::Watchlist { .. }, _) => self.favorite(cx, id, &u, add).await,
                (Payload::Watch { watched_at }, true) => {
                    self.mark_played(cx, id, &u, *watched_at).await
                }
                (Payload::Watch { watched_at }, false) => {
                    self.mark_unplayed(cx, id, &u, *watched_at).await
                }
                (Payload::Progress { position_ms, .. }, true) => {
                    self.set_position(cx, id, &u, *position_ms).await
                }
                (Payload::Progress { .. }, false) => self.set_position(cx, id, &u, 0).await,
                _ => Ok((wrong_payload(e, feature), None)),
            };
            let result = result.map(|(o, state)| {
                if let (Some(s), Some(li)) = (state, lib.get_mut(id)) {
                    li.user = s;
                }
                o
            });
            w.record_one(i, result);
        }
        Ok(w.finish())
    }

    async fn favorite(
        &self,
        cx: &Context,
        id: &str,
        u: &UserState,
        on: bool,
    ) -> Result<(Outcome, Option<UserState>)> {
        if u.favorite == on {
            return Ok((
                if on {
                    Outcome::AlreadyPresent
                } else {
                    Outcome::AlreadyAbsent
                },
                None,
            ));
        }
        let route = self.flavor.favorite(&self.user_id, id);
        let method = if on { Method::Post } else { Method::Delete };
        let answer = self
            .send_user_write(cx, self.call(method, &route).idempotent())
            .await?;
        let mut next = u.clone();
        next.favorite = on;
        Ok(match answer {
            Some(s) if s.favorite != on => {
                (unconfirmed("the server did not change the favourite"), None)
            }
            Some(s) => (Outcome::Confirmed, Some(s)),
            None => (Outcome::Confirmed, Some(next)),
        })
    }

    async fn mark_played(
        &self,
        cx: &Context,
        id: &str,
        u: &UserState,
        at: Timestamp,
    ) -> Result<(Outcome, Option<UserState>)> {
        let close =
            |t: Option<i64>| t.is_some_and(|t| t.abs_diff(at.unix()) <= HISTORY_TOLERANCE_SECS);
        if u.played {
            match u.last_played {
                // The server keeps one play per title, the latest: a play at or before the
                // one it shows is already covered by it.
                Some(t) if close(Some(t)) || at.unix() < t => {
                    return Ok((Outcome::AlreadyPresent, None));
                }
                // A later play moves the title's date forward (below), as watching it
                // again would.
                Some(_) => {}
                // Played without a date: give the play its date.
                None => return self.set_last_played(cx, id, u, at).await,
            }
        }
        let (param, value) = self.flavor.date_played(at);
        let route = self.flavor.played(&self.user_id, id);
        let answer = self
            .send_user_write(
                cx,
                self.call(Method::Post, &route)
                    .query(param, value)
                    .idempotent(),
            )
            .await?;
        let mut next = u.clone();
        next.played = true;
        next.last_played = Some(at.unix());
        next.position_ms = 0;
        match answer {
            Some(s) if !s.played => {
                Ok((unconfirmed("the server did not mark the item played"), None))
            }
            // Some servers stamp their own clock; set the date explicitly.
            Some(s) if !close(s.last_played) => self.set_last_played(cx, id, &s, at).await,
            Some(s) => Ok((Outcome::Confirmed, Some(s))),
            None => Ok((Outcome::Confirmed, Some(next))),
        }
    }

    async fn set_last_played(
        &self,
        cx: &Context,
        id: &str,
        u: &UserState,
        at: Timestamp,
    ) -> Result<(Outcome, Option<UserState>)> {
        let body = self
            .user_data_body(
                cx,
                id,
                &[
                    ("Played", json!(true)),
                    ("LastPlayedDate", json!(at.to_rfc3339())),
                ],
            )
            .await?;
        let answer = self
            .send_user_write(cx, self.user_data_post(id, body))
            .await?;
        let mut next = u.clone();
        next.played = true;
        next.last_played = Some(at.unix());
        Ok(match answer {
            Some(s)
                if s.last_played
                    .is_some_and(|t| t.abs_diff(at.unix()) <= HISTORY_TOLERANCE_SECS) =>
            {
                (Outcome::Confirmed, Some(s))
            }
            Some(_) => (unconfirmed("the server did not keep the play's date"), None),
            None => (Outcome::Confirmed, Some(next)),
        })
    }

    async fn mark_unplayed(
        &self,
        cx: &Context,
        id: &str,
        u: &UserState,
        at: Timestamp,
    ) -> Result<(Outcome, Option<UserState>)> {
        let matches = u.played
            && u.last_played
                .is_some_and(|t| t.abs_diff(at.unix()) <= HISTORY_TOLERANCE_SECS);
        if !matches {
            return Ok((Outcome::AlreadyAbsent, None));
        }
        let route = self.flavor.played(&self.user_id, id);
        let answer = self
            .send_user_write(cx, self.call(Method::Delete, &route).idempotent())
            .await?;
        let mut next = u.clone();
        next.played = false;
        next.last_played = None;
        Ok(match answer {
            Some(s) if s.played => (unconfirmed("the server kept the item played"), None),
            Some(s) => (Outcome::Confirmed, Some(s)),
            None => (Outcome::Confirmed, Some(next)),
        })
    }

    async fn set_position(
        &self,
        cx: &Context,
        id: &str,
        u: &UserState,
        position_ms: u64,
    ) -> Result<(Outcome, Option<UserState>)> {
        if position_ms == 0 && u.position_ms == 0 {
            return Ok((Outcome::AlreadyAbsent, None));
        }
        if position_ms > 0 && u.position_ms.abs_diff(position_ms) < 1000 {
            return Ok((Outcome::AlreadyPresent, None));
        }
        // Only the position: touching LastPlayedDate would move the item's history play
        // (Emby gets its own record back with the position changed).
        let body = self
            .user_data_body(
                cx,
                id,
                &[("PlaybackPositionTicks", json!(position_ms * TICKS_PER_MS))],
            )
            .await?;
        let answer = self
            .send_user_write(cx, self.user_data_post(id, body))
            .await?;
        let mut next = u.clone();
        next.position_ms = position_ms;
        Ok(match answer {
            Some(s) if s.position_ms.abs_diff(position_ms) >= 1000 => {
                (unconfirmed("the server did not keep the position"), None)
            }
            Some(s) => (Outcome::Confirmed, Some(s)),
            None => (Outcome::Confirmed, Some(next)),
        })
    }
}

fn unconfirmed(detail: &str) -> Outcome {
    Outcome::Unresolved {
        reason: UnresolvedReason::Unconfirmed,
        detail: Some(detail.to_owned()),
    }
}
