//! The threshold policy's parameters: names, defaults, and validation.
//!
//! Every threshold of the signals table is a parameter. The scale-up thresholds keep the
//! table's values; the low-load ones, the utilization target and the down window were tuned by
//! replaying the bundled scenarios (`autoscaler replay`, see `docs/replay.md`): with the table's
//! 20 % / 20 s / 60 s the pool never shrank while tokens were being solved (their P95 is about
//! 35 s) and settled anywhere between 1.25 and 5 times its busy workers, costing more than the
//! fixed-step reference policy.
//! [`Config::from_params`] reads them in the order a user would look them up and rejects a
//! negative, out-of-range or inverted value with a message naming the key.

use autoscaler_policy_sdk::Params;

/// `queue_up`: scale up when more tasks than this wait in the queue.
pub const QUEUE_UP: u32 = 20;
/// `queue_down`: the queue counts as low below this many waiting tasks.
pub const QUEUE_DOWN: u32 = 5;
/// `utilization_up`: scale up when more than this fraction of the active workers is busy (and
/// tasks wait). Above the source table's 0.8 only to stay above `utilization_down`.
pub const UTILIZATION_UP: f64 = 0.9;
/// `utilization_down`: utilization counts as low below this fraction (the source table says
/// 0.2; replays showed it leaves pools at up to five times their busy workers).
pub const UTILIZATION_DOWN: f64 = 0.85;
/// `p95_up_s`: scale up when the P95 solve latency exceeds this many seconds.
pub const P95_UP_S: f64 = 60.0;
/// `p95_down_s`: latency counts as low below this P95, in seconds (or with no sample). Above
/// the P95 of normal token solves (about 35 s with a 15 s first poll), so only a slowdown holds
/// the pool (the source table says 20, which tokens never reach).
pub const P95_DOWN_S: f64 = 45.0;
/// `error_up`: scale up when transport and task errors exceed this fraction of attempts.
pub const ERROR_UP: f64 = 0.05;
/// `error_down`: errors count as low below this fraction of attempts.
pub const ERROR_DOWN: f64 = 0.01;
/// `error_min_count`: the error signals count only with at least this many transport and task
/// errors in the window; fewer are noise (two in thirty attempts are already 7 %).
pub const ERROR_MIN_COUNT: u32 = 5;
/// `balance_floor_usd`: never scale up while the known balance is below this, in US dollars.
pub const BALANCE_FLOOR_USD: f64 = 1.0;
/// `capacity_hold`: never scale up while the solver-capacity (no free slot) refusal rate is
/// above this fraction of attempts. 0 means any refusal holds.
pub const CAPACITY_HOLD: f64 = 0.0;
/// `capacity_step_down`: above this refusal rate, step down toward the busy workers, since the
/// plan has fewer threads than the pool has workers.
pub const CAPACITY_STEP_DOWN: f64 = 0.5;
/// `tasks_per_worker`: the backlog one new worker is expected to absorb.
pub const TASKS_PER_WORKER: u32 = 8;
/// `target_utilization`: the utilization a scale-up on the utilization signal aims for, and
/// the floor of a step down. High, because waiting tasks trigger it: the queue is the buffer.
pub const TARGET_UTILIZATION: f64 = 0.95;
/// `down_window_s`: how long, in seconds, load must stay low before the first step down.
pub const DOWN_WINDOW_S: u32 = 30;
/// `down_step`: the fraction of the active workers removed per tick when stepping down
/// (at least one worker).
pub const DOWN_STEP: f64 = 0.25;

