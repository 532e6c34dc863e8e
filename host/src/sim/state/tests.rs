//! The simulated account's rules, without HTTP: keys, methods, threads, money, results.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::{Answer, Params, State};
use crate::sim::SimConfig;

const KEY: &str = "abcdefghijklmnopqrstuvwxyz012345";
const MS: Duration = Duration::from_millis(1);

fn config() -> SimConfig {
    SimConfig {
        solve_time: (10 * MS, 10 * MS),
        threads: 2,
        balance_usd: 1.0,
        price_usd: 0.1,
        seed: Some(1),
        ..SimConfig::default()
    }
}

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn recaptcha() -> Params {
    params(&[
        ("key", KEY),
        ("method", "userrecaptcha"),
        ("googlekey", "g"),
        ("pageurl", "u"),
    ])
}

fn poll(id: &Value) -> Params {
    params(&[("key", KEY), ("action", "get"), ("id", &id.to_string())])
}

fn submitted(state: &mut State, now: Instant) -> Value {
    match state.submit(&recaptcha(), now) {
        Answer::Ok(id) => id,
        other => panic!("submit refused: {other:?}"),
    }
}

#[test]
fn a_task_is_ready_after_its_solve_time_and_readable_twice() {
    let mut state = State::new(config());
    let t0 = Instant::now();
    let id = submitted(&mut state, t0);
    assert_eq!(state.get(&poll(&id), t0 + 5 * MS), Answer::NotReady);
    let first = state.get(&poll(&id), t0 + 10 * MS);
    assert!(
        matches!(&first, Answer::Ok(Value::String(t)) if t.starts_with("03A")),
        "{first:?}"
    );
    assert_eq!(state.get(&poll(&id), t0 + 20 * MS), first);
    let stats = state.stats(t0 + 20 * MS);
    assert_eq!(
        (stats.submitted, stats.solved, stats.polls, stats.in_flight),
        (1, 1, 3, 0)
    );
    assert!((stats.balance_usd - 0.9).abs() < 1e-9);
}

#[test]
fn submits_beyond_the_threads_get_no_slot() {
    let mut state = State::new(config());
    let t0 = Instant::now();
    submitted(&mut state, t0);
    submitted(&mut state, t0);
    assert_eq!(
        state.submit(&recaptcha(), t0),
        Answer::Error("ERROR_NO_SLOT_AVAILABLE")
    );
    submitted(&mut state, t0 + 10 * MS);
    let stats = state.stats(t0 + 10 * MS);
    assert_eq!((stats.no_slot, stats.max_concurrent), (1, 2));
}

#[test]
fn submits_the_balance_cannot_pay_get_zero_balance() {
    let mut state = State::new(SimConfig {
        balance_usd: 0.25,
        threads: 10,
        ..config()
    });
    let t0 = Instant::now();
    submitted(&mut state, t0);
    submitted(&mut state, t0);
    assert_eq!(
        state.submit(&recaptcha(), t0),
        Answer::Error("ERROR_ZERO_BALANCE")
    );
    assert_eq!(state.stats(t0 + 10 * MS).zero_balance, 1);
}

#[test]
fn unsolvable_tasks_are_not_charged() {
    let mut state = State::new(SimConfig {
        error_rate: 1.0,
        ..config()
    });
    let t0 = Instant::now();
    let id = submitted(&mut state, t0);
    let answer = state.get(&poll(&id), t0 + 10 * MS);
    assert_eq!(answer, Answer::Error("ERROR_CAPTCHA_UNSOLVABLE"));
    let stats = state.stats(t0 + 10 * MS);
    assert_eq!((stats.unsolvable, stats.balance_usd), (1, 1.0));
}

#[test]
fn keys_are_checked_for_shape_then_for_existence() {
    let mut state = State::new(SimConfig {
        allowed_keys: Some(vec![KEY.into()]),
        ..config()
    });
    let now = Instant::now();
    let short = params(&[("key", "short"), ("method", "post"), ("body", "x")]);
    assert_eq!(
        state.submit(&short, now),
        Answer::Error("ERROR_WRONG_USER_KEY")
    );
    let other = params(&[("key", &"z".repeat(32)), ("action", "getbalance")]);
    assert_eq!(
        state.balance(&other, now),
        Answer::Error("ERROR_KEY_DOES_NOT_EXIST")
    );
    let mine = params(&[("key", KEY), ("action", "getbalance")]);
    assert_eq!(
        state.balance(&mine, now),
        Answer::Ok(Value::String("1.00000".into()))
    );
}

#[test]
fn missing_parameters_name_the_real_codes() {
    let mut state = State::new(config());
    let now = Instant::now();
    let cases = [
        (
            vec![("method", "userrecaptcha"), ("pageurl", "u")],
            "ERROR_GOOGLEKEY",
        ),
        (
            vec![("method", "userrecaptcha"), ("googlekey", "g")],
            "ERROR_PAGEURL",
        ),
        (
            vec![("method", "turnstile"), ("pageurl", "u")],
            "ERROR_BAD_PARAMETERS",
        ),
        (vec![("method", "base64")], "ERROR_ZERO_CAPTCHA_FILESIZE"),
        (vec![("method", "funcaptcha")], "ERROR_BAD_PARAMETERS"),
        (vec![], "ERROR_BAD_PARAMETERS"),
    ];
    for (pairs, code) in cases {
        let mut request = params(&pairs);
        request.insert("key".into(), KEY.into());
        assert_eq!(
            state.submit(&request, now),
            Answer::Error(code),
            "{pairs:?}"
        );
    }
    assert_eq!(state.stats(now).rejected, 6);
}

#[test]
fn wrong_ids_are_told_apart() {
    let mut state = State::new(config());
    let now = Instant::now();
    let get = |id: &str| params(&[("key", KEY), ("action", "get"), ("id", id)]);
    assert_eq!(
        state.get(&get("abc"), now),
        Answer::Error("ERROR_WRONG_ID_FORMAT")
    );
    assert_eq!(
        state.get(&get("12345"), now),
        Answer::Error("ERROR_WRONG_CAPTCHA_ID")
    );
}

#[test]
fn results_expire_after_their_time_to_live() {
    let mut state = State::new(SimConfig {
        result_ttl: 100 * MS,
        ..config()
    });
    let t0 = Instant::now();
    let id = submitted(&mut state, t0);
    assert!(matches!(state.get(&poll(&id), t0 + 50 * MS), Answer::Ok(_)));
    let late = state.get(&poll(&id), t0 + 200 * MS);
    assert_eq!(late, Answer::Error("ERROR_WRONG_CAPTCHA_ID"));
}

#[test]
fn the_same_seed_gives_the_same_answers() {
    let answers = || {
        let mut state = State::new(config());
        let t0 = Instant::now();
        let id = submitted(&mut state, t0);
        (id.clone(), state.get(&poll(&id), t0 + 10 * MS))
    };
    assert_eq!(answers(), answers());
}

#[test]
fn faults_are_used_up_one_answer_each() {
    let mut state = State::new(config());
    state.set_faults(crate::sim::Faults::unavailable(2));
    assert!(state.take_fault().1.is_some());
    assert!(state.take_fault().1.is_some());
    assert!(state.take_fault().1.is_none());
    assert_eq!(state.stats(Instant::now()).faults_injected, 2);
}
