//! The reference model: what the user did, and what both sides must hold once the
//! engine has had two fault-free runs.
//!
//! The expected state follows the user's latest action on each title (or viewing):
//! two-way, both sides end up with it; one-way, the target does, except that a title the
//! user takes off the target while the source still holds it comes back (the source is
//! the truth), and in `mirror` mode the target ends up holding exactly what the source
//! holds (its own newer ratings excepted).
//!
//! Two kinds of case are kept out, because no sync engine can tell what the user meant:
//! - between two convergence points, a title (or viewing) is changed on one side only
//!   ("owned" by it). The other side may only delete it too (both deleted it: it is then
//!   frozen). Otherwise, say A deletes a title while B deletes and re-adds it, the last
//!   action says "present" but B shows no change at all;
//! - one-way `source_deletes`: a title the target held on its own, that the source adds
//!   and deletes again before convergence, is removed from the target only if a run saw
//!   it on the source in between. The model marks it *loose*: its end state is not
//!   predicted (the run invariants still hold for it) and is taken as it is found.
//!
//! A case never plans more removals for one target and feature than the mass-delete
//! floor (5) between two convergence points: above it the engine blocks them all, by
//! design, until `--allow-mass-delete`.

use std::collections::{BTreeMap, BTreeSet};

use super::steps::{Act, PairMode, Side, TITLES};
use super::view::{Edit, SideView};

/// The history tolerance (seconds): two plays of a title closer than this are one.
pub const TOL: i64 = ferry_core::HISTORY_TOLERANCE_SECS as i64;

/// The mass-delete floor: removals for one target and feature up to this pass.
const MAX_REMOVALS: usize = 5;

/// A watchlist title, a rated title, or a viewing (a logical play).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Wl(u8),
    Rt(u8),
    Ev(usize),
}

impl Key {
    fn feature(self) -> usize {
        match self {
            Key::Wl(_) => 0,
            Key::Rt(_) => 1,
            Key::Ev(_) => 2,
        }
    }
}

/// The user's latest action on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Did {
    Put(Side),
    /// The same viewing recorded on both sides.
    PutBoth,
    Del(Side),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    Owned(Side),
    Frozen,
}

/// One viewing: its title and the time each side's user recorded it at.
#[derive(Debug, Clone, Copy)]
pub struct Viewing {
    pub title: u8,
    pub at: [Option<i64>; 2],
}

/// What a user deletion means for the converged state.
enum Deleted {
    Gone,
    /// One-way: the source still holds it, so the target gets it back.
    Kept,
    Loose,
}

pub struct Model {
    pub mode: PairMode,
    pub viewings: Vec<Viewing>,
    /// The converged state: both sides two-way, the target one-way.
    wl: BTreeSet<u8>,
    rt: BTreeMap<u8, u8>,
    ev: BTreeSet<usize>,
    last: BTreeMap<Key, Did>,
    /// Per side and key, whether the user's latest action there was a put.
    last_on: BTreeMap<(Side, Key), bool>,
    /// Every watchlist title and every (title, rating) the user ever made.
    listed: BTreeSet<u8>,
    rated: BTreeSet<(u8, u8)>,
    locks: BTreeMap<Key, Lock>,
    loose: BTreeSet<Key>,
    removals: [[usize; 2]; 3],
    /// Both sides at the last convergence point.
    epoch: [SideView; 2],
}

impl Model {
    pub fn new(mode: PairMode) -> Self {
        Model {
            mode,
            viewings: Vec::new(),
            wl: BTreeSet::new(),
            rt: BTreeMap::new(),
            ev: BTreeSet::new(),
            last: BTreeMap::new(),
            last_on: BTreeMap::new(),
            listed: BTreeSet::new(),
            rated: BTreeSet::new(),
            locks: BTreeMap::new(),
            loose: BTreeSet::new(),
            removals: [[0; 2]; 3],
            epoch: [SideView::default(), SideView::default()],
        }
    }

    pub fn last(&self, key: Key) -> Option<Did> {
        self.last.get(&key).copied()
    }

