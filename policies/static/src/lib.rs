//! A reference policy: always the same number of workers.
//!
//! The baseline the other policies are compared against, and the simplest complete example
//! of the SDK. Parameter: `workers` (default 4). The host still clamps the count to its
//! `[min_workers, max_workers]`.

use autoscaler_policy_sdk::{Decision, Params, Policy, Snapshot, export_policy};

/// Workers asked for when `workers` is not given.
pub const DEFAULT_WORKERS: u32 = 4;

/// Asks for `workers` every tick, whatever the load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Static {
    pub workers: u32,
}

impl Policy for Static {
    fn configure(params: &mut Params) -> Result<Self, String> {
        let workers = params.u32("workers", DEFAULT_WORKERS)?;
        Ok(Self { workers })
    }

    fn decide(&self, _snapshot: &Snapshot, _state: &[u8]) -> Decision {
        Decision::new(self.workers, format!("static: {} workers", self.workers))
    }
}

export_policy!(Static);

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_policy_sdk::testing;

    #[test]
    fn asks_for_the_same_count_whatever_the_load() {
        let policy: Static = testing::configure(Params::new(vec![])).expect("defaults");
        let busy = Snapshot {
            queue_depth: 500,
            busy: 2,
            ..testing::quiet()
        };
        assert_eq!(policy.decide(&busy, &[]).target, DEFAULT_WORKERS);
        assert_eq!(
            policy.decide(&testing::quiet(), &[]).target,
            DEFAULT_WORKERS
        );
    }

    #[test]
    fn the_count_is_a_parameter() {
        let params = Params::new(vec![]).with("workers", 9u32);
        let policy: Static = testing::configure(params).expect("valid");
        assert_eq!(policy.workers, 9);
    }

    #[test]
    fn unknown_parameters_are_rejected() {
        let params = Params::new(vec![]).with("wrokers", 9u32);
        let err = testing::configure::<Static>(params).expect_err("typo");
        assert!(err.contains("wrokers"), "{err}");
    }
}
