//! The Trakt simulator's title database.
//!
//! Sample titles ([`crate::samples`]) resolve by id arithmetic, so any sample number is
//! known without being stored: movie `n` has trakt id `500000+n` and the sample tmdb/imdb
//! ids, show `n` trakt id `400000+n`, and every sample show has seasons `1..=5` with
//! episodes `1..=24` whose tvdb ids are the ones [`crate::samples::episode`] uses. Other
//! titles can be registered at run time ("extras"); anything else is `not_found`, as on
//! Trakt.

use ferry_core::{IdKind, Ids, Item, MediaType};
use serde_json::{Map, Value, json};

use crate::samples;

/// Sample movies `0..MAX_MOVIES` exist.
pub(crate) const MAX_MOVIES: u64 = 100_000;
/// Sample shows `0..MAX_SHOWS` exist.
pub(crate) const MAX_SHOWS: u64 = 1_000;
/// Seasons per sample show.
pub(crate) const SEASONS: u32 = 5;
/// Episodes per season.
pub(crate) const EPISODES: u32 = 24;
/// Runtime of every movie, in minutes (the samples' `duration_ms` of 6 000 000).
pub(crate) const MOVIE_RUNTIME: u32 = 100;
/// Runtime of every episode, in minutes.
pub(crate) const EPISODE_RUNTIME: u32 = 50;

const MOVIE_TRAKT: u64 = 500_000;
const SHOW_TRAKT: u64 = 400_000;
const SEASON_TRAKT: u64 = 3_000_000;
const EPISODE_TRAKT: u64 = 20_000_000;
const EXTRA_TRAKT: u64 = 90_000_000;
const EXTRA_SEASON_TRAKT: u64 = 91_000_000;
const EXTRA_EPISODE_TRAKT: u64 = 100_000_000;
const MAX_EXTRAS: u64 = 10_000;

const MOVIE_TMDB: u64 = 900_000;
const SHOW_TMDB: u64 = 800_000;
const SHOW_TVDB: u64 = 700_000;
const MOVIE_IMDB: u64 = 9_000_000;
const SHOW_IMDB: u64 = 8_000_000;
const SEASON_TVDB: u64 = 5_000_000;
const SEASON_TMDB: u64 = 6_000_000;
const EPISODE_TVDB: u64 = 10_000_000;
const EPISODE_TMDB: u64 = 40_000_000;

/// One title as Trakt knows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Title {
    pub(crate) kind: MediaType,
    pub(crate) trakt: u64,
    pub(crate) title: Option<String>,
    pub(crate) year: Option<u16>,
    pub(crate) slug: Option<String>,
    pub(crate) imdb: Option<String>,
    pub(crate) tmdb: Option<u64>,
    pub(crate) tvdb: Option<u64>,
    /// The show's trakt id (seasons and episodes).
    pub(crate) show: Option<u64>,
    pub(crate) season: Option<u32>,
    /// The episode number (episodes).
    pub(crate) number: Option<u32>,
    pub(crate) runtime: Option<u32>,
}

impl Title {
    fn bare(kind: MediaType, trakt: u64) -> Self {
        Title {
            kind,
            trakt,
            title: None,
            year: None,
            slug: None,
            imdb: None,
            tmdb: None,
            tvdb: None,
            show: None,
            season: None,
            number: None,
            runtime: None,
        }
    }

    /// The key rows are stored under.
    pub(crate) fn key(&self) -> (MediaType, u64) {
        (self.kind, self.trakt)
    }

