//! What target tracking remembers between ticks: its recent recommendations.
//!
//! Scaling down follows the highest recommendation of the stabilization window, so each tick
//! appends its own and drops the ones that have left the window. The instance may be rebuilt
//! between any two ticks, so the list travels in the decision's state blob.

use autoscaler_policy_sdk::{PolicyState, StateReader, StateWriter};

/// Recommendations kept at most, whatever the window: bounds the state blob (16 bytes each).
pub const MAX_RECOMMENDATIONS: usize = 512;

/// One tick's recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recommendation {
    pub at_ms: u64,
    pub workers: u32,
}

/// The recommendations of the stabilization window, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub recent: Vec<Recommendation>,
}

impl History {
    /// Adds `workers` at `now_ms` and forgets what is older than `window_ms` (or from the
    /// future, after a clock step back).
    pub fn record(&mut self, now_ms: u64, workers: u32, window_ms: u64) {
        let oldest = now_ms.saturating_sub(window_ms);
        self.recent
            .retain(|r| r.at_ms >= oldest && r.at_ms <= now_ms);
        self.recent.push(Recommendation {
            at_ms: now_ms,
            workers,
        });
        let excess = self.recent.len().saturating_sub(MAX_RECOMMENDATIONS);
        self.recent.drain(..excess);
    }

    /// The highest recommendation kept, 0 with none.
    pub fn highest(&self) -> u32 {
        self.recent.iter().map(|r| r.workers).max().unwrap_or(0)
    }

    /// When the highest recommendation was made.
    pub fn highest_at_ms(&self) -> Option<u64> {
        let highest = self.highest();
        self.recent
            .iter()
            .rev()
            .find(|r| r.workers == highest)
            .map(|r| r.at_ms)
    }
}

impl PolicyState for History {
    const TAG: [u8; 4] = *b"tgt1";

    fn write(&self, out: &mut StateWriter) {
        out.u64(self.recent.len() as u64);
        for r in &self.recent {
            out.u64(r.at_ms).u64(u64::from(r.workers));
        }
    }

    fn read(input: &mut StateReader<'_>) -> Option<Self> {
        let count = usize::try_from(input.u64()?).ok()?;
        if count > MAX_RECOMMENDATIONS {
            return None;
        }
        let mut recent = Vec::with_capacity(count);
        for _ in 0..count {
            let at_ms = input.u64()?;
            let workers = u32::try_from(input.u64()?).ok()?;
            recent.push(Recommendation { at_ms, workers });
        }
        Some(Self { recent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_round_trips() {
        let mut history = History::default();
        history.record(1_000, 4, 60_000);
        history.record(11_000, 7, 60_000);
        assert_eq!(History::decode(&history.encode()), history);
    }

    #[test]
    fn old_recommendations_leave_the_window() {
        let mut history = History::default();
        history.record(0, 9, 30_000);
        history.record(20_000, 3, 30_000);
        assert_eq!(history.highest(), 9);
        history.record(40_000, 2, 30_000);
        assert_eq!(history.highest(), 3);
        assert_eq!(history.highest_at_ms(), Some(20_000));
    }

    #[test]
    fn the_history_is_bounded() {
        let mut history = History::default();
        for i in 0..1000 {
            history.record(i, 1, u64::MAX);
        }
        assert_eq!(history.recent.len(), MAX_RECOMMENDATIONS);
        assert_eq!(history.recent[0].at_ms, 1000 - MAX_RECOMMENDATIONS as u64);
    }

    #[test]
    fn foreign_and_oversized_blobs_decode_to_an_empty_history() {
        assert_eq!(History::decode(b"thr1\x00"), History::default());
        let mut huge = b"tgt1".to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(History::decode(&huge), History::default());
    }
}
