//! Assembling a running host from its configuration, and taking it down cleanly.
//!
//! Start-up order: connect to Redis, heartbeat, return tasks a previous run of this host left
//! in its processing list, load the policy (a bad policy or bad parameters stop the start),
//! start the dispatcher, the balance refresher and the policy watcher, then tick until the
//! stop signal.
//! Shutdown stops taking tasks, lets in-flight tasks finish up to the drain deadline (or until
//! it is cut short), returns the rest to the queue and removes nothing that is not answered;
//! with nothing left held, the host then leaves the set of live hosts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::balance::BalanceCache;
use crate::config::{Config, Misconfigured};
use crate::dispatch::Dispatcher;
use crate::gate::Gate;
use crate::heartbeat::Heartbeat;
use crate::held::Held;
use crate::metrics::Recorder;
use crate::observe::{self, ApiCalls, Telemetry};
use crate::policy::embedded::{DEFAULT_POLICY, DEFAULT_POLICY_NAME};
use crate::policy::reload::{self, PolicyLoader, PolicySlot, display_name};
use crate::policy::{Fallback, Limits, PolicyEngine, params_from_toml};
use crate::pool::Pool;
use crate::queue::{Keys, Queue};
use crate::retention::Retention;
use crate::scaler::{PolicyCall, Scaler, ScalerSettings, TickReport};
use crate::solver::{ApiKey, Client, ClientConfig};
use crate::worker::WorkerContext;

/// Tasks each idle worker may have asked for at once; more asks wait.
const REQUEST_BACKLOG: usize = 1024;

/// What a finished run did, for the demo's summary and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub ticks: u64,
    pub taken: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub peak_workers: u32,
    /// Active workers summed over ticks, times the tick length.
    pub worker_seconds: u64,
    pub scale_ups: u64,
    pub scale_downs: u64,
}

/// The policy to start with.
#[derive(Debug, Clone)]
pub enum PolicySource {
    Embedded,
    File(PathBuf),
}

/// Runs the host until `stop` is cancelled; each tick's report goes to `observer` if given.
pub async fn run(
    config: Config,
    api_key: ApiKey,
    stop: CancellationToken,
    observer: Option<mpsc::UnboundedSender<TickReport>>,
) -> anyhow::Result<RunSummary> {
    run_with(config, api_key, stop, CancellationToken::new(), observer).await
}

