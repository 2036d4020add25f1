//! The plex.tv account service, as far as signing in goes: the PIN flow and the account
//! lookup that proves a token. Served by [`PlexSim`](super::PlexSim) on its third
//! host (`plex_tv_uri()`).
//!
//! - `POST /api/v2/pins` (`strong=true|false`; `X-Plex-Product` and
//!   `X-Plex-Client-Identifier` required, else 400) → `201` with the PIN: `id`, `code` (4
//!   characters, entered at `https://plex.tv/link`; 25 when `strong`), `clientIdentifier`,
//!   `expiresIn`, `expiresAt`, `authToken: null`.
//! - `GET /api/v2/pins/{id}` with the same `X-Plex-Client-Identifier` → the PIN, whose
//!   `authToken` is the account token once the user linked the code; `404` for an unknown
//!   or expired PIN, or one asked for by another client.
//! - `GET /api/v2/user` with `X-Plex-Token` → the account (`id`, `uuid`, `username`,
//!   `email`), `401` for any other token.
//!
//! A PIN expires `expiresIn` seconds of *simulated* time after it was made
//! ([`PlexSim::expire_pins`](super::PlexSim::expire_pins) ends them all at once).

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::sim::knobs::Knobs;

/// How long a PIN lives, in seconds (what plex.tv answers in `expiresIn`).
pub const PIN_LIFETIME_SECS: i64 = 900;

#[derive(Debug, Clone)]
struct Pin {
    id: u64,
    code: String,
    client: String,
    product: String,
    created_at: i64,
    expires_at: i64,
    linked: bool,
}

#[derive(Debug)]
pub(super) struct TvState {
    pub(super) account_token: String,
    pub(super) now: i64,
    pins: Vec<Pin>,
    next_id: u64,
    pub(super) knobs: Knobs,
}

impl TvState {
    pub(super) fn new(account_token: String, now: i64) -> Self {
        TvState {
            account_token,
            now,
            pins: Vec::new(),
            next_id: 424_242,
            knobs: Knobs::default(),
        }
    }

    /// Links the live PIN with this code to the account, as the user does at plex.tv/link.
    pub(super) fn link(&mut self, code: &str) -> bool {
        let now = self.now;
        match self
            .pins
            .iter_mut()
            .find(|p| p.code.eq_ignore_ascii_case(code.trim()) && p.expires_at > now)
        {
            Some(p) => {
                p.linked = true;
                true
            }
            None => false,
        }
    }

    pub(super) fn expire_all(&mut self) {
        let now = self.now;
        for p in &mut self.pins {
            p.expires_at = p.expires_at.min(now);
        }
    }

    pub(super) fn pin_count(&self) -> usize {
        self.pins.len()
    }

    fn pin_json(&self, p: &Pin) -> Value {
        json!({
            "id": p.id,
            "code": p.code,
            "product": p.product,
            "trusted": false,
            "qr": format!("https://plex.tv/api/v2/pins/qr/{}", p.code),
            "clientIdentifier": p.client,
            "expiresIn": (p.expires_at - self.now).max(0),
            "createdAt": rfc3339(p.created_at),
            "expiresAt": rfc3339(p.expires_at),
            "authToken": if p.linked { Value::String(self.account_token.clone()) } else { Value::Null },
            "newRegistration": Value::Null,
        })
    }

    fn route(&mut self, req: &Request, method: &str, path: &str) -> ResponseTemplate {
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let client = header("X-Plex-Client-Identifier");
        match (method, path) {
            ("POST", "/api/v2/pins") => {
                let (Some(client), Some(product)) = (client, header("X-Plex-Product")) else {
                    return error(
                        400,
                        1000,
                        "X-Plex-Client-Identifier and X-Plex-Product are required",
                    );
                };
                let strong = req
                    .url
                    .query_pairs()
                    .any(|(k, v)| k == "strong" && (v == "true" || v == "1"));
                let id = self.next_id;
                self.next_id += 1;
                let code = pin_code(id, if strong { 25 } else { 4 });
                let pin = Pin {
                    id,
                    code,
                    client,
                    product,
                    created_at: self.now,
                    expires_at: self.now + PIN_LIFETIME_SECS,
                    linked: false,
                };
                let body = self.pin_json(&pin);
                self.pins.push(pin);
                ResponseTemplate::new(201).set_body_json(body)
            }
            ("GET", p) if p.starts_with("/api/v2/pins/") => {
                let id = p["/api/v2/pins/".len()..].parse::<u64>().ok();
                let now = self.now;
                match self.pins.iter().find(|pin| {
                    Some(pin.id) == id
                        && pin.expires_at > now
                        && Some(&pin.client) == client.as_ref()
                }) {
                    Some(pin) => ResponseTemplate::new(200).set_body_json(self.pin_json(pin)),
                    None => error(404, 1020, "Code not found or expired"),
                }
            }
            ("GET", "/api/v2/user") => {
                let token = header("X-Plex-Token").or_else(|| {
                    req.url
                        .query_pairs()
                        .find(|(k, _)| k == "X-Plex-Token")
                        .map(|(_, v)| v.into_owned())
                });
                if token.as_deref() != Some(self.account_token.as_str()) {
                    return error(401, 1001, "User could not be authenticated");
                }
                ResponseTemplate::new(200).set_body_json(json!({
                    "id": 1,
                    "uuid": "f3a1c0de5eed0001",
                    "username": "owner",
                    "title": "owner",
                    "email": "owner@example.invalid",
                    "authToken": self.account_token,
                }))
            }
            _ => error(404, 1020, "Not found"),
        }
    }
}

/// plex.tv's JSON error shape.
fn error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "errors": [{"code": code, "message": message, "status": status}]
    }))
}

/// A deterministic code of `len` characters from plex.tv's alphabet (no 0/O or 1/I).
fn pin_code(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn rfc3339(epoch: i64) -> String {
    ferry_core::Timestamp::from_unix(epoch).to_rfc3339()
}

fn lock(m: &Mutex<TvState>) -> MutexGuard<'_, TvState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
pub(super) struct PlexTvRouter(pub(super) Arc<Mutex<TvState>>);

impl Respond for PlexTvRouter {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.0);
        let seen = st.knobs.begin(req);
        seen.answer(|method, path, _| st.route(req, method, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_deterministic_and_of_the_asked_length() {
        assert_eq!(pin_code(7, 4), pin_code(7, 4));
        assert_ne!(pin_code(7, 4), pin_code(8, 4));
        assert_eq!(pin_code(7, 25).len(), 25);
        assert!(pin_code(9, 4).chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn a_pin_links_only_while_alive() {
        let mut st = TvState::new("acct".into(), 1_000);
        st.pins.push(Pin {
            id: 1,
            code: "WXYZ".into(),
            client: "c".into(),
            product: "p".into(),
            created_at: 1_000,
            expires_at: 1_900,
            linked: false,
        });
        assert!(st.link("wxyz"));
        st.expire_all();
        assert!(!st.link("WXYZ"));
    }
}