    /// Trakt's `ids` object for this kind of title.
    pub(crate) fn ids_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("trakt".into(), json!(self.trakt));
        match self.kind {
            MediaType::Movie => {
                m.insert("slug".into(), json!(self.slug));
                m.insert("imdb".into(), json!(self.imdb));
                m.insert("tmdb".into(), json!(self.tmdb));
            }
            MediaType::Show => {
                m.insert("slug".into(), json!(self.slug));
                m.insert("tvdb".into(), json!(self.tvdb));
                m.insert("imdb".into(), json!(self.imdb));
                m.insert("tmdb".into(), json!(self.tmdb));
            }
            _ => {
                m.insert("tvdb".into(), json!(self.tvdb));
                if self.kind == MediaType::Episode {
                    m.insert("imdb".into(), json!(self.imdb));
                }
                m.insert("tmdb".into(), json!(self.tmdb));
            }
        }
        Value::Object(m)
    }

    /// Trakt's standard media object; `full` adds `runtime` (as `?extended=full` does).
    pub(crate) fn render(&self, full: bool) -> Value {
        let mut v = match self.kind {
            MediaType::Movie | MediaType::Show => json!({
                "title": self.title,
                "year": self.year,
                "ids": self.ids_json(),
            }),
            MediaType::Season => json!({
                "number": self.season,
                "ids": self.ids_json(),
            }),
            _ => json!({
                "season": self.season,
                "number": self.number,
                "title": self.title,
                "ids": self.ids_json(),
            }),
        };
        if full && let (Some(rt), Some(obj)) = (self.runtime, v.as_object_mut()) {
            obj.insert("runtime".into(), json!(rt));
        }
        v
    }

    /// The singular type name (`movie`, `show`, `season`, `episode`).
    pub(crate) fn type_name(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The plural bucket name used in request and response bodies.
    pub(crate) fn bucket(&self) -> &'static str {
        bucket_of(self.kind)
    }
}

pub(crate) fn bucket_of(kind: MediaType) -> &'static str {
    match kind {
        MediaType::Movie => "movies",
        MediaType::Show => "shows",
        MediaType::Season => "seasons",
        _ => "episodes",
    }
}

/// The sample titles plus registered extras.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    extras: Vec<Title>,
}

fn range(v: u64, base: u64, len: u64) -> Option<u64> {
    (v >= base && v < base + len).then(|| v - base)
}

fn sample_movie(n: u64) -> Title {
    let item = samples::movie(n as u32);
    Title {
        title: item.title,
        year: item.year,
        slug: Some(format!("sample-movie-{n}")),
        imdb: Some(format!("tt{:07}", MOVIE_IMDB + n)),
        tmdb: Some(MOVIE_TMDB + n),
        runtime: Some(MOVIE_RUNTIME),
        ..Title::bare(MediaType::Movie, MOVIE_TRAKT + n)
    }
}

fn sample_show(n: u64) -> Title {
    let item = samples::show(n as u32);
    Title {
        title: item.title,
        year: item.year,
        slug: Some(format!("sample-show-{n}")),
        imdb: Some(format!("tt{:07}", SHOW_IMDB + n)),
        tmdb: Some(SHOW_TMDB + n),
        tvdb: Some(SHOW_TVDB + n),
        runtime: Some(EPISODE_RUNTIME),
        ..Title::bare(MediaType::Show, SHOW_TRAKT + n)
    }
}

fn valid_season(s: u64) -> bool {
    (1..=SEASONS as u64).contains(&s)
}

fn valid_episode(e: u64) -> bool {
    (1..=EPISODES as u64).contains(&e)
}

/// Season `s` of the show whose child ids start at `season_base` (trakt), with sample
/// tvdb/tmdb ids when `sample` is the sample show number.
fn season_of(show: &Title, s: u32, sample: Option<u64>) -> Title {
    let (trakt, tvdb, tmdb) = match sample {
        Some(n) => (
            SEASON_TRAKT + n * 100 + s as u64,
            Some(SEASON_TVDB + n * 100 + s as u64),
            Some(SEASON_TMDB + n * 100 + s as u64),
        ),
        None => (
            EXTRA_SEASON_TRAKT + (show.trakt - EXTRA_TRAKT) * 100 + s as u64,
            None,
            None,
        ),
    };
    Title {
        tvdb,
        tmdb,
        show: Some(show.trakt),
        season: Some(s),
        ..Title::bare(MediaType::Season, trakt)
    }
}

