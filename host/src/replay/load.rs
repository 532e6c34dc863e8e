//! What a replay plays: the tasks that arrive, and the conditions the provider works under.
//!
//! A [`Load`] comes from a bundled scenario ([`super::scenario`]) or a trace file
//! ([`super::trace`]). Every task carries its own seed, so its solve times and errors are drawn
//! from a stream of its own: two policies replayed on the same load see the same task solved
//! in the same time whenever they submit it under the same conditions.

use std::time::Duration;

/// Solves cost this much by default, in US dollars (a typical per-solve price).
pub const DEFAULT_PRICE_PER_SOLVE_USD: f64 = 0.001;
/// The account starts with this much by default: more than any bundled hour spends.
pub const DEFAULT_BALANCE_USD: f64 = 100.0;
/// Share of attempts that fail in transport (5xx, resets) outside any storm.
pub const BASE_TRANSPORT_ERRORS: f64 = 0.005;
/// Share of attempts the provider calls unsolvable.
pub const BASE_UNSOLVABLE: f64 = 0.01;

/// One task of the load.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// When it is pushed onto the queue, from the start of the replay.
    pub arrival: Duration,
    /// The CaptchaAI method, e.g. `userrecaptcha` or `base64`.
    pub method: String,
    /// The provider's solve time, when a trace recorded it; otherwise drawn.
    pub solve: Option<Duration>,
    /// Seeds the draws of this task's attempts.
    pub seed: u64,
}

/// A stretch of time during which a condition holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub from: Duration,
    pub to: Duration,
    pub value: f64,
}

impl Window {
    fn covers(&self, at: Duration) -> bool {
        self.from <= at && at < self.to
    }
}

/// How the simulated provider behaves over the replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditions {
    /// Solve times are multiplied by `value` within each window.
    pub slowdowns: Vec<Window>,
    /// The transport error rate is `value` within each window.
    pub storms: Vec<Window>,
    /// The transport error rate outside the storms.
    pub transport_errors: f64,
    /// The share of attempts the provider calls unsolvable.
    pub unsolvable: f64,
    /// The account's balance at the start, in US dollars.
    pub balance_usd: f64,
    /// What one solve costs, in US dollars.
    pub price_per_solve_usd: f64,
}

impl Default for Conditions {
    fn default() -> Self {
        Self {
            slowdowns: Vec::new(),
            storms: Vec::new(),
            transport_errors: BASE_TRANSPORT_ERRORS,
            unsolvable: BASE_UNSOLVABLE,
            balance_usd: DEFAULT_BALANCE_USD,
            price_per_solve_usd: DEFAULT_PRICE_PER_SOLVE_USD,
        }
    }
}

impl Conditions {
    /// The factor on solve times at `at`.
    pub fn solve_factor(&self, at: Duration) -> f64 {
        self.slowdowns
            .iter()
            .filter(|w| w.covers(at))
            .map(|w| w.value)
            .product()
    }

    /// The share of attempts that fail in transport at `at`.
    pub fn transport_rate(&self, at: Duration) -> f64 {
        self.storms
            .iter()
            .find(|w| w.covers(at))
            .map_or(self.transport_errors, |w| w.value)
    }
}

/// Tasks and conditions for one replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// The scenario's name, or the trace file's.
    pub name: String,
    /// How long the replay runs; arrivals all fall within it.
    pub duration: Duration,
    /// Ordered by arrival.
    pub tasks: Vec<TaskSpec>,
    pub conditions: Conditions,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(from: u64, to: u64, value: f64) -> Window {
        Window {
            from: Duration::from_secs(from),
            to: Duration::from_secs(to),
            value,
        }
    }

    #[test]
    fn windows_apply_from_their_start_until_their_end() {
        let conditions = Conditions {
            slowdowns: vec![window(60, 120, 3.0)],
            storms: vec![window(100, 200, 0.4)],
            ..Conditions::default()
        };
        let at = Duration::from_secs;
        assert_eq!(conditions.solve_factor(at(59)), 1.0);
        assert_eq!(conditions.solve_factor(at(60)), 3.0);
        assert_eq!(conditions.solve_factor(at(120)), 1.0);
        assert_eq!(conditions.transport_rate(at(99)), BASE_TRANSPORT_ERRORS);
        assert_eq!(conditions.transport_rate(at(150)), 0.4);
    }
}
