//! The simulated pool and queue that the real scaler sizes and measures during a replay.
//!
//! [`SimPool`] is a [`Roster`] of [`SimWorker`]s, so it grows, shrinks and drains by the very
//! rules of the host's pool: idle workers stop first, a busy one finishes its task and counts
//! as draining until then. [`SimBacklog`] measures the waiting tasks the replay shares with it,
//! with their age in virtual time, and drops the status the scaler publishes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::worker::SimWorker;
use crate::pool::{Counts, Roster};
use crate::queue::QueueMeasure;
use crate::scaler::{Backlog, Workers};

/// A task in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// Its index in the load.
    pub task: usize,
    /// When it was pushed, from the start of the replay.
    pub arrival: Duration,
}

/// The queue, shared by the replay (which pushes and takes) and the backlog (which measures).
#[derive(Debug, Clone, Default)]
pub struct SharedQueue(Arc<Mutex<VecDeque<Waiting>>>);

impl SharedQueue {
    /// The queue, locked.
    pub fn lock(&self) -> MutexGuard<'_, VecDeque<Waiting>> {
        // Nothing panics while holding it; a poisoned lock still holds a consistent queue.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The simulated workers.
#[derive(Debug, Default)]
pub struct SimPool {
    pub roster: Roster<SimWorker>,
}

impl Workers for SimPool {
    fn reap(&mut self) {
        self.roster.reap();
    }

    fn counts(&self) -> Counts {
        self.roster.counts()
    }

    fn resize(&mut self, target: u32) -> i64 {
        self.roster.resize(target, SimWorker::default)
    }
}

impl SimPool {
    /// Workers holding a thread: active ones and draining ones that have not exited.
    pub fn alive(&self) -> usize {
        let draining = self.roster.draining.iter();
        self.roster.active.len() + draining.filter(|w| w.held.is_some()).count()
    }

    /// Every worker, draining ones first, in a fixed order.
    pub fn all_mut(&mut self) -> impl Iterator<Item = &mut SimWorker> {
        let roster = &mut self.roster;
        roster.draining.iter_mut().chain(roster.active.iter_mut())
    }

    /// When the next worker does something.
    pub fn next_at(&self) -> Option<Duration> {
        let roster = &self.roster;
        roster
            .draining
            .iter()
            .chain(&roster.active)
            .filter_map(SimWorker::next_at)
            .min()
    }
}

/// The scaler's view of the simulated queue.
#[derive(Debug)]
pub struct SimBacklog {
    queue: SharedQueue,
    start: Instant,
}

impl SimBacklog {
    /// Measures `queue`, with ages counted from `start` (the replay's time zero).
    pub fn new(queue: SharedQueue, start: Instant) -> Self {
        Self { queue, start }
    }
}

impl Backlog for SimBacklog {
    async fn measure(&mut self) -> anyhow::Result<QueueMeasure> {
        let now = self.start.elapsed();
        let queue = self.queue.lock();
        let oldest = queue.front().map(|w| now.saturating_sub(w.arrival));
        Ok(QueueMeasure {
            depth: u32::try_from(queue.len()).unwrap_or(u32::MAX),
            oldest_age_ms: oldest.map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
        })
    }

    async fn publish(&mut self, _status: &str, _ttl: Duration) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_backlog_measures_depth_and_the_head_tasks_age() {
        let queue = SharedQueue::default();
        let mut backlog = SimBacklog::new(queue.clone(), Instant::now());
        let empty = backlog.measure().await.expect("always measurable");
        assert_eq!((empty.depth, empty.oldest_age_ms), (0, None));
        for (task, arrival) in [(0, 2), (1, 5)] {
            let arrival = Duration::from_secs(arrival);
            queue.lock().push_back(Waiting { task, arrival });
        }
        tokio::time::advance(Duration::from_secs(9)).await;
        let measured = backlog.measure().await.expect("always measurable");
        assert_eq!((measured.depth, measured.oldest_age_ms), (2, Some(7_000)));
    }

    #[test]
    fn the_pool_resizes_by_the_hosts_rules() {
        let mut pool = SimPool::default();
        assert_eq!(Workers::resize(&mut pool, 3), 3);
        assert_eq!(pool.alive(), 3);
        assert_eq!(Workers::resize(&mut pool, 1), -2);
        // Idle workers stop at once: they hold no thread.
        assert_eq!(pool.alive(), 1);
        pool.reap();
        assert_eq!(pool.counts().workers, 1);
    }
}
