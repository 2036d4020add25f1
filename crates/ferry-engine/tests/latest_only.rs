//! History against a side that keeps only the latest play of each title (Jellyfin, Emby):
//! worked examples of the planner rules. The properties are in `planner_props.rs`.

use ferry_core::{Entry, Feature, IdKind, Ids, Item, PlaysPerTitle, Snapshot, Timestamp};
use ferry_engine::plan::{
    EvidenceKind, HoldReason, Plan, PlanInput, PlanOptions, Side, SideInput, plan,
};
use ferry_engine::{FeatureSwitch, Mode, RemoveMode};

const H: Feature = Feature::History;
const DAY: i64 = 86_400;

fn movie(n: u32) -> Item {
    Item::movie(
        format!("Movie {n}"),
        2000,
        Ids::new().with(IdKind::Tmdb, &(1000 + n).to_string()),
    )
}

fn play(n: u32, day: i64) -> Entry {
    Entry::watch(movie(n), Timestamp::from_unix(1_700_000_000 + day * DAY))
}

fn snap(plays: &[Entry]) -> Snapshot {
    ferry_testkit::snap(H, plays.iter().cloned())
}

struct Case {
    mode: Mode,
    switch: FeatureSwitch,
    /// Side A keeps every play (a tracker); side B keeps one per title (a media server).
    a: Snapshot,
    b: Snapshot,
    a_base: Option<Snapshot>,
    b_base: Option<Snapshot>,
    /// Which side keeps one play per title (B unless swapped).
    latest: Side,
}

impl Case {
    fn new(mode: Mode, a: &[Entry], b: &[Entry]) -> Self {
        Case {
            mode,
            switch: FeatureSwitch::with_removals(),
            a: snap(a),
            b: snap(b),
            a_base: None,
            b_base: None,
            latest: Side::B,
        }
    }

    fn bases(mut self, a: &[Entry], b: &[Entry]) -> Self {
        self.a_base = Some(snap(a));
        self.b_base = Some(snap(b));
        self
    }

    fn plan(&self) -> Plan {
        let plays = |s: Side| {
            if s == self.latest {
                PlaysPerTitle::LatestOnly
            } else {
                PlaysPerTitle::Many
            }
        };
        let side = |view, base, plays| SideInput {
            instance: if plays == PlaysPerTitle::Many {
                "trakt"
            } else {
                "jellyfin"
            },
            view,
            baseline: base,
            yields_deletions: true,
            holds_deletions: false,
            filled: None,
            accepts_removals: true,
            accepts_adds: true,
            read: true,
            blackbox: None,
            plays,
        };
        plan(&PlanInput {
            feature: H,
            mode: self.mode,
            remove_mode: RemoveMode::SourceDeletes,
            switch: self.switch,
            a: side(&self.a, self.a_base.as_ref(), plays(Side::A)),
            b: side(&self.b, self.b_base.as_ref(), plays(Side::B)),
            tombstones: None,
            options: PlanOptions::default(),
        })
    }
}

fn keys(es: impl IntoIterator<Item = Entry>) -> Vec<String> {
    let mut k: Vec<String> = es.into_iter().map(|e| e.key()).collect();
    k.sort();
    k
}

#[test]
fn only_the_latest_play_is_written_and_only_when_it_is_newer() {
    // Trakt: three plays of movie 1, two of movie 2; Jellyfin shows movie 1 played on day
    // 2 and movie 2 played on day 9 (after every Trakt play of it).
    let c = Case::new(
        Mode::TwoWay,
        &[play(1, 1), play(1, 2), play(1, 5), play(2, 3), play(2, 4)],
        &[play(1, 2), play(2, 9)],
    );
    let p = c.plan();
    assert_eq!(
        keys(p.to_b.adds.iter().map(|w| w.entry.clone())),
        keys([play(1, 5)]),
        "movie 1 moves forward to its latest play; movie 2 already shows a later one"
    );
    assert_eq!(
        keys(p.to_a.adds.iter().map(|w| w.entry.clone())),
        keys([play(2, 9)]),
        "Jellyfin's one play of movie 2 is one play Trakt lacks"
    );
    assert!(p.to_a.removes.is_empty() && p.to_b.removes.is_empty());
    assert!(p.held.is_empty());
}

