//! Behaviour of the threshold policy, row by row of the signals table and rule by rule, driven
//! through the SDK's native harness as the host would drive the component.

use autoscaler_policy_sdk::testing::{self, Harness};
use autoscaler_policy_sdk::{Decision, ErrorRates, Params, Policy, Snapshot};

use crate::Threshold;

fn policy() -> Threshold {
    testing::configure(Params::default()).expect("the defaults are valid")
}

fn policy_with(params: Params) -> Threshold {
    testing::configure(params).expect("valid params")
}

/// One tick on a fresh state.
fn decide(snapshot: &Snapshot) -> Decision {
    Harness::new(policy()).tick(snapshot)
}

/// A pool of `workers`, `busy` of them busy, with a consistent utilization and room to grow.
fn pool(workers: u32, busy: u32) -> Snapshot {
    Snapshot {
        workers,
        busy,
        utilization: f64::from(busy) / f64::from(workers),
        max_workers: 50,
        ..testing::quiet()
    }
}

fn errors(transport: f64, task: f64, solver_capacity: f64) -> ErrorRates {
    ErrorRates {
        transport,
        task,
        solver_capacity,
        ..testing::no_errors()
    }
}

fn targets(decisions: &[Decision]) -> Vec<u32> {
    decisions.iter().map(|decision| decision.target).collect()
}

/// Runs the down window out on `snapshot` (4 ticks of 10 s: 0 s to 30 s of low load) and
/// returns the last decision, the first one allowed to step down.
fn after_down_window(snapshot: &Snapshot) -> Decision {
    let mut harness = Harness::new(policy());
    let decisions = harness.ticks(snapshot, 4);
    decisions.into_iter().last().expect("four ticks")
}

// Queue depth.

#[test]
fn a_backlog_scales_up_by_the_need_not_by_one() {
    let decision = decide(&Snapshot {
        queue_depth: 140,
        ..pool(4, 2)
    });
    // busy 2 + ceil(140 / 8) = 20.
    assert_eq!(decision.target, 20);
    assert_eq!(decision.reason, "queue 140 > 20: +16 for backlog");
}

#[test]
fn a_queue_at_the_threshold_holds() {
    let decision = decide(&Snapshot {
        queue_depth: 20,
        ..pool(4, 2)
    });
    assert_eq!(decision.target, 4);
    assert_eq!(decision.reason, "hold: within thresholds");
}

#[test]
fn a_short_queue_lets_the_pool_shrink() {
    let decision = after_down_window(&Snapshot {
        queue_depth: 4,
        ..pool(12, 0)
    });
    assert_eq!(decision.target, 9);
    assert_eq!(decision.reason, "low load for 30s: -3");
}

#[test]
fn a_medium_queue_keeps_the_pool() {
    let decision = after_down_window(&Snapshot {
        queue_depth: 10,
        ..pool(12, 0)
    });
    assert_eq!(decision.target, 12);
    assert_eq!(decision.reason, "hold: within thresholds");
}

#[test]
fn a_queue_with_no_worker_scales_up_from_zero() {
    let decision = decide(&Snapshot {
        queue_depth: 3,
        min_workers: 0,
        ..pool(0, 0)
    });
    assert_eq!(decision.target, 1);
    assert_eq!(decision.reason, "queue 3 with no worker: +1 for backlog");
}

#[test]
fn a_backlog_the_idle_workers_cover_holds() {
    let decision = decide(&Snapshot {
        queue_depth: 30,
        ..pool(10, 2)
    });
    assert_eq!(decision.target, 10);
    assert_eq!(decision.reason, "hold: queue 30 > 20, 10 workers suffice");
}

// Worker utilization.

#[test]
fn high_utilization_with_tasks_waiting_scales_up_to_the_target_utilization() {
    let decision = decide(&Snapshot {
        queue_depth: 8,
        ..pool(20, 20)
    });
    // ceil(20 / 0.95) = 22.
    assert_eq!(decision.target, 22);
    assert_eq!(decision.reason, "utilization 100% > 90%: +2 to reach 95%");
}

#[test]
fn high_utilization_with_an_empty_queue_holds() {
    let decision = decide(&pool(20, 20));
    assert_eq!(decision.target, 20);
    assert_eq!(decision.reason, "hold: within thresholds");
    let few = decide(&Snapshot {
        queue_depth: 4,
        ..pool(20, 20)
    });
    assert_eq!(few.target, 20);
}

