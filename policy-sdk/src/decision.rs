//! Helpers on the contract's records: building a [`Decision`], reading a [`Snapshot`].

use crate::{Decision, Snapshot};

impl Decision {
    /// A decision for `target` workers, with `reason` for the host's log and no state.
    ///
    /// Keep the reason short and name the signal and its numbers: the host logs it every tick.
    ///
    /// ```
    /// use autoscaler_policy_sdk::Decision;
    ///
    /// let decision = Decision::new(12, "queue 140 > 20: +10 for backlog");
    /// assert_eq!(decision.target, 12);
    /// assert!(decision.state.is_empty());
    /// ```
    pub fn new(target: u32, reason: impl Into<String>) -> Self {
        Self {
            target,
            reason: reason.into(),
            state: Vec::new(),
        }
    }

    /// A decision that keeps the active workers of `snapshot` (see [`Snapshot::active_workers`]).
    ///
    /// ```
    /// use autoscaler_policy_sdk::{testing, Decision, Snapshot};
    ///
    /// let snapshot = Snapshot { workers: 6, draining: 2, ..testing::quiet() };
    /// assert_eq!(Decision::hold(&snapshot, "hold: within thresholds").target, 4);
    /// ```
    pub fn hold(snapshot: &Snapshot, reason: impl Into<String>) -> Self {
        Self::new(snapshot.active_workers(), reason)
    }

    /// Attaches the state the host hands back on the next tick.
    ///
    /// ```
    /// use autoscaler_policy_sdk::Decision;
    ///
    /// let decision = Decision::new(3, "hold").with_state(vec![1, 2, 3]);
    /// assert_eq!(decision.state, [1, 2, 3]);
    /// ```
    pub fn with_state(mut self, state: impl Into<Vec<u8>>) -> Self {
        self.state = state.into();
        self
    }
}

impl Snapshot {
    /// Workers that are not draining: the count a [`Decision::target`] is measured against.
    ///
    /// Draining workers are already on their way out, so holding means asking for the active
    /// workers, not for `workers`.
    ///
    /// ```
    /// use autoscaler_policy_sdk::{testing, Snapshot};
    ///
    /// let snapshot = Snapshot { workers: 5, draining: 1, ..testing::quiet() };
    /// assert_eq!(snapshot.active_workers(), 4);
    /// ```
    pub fn active_workers(&self) -> u32 {
        self.workers.saturating_sub(self.draining)
    }

    /// Clamps `target` to the host's `[min_workers, max_workers]`, as the host will.
    ///
    /// Never panics, even when the host's bounds are inverted (the ceiling wins then).
    ///
    /// ```
    /// use autoscaler_policy_sdk::{testing, Snapshot};
    ///
    /// let snapshot = Snapshot { min_workers: 2, max_workers: 8, ..testing::quiet() };
    /// assert_eq!(snapshot.clamp(0), 2);
    /// assert_eq!(snapshot.clamp(30), 8);
    /// ```
    pub fn clamp(&self, target: u32) -> u32 {
        target.max(self.min_workers).min(self.max_workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn active_workers_never_underflows() {
        let snapshot = Snapshot {
            workers: 1,
            draining: 3,
            ..testing::quiet()
        };
        assert_eq!(snapshot.active_workers(), 0);
    }

    #[test]
    fn clamp_prefers_the_ceiling_when_bounds_are_inverted() {
        let snapshot = Snapshot {
            min_workers: 9,
            max_workers: 4,
            ..testing::quiet()
        };
        assert_eq!(snapshot.clamp(6), 4);
    }
}
