//! HTTP outcomes → core [`ErrorKind`]s, plus the header parsers the retry and rate layers
//! need. Everything here is pure and unit-tested.

use std::time::{Duration, UNIX_EPOCH};

use ferry_core::ops::RateInfo;
use ferry_core::secret::scrub;
use ferry_core::{Error, ErrorKind};
use reqwest::header::HeaderMap;

/// The longest body excerpt attached to an error, in characters.
pub const EXCERPT_MAX_CHARS: usize = 200;

/// The error kind for an HTTP status, or `None` when the status is a success (below 400).
///
/// 401/403 → `Auth`, 404 → `NotFound`, 409 → `Conflict`, 420 → `AccountLimit` (Trakt),
/// 423 → `Locked`, 429 → `RateLimited`, 408 and 5xx → `Unavailable`, any other 4xx →
/// `InvalidInput`.
pub fn classify_status(status: u16) -> Option<ErrorKind> {
    Some(match status {
        0..=399 => return None,
        401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Unavailable,
        409 => ErrorKind::Conflict,
        420 => ErrorKind::AccountLimit,
        423 => ErrorKind::Locked,
        429 => ErrorKind::RateLimited,
        400..=499 => ErrorKind::InvalidInput,
        _ => ErrorKind::Unavailable,
    })
}

/// Parses a `Retry-After` value: delta seconds (`"30"`, also `"1.5"`) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`). A date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now_unix_ms: u64) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let at_ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    Some(Duration::from_millis(at_ms.saturating_sub(now_unix_ms)))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    header_str(headers, name).and_then(|v| v.trim().parse::<u64>().ok())
}

/// The `Retry-After` header of a response, if present and parseable.
pub(crate) fn retry_after(headers: &HeaderMap, now_unix_ms: u64) -> Option<Duration> {
    header_str(headers, "retry-after").and_then(|v| parse_retry_after(v, now_unix_ms))
}

/// `X-RateLimit-Limit`/`-Remaining`/`-Reset` as a [`RateInfo`]. `Reset` is read as delta
/// seconds when small, as epoch seconds (or epoch milliseconds) when it looks like one.
pub(crate) fn rate_info(headers: &HeaderMap, now_unix_ms: u64) -> Option<RateInfo> {
    let limit = header_u64(headers, "x-ratelimit-limit");
    let remaining = header_u64(headers, "x-ratelimit-remaining");
    let reset_secs = header_u64(headers, "x-ratelimit-reset").map(|r| {
        let now_s = now_unix_ms / 1000;
        if r >= 1_000_000_000_000 {
            (r / 1000).saturating_sub(now_s)
        } else if r >= 1_000_000_000 {
            r.saturating_sub(now_s)
        } else {
            r
        }
    });
    (limit.is_some() || remaining.is_some() || reset_secs.is_some()).then_some(RateInfo {
        limit,
        remaining,
        reset_secs,
    })
}

/// A short, scrubbed, single-line excerpt of a body for error context: secrets are
/// replaced *before* truncation so a secret cut at the boundary cannot leak a prefix.
pub(crate) fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = scrub(&text, secrets);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= EXCERPT_MAX_CHARS {
        one_line
    } else {
        let mut s: String = one_line.chars().take(EXCERPT_MAX_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// The error for a non-success response.
pub(crate) fn status_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now_unix_ms: u64,
    secrets: &[&str],
) -> Option<Error> {
    let kind = classify_status(status)?;
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or(match status {
            420 => "Account Limit Exceeded",
            _ => "",
        });
    let msg = if reason.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} {reason}")
    };
    let mut err = Error::new(kind, msg).with_context("status", status.to_string());
    if matches!(kind, ErrorKind::RateLimited | ErrorKind::Unavailable) {
        let hint = retry_after(headers, now_unix_ms).or_else(|| {
            // A 429 without Retry-After but with an exhausted window: wait for the reset.
            (kind == ErrorKind::RateLimited)
                .then(|| rate_info(headers, now_unix_ms))
                .flatten()
                .filter(|r| r.remaining == Some(0))
                .and_then(|r| r.reset_secs)
                .map(Duration::from_secs)
        });
        if let Some(d) = hint {
            err = err.with_retry_after(d);
        }
    }
    if !body.is_empty() {
        err = err.with_context("body", excerpt(body, secrets));
    }
    Some(err)
}

