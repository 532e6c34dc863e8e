//! SIGTERM and Ctrl-C on the real binary: the first signal drains (in-flight tasks finish, the
//! rest stay queued, exit 0); a second one returns in-flight tasks to the queue at once.

use std::time::{Duration, Instant};

use redis::AsyncCommands;

use autoscaler::sim::SimConfig;

use crate::support::{self, Accounting, Host, RedisServer};

async fn held(conn: &redis::aio::MultiplexedConnection, host: &str, n: usize) -> bool {
    support::eventually(Duration::from_secs(20), || {
        let mut conn = conn.clone();
        let list = format!("captcha:processing:{host}");
        async move { conn.llen::<_, usize>(list).await.unwrap_or(0) == n }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_tasks_finish_keeps_the_rest_queued_and_exits_zero() {
    let redis = RedisServer::start();
    let solve = Duration::from_millis(1500);
    let sim = support::fast_sim(SimConfig {
        solve_time: (solve, solve),
        ..support::fast_sim_config()
    })
    .await;
    let mut conn = support::conn(&redis.url()).await;
    support::push(&mut conn, &support::tasks("term", 40)).await;
    let pool = "min_workers = 8\nmax_workers = 8\ndrain_timeout = \"10s\"";
    let mut host = Host::start("term-host", &redis.url(), &sim.base_url(), pool);
    assert!(held(&conn, "term-host", 8).await, "eight tasks in flight");

    host.signal("TERM");
    let signalled = Instant::now();
    let code = host.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "a drained host exits 0");
    assert!(signalled.elapsed() >= solve / 2, "it waited for the solves");

    let accounting = Accounting::read(&mut conn).await;
    assert_eq!(accounting.processing, 0, "{accounting:?}");
    assert_eq!(accounting.results + accounting.queued, 40, "{accounting:?}");
    assert!(
        accounting.results >= 8,
        "the in-flight tasks finished: {accounting:?}"
    );
    assert_eq!(
        sim.stats().submitted as usize,
        accounting.results,
        "no solve was cut short or repeated"
    );
    assert_eq!(host.logged("stop requested: draining").len(), 1);
    let beat: bool = conn
        .exists("autoscaler:heartbeat:term-host")
        .await
        .expect("exists");
    assert!(!beat, "a clean stop removes the heartbeat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_returns_in_flight_tasks_to_the_queue_and_exits_at_once() {
    let redis = RedisServer::start();
    let solve = Duration::from_secs(30);
    let sim = support::fast_sim(SimConfig {
        solve_time: (solve, solve),
        ..support::fast_sim_config()
    })
    .await;
    let mut conn = support::conn(&redis.url()).await;
    support::push(&mut conn, &support::tasks("int", 12)).await;
    let pool = "min_workers = 5\nmax_workers = 5\ndrain_timeout = \"60s\"";
    let mut host = Host::start("int-host", &redis.url(), &sim.base_url(), pool);
    assert!(held(&conn, "int-host", 5).await, "five tasks in flight");

    host.signal("INT");
    let drained = support::eventually(Duration::from_secs(5), || {
        let found = !host.logged("stop requested: draining").is_empty();
        async move { found }
    })
    .await;
    assert!(drained, "the first signal starts the drain");
    assert_eq!(
        host.wait_exit(Duration::from_millis(500)),
        None,
        "it drains"
    );
    host.signal("INT");
    let signalled = Instant::now();
    let code = host.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(130), "the second signal exits with 130");
    assert!(signalled.elapsed() < Duration::from_secs(3), "at once");

    let accounting = Accounting::read(&mut conn).await;
    assert_eq!(
        accounting,
        Accounting::waiting(12),
        "every task is back in the queue"
    );
    let first: Option<String> = conn.lindex("captcha:tasks", 0).await.expect("lindex");
    assert!(
        first.is_some_and(|t| t.contains(r#""id":"int-"#)),
        "returned tasks go to the head"
    );
}