#[test]
fn low_utilization_lets_the_pool_shrink() {
    let decision = after_down_window(&pool(10, 1));
    assert_eq!(decision.target, 8);
    assert_eq!(decision.reason, "low load for 30s: -2");
}

#[test]
fn medium_utilization_keeps_the_pool() {
    let decision = after_down_window(&pool(10, 9));
    assert_eq!(decision.target, 10);
    assert_eq!(decision.reason, "hold: within thresholds");
}

// Solve latency.

#[test]
fn a_slow_p95_scales_up_in_proportion() {
    let decision = decide(&Snapshot {
        latency_p95_ms: Some(90_000),
        ..pool(4, 2)
    });
    assert_eq!(decision.target, 6);
    assert_eq!(decision.reason, "p95 90s > 60s: +2 for latency");
}

#[test]
fn a_slow_p95_waits_a_window_after_a_scale_up() {
    let slow = Snapshot {
        latency_p95_ms: Some(90_000),
        since_scale_up_ms: Some(20_000),
        ..pool(6, 2)
    };
    let decision = decide(&slow);
    assert_eq!(decision.target, 6);
    assert_eq!(decision.reason, "hold: p95 90s > 60s, scaled up 20s ago");

    let a_window_later = Snapshot {
        since_scale_up_ms: Some(60_000),
        ..slow
    };
    assert_eq!(decide(&a_window_later).target, 9);
}

#[test]
fn a_lasting_slow_p95_steps_up_once_per_window() {
    let slow = Snapshot {
        latency_p95_ms: Some(90_000),
        ..pool(4, 2)
    };
    let decisions = Harness::new(policy()).follow(&slow, 8);
    assert_eq!(targets(&decisions), [6, 6, 6, 6, 6, 6, 9, 9]);
    assert_eq!(
        decisions[1].reason,
        "hold: p95 90s > 60s, scaled up 10s ago"
    );
    assert_eq!(decisions[6].reason, "p95 90s > 60s: +3 for latency");
}

#[test]
fn a_fast_p95_lets_the_pool_shrink() {
    let decision = after_down_window(&Snapshot {
        latency_p95_ms: Some(35_000),
        ..pool(8, 0)
    });
    assert_eq!(decision.reason, "low load for 30s: -2");
}

#[test]
fn a_middling_p95_keeps_the_pool() {
    let decision = after_down_window(&Snapshot {
        latency_p95_ms: Some(50_000),
        ..pool(8, 0)
    });
    assert_eq!(decision.target, 8);
    assert_eq!(decision.reason, "hold: within thresholds");
}

// Error rate.

#[test]
fn transport_and_task_errors_add_a_fresh_worker() {
    let decision = decide(&Snapshot {
        errors: errors(0.06, 0.02, 0.0),
        attempts: 100,
        queue_depth: 6,
        ..pool(4, 2)
    });
    // 8 errors in 100 attempts with tasks waiting: one more worker, whatever the rate.
    assert_eq!(decision.target, 5);
    assert_eq!(decision.reason, "errors 8% > 5%: +1 for a fresh worker");
}

#[test]
fn errors_with_nothing_waiting_hold_the_pool() {
    let decision = decide(&Snapshot {
        errors: errors(0.4, 0.0, 0.0),
        attempts: 100,
        queue_depth: 4,
        ..pool(6, 5)
    });
    // The workers there keep up with the load; a fresh one would wait for work.
    assert_eq!(decision.target, 6);
    assert_eq!(decision.reason, "hold: within thresholds");
}

#[test]
fn a_few_errors_in_a_small_window_are_noise() {
    let decision = decide(&Snapshot {
        errors: errors(0.1, 0.0, 0.0),
        attempts: 40,
        ..pool(4, 2)
    });
    // 4 errors are fewer than error_min_count (5).
    assert_eq!(decision.target, 4);
    let after = after_down_window(&Snapshot {
        errors: errors(0.1, 0.0, 0.0),
        attempts: 40,
        ..pool(8, 0)
    });
    assert_eq!(after.reason, "low load for 30s: -2");
}

#[test]
fn errors_wait_a_window_after_a_scale_up() {
    let decision = decide(&Snapshot {
        errors: errors(0.2, 0.0, 0.0),
        attempts: 50,
        since_scale_up_ms: Some(10_000),
        queue_depth: 5,
        ..pool(4, 2)
    });
    assert_eq!(decision.target, 4);
    assert_eq!(decision.reason, "hold: errors 20% > 5%, scaled up 10s ago");
}

