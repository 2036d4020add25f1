//! Stage 1, gate: whether the feature runs at all, from capabilities and health (spec
//! §4). In: the pair and the run's gates. Out: which sides are down, or the end of the
//! feature (`feature:unsupported`, or `writes:skipped` when the source is down).

use super::{End, FeatureCx};
use crate::events::{FeatureUnsupported, WritesSkipped, emit};
use crate::run::RunCx;
use crate::sides::Sides;

/// Which sides are down this feature.
pub(super) fn gate(rc: &RunCx<'_>, fx: &FeatureCx<'_>) -> Result<Sides<bool>, End> {
    let gates = fx.instance.map(|i| &rc.gates[i]);
    let readable = fx
        .caps
        .as_ref()
        .zip(gates)
        .map(|(c, g)| c.as_ref().is_some_and(|c| c.read) && g.feature_available(fx.feature));
    if !readable.all(|ok| *ok) {
        emit(
            &rc.em,
            FeatureUnsupported {
                scope: fx.scope.clone(),
                src_supported: readable.a,
                dst_supported: readable.b,
            },
        );
        return Err(End::Unsupported);
    }
    let down = gates.map(|g| g.down());
    if down.a && (!fx.two_way || down.b) {
        emit(
            &rc.em,
            WritesSkipped {
                pair: fx.scope.pair.clone(),
                src: Some(fx.scope.src.clone()),
                dst: fx.scope.dst.clone(),
                feature: fx.feature,
                mode: Some(fx.scope.mode.clone()),
                reason: "source_down".into(),
                src_status: Some(gates.a.status()),
                op: None,
                count: None,
            },
        );
        return Err(End::SourceDown);
    }
    Ok(down)
}
