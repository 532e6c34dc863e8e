//! The metrics endpoint of a running host, scraped over HTTP and checked against the pool's
//! own tick reports, the results hash and the simulator's counters.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use autoscaler::config::Config;
use autoscaler::scaler::TickReport;
use autoscaler::service::RunSummary;
use autoscaler::sim::SimConfig;
use autoscaler::status::HostStatus;

use crate::support::{self, RedisServer};

/// A host running in-process with its endpoint on a free loopback port.
struct Running {
    addr: SocketAddr,
    reports: mpsc::UnboundedReceiver<TickReport>,
    pool: support::InProcess,
}

impl Running {
    fn start(mut config: Config) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
        config.metrics.listen = Some(addr);
        let (tx, reports) = mpsc::unbounded_channel();
        let pool = support::InProcess::with(config, support::api_key(), Some(tx));
        Self {
            addr,
            reports,
            pool,
        }
    }

    async fn get(&self, path: &str) -> Option<reqwest::Response> {
        reqwest::get(format!("http://{}{path}", self.addr))
            .await
            .ok()
    }

    async fn scrape(&self) -> Option<String> {
        self.get("/metrics").await?.text().await.ok()
    }

    /// The tick report the scaler sent for `tick`, waiting briefly for it to arrive.
    async fn report(&mut self, tick: u64) -> TickReport {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let report = tokio::time::timeout_at(deadline, self.reports.recv())
                .await
                .expect("the tick's report arrives")
                .expect("the host still runs");
            if report.tick == tick {
                return report;
            }
        }
    }

    async fn finish(self) -> RunSummary {
        self.pool.stop().await
    }
}

fn content_type(response: &reqwest::Response) -> Option<String> {
    let value = response.headers().get("content-type")?;
    value.to_str().ok().map(str::to_owned)
}

/// The value of the series written exactly `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The sum of every series of the metric `name`.
fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn outcome(text: &str, outcome: &str) -> Option<f64> {
    value(
        text,
        &format!("autoscaler_tasks_total{{outcome=\"{outcome}\"}}"),
    )
}

fn calls(text: &str, call: &str, result: &str) -> f64 {
    let series = format!("autoscaler_api_calls_total{{call=\"{call}\",result=\"{result}\"}}");
    value(text, &series).unwrap_or(0.0)
}

async fn push_tasks(conn: &mut redis::aio::MultiplexedConnection, prefix: &str, n: usize) {
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        let now = autoscaler::clock::unix_ms();
        let task = autoscaler::cli::commands::enqueue::synthetic(&id, "userrecaptcha", 1, now)
            .pop()
            .expect("one task");
        let mut task: serde_json::Value = serde_json::from_str(&task).expect("json");
        task["id"] = id.into();
        let _: () = conn
            .rpush("captcha:tasks", task.to_string())
            .await
            .expect("push");
    }
}