#[test]
fn a_stable_error_rate_lets_the_pool_shrink() {
    let decision = after_down_window(&Snapshot {
        errors: errors(0.005, 0.0, 0.0),
        attempts: 400,
        ..pool(8, 0)
    });
    assert_eq!(decision.reason, "low load for 30s: -2");
}

#[test]
fn a_lingering_error_rate_keeps_the_pool() {
    let decision = after_down_window(&Snapshot {
        errors: errors(0.01, 0.01, 0.0),
        attempts: 400,
        ..pool(8, 0)
    });
    assert_eq!(decision.target, 8);
    assert_eq!(decision.reason, "hold: within thresholds");
}

// Several signals, bounds and draining.

#[test]
fn the_largest_need_wins() {
    let decision = decide(&Snapshot {
        queue_depth: 40,
        latency_p95_ms: Some(200_000),
        ..pool(10, 9)
    });
    // backlog 9 + 5 = 14; utilization ceil(9 / 0.95) = 10; latency 2 × 10 = 20.
    assert_eq!(decision.target, 20);
    assert_eq!(decision.reason, "p95 200s > 60s: +10 for latency");
}

#[test]
fn a_scale_up_stops_at_the_host_maximum() {
    let decision = decide(&Snapshot {
        queue_depth: 400,
        max_workers: 20,
        ..pool(4, 4)
    });
    assert_eq!(decision.target, 20);
    assert_eq!(decision.reason, "queue 400 > 20: +16 for backlog");

    let at_max = decide(&Snapshot {
        queue_depth: 400,
        max_workers: 20,
        ..pool(20, 20)
    });
    assert_eq!(at_max.target, 20);
    assert_eq!(at_max.reason, "hold: queue 400 > 20, at max 20");
}

#[test]
fn draining_workers_do_not_count_as_capacity() {
    let decision = decide(&Snapshot {
        workers: 10,
        draining: 4,
        busy: 6,
        utilization: 1.0,
        queue_depth: 5,
        max_workers: 50,
        ..testing::quiet()
    });
    // ceil(6 / 0.95) = 7 against 6 active workers.
    assert_eq!(decision.target, 7);
    assert_eq!(decision.reason, "utilization 100% > 90%: +1 to reach 95%");
}

// Balance.

#[test]
fn a_balance_under_the_floor_stops_scaling_up() {
    let decision = decide(&Snapshot {
        queue_depth: 140,
        balance_usd: Some(0.4),
        ..pool(4, 4)
    });
    assert_eq!(decision.target, 4);
    assert_eq!(decision.reason, "hold: balance $0.40 < $1.00");
}

#[test]
fn an_unknown_balance_does_not_stop_scaling_up() {
    let decision = decide(&Snapshot {
        queue_depth: 140,
        balance_usd: None,
        ..pool(4, 4)
    });
    assert_eq!(decision.target, 22);
}

#[test]
fn a_balance_under_the_floor_still_lets_the_pool_shrink() {
    let decision = after_down_window(&Snapshot {
        balance_usd: Some(0.1),
        ..pool(8, 0)
    });
    assert_eq!(decision.target, 6);
}

// Solver capacity (no free slot) and paused submissions.

#[test]
fn no_slot_refusals_never_add_workers() {
    let decision = decide(&Snapshot {
        queue_depth: 140,
        errors: errors(0.0, 0.0, 0.1),
        ..pool(6, 6)
    });
    assert_eq!(decision.target, 6);
    assert_eq!(decision.reason, "hold: capacity refusals 10% > 0%");
}

#[test]
fn heavy_no_slot_refusals_step_down_toward_busy() {
    let refused = Snapshot {
        queue_depth: 140,
        errors: errors(0.0, 0.0, 0.7),
        ..pool(12, 5)
    };
    let mut harness = Harness::new(policy());
    let decisions = harness.follow(&refused, 5);
    assert_eq!(targets(&decisions), [9, 7, 6, 5, 5]);
    assert_eq!(
        decisions[0].reason,
        "capacity refusals 70% > 50%: -3 toward busy 5"
    );
    assert_eq!(
        decisions[4].reason,
        "hold: capacity refusals 70% > 50%, at busy 5"
    );
}

#[test]
fn paused_submissions_hold_whatever_the_queue() {
    let decision = decide(&Snapshot {
        queue_depth: 500,
        submissions_paused: true,
        ..pool(4, 0)
    });
    assert_eq!(decision.target, 4);
    assert_eq!(decision.reason, "hold: submissions paused");
}

// The down window.

