//! The planner: pure functions from snapshots, baselines and guard verdicts to a [`Plan`].
//! No I/O, no clock, no randomness: the same input always gives the same plan, which is
//! what the property tests and the dry run rely on.
//!
//! Vocabulary: side A is the source (one-way) or the first side (two-way); B the target or
//! second side. Each side comes as a [`SideInput`]: its *view* (the effective inventory the
//! guards decided to trust, see [`crate::guard::verdict`]), its previous baseline,
//! and what the gates allow (whether its absences count as deletions, whether it may be
//! written to, whether it was read at all).
//!
//! The rules that keep user data safe live here:
//! - a removal always carries its [`Evidence`]: the evidence side had the title in its
//!   baseline (or a live tombstone says ferry removed it) and lacks it now, and that side's
//!   absences are trusted ([`SideInput::yields_deletions`]);
//! - trusted evidence that may not be acted on (removals off, add-only, guard) is *held*,
//!   never turned into a re-add, and the commit keeps the evidence for the next run;
//! - untrusted absences are never deletions: a partial or suspect read is joined with its
//!   baseline, and an add-only side's deletions are held.
//!
//! History with a side that keeps only the latest play of each title
//! ([`PlaysPerTitle::LatestOnly`], Jellyfin and Emby) follows three more rules:
//! - writing to it, only the latest play of each title on the other side matters: nothing
//!   is written when it already shows the title played at or after that play (within the
//!   tolerance); otherwise the latest play is written (older plays are never planned, so
//!   they never turn into endless unresolved writes);
//! - reading from it, its one play per title is one play: plays the other side holds from
//!   before it are *covered* by it, never missing from it;
//! - its deletion evidence is "the title became unplayed" (its baseline had the title, it
//!   now holds no play of it), and covers the other side's plays up to the baseline's play.
//!   A changed date is never a deletion. One-way to such a side, a title whose latest play
//!   the source deleted keeps its date there while the source still holds an older play
//!   (a date cannot be moved back without unmarking the title first).

mod blocks;
mod index;
mod one_way;
mod rules;
mod two_way;

use std::collections::HashSet;

use ferry_core::{Entry, Feature, PlaysPerTitle, Snapshot, Timestamp};
use serde::{Deserialize, Serialize};

pub use blocks::{Tomb, TombstoneIndex};
pub(crate) use index::Prepared;
pub(crate) use rules::{keep_in_place, playlist_of, same_playlist};

use crate::config::{FeatureSwitch, Mode, RemoveMode};

/// Which side of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// One side of a pair as the planner sees it.
#[derive(Debug, Clone, Copy)]
pub struct SideInput<'a> {
    pub instance: &'a str,
    /// The effective inventory: the snapshot, or the snapshot joined with the baseline when
    /// the read cannot be trusted to be whole, or the baseline alone when the side was not
    /// read (down).
    pub view: &'a Snapshot,
    /// The previous committed baseline of this pair for this side (`None`: never synced).
    pub baseline: Option<&'a Snapshot>,
    /// Whether absences on this side count as deletions (healthy, complete, `present`,
    /// not suspect, not recovering, deletions observable, no side down).
    pub yields_deletions: bool,
    /// Whether this side's absences are trusted evidence that this run may not act on
    /// (the read is complete, `present` and not suspect, but the side is add-only: first
    /// run after an outage, health unknown). Such a deletion is *held*: not removed from
    /// the other side, not added back here, its evidence kept for the next normal run.
    /// Never set together with `yields_deletions`.
    pub holds_deletions: bool,
    /// Whether removals may be written to this side (capability, not add-only).
    pub accepts_removals: bool,
    /// Whether adds and updates may be written to this side (capability).
    pub accepts_adds: bool,
    /// Whether the view reflects a read of the side this run. A side that was not read
    /// contributes no adds and no updates to the other side.
    pub read: bool,
    /// Keys of the view that come from the baseline, not from this run's read (a
    /// partial or suspect read is joined with its baseline so nothing on it looks
    /// deleted). They are never proposed to the other side: the side may no longer hold
    /// them, and a stale title or value must not be written back.
    pub filled: Option<&'a HashSet<String>>,
    /// Keys blocked by the blackbox for writes to this side.
    pub blackbox: Option<&'a HashSet<String>>,
    /// History: whether this side keeps every play or only each title's latest (its
    /// capability). See [`PlaysPerTitle`] and the module notes.
    pub plays: PlaysPerTitle,
}

