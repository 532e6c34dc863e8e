//! The tick: measure, ask the policy, clamp, resize the pool, report.
//!
//! The scaler is the only place that changes the pool's size. It never acts on a policy that
//! failed (the pool keeps its size), never calls the policy when the queue cannot be measured
//! (so missing metrics can never scale the pool down), and always keeps the size within
//! `[min_workers, max_workers]`. In a dry run it measures and asks the policy as usual and
//! reports the target, but keeps the pool at a fixed size. An optional [`TickObserver`] (the
//! host's metrics) receives every tick.
//!
//! It is generic over the pool it sizes ([`Workers`]) and the queue it measures ([`Backlog`]),
//! so the same tick code drives the real pool on Redis and a simulated pool in virtual time.
//! Snapshot times come from tokio's clock, anchored to the wall clock at start, so under
//! paused time a replay's snapshots carry virtual time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::balance::BalanceCache;
use crate::gate::Gate;
use crate::metrics::{Recorder, class_index};
use crate::observe::decision::{self, Direction};
use crate::policy::reload::PolicySlot;
use crate::policy::{ErrorRates, PolicyDecision, PolicyError, Snapshot};
use crate::pool::{Counts, Pool};
use crate::queue::{Queue, QueueMeasure};
use crate::solver::ErrorClass;
use crate::status::HostStatus;

/// What the scaler needs from the pool it sizes.
pub trait Workers: Send {
    /// Forgets workers that have exited.
    fn reap(&mut self);
    fn counts(&self) -> Counts;
    /// Brings the active workers to `target`; returns the change.
    fn resize(&mut self, target: u32) -> i64;
}

/// Where the scaler measures the queue and publishes its status.
pub trait Backlog: Send {
    fn measure(&mut self) -> impl Future<Output = anyhow::Result<QueueMeasure>> + Send;
    fn publish(&mut self, status: &str, ttl: Duration) -> impl Future<Output = ()> + Send;
}

impl Workers for Pool {
    fn reap(&mut self) {
        Pool::reap(self);
    }

    fn counts(&self) -> Counts {
        Pool::counts(self)
    }

    fn resize(&mut self, target: u32) -> i64 {
        Pool::resize(self, target)
    }
}

impl Backlog for Queue {
    async fn measure(&mut self) -> anyhow::Result<QueueMeasure> {
        Ok(Queue::measure(self).await?)
    }

    async fn publish(&mut self, status: &str, ttl: Duration) {
        if let Err(e) = self.write_status(status, ttl).await {
            tracing::debug!(error = %e, "failed to publish the status");
        }
    }
}

/// How the scaler calls the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyCall {
    /// On a blocking thread, so a slow policy never stalls the workers (the host).
    Blocking,
    /// Waited for in place, for deterministic runs in virtual time (replay). The call runs on a
    /// thread of its own, outside the runtime: a guest's blocking write to stdout enters tokio
    /// inside WASI, which panics on a runtime's thread.
    Inline,
}

/// The scaler's fixed settings.
#[derive(Debug, Clone)]
pub struct ScalerSettings {
    pub host_id: String,
    pub tick: Duration,
    pub window: Duration,
    pub min_workers: u32,
    pub max_workers: u32,
    pub policy_call: PolicyCall,
}

/// What one tick saw and did; logged, published as the status, and sent to observers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TickReport {
    pub tick: u64,
    pub queue: Option<QueueMeasure>,
    pub before: Counts,
    pub target: u32,
    pub reason: String,
    /// The policy's failure class when it failed this tick.
    pub failure: Option<&'static str>,
    /// Wall-clock time the tick took, policy call included.
    pub elapsed: Duration,
}

/// Receives what each tick saw and did: the host's telemetry. Optional, so a replay in virtual
/// time runs the same scaler without one.
pub trait TickObserver: std::fmt::Debug + Send + Sync {
    /// `snapshot` is the policy's view, `None` when the queue could not be measured.
    fn observe(&self, report: &TickReport, snapshot: Option<&Snapshot>, status: &HostStatus);
}

