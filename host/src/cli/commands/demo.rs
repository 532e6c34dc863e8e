//! `autoscaler demo`: watch the pool scale up under a burst and back down, in about a minute.
//!
//! Everything is real except the provider: a simulator speaking the CaptchaAI protocol runs
//! in-process on a free loopback port with fast solve times. The pool uses the local Redis
//! (or `REDIS_URL`) under keys of its own, runs the embedded default policy with a one-second
//! tick, and ends with a summary whose `lost` must be 0. The demo's keys are deleted at the end.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cli::CliError;
use crate::cli::commands::enqueue::synthetic;
use crate::config::{
    CaptchaAiConfig, Config, DEFAULT_REDIS_URL, MetricsConfig, PolicyConfig, PoolConfig,
    RedisConfig,
};
use crate::queue::{Keys, Queue};
use crate::scaler::TickReport;
use crate::service::RunSummary;
use crate::sim::{SimConfig, SimHandle};
use crate::solver::ApiKey;

/// The API key the demo's simulator accepts (32 characters, like a real one).
const DEMO_KEY: &str = "demo0000demo0000demo0000demo0000";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Tasks per wave.
    #[arg(long, default_value_t = 120)]
    pub wave: usize,
    /// Number of waves, eight seconds apart.
    #[arg(long, default_value_t = 3)]
    pub waves: usize,
    /// The most workers the pool may run (at least 1).
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_workers: u32,
    /// Give up after this long if the pool has not drained.
    #[arg(long, default_value = "120s", value_parser = crate::cli::parse_duration)]
    pub timeout: Duration,
}

/// What the demo counted in Redis at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoCount {
    pub pushed: u64,
    pub results: u64,
    pub dead: u64,
    pub left: u64,
}

impl DemoCount {
    pub fn lost(&self) -> u64 {
        self.pushed
            .saturating_sub(self.results + self.dead + self.left)
    }
}

pub async fn execute(args: DemoArgs) -> Result<(), CliError> {
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_REDIS_URL.into());
    let sim = crate::sim::start(SocketAddr::from(([127, 0, 0, 1], 0)), sim_config()).await?;
    let config = demo_config(&redis_url, &sim, args.max_workers);
    let keys = Keys::new(&config.redis, &config.host_id());
    let mut queue = Queue::connect(&redis_url, keys.clone(), None)
        .await
        .map_err(|e| CliError::Failed(e.context("the demo needs a Redis server")))?;
    clear(&mut queue).await;
    println!(
        "demo: Redis {redis_url}, simulated CaptchaAI at {}, policy threshold (embedded), \
         {} waves of {} tasks",
        sim.base_url(),
        args.waves,
        args.wave
    );
    let outcome = drive(&config, &mut queue, &args).await;
    let count = count(&mut queue, outcome.as_ref().map_or(0, |(p, _)| *p)).await;
    clear(&mut queue).await;
    sim.shutdown().await;
    let (_, summary) = outcome?;
    print_summary(&summary, count);
    if count.lost() > 0 {
        return Err(CliError::Failed(anyhow::anyhow!(
            "{} tasks were lost",
            count.lost()
        )));
    }
    Ok(())
}

/// Runs the pool, pushes the waves, prints each tick, and stops once the pool has drained.
async fn drive(
    config: &Config,
    queue: &mut Queue,
    args: &DemoArgs,
) -> Result<(u64, RunSummary), CliError> {
    let stop = CancellationToken::new();
    let (observer, mut reports) = mpsc::unbounded_channel();
    let run = tokio::spawn(crate::service::run(
        config.clone(),
        ApiKey::new(DEMO_KEY),
        stop.clone(),
        Some(observer),
    ));
    let started = Instant::now();
    let mut pushed = 0u64;
    let mut waves_left = args.waves;
    let mut next_wave = started + Duration::from_secs(2);
    let min = config.pool.min_workers;
    let interrupted = interruption();
    tokio::pin!(interrupted);
    loop {
        let report = tokio::select! {
            report = reports.recv() => match report {
                Some(report) => report,
                None => break,
            },
            () = &mut interrupted => {
                println!("        >>> interrupted: draining, then deleting the demo's keys");
                break;
            }
        };
        if waves_left > 0 && Instant::now() >= next_wave {
            pushed += push_wave(queue, args.wave, args.waves - waves_left).await?;
            waves_left -= 1;
            next_wave += Duration::from_secs(8);
        }
        print_tick(started, &report);
        let drained = waves_left == 0 && report.queue.is_some_and(|q| q.depth == 0);
        let settled =
            report.before.busy == 0 && report.target == min && report.before.workers == min;
        if (drained && settled) || started.elapsed() > args.timeout {
            break;
        }
    }
    stop.cancel();
    let summary = run
        .await
        .map_err(|e| CliError::Failed(e.into()))?
        .map_err(CliError::Failed)?;
    Ok((pushed, summary))
}

