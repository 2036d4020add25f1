//! The plex.tv PIN flow against the simulator's plex.tv host: the headers plex.tv
//! requires, the code, the token once linked, and clear errors for the bad cases.

use std::time::Duration;

use ferry_core::{Context, ErrorKind, Secret};
use ferry_testkit::sim::plex::PlexSim;
use plex::pin::{LINK_URL, PinFlow, client_identifier};

fn cx() -> Context {
    Context::default()
}

#[tokio::test]
async fn a_linked_pin_hands_out_the_account_token() {
    let sim = PlexSim::start().await;
    let flow = PinFlow::new("home", Some(&sim.plex_tv_uri())).unwrap();
    let cx = cx();
    let pin = flow.start(&cx).await.unwrap();
    assert_eq!(pin.code.len(), 4);
    assert_eq!(pin.verification_url, LINK_URL);
    assert!(pin.expires_in > Duration::ZERO);
    assert_eq!(flow.poll(&cx, &pin).await.unwrap(), None, "pending");
    assert!(sim.approve_pin(&pin.code.to_lowercase()));
    let token = flow.poll(&cx, &pin).await.unwrap().expect("linked");
    assert_eq!(token.expose(), sim.account_token());
    assert_eq!(flow.account(&cx, &token).await.unwrap().username, "owner");
    assert!(!format!("{flow:?}").contains(&sim.account_token()));
}

#[tokio::test]
async fn a_pin_is_bound_to_the_client_that_asked_for_it() {
    let sim = PlexSim::start().await;
    let cx = cx();
    let mine = PinFlow::new("home", Some(&sim.plex_tv_uri())).unwrap();
    let pin = mine.start(&cx).await.unwrap();
    assert!(sim.approve_pin(&pin.code));
    // Another instance has another client identifier: plex.tv does not know the PIN.
    assert_ne!(client_identifier("home"), client_identifier("cabin"));
    let other = PinFlow::new("cabin", Some(&sim.plex_tv_uri())).unwrap();
    let err = other.poll(&cx, &pin).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
}

#[tokio::test]
async fn an_expired_pin_or_a_rejected_token_is_an_auth_error() {
    let sim = PlexSim::start().await;
    let cx = cx();
    let flow = PinFlow::new("home", Some(&sim.plex_tv_uri())).unwrap();
    let pin = flow.start(&cx).await.unwrap();
    sim.expire_pins();
    assert!(
        !sim.approve_pin(&pin.code),
        "an expired PIN cannot be linked"
    );
    let err = flow.wait(&cx, &pin).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.to_string().contains("ferry auth plex"), "{err}");

    let err = flow
        .account(&cx, &Secret::new("not-the-token"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(!err.to_string().contains("not-the-token"), "{err}");
}