fn episode_of(show: &Title, s: u32, e: u32, sample: Option<u64>) -> Title {
    let coord = s as u64 * 100 + e as u64;
    let (trakt, tvdb, tmdb) = match sample {
        Some(n) => (
            EPISODE_TRAKT + n * 10_000 + coord,
            Some(EPISODE_TVDB + n * 10_000 + coord),
            Some(EPISODE_TMDB + n * 10_000 + coord),
        ),
        None => (
            EXTRA_EPISODE_TRAKT + (show.trakt - EXTRA_TRAKT) * 10_000 + coord,
            None,
            None,
        ),
    };
    Title {
        title: Some(format!("Episode {e}")),
        tvdb,
        tmdb,
        show: Some(show.trakt),
        season: Some(s),
        number: Some(e),
        runtime: Some(EPISODE_RUNTIME),
        ..Title::bare(MediaType::Episode, trakt)
    }
}

fn id_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn id_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_ascii_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn imdb_number(v: &str) -> Option<u64> {
    v.strip_prefix("tt")?.parse().ok()
}

impl Catalog {
    /// The title with this kind and trakt id.
    pub(crate) fn get(&self, kind: MediaType, trakt: u64) -> Option<Title> {
        let t = self.by_trakt(trakt)?;
        (t.kind == kind).then_some(t)
    }

    fn extra(&self, k: u64) -> Option<&Title> {
        self.extras.get(k as usize)
    }

    fn by_trakt(&self, id: u64) -> Option<Title> {
        if let Some(n) = range(id, MOVIE_TRAKT, MAX_MOVIES) {
            return Some(sample_movie(n));
        }
        if let Some(n) = range(id, SHOW_TRAKT, MAX_SHOWS) {
            return Some(sample_show(n));
        }
        if let Some(x) = range(id, SEASON_TRAKT, MAX_SHOWS * 100) {
            let (n, s) = (x / 100, x % 100);
            return valid_season(s).then(|| season_of(&sample_show(n), s as u32, Some(n)));
        }
        if let Some(x) = range(id, EPISODE_TRAKT, MAX_SHOWS * 10_000) {
            let (n, s, e) = (x / 10_000, (x % 10_000) / 100, x % 100);
            return (valid_season(s) && valid_episode(e))
                .then(|| episode_of(&sample_show(n), s as u32, e as u32, Some(n)));
        }
        if let Some(k) = range(id, EXTRA_TRAKT, MAX_EXTRAS) {
            return self.extra(k).cloned();
        }
        if let Some(x) = range(id, EXTRA_SEASON_TRAKT, MAX_EXTRAS * 100) {
            let (k, s) = (x / 100, x % 100);
            let show = self.extra(k).filter(|t| t.kind == MediaType::Show)?;
            return valid_season(s).then(|| season_of(show, s as u32, None));
        }
        if let Some(x) = range(id, EXTRA_EPISODE_TRAKT, MAX_EXTRAS * 10_000) {
            let (k, s, e) = (x / 10_000, (x % 10_000) / 100, x % 100);
            let show = self.extra(k).filter(|t| t.kind == MediaType::Show)?;
            return (valid_season(s) && valid_episode(e))
                .then(|| episode_of(show, s as u32, e as u32, None));
        }
        None
    }

    /// The sample show number of a sample show title.
    fn sample_no(show: &Title) -> Option<u64> {
        range(show.trakt, SHOW_TRAKT, MAX_SHOWS)
    }

    /// Season `s` (and episode `e`) of `show`.
    pub(crate) fn child(&self, show: &Title, s: u32, e: Option<u32>) -> Option<Title> {
        if show.kind != MediaType::Show || !valid_season(s as u64) {
            return None;
        }
        let sample = Self::sample_no(show);
        match e {
            None => Some(season_of(show, s, sample)),
            Some(e) if valid_episode(e as u64) => Some(episode_of(show, s, e, sample)),
            Some(_) => None,
        }
    }

    /// Every episode of `show` (of one season when given).
    pub(crate) fn episodes(&self, show: &Title, season: Option<u32>) -> Vec<Title> {
        let seasons: Vec<u32> = match season {
            Some(s) => vec![s],
            None => (1..=SEASONS).collect(),
        };
        seasons
            .into_iter()
            .flat_map(|s| (1..=EPISODES).filter_map(move |e| self.child(show, s, Some(e))))
            .collect()
    }

    /// The show a season or episode belongs to.
    pub(crate) fn show_of(&self, t: &Title) -> Option<Title> {
        t.show.and_then(|s| self.get(MediaType::Show, s))
    }

