//! One policy against one load: the event loop that drives the real scaler in virtual time.
//!
//! The replay owns a real [`Scaler`] over a [`SimPool`] and a [`SimBacklog`], with the policy
//! called inline. Between ticks it jumps tokio's paused clock from event to event (an arrival,
//! the end of an attempt or a backoff, a balance read), so the [`Recorder`] and the snapshot see
//! virtual time. Ticks come every `tick` from the start, after `Scaler::start` has brought the
//! pool to its minimum, exactly as the host's loop does. At the end the pool shuts down as the
//! host's does: busy workers get `pool.drain_timeout` to finish, then their tasks go back to the
//! queue.

use std::sync::Arc;
use std::time::Duration;

use super::ReplaySettings;
use super::load::Load;
use super::pool::{SharedQueue, SimBacklog, SimPool, Waiting};
use super::provider::Provider;
use super::stats::{Stats, Summary, TickRow};
use super::worker::{Desk, Done, Rules};
use crate::balance::BalanceCache;
use crate::gate::Gate;
use crate::metrics::Recorder;
use crate::policy::reload::PolicySlot;
use crate::scaler::{PolicyCall, Scaler, ScalerSettings, TickReport};

/// The wall-clock time a replay's snapshots start at (2023-11-14T22:13:20Z), so that every run
/// hands the policy the same times.
pub const REPLAY_EPOCH_MS: u64 = 1_700_000_000_000;

/// One replay in progress.
#[derive(Debug)]
pub struct Replay<'a> {
    load: &'a Load,
    settings: &'a ReplaySettings,
    provider: Provider,
    scaler: Scaler<SimPool, SimBacklog>,
    queue: SharedQueue,
    recorder: Arc<Recorder>,
    balance: Arc<BalanceCache>,
    funds: f64,
    now: Duration,
    arrived: usize,
    next_balance: Duration,
    /// Whether worker time and time over target still count (not during the final drain).
    counting: bool,
    stats: Stats,
}

impl<'a> Replay<'a> {
    /// A replay of `load` with the policy in `slot`; time zero is now on tokio's clock.
    pub fn new(load: &'a Load, settings: &'a ReplaySettings, slot: Arc<PolicySlot>) -> Self {
        let start = tokio::time::Instant::now();
        let queue = SharedQueue::default();
        let recorder = Arc::new(Recorder::new(settings.pool.window));
        let balance = Arc::new(BalanceCache::default());
        let backlog = SimBacklog::new(queue.clone(), start);
        let scaler = Scaler::new(
            SimPool::default(),
            backlog,
            recorder.clone(),
            Arc::new(Gate::default()),
            balance.clone(),
            slot,
            scaler_settings(settings),
        )
        .with_epoch_ms(REPLAY_EPOCH_MS);
        Self {
            load,
            settings,
            provider: Provider::new(load.conditions.clone(), &settings.captchaai),
            scaler,
            queue,
            recorder,
            balance,
            funds: load.conditions.balance_usd,
            now: Duration::ZERO,
            arrived: 0,
            next_balance: Duration::ZERO,
            counting: true,
            stats: Stats::default(),
        }
    }

    /// Runs the whole load, reporting progress (0 to 1) after each tick.
    pub async fn run(mut self, mut progress: impl FnMut(f64)) -> (Summary, Vec<TickRow>) {
        self.scaler.start();
        self.handle(Duration::ZERO);
        let tick = self.settings.pool.tick;
        let ticks = u32::try_from(self.load.duration.as_nanos() / tick.as_nanos()).unwrap_or(0);
        for k in 1..=ticks {
            self.run_until(tick * k).await;
            self.tick(tick * k).await;
            progress(f64::from(k) / f64::from(ticks));
        }
        self.run_until(self.load.duration).await;
        let still_waiting = self.waits_so_far();
        self.drain().await;
        self.finish(&still_waiting)
    }

    /// Processes every event up to `limit`, then moves the clock to it.
    async fn run_until(&mut self, limit: Duration) {
        while let Some(at) = self.next_event().filter(|&at| at <= limit) {
            self.advance(at).await;
            self.handle(at);
        }
        self.advance(limit).await;
    }

