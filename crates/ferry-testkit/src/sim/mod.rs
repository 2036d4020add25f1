//! Stateful simulators of the services ferry talks to, built on `wiremock`. Each holds
//! its state in memory behind a custom `Respond`, so writes change later reads, and has
//! fault knobs (status codes, latency, truncated pages, 429s, expired tokens, broken
//! JSON) for the failure paths. `ferry demo` and `ferry simulate` serve them too.

pub mod jellyfin;
pub mod kit;
pub mod knobs;
pub mod mdblist;
pub mod plex;
pub mod simkl;
pub mod trakt;

use std::sync::atomic::{AtomicU32, Ordering};

use wiremock::MockServer;

static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

/// Makes every simulator host started after this call listen on consecutive loopback
/// ports from `port` (Plex takes three: the server, Discover, then plex.tv). For `ferry simulate
/// --port`, where an integrator's CI needs a known address; tests keep random ports.
pub fn listen_from(port: u16) {
    NEXT_PORT.store(u32::from(port), Ordering::SeqCst);
}

/// A mock server on the next fixed port if [`listen_from`] was called, else on a random one.
pub(crate) async fn server() -> MockServer {
    let port = NEXT_PORT.load(Ordering::SeqCst);
    if port == 0 || port > u32::from(u16::MAX) {
        return MockServer::start().await;
    }
    NEXT_PORT.store(port + 1, Ordering::SeqCst);
    match std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
        Ok(listener) => MockServer::builder().listener(listener).start().await,
        Err(e) => {
            tracing_fallback(&format!(
                "cannot listen on 127.0.0.1:{port} ({e}); using a random port"
            ));
            MockServer::start().await
        }
    }
}

#[allow(clippy::print_stderr)]
fn tracing_fallback(msg: &str) {
    eprintln!("ferry simulator: {msg}");
}