#[test]
fn a_moved_date_is_not_a_deletion() {
    // Synced: Jellyfin showed movie 1 at day 2. ferry then moved it to day 5 (Trakt's
    // latest); its baseline still has day 2.
    let trakt = [play(1, 2), play(1, 5)];
    let c = Case::new(Mode::TwoWay, &trakt, &[play(1, 5)]).bases(&trakt, &[play(1, 2)]);
    let p = c.plan();
    assert!(p.is_empty(), "{p:#?}");
    assert!(p.held.is_empty());
    // One-way from Jellyfin to Trakt: the same.
    let c = Case {
        latest: Side::A,
        ..Case::new(Mode::OneWay, &[play(1, 5)], &trakt).bases(&[play(1, 2)], &trakt)
    };
    let p = c.plan();
    assert!(p.is_empty(), "{p:#?}");
    // Unplayed on Jellyfin: Trakt loses the one play ferry copied, never the others.
    let c = Case {
        latest: Side::A,
        ..Case::new(Mode::OneWay, &[], &trakt).bases(&[play(1, 5)], &trakt)
    };
    let p = c.plan();
    assert_eq!(
        keys(p.to_b.removes.iter().map(|r| r.entry.clone())),
        keys([play(1, 5)])
    );
}

#[test]
fn unplaying_a_title_removes_the_plays_its_play_covered() {
    let trakt = [play(1, 1), play(1, 2), play(3, 1)];
    let jf = [play(1, 2), play(3, 1)];
    // The user marks movie 1 unplayed on Jellyfin; meanwhile movie 1 was watched again on
    // day 7 and recorded on Trakt.
    let now = [play(1, 1), play(1, 2), play(1, 7), play(3, 1)];
    let c = Case::new(Mode::TwoWay, &now, &[play(3, 1)]).bases(&trakt, &jf);
    let p = c.plan();
    let removed: Vec<Entry> = p.to_a.removes.iter().map(|r| r.entry.clone()).collect();
    assert_eq!(keys(removed), keys([play(1, 1), play(1, 2)]));
    for r in &p.to_a.removes {
        assert_eq!(r.evidence.kind, EvidenceKind::Baseline);
        assert_eq!(r.evidence.side, Side::B);
        assert_eq!(r.evidence.key, play(1, 2).key());
    }
    assert_eq!(
        keys(p.to_b.adds.iter().map(|w| w.entry.clone())),
        keys([play(1, 7)]),
        "the newer play is news, not covered by the deletion"
    );

    // Removals off: held, never re-added to Jellyfin.
    let c = Case {
        switch: FeatureSwitch::default(),
        ..Case::new(Mode::TwoWay, &trakt, &[play(3, 1)]).bases(&trakt, &jf)
    };
    let p = c.plan();
    assert!(p.is_empty(), "{p:#?}");
    assert_eq!(p.held.len(), 2);
    assert!(
        p.held
            .iter()
            .all(|h| h.reason == HoldReason::RemovalsDisabled && h.removal)
    );
}

#[test]
fn a_deleted_latest_play_moves_the_media_server_back_in_one_run() {
    // Trakt deleted movie 1's day-5 play; Jellyfin shows day 5. Two-way removes it there
    // and writes the latest remaining play (removals are applied before adds).
    let trakt = [play(1, 2), play(1, 5)];
    let c = Case::new(Mode::TwoWay, &[play(1, 2)], &[play(1, 5)]).bases(&trakt, &[play(1, 5)]);
    let p = c.plan();
    assert_eq!(
        keys(p.to_b.removes.iter().map(|r| r.entry.clone())),
        keys([play(1, 5)])
    );
    assert_eq!(
        keys(p.to_b.adds.iter().map(|w| w.entry.clone())),
        keys([play(1, 2)])
    );
    assert!(p.to_a.is_empty());
}

#[test]
fn one_way_to_a_media_server_keeps_its_date_while_the_source_still_holds_a_play() {
    let trakt = [play(1, 2), play(1, 5)];
    let c = Case::new(Mode::OneWay, &[play(1, 2)], &[play(1, 5)]).bases(&trakt, &[play(1, 5)]);
    let p = c.plan();
    assert!(p.is_empty(), "{p:#?}");
    // Every play gone from the source: the title is unmarked.
    let c = Case::new(Mode::OneWay, &[], &[play(1, 5)]).bases(&trakt, &[play(1, 5)]);
    let p = c.plan();
    assert_eq!(
        keys(p.to_b.removes.iter().map(|r| r.entry.clone())),
        keys([play(1, 5)])
    );
}
