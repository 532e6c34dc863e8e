//! What the threshold policy remembers between ticks: when the current low-load stretch began.
//!
//! Scaling down waits for low load to hold for a whole window, and the instance may be rebuilt
//! between any two ticks, so the start of the stretch travels in the decision's state blob.

use autoscaler_policy_sdk::{PolicyState, StateReader, StateWriter};

/// The start of the current low-load stretch, if the last tick was a low-load tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LowLoad {
    /// `now_ms` of the first tick of the stretch.
    pub since_ms: Option<u64>,
}

impl LowLoad {
    /// A stretch that continues from this state, or starts at `now_ms`.
    ///
    /// A start in the future (a clock step back, or a foreign blob that happened to decode)
    /// restarts the stretch rather than trusting it.
    pub fn continued(self, now_ms: u64) -> Self {
        let since_ms = self
            .since_ms
            .filter(|&since| since <= now_ms)
            .unwrap_or(now_ms);
        Self {
            since_ms: Some(since_ms),
        }
    }

    /// How long the stretch has lasted at `now_ms`; 0 with no stretch.
    pub fn held_ms(self, now_ms: u64) -> u64 {
        self.since_ms
            .map_or(0, |since| now_ms.saturating_sub(since))
    }
}

impl PolicyState for LowLoad {
    const TAG: [u8; 4] = *b"thr1";

    fn write(&self, out: &mut StateWriter) {
        out.bool(self.since_ms.is_some())
            .u64(self.since_ms.unwrap_or_default());
    }

    fn read(input: &mut StateReader<'_>) -> Option<Self> {
        let open = input.bool()?;
        let since_ms = input.u64()?;
        Some(Self {
            since_ms: open.then_some(since_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_with_and_without_a_stretch() {
        for state in [LowLoad::default(), LowLoad { since_ms: Some(7) }] {
            assert_eq!(LowLoad::decode(&state.encode()), state);
        }
    }

    #[test]
    fn empty_and_garbage_blobs_decode_to_no_stretch() {
        assert_eq!(LowLoad::decode(&[]), LowLoad::default());
        assert_eq!(LowLoad::decode(b"\xff\x00garbage"), LowLoad::default());
        assert_eq!(LowLoad::decode(b"thr1\x01short"), LowLoad::default());
    }

    #[test]
    fn a_stretch_from_the_future_restarts_now() {
        let state = LowLoad {
            since_ms: Some(5_000),
        };
        assert_eq!(state.continued(1_000).since_ms, Some(1_000));
        assert_eq!(state.continued(9_000).held_ms(9_000), 4_000);
    }
}
