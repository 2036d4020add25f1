//! Test support for ferry providers and the engine.
//!
//! - [`contract`]: the provider contract suite, as plain public async check functions
//!   (object_store's `integration.rs` style) plus [`contract::run_contract_suite`], which
//!   runs every check that applies to a provider's declared features (OpenDAL's behaviour
//!   suite style). Third-party providers call the same functions.
//! - [`samples`]: deterministic sample titles every simulator's library also contains, so
//!   media servers (which can only write items they hold) can run the same checks.
//! - [`fake`]: an in-memory provider with scripted health, failures and lies, for the
//!   orchestrator's scenario tests.
//!
//! Not a stable API: it changes with the contract.

pub mod contract;
pub mod fake;
pub mod samples;
pub mod sim;

use ferry_core::{Entry, Feature, MemoryInventory, Snapshot};

/// A complete snapshot of `entries`, for tests: an in-memory inventory read whole.
pub fn snap(feature: Feature, entries: impl IntoIterator<Item = Entry>) -> Snapshot {
    let mut inv = MemoryInventory::new();
    inv.replace(feature, entries);
    inv.snapshot(feature)
}
