//! Tasks end to end, and what the provider refuses: threads, money, keys, parameters.

use super::*;

#[tokio::test]
async fn a_task_is_solved_and_charged() {
    let sim = sim(fast()).await;
    let client = client(&sim);

    let token = client
        .solve("userrecaptcha", &recaptcha(), soon())
        .await
        .expect("solved");
    assert!(token.starts_with("03A") && token.len() > 100, "{token}");

    let stats = sim.stats();
    assert_eq!((stats.submitted, stats.solved, stats.in_flight), (1, 1, 0));
    assert!(stats.polls >= 1);
    let balance = client.balance().await.expect("balance");
    assert!((balance - 9.999).abs() < 1e-6, "{balance}");
}

#[tokio::test]
async fn submits_beyond_the_threads_get_no_slot() {
    let sim = sim(SimConfig {
        threads: 2,
        solve_time: (500 * MS, 500 * MS),
        ..fast()
    })
    .await;
    let client = client(&sim);

    client
        .submit("userrecaptcha", &recaptcha())
        .await
        .expect("first");
    client
        .submit("userrecaptcha", &recaptcha())
        .await
        .expect("second");
    let error = client
        .submit("userrecaptcha", &recaptcha())
        .await
        .expect_err("no slot");
    assert_error(
        &error,
        "ERROR_NO_SLOT_AVAILABLE",
        ErrorClass::SolverCapacity,
        Action::RetryLater,
    );
    assert_eq!((sim.stats().no_slot, sim.stats().max_concurrent), (1, 2));
}

#[tokio::test]
async fn zero_balance_once_the_money_runs_out() {
    let sim = sim(SimConfig {
        balance_usd: 0.002,
        ..fast()
    })
    .await;
    let client = client(&sim);

    for _ in 0..2 {
        client
            .solve("turnstile", &sitekey(), soon())
            .await
            .expect("paid for");
    }
    let error = client
        .solve("turnstile", &sitekey(), soon())
        .await
        .expect_err("no money");
    assert_error(
        &error,
        "ERROR_ZERO_BALANCE",
        ErrorClass::SolverCapacity,
        Action::RetryLater,
    );
    assert_eq!(sim.stats().zero_balance, 1);
    assert!(client.balance().await.expect("balance").abs() < 1e-9);
}

#[tokio::test]
async fn a_wrong_or_unknown_key_pauses_the_pool() {
    let sim = sim(SimConfig {
        allowed_keys: Some(vec![KEY.into()]),
        ..fast()
    })
    .await;

    let malformed = client_with(&sim, "not-a-key", |_| {});
    let error = malformed
        .submit("userrecaptcha", &recaptcha())
        .await
        .expect_err("bad key");
    assert_error(
        &error,
        "ERROR_WRONG_USER_KEY",
        ErrorClass::Account,
        Action::PausePool,
    );

    let unknown = client_with(&sim, &"f".repeat(32), |_| {});
    let error = unknown.balance().await.expect_err("unknown key");
    assert_error(
        &error,
        "ERROR_KEY_DOES_NOT_EXIST",
        ErrorClass::Account,
        Action::PausePool,
    );
}

#[tokio::test]
async fn unsolvable_tasks_fail() {
    let sim = sim(SimConfig {
        error_rate: 1.0,
        ..fast()
    })
    .await;
    let error = client(&sim)
        .solve("userrecaptcha", &recaptcha(), soon())
        .await
        .expect_err("unsolvable");
    assert_error(
        &error,
        "ERROR_CAPTCHA_UNSOLVABLE",
        ErrorClass::Task,
        Action::FailTask,
    );
    assert!(error.is_unsolvable());
    assert_eq!((sim.stats().unsolvable, sim.stats().balance_usd), (1, 10.0));
}

#[tokio::test]
async fn bad_parameters_fail_the_task() {
    let sim = sim(fast()).await;
    let client = client(&sim);
    let error = client
        .submit("funcaptcha", &recaptcha())
        .await
        .expect_err("unknown method");
    assert_error(
        &error,
        "ERROR_BAD_PARAMETERS",
        ErrorClass::Task,
        Action::FailTask,
    );
    let error = client
        .submit("userrecaptcha", &sitekey())
        .await
        .expect_err("no googlekey");
    assert_error(
        &error,
        "ERROR_GOOGLEKEY",
        ErrorClass::Task,
        Action::FailTask,
    );
}

#[tokio::test]
async fn the_poll_budget_ends_the_task() {
    let sim = sim(SimConfig {
        solve_time: (Duration::from_secs(5), Duration::from_secs(5)),
        ..fast()
    })
    .await;
    let client = client_with(&sim, KEY, |c| c.max_polls = 3);
    let error = client
        .solve("userrecaptcha", &recaptcha(), soon())
        .await
        .expect_err("budget");
    assert_error(
        &error,
        "ERROR_POLL_BUDGET_EXHAUSTED",
        ErrorClass::Task,
        Action::FailTask,
    );
    assert_eq!(sim.stats().polls, 3);
}

#[tokio::test]
async fn the_deadline_ends_the_task() {
    let sim = sim(SimConfig {
        solve_time: (Duration::from_secs(5), Duration::from_secs(5)),
        ..fast()
    })
    .await;
    let deadline = Instant::now() + 150 * MS;
    let error = client(&sim)
        .solve("userrecaptcha", &recaptcha(), deadline)
        .await
        .expect_err("deadline");
    assert_error(
        &error,
        "ERROR_DEADLINE_EXCEEDED",
        ErrorClass::Task,
        Action::FailTask,
    );
    assert!(
        Instant::now() < deadline + 100 * MS,
        "gave up at the deadline, not later"
    );
}
