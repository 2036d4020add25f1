//! Planner properties (proptest): evidence behind every removal, untrusted sides never
//! yield removals, two-way symmetry, no removals on bootstrap, and an empty re-plan after
//! a fully confirmed apply — also with a history side that keeps only the latest play of
//! each title (Jellyfin, Emby), modelled here by its write semantics. Playlists: a title
//! leaves a copy only on the other side's trusted drop, and a drop is never written back.

use std::collections::HashSet;

use ferry_core::identity::id_tokens;
use std::collections::BTreeMap;

use ferry_core::{
    Entry, Feature, IdKind, Ids, Item, Payload, Playlist, PlaysPerTitle, Rating, Snapshot,
    Timestamp,
};
use ferry_engine::commit::{WriteKind, apply_writes, next_baseline, retained_evidence};
use ferry_engine::guard::BaselinePolicy;
use ferry_engine::plan::{
    EvidenceKind, Plan, PlanInput, PlanOptions, Side, SideInput, Tomb, TombstoneIndex, plan,
    swap_input, swap_plan,
};
use ferry_engine::{FeatureSwitch, Mode, RemoveMode};
use proptest::prelude::*;

const TOL: u64 = 60;

/// One title as a side files it: which movie, which ids it carries, and a payload seed.
#[derive(Debug, Clone)]
struct Spec {
    n: u8,
    ids: u8,
    v: u8,
    t: u8,
}

fn item(n: u8, ids: u8) -> Item {
    let mut i = Ids::new();
    if ids != 1 {
        i.set(IdKind::Tmdb, &(1000 + u32::from(n)).to_string());
    }
    if ids != 0 {
        i.set(IdKind::Imdb, &format!("tt{:07}", 500 + u32::from(n)));
    }
    Item::movie(format!("Movie {n}"), 2000, i)
}

