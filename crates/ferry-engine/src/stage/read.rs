//! Stage 3, read: each side's snapshot (`build_index`), A then B. In: which sides are
//! down (not read). Out: the snapshots, or the end of the feature: a failed read ends it
//! with nothing committed (`snapshot:failed`, then `feature:error`).

use ferry_core::{Context, ErrorKind, IndexSemantics, Snapshot};

use super::{End, FeatureCx};
use crate::events::{SnapshotFailed, emit};
use crate::run::RunCx;
use crate::sides::Sides;

pub(super) async fn read(
    rc: &RunCx<'_>,
    fx: &FeatureCx<'_>,
    down: Sides<bool>,
    calls: &mut u64,
) -> Result<Sides<Option<Snapshot>>, End> {
    let mut snaps = Sides::<Option<Snapshot>>::default();
    for (side, inst) in fx.instance {
        if *down.get(side) {
            continue;
        }
        if rc.cancel.is_cancelled() {
            return Err(End::Cancelled);
        }
        *calls += 1;
        let p = fx.provider.get(side);
        let cx = Context::new(
            rc.em
                .with_redactions(p.secrets().iter().map(|s| s.expose().to_owned())),
            rc.cancel.clone(),
        );
        match p.build_index(&cx, fx.feature).await {
            Ok(mut s) if s.feature() == fx.feature => {
                // A provider that declares delta reads is read as such, whatever one
                // snapshot says.
                if fx
                    .caps
                    .get(side)
                    .as_ref()
                    .is_some_and(|c| c.semantics == IndexSemantics::Delta)
                {
                    s = s.with_semantics(IndexSemantics::Delta);
                }
                *snaps.get_mut(side) = Some(s);
            }
            Ok(s) => {
                return Err(End::Error {
                    error: format!(
                        "{inst} returned a {} snapshot for {}",
                        s.feature(),
                        fx.feature
                    ),
                    kind: "malformed_response".into(),
                });
            }
            Err(e) if e.kind() == ErrorKind::Cancelled => return Err(End::Cancelled),
            Err(e) => {
                emit(
                    &rc.em,
                    SnapshotFailed {
                        scope: fx.scope.clone(),
                        provider: inst.to_owned(),
                        error: e.to_string(),
                        kind: e.kind().as_str().to_owned(),
                    },
                );
                return Err(End::Error {
                    error: format!("{inst}: {e}"),
                    kind: e.kind().as_str().to_owned(),
                });
            }
        }
    }
    Ok(snaps)
}
