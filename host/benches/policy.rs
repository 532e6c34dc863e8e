//! What a policy costs the host, measured against what the host already pays.
//!
//! Run with `cargo bench -p autoscaler --bench policy` (a release build; it starts a private
//! `redis-server` on a free loopback port). It measures, in the same run:
//!
//! - one Redis `LLEN` round trip on loopback, the cheapest thing a tick already does;
//! - one policy tick: a policy deciding a snapshot through the policy slot, with every limit
//!   on (epoch deadline, memory limiter, log budget, state and reason bounds), as the scaler
//!   calls it: the `static` policy (the host's own cost: it does next to nothing) and the
//!   embedded threshold policy on a quiet tick and on a busy one (a backlog and a scale-up,
//!   whose reason the policy formats). Each is shown as a fraction of the round trip;
//! - reload latency: from the rename of a policy file to the new policy's first decision (its
//!   trial on the last snapshot), for new bytes (compiled) and for bytes already in the
//!   compile cache, with `policy.reload_debounce` set to zero so the figure is the host's own.
//!
//! The process exits non-zero if the host's own cost or the default policy's quiet tick is a
//! tenth of the round trip or more.

mod common;

use common::Redis;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoscaler::policy::embedded::{DEFAULT_POLICY, built_policy_path};
use autoscaler::policy::reload::{self, PolicyLoader, PolicySlot};
use autoscaler::policy::{ErrorRates, Limits, PolicyEngine, Snapshot};
use tokio_util::sync::CancellationToken;

/// Samples per call measurement, after as many warm-up calls.
const CALLS: usize = 20_000;
/// Reloads per reload measurement.
const RELOADS: usize = 20;

fn main() -> ExitCode {
    let redis = Redis::without_persistence();
    let llen = measure_llen(&redis.url());
    println!("llen round trip (loopback)       {llen}");
    let fixed = std::fs::read(built_policy_path("static")).expect("built static policy");
    let ticks = [
        ("tick, static (host's own cost)", &fixed[..], busy()),
        ("tick, threshold, quiet", DEFAULT_POLICY, quiet()),
        ("tick, threshold, busy", DEFAULT_POLICY, busy()),
    ];
    let mut ratios = Vec::new();
    for (name, bytes, snapshot) in ticks {
        let tick = measure_tick(bytes, &snapshot);
        let ratio = tick.median.as_secs_f64() / llen.median.as_secs_f64();
        println!("{name:<32} {tick}   {ratio:.3} of the round trip");
        ratios.push(ratio);
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (fresh, cached) = runtime.block_on(measure_reloads());
    println!("reload, new bytes (compiled)     {fresh}");
    println!("reload, bytes in the cache       {cached}");
    if ratios[..2].iter().all(|&ratio| ratio < 0.1) {
        ExitCode::SUCCESS
    } else {
        println!("a policy tick costs a tenth of a Redis round trip or more");
        ExitCode::FAILURE
    }
}

/// A sorted set of samples, shown as its median and 99th percentile.
struct Samples(Vec<Duration>);

struct Summary {
    median: Duration,
    p99: Duration,
}

impl Samples {
    fn summary(mut self) -> Summary {
        self.0.sort();
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q) as usize];
        Summary {
            median: at(0.5),
            p99: at(0.99),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "median {:>10.1?}   p99 {:>10.1?}", self.median, self.p99)
    }
}

/// Times `call` `CALLS` times after as many warm-up calls.
fn time_calls(mut call: impl FnMut()) -> Summary {
    for _ in 0..CALLS {
        call();
    }
    let samples = (0..CALLS)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect();
    Samples(samples).summary()
}

fn measure_llen(url: &str) -> Summary {
    let mut conn = redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("connect to the bench's redis");
    time_calls(|| {
        let depth: u64 = redis::cmd("LLEN")
            .arg("captcha:tasks")
            .query(&mut conn)
            .expect("LLEN");
        std::hint::black_box(depth);
    })
}

fn loader() -> PolicyLoader {
    PolicyLoader {
        engine: PolicyEngine::new().expect("policy engine"),
        params: Vec::new(),
        limits: Limits::default(),
    }
}

