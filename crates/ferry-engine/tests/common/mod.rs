//! Scenario test harness: an engine on a temporary state file, fake providers, and the
//! events of every run.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_core::{CancelToken, CollectingSink, Emitter, Entry, Feature, InventoryOps};
use ferry_engine::{
    Engine, FeatureSummary, FeatureSwitch, PairConfig, Providers, RunConfig, RunSummary,
};
use ferry_state::StateStore;
use ferry_testkit::fake::{FakeOp, FakeProvider};
use ferry_testkit::samples;

pub struct World {
    pub dir: tempfile::TempDir,
    pub sink: Arc<CollectingSink>,
    pub engine: Engine,
    pub fakes: BTreeMap<String, FakeProvider>,
    pub providers: Providers,
}

impl World {
    pub fn new(instances: &[&str]) -> Self {
        Self::with_debug(instances, false)
    }

    pub fn with_debug(instances: &[&str], debug: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = StateStore::open(dir.path().join("state.db")).unwrap();
        let sink = CollectingSink::new();
        let em = Emitter::builder().sink(sink.clone()).debug(debug).build();
        let engine = Engine::new(state, em);
        let mut fakes = BTreeMap::new();
        let mut providers: Providers = BTreeMap::new();
        for i in instances {
            let f = FakeProvider::new(*i);
            providers.insert(
                (*i).to_owned(),
                Arc::new(f.clone()) as Arc<dyn InventoryOps>,
            );
            fakes.insert((*i).to_owned(), f);
        }
        World {
            dir,
            sink,
            engine,
            fakes,
            providers,
        }
    }

    pub fn fake(&self, name: &str) -> &FakeProvider {
        &self.fakes[name]
    }

    /// Replaces a provider with another implementation (wrappers).
    pub fn set_provider(&mut self, name: &str, p: Arc<dyn InventoryOps>) {
        self.providers.insert(name.to_owned(), p);
    }

    /// A new engine on the same state file (as after a restart).
    pub fn reopen(&mut self) {
        let state = StateStore::open(self.dir.path().join("state.db")).unwrap();
        let em = Emitter::to_sink(self.sink.clone());
        self.engine = Engine::new(state, em);
    }

    pub async fn run(&self, cfg: &RunConfig) -> RunSummary {
        self.sink.clear();
        self.engine
            .run(&self.providers, cfg, CancelToken::new())
            .await
            .unwrap()
    }

    pub fn count(&self, name: &str) -> usize {
        self.sink.named(name).len()
    }

    pub fn keys(&self, inst: &str, f: Feature) -> Vec<String> {
        let mut k = self.fake(inst).keys(f);
        k.sort();
        k
    }
}

pub fn pair(name: &str, src: &str, dst: &str, f: Feature, sw: FeatureSwitch) -> PairConfig {
    PairConfig::new(name, src, dst).feature(f, sw)
}

pub fn cfg(pairs: Vec<PairConfig>) -> RunConfig {
    let mut c = RunConfig::new(pairs);
    // One retry of a failed health probe (after 250 ms) instead of the 5 s budget: a
    // scripted outage then costs a quarter second, a blip is still absorbed.
    c.guardrails.health_retry_ms = 600;
    c
}

pub fn entries(f: Feature, range: std::ops::Range<u32>) -> Vec<Entry> {
    range.map(|n| samples::entry(f, n)).collect()
}

pub fn feat<'a>(s: &'a RunSummary, pair: &str, f: Feature) -> &'a FeatureSummary {
    s.feature(pair, f)
        .unwrap_or_else(|| panic!("no summary for {pair}/{f}: {s:#?}"))
}

pub fn reads(w: &World, inst: &str) -> usize {
    w.fake(inst).calls(FakeOp::BuildIndex)
}
