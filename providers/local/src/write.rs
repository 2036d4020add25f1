//! Writes: the feature's file read whole (refused if a row does not decode: writing it
//! back would lose that row), changed through `MemoryInventory`'s shared write rules, and
//! written back atomically.

use ferry_core::{Context, Entry, Error, Feature, ProviderKind, Result, WriteReport};

use crate::LocalProvider;

impl LocalProvider {
    pub(crate) async fn write(
        &self,
        cx: &Context,
        feature: Feature,
        entries: &[Entry],
        add: bool,
    ) -> Result<WriteReport> {
        cx.check_cancelled()?;
        if !Self::capabilities().supports(feature) {
            return Err(Error::unsupported(format!("local does not hold {feature}")));
        }
        let _guard = self.write_lock.lock().await;
        let entries = entries.to_vec();
        // The harness around every provider reports the call (`provider:write`).
        self.blocking(move |s| {
            let mut inv = s.load(feature)?;
            let report = if add {
                inv.add(feature, &entries)
            } else {
                inv.remove(feature, &entries)
            };
            if report.confirmed() > 0 {
                s.save(feature, &inv)?;
            }
            Ok(report)
        })
        .await
    }
}
