//! Outage pages, garbled and slow answers: transport errors, retried, never showing the key.

use super::*;

#[tokio::test]
async fn an_outage_page_is_a_transport_error_to_retry() {
    let sim = sim(fast()).await;
    let client = client(&sim);
    sim.set_faults(Faults::unavailable(1));

    let error = client
        .submit("userrecaptcha", &recaptcha())
        .await
        .expect_err("503");
    assert_error(
        &error,
        "HTTP_503",
        ErrorClass::Transport,
        Action::RetryLater,
    );
    assert!(error.to_string().contains("html page"), "{error}");
    client
        .submit("userrecaptcha", &recaptcha())
        .await
        .expect("the outage is over");
}

#[tokio::test]
async fn garbled_and_empty_bodies_are_transport_errors() {
    let sim = sim(fast()).await;
    let client = client(&sim);
    for fault in [Fault::Garbage, Fault::Empty] {
        sim.set_faults(Faults {
            count: 1,
            fault,
            ..Faults::default()
        });
        let error = client.balance().await.expect_err("bad body");
        assert_error(
            &error,
            "BAD_RESPONSE",
            ErrorClass::Transport,
            Action::RetryLater,
        );
    }
}

#[tokio::test]
async fn polling_rides_out_an_outage() {
    let sim = sim(SimConfig {
        solve_time: (100 * MS, 100 * MS),
        ..fast()
    })
    .await;
    let client = client_with(&sim, KEY, |c| c.first_poll_delay = 200 * MS);
    let solving =
        tokio::spawn(async move { client.solve("userrecaptcha", &recaptcha(), soon()).await });

    wait_until(|| sim.stats().submitted == 1).await;
    sim.set_faults(Faults::unavailable(2));
    let token = solving
        .await
        .expect("join")
        .expect("solved despite two failed polls");
    assert!(token.starts_with("03A"));
    assert_eq!(sim.stats().faults_injected, 2);
}

#[tokio::test]
async fn a_slow_answer_hits_the_http_timeout() {
    let sim = sim(fast()).await;
    sim.set_faults(Faults::delayed(500 * MS));
    let client = client_with(&sim, KEY, |c| c.http_timeout = 100 * MS);
    let error = client.balance().await.expect_err("timeout");
    assert_error(&error, "TIMEOUT", ErrorClass::Transport, Action::RetryLater);
}

#[tokio::test]
async fn errors_never_show_the_key() {
    let sim = sim(fast()).await;
    let client = client(&sim);
    sim.set_faults(Faults::unavailable(1));
    let outage = client.balance().await.expect_err("503");
    sim.shutdown().await;
    let refused = client.balance().await.expect_err("nobody listens");
    assert_eq!(refused.class(), ErrorClass::Transport);

    for error in [outage, refused] {
        let mut chain = format!("{error} / {error:?}");
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            chain.push_str(&format!(" / {cause} / {cause:?}"));
            source = cause.source();
        }
        assert!(
            !chain.contains(KEY) && !chain.contains("res.php"),
            "{chain}"
        );
    }
}

#[tokio::test]
async fn a_reset_connection_is_a_transport_error_to_retry() {
    let sim = sim(fast()).await;
    let client = client(&sim);
    sim.set_faults(Faults::resets(1));
    let error = client.balance().await.expect_err("reset");
    assert_error(
        &error,
        "NETWORK_ERROR",
        ErrorClass::Transport,
        Action::RetryLater,
    );
    client
        .balance()
        .await
        .expect("the next connection is answered");
    assert_eq!(sim.stats().faults_injected, 1);
}

#[tokio::test]
async fn an_injected_code_gets_the_action_of_its_class() {
    let sim = sim(fast()).await;
    let client = client(&sim);
    let cases = [
        (
            "ERROR_NO_SLOT_AVAILABLE",
            ErrorClass::SolverCapacity,
            Action::RetryLater,
        ),
        (
            "ERROR_ZERO_BALANCE",
            ErrorClass::SolverCapacity,
            Action::RetryLater,
        ),
        ("IP_BANNED", ErrorClass::Account, Action::PausePool),
        (
            "ERROR_KEY_DOES_NOT_EXIST",
            ErrorClass::Account,
            Action::PausePool,
        ),
    ];
    for (code, class, action) in cases {
        sim.set_faults(Faults::code(code, 1));
        let error = client
            .submit("userrecaptcha", &recaptcha())
            .await
            .expect_err(code);
        assert_error(&error, code, class, action);
    }
    assert_eq!(
        sim.stats().submitted,
        0,
        "no injected refusal reached the account"
    );
}
