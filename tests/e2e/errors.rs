//! Each error class of the client gets its action in the running pool: a task error result,
//! a retry, or a pool-wide pause that keeps the tasks in the queue.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;

use autoscaler::config::Config;
use autoscaler::service::RunSummary;
use autoscaler::sim::{Faults, SimConfig, SimHandle};
use autoscaler::solver::ApiKey;

use crate::support::{self, RedisServer};

/// Pushes `n` tasks, runs the pool until `done` holds (or 30 s), and returns the results.
async fn run_until(
    config: &Config,
    key: ApiKey,
    n: usize,
    done: impl Fn(usize) -> bool,
) -> (HashMap<String, String>, RunSummary) {
    let mut queue = support::queue(config).await;
    let tasks = autoscaler::cli::commands::enqueue::synthetic("err", "userrecaptcha", n, 1);
    queue.push(&tasks).await.expect("push");
    let running = support::InProcess::with(config.clone(), key, None);
    support::eventually(Duration::from_secs(30), || {
        let mut queue = queue.clone();
        let done = &done;
        async move { done(queue.result_count().await.unwrap_or(0) as usize) }
    })
    .await;
    let summary = running.stop().await;
    let mut conn = support::conn(&config.redis.url).await;
    let results = conn.hgetall("captcha:results").await.expect("hgetall");
    (results, summary)
}

async fn sim(config: SimConfig) -> SimHandle {
    support::fast_sim(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsolvable_task_is_resubmitted_a_bounded_number_of_times_then_fails() {
    let redis = RedisServer::start();
    let sim = sim(SimConfig {
        error_rate: 1.0,
        ..support::fast_sim_config()
    })
    .await;
    let config = support::fast_config(&redis.url(), &sim.base_url());
    let (results, summary) = run_until(&config, support::api_key(), 10, |n| n >= 10).await;
    assert_eq!(results.len(), 10);
    for result in results.values() {
        assert_eq!(
            result,
            r#"{"status":"error","error":"ERROR_CAPTCHA_UNSOLVABLE"}"#
        );
    }
    assert_eq!(summary.failed, 10);
    let submits = 10 * (1 + u64::from(config.pool.unsolvable_resubmits));
    assert_eq!(
        sim.stats().submitted,
        submits,
        "one resubmission per task, then the error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_pages_are_retried_until_the_tasks_succeed() {
    let redis = RedisServer::start();
    let sim = sim(support::fast_sim_config()).await;
    sim.set_faults(Faults::unavailable(8));
    let config = support::fast_config(&redis.url(), &sim.base_url());
    let (results, summary) = run_until(&config, support::api_key(), 10, |n| n >= 10).await;
    assert_eq!(results.len(), 10);
    assert!(
        results
            .values()
            .all(|r| r.starts_with(r#"{"status":"success","token":"#)),
        "{results:?}"
    );
    assert_eq!(summary.succeeded, 10);
    assert!(
        sim.stats().faults_injected >= 8,
        "the 503 pages were served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_free_slot_is_retried_later_not_failed() {
    let redis = RedisServer::start();
    let sim = sim(SimConfig {
        threads: 2,
        solve_time: (Duration::from_millis(100), Duration::from_millis(200)),
        ..support::fast_sim_config()
    })
    .await;
    let mut config = support::fast_config(&redis.url(), &sim.base_url());
    config.pool.min_workers = 6;
    config.pool.max_workers = 6;
    let (results, summary) = run_until(&config, support::api_key(), 12, |n| n >= 12).await;
    assert_eq!(results.len(), 12);
    assert_eq!(summary.succeeded, 12, "{results:?}");
    let stats = sim.stats();
    assert!(
        stats.no_slot > 0,
        "six workers on two threads must hit NO_SLOT"
    );
    assert!(stats.max_concurrent <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_pauses_submissions_and_keeps_every_task_queued() {
    let redis = RedisServer::start();
    let sim = sim(support::fast_sim_config()).await;
    let mut config = support::fast_config(&redis.url(), &sim.base_url());
    config.pool.min_workers = 4;
    config.pool.max_workers = 4;
    // One balance read at start; the simulator counts its refusal among the rejected.
    config.captchaai.balance_interval = Duration::from_secs(3600);
    let mut queue = support::queue(&config).await;
    let status_key = format!("autoscaler:status:{}", config.host_id());
    queue
        .push(&autoscaler::cli::commands::enqueue::synthetic(
            "k",
            "userrecaptcha",
            20,
            1,
        ))
        .await
        .expect("push");
    let running = support::InProcess::with(config.clone(), ApiKey::new("not-a-key"), None);
    let mut conn = support::conn(&redis.url()).await;
    let paused = support::eventually(Duration::from_secs(10), || {
        let mut conn = conn.clone();
        let key = status_key.clone();
        async move {
            let status: Option<String> = conn.get(&key).await.unwrap_or(None);
            status.is_some_and(|s| s.contains(r#""paused_by":"ERROR_WRONG_USER_KEY""#))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    running.stop().await;
    assert!(paused, "the status shows the pause and its cause");
    let results: usize = conn.hlen("captcha:results").await.expect("hlen");
    assert_eq!(results, 0, "an account error is not the tasks' fault");
    assert_eq!(
        queue.measure().await.expect("llen").depth,
        20,
        "every task is back in the queue"
    );
    assert_eq!(queue.in_processing().await.expect("llen"), 0);
    let stats = sim.stats();
    assert!(
        stats.rejected <= 4 + 1,
        "at most one refused submit per worker, plus the balance read: {stats:?}"
    );
}