    /// Resolves a request's media object of `kind`: by ids in Trakt's order (trakt, imdb,
    /// tmdb, tvdb, slug), then by title and year (movies and shows).
    pub(crate) fn find(&self, kind: MediaType, obj: &Value) -> Option<Title> {
        let ids = obj.get("ids").cloned().unwrap_or(Value::Null);
        let get = |k: &str| ids.get(k).filter(|v| !v.is_null());
        if let Some(t) = get("trakt")
            .and_then(id_u64)
            .and_then(|id| self.get(kind, id))
        {
            return Some(t);
        }
        if let Some(t) = get("imdb")
            .and_then(id_str)
            .and_then(|v| self.by_imdb(kind, &v))
        {
            return Some(t);
        }
        if let Some(t) = get("tmdb")
            .and_then(id_u64)
            .and_then(|v| self.by_tmdb(kind, v))
        {
            return Some(t);
        }
        if let Some(t) = get("tvdb")
            .and_then(id_u64)
            .and_then(|v| self.by_tvdb(kind, v))
        {
            return Some(t);
        }
        if let Some(t) = get("slug")
            .and_then(id_str)
            .and_then(|v| self.by_slug(kind, &v))
        {
            return Some(t);
        }
        let has_ids = ids
            .as_object()
            .is_some_and(|m| m.values().any(|v| !v.is_null()));
        if has_ids || !matches!(kind, MediaType::Movie | MediaType::Show) {
            return None;
        }
        let title = obj.get("title").and_then(Value::as_str)?;
        let year = obj.get("year").and_then(Value::as_u64);
        self.by_title(kind, title, year)
    }

    fn extras_where(&self, kind: MediaType, f: impl Fn(&Title) -> bool) -> Option<Title> {
        self.extras.iter().find(|t| t.kind == kind && f(t)).cloned()
    }

    fn by_imdb(&self, kind: MediaType, v: &str) -> Option<Title> {
        let n = imdb_number(v);
        let hit = match kind {
            MediaType::Movie => n
                .and_then(|n| range(n, MOVIE_IMDB, MAX_MOVIES))
                .map(sample_movie),
            MediaType::Show => n
                .and_then(|n| range(n, SHOW_IMDB, MAX_SHOWS))
                .map(sample_show),
            _ => None,
        };
        hit.or_else(|| self.extras_where(kind, |t| t.imdb.as_deref() == Some(v)))
    }

    fn by_tmdb(&self, kind: MediaType, v: u64) -> Option<Title> {
        let hit = match kind {
            MediaType::Movie => range(v, MOVIE_TMDB, MAX_MOVIES).map(sample_movie),
            MediaType::Show => range(v, SHOW_TMDB, MAX_SHOWS).map(sample_show),
            MediaType::Season => {
                range(v, SEASON_TMDB, MAX_SHOWS * 100).and_then(|x| self.by_trakt(SEASON_TRAKT + x))
            }
            MediaType::Episode => range(v, EPISODE_TMDB, MAX_SHOWS * 10_000)
                .and_then(|x| self.by_trakt(EPISODE_TRAKT + x)),
            MediaType::Playlist => None,
        };
        hit.or_else(|| self.extras_where(kind, |t| t.tmdb == Some(v)))
    }

    fn by_tvdb(&self, kind: MediaType, v: u64) -> Option<Title> {
        let hit = match kind {
            MediaType::Show => range(v, SHOW_TVDB, MAX_SHOWS).map(sample_show),
            MediaType::Season => {
                range(v, SEASON_TVDB, MAX_SHOWS * 100).and_then(|x| self.by_trakt(SEASON_TRAKT + x))
            }
            MediaType::Episode => range(v, EPISODE_TVDB, MAX_SHOWS * 10_000)
                .and_then(|x| self.by_trakt(EPISODE_TRAKT + x)),
            _ => None,
        };
        hit.or_else(|| self.extras_where(kind, |t| t.tvdb == Some(v)))
    }

