//! Answers that hold several named lists of rows (`{"movies": [...], "shows": [...]}`),
//! as the Trakt-style `/sync` APIs (Trakt, SIMKL, MDBList) answer.
//!
//! Each row travels to the decoder tagged with the list it came in, so the decoder knows
//! what it holds, and every row is accounted for: a row of a known list the read does
//! not hold (season-level rows of a title read) is skipped; a row of a list nobody
//! expects is undecodable, since it is data the read would otherwise miss silently.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::read::{Row, decode};

/// Which lists of an answer a read holds, and which it knows and skips.
#[derive(Debug, Clone, Copy)]
pub struct Lists {
    pub keep: &'static [&'static str],
    pub skip: &'static [&'static str],
}

#[derive(Deserialize)]
struct Tagged {
    list: String,
    row: Value,
}

impl Lists {
    /// Every row of every list in `body`, tagged with its list (other fields, such as a
    /// pagination block, are left out). A kept list that is neither a list nor `null` is
    /// an error: the answer is not one this read understands.
    pub fn rows(&self, body: Map<String, Value>) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for (name, v) in body {
            match v {
                Value::Array(rows) => out.extend(
                    rows.into_iter()
                        .map(|row| json!({"list": name, "row": row})),
                ),
                Value::Null => {}
                _ if self.keep.contains(&name.as_str()) => {
                    return Err(format!("`{name}` is not a list"));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// A tagged row's list and the row decoded as `W`; or, when it is not one to decode,
    /// the [`Row`] it is (skipped, or bad with the reason).
    pub fn decode<W: DeserializeOwned, T>(&self, raw: &Value) -> Result<(String, W), Row<T>> {
        let t = decode::<Tagged>(raw).map_err(Row::Bad)?;
        if self.skip.contains(&t.list.as_str()) {
            return Err(Row::Skip);
        }
        if !self.keep.contains(&t.list.as_str()) {
            return Err(Row::Bad(format!(
                "a row of an unexpected list `{}`",
                t.list
            )));
        }
        let w = decode::<W>(&t.row).map_err(|e| Row::Bad(format!("{}: {e}", t.list)))?;
        Ok((t.list, w))
    }
}

/// A row as [`Lists::rows`] tags it (for tests and hand-made pages).
pub fn tagged(list: &str, row: Value) -> Value {
    json!({"list": list, "row": row})
}

/// A write body of the same APIs: titles by list (`movies`, `shows`), and episodes
/// under their show with explicit seasons (`{ids, seasons: [{number, episodes: [...]}]}`:
/// a bare show would mean the whole show), shows and seasons in a stable order.
#[derive(Debug, Default)]
pub struct SyncBody {
    lists: BTreeMap<String, Vec<Value>>,
    shows: BTreeMap<String, (Value, BTreeMap<u32, Vec<Value>>)>,
}

impl SyncBody {
    /// A movie or show object (`{ids, …}`) of `list`.
    pub fn title(&mut self, list: &str, body: Value) {
        self.lists.entry(list.to_owned()).or_default().push(body);
    }

    /// An episode object (`{number, …}`) of season `season` of the show `show` (its
    /// object, `{ids}`), which `key` names among the shows of this body.
    pub fn episode(&mut self, key: &str, show: &Value, season: u32, episode: Value) {
        let entry =
            (self.shows.entry(key.to_owned())).or_insert_with(|| (show.clone(), BTreeMap::new()));
        entry.1.entry(season).or_default().push(episode);
    }

    pub fn finish(mut self) -> Value {
        for (mut show, seasons) in self.shows.into_values() {
            let seasons: Vec<Value> = (seasons.into_iter())
                .map(|(number, episodes)| json!({"number": number, "episodes": episodes}))
                .collect();
            show["seasons"] = Value::Array(seasons);
            self.lists.entry("shows".into()).or_default().push(show);
        }
        json!(self.lists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Lists = Lists {
        keep: &["movies", "shows"],
        skip: &["seasons"],
    };

    #[derive(Debug, Deserialize)]
    struct W {
        id: u32,
    }

    #[test]
    fn a_sync_body_groups_episodes_under_their_show_by_season() {
        let mut b = SyncBody::default();
        let show = json!({"ids": {"tvdb": 1}});
        b.title("movies", json!({"ids": {"tmdb": 9}}));
        b.episode("s1", &show, 2, json!({"number": 1}));
        b.episode("s1", &show, 1, json!({"number": 3}));
        b.episode("s1", &show, 2, json!({"number": 2}));
        assert_eq!(
            b.finish(),
            json!({"movies": [{"ids": {"tmdb": 9}}], "shows": [{"ids": {"tvdb": 1}, "seasons": [
                {"number": 1, "episodes": [{"number": 3}]},
                {"number": 2, "episodes": [{"number": 1}, {"number": 2}]},
            ]}]})
        );
    }

    #[test]
    fn rows_are_tagged_and_each_is_kept_skipped_or_bad() {
        let body = json!({"movies": [{"id": 1}, null], "seasons": [{"id": 3}], "lists": [{"id": 4}],
                          "shows": null, "pagination": {"has_more": false}});
        let rows = L.rows(body.as_object().unwrap().clone()).unwrap();
        assert_eq!(rows.len(), 4);
        let got: Vec<Result<(String, W), Row<()>>> = rows.iter().map(|r| L.decode(r)).collect();
        let kept: Vec<_> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].0.as_str(), kept[0].1.id), ("movies", 1));
        let bad: Vec<_> = got
            .iter()
            .filter_map(|r| match r {
                Err(Row::Bad(why)) => Some(why.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            bad.len(),
            2,
            "a null row and a row of an unknown list: {bad:?}"
        );
        assert!(bad.iter().any(|w| w.contains("unexpected list `lists`")));
        assert_eq!(
            got.iter().filter(|r| matches!(r, Err(Row::Skip))).count(),
            1
        );
        let bad = json!({"movies": {"id": 1}});
        assert!(L.rows(bad.as_object().unwrap().clone()).is_err());
    }
}