/// The validated parameters of the threshold policy; see the constants for each meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub queue_up: u32,
    pub queue_down: u32,
    pub utilization_up: f64,
    pub utilization_down: f64,
    pub p95_up_s: f64,
    pub p95_down_s: f64,
    pub error_up: f64,
    pub error_down: f64,
    pub error_min_count: u32,
    pub balance_floor_usd: f64,
    pub capacity_hold: f64,
    pub capacity_step_down: f64,
    pub tasks_per_worker: u32,
    pub target_utilization: f64,
    pub down_window_s: u32,
    pub down_step: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            queue_up: QUEUE_UP,
            queue_down: QUEUE_DOWN,
            utilization_up: UTILIZATION_UP,
            utilization_down: UTILIZATION_DOWN,
            p95_up_s: P95_UP_S,
            p95_down_s: P95_DOWN_S,
            error_up: ERROR_UP,
            error_down: ERROR_DOWN,
            error_min_count: ERROR_MIN_COUNT,
            balance_floor_usd: BALANCE_FLOOR_USD,
            capacity_hold: CAPACITY_HOLD,
            capacity_step_down: CAPACITY_STEP_DOWN,
            tasks_per_worker: TASKS_PER_WORKER,
            target_utilization: TARGET_UTILIZATION,
            down_window_s: DOWN_WINDOW_S,
            down_step: DOWN_STEP,
        }
    }
}

impl Config {
    /// Reads and validates every parameter, each defaulting to the table's value.
    pub fn from_params(params: &mut Params) -> Result<Self, String> {
        let config = Self {
            queue_up: params.u32("queue_up", QUEUE_UP)?,
            queue_down: params.u32("queue_down", QUEUE_DOWN)?,
            utilization_up: fraction(params, "utilization_up", UTILIZATION_UP)?,
            utilization_down: fraction(params, "utilization_down", UTILIZATION_DOWN)?,
            p95_up_s: non_negative(params, "p95_up_s", P95_UP_S)?,
            p95_down_s: non_negative(params, "p95_down_s", P95_DOWN_S)?,
            error_up: fraction(params, "error_up", ERROR_UP)?,
            error_down: fraction(params, "error_down", ERROR_DOWN)?,
            error_min_count: params.u32("error_min_count", ERROR_MIN_COUNT)?,
            balance_floor_usd: non_negative(params, "balance_floor_usd", BALANCE_FLOOR_USD)?,
            capacity_hold: fraction(params, "capacity_hold", CAPACITY_HOLD)?,
            capacity_step_down: fraction(params, "capacity_step_down", CAPACITY_STEP_DOWN)?,
            tasks_per_worker: at_least_one(params, "tasks_per_worker", TASKS_PER_WORKER)?,
            target_utilization: share(params, "target_utilization", TARGET_UTILIZATION)?,
            down_window_s: params.u32("down_window_s", DOWN_WINDOW_S)?,
            down_step: share(params, "down_step", DOWN_STEP)?,
        };
        config.check_order()?;
        Ok(config)
    }

    /// The scale-down window in milliseconds.
    pub fn down_window_ms(&self) -> u64 {
        u64::from(self.down_window_s) * 1000
    }

    /// Rejects pairs where the low-load threshold is above the scale-up one.
    fn check_order(&self) -> Result<(), String> {
        ordered(
            ("queue_down", self.queue_down.into()),
            ("queue_up", self.queue_up.into()),
        )?;
        ordered(
            ("utilization_down", self.utilization_down),
            ("utilization_up", self.utilization_up),
        )?;
        ordered(("p95_down_s", self.p95_down_s), ("p95_up_s", self.p95_up_s))?;
        ordered(("error_down", self.error_down), ("error_up", self.error_up))?;
        ordered(
            ("capacity_hold", self.capacity_hold),
            ("capacity_step_down", self.capacity_step_down),
        )
    }
}

