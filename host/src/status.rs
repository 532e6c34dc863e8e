//! The status a host publishes to Redis every tick, and how `autoscaler status` shows it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::policy::PolicyStats;
use crate::scaler::{Backlog, Scaler, TickReport, Workers};

/// One host's status, as JSON under `<status_prefix><host_id>` with a TTL of three ticks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    pub host_id: String,
    pub pid: u32,
    pub tick: u64,
    /// When the tick ran, Unix milliseconds.
    pub last_tick_ms: u64,
    pub workers: u32,
    pub busy: u32,
    pub draining: u32,
    pub queue_depth: Option<u32>,
    pub target: u32,
    pub reason: String,
    pub min_workers: u32,
    pub max_workers: u32,
    pub policy: PolicyStatus,
    /// The provider code that paused submissions, while a pause is in force.
    pub paused_by: Option<String>,
    pub balance_usd: Option<f64>,
    pub tasks: TaskTotals,
    /// True when the host only reports the policy's target and keeps the pool at a fixed size.
    #[serde(default)]
    pub dry_run: bool,
}

/// The policy part of the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyStatus {
    pub name: String,
    pub hash: String,
    pub failures: u64,
    /// The class and message of the latest failure, this tick's or an earlier one.
    pub last_failure: Option<String>,
    pub reloads: u64,
    pub last_reload_error: Option<String>,
    #[serde(default)]
    pub calls: u64,
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default)]
    pub failures_by_class: BTreeMap<String, u64>,
    /// When the policy was last called, Unix milliseconds.
    #[serde(default)]
    pub last_call_ms: Option<u64>,
    /// How long that call took, in microseconds.
    #[serde(default)]
    pub last_call_micros: Option<u64>,
    /// Decisions outside `[min_workers, max_workers]` that were clamped.
    #[serde(default)]
    pub clamped: u64,
    /// Why the embedded default policy stands in for the configured file, while it does.
    #[serde(default)]
    pub fallback: Option<String>,
}

/// Tasks handled since the host started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTotals {
    pub taken: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub requeued: u64,
}

impl PolicyStatus {
    fn new(name: String, hash: String, stats: PolicyStats) -> Self {
        Self {
            name,
            hash,
            failures: stats.failures,
            last_failure: stats.last_failure,
            reloads: stats.reloads,
            last_reload_error: stats.last_reload_error,
            calls: stats.calls,
            consecutive_failures: stats.consecutive_failures,
            failures_by_class: stats.failures_by_class,
            last_call_ms: stats.last_call_at_ms,
            last_call_micros: stats.last_call_micros,
            clamped: stats.clamped,
            fallback: stats.fallback,
        }
    }
}

impl HostStatus {
    pub fn build<P: Workers, B: Backlog>(scaler: &Scaler<P, B>, report: &TickReport) -> Self {
        let (name, hash) = scaler.slot().identity();
        let stats = scaler.slot().stats();
        let totals = &scaler.recorder().totals;
        let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
        let settings = scaler.settings();
        Self {
            host_id: settings.host_id.clone(),
            pid: std::process::id(),
            tick: report.tick,
            last_tick_ms: crate::clock::unix_ms(),
            workers: report.before.workers,
            busy: report.before.busy,
            draining: report.before.draining,
            queue_depth: report.queue.map(|q| q.depth),
            target: report.target,
            reason: report.reason.clone(),
            min_workers: settings.min_workers,
            max_workers: settings.max_workers,
            policy: PolicyStatus::new(name, hash, stats),
            paused_by: scaler.gate().current().map(|p| p.code),
            balance_usd: scaler.balance_usd(),
            tasks: TaskTotals {
                taken: load(&totals.taken),
                succeeded: load(&totals.succeeded),
                failed: load(&totals.failed),
                dead_lettered: load(&totals.dead_lettered),
                requeued: load(&totals.requeued),
            },
            dry_run: scaler.dry_run().is_some(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// One row of `autoscaler status`.
    pub fn table_row(&self, now_ms: u64) -> String {
        let age = now_ms.saturating_sub(self.last_tick_ms) / 1000;
        let mode = if self.dry_run { "dry run: " } else { "" };
        let paused = self
            .paused_by
            .as_ref()
            .map_or(String::new(), |code| format!(" (paused by {code})"));
        format!(
            "{:<20} {:>7} {:>5} {:>5} {:>6} {:>4}s  {:<33} {mode}{}{paused}",
            self.host_id,
            format!("{}/{}", self.workers, self.target),
            self.busy,
            self.queue_depth.map_or("?".into(), |d| d.to_string()),
            self.tasks.succeeded + self.tasks.failed,
            age,
            format!("{} {}", self.policy.name, self.policy.hash),
            self.reason
        )
    }

    pub const TABLE_HEADER: &'static str = concat!(
        "HOST                 WRK/TGT  BUSY QUEUE   DONE   AGE  ",
        "POLICY                            REASON"
    );
}