#[test]
fn low_load_shorter_than_the_window_holds() {
    let mut harness = Harness::new(policy());
    let decisions = harness.ticks(&pool(12, 0), 3);
    assert_eq!(targets(&decisions), [12; 3]);
    assert_eq!(decisions[0].reason, "hold: low load for 0s of 30s");
    assert_eq!(decisions[2].reason, "hold: low load for 20s of 30s");
}

#[test]
fn after_the_window_the_pool_steps_down_each_tick_to_the_minimum() {
    let mut harness = Harness::new(policy());
    let decisions = harness.follow(&pool(12, 0), 13);
    assert_eq!(
        targets(&decisions),
        [12, 12, 12, 9, 7, 6, 5, 4, 3, 2, 1, 1, 1]
    );
    assert_eq!(decisions[4].reason, "low load for 40s: -2");
    assert_eq!(decisions[12].reason, "hold: low load for 120s, at min 1");
}

#[test]
fn a_spike_in_the_window_restarts_it() {
    let quiet = pool(12, 0);
    let spike = Snapshot {
        queue_depth: 10,
        ..quiet
    };
    let mut harness = Harness::new(policy());
    harness.ticks(&quiet, 2);
    assert_eq!(harness.tick(&spike).reason, "hold: within thresholds");
    let decisions = harness.ticks(&quiet, 4);
    assert_eq!(decisions[0].reason, "hold: low load for 0s of 30s");
    assert_eq!(decisions[2].target, 12);
    assert_eq!(decisions[3].reason, "low load for 30s: -3");
}

#[test]
fn the_window_is_a_parameter() {
    let params = Params::default().with("down_window_s", 50);
    let mut harness = Harness::new(policy_with(params));
    let decisions = harness.ticks(&pool(12, 0), 6);
    assert_eq!(targets(&decisions), [12, 12, 12, 12, 12, 9]);
}

#[test]
fn a_step_down_never_goes_below_busy() {
    // Utilization and its target set so only the busy floor limits the step.
    let params = Params::default()
        .with("utilization_down", 1.0)
        .with("utilization_up", 1.0)
        .with("target_utilization", 1.0);
    let mut harness = Harness::new(policy_with(params));
    let busy = Snapshot {
        min_workers: 0,
        ..pool(8, 3)
    };
    let decisions = harness.follow(&busy, 9);
    assert_eq!(targets(&decisions), [8, 8, 8, 6, 5, 4, 3, 3, 3]);
    assert_eq!(decisions[6].reason, "low load for 60s: -1");
    // At 3 workers all busy, utilization is 100 %: no longer low load.
    assert_eq!(decisions[8].reason, "hold: within thresholds");
}

#[test]
fn a_step_down_keeps_what_the_load_needs() {
    let decision = after_down_window(&Snapshot {
        queue_depth: 4,
        ..pool(4, 0)
    });
    // busy 0 + ceil(4 / 8) = 1 needed; step of 1 from 4.
    assert_eq!(decision.target, 3);
}

// State.

#[test]
fn an_empty_state_starts_a_fresh_window() {
    let mut harness = Harness::new(policy()).with_state(Vec::new());
    let decision = harness.tick(&pool(12, 0));
    assert_eq!(decision.reason, "hold: low load for 0s of 30s");
    assert!(!decision.state.is_empty());
}

#[test]
fn a_garbage_state_is_treated_as_empty() {
    let mut harness = Harness::new(policy()).with_state(b"state of another policy".to_vec());
    let decisions = harness.ticks(&pool(12, 0), 4);
    assert_eq!(decisions[0].reason, "hold: low load for 0s of 30s");
    assert_eq!(decisions[3].reason, "low load for 30s: -3");
}

#[test]
fn the_window_survives_a_rebuilt_instance() {
    let quiet = pool(12, 0);
    let at = |seconds: u64| Snapshot {
        now_ms: testing::START_MS + seconds * 1000,
        ..quiet
    };
    let first = policy();
    let mut state = Vec::new();
    for seconds in [0, 10, 20, 30] {
        state = first.decide(&at(seconds), &state).state;
    }
    // After a trap or a reload the host hands the last state to a fresh instance.
    let rebuilt = policy();
    let decision = rebuilt.decide(&at(60), &state);
    assert_eq!(decision.reason, "low load for 60s: -3");
}

#[test]
fn decide_is_deterministic_for_the_same_input() {
    let snapshot = Snapshot {
        queue_depth: 50,
        ..pool(5, 5)
    };
    let policy = policy();
    assert_eq!(policy.decide(&snapshot, &[]), policy.decide(&snapshot, &[]));
}
