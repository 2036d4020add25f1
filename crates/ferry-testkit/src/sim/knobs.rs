//! Fault knobs and request accounting shared by the media-server simulators.
//!
//! A simulator keeps one [`Knobs`] per host inside its state mutex. Every request is
//! counted (per `METHOD /path` and per path) and then offered to the scheduled
//! [`FaultRule`]s; the first rule that fires decides the fault for that request.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use wiremock::{Request, ResponseTemplate};

/// What a fault does to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a short error body.
    Status(u16),
    /// `429 Too Many Requests` with `Retry-After: <secs>`.
    RateLimited { retry_after_secs: u64 },
    /// `401 Unauthorized`, as if the token had just expired.
    Unauthorized,
    /// A `200` whose body is cut off mid-JSON.
    Malformed,
    /// A list page that holds only the first half of its rows while the declared total
    /// (`totalSize`, `TotalRecordCount`) stays the same. Ignored by non-list endpoints.
    Truncate,
}

/// A scheduled fault: fires on requests whose path starts with `path_prefix` (every
/// path when `None`) and whose method matches (any when `None`), after letting `skip`
/// matching requests through, for `times` requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub fault: Fault,
    pub path_prefix: Option<String>,
    pub method: Option<String>,
    pub skip: u32,
    pub times: u32,
}

impl FaultRule {
    /// The fault once, on the next request to any path.
    pub fn new(fault: Fault) -> Self {
        FaultRule {
            fault,
            path_prefix: None,
            method: None,
            skip: 0,
            times: 1,
        }
    }

