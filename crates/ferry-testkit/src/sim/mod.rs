//! Stateful simulators of the services ferry talks to, built on `wiremock`. Each holds
//! its state in memory behind a custom `Respond`, so writes change later reads, and has
//! fault knobs (status codes, latency, truncated pages, 429s, expired tokens, broken
//! JSON) for the failure paths. `ferry demo` and `ferry simulate` serve them too.

pub mod jellyfin;
pub mod knobs;
pub mod mdblist;
pub mod plex;
pub mod simkl;
pub mod trakt;
