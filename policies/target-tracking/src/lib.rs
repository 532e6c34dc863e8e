//! A reference policy: track a target utilization, as cloud autoscalers do.
//!
//! Every tick it recommends `ceil(active × utilization / target_utilization)` workers, i.e.
//! enough for the busy workers to be `target_utilization` (60 %) of the pool. Within
//! `tolerance` (10 %) of the target it recommends the current count, so the pool does not
//! flap on noise.
//!
//! - Up: at once, to the recommendation.
//! - Down: to the highest recommendation of the last `down_stabilization_s` (300 s), so one
//!   quiet tick never takes workers away; a lull must last the whole window.
//! - With no active worker and tasks waiting, it asks for one worker (there is no utilization
//!   to track then).
//!
//! It looks at nothing but utilization: no queue, latency, error or balance signal. The
//! recommendations of the window travel in the state blob ([`state::History`]).

pub mod state;

use autoscaler_policy_sdk::{Decision, Params, Policy, PolicyState, Snapshot, export_policy};

use state::History;

/// `target_utilization`: the busy share of the active workers the policy aims for.
pub const TARGET_UTILIZATION: f64 = 0.6;
/// `tolerance`: no change while utilization is within this fraction of the target.
pub const TOLERANCE: f64 = 0.1;
/// `down_stabilization_s`: scaling down follows the highest recommendation of this many
/// seconds.
pub const DOWN_STABILIZATION_S: u32 = 300;

/// The target-tracking policy, configured.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTracking {
    pub target_utilization: f64,
    pub tolerance: f64,
    pub down_stabilization_s: u32,
}

impl Policy for TargetTracking {
    fn configure(params: &mut Params) -> Result<Self, String> {
        let target_utilization = params.f64("target_utilization", TARGET_UTILIZATION)?;
        if !(target_utilization > 0.0 && target_utilization <= 1.0) {
            return Err(format!(
                "parameter \"target_utilization\" must be above 0 and at most 1, \
                 got {target_utilization}"
            ));
        }
        let tolerance = params.f64("tolerance", TOLERANCE)?;
        if !(0.0..1.0).contains(&tolerance) {
            return Err(format!(
                "parameter \"tolerance\" must be from 0 to below 1, got {tolerance}"
            ));
        }
        let down_stabilization_s = params.u32("down_stabilization_s", DOWN_STABILIZATION_S)?;
        Ok(Self {
            target_utilization,
            tolerance,
            down_stabilization_s,
        })
    }

    fn decide(&self, snapshot: &Snapshot, state: &[u8]) -> Decision {
        let current = snapshot.active_workers();
        let (recommended, why) = self.recommend(snapshot, current);
        let mut history = History::decode(state);
        let window_ms = u64::from(self.down_stabilization_s) * 1000;
        history.record(snapshot.now_ms, recommended, window_ms);
        let decision = if recommended >= current {
            self.follow(current, recommended, &why)
        } else {
            self.stabilized(snapshot, &history, current, &why)
        };
        let target = snapshot.clamp(decision.target);
        Decision { target, ..decision }.with_state(history.encode())
    }
}

impl TargetTracking {
    /// This tick's recommendation and what it came from.
    fn recommend(&self, snapshot: &Snapshot, current: u32) -> (u32, String) {
        let utilization = snapshot.utilization;
        if current == 0 {
            let wanted = u32::from(snapshot.queue_depth > 0);
            return (
                wanted,
                format!("queue {} with no worker", snapshot.queue_depth),
            );
        }
        let ratio = utilization / self.target_utilization;
        let why = format!(
            "utilization {} vs target {}",
            percent(utilization),
            percent(self.target_utilization)
        );
        if (ratio - 1.0).abs() <= self.tolerance {
            return (current, why);
        }
        // Forgive the rounding of the division: 6 busy of 10 at 60 % is exactly 10.
        let wanted = (f64::from(current) * ratio - 1e-9).ceil().max(0.0) as u32;
        (wanted, why)
    }

    /// Up (or no change): the recommendation at once.
    fn follow(&self, current: u32, recommended: u32, why: &str) -> Decision {
        if recommended == current {
            return Decision::new(current, format!("hold: {why}"));
        }
        let reason = format!("{why}: +{}", recommended - current);
        Decision::new(recommended, reason)
    }

    /// Down: only as far as the highest recommendation of the stabilization window.
    fn stabilized(
        &self,
        snapshot: &Snapshot,
        history: &History,
        current: u32,
        why: &str,
    ) -> Decision {
        let floor = history.highest();
        if floor >= current {
            let since = history
                .highest_at_ms()
                .map_or(0, |at| snapshot.now_ms.saturating_sub(at) / 1000);
            let reason = format!(
                "hold: {why}, stabilizing ({floor} wanted {since}s ago, window {}s)",
                self.down_stabilization_s
            );
            return Decision::new(current, reason);
        }
        Decision::new(floor, format!("{why}: -{}", current - floor))
    }
}

/// A fraction as a whole percentage: `0.6` is `60%`.
fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

export_policy!(TargetTracking);

#[cfg(test)]
mod tests;