    /// Whether the user's latest action on `key` on `side` was a put (`Some(true)`) or a
    /// deletion (`Some(false)`).
    pub fn last_on(&self, side: Side, key: Key) -> Option<bool> {
        self.last_on.get(&(side, key)).copied()
    }

    pub fn ever_listed(&self, title: u8) -> bool {
        self.listed.contains(&title)
    }

    pub fn ever_rated(&self, title: u8, rating: u8) -> bool {
        self.rated.contains(&(title, rating))
    }

    /// The viewing a play belongs to: a user's play, or a copy of one (copies keep the
    /// time of the play they copy).
    pub fn viewing_of(&self, title: u8, at: i64) -> Option<usize> {
        self.viewings
            .iter()
            .position(|v| v.title == title && v.at.contains(&Some(at)))
    }

    /// Takes the lock for `side`, counts a removal the action will need on `removal_on`,
    /// records the action. `None`: the model excludes the action (see the module notes).
    fn begin(&mut self, key: Key, side: Side, put: bool, removal_on: Option<Side>) -> Option<()> {
        let (lock, second) = match self.locks.get(&key) {
            None => (Lock::Owned(side), false),
            Some(Lock::Owned(s)) if *s == side => (Lock::Owned(side), false),
            Some(Lock::Owned(s)) if !put && self.last(key) == Some(Did::Del(*s)) => {
                (Lock::Frozen, true)
            }
            _ => return None,
        };
        if let Some(target) = removal_on
            && !second
        {
            let n = &mut self.removals[key.feature()][target.idx()];
            if *n >= MAX_REMOVALS {
                return None;
            }
            *n += 1;
        }
        self.locks.insert(key, lock);
        self.last
            .insert(key, if put { Did::Put(side) } else { Did::Del(side) });
        self.last_on.insert((side, key), put);
        Some(())
    }

    /// What deleting `key` on `side` means, and the side a removal is needed on.
    /// `a_has`: the source holds it now; `epoch_a`/`epoch_b`: each side held it at the
    /// last convergence point.
    fn deletion(
        &self,
        side: Side,
        a_has: bool,
        epoch_a: bool,
        epoch_b: bool,
    ) -> (Deleted, Option<Side>) {
        match (self.mode, side) {
            (PairMode::TwoWay, s) => (Deleted::Gone, Some(s.other())),
            (PairMode::OneWay, Side::A) if !epoch_a && epoch_b => (Deleted::Loose, Some(Side::B)),
            (PairMode::OneWay | PairMode::Mirror, Side::A) => (Deleted::Gone, Some(Side::B)),
            (_, Side::B) if a_has => (Deleted::Kept, None),
            (_, Side::B) => (Deleted::Gone, None),
        }
    }

