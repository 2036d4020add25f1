//! `ferry simulate mdblist` (feature `sim`): the testkit's MDBList simulator, declared in
//! the provider's descriptor.

use ferry_core::{Scenario, SimHandle, SimStart, Simulator};
use ferry_testkit::sim::mdblist::MdblistSim;
use serde_json::{Map, Value, json};

pub(crate) const SIMULATOR: Simulator = Simulator {
    ports: 1,
    start,
    demo: None,
};

struct Handle(MdblistSim);

impl SimHandle for Handle {
    fn base_url(&self) -> String {
        self.0.uri()
    }

    fn config(&self) -> Map<String, Value> {
        let v = json!({"base_url": self.0.uri(), "api_key": self.0.api_key()});
        v.as_object().cloned().unwrap_or_default()
    }

    fn requests(&self) -> u64 {
        self.0.total_requests()
    }
}

fn start(scenario: Scenario) -> SimStart {
    Box::pin(async move {
        let items = match scenario {
            Scenario::Library { items } => items,
            Scenario::Demo { movies, .. } => movies,
        };
        let sim = MdblistSim::builder().movies(items).start().await;
        Ok(Box::new(Handle(sim)) as Box<dyn SimHandle>)
    })
}
