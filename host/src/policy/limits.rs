//! The bounds every policy call runs under, taken from `[policy]` in the config.

use std::time::Duration;

use crate::config::PolicyConfig;

/// How often the engine's epoch advances; a call's deadline is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Limits applied to each instance and each call.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub cpu_deadline: Duration,
    pub memory_mib: u32,
    /// Wasm stack per call (engine-wide: the engine is built with it).
    pub stack_bytes: usize,
    pub max_reason_bytes: usize,
    pub max_state_bytes: usize,
    pub max_log_bytes: usize,
    pub table_elements: usize,
    pub instances: usize,
}

impl Limits {
    pub fn from_config(config: &PolicyConfig) -> Self {
        let bytes = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            cpu_deadline: config.cpu_deadline,
            memory_mib: config.memory_mib,
            stack_bytes: bytes(config.stack_kib).saturating_mul(1024),
            max_reason_bytes: bytes(config.max_reason_bytes),
            max_state_bytes: bytes(config.max_state_bytes),
            max_log_bytes: bytes(config.max_log_bytes),
            table_elements: 100_000,
            instances: 64,
        }
    }

    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib)
            .unwrap_or(usize::MAX)
            .saturating_mul(1024 * 1024)
    }

    /// The call's deadline in epoch ticks, rounded up, plus one for the tick in progress.
    pub fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_nanos();
        let ticks = self.cpu_deadline.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_config(&PolicyConfig::default())
    }
}