fn measure_tick(bytes: &[u8], snapshot: &Snapshot) -> Summary {
    let runtime = loader().runtime("policy", bytes).expect("the policy loads");
    let slot = PolicySlot::new(runtime);
    time_calls(|| {
        let decision = slot.decide(snapshot).expect("the policy decides");
        std::hint::black_box(decision);
    })
}

/// A quiet tick: an empty queue and idle workers.
fn quiet() -> Snapshot {
    Snapshot {
        queue_depth: 0,
        oldest_task_age_ms: None,
        busy: 0,
        utilization: 0.0,
        latency_p50_ms: None,
        latency_p95_ms: None,
        ..busy()
    }
}

/// A busy tick: a backlog, most workers busy, some latency and errors.
fn busy() -> Snapshot {
    Snapshot {
        now_ms: 1_764_859_200_000,
        tick_ms: 10_000,
        window_ms: 60_000,
        queue_depth: 140,
        oldest_task_age_ms: Some(12_000),
        arrival_rate: 3.5,
        completion_rate: 2.8,
        workers: 12,
        busy: 11,
        draining: 0,
        utilization: 11.0 / 12.0,
        latency_p50_ms: Some(18_000),
        latency_p95_ms: Some(41_000),
        attempts: 160,
        errors: ErrorRates {
            solver_capacity: 0.0,
            account: 0.0,
            task: 0.01,
            transport: 0.02,
        },
        balance_usd: Some(25.0),
        balance_age_ms: Some(30_000),
        submissions_paused: false,
        min_workers: 1,
        max_workers: 50,
        since_scale_up_ms: Some(40_000),
        since_scale_down_ms: None,
    }
}

/// Reload latency for new bytes and for cached bytes.
async fn measure_reloads() -> (Summary, Summary) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("policy.wasm");
    let base = std::fs::read(built_policy_path("static")).expect("built static policy");
    std::fs::write(&path, &base).expect("write the policy");
    let loader = loader();
    let runtime = loader.runtime("policy.wasm", &base).expect("loads");
    let slot = Arc::new(PolicySlot::new(runtime));
    slot.decide(&busy())
        .expect("a first decision: the last snapshot");
    let stop = CancellationToken::new();
    let watcher = tokio::spawn(reload::watch(
        path.clone(),
        slot.clone(),
        loader.clone(),
        Duration::ZERO,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let fresh = (0..RELOADS).map(|n| tagged(&base, n)).collect::<Vec<_>>();
    let fresh = time_reloads(&path, &slot, &fresh).await;
    let seen = [tagged(&base, 0), tagged(&base, 1)];
    let cycle: Vec<Vec<u8>> = (0..RELOADS).map(|n| seen[n % 2].clone()).collect();
    let cached = time_reloads(&path, &slot, &cycle).await;
    stop.cancel();
    let _ = watcher.await;
    (fresh, cached)
}

/// Renames each of `versions` over `path` and times it until the slot has swapped it in.
async fn time_reloads(path: &Path, slot: &PolicySlot, versions: &[Vec<u8>]) -> Summary {
    let temp = path.with_extension("wasm.tmp");
    let mut samples = Vec::new();
    for bytes in versions {
        std::fs::write(&temp, bytes).expect("write the new version");
        let reloads = slot.stats().reloads;
        let started = Instant::now();
        std::fs::rename(&temp, path).expect("rename over the policy");
        while slot.stats().reloads == reloads {
            assert!(started.elapsed() < Duration::from_secs(10), "no reload");
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        samples.push(started.elapsed());
        // Let the watcher go back to waiting before the next rename.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Samples(samples).summary()
}

/// `component` with a custom section that makes its bytes (and hash) unique to `n`.
fn tagged(component: &[u8], n: usize) -> Vec<u8> {
    let name = b"bench";
    let payload = n.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    let mut bytes = component.to_vec();
    bytes.extend([0x00, u8::try_from(size).expect("small section")]);
    bytes.push(u8::try_from(name.len()).expect("short name"));
    bytes.extend(name);
    bytes.extend(payload);
    bytes
}
