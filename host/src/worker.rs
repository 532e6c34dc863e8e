//! One worker: ask for a task, solve it, write its result, repeat until told to stop.
//!
//! A worker checks its stop signal only while idle, so scaling down never interrupts a solve.
//! Only the pool-wide abort (the end of a shutdown's drain) cuts a solve short, and then the
//! task goes back to the head of the queue; a task another host reclaimed (its claim is lost)
//! is dropped at once. Each error class gets its action: retry with backoff, fail the task with
//! an error result, or pause the whole pool and requeue. An outcome is written only while this
//! host still holds the task, so a reclaimed task is answered by the host that holds it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dispatch::{Taken, TaskRequest};
use crate::gate::Gate;
use crate::metrics::Recorder;
use crate::queue::{Completion, Queue};
use crate::solver::{Action, Client, SolveError};
use crate::task::{BAD_TASK_ERROR, BadTask, Task, TaskResult};

/// The error code of a task whose deadline passed before it could be solved.
pub const DEADLINE_ERROR: &str = "ERROR_DEADLINE_EXCEEDED";
/// First wait before retrying a task after a retryable error; it doubles up to the maximum.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between attempts to write a result while Redis is away.
const WRITE_RETRY_MAX: Duration = Duration::from_secs(5);

/// What every worker shares.
#[derive(Debug)]
pub struct WorkerContext {
    pub host_id: String,
    pub queue: Queue,
    pub client: Client,
    pub recorder: Arc<Recorder>,
    pub gate: Arc<Gate>,
    pub requests: mpsc::Sender<TaskRequest>,
    /// Cancelled at the end of a shutdown's drain: in-flight tasks are requeued.
    pub abort: CancellationToken,
    pub task_timeout: Duration,
    pub account_pause: Duration,
    pub retry_backoff_max: Duration,
    /// Times a task the provider called unsolvable is submitted again before it fails.
    pub unsolvable_resubmits: u32,
}