impl SideInput<'_> {
    /// Whether the view's entry under `key` is a baseline fill-in (see `filled`).
    pub fn is_filled(&self, key: &str) -> bool {
        self.filled.is_some_and(|f| f.contains(key))
    }

    /// Whether this side keeps only the latest play of each title.
    pub fn latest_only(&self) -> bool {
        self.plays == PlaysPerTitle::LatestOnly
    }

    /// What an absence on this side proves this run.
    pub fn absence(&self) -> Absence {
        if self.yields_deletions {
            Absence::Deleted
        } else if self.holds_deletions {
            Absence::HeldDeletion
        } else {
            Absence::Unknown
        }
    }
}

/// What a title missing from a side (and in its baseline) means this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    /// A deletion the plan acts on.
    Deleted,
    /// A deletion proved by a trusted read that this run may not act on: held.
    HeldDeletion,
    /// Not known to be a deletion: the title is added back (a side whose deletions
    /// cannot be observed).
    Unknown,
}

/// Planner settings that are not per side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanOptions {
    pub history_tolerance_secs: u64,
    pub progress_tolerance_ms: u64,
    /// Which side wins two-way conflicts that timestamps cannot decide.
    pub truth: Side,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            history_tolerance_secs: ferry_core::HISTORY_TOLERANCE_SECS,
            progress_tolerance_ms: 30_000,
            truth: Side::A,
        }
    }
}

/// Everything one pair/feature plan is computed from.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub feature: Feature,
    pub mode: Mode,
    pub remove_mode: RemoveMode,
    pub switch: FeatureSwitch,
    pub a: SideInput<'a>,
    pub b: SideInput<'a>,
    pub tombstones: Option<&'a TombstoneIndex>,
    pub options: PlanOptions,
}

/// Why a removal is justified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// The evidence side's baseline had the title and its trusted snapshot lacks it.
    Baseline,
    /// A live tombstone: ferry removed the title from this side because the other side
    /// deleted it, and it came back.
    Tombstone,
    /// Mirror mode: the trusted source lacks a title the target's baseline had.
    Mirror,
}

/// The evidence behind a removal (or a held removal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// The side whose absence is the evidence.
    pub side: Side,
    /// The key of the title in the evidence side's baseline (or the tombstone's key).
    pub key: String,
    /// When the tombstone was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

/// An add or update to write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Write {
    pub entry: Entry,
    /// The key of the title on the side it comes from.
    pub from_key: String,
}

/// A removal to write, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Removal {
    /// The entry as the target holds it.
    pub entry: Entry,
    pub evidence: Evidence,
}

/// What to write to one side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SidePlan {
    pub adds: Vec<Write>,
    pub updates: Vec<Write>,
    pub removes: Vec<Removal>,
}

impl SidePlan {
    pub fn is_empty(&self) -> bool {
        self.adds.is_empty() && self.updates.is_empty() && self.removes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.adds.len() + self.updates.len() + self.removes.len()
    }
}

/// Why a write is not made this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// Deletion evidence, but the pair's feature has removals switched off.
    RemovalsDisabled,
    /// The side to remove from is add-only this run (first healthy run after an outage)
    /// or cannot remove.
    NoRemovals,
    /// The mass-delete guard blocked every removal for this side.
    MassDelete,
    /// A live tombstone: ferry removed this title recently; it is not re-added.
    Tombstone,
    /// The blackbox: this add failed in consecutive runs.
    Blackbox,
    /// The side that deleted it is add-only this run (first run after an outage, or its
    /// health is unknown): the deletion waits for a normal run, its evidence kept.
    Recovering,
    /// The other side's copy was not read this run (its read was partial or suspect):
    /// the deletion waits for a whole read of it, its evidence kept.
    PartialRead,
}

