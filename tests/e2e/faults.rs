//! API faults from the simulator, each with the action of its class in the running pool:
//! transport faults and capacity refusals are retried until the tasks succeed, account errors
//! and an API address that refuses every request pause every submission (shown in the status
//! and the logs) while the tasks wait safely in the queue, and polls per task stay bounded
//! throughout.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;

use autoscaler::sim::{Fault, Faults};

use crate::support::{self, Accounting, Host, RedisServer};

/// Tasks pushed for each fault.
const PER_FAULT: usize = 12;

/// Faults that pass: every task they hit must still succeed.
fn transient_faults() -> Vec<(&'static str, Faults)> {
    let html = |status| Faults {
        count: 6,
        fault: Fault::Html { status },
        ..Faults::default()
    };
    let some = |fault| Faults {
        count: 6,
        fault,
        ..Faults::default()
    };
    vec![
        ("http 500 page", html(500)),
        ("http 502 page", html(502)),
        ("http 503 page", html(503)),
        ("http 429 rate limit", html(429)),
        ("non-json body", some(Fault::Garbage)),
        ("empty body", some(Fault::Empty)),
        ("connection reset", Faults::resets(6)),
        ("no slot burst", Faults::code("ERROR_NO_SLOT_AVAILABLE", 30)),
        ("zero balance burst", Faults::code("ERROR_ZERO_BALANCE", 30)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_faults_and_capacity_refusals_are_retried_until_every_task_succeeds() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    let mut config = support::fast_config(&redis.url(), &sim.base_url());
    config.captchaai.http_timeout = Duration::from_millis(400);
    let mut conn = support::conn(&redis.url()).await;
    let running = support::InProcess::start(config.clone());

    let mut pushed = 0;
    for (name, faults) in transient_faults() {
        let injected = sim.stats().faults_injected;
        sim.set_faults(faults.clone());
        support::push(&mut conn, &support::tasks(name, PER_FAULT)).await;
        pushed += PER_FAULT;
        let accounting = support::settle(&redis.url(), pushed, Duration::from_secs(30)).await;
        assert!(accounting.settled(pushed), "{name}: {accounting:?}");
        assert_eq!(
            sim.stats().faults_injected - injected,
            u64::from(faults.count),
            "{name}: every injected fault was met"
        );
    }

    sim.set_faults(Faults::delayed(Duration::from_millis(700)));
    support::push(&mut conn, &support::tasks("slow", PER_FAULT)).await;
    pushed += PER_FAULT;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sim.set_faults(Faults::default());
    let accounting = support::settle(&redis.url(), pushed, Duration::from_secs(30)).await;
    let summary = running.stop().await;
    assert!(
        accounting.settled(pushed),
        "slower than the timeout: {accounting:?}"
    );

    let results: HashMap<String, String> = conn.hgetall("captcha:results").await.expect("all");
    let failed: Vec<_> = results
        .iter()
        .filter(|(_, r)| !r.starts_with(r#"{"status":"success""#))
        .collect();
    assert!(
        failed.is_empty(),
        "every task succeeds in the end: {failed:?}"
    );
    assert_eq!(summary.succeeded as usize, pushed);
    let stats = sim.stats();
    assert_eq!(stats.solved as usize, pushed, "each task solved once");
    assert!(
        stats.polls <= stats.submitted * u64::from(config.captchaai.max_polls),
        "polls per task stay within max_polls: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_ban_pauses_every_submission_shows_in_status_and_logs_then_resumes() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    sim.set_faults(Faults::code("IP_BANNED", 1));
    let mut conn = support::conn(&redis.url()).await;
    support::push(&mut conn, &support::tasks("ban", 20)).await;
    let pool = "min_workers = 4\nmax_workers = 4\naccount_pause = \"3s\"";
    let host = Host::start("ban-host", &redis.url(), &sim.base_url(), pool);

    let paused = support::eventually(Duration::from_secs(10), || {
        let mut conn = conn.clone();
        async move {
            let status: Option<String> =
                conn.get("autoscaler:status:ban-host").await.ok().flatten();
            status.is_some_and(|s| s.contains(r#""paused_by":"IP_BANNED""#))
        }
    })
    .await;
    assert!(paused, "the status shows the pause and its cause");
    let submitted = sim.stats().submitted;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        sim.stats().submitted,
        submitted,
        "nothing is submitted while the pool is paused"
    );
    let during = Accounting::read(&mut conn).await;
    assert!(
        during.results <= 4,
        "only solves already submitted finish: {during:?}"
    );
    assert_eq!(during.processing, 0, "{during:?}");
    assert_eq!(
        during.results + during.queued,
        20,
        "the rest wait in the queue: {during:?}"
    );

    let accounting = support::settle(&redis.url(), 20, Duration::from_secs(20)).await;
    assert!(
        accounting.settled(20),
        "the pause ends by itself: {accounting:?}"
    );
    let alerts: Vec<_> = host
        .log_lines()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("pausing"))
        })
        .collect();
    assert_eq!(alerts.len(), 1, "one alert for one ban: {alerts:?}");
    let alert = alerts[0].to_string();
    assert!(alert.contains("IP_BANNED"), "{alert}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_address_pauses_the_pool_instead_of_failing_the_tasks() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    // A typo in the path: the simulator answers 404 to everything under it.
    let wrong = format!("{}/captchaai", sim.base_url());
    let config = support::fast_config(&redis.url(), &wrong);
    let mut conn = support::conn(&redis.url()).await;
    support::push(&mut conn, &support::tasks("misaddressed", 10)).await;
    let running = support::InProcess::start(config.clone());

    let status_key = format!("autoscaler:status:{}", config.host_id());
    let paused = support::eventually(Duration::from_secs(10), || {
        let mut conn = conn.clone();
        let key = status_key.clone();
        async move {
            let status: Option<String> = conn.get(key).await.ok().flatten();
            status.is_some_and(|s| s.contains(r#""paused_by":"HTTP_404""#))
        }
    })
    .await;
    assert!(paused, "the status names the refusal");
    let settled = support::eventually(Duration::from_secs(10), || {
        let mut conn = conn.clone();
        async move { Accounting::read(&mut conn).await.processing == 0 }
    })
    .await;
    assert!(settled, "every held task went back to the queue");
    let summary = running.stop().await;

    let accounting = Accounting::read(&mut conn).await;
    assert_eq!(
        accounting,
        Accounting::waiting(10),
        "no task was failed for the pool's own misconfiguration"
    );
    assert_eq!(summary.succeeded + summary.failed, 0, "{summary:?}");
    assert_eq!(sim.stats().submitted, 0, "nothing reached the protocol");
}
