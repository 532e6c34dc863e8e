//! Redis goes away and comes back on its AOF: the host keeps running, retries with backoff
//! instead of spinning, never lets the policy act on the missing metrics, and loses nothing.

use std::time::Duration;

use crate::support::{self, Accounting, Host, Stage};

const TASKS: usize = 400;
const OUTAGE: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_nothing_and_never_scales_down_on_missing_metrics() {
    let solve = (Duration::from_millis(200), Duration::from_millis(600));
    let Stage {
        mut redis,
        sim,
        conn,
    } = Stage::new("outage", TASKS, solve).await;
    let pool = "min_workers = 4\nmax_workers = 20";
    let mut host = Host::start("outage-host", &redis.url(), &sim.base_url(), pool);
    let underway = support::eventually(Duration::from_secs(30), || {
        let mut conn = conn.clone();
        async move {
            let results: usize = redis::AsyncCommands::hlen(&mut conn, "captcha:results")
                .await
                .unwrap_or(0);
            results >= 60
        }
    })
    .await;
    assert!(underway, "the burst should be underway before the outage");

    redis.stop();
    let cpu_before = host.cpu_time();
    tokio::time::sleep(OUTAGE).await;
    let cpu_during = host.cpu_time() - cpu_before;
    assert_eq!(
        host.wait_exit(Duration::ZERO),
        None,
        "the host keeps running"
    );
    redis.restart();

    let accounting = support::settle(&redis.url(), TASKS, Duration::from_secs(60)).await;
    assert_eq!(accounting, Accounting::answered(TASKS));
    assert!(
        cpu_during < OUTAGE / 8,
        "the host spun while Redis was away: {cpu_during:?} of CPU in {OUTAGE:?}"
    );
    let retries = host.logged("failed to take tasks from Redis").len();
    assert!(
        (1..=10).contains(&retries),
        "takes back off (200 ms doubling to 5 s): {retries} failures logged"
    );
    let held_ticks: Vec<_> = host
        .logged("tick")
        .into_iter()
        .filter(|l| {
            l["fields"]["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("hold: queue metrics unavailable"))
        })
        .collect();
    // A tick without Redis waits at most a second to measure and a second to publish.
    assert!(
        held_ticks.len() >= 2,
        "ticks go on during the outage, and hold"
    );
    for tick in &held_ticks {
        let fields = &tick["fields"];
        let active =
            fields["workers"].as_u64().unwrap_or(0) - fields["draining"].as_u64().unwrap_or(0);
        assert!(
            fields["target"].as_u64() >= Some(active),
            "a tick without metrics scaled down: {tick}"
        );
    }
}
