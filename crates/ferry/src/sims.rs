//! Simulators the CLI serves: `ferry simulate` (one service, for integrators' CI) and
//! `ferry demo` (Plex, Jellyfin and Trakt seeded with a realistic library).

use ferry_core::Timestamp;
use ferry_testkit::samples;
use ferry_testkit::sim::jellyfin::JellyfinSim;
use ferry_testkit::sim::mdblist::MdblistSim;
use ferry_testkit::sim::plex::PlexSim;
use ferry_testkit::sim::simkl::SimklSim;
use ferry_testkit::sim::trakt::TraktSim;
use serde_json::{Map, Value, json};

/// The services `ferry simulate` can serve.
pub(crate) const SIMULATED: [&str; 6] = ["trakt", "plex", "jellyfin", "emby", "simkl", "mdblist"];

enum Handle {
    Trakt(TraktSim),
    Plex(PlexSim),
    Jellyfin(JellyfinSim),
    Simkl(SimklSim),
    Mdblist(MdblistSim),
}

/// A running simulator and the provider config that points at it.
pub(crate) struct RunningSim {
    pub(crate) kind: &'static str,
    /// `[providers.<instance>]` values (besides `kind`) for a provider using this simulator.
    pub(crate) config: Map<String, Value>,
    handle: Handle,
}

impl std::fmt::Debug for RunningSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSim")
            .field("kind", &self.kind)
            .field("uri", &self.uri())
            .finish()
    }
}

impl RunningSim {
    pub(crate) fn uri(&self) -> String {
        match &self.handle {
            Handle::Trakt(s) => s.uri(),
            Handle::Plex(s) => s.uri(),
            Handle::Jellyfin(s) => s.uri(),
            Handle::Simkl(s) => s.uri(),
            Handle::Mdblist(s) => s.uri(),
        }
    }

    /// Requests the simulator has answered so far.
    pub(crate) fn requests(&self) -> u64 {
        match &self.handle {
            Handle::Trakt(s) => s.total_requests(),
            Handle::Plex(s) => s.total_requests(),
            Handle::Jellyfin(s) => s.total_requests(),
            Handle::Simkl(s) => s.total_requests(),
            Handle::Mdblist(s) => s.total_requests(),
        }
    }

