//! The pool follows demand: up under a burst, back to the minimum when it drains, and never
//! by stopping a busy worker.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use autoscaler::dispatch::Dispatcher;
use autoscaler::gate::Gate;
use autoscaler::metrics::Recorder;
use autoscaler::pool::Pool;
use autoscaler::queue::{Keys, Queue};
use autoscaler::sim::SimConfig;
use autoscaler::solver::{Client, ClientConfig};
use autoscaler::worker::WorkerContext;

use crate::support::{self, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_scales_the_pool_up_and_the_drain_brings_it_back_to_the_minimum() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(SimConfig {
        solve_time: (Duration::from_millis(150), Duration::from_millis(300)),
        ..support::fast_sim_config()
    })
    .await;
    let mut config = support::fast_config(&redis.url(), &sim.base_url());
    config.policy.params = BTreeMap::from([("down_window_s".into(), toml::Value::Integer(1))]);
    let mut queue = support::queue(&config).await;
    let tasks = autoscaler::cli::commands::enqueue::synthetic("burst", "userrecaptcha", 200, 1);
    queue.push(&tasks).await.expect("push");

    let (observer, mut reports) = mpsc::unbounded_channel();
    let running = support::InProcess::with(config.clone(), support::api_key(), Some(observer));
    let mut peak = 0;
    let mut back_to_min = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while let Ok(Some(report)) = tokio::time::timeout_at(deadline, reports.recv()).await {
        peak = peak.max(report.target);
        let results = queue.result_count().await.unwrap_or(0);
        if results == 200 && report.target == 2 && report.before.workers == 2 {
            back_to_min = true;
            break;
        }
    }
    let summary = running.stop().await;
    assert!(
        peak >= 8,
        "the burst should scale well above the minimum of 2, peaked at {peak}"
    );
    assert!(
        back_to_min,
        "the pool did not return to its minimum; summary {summary:?}"
    );
    assert_eq!(summary.succeeded, 200, "{summary:?}");
    assert_eq!(summary.failed, 0);
    assert_eq!(queue.in_processing().await.expect("llen"), 0);
    assert!(
        summary.scale_ups >= 1 && summary.scale_downs >= 1,
        "{summary:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_waits_for_busy_workers_to_finish_their_task() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(SimConfig {
        solve_time: (Duration::from_millis(1500), Duration::from_millis(1500)),
        ..support::fast_sim_config()
    })
    .await;
    let config = support::fast_config(&redis.url(), &sim.base_url());
    let keys = Keys::new(&config.redis, &config.host_id());
    let mut queue = support::queue(&config).await;
    queue
        .push(&autoscaler::cli::commands::enqueue::synthetic(
            "slow",
            "userrecaptcha",
            3,
            1,
        ))
        .await
        .expect("push");

    let stop = CancellationToken::new();
    let gate = Arc::new(Gate::default());
    let (requests, asks) = mpsc::channel(16);
    let blocking = Queue::connect(&config.redis.url, keys, Some(Duration::from_secs(1)))
        .await
        .expect("connect");
    tokio::spawn(Dispatcher::new(blocking, asks, gate.clone(), stop.clone()).run());
    let recorder = Arc::new(Recorder::new(Duration::from_secs(10)));
    let ctx = Arc::new(WorkerContext {
        host_id: config.host_id(),
        queue: queue.clone(),
        client: Client::new(ClientConfig {
            base_url: sim.base_url(),
            api_key: support::api_key(),
            first_poll_delay: Duration::from_millis(50),
            poll_interval: Duration::from_millis(50),
            max_polls: 100,
            http_timeout: Duration::from_secs(2),
        })
        .expect("client"),
        recorder: recorder.clone(),
        gate,
        requests,
        abort: CancellationToken::new(),
        task_timeout: Duration::from_secs(20),
        account_pause: Duration::from_secs(30),
        retry_backoff_max: Duration::from_millis(200),
        unsolvable_resubmits: 1,
    });
    let mut pool = Pool::new(ctx);
    pool.resize(3);
    let all_busy = support::eventually(Duration::from_secs(5), || {
        let busy = pool.counts().busy;
        async move { busy == 3 }
    })
    .await;
    assert!(all_busy, "three workers should hold the three slow tasks");

    pool.resize(0);
    let counts = pool.counts();
    assert_eq!((counts.workers, counts.busy, counts.draining), (3, 3, 3));
    assert_eq!(
        queue.result_count().await.expect("hlen"),
        0,
        "no task was cut short"
    );

    let drained = support::eventually(Duration::from_secs(10), || {
        pool.reap();
        let workers = pool.counts().workers;
        async move { workers == 0 }
    })
    .await;
    assert!(drained, "draining workers exit once their task is done");
    let mut conn = support::conn(&redis.url()).await;
    let results: HashMap<String, String> = conn.hgetall("captcha:results").await.expect("hgetall");
    assert_eq!(results.len(), 3);
    assert!(
        results
            .values()
            .all(|r| r.contains(r#""status":"success""#)),
        "{results:?}"
    );
    assert_eq!(queue.in_processing().await.expect("llen"), 0);
    stop.cancel();
}
