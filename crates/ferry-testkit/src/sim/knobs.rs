//! Fault knobs and request accounting shared by the simulators, written once.
//!
//! A simulator keeps one [`Knobs`] per host inside its state mutex. Every request is
//! counted (per `METHOD /path` and per path) and then offered to the scheduled
//! [`FaultRule`]s; the first rule that fires decides the fault for that request.
//!
//! Two kinds of fault: those that replace the whole answer (a status, a 429 with
//! `Retry-After`, an expired token, a cut-off, empty or HTML body) are answered here;
//! those that damage a list page (truncated, empty, an undecodable row, a missing or
//! invalid total) reach the simulator's list route as a [`ListFault`], which shapes the
//! page's rows and its declared total the same way for every simulator; each simulator
//! only renders the total in its own wire format (a JSON field, a header).
//!
//! [`FaultControl`] is how the contract suite reaches a simulator's knobs.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use ferry_core::Feature;
use serde_json::{Value, json};
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
    /// A `200` with an empty body.
    EmptyBody,
    /// A `200` with an HTML page (a proxy's login or error page).
    Html,
    /// A list page with no rows while the declared total stays the same.
    EmptyList,
    /// A list page with one row (the middle one) damaged.
    UndecodableRow(RowDamage),
    /// A list page without its declared total (field or header left out).
    MissingTotal,
    /// A list page whose declared total is not a count.
    InvalidTotal(BadTotal),
    /// The request is applied at once and its answer sent this much later: a client that
    /// gives up sooner has written without knowing it (a read meanwhile shows the write).
    LatencyAfterApply(Duration),
    /// The service stalls this long before it applies the request and answers (every
    /// other request to it waits too): a client that gives up sooner finds the write
    /// applied once the stall ends, and a retry sent meanwhile lands after it.
    LatencyBeforeApply(Duration),
}

/// How a row is damaged ([`Fault::UndecodableRow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowDamage {
    /// The row is `null`.
    Null,
    /// The value at a JSON pointer (`/Id`, `/UserData/Played`) is replaced.
    Set { pointer: String, value: Value },
}

/// A declared total that is not a count ([`Fault::InvalidTotal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadTotal {
    Null,
    /// The count as a string (`"64"`).
    Text,
    Negative,
}

impl BadTotal {
    pub const ALL: [BadTotal; 3] = [BadTotal::Null, BadTotal::Text, BadTotal::Negative];
}

/// A list page's declared total as the simulator must send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TotalOut {
    Exact(usize),
    Missing,
    Bad(Value),
}

impl TotalOut {
    /// As a JSON field (`None`: leave the field out).
    pub fn json(&self) -> Option<Value> {
        match self {
            TotalOut::Exact(n) => Some(json!(n)),
            TotalOut::Missing => None,
            TotalOut::Bad(v) => Some(v.clone()),
        }
    }

    /// As a header value (`None`: leave the header out).
    pub fn header(&self) -> Option<String> {
        match self {
            TotalOut::Exact(n) => Some(n.to_string()),
            TotalOut::Missing => None,
            TotalOut::Bad(Value::String(s)) => Some(format!("{s}x")),
            TotalOut::Bad(Value::Null) => Some(String::new()),
            TotalOut::Bad(v) => Some(v.to_string()),
        }
    }
}

/// The list fault of one request, handed to the simulator's list route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFault(Option<Fault>);

impl ListFault {
    pub fn none() -> Self {
        ListFault(None)
    }

    /// Whether the page keeps only half its rows ([`window`] applies it).
    pub fn truncates(&self) -> bool {
        self.0 == Some(Fault::Truncate)
    }

    /// Shapes a page: its rows (already windowed) and the list's real total, as the
    /// fault wants them sent.
    pub fn shape(&self, mut rows: Vec<Value>, total: usize) -> (Vec<Value>, TotalOut) {
        let mut out = TotalOut::Exact(total);
        match &self.0 {
            Some(Fault::EmptyList) => rows.clear(),
            Some(Fault::UndecodableRow(damage)) if !rows.is_empty() => {
                let mid = rows.len() / 2;
                match damage {
                    RowDamage::Null => rows[mid] = Value::Null,
                    RowDamage::Set { pointer, value } => {
                        if let Some(v) = rows[mid].pointer_mut(pointer) {
                            *v = value.clone();
                        } else if let Some((parent, key)) = pointer.rsplit_once('/')
                            && let Some(Value::Object(m)) = rows[mid].pointer_mut(parent)
                        {
                            m.insert(key.to_owned(), value.clone());
                        }
                    }
                }
            }
            Some(Fault::MissingTotal) => out = TotalOut::Missing,
            Some(Fault::InvalidTotal(bad)) => {
                out = TotalOut::Bad(match bad {
                    BadTotal::Null => Value::Null,
                    BadTotal::Text => json!(total.to_string()),
                    BadTotal::Negative => json!(-1),
                })
            }
            _ => {}
        }
        (rows, out)
    }
}

/// How the contract suite reaches a simulator's fault knobs (see
/// `ferry_testkit::contract::Subject::with_faults`).
pub trait FaultControl: Send + Sync + fmt::Debug {
    fn inject(&self, rule: FaultRule);
    fn clear_faults(&self);
    /// How many requests a fault has fired on so far.
    fn faults_fired(&self) -> u64;
    /// The path prefix of the list requests a read of `feature` pages through; `None`
    /// when the read has no paged list to attack.
    fn list_path(&self, feature: Feature) -> Option<String>;
    /// The time between the last `429` answered and the request after it.
    fn rate_limit_gap(&self) -> Option<Duration>;
    /// How the read of `feature` reaches its rows, which decides the faults a reader can
    /// be asked to see (the default: pages with a declared count).
    fn shape(&self, _feature: Feature) -> ListShape {
        ListShape::Paged
    }
}