    /// Only requests whose path starts with `prefix`.
    pub fn on(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Only requests with this method (`GET`, `POST`, ...).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Fires for `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    /// Lets `n` matching requests through first.
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.path_prefix
            .as_deref()
            .is_none_or(|p| path.starts_with(p))
            && self.method.as_deref().is_none_or(|m| m == method)
    }
}

/// A counted request and the fault decided for it ([`Knobs::begin`]).
#[derive(Debug)]
pub struct Observed {
    pub method: String,
    pub path: String,
    pub fault: Option<Fault>,
    latency: Duration,
}

impl Observed {
    /// The fault's answer if it has one, else `route(method, path, truncate)`; delayed
    /// by the host's latency.
    pub fn answer(
        self,
        route: impl FnOnce(&str, &str, bool) -> ResponseTemplate,
    ) -> ResponseTemplate {
        let resp = match self.fault.as_ref().and_then(fault_response) {
            Some(r) => r,
            None => route(
                &self.method,
                &self.path,
                self.fault == Some(Fault::Truncate),
            ),
        };
        if self.latency.is_zero() {
            resp
        } else {
            resp.set_delay(self.latency)
        }
    }
}

/// Per-host request counts, latency and scheduled faults.
#[derive(Debug, Default)]
pub struct Knobs {
    rules: Vec<FaultRule>,
    latency: Duration,
    by_route: BTreeMap<String, u64>,
    total: u64,
}

impl Knobs {
    pub fn inject(&mut self, rule: FaultRule) {
        if rule.times > 0 {
            self.rules.push(rule);
        }
    }

    pub fn clear_faults(&mut self) {
        self.rules.clear();
    }

    pub fn set_latency(&mut self, d: Duration) {
        self.latency = d;
    }

    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// Counts `req` and decides its fault: the first half of answering a request. The
    /// second, [`Observed::answer`], runs the route unless the fault answers instead.
    pub fn begin(&mut self, req: &Request) -> Observed {
        let method = req.method.as_str().to_owned();
        let path = req.url.path().to_owned();
        let fault = self.observe(&method, &path);
        Observed {
            method,
            path,
            fault,
            latency: self.latency,
        }
    }

    /// Counts the request and returns the fault to apply to it, if any.
    pub fn observe(&mut self, method: &str, path: &str) -> Option<Fault> {
        self.total += 1;
        *self.by_route.entry(format!("{method} {path}")).or_default() += 1;
        let mut fired = None;
        for rule in self.rules.iter_mut().filter(|r| r.matches(method, path)) {
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            rule.times -= 1;
            fired = Some(rule.fault.clone());
            break;
        }
        self.rules.retain(|r| r.times > 0);
        fired
    }

    /// Requests to `path`, any method.
    pub fn requests(&self, path: &str) -> u64 {
        self.by_route
            .iter()
            .filter(|(k, _)| k.split_once(' ').is_some_and(|(_, p)| p == path))
            .map(|(_, n)| *n)
            .sum()
    }

    /// Requests to paths starting with `prefix`, any method.
    pub fn requests_under(&self, prefix: &str) -> u64 {
        self.by_route
            .iter()
            .filter(|(k, _)| {
                k.split_once(' ')
                    .is_some_and(|(_, p)| p.starts_with(prefix))
            })
            .map(|(_, n)| *n)
            .sum()
    }

    /// Requests with this method to `path`.
    pub fn requests_to(&self, method: &str, path: &str) -> u64 {
        self.by_route
            .get(&format!("{} {path}", method.to_ascii_uppercase()))
            .copied()
            .unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Every `METHOD /path` seen, with its count.
    pub fn routes(&self) -> BTreeMap<String, u64> {
        self.by_route.clone()
    }

    pub fn reset_counts(&mut self) {
        self.by_route.clear();
        self.total = 0;
    }
}

/// The response for a fault that replaces the whole answer; `None` for faults that shape
/// a normal answer (`Truncate`).
pub(crate) fn fault_response(fault: &Fault) -> Option<ResponseTemplate> {
    match fault {
        Fault::Status(code) => Some(
            ResponseTemplate::new(*code)
                .set_body_json(json!({"error": format!("simulated HTTP {code}")})),
        ),
        Fault::RateLimited { retry_after_secs } => Some(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", retry_after_secs.to_string().as_str())
                .set_body_json(json!({"error": "Too Many Requests"})),
        ),
        Fault::Unauthorized => Some(ResponseTemplate::new(401).set_body_string("Unauthorized")),
        Fault::Malformed => Some(ResponseTemplate::new(200).set_body_raw(
            &b"{\"MediaContainer\":{\"size\":3,\"Metadata\":[{\"ratingKey\":"[..],
            "application/json",
        )),
        Fault::Truncate => None,
    }
}

/// `X-Plex-Container-Start`/`Size` or `StartIndex`/`Limit` applied to `n` rows: the
/// window `[start, end)` and whether it was truncated to half.
pub(crate) fn window(
    n: usize,
    start: usize,
    size: Option<usize>,
    truncate: bool,
) -> (usize, usize) {
    let start = start.min(n);
    let mut end = size.map_or(n, |s| start.saturating_add(s).min(n));
    if truncate && end > start {
        end = start + (end - start) / 2;
    }
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_skip_then_fire_then_expire() {
        let mut k = Knobs::default();
        k.inject(
            FaultRule::new(Fault::Status(503))
                .on("/a")
                .after(1)
                .times(2),
        );
        assert_eq!(k.observe("GET", "/b"), None);
        assert_eq!(k.observe("GET", "/a/1"), None, "skipped");
        assert_eq!(k.observe("GET", "/a/2"), Some(Fault::Status(503)));
        assert_eq!(k.observe("POST", "/a/3"), Some(Fault::Status(503)));
        assert_eq!(k.observe("GET", "/a/4"), None, "expired");
        assert_eq!(k.requests("/a/2"), 1);
        assert_eq!(k.requests_under("/a"), 4);
        assert_eq!(k.total(), 5);
    }

    #[test]
    fn windows_clamp_and_truncate() {
        assert_eq!(window(10, 0, Some(4), false), (0, 4));
        assert_eq!(window(10, 8, Some(4), false), (8, 10));
        assert_eq!(window(10, 12, Some(4), false), (10, 10));
        assert_eq!(window(10, 0, Some(4), true), (0, 2));
        assert_eq!(window(10, 0, None, false), (0, 10));
    }
}
