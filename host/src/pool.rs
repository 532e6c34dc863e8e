//! The set of workers: grow it, shrink it without interrupting a solve, drain it on shutdown.
//!
//! Workers are tokio tasks, cheap enough to keep hundreds. Shrinking picks idle workers first;
//! a busy worker chosen to stop finishes its task and then exits, and counts as draining until
//! it has. The pool never decides a size itself: the scaler tells it one.

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

#[derive(Debug)]
struct Handle {
    busy: Arc<AtomicBool>,
    stop: CancellationToken,
    join: JoinHandle<()>,
}

/// The workers of one host.
#[derive(Debug)]
pub struct Pool {
    ctx: Arc<WorkerContext>,
    active: Vec<Handle>,
    draining: Vec<Handle>,
}

impl Pool {
    pub fn new(ctx: Arc<WorkerContext>) -> Self {
        Self {
            ctx,
            active: Vec::new(),
            draining: Vec::new(),
        }
    }

    /// Forgets workers that have exited.
    pub fn reap(&mut self) {
        self.draining.retain(|h| !h.join.is_finished());
        self.active.retain(|h| !h.join.is_finished());
    }

    pub fn counts(&self) -> Counts {
        let busy = |hs: &[Handle]| hs.iter().filter(|h| h.busy.load(Ordering::Acquire)).count();
        let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let busy_active = busy(&self.active);
        Counts {
            workers: to_u32(self.active.len() + self.draining.len()),
            busy: to_u32(busy_active + busy(&self.draining)),
            draining: to_u32(self.draining.len()),
            busy_active: to_u32(busy_active),
        }
    }

    /// Brings the active worker count to `target`: spawns, or asks workers to stop, idle
    /// ones first. Returns the change in active workers.
    pub fn resize(&mut self, target: u32) -> i64 {
        self.reap();
        let target = usize::try_from(target).unwrap_or(usize::MAX);
        let current = self.active.len();
        if target > current {
            for _ in current..target {
                self.spawn();
            }
        } else if target < current {
            self.stop_some(current - target);
        }
        i64::try_from(target).unwrap_or(i64::MAX) - i64::try_from(current).unwrap_or(i64::MAX)
    }

    fn spawn(&mut self) {
        let busy = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let join = tokio::spawn(worker::run(self.ctx.clone(), busy.clone(), stop.clone()));
        self.active.push(Handle { busy, stop, join });
    }

    fn stop_some(&mut self, n: usize) {
        // Idle workers sort first, so they are the ones stopped when enough are idle.
        self.active
            .sort_by_key(|h| std::cmp::Reverse(!h.busy.load(Ordering::Acquire)));
        let stopping: Vec<Handle> = self.active.drain(..n).collect();
        for handle in stopping {
            handle.stop.cancel();
            self.draining.push(handle);
        }
    }

    /// Stops every worker: idle ones at once, busy ones after their task or, at `deadline`,
    /// by returning their task to the queue.
    pub async fn shutdown(mut self, deadline: Duration) {
        let n = self.active.len();
        self.stop_some(n);
        let joins: Vec<JoinHandle<()>> = self.draining.drain(..).map(|h| h.join).collect();
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

async fn futures_join_all(joins: Vec<JoinHandle<()>>) {
    for join in joins {
        if let Err(e) = join.await {
            tracing::error!(error = %e, "a worker panicked");
        }
    }
}