impl HoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::RemovalsDisabled => "removals_disabled",
            HoldReason::NoRemovals => "add_only",
            HoldReason::MassDelete => "mass_delete",
            HoldReason::Tombstone => "tombstone",
            HoldReason::Blackbox => "blackbox",
            HoldReason::Recovering => "recovering",
            HoldReason::PartialRead => "partial_read",
        }
    }
}

/// A write that was wanted but is not made this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// The side the write would have gone to.
    pub target: Side,
    pub reason: HoldReason,
    /// Whether it would have been a removal (else an add).
    pub removal: bool,
    pub entry: Entry,
    /// For removals: the evidence the commit must keep for the next run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// The plan for one pair and feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub feature: Feature,
    pub mode: Mode,
    /// Writes to side A (always empty one-way).
    pub to_a: SidePlan,
    /// Writes to side B.
    pub to_b: SidePlan,
    pub held: Vec<Held>,
}

impl Plan {
    pub fn empty(feature: Feature, mode: Mode) -> Self {
        Plan {
            feature,
            mode,
            to_a: SidePlan::default(),
            to_b: SidePlan::default(),
            held: Vec::new(),
        }
    }

    pub fn side(&self, s: Side) -> &SidePlan {
        match s {
            Side::A => &self.to_a,
            Side::B => &self.to_b,
        }
    }

    pub fn side_mut(&mut self, s: Side) -> &mut SidePlan {
        match s {
            Side::A => &mut self.to_a,
            Side::B => &mut self.to_b,
        }
    }

    /// No writes at all (held items are not writes).
    pub fn is_empty(&self) -> bool {
        self.to_a.is_empty() && self.to_b.is_empty()
    }

    /// Every removal with the side it is written to.
    pub fn removals(&self) -> impl Iterator<Item = (Side, &Removal)> + '_ {
        self.to_a
            .removes
            .iter()
            .map(|r| (Side::A, r))
            .chain(self.to_b.removes.iter().map(|r| (Side::B, r)))
    }

    /// Sorts every list by key so plans compare and print deterministically.
    fn normalize(&mut self) {
        for sp in [&mut self.to_a, &mut self.to_b] {
            sp.adds.sort_by(|x, y| x.from_key.cmp(&y.from_key));
            sp.adds.dedup_by(|x, y| x.from_key == y.from_key);
            sp.updates.sort_by(|x, y| x.from_key.cmp(&y.from_key));
            sp.updates.dedup_by(|x, y| x.from_key == y.from_key);
            sp.removes.sort_by_cached_key(|r| r.entry.key());
            sp.removes.dedup_by(|x, y| x.entry == y.entry);
        }
        self.held
            .sort_by_cached_key(|h| (h.target, h.removal, h.reason, h.entry.key()));
        self.held
            .dedup_by(|x, y| x.target == y.target && x.removal == y.removal && x.entry == y.entry);
    }
}

/// Computes the plan for one pair and feature.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let mut p = match input.mode {
        Mode::OneWay => one_way::plan(input),
        Mode::TwoWay => two_way::plan(input),
    };
    p.normalize();
    p
}

/// Swaps sides A and B of an input (for the symmetry property).
pub fn swap_input<'a>(input: &PlanInput<'a>) -> PlanInput<'a> {
    PlanInput {
        a: input.b,
        b: input.a,
        options: PlanOptions {
            truth: input.options.truth.other(),
            ..input.options
        },
        ..*input
    }
}

/// Swaps sides A and B of a plan.
pub fn swap_plan(p: &Plan) -> Plan {
    let mut q = Plan {
        feature: p.feature,
        mode: p.mode,
        to_a: p.to_b.clone(),
        to_b: p.to_a.clone(),
        held: p.held.clone(),
    };
    for r in q.to_a.removes.iter_mut().chain(q.to_b.removes.iter_mut()) {
        r.evidence.side = r.evidence.side.other();
    }
    for h in &mut q.held {
        h.target = h.target.other();
        if let Some(e) = &mut h.evidence {
            e.side = e.side.other();
        }
    }
    q.normalize();
    q
}
