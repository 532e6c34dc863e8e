//! The simulated provider: how long one attempt at a task takes, and how it ends.
//!
//! An attempt is what the real client's `solve` does: submit (`in.php`), wait the method's
//! first-poll delay, then poll every interval until the answer, the poll budget or the task's
//! deadline. The timings and the first-poll rule are the client's own ([`ClientConfig`]); the
//! errors are real [`SolveError`]s, so their class and action come from the host's table.
//!
//! Each attempt draws the same four numbers from the task's stream whatever happens, so the
//! streams of two replays stay aligned attempt by attempt.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

use super::load::{Conditions, TaskSpec};
use crate::config::CaptchaAiConfig;
use crate::solver::{ApiKey, ClientConfig, SolveError};

/// One round trip to `in.php`.
pub const SUBMIT_TIME: Duration = Duration::from_millis(300);
/// Median solve time of a token method (reCAPTCHA and the like): tokens take 15–30 s.
pub const TOKEN_MEDIAN: Duration = Duration::from_secs(18);
/// Spread of token solve times (σ of the log): the P95 is about 1.8 times the median.
pub const TOKEN_SIGMA: f64 = 0.35;
/// Median solve time of an image method (`post`, `base64`).
pub const IMAGE_MEDIAN: Duration = Duration::from_secs(3);
/// Spread of image solve times (σ of the log).
pub const IMAGE_SIGMA: f64 = 0.5;

/// How one attempt ended, and how long after it started.
#[derive(Debug)]
pub struct Attempt {
    pub after: Duration,
    /// `None` for an answer.
    pub error: Option<SolveError>,
}

/// The provider under a load's conditions.
#[derive(Debug, Clone)]
pub struct Provider {
    conditions: Conditions,
    client: ClientConfig,
}

/// The numbers one attempt draws.
struct Draws {
    transport: f64,
    unsolvable: f64,
    normal: f64,
}

impl Provider {
    pub fn new(conditions: Conditions, captchaai: &CaptchaAiConfig) -> Self {
        let mut client = ClientConfig::new(captchaai.url.clone(), ApiKey::new("replay"));
        client.first_poll_delay = captchaai.first_poll_delay;
        client.poll_interval = captchaai.poll_interval;
        client.max_polls = captchaai.max_polls;
        Self { conditions, client }
    }

    pub fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    /// One attempt at `task` started at `at`, with `deadline` the task's; `funded` is false
    /// once the account's balance is spent.
    pub fn attempt(
        &self,
        task: &TaskSpec,
        rng: &mut StdRng,
        at: Duration,
        deadline: Duration,
        funded: bool,
    ) -> Attempt {
        let draws = Draws::take(rng);
        if !funded {
            return refused("ERROR_ZERO_BALANCE");
        }
        if draws.transport < self.conditions.transport_rate(at) {
            return refused("ERROR_SERVER_ERROR");
        }
        let solve = self.solve_time(task, draws.normal, at);
        let unsolvable = draws.unsolvable < self.conditions.unsolvable;
        self.polled(&task.method, solve, deadline.saturating_sub(at), unsolvable)
    }

    /// The provider's solve time for `task` at `at`: the trace's, or drawn for its method.
    fn solve_time(&self, task: &TaskSpec, normal: f64, at: Duration) -> Duration {
        let base = task.solve.unwrap_or_else(|| {
            let (median, sigma) = if self.is_image(&task.method) {
                (IMAGE_MEDIAN, IMAGE_SIGMA)
            } else {
                (TOKEN_MEDIAN, TOKEN_SIGMA)
            };
            median.mul_f64((sigma * normal).exp())
        });
        base.mul_f64(self.conditions.solve_factor(at))
    }

    fn is_image(&self, method: &str) -> bool {
        self.client.first_poll_delay_for(method) < self.client.first_poll_delay
    }

    /// When the client sees the answer of a solve taking `solve`, as its polls find it, or
    /// the poll budget or the deadline (`left` from the attempt's start) ending it first.
    fn polled(&self, method: &str, solve: Duration, left: Duration, unsolvable: bool) -> Attempt {
        let first = SUBMIT_TIME + self.client.first_poll_delay_for(method);
        let interval = self.client.poll_interval.max(Duration::from_millis(1));
        let poll = |k: u32| first + interval * k;
        let answer = polls_until(first, interval, SUBMIT_TIME + solve);
        let last_allowed = self.client.max_polls.saturating_sub(1);
        let late = polls_until(first, interval, left);
        if late <= answer.min(last_allowed) {
            let after = if late == 0 {
                SUBMIT_TIME
            } else {
                poll(late - 1)
            };
            return failed(after, SolveError::DeadlineExceeded);
        }
        if answer > last_allowed {
            let polls = self.client.max_polls;
            return failed(
                poll(last_allowed),
                SolveError::PollBudgetExhausted { polls },
            );
        }
        let error = unsolvable.then(|| api("ERROR_CAPTCHA_UNSOLVABLE"));
        Attempt {
            after: poll(answer),
            error,
        }
    }
}

