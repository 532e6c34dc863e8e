//! The default autoscaler policy: the signals table, with every threshold a parameter.
//!
//! | signal      | scale up when                        | low load when                  |
//! |-------------|--------------------------------------|--------------------------------|
//! | queue depth | > `queue_up` (20)                    | < `queue_down` (5)             |
//! | utilization | > `utilization_up` (90 %), ≥ 5 wait  | < `utilization_down` (85 %)    |
//! | P95 latency | > `p95_up_s` (60 s)                  | < `p95_down_s` (45 s), or none |
//! | error rate  | > `error_up` (5 %), ≥ 5 wait         | < `error_down` (1 %)           |
//! | balance     | never below `balance_floor_usd` ($1) | —                              |
//!
//! Scaling up is fast and sized from the need. Each up-signal asks for a worker count and the
//! largest wins:
//! - backlog: busy + ⌈queue / `tasks_per_worker`⌉;
//! - utilization, once `queue_down` tasks wait: ⌈busy / `target_utilization` (95 %)⌉. A busy
//!   pool with an empty queue is serving its load; a few waiting tasks are the buffer that lets
//!   it run near its target;
//! - latency: the active workers times how far P95 is over its threshold, at most double;
//! - errors (transport and task errors only, only with `error_min_count` (5) of them in the
//!   window, and only once `queue_down` tasks wait): one fresh worker. With nothing waiting the
//!   workers there keep up, errors and all, and a fresh one would only wait for work.
//!
//! Latency and errors cover the whole window, so they step at most once per window after a
//! scale-up. Nothing adds workers while submissions are paused, while the known balance is
//! under `balance_floor_usd`, or while the provider refuses attempts for lack of a slot
//! (`capacity_hold`); above `capacity_step_down` the pool steps down toward the busy workers.
//!
//! Scaling down waits for low load on every signal to hold for `down_window_s` (30 s, tracked
//! in the state blob), then removes `down_step` of the active workers per tick, at least one,
//! never below the host's minimum, the busy workers, or what the load needs. Every parameter
//! and its default is in [`config`], with why the low-load defaults differ from the source
//! table; each decision's reason names the signal and its numbers.
//!
//! Built for `wasm32-wasip2` this crate is the component the host embeds; built natively it is
//! a library whose [`Threshold`] can be driven by `autoscaler_policy_sdk::testing`.

pub mod config;
mod decide;
mod format;
mod signals;
mod state;

#[cfg(test)]
mod tests;

use autoscaler_policy_sdk::{Decision, Params, Policy, PolicyState, Snapshot, export_policy};

pub use config::Config;
use state::LowLoad;

/// The threshold policy, configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    config: Config,
}

impl Threshold {
    /// The policy with these parameters.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// The parameters in use.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Policy for Threshold {
    fn configure(params: &mut Params) -> Result<Self, String> {
        Config::from_params(params).map(Self::new)
    }

    fn decide(&self, snapshot: &Snapshot, state: &[u8]) -> Decision {
        let low = LowLoad::decode(state);
        let (decision, low) = decide::decide(&self.config, snapshot, low);
        let target = snapshot.clamp(decision.target);
        Decision { target, ..decision }.with_state(low.encode())
    }
}

export_policy!(Threshold);
