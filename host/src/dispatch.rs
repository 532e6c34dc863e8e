//! Hands tasks to idle workers, taking them from the queue in batches.
//!
//! Workers ask for a task only when idle, so a task leaves the queue only when a worker is
//! ready for it: the queue depth the policy sees is the real backlog, and hundreds of workers
//! share one Redis connection instead of blocking one each. When several workers ask at once,
//! their tasks are taken in one round trip; when the queue is empty, one blocking take waits.
//!
//! Every task taken is claimed in [`Held`] until its worker has answered it. A take whose
//! reply was lost (Redis went away mid-command) may still have moved a task into the
//! processing list; after such an error the dispatcher audits the list against its claims and
//! returns what nobody holds to the queue. A task whose worker went away between the ask and
//! the answer is kept for the next worker, or returned to the queue when the dispatcher stops.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::gate::Gate;
use crate::held::{self, Claim, Held};
use crate::queue::Queue;

/// How long one blocking take waits before it checks for a stop.
const TAKE_WAIT: Duration = Duration::from_secs(1);
/// Most tasks taken in one round trip.
const BATCH: usize = 64;
/// First and longest wait after Redis fails, doubling in between.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// A task handed to a worker, with the claim that says this host holds it.
#[derive(Debug)]
pub struct Taken {
    pub raw: Vec<u8>,
    pub claim: Claim,
}

/// A worker's request: where to send the task it will work on.
pub type TaskRequest = oneshot::Sender<Taken>;

/// Takes tasks from the queue for workers that ask.
#[derive(Debug)]
pub struct Dispatcher {
    queue: Queue,
    requests: mpsc::Receiver<TaskRequest>,
    gate: Arc<Gate>,
    stop: CancellationToken,
    held: Arc<Held>,
    waiting: VecDeque<TaskRequest>,
    ready: VecDeque<Taken>,
    audit_due: bool,
}

impl Dispatcher {
    /// `queue` must be a connection of its own: blocking takes would stall other commands.
    pub fn new(
        queue: Queue,
        requests: mpsc::Receiver<TaskRequest>,
        gate: Arc<Gate>,
        stop: CancellationToken,
    ) -> Self {
        Self {
            queue,
            requests,
            gate,
            stop,
            held: Arc::default(),
            waiting: VecDeque::new(),
            ready: VecDeque::new(),
            audit_due: false,
        }
    }

    /// Records claims in `held`, shared with the heartbeat, instead of a private registry.
    pub fn with_held(mut self, held: Arc<Held>) -> Self {
        self.held = held;
        self
    }

    /// Serves requests until `stop`, then returns the tasks it still holds to the queue.
    pub async fn run(mut self) {
        let mut retry = RETRY_FIRST;
        while self.gather().await {
            self.hand_out();
            if self.waiting.is_empty() {
                continue;
            }
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = self.gate.wait_open() => {}
            }
            match self.refill().await {
                Ok(()) => retry = RETRY_FIRST,
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        retry_in = ?retry,
                        "failed to take tasks from Redis"
                    );
                    self.audit_due = true;
                    tokio::select! {
                        _ = self.stop.cancelled() => break,
                        _ = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
        self.return_ready().await;
    }

    /// Waits for at least one live request and collects those already sent; false on stop.
    async fn gather(&mut self) -> bool {
        self.waiting.retain(|request| !request.is_closed());
        if self.waiting.is_empty() {
            let request = tokio::select! {
                _ = self.stop.cancelled() => return false,
                request = self.requests.recv() => request,
            };
            let Some(request) = request else { return false };
            self.waiting.push_back(request);
        }
        while self.waiting.len() < BATCH {
            match self.requests.try_recv() {
                Ok(request) => self.waiting.push_back(request),
                Err(_) => break,
            }
        }
        !self.stop.is_cancelled()
    }

    /// Gives taken tasks to waiting workers; a task whose worker left stays for the next.
    fn hand_out(&mut self) {
        while !self.ready.is_empty() {
            let Some(request) = self.waiting.pop_front() else {
                return;
            };
            if let Some(taken) = self.ready.pop_front()
                && let Err(taken) = request.send(taken)
            {
                self.ready.push_front(taken);
            }
        }
    }

    /// Takes as many tasks as workers wait for, or waits for one when the queue is empty.
    async fn refill(&mut self) -> redis::RedisResult<()> {
        if self.audit_due {
            self.audit().await?;
        }
        let wanted = self.waiting.len().saturating_sub(self.ready.len()).max(1);
        let mut taken = self.queue.take_now(wanted).await?;
        if taken.is_empty() {
            taken.extend(self.take_blocking().await?);
        }
        for raw in taken {
            let claim = self.held.claim(&raw);
            self.ready.push_back(Taken { raw, claim });
        }
        Ok(())
    }

    async fn take_blocking(&mut self) -> redis::RedisResult<Option<Vec<u8>>> {
        tokio::select! {
            // A take cut short here may still land in the processing list: the audit at the
            // host's stop (or the next start) returns it to the queue.
            _ = self.stop.cancelled() => Ok(None),
            taken = self.queue.take(TAKE_WAIT) => taken,
        }
    }

    /// Returns to the queue what the processing list holds but no claim accounts for. Safe
    /// because nothing is taken meanwhile, and a claim ends only after its task left the list.
    async fn audit(&mut self) -> redis::RedisResult<()> {
        let claimed = self.held.snapshot();
        let listed = self.queue.processing_entries().await?;
        let orphans = held::unclaimed(listed, claimed);
        for raw in &orphans {
            self.queue.requeue(raw).await?;
        }
        if !orphans.is_empty() {
            tracing::warn!(
                returned = orphans.len(),
                "returned tasks whose take reply was lost to the queue"
            );
        }
        self.audit_due = false;
        Ok(())
    }

    async fn return_ready(&mut self) {
        while let Some(taken) = self.ready.pop_front() {
            if let Err(e) = self.queue.requeue(&taken.raw).await {
                tracing::warn!(
                    error = %e,
                    "failed to return a task to the queue; it stays in the processing list"
                );
            }
        }
    }
}