/// Scrapes every 50 ms until `check` holds for a scrape, which is returned.
async fn scrape_until(host: &Running, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(text) = host.scrape().await {
            if check(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no scrape within {timeout:?} satisfied the check; the last one:\n{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_metrics_agree_with_the_pool_and_the_results_hash() {
    const TASKS: usize = 120;
    let redis = RedisServer::start();
    let sim = support::fast_sim(SimConfig {
        solve_time: (Duration::from_millis(200), Duration::from_millis(400)),
        ..support::fast_sim_config()
    })
    .await;
    let config = support::fast_config(&redis.url(), &sim.base_url());
    let min_workers = f64::from(config.pool.min_workers);
    let mut conn = support::conn(&redis.url()).await;
    let mut host = Running::start(config);
    push_tasks(&mut conn, "obs", TASKS).await;

    // Under load: the gauges of one tick are that tick's report, as the scaler made it.
    let busy = |text: &str| value(text, "autoscaler_busy_workers").unwrap_or(0.0) > 0.0;
    let scaled = |text: &str| value(text, "autoscaler_target_workers").unwrap_or(0.0) > min_workers;
    let loaded = scrape_until(&host, Duration::from_secs(20), |t| busy(t) && scaled(t)).await;
    let tick = value(&loaded, "autoscaler_ticks_total").expect("ticks") as u64;
    let report = host.report(tick).await;
    assert_eq!(
        value(&loaded, "autoscaler_workers"),
        Some(f64::from(report.before.workers))
    );
    assert_eq!(
        value(&loaded, "autoscaler_busy_workers"),
        Some(f64::from(report.before.busy))
    );
    assert_eq!(
        value(&loaded, "autoscaler_target_workers"),
        Some(f64::from(report.target))
    );
    let depth = report.queue.expect("the queue was measured").depth;
    assert_eq!(
        value(&loaded, "autoscaler_queue_depth"),
        Some(f64::from(depth))
    );

    // Settled: task totals are what the test pushed and what the results hash holds.
    let done = |t: &str| outcome(t, "success") == Some(TASKS as f64);
    let idle = |t: &str| value(t, "autoscaler_busy_workers") == Some(0.0);
    let end = scrape_until(&host, Duration::from_secs(60), |t| done(t) && idle(t)).await;
    let results: usize = conn.hlen("captcha:results").await.expect("hlen");
    let queued: usize = conn.llen("captcha:tasks").await.expect("llen");
    assert_eq!(results, TASKS);
    assert_eq!(queued, 0);
    assert_eq!(
        value(&end, "autoscaler_tasks_taken_total"),
        Some(TASKS as f64)
    );
    assert_eq!(outcome(&end, "error"), Some(0.0));
    assert_eq!(outcome(&end, "dead_letter"), Some(0.0));
    assert_eq!(outcome(&end, "requeued"), Some(0.0));
    let solves = value(&end, "autoscaler_solve_latency_seconds_count");
    assert_eq!(solves, Some(TASKS as f64));
    let ticks = value(&end, "autoscaler_ticks_total").expect("ticks");
    assert_eq!(
        total(&end, "autoscaler_decisions_total"),
        ticks,
        "one decision a tick"
    );

    // API calls as the simulator counted them from its side.
    let stats = sim.stats();
    assert_eq!(calls(&end, "submit", "ok"), stats.submitted as f64);
    assert_eq!(stats.submitted, TASKS as u64);
    let polls = calls(&end, "poll", "ok") + calls(&end, "poll", "not_ready");
    assert_eq!(polls, stats.polls as f64);
    assert_eq!(calls(&end, "poll", "ok"), TASKS as f64);

    let summary = host.finish().await;
    assert_eq!(summary.succeeded, TASKS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_status_serve_the_status_the_host_publishes() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    let config = support::fast_config(&redis.url(), &sim.base_url());
    let key = format!("autoscaler:status:{}", config.host_id());
    let mut conn = support::conn(&redis.url()).await;
    let host = Running::start(config.clone());

    let healthy = support::eventually(Duration::from_secs(10), || async {
        let Some(response) = host.get("/healthz").await else {
            return false;
        };
        response.status() == 200 && response.text().await.ok().as_deref() == Some("ok\n")
    })
    .await;
    assert!(healthy, "/healthz never answered 200 ok");

    // The same JSON as in Redis: retry until both come from the same tick.
    let mut same = None;
    for _ in 0..100 {
        let response = host.get("/status").await.expect("/status answers");
        assert_eq!(content_type(&response).as_deref(), Some("application/json"));
        let served = response.text().await.expect("body");
        let published: Option<String> = conn.get(&key).await.expect("get");
        if published.as_deref() == Some(served.as_str()) {
            same = Some(served);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let served = same.expect("/status matches the status key in Redis");
    let status: HostStatus = serde_json::from_str(&served).expect("a host status");
    assert_eq!(status.host_id, config.host_id());
    assert_eq!(status.min_workers, config.pool.min_workers);
    assert!(!status.dry_run);

    let response = host.get("/metrics").await.expect("/metrics answers");
    let metrics_type = "text/plain; version=0.0.4; charset=utf-8";
    assert_eq!(content_type(&response).as_deref(), Some(metrics_type));
    host.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_address_in_use_stops_the_start_and_names_it() {
    let redis = RedisServer::start();
    let sim = support::fast_sim(support::fast_sim_config()).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let mut config = support::fast_config(&redis.url(), &sim.base_url());
    config.metrics.listen = Some(addr);
    let run = autoscaler::service::run(config, support::api_key(), CancellationToken::new(), None);
    let error = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the start ends")
        .expect_err("the start fails");
    let message = format!("{error:#}");
    assert!(
        message.starts_with(&format!("failed to listen on {addr} for /metrics")),
        "{message}"
    );
}