    /// Applies a user action to the model; returns the edits to make on the services
    /// (none when the action is skipped).
    pub fn user(&mut self, side: Side, act: Act, v: [&SideView; 2], now: i64) -> Vec<(Side, Edit)> {
        let cur = v[side.idx()];
        if keep_one() && empties(cur, act) {
            return Vec::new();
        }
        let (a, [ea, eb]) = (v[0], &self.epoch);
        let mirror_b = self.mode == PairMode::Mirror && side == Side::B;
        let edit = match act {
            Act::List(t) => {
                let t = t % TITLES;
                let dropped = mirror_b && !a.wl.contains(&t);
                if cur.wl.contains(&t)
                    || self
                        .begin(Key::Wl(t), side, true, dropped.then_some(Side::B))
                        .is_none()
                {
                    return Vec::new();
                }
                self.listed.insert(t);
                if dropped {
                    self.wl.remove(&t);
                } else {
                    self.wl.insert(t);
                }
                Edit::List(t, now)
            }
            Act::Unlist(t) => {
                let t = t % TITLES;
                let (what, on) = self.deletion(
                    side,
                    a.wl.contains(&t),
                    ea.wl.contains(&t),
                    eb.wl.contains(&t),
                );
                if !cur.wl.contains(&t) || self.begin(Key::Wl(t), side, false, on).is_none() {
                    return Vec::new();
                }
                match what {
                    Deleted::Gone => {
                        self.wl.remove(&t);
                    }
                    Deleted::Kept => {}
                    Deleted::Loose => {
                        self.loose.insert(Key::Wl(t));
                    }
                }
                Edit::Unlist(t)
            }
            Act::Rate(t, r) => {
                let t = t % TITLES;
                let mut r = 1 + r % 10;
                if cur.rt.get(&t).map(|x| x.0) == Some(r) {
                    r = r % 10 + 1;
                }
                let dropped = mirror_b && !a.rt.contains_key(&t);
                if self
                    .begin(Key::Rt(t), side, true, dropped.then_some(Side::B))
                    .is_none()
                {
                    return Vec::new();
                }
                self.rated.insert((t, r));
                if dropped {
                    self.rt.remove(&t);
                } else {
                    self.rt.insert(t, r);
                }
                Edit::Rate(t, r, now)
            }
            Act::Unrate(t) => {
                let t = t % TITLES;
                let a_has = a.rt.get(&t).map(|x| x.0);
                let (what, on) = self.deletion(
                    side,
                    a_has.is_some(),
                    ea.rt.contains_key(&t),
                    eb.rt.contains_key(&t),
                );
                if !cur.rt.contains_key(&t) || self.begin(Key::Rt(t), side, false, on).is_none() {
                    return Vec::new();
                }
                match (what, a_has) {
                    (Deleted::Kept, Some(r)) => {
                        self.rt.insert(t, r);
                    }
                    (Deleted::Loose, _) => {
                        self.loose.insert(Key::Rt(t));
                    }
                    _ => {
                        self.rt.remove(&t);
                    }
                }
                Edit::Unrate(t)
            }
            Act::Play(t) => return self.play(side, t % TITLES, now),
            Act::Unplay(t, n) => return self.unplay(side, t % TITLES, n, v),
        };
        vec![(side, edit)]
    }

    fn play(&mut self, side: Side, t: u8, now: i64) -> Vec<(Side, Edit)> {
        let id = self.viewings.len();
        let mirror_b = self.mode == PairMode::Mirror && side == Side::B;
        if self
            .begin(Key::Ev(id), side, true, mirror_b.then_some(Side::B))
            .is_none()
        {
            return Vec::new();
        }
        let mut at = [None, None];
        at[side.idx()] = Some(now);
        self.viewings.push(Viewing { title: t, at });
        if !mirror_b {
            self.ev.insert(id);
        }
        vec![(side, Edit::Play(t, now))]
    }

    fn unplay(&mut self, side: Side, t: u8, n: u8, v: [&SideView; 2]) -> Vec<(Side, Edit)> {
        let plays = v[side.idx()].plays_of(t);
        if plays.is_empty() {
            return Vec::new();
        }
        let at = plays[usize::from(n) % plays.len()];
        // A play no user made is reported by the run checks; nothing to delete here.
        let Some(id) = self.viewing_of(t, at) else {
            return Vec::new();
        };
        let vw = self.viewings[id];
        let holds = |view: &SideView, times: &[Option<i64>]| {
            times
                .iter()
                .flatten()
                .any(|x| view.plays.contains(&(t, *x)))
        };
        let a_has = holds(v[0], &vw.at[..1]);
        let (epoch_a, epoch_b) = (
            holds(&self.epoch[0], &vw.at[..1]),
            holds(&self.epoch[1], &vw.at),
        );
        let (what, on) = self.deletion(side, a_has, epoch_a, epoch_b);
        self.begin(Key::Ev(id), side, false, on)
            .map(|()| {
                match what {
                    Deleted::Gone => {
                        self.ev.remove(&id);
                    }
                    Deleted::Kept => {}
                    Deleted::Loose => {
                        self.loose.insert(Key::Ev(id));
                    }
                }
                vec![(side, Edit::Unplay(t, at))]
            })
            .unwrap_or_default()
    }

