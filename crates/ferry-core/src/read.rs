//! Completeness by construction: the only way a provider's read becomes a `Complete`
//! [`Snapshot`].
//!
//! A read is a stream of raw rows (one JSON value each). Every row goes through the
//! provider's decoder one at a time and is *accounted for*: kept, skipped as irrelevant
//! (a folder row), or undecodable. A [`Reader`] (or the [`crate::page::Pager`], which
//! drives one) finishes with a [`Proof`]: complete only when every page was fetched, the
//! list's end was proved (a valid declared total matched by the rows accounted for, or
//! the protocol's explicit end of list), and every row decoded. Anything else is partial,
//! with the reasons, and the decodable rows are kept.
//!
//! ```text
//! raw rows ──decode──▶ Row::Keep(T) | Row::Skip | Row::Bad(why)
//!                      └──────────── Reader ───────────▶ Read<T> { rows, Proof }
//! Proof + entries ──▶ Snapshot::from_read(feature, &proof, entries)
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::event::Emitter;
use crate::feature::Feature;
use crate::item::Entry;
use crate::snapshot::Snapshot;

/// The reason prefix of a read that met a row it could not decode.
pub const UNDECODABLE_ROW: &str = "undecodable_row";

/// Characters of a row kept as a sample for the event and the reason.
pub const SAMPLE_CHARS: usize = 160;

/// What the decoder made of one raw row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row<T> {
    /// A row of the list, decoded.
    Keep(T),
    /// A well-formed row this read does not hold (a folder, a trailer): accounted for,
    /// not kept.
    Skip,
    /// A row that does not decode: why (the field and the error).
    Bad(String),
}

impl<T> Row<T> {
    /// `Keep` on success, `Bad` with the error's text otherwise.
    pub fn from_result<E: std::fmt::Display>(r: Result<T, E>) -> Self {
        match r {
            Ok(t) => Row::Keep(t),
            Err(e) => Row::Bad(e.to_string()),
        }
    }
}

/// Decodes one raw row into a typed wire struct; the error names the field (`UserData.
/// Played: invalid type: string "yes", expected a boolean`).
pub fn decode<W: DeserializeOwned>(raw: &Value) -> Result<W, String> {
    serde_path_to_error::deserialize::<_, W>(raw).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// A raw row as a short sample: at most [`SAMPLE_CHARS`] characters of its JSON, with
/// anything that looks like a credential redacted (a value under a key naming a token, a
/// key, a secret or a password; a `token=` in a URL), since samples travel in events.
pub fn sample_of(raw: &Value) -> String {
    let text = redacted(raw).to_string();
    match text.char_indices().nth(SAMPLE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    ["token", "secret", "password", "apikey", "api_key", "auth"]
        .iter()
        .any(|w| k.contains(w))
}

fn redacted(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if secret_key(k) && !v.is_null() {
                        Value::String("[redacted]".into())
                    } else {
                        redacted(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redacted).collect()),
        Value::String(s) => Value::String(redact_query_tokens(s)),
        other => other.clone(),
    }
}

/// `…?X-Plex-Token=abc&y=1` → `…?X-Plex-Token=[redacted]&y=1`.
fn redact_query_tokens(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let (name, after) = rest.split_at(eq);
        out.push_str(name);
        out.push('=');
        let after = &after[1..];
        let end = after.find(['&', ' ', '"']).unwrap_or(after.len());
        let key = name.rsplit(['?', '&', ' ']).next().unwrap_or(name);
        if secret_key(key) {
            out.push_str("[redacted]");
        } else {
            out.push_str(&after[..end]);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// What a page declared about the list's size (a total, a page count, an item count),
/// as read off the wire: only `Valid` counts toward a proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declared {
    Valid(u64),
    /// Not sent (or `null`).
    Missing,
    /// Sent but not a non-negative integer: the raw text, shortened.
    Invalid(String),
}

impl Declared {
    /// A JSON field: a non-negative integer is valid; absent or `null` is missing;
    /// anything else (a string, a negative or fractional number) is invalid.
    pub fn from_json(v: Option<&Value>) -> Declared {
        match v {
            None | Some(Value::Null) => Declared::Missing,
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                Declared::Valid(n.as_u64().unwrap_or_default())
            }
            Some(other) => Declared::Invalid(sample_of(other)),
        }
    }

    /// A header's text: digits only (surrounding spaces allowed) is valid.
    pub fn from_text(s: Option<&str>) -> Declared {
        match s.map(str::trim) {
            None => Declared::Missing,
            Some(t) => match t.parse::<u64>() {
                Ok(n) if t.bytes().all(|b| b.is_ascii_digit()) => Declared::Valid(n),
                _ => Declared::Invalid(t.chars().take(40).collect()),
            },
        }
    }

    pub fn valid(&self) -> Option<u64> {
        match self {
            Declared::Valid(n) => Some(*n),
            _ => None,
        }
    }

    /// Why this value cannot prove anything (`None` when valid).
    pub(crate) fn fault(&self, name: &str) -> Option<String> {
        match self {
            Declared::Valid(_) => None,
            Declared::Missing => Some(format!("{name} missing")),
            Declared::Invalid(raw) => Some(format!("{name} invalid ({raw})")),
        }
    }
}

/// Rows of one list that did not decode: the read kept the others and is `Partial`.
#[derive(Debug, Serialize)]
pub struct UndecodableRows<'a> {
    /// `<instance>/<list>` or the route the rows came from.
    pub list: &'a str,
    pub rows: u64,
    /// The first row that did not decode, cut short.
    pub sample: Option<&'a str>,
}

