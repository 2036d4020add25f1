//! Structured events and human log lines (the catalogue is `docs/events.md`).
//!
//! Two channels: structured events go to every [`EventSink`] as one JSON object
//! `{"event": name, ...fields}`; human lines go through `tracing`. Events are how a UI (or
//! a user reading `--json`) learns *why* ferry did or did not do something.

use std::fmt;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Map, Value};

/// The version of the event catalogue documented in `docs/events.md`. Bumped when a field
/// changes meaning or disappears; adding events or fields does not bump it.
pub const EVENT_SCHEMA_VERSION: u32 = 2;

/// One structured event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub fields: Map<String, Value>,
}

impl Event {
    pub fn new(name: impl Into<String>, fields: Value) -> Self {
        let fields = match fields {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => {
                let mut m = Map::new();
                m.insert("value".into(), other);
                m
            }
        };
        Event {
            name: name.into(),
            fields,
        }
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    pub fn str(&self, field: &str) -> Option<&str> {
        self.get(field).and_then(Value::as_str)
    }

    pub fn u64(&self, field: &str) -> Option<u64> {
        self.get(field).and_then(Value::as_u64)
    }

    /// The event as one JSON object with `event` first.
    pub fn to_json(&self) -> Value {
        let mut m = Map::with_capacity(self.fields.len() + 1);
        m.insert("event".into(), Value::String(self.name.clone()));
        for (k, v) in &self.fields {
            if k != "event" {
                m.insert(k.clone(), v.clone());
            }
        }
        Value::Object(m)
    }

    pub fn to_json_line(&self) -> String {
        self.to_json().to_string()
    }
}

/// Receives every structured event of a run.
pub trait EventSink: Send + Sync {
    fn event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> EventSink for F {
    fn event(&self, event: &Event) {
        self(event)
    }
}

/// Collects events in memory, for tests and for summaries.
#[derive(Debug, Default)]
pub struct CollectingSink {
    events: Mutex<Vec<Event>>,
}

impl CollectingSink {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    pub fn named(&self, name: &str) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.name == name)
            .collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.events().into_iter().map(|e| e.name).collect()
    }

    pub fn clear(&self) {
        if let Ok(mut e) = self.events.lock() {
            e.clear();
        }
    }

    /// Every event as JSON lines, for secret scans and debugging.
    pub fn dump(&self) -> String {
        self.events()
            .iter()
            .map(Event::to_json_line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl EventSink for CollectingSink {
    fn event(&self, event: &Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event.clone());
        }
    }
}

struct Inner {
    sinks: Vec<Arc<dyn EventSink>>,
    debug: bool,
    redactions: Vec<String>,
}

/// The per-run event emitter, cheap to clone and passed to providers in their
/// [`crate::Context`].
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Inner>,
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("sinks", &self.inner.sinks.len())
            .field("debug", &self.inner.debug)
            .field("redactions", &self.inner.redactions.len())
            .finish()
    }
}

impl Default for Emitter {
    fn default() -> Self {
        Emitter::silent()
    }
}

impl Emitter {
    /// An emitter that drops structured events (human lines still go to tracing).
    pub fn silent() -> Self {
        Emitter::builder().build()
    }

    pub fn builder() -> EmitterBuilder {
        EmitterBuilder {
            sinks: Vec::new(),
            debug: false,
            redactions: Vec::new(),
        }
    }

    /// An emitter writing to one sink.
    pub fn to_sink(sink: Arc<dyn EventSink>) -> Self {
        Emitter::builder().sink(sink).build()
    }

    pub fn debug_enabled(&self) -> bool {
        self.inner.debug
    }

    /// Emits a structured event. `fields` is normally a `serde_json::json!({..})` object.
    pub fn emit(&self, name: &str, fields: Value) {
        if self.inner.sinks.is_empty() {
            return;
        }
        let mut event = Event::new(name, fields);
        if !self.inner.redactions.is_empty() {
            redact(&mut event.fields, &self.inner.redactions);
        }
        for s in &self.inner.sinks {
            s.event(&event);
        }
    }

    /// Emits any serializable value as an event's fields.
    pub fn emit_value<T: Serialize>(&self, name: &str, fields: &T) {
        match serde_json::to_value(fields) {
            Ok(v) => self.emit(name, v),
            Err(e) => tracing::warn!("event {name} could not be serialized: {e}"),
        }
    }

