//! A CaptchaAI simulator that speaks the real `in.php` / `res.php` protocol over HTTP.
//!
//! The demo and the tests start it in-process on a loopback port; `autoscaler api-sim` runs
//! it on its own. It models one account with a number of threads (`ERROR_NO_SLOT_AVAILABLE`
//! beyond them), a balance charged per solved task (`ERROR_ZERO_BALANCE` when it cannot pay
//! for a submit), random solve times and a rate of unsolvable tasks, and it can misbehave
//! on demand: late answers, outage pages, garbled bodies, connection resets and any provider
//! error code ([`Faults`]).
//!
//! - [`config`]: [`SimConfig`] and [`Faults`].
//! - `state`: the account's rules and [`SimStats`], without HTTP.
//! - `reset`: a listener whose connections a fault can reset with a TCP RST.
//! - `http`: the routes. Besides the protocol, `GET /sim/stats` serves the counters as JSON
//!   and `PUT /sim/faults` sets the faults, so tests of the real binary can do both.

pub mod config;
mod http;
mod reset;
mod state;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use config::{Fault, Faults, SimConfig};
pub use state::SimStats;

use http::SharedState;

/// How long [`SimHandle::shutdown`] waits for open requests before it stops the server hard.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Starts the simulator on `listen` (port 0 picks a free one) and returns at once.
pub async fn start(listen: SocketAddr, config: SimConfig) -> anyhow::Result<SimHandle> {
    validate(&config)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to listen on {listen} for the simulator"))?;
    let addr = listener
        .local_addr()
        .context("failed to read the simulator's address")?;

    let state: SharedState = Arc::new(Mutex::new(state::State::new(config)));
    let stop = CancellationToken::new();
    let app = http::router(state.clone()).into_make_service_with_connect_info::<reset::Conn>();
    let server = axum::serve(reset::ResettableListener::new(listener), app)
        .with_graceful_shutdown(stop.clone().cancelled_owned());
    let task = tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "the simulator's server stopped");
        }
    });

    tracing::info!(%addr, "captchaai simulator listening");
    Ok(SimHandle {
        addr,
        state,
        stop,
        task: Some(task),
    })
}

fn validate(config: &SimConfig) -> anyhow::Result<()> {
    let (min, max) = config.solve_time;
    anyhow::ensure!(
        (0.0..=1.0).contains(&config.error_rate),
        "simulator error rate {} must be between 0 and 1",
        config.error_rate
    );
    anyhow::ensure!(
        min <= max,
        "simulator solve time {min:?}..{max:?} is empty; put min first"
    );
    anyhow::ensure!(
        config.balance_usd.is_finite() && config.price_usd.is_finite() && config.price_usd >= 0.0,
        "simulator balance and price must be finite, and the price not negative"
    );
    Ok(())
}

/// A running simulator. Dropping it stops the server once open requests finish.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    state: SharedState,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base URL a client is given.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters now.
    pub fn stats(&self) -> SimStats {
        http::lock(&self.state).stats(Instant::now())
    }

    /// Replaces the injected faults; answers already being delayed are not affected.
    pub fn set_faults(&self, faults: Faults) {
        http::lock(&self.state).set_faults(faults);
    }

    /// Stops accepting, lets open requests finish (for a few seconds at most), and returns.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        let Some(mut task) = self.task.take() else {
            return;
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            tracing::warn!("simulator requests still open after the grace period; stopping it");
            task.abort();
        }
        tracing::info!(addr = %self.addr, "captchaai simulator stopped");
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