impl Draws {
    fn take(rng: &mut StdRng) -> Self {
        let transport = rng.random::<f64>();
        let unsolvable = rng.random::<f64>();
        // Box–Muller: two uniforms make one standard normal.
        let (u1, u2) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        Self {
            transport,
            unsolvable,
            normal,
        }
    }
}

/// The index of the first poll at or after `at`, polls being at `first + k × interval`.
fn polls_until(first: Duration, interval: Duration, at: Duration) -> u32 {
    if at <= first {
        return 0;
    }
    let k = (at - first).as_nanos().div_ceil(interval.as_nanos());
    u32::try_from(k).unwrap_or(u32::MAX)
}

fn api(code: &str) -> SolveError {
    SolveError::Api { code: code.into() }
}

fn failed(after: Duration, error: SolveError) -> Attempt {
    Attempt {
        after,
        error: Some(error),
    }
}

/// Refused at the submit.
fn refused(code: &str) -> Attempt {
    failed(SUBMIT_TIME, api(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn provider() -> Provider {
        Provider::new(Conditions::default(), &CaptchaAiConfig::default())
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn an_answer_arrives_at_the_first_poll_after_it_is_ready() {
        let p = provider();
        let quick = p.polled("userrecaptcha", secs(9.0), secs(180.0), false);
        assert_eq!(quick.after, secs(15.3));
        assert!(quick.error.is_none());
        let slower = p.polled("userrecaptcha", secs(21.0), secs(180.0), false);
        assert_eq!(slower.after, secs(25.3));
        let image = p.polled("base64", secs(2.0), secs(180.0), false);
        assert_eq!(image.after, secs(5.3));
    }

    #[test]
    fn the_poll_budget_ends_a_slow_solve() {
        let attempt = provider().polled("userrecaptcha", secs(500.0), secs(900.0), false);
        // 20 polls: the first at 15.3 s, the last 19 intervals of 5 s later.
        assert_eq!(attempt.after, secs(110.3));
        let code = attempt.error.map(|e| e.code().to_owned());
        assert_eq!(code.as_deref(), Some("ERROR_POLL_BUDGET_EXHAUSTED"));
    }

    #[test]
    fn the_deadline_ends_an_attempt_at_the_last_poll_before_it() {
        let attempt = provider().polled("userrecaptcha", secs(60.0), secs(30.0), false);
        assert_eq!(attempt.after, secs(25.3));
        let code = attempt.error.map(|e| e.code().to_owned());
        assert_eq!(code.as_deref(), Some("ERROR_DEADLINE_EXCEEDED"));
    }

    #[test]
    fn an_empty_account_refuses_every_submit() {
        let task = TaskSpec {
            arrival: Duration::ZERO,
            method: "userrecaptcha".into(),
            solve: Some(secs(10.0)),
            seed: 1,
        };
        let mut rng = StdRng::seed_from_u64(1);
        let attempt = provider().attempt(&task, &mut rng, Duration::ZERO, secs(180.0), false);
        assert_eq!(attempt.after, SUBMIT_TIME);
        let error = attempt.error.expect("refused");
        assert_eq!(error.code(), "ERROR_ZERO_BALANCE");
        assert_eq!(error.class(), crate::solver::ErrorClass::SolverCapacity);
    }

    #[test]
    fn drawn_token_solves_centre_on_the_median() {
        let p = provider();
        let mut rng = StdRng::seed_from_u64(7);
        let mut solves: Vec<f64> = (0..2001)
            .map(|_| p.solve_time(&token(), Draws::take(&mut rng).normal, Duration::ZERO))
            .map(|d| d.as_secs_f64())
            .collect();
        solves.sort_by(f64::total_cmp);
        let median = solves[1000];
        assert!((16.5..19.5).contains(&median), "median {median}");
    }

    fn token() -> TaskSpec {
        TaskSpec {
            arrival: Duration::ZERO,
            method: "userrecaptcha".into(),
            solve: None,
            seed: 0,
        }
    }
}