    fn by_slug(&self, kind: MediaType, v: &str) -> Option<Title> {
        let hit = match kind {
            MediaType::Movie => v
                .strip_prefix("sample-movie-")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n < MAX_MOVIES)
                .map(sample_movie),
            MediaType::Show => v
                .strip_prefix("sample-show-")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n < MAX_SHOWS)
                .map(sample_show),
            _ => None,
        };
        hit.or_else(|| self.extras_where(kind, |t| t.slug.as_deref() == Some(v)))
    }

    fn by_title(&self, kind: MediaType, title: &str, year: Option<u64>) -> Option<Title> {
        let year_ok = |t: &Title| year.is_none_or(|y| t.year.map(u64::from) == Some(y));
        let same = |t: &Title| {
            t.title
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(title.trim()))
                && year_ok(t)
        };
        let n: Option<u64> = title.trim().rsplit(' ').next().and_then(|n| n.parse().ok());
        let sample = match kind {
            MediaType::Movie => n.filter(|n| *n < MAX_MOVIES).map(sample_movie),
            MediaType::Show => n.filter(|n| *n < MAX_SHOWS).map(sample_show),
            _ => None,
        };
        sample
            .filter(same)
            .or_else(|| self.extras_where(kind, same))
    }

    /// The title for a ferry item: its own ids, or (seasons and episodes) its show's ids
    /// and numbers.
    pub(crate) fn resolve_item(&self, item: &Item) -> Option<Title> {
        match item.kind {
            MediaType::Movie | MediaType::Show => self.find(item.kind, &item_obj(item, &item.ids)),
            MediaType::Season | MediaType::Episode => {
                let own = self.find(item.kind, &json!({"ids": ids_obj(&item.ids)}));
                if own.is_some() {
                    return own;
                }
                let show = self.find(MediaType::Show, &json!({"ids": ids_obj(&item.show_ids)}))?;
                let e = (item.kind == MediaType::Episode).then_some(item.episode?);
                self.child(&show, item.season?, e)
            }
            MediaType::Playlist => None,
        }
    }

    /// Resolves a ferry item, registering it (and, for seasons and episodes, its show) as
    /// an extra title when it is unknown. `None` for items that cannot be titles.
    pub(crate) fn register(&mut self, item: &Item) -> Option<Title> {
        if let Some(t) = self.resolve_item(item) {
            return Some(t);
        }
        match item.kind {
            MediaType::Movie | MediaType::Show => {
                let k = self.extras.len() as u64;
                if k >= MAX_EXTRAS {
                    return None;
                }
                let t = Title {
                    title: item.title.clone(),
                    year: item.year,
                    slug: item.ids.get(IdKind::Slug).map(str::to_owned),
                    imdb: item.ids.get(IdKind::Imdb).map(str::to_owned),
                    tmdb: item.ids.get(IdKind::Tmdb).and_then(|v| v.parse().ok()),
                    tvdb: item.ids.get(IdKind::Tvdb).and_then(|v| v.parse().ok()),
                    runtime: Some(if item.kind == MediaType::Movie {
                        MOVIE_RUNTIME
                    } else {
                        EPISODE_RUNTIME
                    }),
                    ..Title::bare(item.kind, EXTRA_TRAKT + k)
                };
                self.extras.push(t.clone());
                Some(t)
            }
            MediaType::Season | MediaType::Episode => {
                let mut show = Item::show(
                    item.show_title
                        .clone()
                        .unwrap_or_else(|| "Unknown Show".into()),
                    0,
                    item.show_ids.clone(),
                );
                show.year = None;
                let show = self.register(&show)?;
                let e = (item.kind == MediaType::Episode).then_some(item.episode?);
                self.child(&show, item.season?, e)
            }
            MediaType::Playlist => None,
        }
    }

    /// A ferry item for a title (what a provider reading the simulator should see).
    pub(crate) fn to_item(&self, t: &Title) -> Item {
        let ids = ids_of(t);
        match t.kind {
            MediaType::Movie | MediaType::Show => Item {
                title: t.title.clone(),
                year: t.year,
                ids,
                ..Item::new(t.kind)
            },
            _ => {
                let show = self.show_of(t);
                Item {
                    title: t.title.clone(),
                    ids,
                    show_ids: show.as_ref().map(ids_of).unwrap_or_default(),
                    show_title: show.and_then(|s| s.title),
                    season: t.season,
                    episode: t.number,
                    ..Item::new(t.kind)
                }
            }
        }
    }
}