/// A number that must not be negative.
fn non_negative(params: &mut Params, name: &str, default: f64) -> Result<f64, String> {
    let value = params.f64(name, default)?;
    if value < 0.0 {
        return Err(format!(
            "parameter \"{name}\" must not be negative, got {value}"
        ));
    }
    Ok(value)
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

/// A fraction above 0 and at most 1: a share that must do something.
fn share(params: &mut Params, name: &str, default: f64) -> Result<f64, String> {
    let value = params.f64(name, default)?;
    if !(value > 0.0 && value <= 1.0) {
        return Err(format!(
            "parameter \"{name}\" must be above 0 and at most 1, got {value}"
        ));
    }
    Ok(value)
}

/// A count of at least 1.
fn at_least_one(params: &mut Params, name: &str, default: u32) -> Result<u32, String> {
    match params.u32(name, default)? {
        0 => Err(format!("parameter \"{name}\" must be at least 1, got 0")),
        value => Ok(value),
    }
}

/// Rejects a low-load threshold above its scale-up threshold.
fn ordered((low, low_value): (&str, f64), (high, high_value): (&str, f64)) -> Result<(), String> {
    if low_value > high_value {
        return Err(format!(
            "parameter \"{low}\" ({low_value}) must not be above \"{high}\" ({high_value})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscaler_policy_sdk::{Decision, Policy, Snapshot, testing};

    /// A policy that only reads the config, to check it as the host would.
    #[derive(Debug)]
    struct Probe(Config);

    impl Policy for Probe {
        fn configure(params: &mut Params) -> Result<Self, String> {
            Config::from_params(params).map(Probe)
        }

        fn decide(&self, snapshot: &Snapshot, _state: &[u8]) -> Decision {
            Decision::hold(snapshot, "probe")
        }
    }

    fn configure(params: Params) -> Result<Config, String> {
        testing::configure::<Probe>(params).map(|probe| probe.0)
    }

    /// The message `configure` rejects `params` with.
    fn rejection(params: Params) -> String {
        match configure(params) {
            Ok(config) => panic!("expected a rejection, got {config:?}"),
            Err(message) => message,
        }
    }

    #[test]
    fn no_params_give_the_defaults() {
        assert_eq!(configure(Params::default()), Ok(Config::default()));
    }

    #[test]
    fn every_threshold_can_be_set() {
        let params = Params::default()
            .with("queue_up", 40)
            .with("p95_up_s", 90)
            .with("down_window_s", 30)
            .with("down_step", 0.5);
        let config = configure(params).expect("valid params");
        assert_eq!(config.queue_up, 40);
        assert_eq!(config.p95_up_s, 90.0);
        assert_eq!(config.down_window_ms(), 30_000);
        assert_eq!(config.down_step, 0.5);
    }

    #[test]
    fn a_negative_threshold_is_rejected_by_name() {
        let err = rejection(Params::default().with("p95_down_s", -1.0));
        assert_eq!(err, "parameter \"p95_down_s\" must not be negative, got -1");
    }

    #[test]
    fn a_negative_count_is_rejected_by_name() {
        let err = rejection(Params::default().with("queue_up", -3));
        assert!(
            err.starts_with("parameter \"queue_up\" must be an integer"),
            "{err}"
        );
    }

    #[test]
    fn an_inverted_pair_is_rejected_naming_both_keys() {
        let err = rejection(Params::default().with("queue_down", 30));
        assert_eq!(
            err,
            "parameter \"queue_down\" (30) must not be above \"queue_up\" (20)"
        );
        let params = Params::default()
            .with("error_up", 0.02)
            .with("error_down", 0.03);
        let err = rejection(params);
        assert_eq!(
            err,
            "parameter \"error_down\" (0.03) must not be above \"error_up\" (0.02)"
        );
    }

    #[test]
    fn fractions_must_lie_between_zero_and_one() {
        let err = rejection(Params::default().with("utilization_up", 80));
        assert_eq!(
            err,
            "parameter \"utilization_up\" must be from 0 to 1, got 80"
        );
    }

    #[test]
    fn shares_and_counts_must_do_something() {
        let err = rejection(Params::default().with("down_step", 0.0));
        assert_eq!(
            err,
            "parameter \"down_step\" must be above 0 and at most 1, got 0"
        );
        let err = rejection(Params::default().with("tasks_per_worker", 0));
        assert_eq!(
            err,
            "parameter \"tasks_per_worker\" must be at least 1, got 0"
        );
    }

    #[test]
    fn an_unknown_key_lists_the_accepted_ones() {
        let err = rejection(Params::default().with("queue_upp", 30));
        assert_eq!(
            err,
            "unknown parameter \"queue_upp\": this policy accepts queue_up, queue_down, \
             utilization_up, utilization_down, p95_up_s, p95_down_s, error_up, error_down, \
             error_min_count, balance_floor_usd, capacity_hold, capacity_step_down, \
             tasks_per_worker, target_utilization, down_window_s, down_step"
        );
    }
}