    /// The config snippet a user pastes to point ferry at this simulator.
    pub(crate) fn toml_snippet(&self, instance: &str) -> String {
        let mut s = format!("[providers.{instance}]\nkind = \"{}\"\n", self.kind);
        for (k, v) in &self.config {
            s.push_str(&format!("{k} = {v}\n"));
        }
        s
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Starts the simulator of `kind` holding `items` titles.
pub(crate) async fn start(kind: &str, items: u32) -> Result<RunningSim, String> {
    Ok(match kind {
        "trakt" => {
            let sim = TraktSim::start().await;
            let n = items.min(5_000);
            let plays: Vec<_> = (0..n)
                .map(|i| (samples::movie(i), samples::time(3_600 * i64::from(i))))
                .collect();
            sim.seed_history(&plays);
            sim.seed_watchlist(&(0..n.min(100)).map(samples::movie).collect::<Vec<_>>());
            let config = obj(
                json!({"base_url": sim.uri(), "client_id": sim.client_id(), "access_token": sim.access_token()}),
            );
            RunningSim {
                kind: "trakt",
                config,
                handle: Handle::Trakt(sim),
            }
        }
        "plex" => {
            let sim = PlexSim::builder().movies(items).start().await;
            let config = obj(
                json!({"base_url": sim.uri(), "discover_url": sim.discover_uri(), "plex_tv_url": sim.plex_tv_uri(), "token": sim.token()}),
            );
            RunningSim {
                kind: "plex",
                config,
                handle: Handle::Plex(sim),
            }
        }
        "jellyfin" | "emby" => {
            let b = JellyfinSim::builder().movies(items);
            let sim = if kind == "emby" {
                b.flavor(ferry_testkit::sim::jellyfin::Flavor::Emby)
                    .start()
                    .await
            } else {
                b.start().await
            };
            let config = obj(
                json!({"base_url": sim.uri(), "api_key": sim.token(), "user_id": sim.user_id()}),
            );
            RunningSim {
                kind: if kind == "emby" { "emby" } else { "jellyfin" },
                config,
                handle: Handle::Jellyfin(sim),
            }
        }
        "simkl" => {
            let sim = SimklSim::builder().movies(items).start().await;
            let config = obj(
                json!({"base_url": sim.uri(), "client_id": sim.client_id(), "access_token": sim.token()}),
            );
            RunningSim {
                kind: "simkl",
                config,
                handle: Handle::Simkl(sim),
            }
        }
        "mdblist" => {
            let sim = MdblistSim::builder().movies(items).start().await;
            let config = obj(json!({"base_url": sim.uri(), "api_key": sim.api_key()}));
            RunningSim {
                kind: "mdblist",
                config,
                handle: Handle::Mdblist(sim),
            }
        }
        other => {
            return Err(format!(
                "no simulator for `{other}`; simulated services: {}",
                SIMULATED.join(", ")
            ));
        }
    })
}

/// The demo's three services, seeded like a real household: a Plex server and a Jellyfin
/// server with the same library of `movies` films plus shows, each with its own viewing
/// history, ratings and watchlist, and a Trakt account that already knows some of it.
pub(crate) struct DemoWorld {
    pub(crate) plex: RunningSim,
    pub(crate) jellyfin: RunningSim,
    pub(crate) trakt: RunningSim,
}

pub(crate) async fn start_demo(movies: u32, shows: u32) -> DemoWorld {
    let plex = PlexSim::builder()
        .movies(movies)
        .shows(shows, 2, 12)
        .start()
        .await;
    let jellyfin = JellyfinSim::builder()
        .movies(movies)
        .shows(shows, 2, 12)
        .start()
        .await;
    let trakt = TraktSim::start().await;
    let base = samples::BASE_TIME;
    for n in 0..movies {
        let key = PlexSim::movie_key(n);
        if n % 3 == 0 {
            plex.seed_play(key, base + 3_600 * i64::from(n));
        }
        if n % 7 == 0 {
            plex.seed_rating(key, Some(f64::from(2 + (n % 5) * 2)));
        }
        if n % 50 == 0 {
            plex.seed_watchlist(key);
        }
        let id = jellyfin.movie_id(n);
        if n % 4 == 1 {
            jellyfin.seed_played(&id, base + 1_800 * i64::from(n));
        }
        if n % 40 == 3 {
            jellyfin.seed_favorite(&id, true);
        }
    }
    let known: Vec<_> = (0..movies)
        .filter(|n| n % 9 == 0)
        .map(|n| {
            (
                samples::movie(n),
                Timestamp::from_unix(base + 3_600 * i64::from(n)),
            )
        })
        .collect();
    trakt.seed_history(&known);
    trakt.seed_watchlist(
        &(0..movies)
            .filter(|n| n % 97 == 5)
            .map(samples::movie)
            .collect::<Vec<_>>(),
    );
    trakt.seed_ratings(
        &(0..movies)
            .filter(|n| n % 13 == 2)
            .map(|n| (samples::movie(n), (n % 10 + 1) as u8))
            .collect::<Vec<_>>(),
    );
    DemoWorld {
        plex: RunningSim {
            kind: "plex",
            config: obj(
                json!({"base_url": plex.uri(), "discover_url": plex.discover_uri(), "plex_tv_url": plex.plex_tv_uri(), "token": plex.token()}),
            ),
            handle: Handle::Plex(plex),
        },
        jellyfin: RunningSim {
            kind: "jellyfin",
            config: obj(
                json!({"base_url": jellyfin.uri(), "api_key": jellyfin.token(), "user_id": jellyfin.user_id()}),
            ),
            handle: Handle::Jellyfin(jellyfin),
        },
        trakt: RunningSim {
            kind: "trakt",
            config: obj(
                json!({"base_url": trakt.uri(), "client_id": trakt.client_id(), "access_token": trakt.access_token()}),
            ),
            handle: Handle::Trakt(trakt),
        },
    }
}
