//! The system under test: the real engine on a temporary state file, two fake providers
//! and a simulated clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ferry_core::{
    CancelToken, CollectingSink, Emitter, ErrorKind, Feature, Health, InventoryOps, Timestamp,
};
use ferry_engine::{Engine, FeatureSwitch, PairConfig, Providers, RunConfig, RunSummary};
use ferry_state::StateStore;
use ferry_testkit::fake::{FakeOp, FakeProvider};

use super::steps::{Fault, PairMode, Side};
use super::view::SideView;

pub const FEATURES: [Feature; 3] = [Feature::Watchlist, Feature::Ratings, Feature::History];

pub struct World {
    dir: tempfile::TempDir,
    pub sink: Arc<CollectingSink>,
    engine: Engine,
    fakes: [FakeProvider; 2],
    providers: Providers,
    cfg: RunConfig,
    clock: Arc<AtomicI64>,
}

impl World {
    pub fn new(mode: PairMode) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let sink = CollectingSink::new();
        let clock = Arc::new(AtomicI64::new(0));
        let fakes = [FakeProvider::new("a"), FakeProvider::new("b")];
        let mut providers: Providers = BTreeMap::new();
        for f in &fakes {
            providers.insert(f.instance().to_owned(), f.ops());
        }
        let mut pair = PairConfig::new("p", "a", "b");
        for f in FEATURES {
            pair = pair.feature(f, FeatureSwitch::with_removals());
        }
        let pair = match mode {
            PairMode::OneWay => pair,
            PairMode::TwoWay => pair.two_way(),
            PairMode::Mirror => pair.mirror(),
        };
        let engine = open_engine(&dir, &sink, &clock);
        World {
            dir,
            sink,
            engine,
            fakes,
            providers,
            cfg: RunConfig::new(vec![pair]),
            clock,
        }
    }

    pub fn fake(&self, s: Side) -> &FakeProvider {
        &self.fakes[s.idx()]
    }

    pub fn views(&self) -> [SideView; 2] {
        [
            SideView::read(&self.fakes[0]),
            SideView::read(&self.fakes[1]),
        ]
    }

    pub fn set_time(&self, unix: i64) {
        self.clock.store(unix, Ordering::SeqCst);
    }

    /// One run with the faults scripted; `None` when the process was killed mid-apply
    /// (the engine is then reopened on the same state file, as after a restart).
    pub async fn run(&mut self, faults: [Option<Fault>; 2]) -> Result<Option<RunSummary>, String> {
        for (fake, fault) in self.fakes.iter().zip(faults) {
            if let Some(f) = fault {
                script(fake, f);
            }
        }
        self.sink.clear();
        let (engine, providers, cfg) = (
            self.engine.clone(),
            self.providers.clone(),
            self.cfg.clone(),
        );
        let joined =
            tokio::spawn(async move { engine.run(&providers, &cfg, CancelToken::new()).await })
                .await;
        for fake in &self.fakes {
            fake.clear_faults();
            fake.set_health(Health::ok());
        }
        match joined {
            Ok(Ok(summary)) => Ok(Some(summary)),
            Ok(Err(e)) => Err(format!("the run failed: {e}")),
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let msg = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                if !msg.contains(SIMULATED_CRASH) {
                    return Err(format!("the engine panicked: {msg}"));
                }
                self.engine = open_engine(&self.dir, &self.sink, &self.clock);
                Ok(None)
            }
            Err(e) => Err(format!("the run's task failed: {e}")),
        }
    }
}

/// What the fake's crash says; a panic without it is the engine's own.
pub const SIMULATED_CRASH: &str = "simulated crash";

fn open_engine(
    dir: &tempfile::TempDir,
    sink: &Arc<CollectingSink>,
    clock: &Arc<AtomicI64>,
) -> Engine {
    let state = StateStore::open(dir.path().join("state.db")).expect("state file");
    let clock = clock.clone();
    Engine::new(state, Emitter::to_sink(sink.clone()))
        .with_clock(move || Timestamp::from_unix(clock.load(Ordering::SeqCst)))
}

fn script(fake: &FakeProvider, fault: Fault) {
    match fault {
        Fault::Blip => {
            fake.health_blip();
        }
        Fault::Down => {
            fake.set_health(Health::down("scripted outage"));
        }
        Fault::Auth => {
            fake.set_health(Health::auth_failed("scripted: token rejected"));
        }
        Fault::Unknown => {
            fake.without_health();
        }
        Fault::Partial(n) => {
            for f in FEATURES {
                fake.truncate_next_read(f, 1 + usize::from(n % 3));
            }
        }
        Fault::Empty => {
            for f in FEATURES {
                fake.lie_empty_next_read(f);
            }
        }
        Fault::WritesFail(n) => {
            let n = 1 + usize::from(n % 3);
            fake.fail_next(FakeOp::Add, ErrorKind::Unavailable, n);
            fake.fail_next(FakeOp::Remove, ErrorKind::Unavailable, n);
        }
        Fault::Kill(n) => {
            fake.crash_after_writes(usize::from(n % 3));
        }
        Fault::Blind(n) => {
            fake.fail_next(
                FakeOp::Activities,
                ErrorKind::Unavailable,
                1 + usize::from(n % 3),
            );
        }
    }
}