    /// A debug event (`{"event":"dbg","msg":msg,...}`), only when debug is on.
    pub fn dbg(&self, msg: &str, fields: Value) {
        if !self.inner.debug {
            return;
        }
        let mut fields = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        fields.insert("msg".into(), Value::String(msg.to_owned()));
        self.emit("dbg", Value::Object(fields));
    }

    pub fn info(&self, msg: &str) {
        tracing::info!("{}", self.scrub(msg));
    }

    pub fn warn(&self, msg: &str) {
        tracing::warn!("{}", self.scrub(msg));
    }

    pub fn err(&self, msg: &str) {
        tracing::error!("{}", self.scrub(msg));
    }

    fn scrub(&self, msg: &str) -> String {
        let r: Vec<&str> = self.inner.redactions.iter().map(String::as_str).collect();
        crate::secret::scrub(msg, &r)
    }

    /// A new emitter with the same sinks and settings that also scrubs `secrets`.
    pub fn with_redactions<I, S>(&self, secrets: I) -> Emitter
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut redactions = self.inner.redactions.clone();
        redactions.extend(
            secrets
                .into_iter()
                .map(Into::into)
                .filter(|s: &String| s.len() >= 4),
        );
        Emitter {
            inner: Arc::new(Inner {
                sinks: self.inner.sinks.clone(),
                debug: self.inner.debug,
                redactions,
            }),
        }
    }
}

fn redact(fields: &mut Map<String, Value>, secrets: &[String]) {
    fn walk(v: &mut Value, secrets: &[&str]) {
        match v {
            Value::String(s) if secrets.iter().any(|x| s.contains(x)) => {
                *s = crate::secret::scrub(s, secrets);
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, secrets)),
            Value::Object(m) => m.values_mut().for_each(|x| walk(x, secrets)),
            _ => {}
        }
    }
    let s: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for v in fields.values_mut() {
        walk(v, &s);
    }
}

/// Builds an [`Emitter`].
#[derive(Default)]
pub struct EmitterBuilder {
    sinks: Vec<Arc<dyn EventSink>>,
    debug: bool,
    redactions: Vec<String>,
}

impl fmt::Debug for EmitterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmitterBuilder")
            .field("sinks", &self.sinks.len())
            .field("debug", &self.debug)
            .finish()
    }
}

impl EmitterBuilder {
    pub fn sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    pub fn debug(mut self, on: bool) -> Self {
        self.debug = on;
        self
    }

    pub fn redact(mut self, secret: impl Into<String>) -> Self {
        let s = secret.into();
        if s.len() >= 4 {
            self.redactions.push(s);
        }
        self
    }

    pub fn build(self) -> Emitter {
        Emitter {
            inner: Arc::new(Inner {
                sinks: self.sinks,
                debug: self.debug,
                redactions: self.redactions,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_json_objects_with_event_first() {
        let sink = CollectingSink::new();
        let em = Emitter::to_sink(sink.clone());
        em.emit("run:start", json!({"dry_run": false}));
        assert_eq!(sink.dump(), r#"{"event":"run:start","dry_run":false}"#);
    }

    #[test]
    fn dbg_only_when_debug_is_on() {
        let sink = CollectingSink::new();
        Emitter::to_sink(sink.clone()).dbg("alias.match", json!({"n": 1}));
        assert!(sink.events().is_empty());
        Emitter::builder()
            .sink(sink.clone())
            .debug(true)
            .build()
            .dbg("alias.match", json!({"n": 1}));
        assert_eq!(sink.named("dbg")[0].str("msg"), Some("alias.match"));
    }

    #[test]
    fn redactions_scrub_nested_fields() {
        let sink = CollectingSink::new();
        let em = Emitter::to_sink(sink.clone()).with_redactions(["s3cr3t-token"]);
        em.emit(
            "api:hit",
            json!({"op": "GET /x", "detail": {"url": ["http://h/?t=s3cr3t-token"]}}),
        );
        let d = sink.dump();
        assert!(
            !d.contains("s3cr3t-token") && d.contains("[redacted]"),
            "{d}"
        );
    }
}