/// How a read's list comes over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListShape {
    /// Pages with a declared total or page count: every page fault applies.
    Paged,
    /// Whole documents with no declared count, one per request and several per read (a
    /// catalog each, as SIMKL's lists). A cut, emptied or failing second document, bad
    /// bodies and undecodable rows apply; a missing total does not, there is none. An
    /// emptied document is only visible against the service's own change stamps, so the
    /// suite reads the list whole once before it attacks (see `ferry_core::Tally`).
    Documents,
    /// One whole document per read with no declared count: only bad bodies and
    /// undecodable rows apply.
    Document,
}

/// A scheduled fault: fires on requests whose path starts with `path_prefix` (every
/// path when `None`) and whose method matches (any when `None`), after letting `skip`
/// matching requests through, for `times` requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub fault: Fault,
    pub path_prefix: Option<String>,
    pub method: Option<String>,
    /// Only writes (any method but `GET` and `HEAD`).
    pub writes_only: bool,
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
            writes_only: false,
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

    /// Only writes (any method but `GET` and `HEAD`).
    pub fn writes(mut self) -> Self {
        self.writes_only = true;
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
            && (!self.writes_only || !matches!(method, "GET" | "HEAD"))
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
    /// by the host's latency. For simulators whose list routes know only truncation.
    pub fn answer(
        self,
        route: impl FnOnce(&str, &str, bool) -> ResponseTemplate,
    ) -> ResponseTemplate {
        self.answer_list(|m, p, f| route(m, p, f.truncates()))
    }

    /// The fault's answer if it has one, else `route(method, path, list_fault)`, the
    /// list route shaping its page with [`ListFault::shape`]; delayed by the host's
    /// latency.
    pub fn answer_list(
        self,
        route: impl FnOnce(&str, &str, &ListFault) -> ResponseTemplate,
    ) -> ResponseTemplate {
        let mut delay = self.latency;
        match &self.fault {
            // The server runs on its own thread: sleeping here stalls the whole service
            // (with this request not yet applied), as a hung backend would.
            Some(Fault::LatencyBeforeApply(d)) => std::thread::sleep(*d),
            Some(Fault::LatencyAfterApply(d)) => delay += *d,
            _ => {}
        }
        let resp = match self.fault.as_ref().and_then(fault_response) {
            Some(r) => r,
            None => route(&self.method, &self.path, &ListFault(self.fault.clone())),
        };
        if delay.is_zero() {
            resp
        } else {
            resp.set_delay(delay)
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
    fired: u64,
    limited_at: Option<Instant>,
    limit_gap: Option<Duration>,
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
        if let Some(at) = self.limited_at.take() {
            self.limit_gap = Some(at.elapsed());
        }
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
        if let Some(f) = &fired {
            self.fired += 1;
            if matches!(f, Fault::RateLimited { .. }) {
                self.limited_at = Some(Instant::now());
            }
        }
        fired
    }

    /// How many requests a fault fired on.
    pub fn fired(&self) -> u64 {
        self.fired
    }

    /// The time between the last `429` and the request after it.
    pub fn rate_limit_gap(&self) -> Option<Duration> {
        self.limit_gap
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
        Fault::EmptyBody => Some(ResponseTemplate::new(200).set_body_raw(&b""[..], "application/json")),
        Fault::Html => Some(ResponseTemplate::new(200).set_body_raw(
            &b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>proxy</body></html>"[..],
            "text/html",
        )),
        Fault::Truncate
        | Fault::EmptyList
        | Fault::UndecodableRow(_)
        | Fault::MissingTotal
        | Fault::InvalidTotal(_)
        | Fault::LatencyAfterApply(_)
        | Fault::LatencyBeforeApply(_) => None,
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
    fn list_faults_shape_rows_and_totals_and_writes_only_rules_skip_reads() {
        let rows = || vec![json!({"Id": "a"}), json!({"Id": "b"}), json!({"Id": "c"})];
        let (r, t) = ListFault::none().shape(rows(), 9);
        assert_eq!((r.len(), t), (3, TotalOut::Exact(9)));
        let (r, _) = ListFault(Some(Fault::UndecodableRow(RowDamage::Null))).shape(rows(), 9);
        assert_eq!(r[1], Value::Null);
        let set = RowDamage::Set {
            pointer: "/UserData/Played".into(),
            value: json!("yes"),
        };
        let (r, _) = ListFault(Some(Fault::UndecodableRow(set)))
            .shape(vec![json!({"Id": "a", "UserData": {"Played": true}})], 1);
        assert_eq!(r[0]["UserData"]["Played"], json!("yes"));
        let (r, t) = ListFault(Some(Fault::EmptyList)).shape(rows(), 9);
        assert!(r.is_empty() && t == TotalOut::Exact(9));
        let (_, t) = ListFault(Some(Fault::MissingTotal)).shape(rows(), 9);
        assert_eq!((t.json(), t.header()), (None, None));
        let (_, t) = ListFault(Some(Fault::InvalidTotal(BadTotal::Text))).shape(rows(), 9);
        assert_eq!(t.json(), Some(json!("9")));
        let mut k = Knobs::default();
        k.inject(FaultRule::new(Fault::Malformed).writes());
        assert_eq!(k.observe("GET", "/x"), None);
        assert_eq!(k.observe("POST", "/x"), Some(Fault::Malformed));
        assert_eq!(k.fired(), 1);
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