    fn next_event(&self) -> Option<Duration> {
        let arrival = self.load.tasks.get(self.arrived).map(|t| t.arrival);
        let worker = self.scaler.pool.next_at();
        [arrival, worker, Some(self.next_balance)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Moves the clock to `to`, counting worker time and time over target on the way.
    async fn advance(&mut self, to: Duration) {
        let Some(dt) = to.checked_sub(self.now).filter(|dt| !dt.is_zero()) else {
            return;
        };
        if self.counting {
            let head = self.queue.lock().front().map(|w| w.arrival);
            let alive = self.scaler.pool.alive();
            let target = self.settings.wait_target;
            self.stats.integrate(self.now, dt, alive, head, target);
        }
        tokio::time::advance(dt).await;
        self.now = to;
    }

    /// Everything due at `at`: workers' steps, arrivals, takes, the balance read.
    fn handle(&mut self, at: Duration) {
        self.step_workers(at);
        self.admit(at);
        self.dispatch(at);
        if at >= self.next_balance {
            self.balance.set(self.funds.max(0.0));
            self.next_balance += self.settings.captchaai.balance_interval;
        }
    }

    fn step_workers(&mut self, at: Duration) {
        let mut desk = Desk {
            provider: &self.provider,
            recorder: &self.recorder,
            tasks: &self.load.tasks,
            rules: rules(self.settings, self.load),
            funds: &mut self.funds,
        };
        for worker in self.scaler.pool.all_mut() {
            while worker.next_at().is_some_and(|next| next <= at) {
                let done = worker.step(at, &mut desk);
                count(&mut self.stats, done);
            }
        }
    }

    /// Pushes the tasks that have arrived by `at`.
    fn admit(&mut self, at: Duration) {
        let mut queue = self.queue.lock();
        while let Some(task) = self
            .load
            .tasks
            .get(self.arrived)
            .filter(|t| t.arrival <= at)
        {
            queue.push_back(Waiting {
                task: self.arrived,
                arrival: task.arrival,
            });
            self.arrived += 1;
            self.stats.arrived += 1;
        }
        self.stats.max_queue = self.stats.max_queue.max(queue.len());
    }

    /// Hands the head of the queue to idle active workers, in order.
    fn dispatch(&mut self, at: Duration) {
        let mut queue = self.queue.lock();
        let mut desk = Desk {
            provider: &self.provider,
            recorder: &self.recorder,
            tasks: &self.load.tasks,
            rules: rules(self.settings, self.load),
            funds: &mut self.funds,
        };
        let idle = self.scaler.pool.roster.active.iter_mut();
        for worker in idle.filter(|w| w.held.is_none()) {
            let Some(waiting) = queue.pop_front() else {
                break;
            };
            self.stats.waited(at - waiting.arrival);
            let done = worker.take(waiting.task, at, &mut desk);
            count(&mut self.stats, done);
        }
    }

    /// One tick of the real scaler, then the takes of any new workers.
    async fn tick(&mut self, at: Duration) {
        let report = self.scaler.tick().await;
        self.dispatch(at);
        if report.target != report.before.active() {
            self.stats.scale_actions += 1;
        }
        let row = self.row(at, report);
        self.stats.ticks.push(row);
    }

    fn row(&self, at: Duration, report: TickReport) -> TickRow {
        let oldest = report.queue.and_then(|q| q.oldest_age_ms);
        TickRow {
            at_s: at.as_secs_f64(),
            queue: report.queue.map_or(0, |q| q.depth),
            oldest_wait_s: oldest.map(|ms| ms as f64 / 1000.0),
            workers: report.before.workers,
            busy: report.before.busy,
            draining: report.before.draining,
            target: report.target,
            balance_usd: self.funds.max(0.0),
            completed: self.stats.completed,
            failed: self.stats.failed,
            reason: report.reason,
        }
    }

    /// How long each task still in the queue has waited.
    fn waits_so_far(&self) -> Vec<Duration> {
        let queue = self.queue.lock();
        queue.iter().map(|w| self.now - w.arrival).collect()
    }

    /// Shuts the pool down as the host does: every worker stops, busy ones get the drain
    /// timeout to finish, and the tasks still held then go back to the queue.
    async fn drain(&mut self) {
        self.counting = false;
        let active = self.scaler.pool.roster.active.len();
        self.scaler.pool.roster.stop_some(active);
        let deadline = self.now + self.settings.pool.drain_timeout;
        self.run_until(deadline).await;
        let mut queue = self.queue.lock();
        for worker in self.scaler.pool.all_mut() {
            if let Some(held) = worker.held.take() {
                let arrival = self.load.tasks[held.task].arrival;
                queue.push_front(Waiting {
                    task: held.task,
                    arrival,
                });
            }
        }
    }

    fn finish(self, still_waiting: &[Duration]) -> (Summary, Vec<TickRow>) {
        let stats = self.stats;
        let [p50, p95, p99] = stats.wait_quantiles(still_waiting, [0.5, 0.95, 0.99]);
        let worker_seconds = stats.worker_seconds();
        let summary = Summary {
            policy: String::new(),
            worker_seconds,
            cost_usd: worker_seconds / 3600.0 * self.settings.worker_hour_usd,
            wait_p50_s: p50,
            wait_p95_s: p95,
            wait_p99_s: p99,
            max_queue: stats.max_queue,
            over_target_s: stats.over_target().as_secs_f64(),
            scale_actions: stats.scale_actions,
            arrived: stats.arrived,
            completed: stats.completed,
            failed: stats.failed,
            left: self.queue.lock().len() as u64,
            spent_usd: self.load.conditions.balance_usd - self.funds,
            policy_failures: self.scaler.policy_failures(),
        };
        (summary, stats.ticks)
    }
}

fn count(stats: &mut Stats, done: Option<Done>) {
    match done {
        Some(Done::Succeeded) => stats.completed += 1,
        Some(Done::Failed) => stats.failed += 1,
        None => {}
    }
}

fn rules(settings: &ReplaySettings, load: &Load) -> Rules {
    Rules {
        task_timeout: settings.pool.task_timeout,
        retry_backoff_max: settings.pool.retry_backoff_max,
        unsolvable_resubmits: settings.pool.unsolvable_resubmits,
        price_per_solve_usd: load.conditions.price_per_solve_usd,
    }
}

fn scaler_settings(settings: &ReplaySettings) -> ScalerSettings {
    ScalerSettings {
        host_id: "replay".into(),
        tick: settings.pool.tick,
        window: settings.pool.window,
        min_workers: settings.pool.min_workers,
        max_workers: settings.pool.max_workers,
        policy_call: PolicyCall::Inline,
    }
}