fn ids_of(t: &Title) -> Ids {
    let mut ids = Ids::new().with(IdKind::Trakt, &t.trakt.to_string());
    if let Some(v) = &t.imdb {
        ids.set(IdKind::Imdb, v);
    }
    if let Some(v) = t.tmdb {
        ids.set(IdKind::Tmdb, &v.to_string());
    }
    if let Some(v) = t.tvdb {
        ids.set(IdKind::Tvdb, &v.to_string());
    }
    if let Some(v) = &t.slug {
        ids.set(IdKind::Slug, v);
    }
    ids
}

/// A Trakt `ids` object for ferry ids (numeric ids as numbers).
pub(crate) fn ids_obj(ids: &Ids) -> Value {
    let mut m = Map::new();
    for (k, v) in ids.iter() {
        let val = match k {
            IdKind::Trakt | IdKind::Tmdb | IdKind::Tvdb => match v.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => continue,
            },
            IdKind::Imdb | IdKind::Slug => json!(v),
            _ => continue,
        };
        m.insert(k.as_str().to_owned(), val);
    }
    Value::Object(m)
}

fn item_obj(item: &Item, ids: &Ids) -> Value {
    json!({"ids": ids_obj(ids), "title": item.title, "year": item.year})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_resolve_by_every_id() {
        let c = Catalog::default();
        let m = samples::movie(42);
        let t = c.resolve_item(&m).unwrap();
        assert_eq!(t.trakt, 500_042);
        assert_eq!(t.title, m.title);
        for ids in [
            json!({"tmdb": 900_042}),
            json!({"imdb": "tt9000042"}),
            json!({"slug": "sample-movie-42"}),
            json!({"trakt": "500042"}),
        ] {
            assert_eq!(
                c.find(MediaType::Movie, &json!({ "ids": ids })),
                Some(t.clone())
            );
        }
        assert_eq!(
            c.find(MediaType::Movie, &json!({"title": m.title, "year": m.year})),
            Some(t.clone())
        );
        assert_eq!(
            c.find(MediaType::Show, &json!({"ids": {"tmdb": 900_042}})),
            None
        );
        assert_eq!(c.find(MediaType::Movie, &json!({"ids": {"tmdb": 1}})), None);
        let back = c.to_item(&t);
        assert_eq!(back.key(), m.key());
    }

    #[test]
    fn sample_episodes_resolve_by_show_or_own_ids() {
        let c = Catalog::default();
        let e = samples::episode(7, 1, 3);
        let t = c.resolve_item(&e).unwrap();
        assert_eq!((t.season, t.number), (Some(1), Some(3)));
        assert_eq!(t.tvdb, Some(10_070_103));
        let back = c.to_item(&t);
        assert_eq!(back.key(), e.key());
        let by_show = c.child(&c.resolve_item(&samples::show(7)).unwrap(), 1, Some(3));
        assert_eq!(by_show, Some(t.clone()));
        assert_eq!(c.get(MediaType::Episode, t.trakt), Some(t));
        assert_eq!(
            c.episodes(&sample_show(7), Some(2)).len(),
            EPISODES as usize
        );
        assert!(c.child(&sample_show(7), 9, None).is_none());
    }

    #[test]
    fn unknown_items_register_as_extras() {
        let mut c = Catalog::default();
        let m = Item::movie("Odd", 1990, Ids::new().with(IdKind::Imdb, "tt0000123"));
        assert!(c.resolve_item(&m).is_none());
        let t = c.register(&m).unwrap();
        assert_eq!(c.resolve_item(&m), Some(t.clone()));
        assert_eq!(c.get(MediaType::Movie, t.trakt), Some(t));
        let ep = Item::episode("Odd Show", Ids::new().with(IdKind::Tmdb, "123"), 2, 4);
        let et = c.register(&ep).unwrap();
        assert_eq!(c.resolve_item(&ep), Some(et.clone()));
        assert_eq!(c.to_item(&et).key(), ep.key());
    }
}
