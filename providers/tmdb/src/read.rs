//! Reads: a feature is two account lists (movies, TV shows), each through the kit's
//! pager (page numbers with `total_pages` and `total_results` from the body), rows
//! decoded one at a time. The snapshot is complete only when both reads proved it.

use ferry_core::{Context, Entry, Error, Feature, Pager, Paging, Proof, Result, Snapshot};

use crate::api::{Api, PER_PAGE};
use crate::convert::{self, Kind};

/// The account list section a feature is read from.
fn section(feature: Feature) -> Result<&'static str> {
    match feature {
        Feature::Watchlist => Ok("watchlist"),
        Feature::Ratings => Ok("rated"),
        other => Err(Error::unsupported(format!("TMDB holds no {other}")).with_provider("tmdb")),
    }
}

pub(crate) async fn index(api: &Api, cx: &Context, feature: Feature) -> Result<Snapshot> {
    let section = section(feature)?;
    let (mut entries, movies) = read_list(api, cx, feature, section, Kind::Movie).await?;
    let (shows, tv) = read_list(api, cx, feature, section, Kind::Tv).await?;
    entries.extend(shows);
    Ok(movies.and(&tv).snapshot(feature, entries))
}

async fn read_list(
    api: &Api,
    cx: &Context,
    feature: Feature,
    section: &str,
    kind: Kind,
) -> Result<(Vec<Entry>, Proof)> {
    let list = format!(
        "{section}/{}",
        if kind == Kind::Movie { "movies" } else { "tv" }
    );
    let read = Pager::new(cx, list.clone(), Paging::Numbered { limit: PER_PAGE })
        .read(
            |req| api.list_page(cx, &list, req),
            |raw| convert::row(raw, feature),
        )
        .await?;
    let (rows, proof) = read.into_parts();
    let entries = rows.iter().filter_map(|r| convert::entry(feature, kind, r));
    Ok((entries.collect(), proof))
}
