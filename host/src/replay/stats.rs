//! What a replay measures: per tick, and summed up into one row of the comparison table.
//!
//! Worker-seconds and the time over the wait target are integrated exactly between events
//! (not sampled at ticks). Queue waits are the time from a task's arrival to its take; a task
//! still waiting at the end counts with the wait it has had so far, so a policy cannot look
//! good by never taking work.

use std::time::Duration;

/// One tick as the CSV shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TickRow {
    /// Seconds from the start of the replay.
    pub at_s: f64,
    pub queue: u32,
    /// Wait of the task at the head of the queue, in seconds.
    pub oldest_wait_s: Option<f64>,
    pub workers: u32,
    pub busy: u32,
    pub draining: u32,
    pub target: u32,
    pub balance_usd: f64,
    pub completed: u64,
    pub failed: u64,
    pub reason: String,
}

/// One policy's row of the comparison table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub policy: String,
    pub worker_seconds: f64,
    pub cost_usd: f64,
    pub wait_p50_s: f64,
    pub wait_p95_s: f64,
    pub wait_p99_s: f64,
    pub max_queue: usize,
    pub over_target_s: f64,
    pub scale_actions: u64,
    pub arrived: u64,
    pub completed: u64,
    pub failed: u64,
    pub left: u64,
    /// Balance spent on answers.
    pub spent_usd: f64,
    pub policy_failures: u64,
}

/// Accumulates a replay's measures as it runs.
#[derive(Debug, Default)]
pub struct Stats {
    waits: Vec<Duration>,
    worker_time: Duration,
    over_target: Duration,
    pub max_queue: usize,
    pub arrived: u64,
    pub completed: u64,
    pub failed: u64,
    pub scale_actions: u64,
    pub ticks: Vec<TickRow>,
}

impl Stats {
    /// Adds `alive` workers over `dt`, and the part of `[from, from + dt]` during which the
    /// head task (arrived at `head`) had waited longer than `target`.
    pub fn integrate(
        &mut self,
        from: Duration,
        dt: Duration,
        alive: usize,
        head: Option<Duration>,
        target: Duration,
    ) {
        self.worker_time += dt * u32::try_from(alive).unwrap_or(u32::MAX);
        if let Some(head) = head {
            let over_from = (head + target).max(from);
            self.over_target += (from + dt).saturating_sub(over_from);
        }
    }

    /// A task was taken after waiting `wait`.
    pub fn waited(&mut self, wait: Duration) {
        self.waits.push(wait);
    }

    pub fn worker_seconds(&self) -> f64 {
        self.worker_time.as_secs_f64()
    }

    pub fn over_target(&self) -> Duration {
        self.over_target
    }

    /// The waits recorded so far, with `still_waiting` added, at quantiles `qs`, in seconds.
    pub fn wait_quantiles(&self, still_waiting: &[Duration], qs: [f64; 3]) -> [f64; 3] {
        let mut waits: Vec<Duration> = self.waits.iter().chain(still_waiting).copied().collect();
        waits.sort_unstable();
        qs.map(|q| nearest_rank(&waits, q).as_secs_f64())
    }
}

/// The nearest-rank quantile of sorted `values`; zero with none.
fn nearest_rank(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn time_over_target_counts_only_past_the_heads_deadline() {
        let mut stats = Stats::default();
        // Head arrived at 0 s, target 60 s: over from 60 s on.
        stats.integrate(s(50), s(20), 2, Some(s(0)), s(60));
        assert_eq!(stats.over_target(), s(10));
        stats.integrate(s(70), s(10), 2, None, s(60));
        assert_eq!(stats.over_target(), s(10));
        assert_eq!(stats.worker_seconds(), 60.0);
    }

    #[test]
    fn quantiles_are_nearest_rank_and_include_tasks_still_waiting() {
        let mut stats = Stats::default();
        for wait in 1..=99 {
            stats.waited(s(wait));
        }
        assert_eq!(
            stats.wait_quantiles(&[], [0.5, 0.95, 0.99]),
            [50.0, 95.0, 99.0]
        );
        let [_, _, p99] = stats.wait_quantiles(&[s(500)], [0.5, 0.95, 0.99]);
        assert_eq!(p99, 99.0);
        let [p50, ..] = Stats::default().wait_quantiles(&[], [0.5, 0.95, 0.99]);
        assert_eq!(p50, 0.0);
    }
}
