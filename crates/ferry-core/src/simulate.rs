//! Simulators a provider declares in its descriptor, served by `ferry simulate <provider>`
//! and `ferry demo`.
//!
//! This crate knows no HTTP server: a provider's [`Simulator`] starts its simulator (in
//! the provider crate, behind that crate's `sim` cargo feature) and hands back a
//! [`SimHandle`], which keeps it running until dropped.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::Result;
use crate::feature::Feature;
use crate::sign_in::BoxFuture;

/// What to seed a simulator with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `ferry simulate`: a library (or account) of `items` titles, for integrators' CI.
    Library { items: u32 },
    /// `ferry demo`: a household's state over `movies` films and `shows` shows (the
    /// titles every simulator's library shares), each service holding part of it.
    Demo { movies: u32, shows: u32 },
}

/// A running simulator; dropping it stops it.
pub trait SimHandle: Send + Sync {
    /// The URL a user (or a script) points at first.
    fn base_url(&self) -> String;
    /// `[providers.<instance>]` values (besides `kind`) for a provider using this
    /// simulator: its URLs and the credentials it accepts.
    fn config(&self) -> Map<String, Value>;
    /// Requests answered so far.
    fn requests(&self) -> u64;
}

impl fmt::Debug for dyn SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

/// The part a provider's simulator plays in `ferry demo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoRole {
    /// The account every demo library syncs with (the first hub by id is used).
    Hub,
    /// A library synced with the hub, in a pair named after both.
    Library {
        /// Both ways (`<id>-<hub>`), or one way to the hub (`<id>-to-<hub>`).
        two_way: bool,
        /// Whether the pair propagates removals, or only adds.
        removals: bool,
        features: &'static [Feature],
    },
}

/// What a [`Simulator`]'s `start` returns: the running simulator, once it listens.
pub type SimStart = BoxFuture<'static, Result<Box<dyn SimHandle>>>;

/// A provider's simulator: `ferry simulate <id>` and `ferry demo` start it.
#[derive(Clone, Copy)]
pub struct Simulator {
    /// Consecutive loopback ports it listens on (a service with a second host, such as an
    /// account API beside the media server, takes more than one).
    pub ports: u16,
    /// Starts the simulator on loopback, seeded for the scenario.
    pub start: fn(Scenario) -> SimStart,
    /// Its part in `ferry demo`, if it has one.
    pub demo: Option<DemoRole>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("ports", &self.ports)
            .field("demo", &self.demo)
            .finish_non_exhaustive()
    }
}