/// Owns the pool and decides its size every tick.
#[derive(Debug)]
pub struct Scaler<P = Pool, B = Queue> {
    pub pool: P,
    queue: B,
    recorder: Arc<Recorder>,
    gate: Arc<Gate>,
    balance: Arc<BalanceCache>,
    slot: Arc<PolicySlot>,
    settings: ScalerSettings,
    tick: u64,
    last_up: Option<Instant>,
    last_down: Option<Instant>,
    /// Wall-clock time at `started`, so snapshot times follow tokio's clock.
    epoch_ms: u64,
    started: Instant,
    observer: Option<Arc<dyn TickObserver>>,
    /// In a dry run, the size the pool keeps whatever the policy says.
    dry_run: Option<u32>,
    /// The snapshot the policy saw this tick, for the observer.
    seen: Option<Snapshot>,
}

impl<P: Workers, B: Backlog> Scaler<P, B> {
    pub fn new(
        pool: P,
        queue: B,
        recorder: Arc<Recorder>,
        gate: Arc<Gate>,
        balance: Arc<BalanceCache>,
        slot: Arc<PolicySlot>,
        settings: ScalerSettings,
    ) -> Self {
        Self {
            pool,
            queue,
            recorder,
            gate,
            balance,
            slot,
            settings,
            tick: 0,
            last_up: None,
            last_down: None,
            epoch_ms: crate::clock::unix_ms(),
            started: Instant::now(),
            observer: None,
            dry_run: None,
            seen: None,
        }
    }

