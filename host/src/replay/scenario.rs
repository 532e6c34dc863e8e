//! The bundled scenarios: an hour of load each, drawn from a seed.
//!
//! Arrivals are a Poisson process whose rate follows the scenario's shape over the hour (drawn
//! by thinning), plus the batches some scenarios add. Nine tasks in ten are reCAPTCHA tokens
//! (`userrecaptcha`, solved in 15–30 s), one in ten an image (`base64`, a few seconds). With
//! those solve times one worker answers about three tasks a minute, so the default maximum
//! of 50 workers serves about 2.3 tasks a second.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::load::{Conditions, Load, TaskSpec, Window};

/// How long every bundled scenario lasts.
pub const SCENARIO_LENGTH: Duration = Duration::from_secs(3600);
/// Share of tasks that are images rather than tokens.
pub const IMAGE_SHARE: f64 = 0.1;

/// A bundled scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// 0.5 tasks/s all hour.
    Steady,
    /// 0.3 tasks/s, with 1.6 tasks/s from minute 15 to minute 30.
    StepBurst,
    /// A compressed day: from 0.15 tasks/s up to 1.4 at half time and back.
    Diurnal,
    /// 0.25 tasks/s, and a batch of 150 tasks within 30 s every 15 minutes from minute 10.
    Spikes,
    /// 0.6 tasks/s; solve times triple from minute 20 to minute 30.
    ApiSlowdown,
    /// 0.6 tasks/s; 40 % of attempts fail in transport from minute 20 to minute 30.
    ErrorStorm,
    /// 0.4 tasks/s, 1.2 from minute 30 to 40; the account's $3 at $0.002 a solve runs out
    /// near minute 42.
    BalanceOut,
}

/// Tasks pushed together: `count` of them, spread evenly over `over` from `at`.
#[derive(Debug, Clone, Copy)]
struct Batch {
    at: f64,
    count: u32,
    over: f64,
}

impl Scenario {
    /// Every bundled scenario, in the order of the docs.
    pub const ALL: [Scenario; 7] = [
        Scenario::Steady,
        Scenario::StepBurst,
        Scenario::Diurnal,
        Scenario::Spikes,
        Scenario::ApiSlowdown,
        Scenario::ErrorStorm,
        Scenario::BalanceOut,
    ];

    /// The name on the command line, e.g. `step-burst`.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }

    /// The scenario's hour of load, drawn from `seed`.
    pub fn load(self, seed: u64) -> Load {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut arrivals = self.poisson_arrivals(&mut rng);
        arrivals.extend(self.batches().iter().flat_map(batch_arrivals));
        arrivals.sort_by(f64::total_cmp);
        let tasks = arrivals
            .into_iter()
            .map(|at| task(&mut rng, Duration::from_secs_f64(at)))
            .collect();
        Load {
            name: self.name(),
            duration: SCENARIO_LENGTH,
            tasks,
            conditions: self.conditions(),
        }
    }

    /// Arrivals per second at `t` seconds.
    fn rate(self, t: f64) -> f64 {
        let within = |from_min: f64, to_min: f64| (from_min * 60.0..to_min * 60.0).contains(&t);
        match self {
            Scenario::Steady => 0.5,
            Scenario::StepBurst if within(15.0, 30.0) => 1.6,
            Scenario::StepBurst => 0.3,
            Scenario::Diurnal => {
                let phase = std::f64::consts::PI * t / SCENARIO_LENGTH.as_secs_f64();
                0.15 + 1.25 * phase.sin().powi(2)
            }
            Scenario::Spikes => 0.25,
            Scenario::ApiSlowdown | Scenario::ErrorStorm => 0.6,
            Scenario::BalanceOut if within(30.0, 40.0) => 1.2,
            Scenario::BalanceOut => 0.4,
        }
    }

    /// The highest rate the shape reaches, for thinning.
    fn peak_rate(self) -> f64 {
        match self {
            Scenario::Steady => 0.5,
            Scenario::StepBurst => 1.6,
            Scenario::Diurnal => 1.4,
            Scenario::Spikes => 0.25,
            Scenario::ApiSlowdown | Scenario::ErrorStorm => 0.6,
            Scenario::BalanceOut => 1.2,
        }
    }