    /// The same viewing recorded on both services, B's clock `skew` seconds ahead.
    pub fn play_both(&mut self, t: u8, skew: u8, now: i64) -> Vec<(Side, Edit)> {
        let (t, skew) = (t % TITLES, 1 + i64::from(skew % 59));
        let id = self.viewings.len();
        let key = Key::Ev(id);
        self.locks.insert(key, Lock::Frozen);
        self.last.insert(key, Did::PutBoth);
        for s in Side::BOTH {
            self.last_on.insert((s, key), true);
        }
        self.viewings.push(Viewing {
            title: t,
            at: [Some(now), Some(now + skew)],
        });
        self.ev.insert(id);
        vec![
            (Side::A, Edit::Play(t, now)),
            (Side::B, Edit::Play(t, now + skew)),
        ]
    }

    /// After two fault-free runs: the sides the pair writes to hold the converged state.
    pub fn check_converged(&self, v: [&SideView; 2]) -> Result<(), String> {
        let sides: &[Side] = match self.mode {
            PairMode::TwoWay => &Side::BOTH,
            PairMode::OneWay | PairMode::Mirror => &[Side::B],
        };
        for &s in sides {
            let view = v[s.idx()];
            let bad = |what: String| {
                Err(format!(
                    "not converged after two fault-free runs: side {s:?} {what} \
                     (a user change lost, reversed or not propagated)"
                ))
            };
            for t in 0..TITLES {
                let (want, have) = (self.wl.contains(&t), view.wl.contains(&t));
                if !self.loose.contains(&Key::Wl(t)) && want != have {
                    return bad(format!(
                        "watchlist title {t}: expected {want}, found {have}"
                    ));
                }
                let (want, have) = (self.rt.get(&t), view.rt.get(&t).map(|x| &x.0));
                if !self.loose.contains(&Key::Rt(t)) && want != have {
                    return bad(format!("rating of {t}: expected {want:?}, found {have:?}"));
                }
            }
            let mut count: BTreeMap<usize, usize> = BTreeMap::new();
            for &(t, at) in &view.plays {
                match self.viewing_of(t, at) {
                    Some(id) => *count.entry(id).or_default() += 1,
                    None => return bad(format!("holds a play nobody made: {t}@{at}")),
                }
            }
            for id in self.ev.iter().chain(count.keys()) {
                let want = usize::from(self.ev.contains(id));
                let have = count.get(id).copied().unwrap_or(0);
                if !self.loose.contains(&Key::Ev(*id)) && want != have {
                    let vw = self.viewings[*id];
                    return bad(format!(
                        "viewing #{id} (title {}, at {:?}): expected {want} play(s), found {have}",
                        vw.title, vw.at
                    ));
                }
            }
        }
        Ok(())
    }

    /// A convergence point: loose keys take the state found, locks and removal counts
    /// start afresh.
    pub fn adopt(&mut self, v: [&SideView; 2]) {
        let b = v[1];
        for key in std::mem::take(&mut self.loose) {
            match key {
                Key::Wl(t) if b.wl.contains(&t) => {
                    self.wl.insert(t);
                }
                Key::Wl(t) => {
                    self.wl.remove(&t);
                }
                Key::Rt(t) => match b.rt.get(&t) {
                    Some(r) => {
                        self.rt.insert(t, r.0);
                    }
                    None => {
                        self.rt.remove(&t);
                    }
                },
                Key::Ev(id) => {
                    let vw = self.viewings[id];
                    if vw
                        .at
                        .iter()
                        .flatten()
                        .any(|x| b.plays.contains(&(vw.title, *x)))
                    {
                        self.ev.insert(id);
                    } else {
                        self.ev.remove(&id);
                    }
                }
            }
        }
        self.locks.clear();
        self.removals = [[0; 2]; 3];
        self.epoch = [v[0].clone(), v[1].clone()];
    }
}

/// `MODEL_KEEP_ONE=1`: the user never deletes the last item of a list (triage: to look
/// past failures of collapsed lists).
fn keep_one() -> bool {
    std::env::var_os("MODEL_KEEP_ONE").is_some()
}

/// Whether `act` deletes the last item of its list on the side `cur`.
fn empties(cur: &SideView, act: Act) -> bool {
    match act {
        Act::Unlist(_) => cur.wl.len() == 1,
        Act::Unrate(_) => cur.rt.len() == 1,
        Act::Unplay(..) => cur.plays.len() == 1,
        _ => false,
    }
}
