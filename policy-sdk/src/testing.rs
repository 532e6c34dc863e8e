//! Running a policy natively in unit tests: a baseline snapshot and a tick-by-tick harness.
//!
//! Start from [`quiet`] and change what the test is about with struct update syntax; drive a
//! policy through several ticks with a [`Harness`], which carries the state from one decision to
//! the next and advances the clock, as the host does.
//!
//! ```
//! use autoscaler_policy_sdk::testing::{self, Harness};
//! use autoscaler_policy_sdk::{Decision, Params, Policy, Snapshot};
//!
//! struct Busy;
//!
//! impl Policy for Busy {
//!     fn configure(_params: &mut Params) -> Result<Self, String> {
//!         Ok(Busy)
//!     }
//!
//!     fn decide(&self, snapshot: &Snapshot, _state: &[u8]) -> Decision {
//!         Decision::new(snapshot.busy + 1, "one spare worker")
//!     }
//! }
//!
//! let policy: Busy = testing::configure(Params::default()).unwrap();
//! let mut harness = Harness::new(policy);
//! let peak = Snapshot { busy: 5, workers: 5, utilization: 1.0, ..testing::quiet() };
//! assert_eq!(harness.tick(&peak).target, 6);
//! ```

use crate::{Decision, ErrorRates, Params, Policy, Snapshot};

/// The clock of [`quiet`]: 2023-11-14T22:13:20Z, in milliseconds since the Unix epoch.
pub const START_MS: u64 = 1_700_000_000_000;

/// A quiet pool: 2 idle workers, an empty queue, no solve in the window, no error, a balance of
/// $10, bounds 1 to 20, a 10 s tick and a 60 s window.
pub fn quiet() -> Snapshot {
    Snapshot {
        now_ms: START_MS,
        tick_ms: 10_000,
        window_ms: 60_000,
        queue_depth: 0,
        oldest_task_age_ms: None,
        arrival_rate: 0.0,
        completion_rate: 0.0,
        workers: 2,
        busy: 0,
        draining: 0,
        utilization: 0.0,
        latency_p50_ms: None,
        latency_p95_ms: None,
        attempts: 0,
        errors: no_errors(),
        balance_usd: Some(10.0),
        balance_age_ms: Some(0),
        submissions_paused: false,
        min_workers: 1,
        max_workers: 20,
        since_scale_up_ms: None,
        since_scale_down_ms: None,
    }
}

/// Error rates that are all zero.
pub fn no_errors() -> ErrorRates {
    ErrorRates {
        solver_capacity: 0.0,
        account: 0.0,
        task: 0.0,
        transport: 0.0,
    }
}

/// Builds a policy as the host does: `configure`, then reject the keys it did not read.
pub fn configure<P: Policy>(params: Params) -> Result<P, String> {
    crate::build(params)
}

/// Runs a policy tick after tick, carrying its state and advancing the clock.
///
/// [`tick`](Harness::tick) takes each snapshot as the test wrote it, except for `now_ms`, which
/// the harness owns. [`follow`](Harness::follow) plays the host too: it applies each decision to
/// the next snapshot's worker count.
#[derive(Debug)]
pub struct Harness<P> {
    policy: P,
    state: Vec<u8>,
    now_ms: u64,
    last_up_ms: Option<u64>,
    last_down_ms: Option<u64>,
}

impl<P: Policy> Harness<P> {
    /// A harness at [`START_MS`] with an empty state, as on a fresh host.
    pub fn new(policy: P) -> Self {
        Self {
            policy,
            state: Vec::new(),
            now_ms: START_MS,
            last_up_ms: None,
            last_down_ms: None,
        }
    }

    /// Starts from `state` instead, e.g. the state of another policy after a reload.
    pub fn with_state(mut self, state: impl Into<Vec<u8>>) -> Self {
        self.state = state.into();
        self
    }

    /// Runs one tick on `snapshot` (with `now_ms` set to the harness clock), keeps the state it
    /// returns, and advances the clock by `snapshot.tick_ms`.
    pub fn tick(&mut self, snapshot: &Snapshot) -> Decision {
        let snapshot = Snapshot {
            now_ms: self.now_ms,
            ..*snapshot
        };
        let decision = self.policy.decide(&snapshot, &self.state);
        self.state.clone_from(&decision.state);
        self.now_ms += u64::from(snapshot.tick_ms);
        decision
    }

