//! Hands tasks to idle workers, one blocking take at a time.
//!
//! Workers ask for a task only when idle, so a task leaves the queue only when a worker is
//! ready for it: the queue depth the policy sees is the real backlog, and hundreds of workers
//! share one blocking Redis connection instead of holding one each. A task whose worker went
//! away between the ask and the answer is kept for the next worker, or returned to the queue
//! when the dispatcher stops.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::gate::Gate;
use crate::queue::Queue;

/// How long one blocking take waits before it checks for a stop.
const TAKE_WAIT: Duration = Duration::from_secs(1);
/// First and longest wait after Redis fails, doubling in between.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// A worker's request: where to send the task it will work on.
pub type TaskRequest = oneshot::Sender<Vec<u8>>;

/// Takes tasks from the queue for workers that ask.
#[derive(Debug)]
pub struct Dispatcher {
    queue: Queue,
    requests: mpsc::Receiver<TaskRequest>,
    gate: Arc<Gate>,
    stop: CancellationToken,
    held: Option<Vec<u8>>,
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
            held: None,
        }
    }

    /// Serves requests until `stop`, then returns any task it still holds to the queue.
    pub async fn run(mut self) {
        loop {
            let request = tokio::select! {
                _ = self.stop.cancelled() => break,
                request = self.requests.recv() => request,
            };
            let Some(request) = request else { break };
            self.serve(request).await;
        }
        self.return_held().await;
    }

    /// Finds a task for one request, unless the requester leaves or the host stops first.
    async fn serve(&mut self, request: TaskRequest) {
        let mut retry = RETRY_FIRST;
        loop {
            if request.is_closed() || self.stop.is_cancelled() {
                return;
            }
            if let Some(raw) = self.held.take() {
                if let Err(raw) = request.send(raw) {
                    self.held = Some(raw);
                }
                return;
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = self.gate.wait_open() => {}
            }
            match self.take().await {
                Ok(found) => {
                    self.held = found;
                    retry = RETRY_FIRST;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?retry, "failed to take a task from Redis");
                    tokio::select! {
                        _ = self.stop.cancelled() => return,
                        _ = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    async fn take(&mut self) -> redis::RedisResult<Option<Vec<u8>>> {
        tokio::select! {
            // A take in flight when the host stops lands in the processing list, where the
            // next start recovers it; nothing is lost by cancelling here.
            _ = self.stop.cancelled() => Ok(None),
            taken = self.queue.take(TAKE_WAIT) => taken,
        }
    }

    async fn return_held(&mut self) {
        let Some(raw) = self.held.take() else { return };
        if let Err(e) = self.queue.requeue(&raw).await {
            tracing::warn!(error = %e, "failed to return a task to the queue; the next start recovers it");
        }
    }
}
