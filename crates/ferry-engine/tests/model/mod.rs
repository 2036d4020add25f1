//! The driver of the model-based test: plays a case's steps against the engine and the
//! reference model together and checks the invariants after every run.

// A test crate has no public API: `pub` here only shares items between its modules.
#![allow(unreachable_pub)]

mod check;
mod reference;
pub mod steps;
mod view;
mod world;

use ferry_core::CollectingSink;
use ferry_engine::RunSummary;
use ferry_testkit::samples;

use reference::Model;
use steps::{Fault, PairMode, Step};
use view::SideView;
use world::World;

/// Simulated time moves this much per step: plays of one title never fall within the
/// history tolerance of each other by accident.
const TICK: i64 = 1_000;

struct Harness {
    world: World,
    model: Model,
    now: i64,
    /// Fault-free runs since the last user change or faulty run.
    streak: u32,
    lies: Lies,
    trace: bool,
}

/// Which empty lies a case may still tell.
///
/// ferry's rule acts on an empty read once a read in a later run shows the same. When a
/// side's checkpoint moved in a way the engine did not commit (a user change; or ferry's
/// own writes in a faulty run: killed, checkpoint unreadable, read partial), two empty
/// lies in a row look exactly like the user emptying the list: nothing, checkpoints
/// included, tells them apart. So once a side has lied after such a move, it does not
/// lie again before a fault-free run (which reads it truthfully and commits). After a
/// fault-free run, two lies in a row stay: the unmoved checkpoint says nothing was
/// deleted.
#[derive(Default)]
struct Lies {
    /// Per side: its checkpoint may have moved uncommitted (a user change, a faulty
    /// run) since the last fault-free run.
    dirty: [bool; 2],
    /// Per side: it lied after such a move.
    lied: [bool; 2],
}

impl Lies {
    fn admit(&mut self, faults: [Option<Fault>; 2]) -> [Option<Fault>; 2] {
        let mut out = faults;
        for (i, f) in out.iter_mut().enumerate() {
            if *f == Some(Fault::Empty) {
                if self.lied[i] {
                    *f = None;
                } else if self.dirty[i] {
                    self.lied[i] = true;
                }
            }
        }
        out
    }

    /// After a run: a fault-free one reads both sides truthfully and commits; any other
    /// may leave checkpoint moves the engine never committed, its own writes to a side
    /// that lied in it included.
    fn after_run(&mut self, fault_free: bool, faults: [Option<Fault>; 2], wrote: [bool; 2]) {
        if fault_free {
            *self = Lies::default();
            return;
        }
        self.dirty = [true, true];
        for i in 0..2 {
            if wrote[i] && faults[i] == Some(Fault::Empty) {
                self.lied[i] = true;
            }
        }
    }
}

/// Plays `steps` (then three fault-free runs) and checks every invariant; the error
/// names the step and the invariant broken.
pub async fn check_case(mode: PairMode, steps: &[Step]) -> Result<(), String> {
    silence_simulated_crashes();
    let mut h = Harness {
        world: World::new(mode),
        model: Model::new(mode),
        now: samples::BASE_TIME + 1_000_000,
        streak: 0,
        lies: Lies::default(),
        trace: std::env::var_os("MODEL_TRACE").is_some(),
    };
    for (i, step) in steps.iter().copied().chain([Step::Settle]).enumerate() {
        h.trace(|| format!("step {i}: {step:?}"));
        h.step(step)
            .await
            .map_err(|e| format!("{mode:?}, step {i} ({step:?}): {e}"))?;
    }
    Ok(())
}