    fn batches(self) -> &'static [Batch] {
        const SPIKES: [Batch; 4] = [
            Batch {
                at: 600.0,
                count: 150,
                over: 30.0,
            },
            Batch {
                at: 1500.0,
                count: 150,
                over: 30.0,
            },
            Batch {
                at: 2400.0,
                count: 150,
                over: 30.0,
            },
            Batch {
                at: 3300.0,
                count: 150,
                over: 30.0,
            },
        ];
        match self {
            Scenario::Spikes => &SPIKES,
            _ => &[],
        }
    }

    fn conditions(self) -> Conditions {
        let minutes = |from: u64, to: u64, value: f64| Window {
            from: Duration::from_secs(from * 60),
            to: Duration::from_secs(to * 60),
            value,
        };
        let base = Conditions::default();
        match self {
            Scenario::ApiSlowdown => Conditions {
                slowdowns: vec![minutes(20, 30, 3.0)],
                ..base
            },
            Scenario::ErrorStorm => Conditions {
                storms: vec![minutes(20, 30, 0.4)],
                ..base
            },
            Scenario::BalanceOut => Conditions {
                balance_usd: 3.0,
                price_per_solve_usd: 0.002,
                ..base
            },
            _ => base,
        }
    }

    /// A Poisson process at [`Self::rate`], by thinning one at [`Self::peak_rate`].
    fn poisson_arrivals(self, rng: &mut StdRng) -> Vec<f64> {
        let (peak, end) = (self.peak_rate(), SCENARIO_LENGTH.as_secs_f64());
        let mut arrivals = Vec::new();
        let mut t = 0.0;
        loop {
            t += -(1.0 - rng.random::<f64>()).ln() / peak;
            if t >= end {
                return arrivals;
            }
            if rng.random::<f64>() * peak < self.rate(t) {
                arrivals.push(t);
            }
        }
    }
}

fn batch_arrivals(batch: &Batch) -> impl Iterator<Item = f64> + '_ {
    let step = batch.over / f64::from(batch.count);
    (0..batch.count).map(move |i| batch.at + step * f64::from(i))
}

/// A task arriving at `arrival`, its method and seed drawn.
fn task(rng: &mut StdRng, arrival: Duration) -> TaskSpec {
    let method = if rng.random::<f64>() < IMAGE_SHARE {
        "base64"
    } else {
        "userrecaptcha"
    };
    TaskSpec {
        arrival,
        method: method.into(),
        solve: None,
        seed: rng.random(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(load: &Load, from_min: u64, to_min: u64) -> f64 {
        let (from, to) = (from_min * 60, to_min * 60);
        let n = load
            .tasks
            .iter()
            .filter(|t| (from..to).contains(&t.arrival.as_secs()))
            .count();
        n as f64 / (to - from) as f64
    }

    #[test]
    fn the_same_seed_draws_the_same_load() {
        assert_eq!(Scenario::Diurnal.load(9), Scenario::Diurnal.load(9));
        assert_ne!(Scenario::Diurnal.load(9), Scenario::Diurnal.load(10));
    }

    #[test]
    fn arrivals_follow_the_shape() {
        let load = Scenario::StepBurst.load(1);
        let quiet = per_second(&load, 0, 15);
        let burst = per_second(&load, 15, 30);
        assert!((0.25..0.35).contains(&quiet), "quiet {quiet}");
        assert!((1.45..1.75).contains(&burst), "burst {burst}");
        assert!(load.tasks.windows(2).all(|w| w[0].arrival <= w[1].arrival));
    }

    #[test]
    fn spikes_add_their_batches() {
        let load = Scenario::Spikes.load(1);
        let spike = load
            .tasks
            .iter()
            .filter(|t| (600..630).contains(&t.arrival.as_secs()))
            .count();
        assert!((150..165).contains(&spike), "{spike}");
    }

    #[test]
    fn every_scenario_is_an_hour_with_its_name() {
        for scenario in Scenario::ALL {
            let load = scenario.load(1);
            assert_eq!(load.duration, SCENARIO_LENGTH);
            assert_eq!(load.name, scenario.name());
            assert!(load.tasks.iter().all(|t| t.arrival < SCENARIO_LENGTH));
        }
        assert_eq!(Scenario::BalanceOut.name(), "balance-out");
    }
}
