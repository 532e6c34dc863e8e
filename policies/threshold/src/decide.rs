//! One tick of the threshold policy: from a snapshot and the low-load stretch to a decision.
//!
//! In order of precedence:
//! 1. submissions paused: hold (the pool can do nothing useful);
//! 2. heavy solver-capacity refusals: step down toward the busy workers;
//! 3. any up-signal: scale up to the largest need, unless the balance is under the floor or the
//!    provider refuses for lack of a slot;
//! 4. low load for a whole window: step down toward what the load needs;
//! 5. otherwise hold.
//!
//! Targets are counted in active (non-draining) workers and clamped by the caller.

use autoscaler_policy_sdk::{Decision, Snapshot};

use crate::config::Config;
use crate::format::{percent, seconds, usd};
use crate::signals::{self, UpSignal};
use crate::state::LowLoad;

/// Decides one tick; returns the decision and the low-load stretch for the next tick.
pub fn decide(config: &Config, snapshot: &Snapshot, low: LowLoad) -> (Decision, LowLoad) {
    if snapshot.submissions_paused {
        let hold = Decision::hold(snapshot, "hold: submissions paused");
        return (hold, LowLoad::default());
    }
    if let Some(step) = capacity_step_down(config, snapshot) {
        return (step, LowLoad::default());
    }
    let ups = signals::up_signals(config, snapshot);
    if !ups.is_empty() {
        return (scale_up(config, snapshot, &ups), LowLoad::default());
    }
    if signals::low_load(config, snapshot) {
        return scale_down(config, snapshot, low);
    }
    let hold = Decision::hold(snapshot, "hold: within thresholds");
    (hold, LowLoad::default())
}

/// Steps down toward the busy workers when most attempts are refused for lack of a slot: the
/// plan has fewer threads than the pool has workers, and every extra worker adds refusals.
fn capacity_step_down(config: &Config, snapshot: &Snapshot) -> Option<Decision> {
    let rate = snapshot.errors.solver_capacity;
    if rate <= config.capacity_step_down {
        return None;
    }
    let label = format!(
        "capacity refusals {} > {}",
        percent(rate),
        percent(config.capacity_step_down)
    );
    let floor = snapshot.busy.max(snapshot.min_workers);
    let (current, target) = step_down(config, snapshot, floor);
    let decision = if target < current {
        let reason = format!(
            "{label}: -{} toward {}",
            current - target,
            floor_name(snapshot, floor)
        );
        Decision::new(target, reason)
    } else {
        Decision::hold(
            snapshot,
            format!("hold: {label}, at {}", floor_name(snapshot, floor)),
        )
    };
    Some(decision)
}

/// Scales up to the largest need among `ups`, unless something forbids adding workers.
fn scale_up(config: &Config, snapshot: &Snapshot, ups: &[UpSignal]) -> Decision {
    if let Some(reason) = up_blocked(config, snapshot) {
        return Decision::hold(snapshot, reason);
    }
    let current = snapshot.active_workers();
    let Some((wants, up)) = strongest(ups).filter(|&(wants, _)| wants > current) else {
        return Decision::hold(snapshot, hold_reason(current, &ups[0]));
    };
    let target = snapshot.clamp(wants);
    if target <= current {
        let reason = format!("hold: {}, at max {}", up.label, snapshot.max_workers);
        return Decision::hold(snapshot, reason);
    }
    let reason = format!("{}: +{} {}", up.label, target - current, up.note);
    Decision::new(target, reason)
}

/// Why workers must not be added now, if they must not: the balance is known and under the
/// floor, or the provider refuses attempts for lack of a free slot.
fn up_blocked(config: &Config, snapshot: &Snapshot) -> Option<String> {
    if let Some(balance) = snapshot
        .balance_usd
        .filter(|&balance| balance < config.balance_floor_usd)
    {
        let floor = usd(config.balance_floor_usd);
        return Some(format!("hold: balance {} < {floor}", usd(balance)));
    }
    let refusals = snapshot.errors.solver_capacity;
    if refusals > config.capacity_hold {
        let hold = percent(config.capacity_hold);
        return Some(format!(
            "hold: capacity refusals {} > {hold}",
            percent(refusals)
        ));
    }
    None
}

/// The signal asking for the most workers; the earliest in the table on a tie.
fn strongest(ups: &[UpSignal]) -> Option<(u32, &UpSignal)> {
    ups.iter()
        .rev()
        .filter_map(|up| up.wants.map(|wants| (wants, up)))
        .max_by_key(|&(wants, _)| wants)
}

/// The reason for holding when the up-signals ask for no more than the active workers.
fn hold_reason(current: u32, up: &UpSignal) -> String {
    match up.wants {
        None => format!("hold: {}, {}", up.label, up.note),
        Some(_) => format!("hold: {}, {current} workers suffice", up.label),
    }
}

/// Steps down once low load has held for `down_window_s`; holds while the window fills.
fn scale_down(config: &Config, snapshot: &Snapshot, low: LowLoad) -> (Decision, LowLoad) {
    let low = low.continued(snapshot.now_ms);
    let held_ms = low.held_ms(snapshot.now_ms);
    let held = seconds(held_ms);
    if held_ms < config.down_window_ms() {
        let window = seconds(config.down_window_ms());
        let reason = format!("hold: low load for {held} of {window}");
        return (Decision::hold(snapshot, reason), low);
    }
    let floor = signals::needed(config, snapshot).max(snapshot.min_workers);
    let (current, target) = step_down(config, snapshot, floor);
    let decision = if target < current {
        Decision::new(
            target,
            format!("low load for {held}: -{}", current - target),
        )
    } else {
        let reason = format!(
            "hold: low load for {held}, at {}",
            floor_name(snapshot, floor)
        );
        Decision::hold(snapshot, reason)
    };
    (decision, low)
}

/// The active workers, and the count one step down from them, never below `floor`.
fn step_down(config: &Config, snapshot: &Snapshot, floor: u32) -> (u32, u32) {
    let current = snapshot.active_workers();
    let step = ((f64::from(current) * config.down_step) as u32).max(1);
    (current, current.saturating_sub(step).max(floor))
}

/// What a floor is: the host's minimum, the busy workers, or what the load needs.
fn floor_name(snapshot: &Snapshot, floor: u32) -> String {
    if floor == snapshot.min_workers {
        format!("min {floor}")
    } else if floor == snapshot.busy {
        format!("busy {floor}")
    } else {
        format!("need {floor}")
    }
}