impl UndecodableRows<'_> {
    pub const NAME: &'static str = "read:undecodable_row";
}

/// How a finished read stands: complete, or partial with its reasons. Only a reader
/// makes one; a provider may downgrade it ([`Proof::mark_partial`]) and reuse it for
/// several snapshots derived from the same read (one library, several features).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    reasons: Vec<String>,
    undecodable: u64,
    sample: Option<String>,
}

impl Proof {
    fn new(reasons: Vec<String>, undecodable: u64, sample: Option<String>) -> Self {
        Proof {
            reasons,
            undecodable,
            sample,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.reasons.is_empty()
    }

    /// Why the read is partial, `None` when complete.
    pub fn reason(&self) -> Option<String> {
        (!self.reasons.is_empty()).then(|| self.reasons.join("; "))
    }

    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    /// Rows that did not decode, and a sample of the first.
    pub fn undecodable(&self) -> (u64, Option<&str>) {
        (self.undecodable, self.sample.as_deref())
    }

    /// Emits [`UndecodableRows`] for `list` when rows did not decode, so the user sees
    /// which list lost rows and one of them.
    pub fn report_undecodable(&self, emitter: &Emitter, list: &str) {
        if self.undecodable > 0 {
            let event = UndecodableRows {
                list,
                rows: self.undecodable,
                sample: self.sample.as_deref(),
            };
            emitter.emit_value(UndecodableRows::NAME, &event);
        }
    }

    /// Another reason the read is partial (found by the provider after reading).
    pub fn mark_partial(&mut self, why: impl Into<String>) {
        self.reasons.push(why.into());
    }

    /// Combines two reads that make one snapshot (a library and its playlists): complete
    /// only when both are.
    pub fn and(mut self, other: &Proof) -> Proof {
        self.reasons.extend(other.reasons.iter().cloned());
        self.undecodable += other.undecodable;
        if self.sample.is_none() {
            self.sample = other.sample.clone();
        }
        self
    }

    /// A snapshot of `feature` holding `entries`, as complete as this read.
    pub fn snapshot(&self, feature: Feature, entries: impl IntoIterator<Item = Entry>) -> Snapshot {
        Snapshot::from_read(feature, self, entries)
    }
}

/// A finished read: the rows kept, in order, and how complete the read is.
#[derive(Debug, Clone)]
pub struct Read<T> {
    pub rows: Vec<T>,
    proof: Proof,
}

impl<T> Read<T> {
    pub fn proof(&self) -> &Proof {
        &self.proof
    }

    pub fn is_complete(&self) -> bool {
        self.proof.is_complete()
    }

    pub fn mark_partial(&mut self, why: impl Into<String>) {
        self.proof.mark_partial(why);
    }

    pub fn into_parts(self) -> (Vec<T>, Proof) {
        (self.rows, self.proof)
    }

    /// Maps the rows, keeping the proof.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Read<U> {
        Read {
            rows: self.rows.into_iter().map(f).collect(),
            proof: self.proof,
        }
    }
}

/// Accounts for the rows of one read. The [`crate::page::Pager`] drives one per paged
/// read; a provider drives one itself only for a single document read whole (a local
/// file, an unpaged JSON array), finishing with [`Reader::finish_whole`].
#[derive(Debug)]
pub struct Reader<T> {
    what: String,
    rows: Vec<T>,
    accounted: u64,
    undecodable: u64,
    sample: Option<String>,
    partial: Vec<String>,
}