    /// Runs `n` ticks on the same snapshot.
    pub fn ticks(&mut self, snapshot: &Snapshot, n: usize) -> Vec<Decision> {
        (0..n).map(|_| self.tick(snapshot)).collect()
    }

    /// Runs `n` ticks as a host would: each decision, clamped to the bounds, becomes the next
    /// tick's worker count (no draining), with `busy` capped at it, `utilization` recomputed,
    /// and `since_scale_up_ms` / `since_scale_down_ms` following the changes.
    pub fn follow(&mut self, snapshot: &Snapshot, n: usize) -> Vec<Decision> {
        let mut workers = snapshot.workers;
        let mut decisions = Vec::with_capacity(n);
        for _ in 0..n {
            let current = self.pool(snapshot, workers);
            let decision = self.tick(&current);
            workers = self.apply(&current, decision.target);
            decisions.push(decision);
        }
        decisions
    }

    /// The clock of the next tick.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The state the next tick will receive.
    pub fn state(&self) -> &[u8] {
        &self.state
    }

    /// `snapshot` at the harness clock with `workers` active workers and the host's view of the
    /// last changes.
    fn pool(&self, snapshot: &Snapshot, workers: u32) -> Snapshot {
        let busy = snapshot.busy.min(workers);
        let since = |at: Option<u64>| at.map(|at| self.now_ms - at);
        Snapshot {
            now_ms: self.now_ms,
            workers,
            busy,
            draining: 0,
            utilization: utilization(busy, workers),
            since_scale_up_ms: since(self.last_up_ms),
            since_scale_down_ms: since(self.last_down_ms),
            ..*snapshot
        }
    }

    /// Applies `target` to the pool of `snapshot`; returns the new worker count.
    fn apply(&mut self, snapshot: &Snapshot, target: u32) -> u32 {
        let workers = snapshot.clamp(target);
        // `tick` has already moved the clock on: the change happened at the snapshot's time.
        let decided_at = Some(snapshot.now_ms);
        if workers > snapshot.workers {
            self.last_up_ms = decided_at;
        } else if workers < snapshot.workers {
            self.last_down_ms = decided_at;
        }
        workers
    }
}

/// busy / workers, 0 with no worker, as the host computes it.
fn utilization(busy: u32, workers: u32) -> f64 {
    if workers == 0 {
        0.0
    } else {
        f64::from(busy) / f64::from(workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PolicyState, StateReader, StateWriter};

    /// Counts its ticks in the state and asks for one more worker than busy.
    struct Counter;

    #[derive(Default)]
    struct Count(u64);

    impl PolicyState for Count {
        const TAG: [u8; 4] = *b"cnt1";

        fn write(&self, out: &mut StateWriter) {
            out.u64(self.0);
        }

        fn read(input: &mut StateReader<'_>) -> Option<Self> {
            input.u64().map(Count)
        }
    }

    impl Policy for Counter {
        fn configure(_params: &mut Params) -> Result<Self, String> {
            Ok(Counter)
        }

        fn decide(&self, snapshot: &Snapshot, state: &[u8]) -> Decision {
            let count = Count(Count::decode(state).0 + 1);
            let reason = format!("tick {} at {}", count.0, snapshot.now_ms);
            Decision::new(snapshot.busy + 1, reason).with_state(count.encode())
        }
    }

    #[test]
    fn ticks_carry_the_state_and_advance_the_clock() {
        let mut harness = Harness::new(Counter);
        let decisions = harness.ticks(&quiet(), 3);
        let reasons: Vec<&str> = decisions.iter().map(|d| d.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "tick 1 at 1700000000000",
                "tick 2 at 1700000010000",
                "tick 3 at 1700000020000",
            ]
        );
        assert_eq!(harness.now_ms(), START_MS + 30_000);
    }

    #[test]
    fn a_foreign_state_is_handed_to_the_first_tick() {
        let mut harness = Harness::new(Counter).with_state(b"garbage".to_vec());
        assert_eq!(harness.state(), b"garbage");
        assert!(harness.tick(&quiet()).reason.starts_with("tick 1 "));
    }

    #[test]
    fn follow_applies_each_clamped_target_to_the_next_tick() {
        let mut harness = Harness::new(Counter);
        let peak = Snapshot {
            busy: 30,
            ..quiet()
        };
        let targets: Vec<u32> = harness.follow(&peak, 3).iter().map(|d| d.target).collect();
        // busy is capped at the workers: 2 → 3 → 4, while the host's max is 20.
        assert_eq!(targets, [3, 4, 5]);
    }
}
