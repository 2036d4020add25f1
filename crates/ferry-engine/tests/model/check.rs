//! The invariants checked after every run, from what each side held before and after it
//! (the user changes nothing during a run, so every difference is the engine's).
//!
//! - no removal on a side without a user deletion of that title (viewing) on the other
//!   side, which still lacks it (`mirror`: the source lacks it);
//! - nothing added that the other side does not hold, and never back to the side where
//!   the user deleted it last (two-way); a rating never overwritten by an older one;
//! - no play duplicated (two plays of a title within the tolerance on one side) or
//!   invented (every play is one a user made, or an exact copy of one);
//! - one-way never writes to its source.

use std::collections::BTreeMap;

use super::reference::{Did, Key, Model, TOL};
use super::steps::{PairMode, Side};
use super::view::SideView;

pub fn check_run(m: &Model, before: &[SideView; 2], after: &[SideView; 2]) -> Result<(), String> {
    if m.mode != PairMode::TwoWay && before[0] != after[0] {
        return Err(format!(
            "one-way wrote to its source A: {:?} -> {:?}",
            before[0], after[0]
        ));
    }
    let targets: &[Side] = match m.mode {
        PairMode::TwoWay => &Side::BOTH,
        PairMode::OneWay | PairMode::Mirror => &[Side::B],
    };
    for &x in targets {
        let d = Diff {
            m,
            x,
            bx: &before[x.idx()],
            ax: &after[x.idx()],
            by: &before[x.other().idx()],
            a: &before[0],
        };
        d.watchlist()?;
        d.ratings()?;
        d.history()?;
    }
    for s in Side::BOTH {
        sane(m, s, &after[s.idx()])?;
    }
    Ok(())
}

/// One side `x` written to in a run: before (`bx`) and after (`ax`), the other side
/// before (`by`) and the source before (`a`).
struct Diff<'a> {
    m: &'a Model,
    x: Side,
    bx: &'a SideView,
    ax: &'a SideView,
    by: &'a SideView,
    a: &'a SideView,
}

impl Diff<'_> {
    fn removal(&self, key: Key, what: &str, y_has: bool) -> Result<(), String> {
        let (m, y) = (self.m, self.x.other());
        let ok = match m.mode {
            PairMode::TwoWay => !y_has && m.last(key) == Some(Did::Del(y)),
            PairMode::OneWay => !y_has && m.last_on(Side::A, key) == Some(false),
            PairMode::Mirror => !y_has,
        };
        if ok {
            return Ok(());
        }
        Err(format!(
            "removed {what} from {:?} without a user deletion on {y:?} \
             ({y:?} holds it: {y_has}; the user's last action on it: {:?})",
            self.x,
            m.last(key)
        ))
    }

    fn add(&self, key: Key, what: &str, y_has: bool) -> Result<(), String> {
        let (m, y) = (self.m, self.x.other());
        let last = m.last(key);
        if m.mode == PairMode::TwoWay && last == Some(Did::Del(self.x)) {
            return Err(format!(
                "user deletion reversed: {what} added back to {:?}, where the user deleted it",
                self.x
            ));
        }
        let ok = y_has
            && (m.mode != PairMode::TwoWay
                || matches!(last, Some(Did::Put(s)) if s == y)
                || last == Some(Did::PutBoth));
        if ok {
            return Ok(());
        }
        Err(format!(
            "added {what} to {:?} without a source ({y:?} holds it: {y_has}; \
             the user's last action on it: {last:?})",
            self.x
        ))
    }

    fn watchlist(&self) -> Result<(), String> {
        for t in self.bx.wl.difference(&self.ax.wl) {
            let what = format!("watchlist title {t}");
            self.removal(Key::Wl(*t), &what, self.by.wl.contains(t))?;
        }
        for t in self.ax.wl.difference(&self.bx.wl) {
            let what = format!("watchlist title {t}");
            self.add(Key::Wl(*t), &what, self.by.wl.contains(t))?;
        }
        Ok(())
    }

    fn ratings(&self) -> Result<(), String> {
        let (m, x, y) = (self.m, self.x, self.x.other());
        for (t, old) in &self.bx.rt {
            let what = format!("rating of title {t}");
            let key = Key::Rt(*t);
            match self.ax.rt.get(t) {
                None => self.removal(key, &what, self.by.rt.contains_key(t))?,
                Some(new) if new.0 != old.0 => {
                    let from_y = self.by.rt.get(t).is_some_and(|r| r.0 == new.0);
                    let newer = match m.mode {
                        PairMode::TwoWay => matches!(m.last(key), Some(Did::Put(s)) if s == y),
                        _ => self.a.rt.get(t).is_some_and(|r| r.1 >= old.1),
                    };
                    if !(from_y && newer) {
                        return Err(format!(
                            "{what} on {x:?} changed {} -> {} (from the other side: {from_y}, \
                             newer than the one replaced: {newer}; last action {:?})",
                            old.0,
                            new.0,
                            m.last(key)
                        ));
                    }
                }
                Some(_) => {}
            }
        }
        for (t, new) in &self.ax.rt {
            if !self.bx.rt.contains_key(t) {
                let what = format!("rating {} of title {t}", new.0);
                let y_has = self.by.rt.get(t).is_some_and(|r| r.0 == new.0);
                self.add(Key::Rt(*t), &what, y_has)?;
            }
        }
        Ok(())
    }

    fn history(&self) -> Result<(), String> {
        let (before, after) = (counts(self.bx), counts(self.ax));
        for (&(t, at), &n) in &before {
            if after.get(&(t, at)).copied().unwrap_or(0) >= n {
                continue;
            }
            let what = format!("play {t}@{at}");
            let Some(id) = self.m.viewing_of(t, at) else {
                return Err(format!("{what} removed, and nobody made it"));
            };
            self.removal(Key::Ev(id), &what, self.by.has_play_near(t, at, TOL))?;
        }
        for (&(t, at), &n) in &after {
            if before.get(&(t, at)).copied().unwrap_or(0) >= n {
                continue;
            }
            let what = format!("play {t}@{at}");
            let Some(id) = self.m.viewing_of(t, at) else {
                return Err(format!("{what} invented on {:?}", self.x));
            };
            self.add(Key::Ev(id), &what, self.by.plays.contains(&(t, at)))?;
        }
        Ok(())
    }
}

fn counts(v: &SideView) -> BTreeMap<(u8, i64), usize> {
    let mut c = BTreeMap::new();
    for p in &v.plays {
        *c.entry(*p).or_default() += 1;
    }
    c
}

/// What one side holds is something a user made, and holds each play once.
fn sane(m: &Model, s: Side, v: &SideView) -> Result<(), String> {
    for w in v.plays.windows(2) {
        let ((t1, a1), (t2, a2)) = (w[0], w[1]);
        if t1 == t2 && a2 - a1 <= TOL {
            return Err(format!(
                "play duplicated on {s:?}: title {t1} at {a1} and {a2}"
            ));
        }
    }
    if let Some((t, at)) = v
        .plays
        .iter()
        .find(|(t, at)| m.viewing_of(*t, *at).is_none())
    {
        return Err(format!("play invented on {s:?}: title {t} at {at}"));
    }
    if let Some(t) = v.wl.iter().find(|t| !m.ever_listed(**t)) {
        return Err(format!("watchlist title {t} invented on {s:?}"));
    }
    if let Some((t, r)) = v.rt.iter().find(|(t, r)| !m.ever_rated(**t, r.0)) {
        return Err(format!("rating {} of title {t} invented on {s:?}", r.0));
    }
    Ok(())
}