impl<T> Reader<T> {
    /// `what` names the list in reasons ("library", "watchlist").
    pub fn new(what: impl Into<String>) -> Self {
        Reader {
            what: what.into(),
            rows: Vec::new(),
            accounted: 0,
            undecodable: 0,
            sample: None,
            partial: Vec::new(),
        }
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    /// Rows seen so far: kept, skipped or undecodable.
    pub fn accounted(&self) -> u64 {
        self.accounted
    }

    /// Takes one raw row through the decoder.
    pub fn row(&mut self, raw: Value, decode: &mut impl FnMut(Value) -> Row<T>) {
        self.accounted += 1;
        let sample = self.sample.is_none().then(|| sample_of(&raw));
        match decode(raw) {
            Row::Keep(t) => self.rows.push(t),
            Row::Skip => {}
            Row::Bad(why) => {
                self.undecodable += 1;
                if let Some(s) = sample {
                    self.sample = Some(format!("{s} ({why})"));
                }
            }
        }
    }

    /// Takes a row that is already typed (a document deserialized whole, an in-memory
    /// inventory): accounted for and kept.
    pub fn keep(&mut self, row: T) {
        self.accounted += 1;
        self.rows.push(row);
    }

    /// Takes a page's raw rows through the decoder, one at a time.
    pub fn rows(&mut self, raws: Vec<Value>, decode: &mut impl FnMut(Value) -> Row<T>) {
        for raw in raws {
            self.row(raw, decode);
        }
    }

    /// A reason the read is partial (a failed later page, an inconsistent total).
    pub fn mark_partial(&mut self, why: impl Into<String>) {
        self.partial.push(why.into());
    }

    /// Finishes a single document read whole: the document is the whole list, so its
    /// end is proved; the read is complete when every row decoded.
    pub fn finish_whole(self) -> Read<T> {
        self.finish()
    }

    /// Finishes a read whose end the pager proved (or did not: its reasons are in
    /// `partial`).
    pub(crate) fn finish(mut self) -> Read<T> {
        if self.undecodable > 0 {
            self.partial.insert(
                0,
                format!(
                    "{UNDECODABLE_ROW}: {}: {} row(s) could not be decoded, e.g. {}",
                    self.what,
                    self.undecodable,
                    self.sample.as_deref().unwrap_or("?")
                ),
            );
        }
        Read {
            rows: self.rows,
            proof: Proof::new(self.partial, self.undecodable, self.sample),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct W {
        id: String,
        played: bool,
    }

    fn dec(v: Value) -> Row<W> {
        Row::from_result(decode::<W>(&v))
    }

    #[test]
    fn a_document_read_whole_is_complete_when_every_row_decodes() {
        let mut r = Reader::new("list");
        r.rows(
            vec![
                json!({"Id": "a", "Played": true}),
                json!({"Id": "b", "Played": false}),
            ],
            &mut dec,
        );
        let read = r.finish_whole();
        assert!(read.is_complete(), "{:?}", read.proof());
        assert_eq!(read.rows.len(), 2);
    }

    #[test]
    fn one_bad_row_makes_the_read_partial_and_keeps_the_others() {
        let mut r = Reader::new("library");
        r.rows(
            vec![
                json!({"Id": "a", "Played": true}),
                json!(null),
                json!({"Id": 7, "Played": true}),
                json!({"Id": "c", "Played": "yes"}),
                json!({"Id": "d", "Played": false}),
            ],
            &mut dec,
        );
        let read = r.finish_whole();
        assert_eq!(read.rows.len(), 2);
        let reason = read.proof().reason().unwrap();
        assert!(
            reason.starts_with("undecodable_row: library: 3 row(s)"),
            "{reason}"
        );
        assert!(reason.contains("null"), "{reason}");
        assert_eq!(read.proof().undecodable().0, 3);
    }

    #[test]
    fn decode_errors_name_the_field() {
        let e = decode::<W>(&json!({"Id": "a", "Played": "yes"})).unwrap_err();
        assert!(e.starts_with("Played: invalid type"), "{e}");
    }

    #[test]
    fn declared_values_are_valid_only_as_non_negative_integers() {
        assert_eq!(Declared::from_json(Some(&json!(5))), Declared::Valid(5));
        assert_eq!(Declared::from_json(None), Declared::Missing);
        assert_eq!(Declared::from_json(Some(&json!(null))), Declared::Missing);
        for bad in [json!(-1), json!("5"), json!(2.5), json!([])] {
            assert!(
                matches!(Declared::from_json(Some(&bad)), Declared::Invalid(_)),
                "{bad}"
            );
        }
        assert_eq!(Declared::from_text(Some(" 12 ")), Declared::Valid(12));
        assert_eq!(Declared::from_text(None), Declared::Missing);
        for bad in ["-3", "+3", "x", ""] {
            assert!(
                matches!(Declared::from_text(Some(bad)), Declared::Invalid(_)),
                "{bad}"
            );
        }
    }

    #[test]
    fn samples_never_carry_credentials() {
        let row = json!({"Id": 1, "AccessToken": "abc123", "thumb": "/t?X-Plex-Token=abc123&w=1",
            "nested": [{"api_key": "abc123"}], "Name": "keep"});
        let s = sample_of(&row);
        assert!(!s.contains("abc123"), "{s}");
        assert!(s.contains("keep") && s.contains("w=1"), "{s}");
    }

    #[test]
    fn samples_are_short() {
        let long = json!({"Name": "x".repeat(1000)});
        assert!(sample_of(&long).chars().count() <= SAMPLE_CHARS + 1);
    }
}