fn entry(f: Feature, s: &Spec) -> Entry {
    let it = item(s.n, s.ids);
    let at = |t: u8| Some(Timestamp::from_unix(1_700_000_000 + i64::from(t) * 3600));
    match f {
        Feature::Watchlist => Entry::watchlist(it),
        Feature::Ratings => Entry::rating(
            it,
            Rating::new(s.v % 10 + 1).unwrap(),
            if s.t.is_multiple_of(3) { None } else { at(s.t) },
        ),
        Feature::Progress => Entry::progress(
            it,
            u64::from(s.v) * 60_000,
            None,
            if s.t.is_multiple_of(3) { None } else { at(s.t) },
        ),
        Feature::History => {
            // Plays: a few distinct times, some within the tolerance of each other.
            let off = [0i64, 30, 100, 4000][usize::from(s.t % 4)] + i64::from(s.v % 2) * 86_400;
            Entry::watch(it, Timestamp::from_unix(1_700_000_000 + off))
        }
        Feature::Playlists => {
            // Playlist `n`: a subset of six movies (a mask from `v` and `t`), in order.
            let mask = (u32::from(s.v) << 3) | u32::from(s.t);
            Entry::playlist(Playlist {
                name: format!("List {}", s.n),
                description: None,
                items: (0..6u8)
                    .filter(|k| mask & (1 << k) != 0)
                    .map(|k| item(k, 2))
                    .collect(),
            })
        }
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    (0u8..10, 0u8..3, 0u8..8, 0u8..6).prop_map(|(n, ids, v, t)| Spec { n, ids, v, t })
}

fn watched(e: &Entry) -> i64 {
    match e.payload {
        Payload::Watch { watched_at } => watched_at.unix(),
        _ => 0,
    }
}

/// The movie number of an entry (`Movie {n}`).
fn title_n(e: &Entry) -> u8 {
    e.item
        .title
        .as_deref()
        .and_then(|t| t.strip_prefix("Movie "))
        .and_then(|n| n.parse().ok())
        .expect("a generated title")
}

/// A side that keeps one play per title, as a media server does: title `n` (its library
/// item knows every id) played at one time.
type LatestPlays = BTreeMap<u8, i64>;

fn latest_entry(n: u8, at: i64) -> Entry {
    Entry::watch(item(n, 2), Timestamp::from_unix(at))
}

fn latest_snap(plays: &LatestPlays) -> Snapshot {
    ferry_testkit::snap(
        Feature::History,
        plays.iter().map(|(n, at)| latest_entry(*n, *at)),
    )
}

/// What a media server that keeps one play per title shows for these specs: each title's
/// latest play.
fn latest_plays(specs: &[Spec]) -> LatestPlays {
    let mut m = LatestPlays::new();
    for s in specs {
        let at = watched(&entry(Feature::History, s));
        let t = m.entry(s.n).or_insert(at);
        *t = (*t).max(at);
    }
    m
}

fn latest_plays_of(snap: &Snapshot) -> LatestPlays {
    let mut m = LatestPlays::new();
    for e in snap.entries() {
        let t = m.entry(title_n(e)).or_insert(watched(e));
        *t = (*t).max(watched(e));
    }
    m
}

/// The write semantics of such a server: adding a play moves the title's date forward
/// (an older or equal play is already shown), removing the play it shows unmarks the
/// title (another play is already absent).
fn apply_latest_only(plays: &mut LatestPlays, kind: WriteKind, e: &Entry) {
    let (n, at) = (title_n(e), watched(e));
    match kind {
        WriteKind::Add | WriteKind::Update => match plays.get(&n) {
            Some(t) if at <= t + TOL as i64 => {}
            _ => {
                plays.insert(n, at);
            }
        },
        WriteKind::Remove => {
            if plays.get(&n).is_some_and(|t| t.abs_diff(at) <= TOL) {
                plays.remove(&n);
            }
        }
    }
}

/// One side never files a title twice (except history, where a title has many plays):
/// duplicates within a side are a provider anomaly that takes two runs to settle.
fn snap(f: Feature, specs: &[Spec]) -> Snapshot {
    let mut seen = HashSet::new();
    ferry_testkit::snap(
        f,
        specs
            .iter()
            .filter(|s| f == Feature::History || seen.insert(s.n))
            .map(|s| entry(f, s)),
    )
}

#[derive(Debug, Clone)]
struct SideGen {
    view: Vec<Spec>,
    baseline: Option<Vec<Spec>>,
    trusted: bool,
    /// Untrusted only because the side is add-only this run (its read is whole).
    held: bool,
    accepts_removals: bool,
    accepts_adds: bool,
    read: bool,
    /// History: the side keeps only the latest play of each title.
    latest_only: bool,
}

impl SideGen {
    fn latest(&self, f: Feature) -> bool {
        self.latest_only && f == Feature::History
    }
}

fn side() -> impl Strategy<Value = SideGen> {
    (
        proptest::collection::vec(spec(), 0..8),
        proptest::option::weighted(0.8, proptest::collection::vec(spec(), 0..8)),
        proptest::bool::weighted(0.7),
        proptest::bool::weighted(0.5),
        proptest::bool::weighted(0.8),
        proptest::bool::weighted(0.9),
        proptest::bool::weighted(0.9),
        proptest::bool::weighted(0.3),
    )
        .prop_map(
            |(view, baseline, trusted, held, accepts_removals, accepts_adds, read, latest_only)| {
                SideGen {
                    view,
                    baseline,
                    trusted,
                    held,
                    accepts_removals,
                    accepts_adds,
                    read,
                    latest_only,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct Scenario {
    feature: Feature,
    mode: Mode,
    remove_mode: RemoveMode,
    switch: FeatureSwitch,
    a: SideGen,
    b: SideGen,
    truth_b: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![
            Just(Feature::Watchlist),
            Just(Feature::Ratings),
            Just(Feature::History),
            Just(Feature::Progress)
        ],
        prop_oneof![Just(Mode::OneWay), Just(Mode::TwoWay)],
        prop_oneof![Just(RemoveMode::SourceDeletes), Just(RemoveMode::Mirror)],
        (any::<bool>(), proptest::bool::weighted(0.8)),
        side(),
        side(),
        any::<bool>(),
    )
        .prop_map(
            |(feature, mode, remove_mode, (add, remove), a, b, truth_b)| Scenario {
                feature,
                mode,
                remove_mode,
                switch: FeatureSwitch {
                    enable: true,
                    add: add || remove,
                    remove,
                },
                a,
                b,
                truth_b,
            },
        )
}

/// Concrete snapshots for a scenario; a side that was not read sees its baseline.
struct World {
    a_view: Snapshot,
    b_view: Snapshot,
    a_base: Option<Snapshot>,
    b_base: Option<Snapshot>,
}

/// A side's snapshot of these specs: as generated, or one play per title for a side that
/// keeps only the latest.
fn side_snap(f: Feature, g: &SideGen, specs: &[Spec]) -> Snapshot {
    if g.latest(f) {
        latest_snap(&latest_plays(specs))
    } else {
        snap(f, specs)
    }
}

fn world(s: &Scenario) -> World {
    let f = s.feature;
    let base = |g: &SideGen| g.baseline.as_ref().map(|b| side_snap(f, g, b));
    let view = |g: &SideGen| {
        if g.read {
            side_snap(f, g, &g.view)
        } else {
            base(g).unwrap_or_else(|| ferry_testkit::snap(f, []))
        }
    };
    World {
        a_view: view(&s.a),
        b_view: view(&s.b),
        a_base: base(&s.a),
        b_base: base(&s.b),
    }
}

fn input<'a>(s: &Scenario, w: &'a World, tombs: Option<&'a TombstoneIndex>) -> PlanInput<'a> {
    // What the gates guarantee: an unread side yields nothing; two-way, a side down
    // switches observed deletions off for both.
    let any_down = s.mode == Mode::TwoWay && (!s.a.read || !s.b.read);
    let side =
        |g: &SideGen, inst: &'a str, view: &'a Snapshot, base: Option<&'a Snapshot>| SideInput {
            instance: inst,
            view,
            baseline: base,
            yields_deletions: g.trusted && g.read && !any_down,
            holds_deletions: !g.trusted && g.held && g.read && !any_down,
            filled: None,
            accepts_removals: g.accepts_removals,
            accepts_adds: g.accepts_adds,
            read: g.read,
            blackbox: None,
            plays: if g.latest(s.feature) {
                PlaysPerTitle::LatestOnly
            } else {
                PlaysPerTitle::Many
            },
        };
    PlanInput {
        feature: s.feature,
        mode: s.mode,
        remove_mode: s.remove_mode,
        switch: s.switch,
        a: side(&s.a, "a", &w.a_view, w.a_base.as_ref()),
        b: side(&s.b, "b", &w.b_view, w.b_base.as_ref()),
        tombstones: tombs,
        options: PlanOptions {
            history_tolerance_secs: TOL,
            progress_tolerance_ms: 30_000,
            truth: if s.truth_b { Side::B } else { Side::A },
        },
    }
}

/// Whether `snap` holds the title (and for plays, a play within the tolerance) of `e`:
/// same media type and a shared id token.
fn holds(snap: &Snapshot, e: &Entry) -> bool {
    let mine: HashSet<String> = id_tokens(&e.item).into_iter().collect();
    let same_title = |x: &Entry| {
        x.item.kind == e.item.kind && id_tokens(&x.item).iter().any(|t| mine.contains(t))
    };
    match e.payload {
        Payload::Watch { watched_at } => snap.entries().any(|x| {
            same_title(x)
                && matches!(x.payload, Payload::Watch { watched_at: t } if t.abs_diff(watched_at) <= TOL)
        }),
        _ => snap.entries().any(same_title),
    }
}

fn check_evidence(inp: &PlanInput<'_>, p: &Plan) -> Result<(), TestCaseError> {
    for (target, r) in p.removals() {
        let ev = &r.evidence;
        let (ev_side, tgt) = match ev.side {
            Side::A => (&inp.a, &inp.b),
            Side::B => (&inp.b, &inp.a),
        };
        prop_assert_eq!(
            ev.side,
            target.other(),
            "evidence comes from the other side"
        );
        if inp.mode == Mode::OneWay {
            prop_assert_eq!(target, Side::B);
        }
        prop_assert!(
            ev_side.yields_deletions,
            "untrusted side yielded a removal: {:?}",
            r
        );
        prop_assert!(
            tgt.view.contains_key(&r.entry.key()),
            "removes only what the target holds"
        );
        prop_assert!(inp.switch.remove);
        prop_assert!(tgt.accepts_removals);
        match ev.kind {
            EvidenceKind::Baseline => {
                let base = ev_side
                    .baseline
                    .expect("baseline evidence needs a baseline");
                prop_assert!(
                    base.contains_key(&ev.key),
                    "evidence key {} not in baseline",
                    ev.key
                );
                prop_assert!(
                    !holds(ev_side.view, base.get(&ev.key).unwrap()),
                    "evidence side still holds it"
                );
            }
            EvidenceKind::Mirror => {
                prop_assert!(!holds(ev_side.view, &r.entry));
                prop_assert!(tgt.baseline.is_some());
                if inp.feature != Feature::History {
                    // (Plays are matched per title across all of its plays' ids, which
                    // this oracle does not model.)
                    prop_assert!(tgt.baseline.is_some_and(|b| holds(b, &r.entry)));
                }
            }
            EvidenceKind::Tombstone => {
                prop_assert!(inp.tombstones.is_some());
                prop_assert!(!holds(ev_side.view, &r.entry));
            }
        }
    }
    Ok(())
}

/// Applies a plan as if every write were confirmed; returns the new world and the
/// tombstones the engine would write.
fn apply_all(
    s: &Scenario,
    w: &World,
    inp: &PlanInput<'_>,
    p: &Plan,
    tombs: &mut TombstoneIndex,
) -> World {
    let settled = |sp: &ferry_engine::plan::SidePlan| {
        let mut v: Vec<(WriteKind, Entry)> = Vec::new();
        v.extend(
            sp.updates
                .iter()
                .map(|x| (WriteKind::Update, x.entry.clone())),
        );
        v.extend(sp.adds.iter().map(|x| (WriteKind::Add, x.entry.clone())));
        v.extend(
            sp.removes
                .iter()
                .map(|x| (WriteKind::Remove, x.entry.clone())),
        );
        v
    };
    let sa = settled(&p.to_a);
    let sb = settled(&p.to_b);
    let provider = |view: &Snapshot, g: &SideGen, writes: &[(WriteKind, Entry)]| {
        // The provider's real inventory: what was read, or (unread) its baseline.
        let mut real = if g.read {
            view.clone()
        } else {
            side_snap(s.feature, g, g.baseline.as_deref().unwrap_or(&[]))
        };
        if g.read && g.latest(s.feature) {
            // The engine's apply order: two-way removes, updates, adds; one-way updates,
            // adds, removes.
            let rank = |k: WriteKind| match (s.mode, k) {
                (Mode::TwoWay, WriteKind::Remove) | (Mode::OneWay, WriteKind::Update) => 0,
                (Mode::TwoWay, WriteKind::Update) | (Mode::OneWay, WriteKind::Add) => 1,
                _ => 2,
            };
            let mut ordered: Vec<&(WriteKind, Entry)> = writes.iter().collect();
            ordered.sort_by_key(|(k, _)| rank(*k));
            let mut plays = latest_plays_of(&real);
            for (k, e) in ordered {
                apply_latest_only(&mut plays, *k, e);
            }
            real = latest_snap(&plays);
        } else if g.read {
            apply_writes(&mut real, writes.iter().map(|(k, e)| (*k, e)));
        }
        real
    };
    let a_real = provider(&w.a_view, &s.a, &sa);
    let b_real = provider(&w.b_view, &s.b, &sb);
    for (target, r) in p.removals() {
        let inst = if target == Side::A { "a" } else { "b" };
        if (target == Side::A && s.a.read) || (target == Side::B && s.b.read) {
            let at = match r.entry.payload {
                Payload::Watch { watched_at } => Some(watched_at),
                _ => None,
            };
            tombs.insert(
                Tomb {
                    instance: inst.into(),
                    key: r.entry.key(),
                    event_at: at,
                    created_at: Timestamp::from_unix(1_900_000_000),
                },
                r.entry.item.kind,
                id_tokens(&r.entry.item),
            );
        }
    }
    let commit = |view: &Snapshot,
                  side: Side,
                  g: &SideGen,
                  base: Option<&Snapshot>,
                  writes: &[(WriteKind, Entry)]| {
        let policy = if g.read {
            BaselinePolicy::Replace
        } else {
            BaselinePolicy::Keep
        };
        let retain = retained_evidence(p, side, base, std::iter::empty());
        let written: Vec<(WriteKind, &Entry)> = if g.read {
            writes.iter().map(|(k, e)| (*k, e)).collect()
        } else {
            Vec::new()
        };
        next_baseline(view, base, policy, written, retain).or_else(|| base.cloned())
    };
    let _ = inp;
    World {
        a_base: commit(&w.a_view, Side::A, &s.a, w.a_base.as_ref(), &sa),
        b_base: commit(&w.b_view, Side::B, &s.b, w.b_base.as_ref(), &sb),
        a_view: if s.a.read { a_real } else { w.a_view.clone() },
        b_view: if s.b.read { b_real } else { w.b_view.clone() },
    }
}

/// History scenarios in which side A, side B or both keep only the latest play of each
/// title.
fn latest_only_scenario(mode: Mode) -> impl Strategy<Value = Scenario> {
    (scenario(), 0u8..3).prop_map(move |(mut s, which)| {
        s.feature = Feature::History;
        s.mode = mode;
        s.a.latest_only = which != 1;
        s.b.latest_only = which != 0;
        s
    })
}

/// Playlist scenarios.
fn playlist_scenario() -> impl Strategy<Value = Scenario> {
    scenario().prop_map(|mut s| {
        s.feature = Feature::Playlists;
        s
    })
}

/// The item keys of playlist `key` in `snap`.
fn playlist_items(snap: Option<&Snapshot>, key: &str) -> Option<HashSet<String>> {
    match &snap?.get(key)?.payload {
        Payload::Playlist(p) => Some(p.items.iter().map(Item::key).collect()),
        _ => None,
    }
}

/// A title leaves a side's playlist only on the other side's trusted evidence (its user
/// dropped it from that playlist since its baseline), and two-way, a title a side's user
/// dropped (read whole) is never written back to it.
fn check_playlist_writes(inp: &PlanInput<'_>, p: &Plan) -> Result<(), TestCaseError> {
    for target in [Side::A, Side::B] {
        let (to, from) = match target {
            Side::A => (&inp.a, &inp.b),
            Side::B => (&inp.b, &inp.a),
        };
        for w in p.side(target).updates.iter().chain(&p.side(target).adds) {
            let key = w.entry.key();
            let written = playlist_items(
                Some(&ferry_testkit::snap(Feature::Playlists, [w.entry.clone()])),
                &key,
            )
            .expect("a playlist write");
            let now = playlist_items(Some(to.view), &key).unwrap_or_default();
            let from_now = playlist_items(Some(from.view), &key).unwrap_or_default();
            let from_had = playlist_items(from.baseline, &key).unwrap_or_default();
            let to_had = playlist_items(to.baseline, &key).unwrap_or_default();
            for gone in now.difference(&written) {
                let allowed = inp.switch.remove && to.accepts_removals && from.yields_deletions;
                let dropped = from_had.contains(gone) && !from_now.contains(gone);
                let mirrored = inp.mode == Mode::OneWay
                    && inp.remove_mode == RemoveMode::Mirror
                    && !from_now.contains(gone)
                    && to_had.contains(gone);
                prop_assert!(
                    allowed && (dropped || mirrored),
                    "{gone} left {key} on {target:?} without the other side's trusted drop: {p:?}"
                );
            }
            if inp.mode == Mode::TwoWay && (to.yields_deletions || to.holds_deletions) {
                for back in written.difference(&now) {
                    prop_assert!(
                        !(to_had.contains(back) && from_had.contains(back)),
                        "{back} was dropped from {key} on {target:?} and is written back: {p:?}"
                    );
                }
            }
        }
    }
    Ok(())
}

/// Re-planning after a fully confirmed apply (and its commit) gives no writes.
fn check_replan_is_empty(s: Scenario) -> Result<(), TestCaseError> {
    // Writes to a side that was not read are skipped, never confirmed.
    let mut s = s;
    s.a.read = true;
    s.b.read = true;
    if s.mode == Mode::OneWay && s.remove_mode == RemoveMode::Mirror {
        // Mirror spares target titles its baseline has not seen yet (its rule in
        // `plan/one_way.rs`): they are removed one run later, by design.
        s.b.baseline = Some(s.b.view.clone());
    }
    let w = world(&s);
    let inp = input(&s, &w, None);
    let p1 = plan(&inp);
    let mut tombs = TombstoneIndex::new();
    let w2 = apply_all(&s, &w, &inp, &p1, &mut tombs);
    let inp2 = input(&s, &w2, Some(&tombs));
    let p2 = plan(&inp2);
    check_evidence(&inp2, &p2)?;
    prop_assert!(p2.is_empty(), "first plan {:?}\n\nsecond plan {:?}", p1, p2);
    Ok(())
}

/// Writes to a side that keeps one play per title are each title's latest play on the
/// other side, and only when the side does not already show the title played at or after
/// it (a play it shows and this plan removes does not count).
fn check_latest_only_adds(inp: &PlanInput<'_>, p: &Plan) -> Result<(), TestCaseError> {
    for target in [Side::A, Side::B] {
        let (to, from) = match target {
            Side::A => (&inp.a, &inp.b),
            Side::B => (&inp.b, &inp.a),
        };
        if !to.latest_only() {
            continue;
        }
        let removed: HashSet<String> = p
            .side(target)
            .removes
            .iter()
            .map(|r| r.entry.key())
            .collect();
        for w in &p.side(target).adds {
            let at = watched(&w.entry);
            // The same title: a shared id token (plays filed under unrelated ids are
            // different titles to any matcher).
            let mine: HashSet<String> = id_tokens(&w.entry.item).into_iter().collect();
            let same = |e: &&Entry| id_tokens(&e.item).iter().any(|t| mine.contains(t));
            let latest = from.view.entries().filter(same).map(watched).max();
            prop_assert_eq!(latest, Some(at), "not the title's latest play: {:?}", w);
            let shown = to
                .view
                .entries()
                .filter(same)
                .filter(|e| !removed.contains(&e.key()))
                .map(watched)
                .max();
            prop_assert!(
                shown.is_none_or(|t| t + (TOL as i64) < at),
                "already shown played at {:?}: {:?}",
                shown,
                w
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024),
        // Shrunk failures are kept at the end of this file as named tests.
        failure_persistence: None,
        // The same cases on every run (CI must not pass or fail by chance); explore new
        // ones with PROPTEST_RNG_SEED=<n> (or `random`) and PROPTEST_CASES.
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            ProptestConfig::default().rng_seed
        } else {
            proptest::test_runner::RngSeed::Fixed(0x00f3_7a11)
        },
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_removal_has_trusted_evidence(s in scenario()) {
        let w = world(&s);
        let inp = input(&s, &w, None);
        let p = plan(&inp);
        check_evidence(&inp, &p)?;
    }

    #[test]
    fn a_held_deletion_is_never_added_back_nor_removed(s in scenario()) {
        let mut s = s;
        s.a.trusted = false;
        s.a.held = true;
        s.b.trusted = false;
        s.b.held = true;
        let w = world(&s);
        let inp = input(&s, &w, None);
        let p = plan(&inp);
        prop_assert_eq!(p.removals().count(), 0, "{:?}", p);
        for (side, si) in [(Side::A, &inp.a), (Side::B, &inp.b)] {
            // One-way, the target's own deletions are not the user's word on the pair
            // (the source's are: it holds no removal, checked above).
            if !si.holds_deletions || s.feature == Feature::History || s.mode == Mode::OneWay {
                continue;
            }
            let Some(base) = si.baseline else { continue };
            for w in &p.side(side).adds {
                let k = w.entry.key();
                prop_assert!(
                    !base.contains_key(&k) || si.view.contains_key(&k),
                    "{k} was deleted on {side:?} (add-only) and is added back: {p:?}"
                );
            }
        }
    }

    #[test]
    fn playlist_titles_leave_only_on_evidence_and_drops_stay_dropped(s in playlist_scenario()) {
        let w = world(&s);
        let inp = input(&s, &w, None);
        let p = plan(&inp);
        check_evidence(&inp, &p)?;
        check_playlist_writes(&inp, &p)?;
    }

    #[test]
    fn replanning_playlists_after_a_fully_confirmed_apply_is_empty(s in playlist_scenario()) {
        check_replan_is_empty(s)?;
    }

    #[test]
    fn two_way_playlists_are_symmetric(s in playlist_scenario()) {
        let mut s = s;
        s.mode = Mode::TwoWay;
        let w = world(&s);
        let inp = input(&s, &w, None);
        prop_assert_eq!(swap_plan(&plan(&swap_input(&inp))), plan(&inp));
    }

    #[test]
    fn a_partial_suspect_down_or_unknown_side_never_yields_removals(s in scenario()) {
        let mut s = s;
        // Every way a side can be untrusted ends in `yields_deletions == false`.
        s.a.trusted = false;
        s.b.trusted = false;
        let w = world(&s);
        let inp = input(&s, &w, None);
        let p = plan(&inp);
        prop_assert_eq!(p.removals().count(), 0, "{:?}", p);
    }

    #[test]
    fn a_bootstrap_run_never_removes(s in scenario()) {
        let mut s = s;
        s.a.baseline = None;
        s.b.baseline = None;
        let w = world(&s);
        let p = plan(&input(&s, &w, None));
        prop_assert_eq!(p.removals().count(), 0);
    }

    #[test]
    fn two_way_is_symmetric_when_a_and_b_are_swapped(s in scenario()) {
        let mut s = s;
        s.mode = Mode::TwoWay;
        let w = world(&s);
        let inp = input(&s, &w, None);
        let p = plan(&inp);
        let q = plan(&swap_input(&inp));
        prop_assert_eq!(swap_plan(&q), p);
    }

    #[test]
    fn replanning_after_a_fully_confirmed_apply_is_empty(s in scenario()) {
        check_replan_is_empty(s)?;
    }

    #[test]
    fn replanning_is_empty_one_way_with_a_latest_only_side(
        s in latest_only_scenario(Mode::OneWay)
    ) {
        check_replan_is_empty(s)?;
    }

    #[test]
    fn replanning_is_empty_two_way_with_a_latest_only_side(
        s in latest_only_scenario(Mode::TwoWay)
    ) {
        check_replan_is_empty(s)?;
    }

    #[test]
    fn two_way_is_symmetric_with_a_latest_only_side(
        s in latest_only_scenario(Mode::TwoWay),
        tombs in proptest::collection::vec((spec(), any::<bool>()), 0..4),
    ) {
        // With tombstones too: plays ferry removed from either side earlier.
        let mut idx = TombstoneIndex::new();
        for (sp, on_a) in &tombs {
            let e = entry(Feature::History, sp);
            idx.insert(
                Tomb {
                    instance: if *on_a { "a" } else { "b" }.into(),
                    key: e.key(),
                    event_at: Some(Timestamp::from_unix(watched(&e))),
                    created_at: Timestamp::from_unix(1_900_000_000),
                },
                e.item.kind,
                id_tokens(&e.item),
            );
        }
        let w = world(&s);
        let inp = input(&s, &w, Some(&idx));
        let p = plan(&inp);
        // Swapping sides swaps the instances the tombstones name.
        let mut swapped = TombstoneIndex::new();
        for (sp, on_a) in &tombs {
            let e = entry(Feature::History, sp);
            swapped.insert(
                Tomb {
                    instance: if *on_a { "b" } else { "a" }.into(),
                    key: e.key(),
                    event_at: Some(Timestamp::from_unix(watched(&e))),
                    created_at: Timestamp::from_unix(1_900_000_000),
                },
                e.item.kind,
                id_tokens(&e.item),
            );
        }
        let mut swapped_inp = swap_input(&inp);
        swapped_inp.tombstones = Some(&swapped);
        // (Instances keep their names: side A is always "a".)
        swapped_inp.a.instance = "a";
        swapped_inp.b.instance = "b";
        let q = plan(&swapped_inp);
        prop_assert_eq!(swap_plan(&q), p);
    }

    #[test]
    fn a_latest_only_side_gets_only_the_latest_play_it_lacks(
        s in prop_oneof![latest_only_scenario(Mode::OneWay), latest_only_scenario(Mode::TwoWay)]
    ) {
        let w = world(&s);
        let inp = input(&s, &w, None);
        let p = plan(&inp);
        check_evidence(&inp, &p)?;
        check_latest_only_adds(&inp, &p)?;
    }
}

#[test]
fn held_deletions_keep_their_evidence_in_the_next_baseline() {
    let f = Feature::Watchlist;
    let s = |n| Spec {
        n,
        ids: 2,
        v: 0,
        t: 0,
    };
    let a = snap(f, &[s(1), s(2)]);
    let b = snap(f, &[s(1)]);
    let base = snap(f, &[s(1), s(2)]);
    let sw = FeatureSwitch {
        enable: true,
        add: true,
        remove: false,
    };
    let side = |view, inst| SideInput {
        instance: inst,
        view,
        baseline: Some(&base),
        yields_deletions: true,
        holds_deletions: false,
        filled: None,
        accepts_removals: true,
        accepts_adds: true,
        read: true,
        blackbox: None,
        plays: PlaysPerTitle::Many,
    };
    let inp = PlanInput {
        feature: f,
        mode: Mode::TwoWay,
        remove_mode: RemoveMode::SourceDeletes,
        switch: sw,
        a: side(&a, "a"),
        b: side(&b, "b"),
        tombstones: None,
        options: PlanOptions::default(),
    };
    let p = plan(&inp);
    assert!(
        p.is_empty(),
        "B deleted movie 2 and removals are off: held, not re-added"
    );
    assert_eq!(p.held.len(), 1);
    let retain = retained_evidence(&p, Side::B, Some(&base), std::iter::empty());
    let next = next_baseline(&b, Some(&base), BaselinePolicy::Replace, Vec::new(), retain).unwrap();
    assert_eq!(next.len(), 2, "B's baseline keeps movie 2 as evidence");
    let keys: HashSet<&str> = next.keys().collect();
    assert!(keys.contains(entry(f, &s(2)).key().as_str()));
}

/// Found by `replanning_after_a_fully_confirmed_apply_is_empty` (CI, random seed): a
/// one-way history pair whose source files one title's two plays under different ids
/// (tmdb only, imdb only), and whose target's baseline knew the title by both.
#[test]
fn replan_is_empty_when_a_baseline_bridged_two_ids_of_one_title() {
    let sp = |n, ids, v, t| Spec { n, ids, v, t };
    let side = |view, baseline, accepts_adds| SideGen {
        view,
        baseline,
        trusted: false,
        held: false,
        accepts_removals: false,
        accepts_adds,
        read: false,
        latest_only: false,
    };
    let s = Scenario {
        feature: Feature::History,
        mode: Mode::OneWay,
        remove_mode: RemoveMode::SourceDeletes,
        switch: FeatureSwitch {
            enable: true,
            add: true,
            remove: true,
        },
        a: side(vec![sp(8, 0, 0, 0), sp(8, 1, 1, 3)], None, false),
        b: side(vec![sp(8, 0, 1, 3)], Some(vec![sp(8, 2, 0, 0)]), true),
        truth_b: false,
    };
    check_replan_is_empty(s).unwrap();
}

fn playlist_side(view: Vec<Spec>, baseline: Option<Vec<Spec>>, trusted: bool) -> SideGen {
    SideGen {
        view,
        baseline,
        trusted,
        held: false,
        accepts_removals: false,
        accepts_adds: true,
        read: true,
        latest_only: false,
    }
}

/// Found by `playlist_titles_leave_only_on_evidence_and_drops_stay_dropped`: two-way with
/// removals off, B's user dropped movie 4 from a playlist (and added 5); the merge wrote
/// 4 back to B from A's copy.
#[test]
fn a_playlist_drop_is_not_written_back_when_removals_are_off() {
    let sp = |n, v, t| Spec { n, ids: 0, v, t };
    let s = Scenario {
        feature: Feature::Playlists,
        mode: Mode::TwoWay,
        remove_mode: RemoveMode::SourceDeletes,
        switch: FeatureSwitch {
            enable: true,
            add: true,
            remove: false,
        },
        a: playlist_side(vec![sp(7, 6, 3)], Some(vec![sp(7, 6, 0)]), false),
        b: playlist_side(vec![sp(7, 4, 0)], Some(vec![sp(7, 2, 0)]), true),
        truth_b: false,
    };
    let w = world(&s);
    let inp = input(&s, &w, None);
    let p = plan(&inp);
    check_playlist_writes(&inp, &p).unwrap();
    assert_eq!(p.held.len(), 1, "B's drop is held: {p:?}");
    check_replan_is_empty(s).unwrap();
}

/// Found by `replanning_playlists_after_a_fully_confirmed_apply_is_empty`: B's user
/// emptied a playlist A may not be updated in; nothing was held, the commit forgot B's
/// drop, and the next run wrote the title back to B.
#[test]
fn a_playlist_drop_the_other_side_cannot_take_is_held_not_forgotten() {
    let sp = |n, v, t| Spec { n, ids: 0, v, t };
    let mut a = playlist_side(vec![sp(4, 4, 0)], None, false);
    a.accepts_removals = true;
    a.accepts_adds = false;
    let s = Scenario {
        feature: Feature::Playlists,
        mode: Mode::TwoWay,
        remove_mode: RemoveMode::SourceDeletes,
        switch: FeatureSwitch {
            enable: true,
            add: true,
            remove: true,
        },
        a,
        b: playlist_side(vec![sp(4, 0, 0)], Some(vec![sp(4, 4, 0)]), true),
        truth_b: false,
    };
    check_replan_is_empty(s).unwrap();
}
