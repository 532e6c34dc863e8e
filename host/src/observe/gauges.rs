//! What a scrape reads at the moment it runs: the last tick's view, and the task totals.
//!
//! [`TickGauges`] encodes the last tick's status and snapshot. A signal the tick did not have
//! (no solves in the window, a balance never read, a queue that could not be measured) is left
//! out rather than written as zero, so a dashboard shows a gap instead of a false value.
//! [`TaskCounts`] reads the recorder's totals, which workers update as they go, so task counts
//! are current to the scrape, not to the tick.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use tokio::time::Instant;

use crate::metrics::Recorder;
use crate::policy::Snapshot;
use crate::status::HostStatus;

/// The last tick as the telemetry saw it.
#[derive(Debug, Clone)]
pub struct TickView {
    pub at: Instant,
    pub status: HostStatus,
    /// The policy's view; `None` when the queue could not be measured.
    pub snapshot: Option<Snapshot>,
    /// The status as published to Redis.
    pub json: String,
}

/// The last tick, shared by the observer that writes it and the scrapes that read it.
#[derive(Debug, Default)]
pub struct Latest {
    view: Mutex<Option<TickView>>,
}

impl Latest {
    pub fn store(&self, view: TickView) {
        *self.lock() = Some(view);
    }

    pub fn get(&self) -> Option<TickView> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<TickView>> {
        // A panic while holding the lock leaves a whole view or none: keep serving it.
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Encodes the last tick: the pool, the decision, the policy and the snapshot's signals.
#[derive(Debug)]
pub struct TickGauges {
    pub latest: Arc<Latest>,
}

impl Collector for TickGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(view) = self.latest.get() else {
            return Ok(());
        };
        encode_status(&mut encoder, &view.status)?;
        if let Some(snapshot) = &view.snapshot {
            encode_signals(&mut encoder, snapshot)?;
        }
        Ok(())
    }
}

/// One gauge of the last tick: its name, its help, and its value when the tick had one.
type Reading = (&'static str, &'static str, Option<f64>);

fn encode_status(e: &mut DescriptorEncoder, s: &HostStatus) -> fmt::Result {
    let help = "Ticks run since the host started.";
    counter(e, "autoscaler_ticks", help, s.tick)?;
    let help = "Policies swapped in by hot reload.";
    counter(e, "autoscaler_policy_reloads", help, s.policy.reloads)?;
    for (name, help, value) in status_readings(s) {
        gauge(e, name, help, value)?;
    }
    let policy = [
        ("policy", s.policy.name.as_str()),
        ("hash", s.policy.hash.as_str()),
    ];
    labelled(
        e,
        "autoscaler_policy_info",
        "The policy in force.",
        &[(policy, 1.0)],
    )
}

fn status_readings(s: &HostStatus) -> [Reading; 10] {
    let flag = |on: bool| Some(if on { 1.0 } else { 0.0 });
    [
        (
            "autoscaler_workers",
            "Workers alive, draining ones included.",
            n(s.workers),
        ),
        (
            "autoscaler_busy_workers",
            "Workers holding a task.",
            n(s.busy),
        ),
        (
            "autoscaler_draining_workers",
            "Workers finishing a task before they stop.",
            n(s.draining),
        ),
        (
            "autoscaler_target_workers",
            "The target decided; in a dry run, the policy's.",
            n(s.target),
        ),
        (
            "autoscaler_min_workers",
            "pool.min_workers.",
            n(s.min_workers),
        ),
        (
            "autoscaler_max_workers",
            "pool.max_workers.",
            n(s.max_workers),
        ),
        (
            "autoscaler_dry_run",
            "1 when the pool is kept at a fixed size.",
            flag(s.dry_run),
        ),
        (
            "autoscaler_submissions_paused",
            "1 while an account error pauses submissions.",
            flag(s.paused_by.is_some()),
        ),
        (
            "autoscaler_last_tick_timestamp_seconds",
            "When the last tick ran, Unix time.",
            Some(seconds(s.last_tick_ms)),
        ),
        (
            "autoscaler_balance_usd",
            "The account balance as last read, US dollars.",
            s.balance_usd,
        ),
    ]
}

fn encode_signals(e: &mut DescriptorEncoder, s: &Snapshot) -> fmt::Result {
    for (name, help, value) in signal_readings(s) {
        gauge(e, name, help, value)?;
    }
    let rates = [
        ([("class", "solver_capacity")], s.errors.solver_capacity),
        ([("class", "account")], s.errors.account),
        ([("class", "task")], s.errors.task),
        ([("class", "transport")], s.errors.transport),
    ];
    let help = "Share of attempts over the window that failed, by error class.";
    labelled(e, "autoscaler_error_rate_ratio", help, &rates)
}

fn signal_readings(s: &Snapshot) -> [Reading; 8] {
    let secs = |ms: Option<u64>| ms.map(seconds);
    [
        (
            "autoscaler_queue_depth",
            "Tasks waiting in the queue.",
            n(s.queue_depth),
        ),
        (
            "autoscaler_oldest_task_age_seconds",
            "Age of the task at the head of the queue.",
            secs(s.oldest_task_age_ms),
        ),
        (
            "autoscaler_arrival_rate_per_second",
            "Tasks taken per second over the window.",
            Some(s.arrival_rate),
        ),
        (
            "autoscaler_completion_rate_per_second",
            "Tasks answered per second over the window.",
            Some(s.completion_rate),
        ),
        (
            "autoscaler_utilization_ratio",
            "Busy share of the active workers.",
            Some(s.utilization),
        ),
        (
            "autoscaler_solve_latency_p50_seconds",
            "Median solve time over the window.",
            secs(s.latency_p50_ms),
        ),
        (
            "autoscaler_solve_latency_p95_seconds",
            "95th percentile solve time over the window.",
            secs(s.latency_p95_ms),
        ),
        (
            "autoscaler_balance_age_seconds",
            "How old the balance reading is.",
            secs(s.balance_age_ms),
        ),
    ]
}

/// Encodes the recorder's task totals at the moment of the scrape.
#[derive(Debug)]
pub struct TaskCounts {
    pub recorder: Arc<Recorder>,
}

impl Collector for TaskCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let totals = &self.recorder.totals;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let (failed, dead) = (load(&totals.failed), load(&totals.dead_lettered));
        let outcomes = [
            ([("outcome", "success")], load(&totals.succeeded)),
            ([("outcome", "error")], failed.saturating_sub(dead)),
            ([("outcome", "dead_letter")], dead),
            ([("outcome", "requeued")], load(&totals.requeued)),
        ];
        let e = &mut encoder;
        counter(
            e,
            "autoscaler_tasks_taken",
            "Tasks taken from the queue.",
            load(&totals.taken),
        )?;
        let help = "Tasks finished by outcome: a success or error result written, moved to the \
                    dead-letter list, or returned to the queue.";
        let mut metric =
            e.encode_descriptor("autoscaler_tasks", help, None, MetricType::Counter)?;
        for (labels, value) in &outcomes {
            ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
        }
        Ok(())
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn n(count: u32) -> Option<f64> {
    Some(f64::from(count))
}

/// A gauge; left out when the tick had no value for it.
fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, value: Option<f64>) -> fmt::Result {
    let Some(value) = value else {
        return Ok(());
    };
    let metric = ConstGauge::new(value);
    metric.encode(e.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    let metric = ConstCounter::new(v);
    metric.encode(e.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A gauge with one series per label set.
fn labelled<const N: usize>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[([(&str, &str); N], f64)],
) -> fmt::Result {
    let mut metric = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}
