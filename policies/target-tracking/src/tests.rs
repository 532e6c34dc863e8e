//! Behaviour of target tracking, driven through the SDK's native harness as the host would
//! drive the component.

use autoscaler_policy_sdk::testing::{self, Harness};
use autoscaler_policy_sdk::{Decision, Params, Policy, Snapshot};

use crate::TargetTracking;

fn policy() -> TargetTracking {
    testing::configure(Params::default()).expect("the defaults are valid")
}

fn pool(workers: u32, busy: u32) -> Snapshot {
    Snapshot {
        workers,
        busy,
        utilization: f64::from(busy) / f64::from(workers.max(1)),
        max_workers: 50,
        ..testing::quiet()
    }
}

fn decide(snapshot: &Snapshot) -> Decision {
    Harness::new(policy()).tick(snapshot)
}

fn targets(decisions: &[Decision]) -> Vec<u32> {
    decisions.iter().map(|d| d.target).collect()
}

#[test]
fn a_busy_pool_grows_to_the_target_utilization_at_once() {
    let decision = decide(&pool(10, 9));
    // ceil(10 × 0.9 / 0.6) = 15.
    assert_eq!(decision.target, 15);
    assert_eq!(decision.reason, "utilization 90% vs target 60%: +5");
}

#[test]
fn near_the_target_the_pool_holds() {
    let decision = decide(&pool(10, 6));
    assert_eq!(decision.target, 10);
    assert_eq!(decision.reason, "hold: utilization 60% vs target 60%");
    assert_eq!(decide(&pool(20, 13)).target, 20);
}

#[test]
fn one_quiet_tick_takes_no_worker_away() {
    let mut harness = Harness::new(policy());
    harness.tick(&pool(10, 6));
    let decision = harness.tick(&pool(10, 1));
    assert_eq!(decision.target, 10);
    assert_eq!(
        decision.reason,
        "hold: utilization 10% vs target 60%, stabilizing (10 wanted 10s ago, window 300s)"
    );
}

#[test]
fn a_lull_as_long_as_the_window_scales_down_to_what_it_needs() {
    let mut harness = Harness::new(policy());
    harness.tick(&pool(10, 6));
    // 30 quiet ticks of 10 s: the recommendation of 10 leaves the window on the last one.
    let decisions = harness.ticks(&pool(10, 1), 31);
    assert_eq!(targets(&decisions[..30]), [10; 30]);
    // ceil(10 × 0.1 / 0.6) = 2.
    assert_eq!(decisions[30].target, 2);
    assert_eq!(decisions[30].reason, "utilization 10% vs target 60%: -8");
}

#[test]
fn scaling_down_follows_the_highest_recommendation_of_the_window() {
    let params = Params::default().with("down_stabilization_s", 30);
    let mut harness = Harness::new(testing::configure::<TargetTracking>(params).expect("valid"));
    harness.tick(&pool(20, 12));
    harness.tick(&pool(20, 6)); // wants 10
    harness.tick(&pool(20, 3)); // wants 5
    let decisions = harness.ticks(&pool(20, 3), 3);
    assert_eq!(targets(&decisions), [20, 10, 5]);
}

#[test]
fn an_idle_pool_with_work_starts_one_worker() {
    let snapshot = Snapshot {
        queue_depth: 7,
        min_workers: 0,
        ..pool(0, 0)
    };
    let decision = decide(&snapshot);
    assert_eq!(decision.target, 1);
    assert_eq!(decision.reason, "queue 7 with no worker: +1");
}

#[test]
fn the_queue_alone_does_not_move_it() {
    let snapshot = Snapshot {
        queue_depth: 500,
        ..pool(10, 6)
    };
    assert_eq!(decide(&snapshot).target, 10);
}

#[test]
fn targets_stay_within_the_host_bounds() {
    assert_eq!(decide(&pool(40, 40)).target, 50);
}

#[test]
fn the_window_survives_a_rebuilt_instance() {
    let first = policy();
    let busy = pool(10, 6);
    let state = first.decide(&busy, &[]).state;
    let quiet = Snapshot {
        now_ms: busy.now_ms + 10_000,
        ..pool(10, 1)
    };
    assert_eq!(policy().decide(&quiet, &state).target, 10);
    assert_eq!(policy().decide(&quiet, b"another policy").target, 2);
}

#[test]
fn parameters_are_checked_by_name() {
    let err = testing::configure::<TargetTracking>(Params::default().with("target_utilization", 0))
        .expect_err("zero target");
    assert_eq!(
        err,
        "parameter \"target_utilization\" must be above 0 and at most 1, got 0"
    );
    let err = testing::configure::<TargetTracking>(Params::default().with("tolerance", 1.5))
        .expect_err("tolerance too wide");
    assert_eq!(
        err,
        "parameter \"tolerance\" must be from 0 to below 1, got 1.5"
    );
}
