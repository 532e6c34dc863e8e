//! The real client against the real simulator, over HTTP on loopback, with fast timings.
//!
//! `solve`: tasks end to end and the provider's refusals; `faults`: outages, garbled and
//! slow answers; `wire`: the plain-text protocol and the `/sim/…` routes.

mod faults;
mod solve;
mod wire;

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{Fault, Faults, SimConfig, SimHandle};
use crate::solver::protocol::{Reply, parse_body};
use crate::solver::{Action, ApiKey, Client, ClientConfig, ErrorClass, SolveError};

const KEY: &str = "0123456789abcdef0123456789abcdef";
const MS: Duration = Duration::from_millis(1);

fn fast() -> SimConfig {
    SimConfig {
        solve_time: (10 * MS, 50 * MS),
        threads: 10,
        balance_usd: 10.0,
        price_usd: 0.001,
        seed: Some(7),
        ..SimConfig::default()
    }
}

async fn sim(config: SimConfig) -> SimHandle {
    super::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .expect("start the simulator")
}

fn client_with(sim: &SimHandle, key: &str, tune: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut config = ClientConfig::new(sim.base_url(), ApiKey::new(key));
    config.first_poll_delay = 20 * MS;
    config.poll_interval = 20 * MS;
    config.max_polls = 50;
    config.http_timeout = Duration::from_secs(2);
    tune(&mut config);
    Client::new(config).expect("client")
}

fn client(sim: &SimHandle) -> Client {
    client_with(sim, KEY, |_| {})
}

fn recaptcha() -> Map<String, Value> {
    let params = json!({"googlekey": "6Le-test", "pageurl": "https://example.com/login"});
    params.as_object().cloned().unwrap_or_default()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn assert_error(error: &SolveError, code: &str, class: ErrorClass, action: Action) {
    assert_eq!(
        (error.code(), error.class(), error.action()),
        (code, class, action),
        "{error}"
    );
}

fn sitekey() -> Map<String, Value> {
    let params = json!({"sitekey": "0x4AAA-test", "pageurl": "https://example.com/"});
    params.as_object().cloned().unwrap_or_default()
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < give_up, "condition not met in time");
        tokio::time::sleep(MS).await;
    }
}
