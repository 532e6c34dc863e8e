//! Benchmarks of the task pipeline, each against a baseline measured in the same run.
//!
//! `cargo bench -p autoscaler --bench pipeline` runs both; `-- throughput` or `-- scale` one.
//!
//! - **throughput**: tasks per second through take → solve → write → acknowledge with an
//!   instant solver (the real dispatcher and the real result script on a private
//!   `redis-server`; the solve is a fixed token), against `redis-benchmark`'s rate for the same
//!   commands on the same server: `LMOVE` for the take, `EVALSHA` of the result script for the
//!   write and acknowledgement. Goal: at least half of what Redis itself does.
//! - **scale**: 10,000 concurrent in-flight solves of the release binary against the simulator
//!   (`autoscaler api-sim`, its own process) with realistic polling (first poll after 15 s,
//!   then every 5 s): the host's resident memory and CPU. Goal: under 256 MB and half a core.

mod common;

use common::redis_server::free_port;
use common::{Redis, wait_for_port};

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use autoscaler::cli::commands::enqueue::synthetic;
use autoscaler::config::RedisConfig;
use autoscaler::dispatch::{Dispatcher, Taken, TaskRequest};
use autoscaler::gate::Gate;
use autoscaler::queue::{Keys, Queue};
use autoscaler::task::{Task, TaskResult};

/// Tasks through the pipeline, and commands per `redis-benchmark` run.
const TASKS: usize = 100_000;
/// Concurrent workers of the pipeline, and clients of `redis-benchmark`.
const WORKERS: usize = 50;
/// In-flight solves of the scale benchmark.
const IN_FLIGHT: usize = 10_000;
/// How long the scale benchmark measures once every solve is in flight.
const SCALE_WINDOW: Duration = Duration::from_secs(30);

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if wants("throughput") {
        runtime.block_on(throughput());
    }
    if wants("scale") {
        runtime.block_on(scale());
    }
}

// ---- throughput ----

async fn throughput() {
    let redis = Redis::without_persistence();
    let baseline = redis_benchmark_rate(&redis).await;
    let pipeline = pipeline_rate(&redis).await;
    println!("throughput: {TASKS} tasks, {WORKERS} workers / clients, instant solver");
    println!("  redis-benchmark, LMOVE + EVALSHA(result script): {baseline:>9.0} tasks/s");
    println!("  pipeline, take -> solve -> write -> ack:         {pipeline:>9.0} tasks/s");
    println!("  ratio: {:.2} (goal >= 0.50)", pipeline / baseline);
}

/// Tasks per second Redis itself manages for one take and one result write per task.
async fn redis_benchmark_rate(redis: &Redis) -> f64 {
    let mut conn = connect(redis).await;
    let payload = synthetic("bench", "userrecaptcha", 1, 0).remove(0);
    fill(&mut conn, "bench:q", &vec![payload.clone(); TASKS]).await;
    let take = run_benchmark(redis, &["LMOVE", "bench:q", "bench:p", "LEFT", "RIGHT"]);
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(autoscaler::queue::COMPLETE_SCRIPT)
        .query_async(&mut conn)
        .await
        .expect("script load");
    let result = TaskResult::Success {
        token: "03A".repeat(50),
    }
    .to_json();
    let write = run_benchmark(
        redis,
        &[
            "EVALSHA", &sha, "3", "bench:r", "bench:p", "bench:i", "bench-0", &result, &payload,
            "1",
        ],
    );
    let _: () = conn
        .del(&["bench:q", "bench:p", "bench:r", "bench:i"])
        .await
        .expect("del");
    1.0 / (1.0 / take + 1.0 / write)
}

