//! What a person (or a script) sees while ferry runs.
//!
//! `--json`: every structured event as one JSON object per line on stdout, and nothing
//! else on stdout. Otherwise: quiet by default — progress bars on a terminal, the
//! guardrail and skip warnings as plain lines, then the closing summary.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use ferry_core::{Event, EventSink};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Prints events as NDJSON on stdout.
#[derive(Debug, Default)]
pub(crate) struct JsonLines {
    lock: Mutex<()>,
}

impl EventSink for JsonLines {
    fn event(&self, event: &Event) {
        let _g = self.lock.lock();
        let mut out = std::io::stdout().lock();
        // A closed pipe (`ferry --json run | head`) must not abort the run.
        let _ = writeln!(out, "{}", event.to_json_line());
    }
}

/// Progress bars on a terminal, plain warning lines everywhere.
pub(crate) struct Human {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl std::fmt::Debug for Human {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Human")
            .field("bars", &self.multi.is_some())
            .finish()
    }
}

impl Human {
    pub(crate) fn new() -> Self {
        let tty = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let multi = tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Human {
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, msg: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{msg}");
            }
        }
    }

    fn bar(&self, key: String, total: u64, label: String) {
        let Some(m) = &self.multi else { return };
        let bar = m.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label);
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(key, bar);
        }
    }

    fn advance(&self, key: &str, done: u64, total: Option<u64>) {
        if let Ok(bars) = self.bars.lock()
            && let Some(b) = bars.get(key)
        {
            if let Some(t) = total {
                b.set_length(t);
            }
            b.set_position(done);
        }
    }

    fn finish(&self, key: &str) {
        if let Ok(mut bars) = self.bars.lock()
            && let Some(b) = bars.remove(key)
        {
            b.finish_and_clear();
        }
    }
}

fn s<'a>(e: &'a Event, k: &str) -> &'a str {
    e.str(k).unwrap_or("?")
}

fn n(e: &Event, k: &str) -> u64 {
    e.u64(k).unwrap_or(0)
}

impl EventSink for Human {
    fn event(&self, e: &Event) {
        let name = e.name.as_str();
        if let Some(op) = name
            .strip_prefix("apply:")
            .and_then(|r| r.strip_suffix(":start"))
        {
            let key = format!("{op}|{}|{}", s(e, "dst"), s(e, "feature"));
            let label = format!("{op} {} {}", s(e, "feature"), s(e, "dst"));
            self.bar(key, n(e, "count"), label);
            return;
        }
        if let Some(op) = name
            .strip_prefix("apply:")
            .and_then(|r| r.strip_suffix(":progress"))
        {
            let key = format!("{op}|{}|{}", s(e, "dst"), s(e, "feature"));
            self.advance(&key, n(e, "done"), e.u64("total"));
            return;
        }
        if let Some(op) = name
            .strip_prefix("apply:")
            .and_then(|r| r.strip_suffix(":done"))
        {
            self.finish(&format!("{op}|{}|{}", s(e, "dst"), s(e, "feature")));
            return;
        }
        if name == "snapshot:progress" {
            let key = format!("read|{}|{}", s(e, "provider"), s(e, "feature"));
            if !self
                .bars
                .lock()
                .map(|b| b.contains_key(&key))
                .unwrap_or(true)
            {
                self.bar(
                    key.clone(),
                    n(e, "total"),
                    format!("read {} {}", s(e, "feature"), s(e, "provider")),
                );
            }
            self.advance(&key, n(e, "done"), e.u64("total"));
            if e.get("final").and_then(|v| v.as_bool()) == Some(true) {
                self.finish(&key);
            }
            return;
        }
        let msg = match name {
            "pair:skip" => Some(format!(
                "skip pair {}: {}",
                e.str("pair").unwrap_or(s(e, "src")),
                s(e, "reason")
            )),
            "writes:skipped" => Some(format!(
                "writes to {} {} skipped ({}): {} item(s) kept for the next run",
                s(e, "dst"),
                s(e, "feature"),
                s(e, "reason"),
                n(e, "count")
            )),
            "snapshot:suspect" => Some(format!(
                "{} {}: the read looks wrong ({}) — {} items now vs {} before; nothing on it is treated as deleted",
                s(e, "provider"),
                s(e, "feature"),
                s(e, "reason"),
                n(e, "cur_count"),
                n(e, "prev_count")
            )),
            "mass_delete:blocked" => Some(format!(
                "{} {}: {} removals blocked (limit {} of {}); check them with `ferry plan`, then rerun with --allow-mass-delete if they are intended",
                s(e, "dst"),
                s(e, "feature"),
                n(e, "attempted"),
                n(e, "threshold"),
                n(e, "baseline")
            )),
            "feature:error" => Some(format!(
                "{} {}: error: {}",
                e.str("pair").unwrap_or(""),
                s(e, "feature"),
                s(e, "error")
            )),
            _ => None,
        };
        if let Some(m) = msg {
            self.line(&format!("warning: {m}"));
        }
    }
}
