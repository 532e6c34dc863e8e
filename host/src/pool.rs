//! The set of workers: grow it, shrink it without interrupting a solve, drain it on shutdown.
//!
//! Workers are tokio tasks, cheap enough to keep hundreds. Shrinking picks idle workers first;
//! a busy worker chosen to stop finishes its task and then exits, and counts as draining until
//! it has. The pool never decides a size itself: the scaler tells it one.
//!
//! Those sizing and draining rules live in [`Roster`], generic over its [`Member`]s, so a
//! replay's simulated workers (`replay::pool`) grow, shrink and drain by the same code.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::worker::{self, WorkerContext};

/// How many workers are doing what, right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Workers alive, including draining ones.
    pub workers: u32,
    /// Workers holding a task.
    pub busy: u32,
    /// Workers asked to stop that are finishing their task.
    pub draining: u32,
    /// Busy workers that are not draining.
    pub busy_active: u32,
}

impl Counts {
    /// Workers that will take another task.
    pub fn active(&self) -> u32 {
        self.workers - self.draining
    }

    /// Busy share of the active workers, 0.0 with none; draining workers count in neither.
    pub fn utilization(&self) -> f64 {
        match self.active() {
            0 => 0.0,
            active => f64::from(self.busy_active.min(active)) / f64::from(active),
        }
    }
}

/// A worker as the sizing rules see it.
pub trait Member {
    /// Whether it holds a task.
    fn is_busy(&self) -> bool;
    /// Whether it has exited.
    fn is_finished(&self) -> bool;
    /// Asks it to stop: an idle worker exits, a busy one finishes its task first.
    fn stop(&mut self);
}

/// Active and draining workers, and the rules that grow and shrink them.
#[derive(Debug)]
pub struct Roster<M> {
    /// Workers that take tasks.
    pub active: Vec<M>,
    /// Workers asked to stop that have not exited yet.
    pub draining: Vec<M>,
}

impl<M> Default for Roster<M> {
    fn default() -> Self {
        Self {
            active: Vec::new(),
            draining: Vec::new(),
        }
    }
}

impl<M: Member> Roster<M> {
    /// Forgets workers that have exited.
    pub fn reap(&mut self) {
        self.draining.retain(|m| !m.is_finished());
        self.active.retain(|m| !m.is_finished());
    }

    pub fn counts(&self) -> Counts {
        let busy = |ms: &[M]| ms.iter().filter(|m| m.is_busy()).count();
        let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let busy_active = busy(&self.active);
        Counts {
            workers: to_u32(self.active.len() + self.draining.len()),
            busy: to_u32(busy_active + busy(&self.draining)),
            draining: to_u32(self.draining.len()),
            busy_active: to_u32(busy_active),
        }
    }

    /// Brings the active worker count to `target`: adds workers made by `spawn`, or asks
    /// workers to stop, idle ones first. Returns the change in active workers.
    pub fn resize(&mut self, target: u32, mut spawn: impl FnMut() -> M) -> i64 {
        self.reap();
        let target = usize::try_from(target).unwrap_or(usize::MAX);
        let current = self.active.len();
        if target > current {
            self.active.extend((current..target).map(|_| spawn()));
        } else if target < current {
            self.stop_some(current - target);
        }
        i64::try_from(target).unwrap_or(i64::MAX) - i64::try_from(current).unwrap_or(i64::MAX)
    }

    /// Asks `n` active workers to stop, idle ones first, and moves them to draining.
    pub fn stop_some(&mut self, n: usize) {
        // Idle workers sort first, so they are the ones stopped when enough are idle.
        self.active.sort_by_key(|m| m.is_busy());
        let n = n.min(self.active.len());
        let stopping: Vec<M> = self.active.drain(..n).collect();
        for mut member in stopping {
            member.stop();
            self.draining.push(member);
        }
    }
}

#[derive(Debug)]
struct Handle {
    busy: Arc<AtomicBool>,
    stop: CancellationToken,
    join: JoinHandle<()>,
}

impl Member for Handle {
    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    fn stop(&mut self) {
        self.stop.cancel();
    }
}

/// The workers of one host.
#[derive(Debug)]
pub struct Pool {
    ctx: Arc<WorkerContext>,
    roster: Roster<Handle>,
}

impl Pool {
    pub fn new(ctx: Arc<WorkerContext>) -> Self {
        Self {
            ctx,
            roster: Roster::default(),
        }
    }

    /// Forgets workers that have exited.
    pub fn reap(&mut self) {
        self.roster.reap();
    }

    pub fn counts(&self) -> Counts {
        self.roster.counts()
    }

    /// Brings the active worker count to `target`: spawns, or asks workers to stop, idle
    /// ones first. Returns the change in active workers.
    pub fn resize(&mut self, target: u32) -> i64 {
        let ctx = &self.ctx;
        self.roster.resize(target, || spawn(ctx))
    }

    /// Stops every worker: idle ones at once, busy ones after their task or, at `deadline`,
    /// by returning their task to the queue.
    pub async fn shutdown(mut self, deadline: Duration) {
        let n = self.roster.active.len();
        self.roster.stop_some(n);
        let joins: Vec<JoinHandle<()>> = self.roster.draining.drain(..).map(|h| h.join).collect();
        let all = futures_join_all(joins);
        tokio::pin!(all);
        if tokio::time::timeout(deadline, &mut all).await.is_err() {
            tracing::warn!(
                ?deadline,
                "drain deadline reached: returning in-flight tasks to the queue"
            );
            self.ctx.abort.cancel();
            all.await;
        }
    }
}

/// Starts one worker task.
fn spawn(ctx: &Arc<WorkerContext>) -> Handle {
    let busy = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let join = tokio::spawn(worker::run(ctx.clone(), busy.clone(), stop.clone()));
    Handle { busy, stop, join }
}

async fn futures_join_all(joins: Vec<JoinHandle<()>>) {
    for join in joins {
        if let Err(e) = join.await {
            tracing::error!(error = %e, "a worker panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker that is busy or not, and exits once stopped while idle.
    #[derive(Debug)]
    struct Fake {
        busy: bool,
        stopped: bool,
    }

    impl Member for Fake {
        fn is_busy(&self) -> bool {
            self.busy
        }

        fn is_finished(&self) -> bool {
            self.stopped && !self.busy
        }

        fn stop(&mut self) {
            self.stopped = true;
        }
    }

    fn roster(busy: &[bool]) -> Roster<Fake> {
        let mut roster = Roster::default();
        let mut flags = busy.iter();
        roster.resize(busy.len() as u32, || Fake {
            busy: *flags.next().unwrap_or(&false),
            stopped: false,
        });
        roster
    }

    #[test]
    fn shrinking_stops_idle_workers_before_busy_ones() {
        let mut roster = roster(&[true, false, true, false]);
        assert_eq!(
            roster.resize(1, || unreachable!("no spawn when shrinking")),
            -3
        );
        roster.reap();
        // The two idle workers exited; one busy worker drains, one stays active.
        let counts = roster.counts();
        assert_eq!((counts.workers, counts.busy, counts.draining), (2, 2, 1));
        assert_eq!(counts.active(), 1);
        assert!(roster.active[0].busy);
    }

    #[test]
    fn a_draining_worker_counts_until_it_finishes_its_task() {
        let mut roster = roster(&[true, true]);
        roster.resize(1, || unreachable!("no spawn when shrinking"));
        assert_eq!(roster.counts().draining, 1);
        roster.draining[0].busy = false;
        roster.reap();
        assert_eq!(roster.counts().workers, 1);
        assert_eq!(roster.counts().utilization(), 1.0);
    }
}