/// Runs one command `TASKS` times from `WORKERS` clients; its requests per second.
fn run_benchmark(redis: &Redis, command: &[&str]) -> f64 {
    let output = Command::new("redis-benchmark")
        .args(["-p", &redis.port().to_string(), "-q"])
        .args(["-n", &TASKS.to_string(), "-c", &WORKERS.to_string()])
        .args(command)
        .output()
        .expect("redis-benchmark must be installed (it comes with redis-server)");
    let text = String::from_utf8_lossy(&output.stdout);
    // The last line reads "<command>: 123456.79 requests per second, p50=…".
    text.split(['\r', '\n'])
        .filter_map(|line| {
            line.split_once(": ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .next_back()
        .unwrap_or_else(|| panic!("no rate in redis-benchmark's output: {text}"))
}

async fn connect(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn fill(conn: &mut redis::aio::MultiplexedConnection, key: &str, items: &[String]) {
    for batch in items.chunks(1000) {
        let _: () = conn.rpush(key, batch).await.expect("rpush");
    }
}

/// Tasks per second through the real dispatcher and result script, solved instantly.
async fn pipeline_rate(redis: &Redis) -> f64 {
    let mut conn = connect(redis).await;
    let tasks = synthetic("bench", "userrecaptcha", TASKS, 0);
    fill(&mut conn, "captcha:tasks", &tasks).await;
    let keys = Keys::new(&RedisConfig::default(), "bench");
    let queue = Queue::connect(&redis.url(), keys.clone(), None)
        .await
        .expect("queue");
    let blocking = Queue::connect(&redis.url(), keys, Some(Duration::from_secs(1)))
        .await
        .expect("queue");
    let stop = CancellationToken::new();
    let (requests, asks) = mpsc::channel(1024);
    let dispatcher = Dispatcher::new(blocking, asks, Arc::new(Gate::default()), stop.clone());

    let started = Instant::now();
    let dispatching = tokio::spawn(dispatcher.run());
    let per_worker = TASKS / WORKERS;
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| tokio::spawn(instant_worker(queue.clone(), requests.clone(), per_worker)))
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    let elapsed = started.elapsed();
    stop.cancel();
    let _ = dispatching.await;
    let answered: usize = conn.hlen("captcha:results").await.expect("hlen");
    assert_eq!(answered, per_worker * WORKERS, "every task answered once");
    answered as f64 / elapsed.as_secs_f64()
}

/// A worker whose solver answers at once: ask, parse, "solve", write and acknowledge.
async fn instant_worker(mut queue: Queue, requests: mpsc::Sender<TaskRequest>, n: usize) {
    for _ in 0..n {
        let (reply, taken) = tokio::sync::oneshot::channel();
        requests.send(reply).await.expect("dispatcher");
        let Taken { raw, claim } = taken.await.expect("a task");
        let task = Task::parse(&raw).expect("a valid task");
        let result = TaskResult::Success {
            token: format!("03A{}", "x".repeat(147)),
        };
        queue
            .complete(&raw, &task.id, &result)
            .await
            .expect("write");
        drop(claim);
    }
}

// ---- scale ----

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn scale() {
    let redis = Redis::without_persistence();
    let sim_port = free_port();
    let exe = env!("CARGO_BIN_EXE_autoscaler");
    let _sim = Process(
        Command::new(exe)
            .args(["api-sim", "--listen", &format!("127.0.0.1:{sim_port}")])
            .args(["--solve-time", "20s..40s", "--threads", "20000"])
            .args(["--balance", "100000", "--seed", "1"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the simulator"),
    );
    wait_for_port(sim_port);
    let mut conn = connect(&redis).await;
    let tasks = synthetic("bench", "userrecaptcha", IN_FLIGHT * 2, 0);
    fill(&mut conn, "captcha:tasks", &tasks).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("scale.toml");
    std::fs::write(&config, scale_toml(&redis.url(), sim_port)).expect("config");
    let host = Process(
        Command::new(exe)
            .args(["run", "--config"])
            .arg(&config)
            .env("CAPTCHAAI_KEY", "bench000bench000bench000bench000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the host"),
    );
    let pid = host.0.id();
    let ramp = Instant::now();
    wait_in_flight(&mut conn, IN_FLIGHT).await;
    let ramp = ramp.elapsed();

    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let mut peak_rss: f64 = 0.0;
    let mut min_held = usize::MAX;
    while started.elapsed() < SCALE_WINDOW {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak_rss = peak_rss.max(rss_mib(pid));
        let held: usize = conn.llen("captcha:processing:scale").await.unwrap_or(0);
        min_held = min_held.min(held);
    }
    let cores = (cpu_seconds(pid) - cpu_before) / started.elapsed().as_secs_f64();
    let answered: usize = conn.hlen("captcha:results").await.unwrap_or(0);
    println!("scale: {IN_FLIGHT} workers, solves of 20-40 s, first poll at 15 s, then every 5 s");
    println!("  ramp to {IN_FLIGHT} in flight: {ramp:.1?}");
    println!("  over {SCALE_WINDOW:?}: fewest in flight {min_held}, results written {answered}");
    println!(
        "  resident memory, peak: {peak_rss:.0} MiB (goal < 256; ratio {:.2})",
        peak_rss / 256.0
    );
    println!(
        "  cpu: {cores:.3} cores (goal < 0.5; ratio {:.2})",
        cores / 0.5
    );
}

fn scale_toml(redis_url: &str, sim_port: u16) -> String {
    format!(
        "host_id = \"scale\"\n\
         [redis]\nurl = \"{redis_url}\"\n\
         [captchaai]\nurl = \"http://127.0.0.1:{sim_port}\"\nfirst_poll_delay = \"15s\"\n\
         poll_interval = \"5s\"\nhttp_timeout = \"30s\"\n\
         [pool]\nmin_workers = {IN_FLIGHT}\nmax_workers = {IN_FLIGHT}\ntick = \"10s\"\n\
         window = \"60s\"\n"
    )
}

async fn wait_in_flight(conn: &mut redis::aio::MultiplexedConnection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held: usize = conn.llen("captcha:processing:scale").await.unwrap_or(0);
        if held >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {held} of {n} in flight after 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// User + system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of a process now, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}