/// The first Ctrl-C or SIGTERM. The demo then stops as the host does and still deletes its
/// keys; later signals are caught too, so the clean-up is never cut short.
async fn interruption() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terms) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terms.recv() => {}
    }
}

async fn push_wave(queue: &mut Queue, size: usize, wave: usize) -> Result<u64, CliError> {
    let tasks = synthetic(
        &format!("demo-w{wave}"),
        "userrecaptcha",
        size,
        crate::clock::unix_ms(),
    );
    queue
        .push(&tasks)
        .await
        .map_err(|e| CliError::Failed(anyhow::anyhow!("failed to push the demo tasks: {e}")))?;
    println!("        >>> pushed {size} tasks");
    Ok(u64::try_from(size).unwrap_or(u64::MAX))
}

fn print_tick(started: Instant, report: &TickReport) {
    let depth = report.queue.map_or("?".into(), |q| q.depth.to_string());
    println!(
        "{:>5.0}s  queue {:>4}  workers {:>3} -> {:<3} busy {:>3}  {}",
        started.elapsed().as_secs_f64(),
        depth,
        report.before.active(),
        report.target,
        report.before.busy,
        report.reason
    );
}

fn print_summary(summary: &RunSummary, count: DemoCount) {
    println!();
    println!("summary");
    println!("  tasks in        {}", count.pushed);
    println!("  results out     {}", count.results);
    println!("  dead letters    {}", count.dead);
    println!("  left in queue   {}", count.left);
    println!("  lost            {}", count.lost());
    println!("  peak workers    {}", summary.peak_workers);
    println!("  worker-seconds  {}", summary.worker_seconds);
    println!(
        "  scale events    {} up, {} down",
        summary.scale_ups, summary.scale_downs
    );
}

async fn count(queue: &mut Queue, pushed: u64) -> DemoCount {
    let results = queue.result_count().await.unwrap_or(0);
    let dead = queue.dead_letter_count().await.unwrap_or(0);
    let in_processing = queue.in_processing().await.unwrap_or(0);
    let depth = queue.measure().await.map_or(0, |m| m.depth);
    DemoCount {
        pushed,
        results: u64::from(results),
        dead: u64::from(dead),
        left: u64::from(in_processing + depth),
    }
}

async fn clear(queue: &mut Queue) {
    if let Err(e) = queue.delete_all().await {
        tracing::warn!(error = %e, "failed to delete the demo's keys");
    }
}

fn sim_config() -> SimConfig {
    SimConfig {
        solve_time: (Duration::from_millis(600), Duration::from_millis(1800)),
        threads: 200,
        balance_usd: 100.0,
        ..SimConfig::default()
    }
}

/// A one-second tick and a five-second scale-down window, so the whole show fits a minute.
fn demo_config(redis_url: &str, sim: &SimHandle, max_workers: u32) -> Config {
    let pid = std::process::id();
    let prefix = format!("autoscaler-demo:{pid}:");
    let redis = RedisConfig {
        url: redis_url.to_owned(),
        queue: format!("{prefix}tasks"),
        results: format!("{prefix}results"),
        processing_prefix: format!("{prefix}processing:"),
        dead_letter: format!("{prefix}dead"),
        ..RedisConfig::default()
    };
    let captchaai = CaptchaAiConfig {
        url: sim.base_url(),
        first_poll_delay: Duration::from_millis(300),
        poll_interval: Duration::from_millis(300),
        http_timeout: Duration::from_secs(5),
        balance_interval: Duration::from_secs(5),
        ..CaptchaAiConfig::default()
    };
    let pool = PoolConfig {
        min_workers: 1,
        max_workers,
        tick: Duration::from_secs(1),
        window: Duration::from_secs(10),
        task_timeout: Duration::from_secs(60),
        drain_timeout: Duration::from_secs(10),
        ..PoolConfig::default()
    };
    let policy = PolicyConfig {
        params: BTreeMap::from([("down_window_s".to_owned(), toml::Value::Integer(5))]),
        ..PolicyConfig::default()
    };
    Config {
        host_id: Some(format!("demo-{pid}")),
        redis,
        captchaai,
        pool,
        policy,
        metrics: MetricsConfig::off(),
        dry_run: None,
    }
}
