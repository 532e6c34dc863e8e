//! A reference policy: fixed steps on fixed thresholds, the way many autoscalers start out.
//!
//! Every tick:
//! - the queue is over `queue_up` (20) and utilization over `utilization_up` (70 %): add
//!   `step_up` (2) workers, unless the known balance is under `balance_floor_usd` ($2);
//! - the queue is under `queue_down` (5) and utilization under `utilization_down` (20 %):
//!   remove `step_down` (1) worker;
//! - otherwise hold.
//!
//! One addition to the rule as usually written: with no active worker, tasks in the queue add
//! `step_up` workers (utilization is 0 then, and the pool would otherwise never start).
//!
//! It carries no state. It is the baseline `autoscaler replay` compares the default threshold
//! policy against: cheap to reason about, slow to follow a burst, slow to give workers back.

use autoscaler_policy_sdk::{Decision, Params, Policy, Snapshot, export_policy};

/// `queue_up`: add workers when more tasks than this wait (and utilization is high).
pub const QUEUE_UP: u32 = 20;
/// `utilization_up`: add workers when more than this fraction is busy (and the queue is long).
pub const UTILIZATION_UP: f64 = 0.7;
/// `step_up`: workers added per tick.
pub const STEP_UP: u32 = 2;
/// `queue_down`: remove a worker when fewer tasks than this wait (and utilization is low).
pub const QUEUE_DOWN: u32 = 5;
/// `utilization_down`: remove a worker when less than this fraction is busy (and the queue
/// is short).
pub const UTILIZATION_DOWN: f64 = 0.2;
/// `step_down`: workers removed per tick.
pub const STEP_DOWN: u32 = 1;
/// `balance_floor_usd`: never add workers while the known balance is under this.
pub const BALANCE_FLOOR_USD: f64 = 2.0;

/// The fixed-step policy, configured.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedStep {
    pub queue_up: u32,
    pub utilization_up: f64,
    pub step_up: u32,
    pub queue_down: u32,
    pub utilization_down: f64,
    pub step_down: u32,
    pub balance_floor_usd: f64,
}

impl Policy for FixedStep {
    fn configure(params: &mut Params) -> Result<Self, String> {
        let policy = Self {
            queue_up: params.u32("queue_up", QUEUE_UP)?,
            utilization_up: fraction(params, "utilization_up", UTILIZATION_UP)?,
            step_up: params.u32("step_up", STEP_UP)?,
            queue_down: params.u32("queue_down", QUEUE_DOWN)?,
            utilization_down: fraction(params, "utilization_down", UTILIZATION_DOWN)?,
            step_down: params.u32("step_down", STEP_DOWN)?,
            balance_floor_usd: params.f64("balance_floor_usd", BALANCE_FLOOR_USD)?,
        };
        Ok(policy)
    }

    fn decide(&self, snapshot: &Snapshot, _state: &[u8]) -> Decision {
        let current = snapshot.active_workers();
        let decision = if let Some(label) = self.wants_more(snapshot, current) {
            self.scale_up(snapshot, current, &label)
        } else if let Some(label) = self.wants_fewer(snapshot) {
            let target = current.saturating_sub(self.step_down);
            Decision::new(target, format!("{label}: -{}", current - target))
        } else {
            Decision::hold(snapshot, "hold: within thresholds")
        };
        let target = snapshot.clamp(decision.target);
        Decision { target, ..decision }
    }
}

impl FixedStep {
    /// Why workers should be added, if they should.
    fn wants_more(&self, snapshot: &Snapshot, current: u32) -> Option<String> {
        let queue = snapshot.queue_depth;
        if current == 0 && queue > 0 {
            return Some(format!("queue {queue} with no worker"));
        }
        let busy = snapshot.utilization > self.utilization_up;
        (queue > self.queue_up && busy).then(|| {
            format!(
                "queue {queue} > {}, utilization {} > {}",
                self.queue_up,
                percent(snapshot.utilization),
                percent(self.utilization_up)
            )
        })
    }

    /// Why a worker should be removed, if one should.
    fn wants_fewer(&self, snapshot: &Snapshot) -> Option<String> {
        let queue = snapshot.queue_depth;
        let idle = snapshot.utilization < self.utilization_down;
        (queue < self.queue_down && idle).then(|| {
            format!(
                "queue {queue} < {}, utilization {} < {}",
                self.queue_down,
                percent(snapshot.utilization),
                percent(self.utilization_down)
            )
        })
    }

    /// Adds `step_up` workers, unless the balance is known and under the floor.
    fn scale_up(&self, snapshot: &Snapshot, current: u32, label: &str) -> Decision {
        if let Some(balance) = snapshot
            .balance_usd
            .filter(|&usd| usd < self.balance_floor_usd)
        {
            let reason = format!(
                "hold: {label}, but balance ${balance:.2} < ${:.2}",
                self.balance_floor_usd
            );
            return Decision::hold(snapshot, reason);
        }
        let target = current.saturating_add(self.step_up);
        Decision::new(target, format!("{label}: +{}", target - current))
    }
}