    /// Sends every tick to `observer` as well (the host's metrics).
    pub fn with_observer(mut self, observer: Arc<dyn TickObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Keeps the pool at `workers` whatever the policy says. The policy is still asked every
    /// tick, and its clamped target is logged, published and observed as the target.
    pub fn with_dry_run(mut self, workers: u32) -> Self {
        self.dry_run = Some(workers);
        self
    }

    /// The pool size a dry run keeps; `None` when the scaler acts on its decisions.
    pub fn dry_run(&self) -> Option<u32> {
        self.dry_run
    }

    /// Starts snapshot times at `epoch_ms` instead of the wall clock, so that a replay hands
    /// its policy the same times on every run.
    pub fn with_epoch_ms(mut self, epoch_ms: u64) -> Self {
        self.epoch_ms = epoch_ms;
        self
    }

    /// Brings the pool to its minimum (or a dry run's size) before the first tick.
    pub fn start(&mut self) {
        self.apply(self.dry_run.unwrap_or(self.settings.min_workers));
    }

    /// One full tick.
    pub async fn tick(&mut self) -> TickReport {
        let started = std::time::Instant::now();
        self.tick += 1;
        self.seen = None;
        self.pool.reap();
        let before = self.pool.counts();
        let measured = self.queue.measure().await;
        let (queue, target, reason, failure) = match measured {
            Ok(queue) => {
                let (target, reason, failure) = self.decide(queue, before).await;
                (Some(queue), target, reason, failure)
            }
            Err(e) => {
                let hold = self.clamp(before.active());
                let reason = format!("hold: queue metrics unavailable ({e})");
                (None, hold, reason, None)
            }
        };
        self.apply(self.dry_run.unwrap_or(target));
        let report = TickReport {
            tick: self.tick,
            queue,
            before,
            target,
            reason,
            failure,
            elapsed: started.elapsed(),
        };
        self.log(&report);
        self.publish(&report).await;
        report
    }

    /// Asks the policy; on failure keeps the current size.
    async fn decide(
        &mut self,
        queue: QueueMeasure,
        counts: Counts,
    ) -> (u32, String, Option<&'static str>) {
        let snapshot = self.snapshot(queue, counts);
        self.seen = Some(snapshot);
        let (policy, _) = self.slot.identity();
        let decided = self.call_policy(snapshot).await;
        match decided {
            Ok(decision) => {
                let (target, reason) = self.clamp_decision(decision);
                (target, reason, None)
            }
            Err(error) => {
                let hold = self.clamp(counts.active());
                tracing::warn!(
                    tick = self.tick, class = error.class(), %policy, %error,
                    "policy failed: keeping the worker count; the next tick uses a fresh instance"
                );
                let reason = format!("hold: policy failed ({}): {error}", error.class());
                (hold, reason, Some(error.class()))
            }
        }
    }

    async fn call_policy(&self, snapshot: Snapshot) -> Result<PolicyDecision, PolicyError> {
        let slot = self.slot.clone();
        let call = move || slot.decide(&snapshot);
        match self.settings.policy_call {
            PolicyCall::Inline => {
                std::thread::scope(|s| s.spawn(call).join()).unwrap_or_else(|_| {
                    Err(PolicyError::Trap {
                        detail: "the call panicked".into(),
                    })
                })
            }
            PolicyCall::Blocking => tokio::task::spawn_blocking(call).await.unwrap_or_else(|e| {
                Err(PolicyError::Trap {
                    detail: format!("the call panicked: {e}"),
                })
            }),
        }
    }

    fn clamp_decision(&self, decision: PolicyDecision) -> (u32, String) {
        let target = self.clamp(decision.target);
        if target == decision.target {
            return (target, decision.reason);
        }
        self.slot.record_clamp();
        tracing::warn!(
            tick = self.tick,
            wanted = decision.target,
            target,
            "policy target out of [min_workers, max_workers]: clamped"
        );
        let reason = format!("{} (asked {}, clamped)", decision.reason, decision.target);
        (target, reason)
    }

    fn clamp(&self, target: u32) -> u32 {
        target.clamp(self.settings.min_workers, self.settings.max_workers)
    }

    fn apply(&mut self, target: u32) {
        let change = self.pool.resize(target);
        let now = Instant::now();
        if change > 0 {
            self.last_up = Some(now);
        } else if change < 0 {
            self.last_down = Some(now);
        }
    }

    /// Builds the policy's view of this tick.
    pub fn snapshot(&self, queue: QueueMeasure, counts: Counts) -> Snapshot {
        let window = self.recorder.summary();
        let rate = |class: ErrorClass| window.error_rates[class_index(class)];
        let since = |at: Option<Instant>| at.map(|at| millis(at.elapsed()));
        let balance = self.balance.get();
        Snapshot {
            now_ms: self.epoch_ms + millis(self.started.elapsed()),
            tick_ms: u32_millis(self.settings.tick),
            window_ms: u32_millis(self.settings.window),
            queue_depth: queue.depth,
            oldest_task_age_ms: queue.oldest_age_ms,
            arrival_rate: window.arrival_rate,
            completion_rate: window.completion_rate,
            workers: counts.workers,
            busy: counts.busy,
            draining: counts.draining,
            utilization: counts.utilization(),
            latency_p50_ms: window.latency_p50_ms,
            latency_p95_ms: window.latency_p95_ms,
            attempts: window.attempts,
            errors: ErrorRates {
                solver_capacity: rate(ErrorClass::SolverCapacity),
                account: rate(ErrorClass::Account),
                task: rate(ErrorClass::Task),
                transport: rate(ErrorClass::Transport),
            },
            balance_usd: balance.map(|(usd, _)| usd),
            balance_age_ms: balance.map(|(_, age)| millis(age)),
            submissions_paused: self.gate.current().is_some(),
            min_workers: self.settings.min_workers,
            max_workers: self.settings.max_workers,
            since_scale_up_ms: since(self.last_up),
            since_scale_down_ms: since(self.last_down),
        }
    }

    fn log(&self, report: &TickReport) {
        let (name, _) = self.slot.identity();
        let depth = report.queue.map(|q| q.depth);
        tracing::info!(
            tick = report.tick,
            queue = depth,
            workers = report.before.workers,
            busy = report.before.busy,
            draining = report.before.draining,
            target = report.target,
            reason = %report.reason,
            direction = %Direction::of(report).as_str(),
            kind = %decision::kind(report),
            policy = %name,
            dry_run = self.dry_run.map(|_| true),
            "tick"
        );
    }

    async fn publish(&mut self, report: &TickReport) {
        let status = HostStatus::build(self, report);
        if let Some(observer) = &self.observer {
            observer.observe(report, self.seen.as_ref(), &status);
        }
        let ttl = (self.settings.tick * 3).max(Duration::from_secs(10));
        self.queue.publish(&status.to_json(), ttl).await;
    }

    pub fn settings(&self) -> &ScalerSettings {
        &self.settings
    }

    pub fn slot(&self) -> &PolicySlot {
        &self.slot
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    pub fn balance_usd(&self) -> Option<f64> {
        self.balance.get().map(|(usd, _)| usd)
    }

    pub fn policy_failures(&self) -> u64 {
        self.slot.stats().failures
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn u32_millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
