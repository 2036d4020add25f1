//! `api:hit` aggregation into `api:totals` and `http:overview` (`docs/events.md`).
//!
//! The engine hands providers an emitter whose only sink is a `Forward`: every event
//! goes on to the caller's emitter unchanged, and `api:hit` events are also counted here.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ferry_core::{Emitter, Event, EventSink};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::events::{ApiTotalsEvent, EndpointTotals, HttpOverview, OverviewLine, TotalsBody};

/// Counters for one provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderTotals {
    pub total: u64,
    pub ok: u64,
    pub errors: u64,
    pub by_endpoint: BTreeMap<String, u64>,
    pub by_feature: BTreeMap<String, u64>,
    pub by_method: BTreeMap<String, u64>,
    /// Status codes and their `Nxx` classes.
    pub by_status: BTreeMap<String, u64>,
    pub latency_ms_sum: u64,
    pub latency_ms_samples: u64,
    pub latency_ms_max: u64,
}

impl ProviderTotals {
    pub fn latency_ms_avg(&self) -> Option<u64> {
        self.latency_ms_sum.checked_div(self.latency_ms_samples)
    }
}

/// Run-wide API totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiTotals {
    pub total: u64,
    pub providers: BTreeMap<String, ProviderTotals>,
}

impl ApiTotals {
    /// Counts one `api:hit` event. The provider is taken from `provider` (or `instance`,
    /// `dst`, `src`), the operation from `op` (or `endpoint`), e.g. `GET /sync/watchlist`.
    pub fn record(&mut self, e: &Event) {
        let who = ["instance", "provider", "dst", "src"]
            .iter()
            .find_map(|f| e.str(f))
            .unwrap_or("unknown")
            .to_owned();
        let p = self.providers.entry(who).or_default();
        self.total += 1;
        p.total += 1;
        let op = e.str("op").or_else(|| e.str("endpoint"));
        if let Some(op) = op {
            *p.by_endpoint.entry(op.to_owned()).or_default() += 1;
        }
        // One request, one method: the `method` field, else the verb that starts `op`
        // (ferry-http sends both; counting each would count every request twice).
        let method = e.str("method").map(str::to_ascii_uppercase).or_else(|| {
            op.and_then(|op| op.split_once(' '))
                .map(|(m, _)| m)
                .filter(|m| m.chars().all(|c| c.is_ascii_uppercase()))
                .map(str::to_owned)
        });
        if let Some(m) = method {
            *p.by_method.entry(m).or_default() += 1;
        }
        if let Some(f) = e.str("feature") {
            *p.by_feature.entry(f.to_owned()).or_default() += 1;
        }
        if let Some(s) = e.u64("status") {
            *p.by_status.entry(s.to_string()).or_default() += 1;
            *p.by_status.entry(format!("{}xx", s / 100)).or_default() += 1;
        }
        let ok = match e.get("ok") {
            Some(Value::Bool(b)) => *b,
            _ => e.u64("status").is_some_and(|s| s < 400),
        };
        if ok {
            p.ok += 1;
        } else {
            p.errors += 1;
        }
        if let Some(ms) = e.u64("ms").or_else(|| e.u64("latency_ms")) {
            p.latency_ms_sum += ms;
            p.latency_ms_samples += 1;
            p.latency_ms_max = p.latency_ms_max.max(ms);
        }
    }

    /// The `api:totals` event.
    pub fn totals_event(&self) -> ApiTotalsEvent {
        let providers = self
            .providers
            .iter()
            .map(|(k, p)| {
                let line = EndpointTotals {
                    total: p.total,
                    by_endpoint: p.by_endpoint.clone(),
                    by_feature: p.by_feature.clone(),
                    by_method: p.by_method.clone(),
                    by_status: p.by_status.clone(),
                    latency_ms_avg: p.latency_ms_avg(),
                    latency_ms_samples: p.latency_ms_samples,
                };
                (k.clone(), line)
            })
            .collect();
        ApiTotalsEvent {
            totals: TotalsBody {
                total: self.total,
                providers,
            },
        }
    }

    /// The `http:overview` event: one line per provider.
    pub fn overview_event(&self) -> HttpOverview {
        let providers = self
            .providers
            .iter()
            .map(|(k, p)| {
                let line = OverviewLine {
                    requests: p.total,
                    ok: p.ok,
                    errors: p.errors,
                    latency_ms_avg: p.latency_ms_avg(),
                    latency_ms_max: p.latency_ms_max,
                };
                (k.clone(), line)
            })
            .collect();
        HttpOverview {
            window: "run".into(),
            requests: self.total,
            providers,
        }
    }

    /// Hits counted for one provider instance so far.
    pub fn hits_for(&self, instance: &str) -> u64 {
        self.providers.get(instance).map_or(0, |p| p.total)
    }
}

/// Forwards every event to the caller's emitter and counts `api:hit`.
pub(crate) struct Forward {
    inner: Emitter,
    totals: Arc<Mutex<ApiTotals>>,
}

impl EventSink for Forward {
    fn event(&self, event: &Event) {
        if event.name == "api:hit"
            && let Ok(mut t) = self.totals.lock()
        {
            t.record(event);
        }
        self.inner
            .emit(&event.name, Value::Object(event.fields.clone()));
    }
}

/// The run's emitter (counting `api:hit`) and the shared totals.
pub(crate) fn counting_emitter(inner: &Emitter, debug: bool) -> (Emitter, Arc<Mutex<ApiTotals>>) {
    let totals = Arc::new(Mutex::new(ApiTotals::default()));
    let em = Emitter::builder()
        .sink(Arc::new(Forward {
            inner: inner.clone(),
            totals: totals.clone(),
        }))
        .debug(debug || inner.debug_enabled())
        .build();
    (em, totals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::CollectingSink;
    use serde_json::json;

    #[test]
    fn api_hits_are_counted_and_forwarded() {
        let sink = CollectingSink::new();
        let outer = Emitter::to_sink(sink.clone());
        let (em, totals) = counting_emitter(&outer, false);
        em.emit("api:hit", json!({"provider": "trakt", "op": "GET /sync/watchlist", "ms": 10, "ok": true, "status": 200}));
        em.emit("api:hit", json!({"provider": "trakt", "op": "POST /sync/watchlist", "ms": 30, "ok": false, "status": 503}));
        // ferry-http's shape: the method both in `op` and on its own, counted once.
        em.emit("api:hit", json!({"provider": "simkl", "op": "GET /sync/activities", "method": "GET", "ms": 1, "ok": true, "status": 200}));
        em.emit("run:start", json!({}));
        em.dbg("hidden", json!({}));
        let t = totals.lock().unwrap().clone();
        assert_eq!(t.total, 3);
        let p = &t.providers["trakt"];
        assert_eq!((p.ok, p.errors, p.latency_ms_avg()), (1, 1, Some(20)));
        assert_eq!(p.by_method["GET"], 1);
        assert_eq!(p.by_method["POST"], 1);
        assert_eq!(p.by_status["5xx"], 1);
        assert_eq!(t.providers["simkl"].by_method["GET"], 1);
        assert_eq!(sink.names(), ["api:hit", "api:hit", "api:hit", "run:start"]);
        assert_eq!(t.totals_event().totals.providers["trakt"].total, 2);
    }
}