/// As [`run`]; cancelling `hurry` during the drain ends it at once: in-flight solves stop and
/// their tasks return to the queue.
pub async fn run_with(
    config: Config,
    api_key: ApiKey,
    stop: CancellationToken,
    hurry: CancellationToken,
    observer: Option<mpsc::UnboundedSender<TickReport>>,
) -> anyhow::Result<RunSummary> {
    let host_id = config.host_id();
    let keys = Keys::new(&config.redis, &host_id);
    let mut queue = Queue::connect(&config.redis.url, keys.clone(), None).await?;
    let loader = policy_loader(&config).map_err(misconfigured)?;
    let slot = Arc::new(
        load_policy_off_runtime(&config, &loader)
            .await
            .map_err(misconfigured)?,
    );
    let calls = ApiCalls::default();
    let client = Client::new(client_config(&config, api_key))
        .map_err(|e| misconfigured(e.into()))?
        .with_calls(calls.clone());
    let background = CancellationToken::new();
    let gate = Arc::new(Gate::default());
    let recorder = Arc::new(Recorder::new(config.pool.window));
    let telemetry = Arc::new(Telemetry::new(recorder.clone(), &calls, config.pool.tick));
    observe::start(&config.metrics, &telemetry, &background)
        .await
        .map_err(|e| misconfigured(e.into()))?;
    // Last of the start's checks, so a start that fails touches no task in Redis.
    let mut heartbeat = Heartbeat::new(queue.connection(), keys.clone(), config.pool.heartbeat_ttl);
    heartbeat.join(&mut queue).await?;
    let balance = Arc::new(BalanceCache::default());

    let (requests_tx, requests_rx) = mpsc::channel(REQUEST_BACKLOG);
    let blocking = Queue::connect(&config.redis.url, keys, Some(Duration::from_secs(1))).await?;
    let held = Arc::new(Held::default());
    let dispatcher = Dispatcher::new(blocking, requests_rx, gate.clone(), background.clone())
        .with_held(held.clone());
    let dispatcher = tokio::spawn(dispatcher.run());
    tokio::spawn(heartbeat.clone().run(held, background.clone()));
    Retention::spawn(&queue, &config.redis, &background);
    let abort = CancellationToken::new();
    tokio::spawn(cut_short(hurry, abort.clone()));
    spawn_balance(&balance, &client, &gate, &config, &background);
    spawn_watcher(&config, &slot, loader, &background);

    let ctx = Arc::new(WorkerContext {
        host_id: host_id.clone(),
        queue: queue.clone(),
        client,
        recorder: recorder.clone(),
        gate: gate.clone(),
        requests: requests_tx,
        abort,
        task_timeout: config.pool.task_timeout,
        account_pause: config.pool.account_pause,
        retry_backoff_max: config.pool.retry_backoff_max,
        unsolvable_resubmits: config.pool.unsolvable_resubmits,
    });
    let settings = ScalerSettings {
        host_id,
        tick: config.pool.tick,
        window: config.pool.window,
        min_workers: config.pool.min_workers,
        max_workers: config.pool.max_workers,
        policy_call: PolicyCall::Blocking,
    };
    let mut leftovers = queue.clone();
    let pool = Pool::new(ctx);
    let mut scaler = Scaler::new(pool, queue, recorder.clone(), gate, balance, slot, settings)
        .with_observer(telemetry);
    if let Some(workers) = config.dry_run {
        tracing::info!(
            workers,
            "dry run: the pool stays at this size; targets are only reported"
        );
        scaler = scaler.with_dry_run(workers);
    }
    let mut summary = tick_until(scaler, &stop, observer, &config).await;

    background.cancel();
    let _ = dispatcher.await;
    heartbeat.depart(&mut leftovers).await;
    let totals = &recorder.totals;
    let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
    summary.taken = load(&totals.taken);
    summary.succeeded = load(&totals.succeeded);
    summary.failed = load(&totals.failed);
    summary.dead_lettered = load(&totals.dead_lettered);
    Ok(summary)
}

/// Ticks until `stop`, then drains the pool.
async fn tick_until(
    mut scaler: Scaler,
    stop: &CancellationToken,
    observer: Option<mpsc::UnboundedSender<TickReport>>,
    config: &Config,
) -> RunSummary {
    let tick = config.pool.tick;
    let mut summary = RunSummary::default();
    scaler.start();
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let report = scaler.tick().await;
        account(&mut summary, &report, tick);
        if let Some(observer) = &observer {
            let _ = observer.send(report);
        }
    }
    tracing::info!(drain_timeout = ?config.pool.drain_timeout, "stopping: draining the pool");
    scaler.pool.shutdown(config.pool.drain_timeout).await;
    summary
}

/// Ends the drain early once `hurry` is cancelled.
async fn cut_short(hurry: CancellationToken, abort: CancellationToken) {
    hurry.cancelled().await;
    tracing::warn!("drain cut short: returning in-flight tasks to the queue");
    abort.cancel();
}

fn account(summary: &mut RunSummary, report: &TickReport, tick: Duration) {
    let active = report.before.active();
    summary.ticks += 1;
    summary.peak_workers = summary.peak_workers.max(report.target).max(active);
    summary.worker_seconds += u64::from(active) * tick.as_secs().max(1);
    if report.target > active {
        summary.scale_ups += 1;
    } else if report.target < active {
        summary.scale_downs += 1;
    }
}

