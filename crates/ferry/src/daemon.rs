//! `ferry daemon`: runs each pair on its interval, holding the state file's lock for its
//! whole life (a `ferry run` beside it is refused), and probes providers that were down
//! with full-jitter backoff in between. Probes are informational: they never change a
//! breaker; the next run's health check decides. A run that could not sync a provider
//! is reported (`run:degraded`) and the daemon goes on.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_core::{CancelToken, Context, HealthStatus};
use tokio::time::Instant;

use crate::{Cli, Failure, app, load_config, report, take_lock};

/// Probe schedule of the seed: first after 5 s, then uniform(0, min(60, 5·2^n)) s.
fn next_probe_delay(failures: u32, rng: &mut fastrand::Rng) -> Duration {
    if failures == 0 {
        return Duration::from_secs(5);
    }
    let ceiling = (5.0 * 2f64.powi(failures.min(16) as i32)).min(60.0);
    Duration::from_secs_f64(rng.f64() * ceiling)
}

pub(crate) async fn run(
    cli: &Cli,
    max_runs: Option<u64>,
    default_interval: u64,
) -> Result<u8, Failure> {
    let cfg = load_config(cli)?;
    let base = app::run_config(&cfg, &app::RunFlags::default())?;
    let _lock = take_lock(&cfg, "daemon")?;
    let session = app::session(&cfg, app::open_state(&cfg.state_path)?, cli.json)?;
    let (providers, em, engine) = (&session.providers, &session.emitter, &session.engine);
    let cancel = crate::cancel_on_ctrl_c();
    let intervals: BTreeMap<String, Duration> = cfg
        .pairs
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                Duration::from_secs(60 * p.interval_minutes.unwrap_or(default_interval).max(1)),
            )
        })
        .collect();
    let mut due: BTreeMap<String, Instant> = intervals
        .keys()
        .map(|k| (k.clone(), Instant::now()))
        .collect();
    let mut probes: BTreeMap<String, (u32, Instant)> = BTreeMap::new();
    let mut rng = fastrand::Rng::new();
    let mut runs = 0u64;
    let mut worst = 0u8;
    em.emit(
        "daemon:start",
        serde_json::json!({"pairs": intervals.keys().collect::<Vec<_>>()}),
    );
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let now = Instant::now();
        let ready: Vec<String> = due
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        if !ready.is_empty() {
            let mut rc = base.clone();
            rc.pairs.retain(|p| ready.contains(&p.name));
            match engine.run(providers, &rc, cancel.clone()).await {
                Ok(summary) => {
                    let degraded = app::degraded_after_run(&cfg, &session, &summary);
                    worst = report::worse(worst, report::exit_code(&summary, &degraded));
                    em.emit_value("summary", &summary);
                    if !cli.json {
                        // The daemon's log is stderr; a skipped provider is a warning.
                        for line in crate::degraded::lines(&degraded) {
                            crate::report(&format!("warning:{line}"));
                        }
                        for line in report::summary_lines(&summary, &[]) {
                            tracing::info!("{line}");
                        }
                    }
                }
                Err(e) => {
                    worst = report::worse(worst, report::EXIT_ERRORS);
                    em.warn(&format!("run failed: {e}"));
                }
            }
            runs += 1;
            for name in &ready {
                due.insert(name.clone(), Instant::now() + intervals[name]);
            }
            // Providers that were down get probed until they answer.
            for (instance, ops) in providers {
                let h = ops
                    .health(&Context::new(em.clone(), CancelToken::new()))
                    .await;
                if h.status == HealthStatus::Down {
                    probes
                        .entry(instance.clone())
                        .or_insert((0, Instant::now() + next_probe_delay(0, &mut rng)));
                } else {
                    probes.remove(instance);
                }
            }
            if max_runs.is_some_and(|m| runs >= m) {
                break;
            }
        }
        let now = Instant::now();
        for (instance, (failures, at)) in probes.iter_mut() {
            if *at > now {
                continue;
            }
            let Some(ops) = providers.get(instance) else {
                continue;
            };
            let started = std::time::Instant::now();
            let h = tokio::time::timeout(
                Duration::from_secs(5),
                ops.health(&Context::new(em.clone(), CancelToken::new())),
            )
            .await;
            let ok = h.as_ref().is_ok_and(|h| h.status.is_usable());
            *failures = if ok { 0 } else { *failures + 1 };
            let delay = next_probe_delay(*failures, &mut rng);
            *at = Instant::now() + delay;
            em.emit(
                "health:probe",
                serde_json::json!({"instance": instance, "ok": ok, "ms": started.elapsed().as_millis() as u64, "next_in_ms": delay.as_millis() as u64}),
            );
        }
        let next = due
            .values()
            .chain(probes.values().map(|(_, t)| t))
            .min()
            .copied()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = cancel.cancelled() => break,
        }
    }
    em.emit("daemon:stop", serde_json::json!({"runs": runs}));
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_delays_follow_the_seed_schedule() {
        let mut rng = fastrand::Rng::with_seed(7);
        assert_eq!(next_probe_delay(0, &mut rng), Duration::from_secs(5));
        for (failures, cap) in [(1, 10.0), (2, 20.0), (3, 40.0), (4, 60.0), (9, 60.0)] {
            for _ in 0..200 {
                let d = next_probe_delay(failures, &mut rng).as_secs_f64();
                assert!((0.0..=cap).contains(&d), "{failures}: {d} > {cap}");
            }
        }
    }
}