/// A fraction from 0 to 1, both included.
fn fraction(params: &mut Params, name: &str, default: f64) -> Result<f64, String> {
    let value = params.f64(name, default)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!(
            "parameter \"{name}\" must be from 0 to 1, got {value}"
        ));
    }
    Ok(value)
}

/// A fraction as a whole percentage: `0.7` is `70%`.
fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

export_policy!(FixedStep);

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_policy_sdk::testing::{self, Harness};

    fn policy() -> FixedStep {
        testing::configure(Params::default()).expect("the defaults are valid")
    }

    /// One tick on a pool of `workers`, `busy` of them busy, with `queue` tasks waiting.
    fn decide(workers: u32, busy: u32, queue: u32) -> Decision {
        policy().decide(&pool(workers, busy, queue), &[])
    }

    fn pool(workers: u32, busy: u32, queue: u32) -> Snapshot {
        Snapshot {
            workers,
            busy,
            queue_depth: queue,
            utilization: f64::from(busy) / f64::from(workers.max(1)),
            max_workers: 50,
            ..testing::quiet()
        }
    }

    #[test]
    fn a_long_queue_on_a_busy_pool_adds_two_workers() {
        let decision = decide(10, 8, 21);
        assert_eq!(decision.target, 12);
        assert_eq!(decision.reason, "queue 21 > 20, utilization 80% > 70%: +2");
    }

    #[test]
    fn a_long_queue_with_idle_workers_holds() {
        let decision = decide(10, 7, 200);
        assert_eq!(decision.target, 10);
        assert_eq!(decision.reason, "hold: within thresholds");
    }

    #[test]
    fn a_busy_pool_with_a_short_queue_holds() {
        assert_eq!(decide(10, 10, 20).target, 10);
    }

    #[test]
    fn a_short_queue_on_an_idle_pool_removes_one_worker() {
        let decision = decide(10, 1, 4);
        assert_eq!(decision.target, 9);
        assert_eq!(decision.reason, "queue 4 < 5, utilization 10% < 20%: -1");
    }

    #[test]
    fn steps_are_the_same_whatever_the_need() {
        assert_eq!(decide(10, 10, 2000).target, 12);
        assert_eq!(decide(40, 0, 0).target, 39);
    }

    #[test]
    fn a_balance_under_two_dollars_stops_adding() {
        let snapshot = Snapshot {
            balance_usd: Some(1.5),
            ..pool(10, 10, 100)
        };
        let decision = policy().decide(&snapshot, &[]);
        assert_eq!(decision.target, 10);
        assert_eq!(
            decision.reason,
            "hold: queue 100 > 20, utilization 100% > 70%, but balance $1.50 < $2.00"
        );
    }

    #[test]
    fn a_low_balance_still_lets_the_pool_shrink() {
        let snapshot = Snapshot {
            balance_usd: Some(0.5),
            ..pool(10, 0, 0)
        };
        assert_eq!(policy().decide(&snapshot, &[]).target, 9);
    }

    #[test]
    fn an_empty_pool_with_waiting_tasks_starts() {
        let snapshot = Snapshot {
            min_workers: 0,
            ..pool(0, 0, 3)
        };
        let decision = policy().decide(&snapshot, &[]);
        assert_eq!(decision.target, 2);
        assert_eq!(decision.reason, "queue 3 with no worker: +2");
    }

    #[test]
    fn targets_stay_within_the_host_bounds() {
        assert_eq!(decide(50, 50, 500).target, 50);
        assert_eq!(decide(1, 0, 0).target, 1);
    }

    #[test]
    fn a_lasting_backlog_grows_the_pool_two_per_tick() {
        let busy = pool(4, 4, 300);
        let decisions = Harness::new(policy()).follow(&Snapshot { busy: 50, ..busy }, 4);
        let targets: Vec<u32> = decisions.iter().map(|d| d.target).collect();
        assert_eq!(targets, [6, 8, 10, 12]);
    }

    #[test]
    fn thresholds_are_parameters_and_checked() {
        let params = Params::default()
            .with("step_up", 5)
            .with("utilization_up", 0.5);
        let policy: FixedStep = testing::configure(params).expect("valid");
        assert_eq!(policy.decide(&pool(10, 6, 30), &[]).target, 15);
        let err = testing::configure::<FixedStep>(Params::default().with("utilization_up", 70))
            .expect_err("out of range");
        assert_eq!(
            err,
            "parameter \"utilization_up\" must be from 0 to 1, got 70"
        );
    }
}