impl Harness {
    /// `MODEL_TRACE` output, for a person triaging a case.
    #[allow(clippy::print_stderr)]
    fn trace(&self, line: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("{}", line());
        }
    }

    fn tick(&mut self) {
        self.now += TICK;
        self.world.set_time(self.now);
    }

    async fn step(&mut self, step: Step) -> Result<(), String> {
        match step {
            Step::User(side, act) => {
                self.tick();
                let v = self.world.views();
                let edits = self.model.user(side, act, [&v[0], &v[1]], self.now);
                self.edit(edits);
            }
            Step::PlayBoth(t, skew) => {
                self.tick();
                let edits = self.model.play_both(t, skew, self.now);
                self.edit(edits);
            }
            Step::Run(a, b) => self.run([a, b]).await?,
            Step::Settle => {
                for _ in 0..3 {
                    self.run([None, None]).await?;
                }
            }
        }
        Ok(())
    }

    fn edit(&mut self, edits: Vec<(steps::Side, view::Edit)>) {
        if edits.is_empty() {
            return;
        }
        self.streak = 0;
        for (side, e) in edits {
            self.lies.dirty[side.idx()] = true;
            self.trace(|| format!("  {side:?}: {e:?}"));
            e.apply(self.world.fake(side));
        }
    }

    async fn run(&mut self, faults: [Option<Fault>; 2]) -> Result<(), String> {
        self.tick();
        let faults = self.lies.admit(faults);
        let before = self.world.views();
        let summary = self.world.run(faults).await?;
        let after = self.world.views();
        self.trace(|| {
            format!(
                "  run {faults:?}\n    A {:?}\n    B {:?}{}",
                after[0],
                after[1],
                describe(summary.as_ref(), &self.world.sink)
            )
        });
        let sink = &self.world.sink;
        let context = |e: String| context(e, &before, &after, summary.as_ref(), sink);
        check::check_run(&self.model, &before, &after).map_err(context)?;
        let clean = faults.iter().all(|f| f.is_none_or(Fault::is_benign));
        self.streak = if clean { self.streak + 1 } else { 0 };
        let wrote = [before[0] != after[0], before[1] != after[1]];
        self.lies
            .after_run(clean && summary.is_some(), faults, wrote);
        if self.streak == 2 {
            self.model
                .check_converged([&after[0], &after[1]])
                .map_err(context)?;
            self.model.adopt([&after[0], &after[1]]);
        }
        if self.streak >= 3 {
            let t = summary.as_ref().map(|s| &s.totals);
            let wrote = t.is_none_or(|t| t.added + t.updated + t.removed > 0);
            if wrote || before != after {
                return Err(context(format!("a third fault-free run wrote: {t:?}")));
            }
        }
        Ok(())
    }
}

/// An invariant's message with what the run saw and did.
fn context(
    e: String,
    before: &[SideView; 2],
    after: &[SideView; 2],
    summary: Option<&RunSummary>,
    sink: &CollectingSink,
) -> String {
    let mut s = format!(
        "{e}\n  A before {:?}\n  A after  {:?}\n  B before {:?}\n  B after  {:?}",
        before[0], after[0], before[1], after[1]
    );
    s.push_str(&describe(summary, sink));
    s
}

/// What a run did, per feature, and its events.
fn describe(summary: Option<&RunSummary>, sink: &CollectingSink) -> String {
    let mut s = String::new();
    match summary {
        None => s.push_str("\n  (the run was killed)"),
        Some(sum) => {
            for f in sum.pairs.iter().flat_map(|p| &p.features) {
                s.push_str(&format!(
                    "\n  {}: {:?} to_a +{} ~{} -{} to_b +{} ~{} -{} blocked {:?} suspect {:?}",
                    f.feature,
                    f.status,
                    f.to_a.added,
                    f.to_a.updated,
                    f.to_a.removed,
                    f.to_b.added,
                    f.to_b.updated,
                    f.to_b.removed,
                    f.blocked,
                    f.suspect
                        .iter()
                        .map(|(i, s)| (i, &s.reason))
                        .collect::<Vec<_>>(),
                ));
            }
        }
    }
    let names = sink.names();
    s.push_str(&format!("\n  events: {}", names.join(" ")));
    s
}

/// The fake's simulated crash is expected; keep its panic message out of the output.
fn silence_simulated_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !msg.contains(world::SIMULATED_CRASH) {
                default(info);
            }
        }));
    });
}