/// The waits between one task's attempts after retryable errors: doubling from
/// [`RETRY_FIRST`] up to `pool.retry_backoff_max`, and never shorter than the wait the provider
/// asked for (`ERROR_NO_SLOT_AVAILABLE`'s 5 s, an HTTP `Retry-After`) unless that passes the
/// maximum. The host's workers and the replay's follow the same waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Self {
        Self {
            next: RETRY_FIRST.min(max),
            max,
        }
    }

    /// The wait before the next attempt after `error`; each call doubles the next one.
    pub fn after(&mut self, error: &SolveError) -> Duration {
        let asked = error.retry_after().unwrap_or_default();
        let wait = self.next.max(asked).min(self.max);
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

/// What one worker does with one task.
enum Outcome {
    Answer {
        id: String,
        result: TaskResult,
    },
    DeadLetter {
        reason: String,
    },
    Requeue,
    /// Another host reclaimed the task: give it back if it is still here, else let it go.
    Lost,
}

/// Runs one worker until `stop` is cancelled while it is idle.
pub async fn run(ctx: Arc<WorkerContext>, busy: Arc<AtomicBool>, stop: CancellationToken) {
    while let Some(Taken { raw, claim }) = next_task(&ctx, &stop).await {
        busy.store(true, Ordering::Release);
        ctx.recorder.taken();
        let outcome = tokio::select! {
            outcome = handle(&ctx, &raw) => outcome,
            _ = ctx.abort.cancelled() => Outcome::Requeue,
            _ = claim.lost().cancelled() => Outcome::Lost,
        };
        finish(&ctx, &raw, outcome).await;
        drop(claim);
        busy.store(false, Ordering::Release);
    }
}

/// Asks the dispatcher for a task; `None` once the worker should stop.
async fn next_task(ctx: &WorkerContext, stop: &CancellationToken) -> Option<Taken> {
    let (reply, task) = tokio::sync::oneshot::channel();
    tokio::select! {
        _ = stop.cancelled() => return None,
        sent = ctx.requests.send(reply) => sent.ok()?,
    }
    tokio::select! {
        _ = stop.cancelled() => None,
        taken = task => taken.ok(),
    }
}

async fn handle(ctx: &WorkerContext, raw: &[u8]) -> Outcome {
    match Task::parse(raw) {
        Ok(task) => solve(ctx, task).await,
        Err(BadTask::Answerable { id, reason }) => {
            tracing::warn!(task_id = %id, %reason, "bad task answered with an error result");
            Outcome::Answer {
                id,
                result: TaskResult::Error {
                    error: BAD_TASK_ERROR.into(),
                },
            }
        }
        Err(BadTask::Unanswerable { reason }) => {
            tracing::warn!(%reason, "input without an id moved to the dead-letter list");
            Outcome::DeadLetter { reason }
        }
    }
}

/// Solves one task, retrying what may pass, until an answer, a task error or the deadline.
async fn solve(ctx: &WorkerContext, task: Task) -> Outcome {
    let deadline = deadline_of(&task, ctx.task_timeout);
    let mut backoff = Backoff::new(ctx.retry_backoff_max);
    let mut resubmits = 0;
    loop {
        if ctx.gate.current().is_some() {
            return Outcome::Requeue;
        }
        let started = Instant::now();
        let error = match ctx.client.solve(&task.method, &task.params, deadline).await {
            Ok(token) => {
                ctx.recorder.solved(started.elapsed());
                let result = TaskResult::Success { token };
                return Outcome::Answer {
                    id: task.id,
                    result,
                };
            }
            Err(error) => error,
        };
        ctx.recorder.attempt_failed(error.class());
        let code = error.code().to_owned();
        if error.is_unsolvable() && resubmits < ctx.unsolvable_resubmits {
            resubmits += 1;
            tracing::debug!(task_id = %task.id, resubmits, "unsolvable: submitting again");
            continue;
        }
        match error.action() {
            Action::FailTask => {
                tracing::info!(task_id = %task.id, %code, "task failed");
                return answer_error(task.id, code);
            }
            Action::PausePool => {
                tracing::error!(
                    task_id = %task.id, %code, pause = ?ctx.account_pause,
                    "account error: pausing all submissions; the task returns to the queue"
                );
                ctx.gate.pause(&code, ctx.account_pause);
                return Outcome::Requeue;
            }
            Action::RetryLater => {
                let wait = backoff.after(&error);
                if Instant::now() + wait >= deadline {
                    tracing::info!(task_id = %task.id, last_error = %code, "task deadline passed");
                    return answer_error(task.id, DEADLINE_ERROR.into());
                }
                tracing::debug!(task_id = %task.id, %code, retry_in = ?wait, "retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

fn answer_error(id: String, error: String) -> Outcome {
    Outcome::Answer {
        id,
        result: TaskResult::Error { error },
    }
}

/// The task's own deadline when it has one, else the configured timeout from now.
fn deadline_of(task: &Task, timeout: Duration) -> Instant {
    let now = Instant::now();
    let Some(deadline_ms) = task.deadline_ms else {
        return now + timeout;
    };
    let left = deadline_ms.saturating_sub(crate::clock::unix_ms());
    now + Duration::from_millis(left).min(timeout)
}

/// Records the outcome in Redis, retrying while Redis is away; on abort the task simply stays
/// in the processing list, where the host's stop (or the next start) returns it to the queue.
async fn finish(ctx: &WorkerContext, raw: &[u8], outcome: Outcome) {
    let mut wait = Duration::from_millis(100);
    loop {
        match write(ctx, raw, &outcome).await {
            Ok(held) => return count(ctx, &outcome, held),
            Err(e) if ctx.abort.is_cancelled() => {
                tracing::warn!(error = %e, "left a task in the processing list for the next start");
                return;
            }
            Err(e) => tracing::warn!(error = %e, retry_in = ?wait, "failed to write to Redis"),
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ctx.abort.cancelled() => {}
        }
        wait = (wait * 2).min(WRITE_RETRY_MAX);
    }
}

/// One attempt at writing the outcome; false when this host no longer held the task.
async fn write(ctx: &WorkerContext, raw: &[u8], outcome: &Outcome) -> redis::RedisResult<bool> {
    let mut queue = ctx.queue.clone();
    match outcome {
        Outcome::Answer { id, result } => {
            let completion = queue.complete(raw, id, result).await?;
            if completion == Completion::KeptSuccess {
                tracing::info!(task_id = %id, "a stored success was kept over a late error");
            }
            Ok(completion != Completion::NotHeld)
        }
        Outcome::DeadLetter { reason } => queue.dead_letter(raw, reason, &ctx.host_id).await,
        Outcome::Requeue | Outcome::Lost => queue.requeue(raw).await,
    }
}

fn count(ctx: &WorkerContext, outcome: &Outcome, held: bool) {
    let totals = &ctx.recorder.totals;
    if !held {
        if !matches!(outcome, Outcome::Lost) {
            tracing::warn!("another host reclaimed this task: its outcome is dropped");
        }
        return;
    }
    match outcome {
        Outcome::Answer { result, .. } => ctx.recorder.completed(result.is_success()),
        Outcome::DeadLetter { .. } => {
            totals.dead_lettered.fetch_add(1, Ordering::Relaxed);
            ctx.recorder.completed(false);
        }
        Outcome::Requeue | Outcome::Lost => {
            totals.requeued.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::BodyKind;

    fn outage() -> SolveError {
        SolveError::Timeout(Duration::from_secs(1))
    }

    #[test]
    fn waits_double_from_one_second_up_to_the_maximum() {
        let mut backoff = Backoff::new(Duration::from_secs(5));
        let waits: Vec<_> = (0..5).map(|_| backoff.after(&outage()).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
    }

    #[test]
    fn the_providers_wait_is_a_floor_under_the_maximum() {
        let mut backoff = Backoff::new(Duration::from_secs(20));
        let no_slot = SolveError::Api {
            code: "ERROR_NO_SLOT_AVAILABLE".into(),
        };
        assert_eq!(backoff.after(&no_slot), Duration::from_secs(5));
        assert_eq!(backoff.after(&outage()), Duration::from_secs(2));
        let limited = SolveError::HttpStatus {
            status: 429,
            body: BodyKind::Text,
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(
            backoff.after(&limited),
            Duration::from_secs(20),
            "never past the configured maximum"
        );
    }

    #[test]
    fn a_maximum_under_a_second_is_kept() {
        let mut backoff = Backoff::new(Duration::from_millis(200));
        assert_eq!(backoff.after(&outage()), Duration::from_millis(200));
    }
}
