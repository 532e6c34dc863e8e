//! The account balance, read now and then and cached for the snapshot.
//!
//! Asking the provider every tick would waste its rate budget; the balance changes slowly, so
//! a refresher reads it every `captchaai.balance_interval` and the snapshot carries its age.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::gate::Gate;
use crate::solver::{Action, Client};

/// The last balance read and when.
#[derive(Debug, Default)]
pub struct BalanceCache {
    last: Mutex<Option<(f64, Instant)>>,
}

impl BalanceCache {
    /// The balance in US dollars and how old the reading is.
    pub fn get(&self) -> Option<(f64, Duration)> {
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.map(|(usd, at)| (usd, at.elapsed()))
    }

    pub fn set(&self, usd: f64) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((usd, Instant::now()));
    }

    /// Reads the balance every `interval` until `stop`. An account error (wrong key, banned
    /// IP) closes the gate as a worker's would, so a bad key shows even with an empty queue.
    pub async fn refresh(
        &self,
        client: &Client,
        gate: &Gate,
        pause: Duration,
        interval: Duration,
        stop: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match client.balance().await {
                Ok(usd) => {
                    tracing::debug!(balance_usd = usd, "balance read");
                    self.set(usd);
                }
                Err(e) if e.action() == Action::PausePool => {
                    tracing::error!(
                        error = %e,
                        ?pause,
                        "account error reading the balance: pausing submissions"
                    );
                    gate.pause(e.code(), pause);
                }
                Err(e) => {
                    let cause = std::error::Error::source(&e).map(|s| s.to_string());
                    tracing::warn!(
                        error = %e, cause, url = %client.config().base_url,
                        "failed to read the balance: is the API reachable at this address?"
                    );
                }
            }
        }
    }
}