/// Loads the configured policy file, or the embedded default; a file falls back to the
/// embedded default after `policy.fallback_after` failed calls in a row.
pub fn load_policy(config: &Config, loader: &PolicyLoader) -> anyhow::Result<PolicySlot> {
    let runtime = match &config.policy.file {
        None => loader.runtime(DEFAULT_POLICY_NAME, DEFAULT_POLICY),
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("failed to read policy \"{}\"", path.display()))?;
            loader.runtime(&display_name(path), &bytes)
        }
    };
    let name = config
        .policy
        .file
        .as_ref()
        .map_or(DEFAULT_POLICY_NAME.to_owned(), |p| p.display().to_string());
    let runtime = runtime.with_context(|| format!("failed to load policy \"{name}\""))?;
    tracing::info!(policy = %runtime.policy().name, hash = %runtime.policy().hash, "policy loaded");
    let slot = PolicySlot::new(runtime);
    if config.policy.file.is_none() {
        return Ok(slot);
    }
    let fallback = Fallback::prepared(config.policy.fallback_after, loader.clone());
    Ok(slot.with_fallback(fallback))
}

/// [`load_policy`] on a blocking thread, as every policy call is made: a guest that writes to
/// stdout or stderr in `configure` blocks inside WASI, which must not happen on a runtime
/// thread.
async fn load_policy_off_runtime(
    config: &Config,
    loader: &PolicyLoader,
) -> anyhow::Result<PolicySlot> {
    let (config, loader) = (config.clone(), loader.clone());
    tokio::task::spawn_blocking(move || load_policy(&config, &loader))
        .await
        .context("loading the policy panicked")?
}

/// The engine, parameters and limits every policy of this host is loaded with.
pub fn policy_loader(config: &Config) -> anyhow::Result<PolicyLoader> {
    let limits = Limits::from_config(&config.policy);
    Ok(PolicyLoader {
        engine: PolicyEngine::with_stack(limits.stack_bytes)
            .context("failed to start the policy engine")?,
        params: params_from_toml(&config.policy.params)?,
        limits,
    })
}

fn client_config(config: &Config, api_key: ApiKey) -> ClientConfig {
    let c = &config.captchaai;
    ClientConfig {
        base_url: c.url.clone(),
        api_key,
        first_poll_delay: c.first_poll_delay,
        poll_interval: c.poll_interval,
        max_polls: c.max_polls,
        http_timeout: c.http_timeout,
    }
}

fn spawn_balance(
    balance: &Arc<BalanceCache>,
    client: &Client,
    gate: &Arc<Gate>,
    config: &Config,
    stop: &CancellationToken,
) {
    let (balance, client, gate) = (balance.clone(), client.clone(), gate.clone());
    let stop = stop.clone();
    let interval = config.captchaai.balance_interval;
    let pause = config.pool.account_pause;
    tokio::spawn(async move { balance.refresh(&client, &gate, pause, interval, stop).await });
}

fn misconfigured(error: anyhow::Error) -> anyhow::Error {
    Misconfigured(error).into()
}

/// Without a policy file there is nothing to reload; SIGHUP (which would otherwise end the
/// process, and which log rotators send) is logged and ignored.
async fn ignore_hangups(stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = hangups.recv() => tracing::info!(
                "SIGHUP: no policy file to reload (the embedded policy runs); ignored"
            ),
        }
    }
}

fn spawn_watcher(
    config: &Config,
    slot: &Arc<PolicySlot>,
    loader: PolicyLoader,
    stop: &CancellationToken,
) {
    let Some(path) = config.policy.file.clone() else {
        tokio::spawn(ignore_hangups(stop.clone()));
        return;
    };
    let (slot, stop) = (slot.clone(), stop.clone());
    let debounce = config.policy.reload_debounce;
    tokio::spawn(async move {
        if let Err(e) = reload::watch(path, slot, loader, debounce, stop).await {
            tracing::error!(error = %e, "policy watcher stopped: reload needs a restart");
        }
    });
}