/// The error for a request that got no response (connect failure, timeout, broken body).
/// The URL is stripped from the source; the caller adds a scrubbed path as context.
pub(crate) fn transport_error(e: reqwest::Error) -> Error {
    let (kind, msg) = if e.is_timeout() {
        (ErrorKind::Unavailable, "request timed out")
    } else if e.is_connect() {
        (ErrorKind::Unavailable, "could not connect")
    } else if e.is_builder() {
        (ErrorKind::InvalidInput, "could not build the request")
    } else if e.is_redirect() {
        (ErrorKind::Unavailable, "too many redirects")
    } else {
        (ErrorKind::Unavailable, "request failed")
    };
    Error::new(kind, msg).with_source(e.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_map_to_kinds() {
        use ErrorKind as K;
        let cases = [
            (200, None),
            (204, None),
            (304, None),
            (400, Some(K::InvalidInput)),
            (401, Some(K::Auth)),
            (403, Some(K::Auth)),
            (404, Some(K::NotFound)),
            (405, Some(K::InvalidInput)),
            (408, Some(K::Unavailable)),
            (409, Some(K::Conflict)),
            (412, Some(K::InvalidInput)),
            (420, Some(K::AccountLimit)),
            (422, Some(K::InvalidInput)),
            (423, Some(K::Locked)),
            (429, Some(K::RateLimited)),
            (500, Some(K::Unavailable)),
            (502, Some(K::Unavailable)),
            (503, Some(K::Unavailable)),
            (504, Some(K::Unavailable)),
            (520, Some(K::Unavailable)),
        ];
        for (status, kind) in cases {
            assert_eq!(classify_status(status), kind, "{status}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = 1_445_412_420_000; // Wed, 21 Oct 2015 07:27:00 GMT
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(" 2 ", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        // A date in the past: retry now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn rate_headers_accept_delta_and_epoch_resets() {
        let now = 1_700_000_000_000;
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("30"));
        let r = rate_info(&h, now).unwrap();
        assert_eq!((r.remaining, r.reset_secs), (Some(0), Some(30)));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1700000045"));
        assert_eq!(rate_info(&h, now).unwrap().reset_secs, Some(45));
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_static("1700000010000"),
        );
        assert_eq!(rate_info(&h, now).unwrap().reset_secs, Some(10));
        assert!(rate_info(&HeaderMap::new(), now).is_none());
    }

    #[test]
    fn excerpts_are_short_single_line_and_scrubbed() {
        let secret = "tok-ABCDEFGHIJKLMNOP";
        let mut body = "x".repeat(195);
        body.push_str(secret); // the secret straddles the 200-char boundary
        body.push_str("\n\n tail");
        let e = excerpt(body.as_bytes(), &[secret]);
        assert!(e.chars().count() <= EXCERPT_MAX_CHARS, "{}", e.len());
        assert!(!e.contains("tok-ABC"), "{e}");
        assert_eq!(excerpt(b"a\n  b\tc", &[]), "a b c");
        assert_eq!(excerpt(&[0xff, b'o', b'k'], &[]), "\u{fffd}ok");
    }

    #[test]
    fn rate_limited_without_retry_after_uses_the_reset_header() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("12"));
        let e = status_error(429, &h, b"", 0, &[]).unwrap();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(12)));
        h.insert("retry-after", HeaderValue::from_static("3"));
        let e = status_error(429, &h, b"", 0, &[]).unwrap();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert!(status_error(200, &h, b"", 0, &[]).is_none());
        let e = status_error(420, &HeaderMap::new(), b"{}", 0, &[]).unwrap();
        assert_eq!(e.kind(), ErrorKind::AccountLimit);
        assert!(e.message().contains("420"), "{}", e.message());
    }
}
